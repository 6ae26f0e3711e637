#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets, libFuzzer + AddressSanitizer) for a bounded
# time each, starting from the inputs kept in fuzz/regressions/<target>/. A crash fails the
# run; its input is written to fuzz/artifacts/<target>/: fix the bug, then copy the input into
# fuzz/regressions/<target>/ so `cargo test` replays it (tests/tests/fuzz_regressions.rs).
# Usage: ./scripts/fuzz.sh [TARGET…]   (FUZZ_SECONDS=30 per target by default)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/openclaw-target}/fuzz"
# libFuzzer's sanitizer flags are nightly options; the stable toolchain takes them this way.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== cargo fuzz build (${#targets[@]} targets)"
cargo fuzz build --target-dir "$target_dir" >/dev/null

for t in "${targets[@]}"; do
  corpus="$target_dir/corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  cp -n "regressions/$t/"* "$corpus/" 2>/dev/null || true
  echo "== fuzz $t (${seconds} s)"
  if ! cargo fuzz run --target-dir "$target_dir" "$t" "$corpus" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>"$target_dir/$t.log"; then
    tail -n 40 "$target_dir/$t.log" >&2
    echo "fuzz: $t crashed; the input is in fuzz/artifacts/$t/ (keep it in fuzz/regressions/$t/ once fixed)" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$target_dir/$t.log" | tr '\n' ' '
  echo
done
