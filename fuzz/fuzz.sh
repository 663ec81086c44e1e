#!/usr/bin/env bash
# Runs every fuzz target (see README.md):
#   fuzz/fuzz.sh smoke [SECONDS]   each target for SECONDS (default 5): what CI runs
#   fuzz/fuzz.sh long [RUNS]       each target for RUNS executions (default 1,000,000)
#   fuzz/fuzz.sh long RUNS TARGET… only those targets
# Installs cargo-fuzz on first use, builds the targets (nightly, libFuzzer, AddressSanitizer),
# writes the seed corpus from the repository's real records, then fuzzes each target with a
# memory limit and a per-input time limit. A crash, a leak, a timeout or a memory blow-up stops
# the script (exit 1) with the input saved in fuzz/artifacts/TARGET/. Figures per target go
# to fuzz/logs/TARGET.log and a summary line each to standard output. CARGO_TARGET_DIR, when set,
# is where the targets are built (CI keeps it in ~/.cache/handoff/fuzz-target).
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-smoke}
case "$mode" in
  smoke) limit="-max_total_time=${2:-5}" ;;
  long) limit="-runs=${2:-1000000}" ;;
  *) echo "usage: fuzz.sh smoke [SECONDS] | long [RUNS] [TARGET...]" >&2; exit 2 ;;
esac
shift $(( $# > 1 ? 2 : $# ))
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked --version 0.13.2 || {
    echo "cargo-fuzz could not be installed (crates.io unreachable?)" >&2; exit 3; }
fi
echo "== building the fuzz targets"
cargo +nightly fuzz build
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release
echo "== seed corpus from the repository's records"
"$bin/seed-corpus" .. corpus
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list | grep -v '^seed-corpus$')
fi
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  start=$(date +%s)
  if ! "$bin/$t" "corpus/$t" "$limit" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"logs/$t.log" 2>&1; then
    echo "FAIL $t: see fuzz/logs/$t.log and fuzz/artifacts/$t/" >&2
    tail -40 "logs/$t.log" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -1 | grep -o '[0-9]*' || echo '?')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  printf '%-15s %10s runs %6ss  coverage %6s edges  corpus %6s inputs  peak %5s MB\n' \
    "$t" "$runs" "$(( $(date +%s) - start ))" "$cov" "$(ls "corpus/$t" | wc -l)" "$rss"
done
