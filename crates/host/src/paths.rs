//! Where things are: the per-user config file and data dir, paths relative to the data dir,
//! the address a client dials, and the data dir's lock.

use std::path::{Path, PathBuf};

/// Where the per-user config file is (`~/.config/openclaw/config.yaml` on Linux), whether or
/// not it exists.
pub fn user_config_path() -> Option<PathBuf> {
    Some(
        directories::ProjectDirs::from("", "", "openclaw")?
            .config_dir()
            .join("config.yaml"),
    )
}

/// The per-user config file when it exists.
pub fn user_config_file() -> Option<PathBuf> {
    user_config_path().filter(|p| p.is_file())
}

/// The per-user data dir (`~/.local/share/openclaw` on Linux); `None` without a home.
pub fn user_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "openclaw").map(|d| d.data_dir().to_owned())
}

/// Resolves a path from config: absolute as is, relative to the data dir otherwise.
pub fn under_data_dir(data_dir: &Path, configured: Option<&str>, default: &str) -> PathBuf {
    match configured {
        Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
        Some(p) => data_dir.join(p),
        None => data_dir.join(default),
    }
}

/// Where the gateway listens, as a client should dial it.
pub fn gateway_addr(config: &openclaw_config::Config) -> String {
    let host = match config.gateway.host.as_str() {
        "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        h => h,
    };
    if host.contains(':') {
        format!("[{host}]:{}", config.gateway.port)
    } else {
        format!("{host}:{}", config.gateway.port)
    }
}

/// Takes the data dir's lock (`.gateway.lock`, an exclusive `flock`); `None` when another
/// process (or another gateway of this one) holds it. The lock goes with the returned file.
pub fn lock_data_dir(data_dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    let path = data_dir.join(".gateway.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_under_the_data_dir() {
        let d = Path::new("/data");
        assert_eq!(under_data_dir(d, None, "logs/a.log"), d.join("logs/a.log"));
        assert_eq!(under_data_dir(d, Some("x/y"), "z"), d.join("x/y"));
        assert_eq!(under_data_dir(d, Some("/abs"), "z"), PathBuf::from("/abs"));
    }

    #[test]
    fn a_locked_data_dir_cannot_be_locked_again_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_data_dir(dir.path()).unwrap().expect("free at first");
        assert!(lock_data_dir(dir.path()).unwrap().is_none());
        drop(first);
        assert!(lock_data_dir(dir.path()).unwrap().is_some());
    }

    #[test]
    fn clients_dial_loopback_for_a_wildcard_bind() {
        let mut c = openclaw_config::Config::default();
        c.gateway.host = "0.0.0.0".into();
        c.gateway.port = 1;
        assert_eq!(gateway_addr(&c), "127.0.0.1:1");
        c.gateway.host = "::".into();
        assert_eq!(gateway_addr(&c), "[::1]:1");
    }
}
