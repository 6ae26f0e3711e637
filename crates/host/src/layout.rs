//! The data layout: where a gateway with a given data dir and config keeps its database, logs,
//! audit log, models and backups — one policy for the gateway, the CLI's backup and restore,
//! and doctor.

use openclaw_backup::Include;
use openclaw_config::{BackupPart, Config};
use std::path::{Path, PathBuf};

use crate::paths::under_data_dir;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    pub data_dir: PathBuf,
    /// The directory of `openclaw.db` (`memory.storage_path`, else the data dir).
    pub db_dir: PathBuf,
    /// `logging.file`, else `logs/openclaw.log`.
    pub log_file: PathBuf,
    /// `logging.audit.file`, else `logs/audit.log`; `None` when auditing is off.
    pub audit_file: Option<PathBuf>,
    /// Downloaded local models.
    pub models_dir: PathBuf,
    /// `backup.path`, else `backups`.
    pub backups: PathBuf,
    /// Chat channels' credentials.
    pub channels: PathBuf,
}

impl DataLayout {
    pub fn resolve(data_dir: &Path, config: &Config) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            db_dir: under_data_dir(data_dir, config.memory.storage_path.as_deref(), ""),
            log_file: under_data_dir(
                data_dir,
                config.logging.file.as_deref(),
                "logs/openclaw.log",
            ),
            audit_file: config.logging.audit.enabled.then(|| {
                under_data_dir(
                    data_dir,
                    config.logging.audit.file.as_deref(),
                    "logs/audit.log",
                )
            }),
            models_dir: data_dir.join("models"),
            backups: under_data_dir(data_dir, config.backup.path.as_deref(), "backups"),
            channels: data_dir.join("channels"),
        }
    }

    pub fn db_file(&self) -> PathBuf {
        self.db_dir.join(openclaw_store::DB_FILE)
    }

    /// What a backup reads and a restore writes; `out` replaces the backups directory.
    pub fn backup(
        &self,
        config_file: Option<PathBuf>,
        out: Option<PathBuf>,
    ) -> openclaw_backup::Layout {
        openclaw_backup::Layout {
            db: self.db_file(),
            config: config_file,
            channels: self.channels.clone(),
            backups: out.unwrap_or_else(|| self.backups.clone()),
            data_dir: self.data_dir.clone(),
        }
    }
}

/// What `backup.include` asks a backup to hold.
pub fn backup_include(config: &Config) -> Include {
    let has = |p| config.backup.include.contains(&p);
    Include {
        memory: has(BackupPart::Memory),
        sessions: has(BackupPart::Sessions),
        config: has(BackupPart::Config),
        channel_auth: has(BackupPart::ChannelAuth),
    }
}

/// Removes what killed backups and restores left behind; at gateway start, after the
/// interrupted-restore roll-back and before anything new is written. Never stops the start: a
/// leftover that cannot be removed is a warning.
pub fn sweep_leftovers(layout: &openclaw_backup::Layout) -> Result<(), openclaw_backup::Error> {
    let swept = openclaw_backup::sweep(layout)?;
    for path in &swept.removed {
        tracing::info!(path = %path.display(), "removed the leftover of an interrupted backup, verify or restore");
    }
    for (path, why) in &swept.failed {
        tracing::warn!(path = %path.display(), error = %why, "cannot remove the leftover of an interrupted backup or restore; remove it by hand");
    }
    if swept.backups_busy {
        tracing::info!(dir = %layout.backups.display(), "a backup is being written; its directory is swept at the next start");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_sit_in_the_data_dir_and_config_moves_them() {
        let d = Path::new("/data");
        let mut config = Config::default();
        let l = DataLayout::resolve(d, &config);
        assert_eq!(l.db_file(), d.join(openclaw_store::DB_FILE));
        assert_eq!(l.log_file, d.join("logs/openclaw.log"));
        assert_eq!(l.backups, d.join("backups"));
        config.memory.storage_path = Some("/var/lib/db".into());
        config.backup.path = Some("bk".into());
        config.logging.audit.enabled = false;
        let l = DataLayout::resolve(d, &config);
        assert_eq!(l.db_dir, PathBuf::from("/var/lib/db"));
        assert_eq!(l.backups, d.join("bk"));
        assert_eq!(l.audit_file, None);
        let b = l.backup(None, Some(PathBuf::from("/out")));
        assert_eq!(b.backups, PathBuf::from("/out"));
    }
}
