//! Writing the owner's config file from the app (the Settings page and the first run's setup):
//! [`openclaw_config::edit`] makes the change in the text, keeping its comments; the result must
//! load as the gateway would load it at its next start (the same environment, the same
//! keyring), or nothing is written; and the new text replaces the old in one rename, so a crash
//! leaves one or the other, never half.
//!
//! Every edit names the revision (the SHA-256 of the text) it was made against: a file changed
//! by hand (or by another window) since the page read it is not overwritten.

use openclaw_config::{Change, ConfigError, EditError, Env};
use openclaw_secrets::SecretStore;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a file made from the app starts with.
pub(crate) const NEW_FILE_HEADER: &str = "# OpenClaw's config, made by the app. Edit it by hand or in Settings; comments stay.\n# Keys and tokens are in the OS keyring (${keyring:NAME}), never in this file.\n";

/// The revision of a file that does not exist.
pub(crate) const NO_FILE: &str = "";

/// A file's revision: the SHA-256 of its text, hex.
pub(crate) fn revision_of(text: Option<&str>) -> String {
    text.map_or_else(
        || NO_FILE.to_owned(),
        |t| hex::encode(Sha256::digest(t.as_bytes())),
    )
}

/// Why the file was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("{} changed since this page read it (by hand, or from another window): reload the page and make the change again", file.display())]
    Stale { file: PathBuf },
    #[error("{} cannot be changed from here: {source}", file.display())]
    NotEditable {
        file: PathBuf,
        #[source]
        source: EditError,
    },
    /// The change would leave a configuration the gateway cannot start with.
    #[error("the change was not saved: with it, config would not load:\n{0}")]
    Invalid(ConfigError),
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What an edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// The file's revision now.
    pub revision: String,
    /// Whether the text changed (a change to what is already there writes nothing).
    pub changed: bool,
}

/// Config expanded as the host expands it at start: the process environment and the
/// gateway's secret store (the same OS keyring the host reads `${keyring:NAME}` from).
pub(crate) struct GatewayEnv {
    pub secrets: Option<Arc<dyn SecretStore>>,
}

impl Env for GatewayEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn secret(&self, name: &str) -> Result<Option<String>, String> {
        let Some(store) = &self.secrets else {
            return Err(
                "this gateway keeps no secrets: use ${VAR} with an environment variable".into(),
            );
        };
        match store.get(name) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| format!("the keyring's `{name}` is not text")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The file's text, `None` when it does not exist.
pub(crate) fn read(file: &Path) -> Result<Option<String>, WriteError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(WriteError::Read {
            file: file.to_owned(),
            source,
        }),
    }
}

/// Makes `changes` in `file` (made when missing) if its revision is still `expected` (`None`:
/// whatever it is), checking the result loads under `env`. Blocks: file and keyring calls.
pub(crate) fn edit_file(
    file: &Path,
    expected: Option<&str>,
    changes: &[Change],
    env: &dyn Env,
) -> Result<Written, WriteError> {
    // A config kept as a symlink (into a dotfiles repository, say) is edited where it points.
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let old = read(&file)?;
    let revision = revision_of(old.as_deref());
    if expected.is_some_and(|e| e != revision) {
        return Err(WriteError::Stale { file });
    }
    let old_text = old.as_deref().unwrap_or(NEW_FILE_HEADER);
    let new =
        openclaw_config::edit(old_text, changes).map_err(|source| WriteError::NotEditable {
            file: file.clone(),
            source,
        })?;
    if old.as_deref() == Some(new.as_str()) {
        return Ok(Written {
            revision,
            changed: false,
        });
    }
    openclaw_config::parse(&new, &file.display().to_string(), env).map_err(WriteError::Invalid)?;
    replace(&file, &new).map_err(|source| WriteError::Write {
        file: file.clone(),
        source,
    })?;
    Ok(Written {
        revision: revision_of(Some(&new)),
        changed: true,
    })
}

/// Writes `text` beside `file` and renames it over, keeping the old file's permissions (a new
/// file is the owner's only).
fn replace(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut name = file.file_name().unwrap_or_default().to_owned();
    name.push(".openclaw-edit");
    let temp = file.with_file_name(name);
    let permissions = std::fs::metadata(file).ok().map(|m| m.permissions());
    let written = (|| {
        let mut out = openclaw_fs::create_private(&temp)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        if let Some(permissions) = permissions {
            std::fs::set_permissions(&temp, permissions)?;
        }
        std::fs::rename(&temp, file)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Keys;
    impl Env for Keys {
        fn var(&self, name: &str) -> Option<String> {
            (name == "SET").then(|| "value".into())
        }
        fn secret(&self, name: &str) -> Result<Option<String>, String> {
            Ok((name == "anthropic").then(|| "sk-ant".into()))
        }
    }

    #[test]
    fn an_edit_keeps_comments_checks_the_revision_and_never_writes_a_config_that_would_not_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        let text = "# mine\nbackup:\n  enabled: false # later\n";
        std::fs::write(&file, text).unwrap();
        #[cfg(unix)]
        openclaw_fs::set_mode(&file, 0o640).unwrap();
        let first = revision_of(Some(text));

        let enable = [Change::set(["backup", "enabled"], true)];
        let written = edit_file(&file, Some(&first), &enable, &Keys).unwrap();
        assert!(written.changed);
        let now = std::fs::read_to_string(&file).unwrap();
        assert_eq!(now, "# mine\nbackup:\n  enabled: true # later\n");
        assert_eq!(written.revision, revision_of(Some(&now)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640, "the owner's permissions stay");
        }
        // The same change again writes nothing.
        let again = edit_file(&file, Some(&written.revision), &enable, &Keys).unwrap();
        assert_eq!(
            again,
            Written {
                revision: written.revision.clone(),
                changed: false
            }
        );

        // A page that read the first text is told the file moved on, and changes nothing.
        let err = edit_file(&file, Some(&first), &enable, &Keys).unwrap_err();
        assert!(matches!(err, WriteError::Stale { .. }), "{err}");
        assert!(err.to_string().contains("reload the page"), "{err}");

        // A secret the keyring does not hold, or a bad schedule: refused, the file as it was.
        for bad in [
            Change::set(["providers", "openai", "api_key"], "${keyring:openai}"),
            Change::set(["backup", "schedule"], "at two"),
            Change::set(["channels", "telegram", "token"], "${UNSET_VAR}"),
        ] {
            let err = edit_file(&file, None, &[bad], &Keys).unwrap_err();
            assert!(matches!(err, WriteError::Invalid(_)), "{err}");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), now);
        }
        let ok = [Change::set(
            ["providers", "anthropic", "api_key"],
            "${keyring:anthropic}",
        )];
        edit_file(&file, None, &ok, &Keys).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.yaml"], "no temporary file left");
    }

    #[test]
    fn a_missing_file_is_made_owner_only_and_a_symlink_is_edited_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("config.yaml");
        let made = edit_file(
            &file,
            Some(NO_FILE),
            &[Change::set(["backup", "enabled"], true)],
            &Keys,
        )
        .unwrap();
        assert!(made.changed);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{NEW_FILE_HEADER}backup:\n  enabled: true\n")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let link = dir.path().join("link.yaml");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            edit_file(
                &link,
                None,
                &[Change::set(["backup", "max_backups"], 3u32)],
                &Keys,
            )
            .unwrap();
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert!(
                std::fs::read_to_string(&file)
                    .unwrap()
                    .contains("max_backups: 3")
            );
        }
        // Text that is not YAML is the owner's to fix: left alone.
        std::fs::write(&file, "backup: [\n").unwrap();
        let err = edit_file(
            &file,
            None,
            &[Change::set(["backup", "enabled"], true)],
            &Keys,
        )
        .unwrap_err();
        assert!(matches!(err, WriteError::NotEditable { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "backup: [\n");
    }
}
