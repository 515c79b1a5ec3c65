#!/usr/bin/env bash
# pybuild against the anchor builders (BuildKit via docker 20.10, buildah): cold / warm /
# incremental builds of the four anchor workloads, then pybuild's time ratios.
#
#   bench/anchors.sh            set up (once), run the anchors kit's bench/run.sh, print ratios
#   bench/anchors.sh interleaved  set up, then pybuild and BuildKit alternate run by run (below)
#   bench/anchors.sh prune      empty pybuild's bench store except busybox (the cold-run prune)
#   bench/anchors.sh ratios     print the ratio table of the last run again
#   bench/anchors.sh interleaved-ratios   the same for the last interleaved run
#
# Interleaved mode: per bench and run, each builder in turn (the order alternates run by run)
# does the whole sequence: prune, cold build (--no-cache), first rebuild, no-op rebuild, one
# file changed, and for dockerignore an ignored file changed. A busy spell on the shared machine
# then slows both builders alike. Times are wall seconds of the build command; the table gives
# the medians and pybuild's median / BuildKit's. Results: $OUT/interleaved.tsv.
#
# Environment: RUNS (default 5), BENCHES, BUILDERS (default "buildkit buildah custom"; buildkit
# is dropped, with the reason, when dockerd is not reachable, buildah when it is not installed),
# ANCHORS (the anchors kit; default: shared/anchors beside the repository, or beside the main
# checkout of a git worktree; without it the comparison is skipped), OUT (default
# /tmp/anchors/results).
# pybuild's store for the bench: PYBUILD_ROOT=/tmp/anchors/pybuild (its own, never yours).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The anchors kit (setup.sh, bench/run.sh): not part of the repository. Where it is absent the
# comparison is skipped with one line, so `make bench` still runs the other benchmarks.
find_anchors() {
  local common
  if [ -n "${ANCHORS:-}" ]; then
    [ -f "$ANCHORS/bench/run.sh" ] && echo "$ANCHORS"
    return 0
  fi
  common=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  for dir in "$REPO/../shared/anchors" ${common:+"$(dirname "$common")/../shared/anchors"}; do
    if [ -f "$dir/bench/run.sh" ]; then
      (cd "$dir" && pwd)
      return 0
    fi
  done
}
PY="$REPO/.venv/bin/python"
PYBUILD="$REPO/.venv/bin/pybuild"
export PYBUILD_ROOT=/tmp/anchors/pybuild
OUT=${OUT:-/tmp/anchors/results}
export OUT
DOCKER=/usr/bin/docker

# -- prune: what run.sh calls (via CUSTOM_PRUNE_CMD) before every cold build ----------------------
# Drops every image but busybox, every build-cache record, the layer directories of everything
# but busybox's layers (docker keeps its base images extracted too), the context stat caches,
# miss-explanation records and cache mounts; then a store GC removes the unreferenced blobs.
prune() {
  "$PY" - <<'EOF'
import os, shutil
from builder.digest import Digest
from builder.snapshot.layerdirs import LayerDirs
from builder.store import REF_NAME, Store
from builder.store.gc import prune

store = Store.open(os.environ["PYBUILD_ROOT"])
keep_names = ("docker.io/library/busybox:latest",)
for desc in store.read_index().manifests:
    name = desc.annotation(REF_NAME)
    if name not in keep_names:
        if name is None:
            store.remove_image(desc.digest)
        else:
            store.untag(name)
with store.exclusive():
    for record in list(store.cache.records()):
        store.cache.delete(record.key)
prune(store, dangling=True)
image = store.load_image(store.resolve("busybox:latest").descriptor)
diff_ids = image.config.diff_ids
keep = {store.snapshot_dir(diff_ids[: i + 1]).name for i in range(len(diff_ids))}
dirs = LayerDirs(store)
for entry in sorted(dirs.root.iterdir()):
    name = entry.name.split(".")[0]  # <chain id hex>, or its .unsynced/.boot-<id> markers
    if name in keep or len(name) != 64:
        continue
    dirs.remove((Digest.parse("sha256:" + name),))  # the dir of a 1-layer chain is named by it
    if entry.exists() and not entry.is_dir():
        entry.unlink()  # a marker left without its directory
for name in ("contexts", "cachemounts"):
    shutil.rmtree(store.root / name, ignore_errors=True)
# buildinfo: miss and no-op records go; the runtime check's answer (about the installed runc,
# not the build cache) stays, as BuildKit's daemon checks its runtime once, when it starts
for entry in (store.root / "buildinfo").glob("*"):
    if not entry.name.startswith("runtime-check-"):
        entry.unlink()
EOF
}

# -- ratios: pybuild's median / the other builder's median, per bench and mode -------------------
ratios() {
  "$PY" - "$OUT/summary.tsv" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    bench, builder, mode, median = line.split("\t")[:4]
    rows[(bench, builder, mode)] = float(median)
benches = [b for b in ("multistage", "runs20", "bigcopy", "dockerignore")
           if any(k[0] == b for k in rows)]
others = [o for o in ("buildkit", "buildah") if any(k[1] == o for k in rows)]
modes = ("cold", "warm", "incr", "ignored")
print("pybuild time / other builder's time (median; < 1: pybuild is faster)")
print()
head = "| bench | mode | pybuild (s) | " + " | ".join(f"{o} (s) | ratio to {o}" for o in others)
print(head + " |")
print("|---|---|---:|" + "---:|---:|" * len(others))
for b in benches:
    for m in modes:
        mine = rows.get((b, "custom", m))
        if mine is None:
            continue
        cells = [f"{mine:.3f}"]
        for o in others:
            theirs = rows.get((b, o, m))
            cells += ["-", "-"] if theirs is None else [f"{theirs:.3f}", f"{mine / theirs:.2f}"]
        print(f"| {b} | {m} | " + " | ".join(cells) + " |")
EOF
}

# -- interleaved: the kit's builds, pybuild and BuildKit taking turns run by run ----------------
incr_file() { case "$1" in
  multistage) echo src/list2.txt ;; runs20) echo input.txt ;;
  bigcopy) echo data/d50/f0050.bin ;; dockerignore) echo app/main.py ;; esac; }

timed() { # bench builder mode run command...: append one wall time to interleaved.tsv
  local bench=$1 builder=$2 mode=$3 run=$4; shift 4
  local t0 t1
  t0=$(date +%s%N)
  if ! "$@" >/dev/null 2>"$OUT/last-error.txt"; then
    echo "FAILED: $bench $builder $mode (run $run): $*" >&2
    cat "$OUT/last-error.txt" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  printf '%s\t%s\t%s\t%s\t%s\n' "$bench" "$builder" "$mode" "$run" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" >> "$OUT/interleaved.tsv"
}

interleaved() {
  local work=/tmp/anchors/bench-work runs=${RUNS:-5} build="$ANCHORS/bench/build.sh"
  mkdir -p "$OUT" "$work"
  printf 'bench\tbuilder\tmode\trun\tseconds\n' > "$OUT/interleaved.tsv"
  { date -u; uname -r; nproc; uptime; } > "$OUT/interleaved-env.txt"
  for bench in ${BENCHES:-multistage runs20 bigcopy dockerignore}; do
    local ctx="$work/$bench"
    "$ANCHORS/bench/gen-context.sh" "$bench" "$ctx"
    local f="$ctx/$(incr_file "$bench")" ign="$ctx/node_modules/pkg00/f0000.bin"
    for run in $(seq 1 "$runs"); do
      local order="custom buildkit"
      [ $((run % 2)) = 0 ] && order="buildkit custom"
      for bl in $order; do
        local tag="anchor-bench/$bench:$bl"
        echo "--- $bench run $run/$runs: $bl"
        "$build" --prune "$bl" "$tag"
        timed "$bench" "$bl" cold "$run" "$build" "$bl" "$tag" "$ctx" --no-cache
        timed "$bench" "$bl" first "$run" "$build" "$bl" "$tag" "$ctx"
        timed "$bench" "$bl" warm "$run" "$build" "$bl" "$tag" "$ctx"
        date +%s%N >> "$f"
        timed "$bench" "$bl" incr "$run" "$build" "$bl" "$tag" "$ctx"
        if [ "$bench" = dockerignore ]; then
          date +%s%N >> "$ign"
          timed "$bench" "$bl" ignored "$run" "$build" "$bl" "$tag" "$ctx"
        fi
      done
    done
  done
  uptime >> "$OUT/interleaved-env.txt"
}

interleaved_ratios() {
  "$PY" - "$OUT/interleaved.tsv" "$OUT/interleaved-env.txt" <<'EOF'
import statistics, sys
times = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    bench, builder, mode, _, seconds = line.split("\t")
    times.setdefault((bench, builder, mode), []).append(float(seconds))
benches = [b for b in ("multistage", "runs20", "bigcopy", "dockerignore")
           if (b, "custom", "cold") in times]
modes = ("cold", "first", "warm", "incr", "ignored")
names = {"cold": "cold", "first": "first rebuild", "warm": "no-op", "incr": "one file changed",
         "ignored": "ignored file changed"}
runs = max(len(v) for v in times.values())
print(f"Interleaved runs: pybuild / BuildKit, medians of {runs} runs (< 1: pybuild is faster)")
print(open(sys.argv[2]).read().strip().replace("\n", "; "))
print()
print("| bench | mode | pybuild (s) | BuildKit (s) | ratio |")
print("|---|---|---:|---:|---:|")
for b in benches:
    for m in modes:
        mine, theirs = times.get((b, "custom", m)), times.get((b, "buildkit", m))
        if not mine or not theirs:
            continue
        a, c = statistics.median(mine), statistics.median(theirs)
        print(f"| {b} | {names[m]} | {a:.3f} | {c:.3f} | {a / c:.2f} |")
EOF
}

case "${1:-}" in
  prune) prune; exit 0 ;;
  ratios) ratios; exit 0 ;;
  interleaved-ratios) interleaved_ratios; exit 0 ;;
  interleaved) MODE=interleaved ;;
  "") MODE=hyperfine ;;
  *) echo "usage: $0 [interleaved|prune|ratios|interleaved-ratios]" >&2; exit 2 ;;
esac

ANCHORS_DIR=$(find_anchors)
if [ -z "$ANCHORS_DIR" ]; then
  echo "anchors: skipped, the anchors kit was not found (${ANCHORS:-no shared/anchors beside the repository}; set ANCHORS=<kit dir>)"
  exit 0
fi
ANCHORS=$ANCHORS_DIR

# -- 1. the anchors' environment (root; idempotent, skipped when already up) ---------------------
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
ready() {
  [ -s /tmp/anchors/versions.txt ] && command -v hyperfine >/dev/null && command -v buildah >/dev/null \
    && command -v skopeo >/dev/null && $DOCKER image inspect busybox:latest >/dev/null 2>&1 \
    && CONTAINERS_CONF="$ANCHORS/containers.conf" buildah inspect busybox:latest >/dev/null 2>&1
}
if ready; then
  echo "== anchors: already set up"
else
  echo "== anchors: setup (SKIP_DEBIAN=1; log /tmp/anchors/setup.log)"
  mkdir -p /tmp/anchors
  if ! $SUDO env SKIP_DEBIAN=1 bash "$ANCHORS/setup.sh" > /tmp/anchors/setup.log 2>&1; then
    tail -20 /tmp/anchors/setup.log >&2
    echo "anchors setup failed (see above); continuing with what works" >&2
  fi
fi

BUILDERS=${BUILDERS:-"buildkit buildah custom"}
if [[ " $BUILDERS " == *" buildkit "* ]] && ! $DOCKER info >/dev/null 2>&1; then
  echo "== dockerd is not reachable ($($DOCKER info 2>&1 | tail -1)); see /tmp/anchors/dockerd.log" >&2
  echo "   comparing against buildah only" >&2
  BUILDERS=$(echo " $BUILDERS " | sed 's/ buildkit / /; s/^ *//; s/ *$//')
fi
if [[ " $BUILDERS " == *" buildah "* ]] && ! command -v buildah >/dev/null; then
  echo "== buildah is not installed (see /tmp/anchors/setup.log); comparing without it" >&2
  BUILDERS=$(echo " $BUILDERS " | sed 's/ buildah / /; s/^ *//; s/ *$//')
fi
if ! command -v hyperfine >/dev/null; then
  echo "anchors: skipped, hyperfine is not installed (the kit's setup.sh installs it; see /tmp/anchors/setup.log)"
  exit 0
fi
if [[ " $BUILDERS " != *" buildkit "* && " $BUILDERS " != *" buildah "* ]]; then
  echo "anchors: skipped, neither docker (BuildKit) nor buildah is available to compare against (see /tmp/anchors/setup.log)"
  exit 0
fi

# -- 2. pybuild: bytecode compiled like an installed package, busybox in a dedicated store -------
# (a `pip install` compiles .pyc files; with PYTHONDONTWRITEBYTECODE set and no __pycache__, every
# start would recompile every module, which is not what users run.)
"$PY" -m compileall -q -j 0 "$REPO/builder" >/dev/null || true
"$PY" -c 'from builder._dataclass_code import warm; warm()' || true  # as make venv does
"$PY" -m compileall -q -j 0 "$("$PY" -c 'import lark, os; print(os.path.dirname(lark.__file__))')" \
  >/dev/null 2>&1 || true
if ! "$PYBUILD" images -q busybox:latest 2>/dev/null | grep -q .; then
  echo "== pybuild: busybox:latest into $PYBUILD_ROOT"
  (cd "$REPO" && bash scripts/make-busybox.sh "$PYBUILD")
fi
# extract busybox's layer once, as docker and buildah have theirs unpacked already
warm=$(mktemp -d); trap 'rm -rf "$warm"' EXIT
printf 'FROM busybox\nRUN true\n' > "$warm/Dockerfile"
"$PYBUILD" -q -t anchor-bench/warmup:custom "$warm" >/dev/null
prune

# -- 3. the benchmark ---------------------------------------------------------------------------
# The kit runs `docker build --network=host`: pybuild's RUN steps get the host network too, so
# both builders do the same work (pybuild's default, a private network, needs a slirp4netns).
host_net=$(mktemp /tmp/anchors/pybuild-host-net.XXXXXX)
printf '#!/bin/sh\nexec %s --network host --allow network.host "$@"\n' "$PYBUILD" > "$host_net"
chmod +x "$host_net"
trap 'rm -rf "$warm" "$host_net"' EXIT
if [ "$MODE" = interleaved ]; then
  if [[ " $BUILDERS " != *" buildkit "* ]]; then
    echo "anchors: interleaved mode needs BuildKit (dockerd); see above" >&2
    exit 1
  fi
  echo "== interleaved: pybuild and BuildKit alternate, RUNS=${RUNS:-5}"
  export CUSTOM_BUILD_CMD="$host_net" CUSTOM_PRUNE_CMD="$REPO/bench/anchors.sh prune"
  interleaved
  echo
  interleaved_ratios
  exit 0
fi
echo "== run.sh BUILDERS=\"$BUILDERS\" RUNS=${RUNS:-5}"
BUILDERS="$BUILDERS" \
CUSTOM_BUILD_CMD="$host_net" \
CUSTOM_PRUNE_CMD="$REPO/bench/anchors.sh prune" \
CUSTOM_IMAGE_SRC="oci:$PYBUILD_ROOT:docker.io/" \
RUNS=${RUNS:-5} \
  bash "$ANCHORS/bench/run.sh"

echo
ratios
