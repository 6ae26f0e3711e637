#!/usr/bin/env bash
# The whole test suite: formatting, lints, build, then every test in the workspace.
# Usage: ./scripts/test.sh   (from the repository root; needs only a Rust toolchain)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/openclaw-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

./scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries used by the cross-process tests)"
cargo build --workspace --bins --locked
echo "== cargo tauri build --debug --bundles deb (the tray app's Linux package; tests/tests/tray_package.rs inspects it)"
(cd src-tauri && cargo tauri build --debug --bundles deb --ci -- --locked)
echo "== cargo build -p openclaw-node --no-default-features --lib (the node core as phones get it)"
cargo build -p openclaw-node --no-default-features --lib --locked
echo "== cargo build -p openclaw-node --no-default-features --features ffi --lib (its uniffi library, for the mobile bindings)"
cargo build -p openclaw-node --no-default-features --features ffi --lib --locked
cargo clippy -p openclaw-node --no-default-features --features ffi --all-targets --locked -- -D warnings
echo "== cargo test"
log="$(mktemp)"
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary).
passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '; [0-9]+ failed' "$log" | awk '{s += $2} END {print s + 0}')
rm -f "$log"
echo
echo "${passed} passed, ${failed} failed"
# Each fuzz target for a bounded time (30 s by default), from the kept inputs.
echo "== fuzz (FUZZ_SECONDS=${FUZZ_SECONDS:-30} per target)"
fuzz_status=0
./scripts/fuzz.sh || fuzz_status=$?
if [ "$status" -eq 0 ]; then
  status=$fuzz_status
fi
exit "$status"
