//! Where the config file and the data dir are, and loading the config from them.

use crate::Global;
use anyhow::{Context, Result, anyhow};
use openclaw_config::{Config, ConfigError, ProcessEnv};
use std::path::{Path, PathBuf};

/// The config file in effect: `--config` / `$OPENCLAW_CONFIG`, else the per-user file if it
/// exists, else none (defaults).
pub fn config_file(global: &Global) -> Option<PathBuf> {
    if let Some(p) = &global.config {
        return Some(p.clone());
    }
    let user = directories::ProjectDirs::from("", "", "openclaw")?
        .config_dir()
        .join("config.yaml");
    user.is_file().then_some(user)
}

pub fn data_dir(global: &Global) -> Result<PathBuf> {
    if let Some(d) = &global.data_dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("", "", "openclaw")
        .map(|d| d.data_dir().to_owned())
        .ok_or_else(|| anyhow!("cannot find a home directory for the data dir: pass --data-dir DIR (or set OPENCLAW_DATA_DIR)"))
}

/// A loaded configuration and where it came from.
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
    /// The file's text, for the change audit.
    pub text: Option<String>,
}

pub enum LoadError {
    /// The file could not be read.
    Read(anyhow::Error),
    /// The file (or the environment overrides) is invalid.
    Invalid(ConfigError),
}

pub fn load_config(global: &Global) -> std::result::Result<Loaded, LoadError> {
    let file = config_file(global);
    let (mut config, text) = match &file {
        None => (Config::default(), None),
        Some(path) => {
            let text = read_config(path).map_err(LoadError::Read)?;
            let config = openclaw_config::parse(&text, &path.display().to_string(), &ProcessEnv)
                .map_err(LoadError::Invalid)?;
            (config, Some(text))
        }
    };
    openclaw_config::apply_env_overrides(&mut config, &ProcessEnv).map_err(LoadError::Invalid)?;
    Ok(Loaded { config, file, text })
}

pub fn read_config(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read config file {}{}",
            path.display(),
            if path.exists() {
                ""
            } else {
                " (it does not exist; run without --config to use the defaults)"
            }
        )
    })
}

/// Where the gateway listens, as a client should dial it.
pub fn gateway_addr(config: &Config) -> String {
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

/// Resolves a path from config: absolute as is, relative to the data dir otherwise.
pub fn under_data_dir(data_dir: &Path, configured: Option<&str>, default: &str) -> PathBuf {
    match configured {
        Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
        Some(p) => data_dir.join(p),
        None => data_dir.join(default),
    }
}

/// Takes the data dir's lock (`.gateway.lock`, an exclusive `flock`); `None` when another
/// process holds it. The lock goes with the returned file.
pub fn lock_data_dir(data_dir: &Path) -> Result<Option<std::fs::File>> {
    let path = data_dir.join(".gateway.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(anyhow!("cannot lock {}: {e}", path.display())),
    }
}
