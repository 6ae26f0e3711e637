//! Link-time layout of the `openclaw` binary, for a small idle RSS.
//!
//! - `symbol-order.txt` (made by `scripts/symbol-order.sh`) lists the functions that start-up,
//!   `/health`, `/metrics` and a chat turn run; the linker puts them first in `.text`, so the
//!   pages the kernel maps for them (64 KiB at a time) hold little else.
//! - `-z pack-relative-relocs` (DT_RELR) shrinks the 400 KB of relocations the dynamic loader
//!   reads at every exec to a few KB.
//!
//! Only where the toolchain's default linker is LLD (x86_64-unknown-linux-gnu since Rust 1.90):
//! GNU ld knows neither flag's spelling here. `OPENCLAW_PLAIN_LINK=1` turns both off, for a
//! toolchain set up with another linker.

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=OPENCLAW_PLAIN_LINK");
    let target = std::env::var("TARGET").unwrap_or_default();
    let plain = std::env::var("OPENCLAW_PLAIN_LINK").is_ok_and(|v| v == "1");
    if target != "x86_64-unknown-linux-gnu" || plain {
        return;
    }
    // Cargo's run-time value: a build script reused from another checkout keeps its old env!.
    let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = std::path::Path::new(&manifest_dir).join("symbol-order.txt");
    if order.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=openclaw=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Functions renamed or inlined since the list was made are expected, not news.
        println!("cargo:rustc-link-arg-bin=openclaw=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-arg-bin=openclaw=-Wl,-z,pack-relative-relocs");
}
