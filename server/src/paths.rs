//! Where the config file and the data dir are for this invocation (flags, environment, the
//! per-user defaults), and loading the config from them. The policy itself is the host's.

use crate::Global;
use anyhow::{Result, anyhow};
use std::path::PathBuf;

pub use openclaw_host::config_file::{LoadError, Loaded};
pub use openclaw_host::paths::{gateway_addr, lock_data_dir, under_data_dir};

/// The config file in effect: `--config` / `$OPENCLAW_CONFIG`, else the per-user file if it
/// exists, else none (defaults).
pub fn config_file(global: &Global) -> Option<PathBuf> {
    global
        .config
        .clone()
        .or_else(openclaw_host::paths::user_config_file)
}

pub fn data_dir(global: &Global) -> Result<PathBuf> {
    if let Some(d) = &global.data_dir {
        return Ok(d.clone());
    }
    openclaw_host::paths::user_data_dir()
        .ok_or_else(|| anyhow!("cannot find a home directory for the data dir: pass --data-dir DIR (or set OPENCLAW_DATA_DIR)"))
}

pub fn load_config(global: &Global) -> std::result::Result<Loaded, LoadError> {
    openclaw_host::config_file::load(config_file(global).as_deref())
}
