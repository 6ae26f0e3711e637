//! Secrets as owner-only files, for machines with no OS keyring (servers, containers): one file
//! per name in a directory of mode 0700, each file 0600, replaced atomically.

use crate::{SecretError, SecretStore, check_name};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    /// Secrets in `dir`, which is made (0700) on the first write.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretError> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }
}

fn file_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SecretError {
    let path = path.to_owned();
    move |source| SecretError::File { what, path, source }
}

impl SecretStore for FileSecrets {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, SecretError> {
        let path = self.path(name)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_error("read", &path)(e)),
        }
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), SecretError> {
        let path = self.path(name)?;
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(&self.dir)
            .map_err(file_error("create the directory", &self.dir))?;
        // Written beside and renamed over, so a crash leaves the old secret or the new one.
        let temp = self.dir.join(format!(".{name}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp).map_err(file_error("write", &temp))?;
        file.write_all(value)
            .and_then(|()| file.sync_all())
            .map_err(file_error("write", &temp))?;
        std::fs::rename(&temp, &path).map_err(file_error("replace", &path))
    }

    fn delete(&self, name: &str) -> Result<bool, SecretError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(file_error("remove", &path)(e)),
        }
    }

    fn place(&self) -> String {
        format!("owner-only files in {}", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_owner_only_and_no_path_escape() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileSecrets::in_dir(tmp.path().join("secrets"));
        assert_eq!(store.get("anthropic").unwrap(), None);
        assert!(!store.delete("anthropic").unwrap());
        store.set("anthropic", b"sk-1").unwrap();
        store.set("anthropic", b"sk-2").unwrap();
        assert_eq!(
            store.get("anthropic").unwrap().as_deref(),
            Some(&b"sk-2"[..])
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&tmp.path().join("secrets")), 0o700);
            assert_eq!(mode(&tmp.path().join("secrets/anthropic")), 0o600);
        }
        assert!(store.delete("anthropic").unwrap());
        assert_eq!(store.get("anthropic").unwrap(), None);
        assert!(matches!(
            store.set("../escape", b"x"),
            Err(SecretError::BadName(_))
        ));
        assert!(!tmp.path().join("escape").exists());
    }
}
