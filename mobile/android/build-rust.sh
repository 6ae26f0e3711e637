#!/usr/bin/env bash
# With the Android NDK and cargo-ndk (cargo install cargo-ndk; rustup target add
# aarch64-linux-android x86_64-linux-android): builds libopenclaw_node.so for each ABI into
# app/build/jniLibs and the Kotlin bindings (android = true) into app/build/generated/uniffi,
# both from the same sources. Then: ./gradlew :app:assembleDebug
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
cargo ndk -t arm64-v8a -t x86_64 -o "$here/app/build/jniLibs" build --locked --release \
  --config 'profile.release.panic="unwind"' -p openclaw-node --no-default-features --features ffi --lib
OUT_DIR="$here/app/build/generated-all" "$root/mobile/generate-bindings.sh" --android >/dev/null
rm -rf "$here/app/build/generated/uniffi"
mkdir -p "$here/app/build/generated"
cp -r "$here/app/build/generated-all/kotlin" "$here/app/build/generated/uniffi"
