#!/usr/bin/env bash
# Builds openclaw-node's library with its uniffi interface (feature `ffi`) and writes the Swift,
# Kotlin and Python bindings for it, from that same build (bindings and library must match, or
# loading fails with `undefined symbol`).
#
# Usage: mobile/generate-bindings.sh [--release] [--android]
#   OUT_DIR            where to write (default mobile/generated/, git-ignored)
#   CARGO_TARGET_DIR   cargo's target dir (default target/)
#   --release          the optimised library (panic=unwind: uniffi turns a panic into an
#                      exception only when it can unwind; the workspace's release profile aborts)
#   --android          Kotlin with android=true (mobile/android/uniffi.toml) instead of the JVM
#                      config (android=false, mobile/jvm/uniffi.toml)
# Prints the path of the library's copy beside the bindings on its last line (load that one).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
profile=debug
cargo_profile=()
config="$root/mobile/jvm/uniffi.toml"
for arg in "$@"; do
  case "$arg" in
    --release)
      profile=release
      cargo_profile=(--release --config 'profile.release.panic="unwind"')
      ;;
    --android) config="$root/mobile/android/uniffi.toml" ;;
    *)
      echo "generate-bindings: unknown argument \`$arg\` (takes --release, --android)" >&2
      exit 64
      ;;
  esac
done
out="${OUT_DIR:-$root/mobile/generated}"
target="${CARGO_TARGET_DIR:-$root/target}"

# The library without any desktop backend, as a phone gets it, and the bindgen from its own
# crate (uniffi's `cli` feature stays out of the library).
cargo build --locked -q -p openclaw-node --no-default-features --features ffi --lib "${cargo_profile[@]}"
cargo build --locked -q -p openclaw-uniffi-bindgen
lib="$target/$profile/libopenclaw_node.so"
[ -f "$lib" ] || { echo "generate-bindings: $lib was not built" >&2; exit 1; }

mkdir -p "$out"
for lang in kotlin swift python; do
  rm -rf "${out:?}/$lang"
  "$target/debug/uniffi-bindgen" generate "$lib" --language "$lang" --out-dir "$out/$lang" \
    --config "$config" --no-format >/dev/null
done
# A copy of the library beside its bindings: cargo's target/<profile>/libopenclaw_node.so is
# replaced by any later build of the crate with other features (the desktop build has no FFI).
# The Python bindings load it from their own directory.
mkdir -p "$out/lib"
cp "$lib" "$out/lib/"
cp "$lib" "$out/python/"
echo "$out/lib/libopenclaw_node.so"
