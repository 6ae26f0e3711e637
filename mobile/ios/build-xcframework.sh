#!/usr/bin/env bash
# On a Mac with Xcode and the iOS Rust targets (rustup target add aarch64-apple-ios
# aarch64-apple-ios-sim): builds the node core's static library for device and simulator, the
# Swift bindings from the same build, and build/OpenClawNodeFFI.xcframework for Package.swift.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"
for t in aarch64-apple-ios aarch64-apple-ios-sim; do
  cargo build --locked --release --config 'profile.release.panic="unwind"' \
    -p openclaw-node --no-default-features --features ffi --lib --target "$t"
done
# Bindings from the simulator build's library (the same code as the device's).
cargo build --locked -p openclaw-uniffi-bindgen
gen="$here/build/generated"
rm -rf "$gen" && mkdir -p "$gen"
"$target/debug/uniffi-bindgen" generate "$target/aarch64-apple-ios-sim/release/libopenclaw_node.a" \
  --language swift --out-dir "$gen" --config "$root/mobile/jvm/uniffi.toml"
mkdir -p "$gen/include"
cp "$gen/OpenClawNodeFFI.h" "$gen/include/"
cp "$gen/OpenClawNodeFFI.modulemap" "$gen/include/module.modulemap"
cp "$gen/OpenClawNode.swift" "$here/Sources/OpenClawShell/OpenClawNode.generated.swift"
rm -rf "$here/build/OpenClawNodeFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$target/aarch64-apple-ios/release/libopenclaw_node.a" -headers "$gen/include" \
  -library "$target/aarch64-apple-ios-sim/release/libopenclaw_node.a" -headers "$gen/include" \
  -output "$here/build/OpenClawNodeFFI.xcframework"
echo "$here/build/OpenClawNodeFFI.xcframework"
