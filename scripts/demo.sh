#!/usr/bin/env bash
# `make demo`: the main job on the examples. Today pybuild reads Dockerfiles exactly as BuildKit
# does; the build engine (issue "Build engine") will extend this script to build and run psweb.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBUILD=.venv/bin/pybuild
for df in examples/*/Dockerfile; do
  echo "== pybuild check -f $df"
  $PYBUILD check -f "$df"
  echo "== pybuild parse -f $df"
  $PYBUILD parse -f "$df"
done
echo "== pybuild fmt examples/psweb/Dockerfile (canonical form, not written back)"
$PYBUILD fmt examples/psweb/Dockerfile
