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
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
