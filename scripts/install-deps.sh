#!/usr/bin/env bash
# Installs what the test suite needs beyond a Rust toolchain. Idempotent; run as root (or with
# sudo) on Debian. Today the suite needs nothing else; each later need is added here, once.
set -euo pipefail
need=()
# rustfmt and clippy ship with rustup toolchains but may be missing from a minimal profile.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy
  else
    echo "install-deps: cargo fmt / cargo clippy are missing and rustup is not available" >&2
    exit 1
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}"
fi
