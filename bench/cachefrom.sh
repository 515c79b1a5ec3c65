#!/usr/bin/env bash
# A build on an empty store with --cache-from against a cold build, for psweb (examples/) and the
# anchors' multistage bench, in one script:
#
#   1. a seed store holding only busybox:latest (scripts/make-busybox.sh);
#   2. per run, a copy of the seed: a cold build (no cache at all), timed;
#   3. once, a build with --cache-to type=registry,...,mode=max to a docker-registry this script
#      starts on 127.0.0.1 (stopped on exit), timed;
#   4. per run, another copy of the seed: a build with --cache-from that registry, timed, and
#      checked to have run no step (every layer step CACHED) and to give the exporter's image.
#
# Prints the medians (seconds) and the ratio cache-from / cold per workload. RUNS (default 5),
# ANCHORS (the anchors kit; default: shared/anchors beside the repository or beside the main
# checkout of this worktree; without it only psweb runs), WORK (default /tmp/cachefrom).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
PYBUILD="$REPO/.venv/bin/pybuild"
RUNS=${RUNS:-5}
WORK=${WORK:-/tmp/cachefrom}

anchors_dir() {
  local common dir
  if [ -n "${ANCHORS:-}" ]; then
    echo "$ANCHORS"
    return 0
  fi
  common=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
  for dir in "$REPO/../shared/anchors" ${common:+"$(dirname "$common")/../shared/anchors"}; do
    [ -f "$dir/bench/gen-context.sh" ] && { (cd "$dir" && pwd); return 0; }
  done
  return 0
}

rm -rf "$WORK"
mkdir -p "$WORK"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" \
    2>/dev/null && break
  sleep 0.1
done

bash "$REPO/scripts/make-busybox.sh" "$PYBUILD" --root "$WORK/seed" > "$WORK/seed.log" 2>&1

contexts=("psweb=$REPO/examples/psweb")
ANCHORS=$(anchors_dir)
if [ -n "$ANCHORS" ]; then
  bash "$ANCHORS/bench/gen-context.sh" multistage "$WORK/multistage"
  contexts+=("multistage=$WORK/multistage")
else
  echo "multistage: skipped, the anchors kit was not found (set ANCHORS=<kit dir>)"
fi

# timed NAME STORE ARGS...: a build on a fresh copy of the seed; appends "NAME seconds" to times
timed() {
  local name=$1 store=$2
  shift 2
  rm -rf "$store"
  cp -a "$WORK/seed" "$store"
  local start end
  start=$(date +%s.%N)
  "$PYBUILD" build --root "$store" --progress=plain "$@" > "$WORK/last.log" 2>&1 || {
    cat "$WORK/last.log"
    exit 1
  }
  end=$(date +%s.%N)
  awk -v n="$name" -v s="$start" -v e="$end" 'BEGIN { printf "%s %.3f\n", n, e - s }' >> "$WORK/times"
}

: > "$WORK/times"
for entry in "${contexts[@]}"; do
  bench=${entry%%=*}
  ctx=${entry#*=}
  ref="127.0.0.1:$port/cache/$bench:buildcache"
  for run in $(seq 1 "$RUNS"); do
    timed "$bench cold" "$WORK/store-cold" -t "$bench:cold" "$ctx"
  done
  timed "$bench export" "$WORK/store-export" -t "$bench:cold" \
    --iidfile "$WORK/$bench.iid" --cache-to "type=registry,ref=$ref,mode=max" "$ctx"
  for run in $(seq 1 "$RUNS"); do
    timed "$bench cache-from" "$WORK/store-warm" -t "$bench:warm" \
      --iidfile "$WORK/$bench.warm.iid" --cache-from "type=registry,ref=$ref" "$ctx"
    steps=$(grep -cE '^#[0-9]+ \[[^]]*[0-9]+/[0-9]+\] (RUN|COPY|ADD|WORKDIR)' "$WORK/last.log")
    cached=$(grep -cE '^#[0-9]+ CACHED$' "$WORK/last.log")
    if [ "$steps" != "$cached" ] || ! cmp -s "$WORK/$bench.iid" "$WORK/$bench.warm.iid"; then
      echo "$bench: the --cache-from build ran steps ($cached of $steps CACHED) or differs"
      cat "$WORK/last.log"
      exit 1
    fi
  done
  echo "$bench: $cached of $steps layer steps CACHED on an empty store, same image ID"
done

"$PY" - "$WORK/times" "$RUNS" <<'EOF'
import statistics, sys
times: dict[tuple[str, str], list[float]] = {}
for line in open(sys.argv[1]):
    bench, kind, seconds = line.split()
    times.setdefault((bench, kind), []).append(float(seconds))
print(f"\nmedians of {sys.argv[2]} runs (seconds, wall), 2-core shared machine")
print(f"{'workload':<12} {'cold':>8} {'cold+cache-to':>14} {'cache-from':>11} {'ratio':>7}")
for bench in dict.fromkeys(b for b, _ in times):
    cold = statistics.median(times[(bench, "cold")])
    export = statistics.median(times[(bench, "export")])
    warm = statistics.median(times[(bench, "cache-from")])
    print(f"{bench:<12} {cold:>8.2f} {export:>14.2f} {warm:>11.2f} {warm / cold:>7.2f}")
EOF
