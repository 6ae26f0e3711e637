//! `uniffi-bindgen` for `mobile/generate-bindings.sh`: reads the uniffi metadata out of a built
//! `libopenclaw_node.so` and writes its Swift, Kotlin or Python bindings. Its own crate because
//! uniffi's `cli` feature on the library tripled its build time and grew the `.so` sixfold.

fn main() {
    uniffi::uniffi_bindgen_main()
}
