//! The tray app's Linux package: the `.deb` that `cargo tauri build --debug --bundles deb` makes
//! from `src-tauri/tauri.conf.json` (scripts/test.sh builds it before the tests run, since a
//! build inside a test would wait on the target dir the test runner holds). Checked with
//! `dpkg-deb`: its name and version, the WebKitGTK, GTK and AppIndicator runtime packages it
//! depends on, the binary, desktop entry and icons it installs, and the packaged binary runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| openclaw_tests::repo_root().join("target"))
}

fn dpkg_deb(args: &[&str], deb: &PathBuf) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("dpkg-deb (Debian package `dpkg`)");
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_linux_deb_depends_on_webkitgtk_gtk_and_appindicator_and_installs_a_runnable_app() {
    let dir = target_dir().join("debug/bundle/deb");
    let deb = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| {
            panic!(
                "no .deb in {}: build it with `(cd src-tauri && cargo tauri build --debug --bundles deb)` (scripts/test.sh does)",
                dir.display()
            )
        });
    let fields = dpkg_deb(&["-f"], &deb);
    let field = |name: &str| -> String {
        fields
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{fields}"))
            .to_owned()
    };
    // The binary's name (src-tauri/tauri.linux.conf.json), not Tauri's kebab-case of
    // "OpenClaw"; `openclaw` stays free for the server.
    assert_eq!(field("Package"), "openclaw-app", "{fields}");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"), "{fields}");
    let depends = field("Depends");
    for wanted in [
        "libwebkit2gtk-4.1-0",
        "libgtk-3-0",
        "libayatana-appindicator3-1",
    ] {
        assert!(
            depends.contains(wanted),
            "{wanted} not in Depends: {depends}"
        );
    }
    let files = dpkg_deb(&["-c"], &deb);
    for wanted in [
        "usr/bin/openclaw-app",
        "usr/share/applications/openclaw-app.desktop",
        "usr/share/icons/hicolor/128x128/apps/openclaw-app.png",
    ] {
        assert!(
            files.contains(wanted),
            "{wanted} not in the package:\n{files}"
        );
    }
    // What it installs runs: unpacked, the binary answers --version.
    let root = tempfile::tempdir().unwrap();
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(root.path().join("usr/bin/openclaw-app"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("openclaw-app {}", env!("CARGO_PKG_VERSION"))
    );
    let desktop = std::fs::read_to_string(
        root.path()
            .join("usr/share/applications/openclaw-app.desktop"),
    )
    .unwrap();
    for line in [
        "Exec=openclaw-app",
        "Name=OpenClaw",
        "StartupWMClass=openclaw-app",
        "Icon=openclaw-app",
        "Categories=Office;",
    ] {
        assert!(
            desktop.lines().any(|l| l == line),
            "{line} not in:\n{desktop}"
        );
    }
    // Each dependency once (Tauri adds these itself; listing them again doubled them).
    let listed: Vec<&str> = depends.split(", ").collect();
    let mut unique = listed.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(listed.len(), unique.len(), "{depends}");
}
