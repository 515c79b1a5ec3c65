#!/usr/bin/env bash
# `make demo`: build and run the examples with pybuild (as root: RUN needs runc and overlayfs).
#   0. every example Dockerfile is linted (`pybuild check`)
#   1. busybox:latest is made offline (scripts/make-busybox.sh) if the store lacks it
#   2. psweb is built (multi-stage, final FROM scratch), listed and its history shown
#   3. psweb runs detached (`pybuild run -d --name psweb-demo -p 127.0.0.1:PORT:8080 psweb`, on
#      the private network with the port published), its page is fetched, `ps` and `logs` are
#      shown, then it is stopped and removed (`stop -t 2`, `rm`)
#   4. the other examples are built (buildargs, onbuild, dockerignore) and run
# The store is $PYBUILD_ROOT (default /var/lib/pybuild). PSWEB_PORT (default 8080) moves the
# web server to another port if 8080 is taken. Nothing is left running when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBUILD=${PYBUILD:-.venv/bin/pybuild}
export PYBUILD_ROOT=${PYBUILD_ROOT:-/var/lib/pybuild}
PORT=${PSWEB_PORT:-8080}

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (RUN steps use runc and overlayfs): sudo make demo" >&2
  exit 1
fi

if [ -t 1 ]; then
  step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  step() { printf '\n== %s\n' "$*"; }
fi

NAME=psweb-demo
remove_server() {
  "$PYBUILD" rm -f "$NAME" >/dev/null 2>&1 || true
}
trap remove_server EXIT
trap 'remove_server; exit 130' INT TERM

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 "$1"
  else
    timeout 5 busybox wget -q -O - "$1"  # (busybox 1.35 wget -T crashes)
  fi
}

port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

step "pybuild check: lint every example Dockerfile (BuildKit's build checks)"
for df in examples/*/Dockerfile examples/onbuild/base.Dockerfile; do
  printf '%-36s ' "$df"
  "$PYBUILD" check -f "$df"
done

step "store: $PYBUILD_ROOT"
if ! "$PYBUILD" inspect busybox:latest >/dev/null 2>&1; then
  step "scripts/make-busybox.sh (busybox:latest from Debian's busybox-static, offline)"
  bash scripts/make-busybox.sh "$PYBUILD"
fi

step "pybuild -t psweb examples/psweb"
"$PYBUILD" -t psweb examples/psweb

step "pybuild -t psweb examples/psweb (again: every step is CACHED, same image ID)"
"$PYBUILD" -t psweb --progress=plain examples/psweb 2>&1 | grep -E 'CACHED|writing image'

step "pybuild images"
"$PYBUILD" images

step "pybuild history psweb"
"$PYBUILD" history psweb

if port_busy "$PORT"; then
  echo "demo.sh: port $PORT is already in use; set PSWEB_PORT to a free port" >&2
  exit 1
fi
remove_server  # a container of an interrupted earlier demo
step "pybuild run -d --name $NAME -p 127.0.0.1:$PORT:8080 psweb"
"$PYBUILD" run -d --name "$NAME" -p "127.0.0.1:$PORT:8080" psweb
page=""
for _ in $(seq 1 100); do
  if page=$(fetch "http://127.0.0.1:$PORT/" 2>/dev/null); then
    break
  fi
  sleep 0.1
done
if [ -z "$page" ]; then
  echo "demo.sh: no answer from http://127.0.0.1:$PORT/" >&2
  "$PYBUILD" logs "$NAME" >&2 || true
  exit 1
fi
title=$(printf '%s\n' "$page" | sed -n 's:.*<title>\(.*\)</title>.*:\1:p' | head -n 1)
echo "GET http://127.0.0.1:$PORT/ -> page title: $title"

step "pybuild ps"
"$PYBUILD" ps

step "pybuild logs $NAME"
"$PYBUILD" logs "$NAME" | sed 's/^/  /'

step "pybuild stop -t 2 $NAME; pybuild rm $NAME (httpd as PID 1 ignores SIGTERM: killed after 2 s)"
"$PYBUILD" stop -t 2 "$NAME"
"$PYBUILD" rm "$NAME"
left=$(runc --root "$PYBUILD_ROOT/runc-containers" list -q 2>/dev/null || true)
if [ -n "$left" ]; then
  echo "demo.sh: containers left behind: $left" >&2
  exit 1
fi
echo "no containers left"

step "pybuild -t buildargs --build-arg APP_VERSION=2.0 --build-arg GREETING=Hi examples/buildargs"
"$PYBUILD" -t buildargs --build-arg APP_VERSION=2.0 --build-arg GREETING=Hi examples/buildargs
"$PYBUILD" run buildargs

step "pybuild -t onbuild-base -f examples/onbuild/base.Dockerfile examples/onbuild"
"$PYBUILD" -t onbuild-base -f examples/onbuild/base.Dockerfile examples/onbuild
step "pybuild -t onbuild-app examples/onbuild (the base's ONBUILD triggers run here)"
"$PYBUILD" -t onbuild-app examples/onbuild
"$PYBUILD" run onbuild-app

step "pybuild -t dockerignore examples/dockerignore (what .dockerignore let through)"
"$PYBUILD" -t dockerignore examples/dockerignore
"$PYBUILD" run dockerignore

step "pybuild images"
"$PYBUILD" images
