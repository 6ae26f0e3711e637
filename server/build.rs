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
    // A path relative to the workspace root, where cargo runs rustc (and so the linker): cargo
    // reuses this script's output when the same target dir serves a checkout elsewhere (CI), so
    // an absolute path here would point into the other checkout.
    let here = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    if std::path::Path::new(&here)
        .join("symbol-order.txt")
        .is_file()
    {
        println!(
            "cargo:rustc-link-arg-bin=openclaw=-Wl,--symbol-ordering-file=server/symbol-order.txt"
        );
        // Functions renamed or inlined since the list was made are expected, not news.
        println!("cargo:rustc-link-arg-bin=openclaw=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-arg-bin=openclaw=-Wl,-z,pack-relative-relocs");
}
