//! What the `local` provider reports about its model, and how a model path is resolved. These
//! live outside the feature gate so the gateway can show a local model's state (or its absence)
//! in every build.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The model the README's run command (`scripts/fetch-model.sh`) puts in `<data dir>/models/`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where a local model stands. `Absent`: no file to load; `Unloaded`: on disk, not in memory
/// (never used yet, or released after `idle_unload_seconds`); `Failed`: the last load failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelState {
    Absent,
    Unloaded,
    Loading,
    Ready,
    Failed,
}

impl ModelState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Unloaded => "unloaded",
            Self::Loading => "loading",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

/// A local model as `/health` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalModelStatus {
    pub provider: String,
    pub path: PathBuf,
    pub state: ModelState,
    /// Bytes held by the loaded weights (0 unless ready).
    pub memory_bytes: u64,
    /// Whether the model's chat template takes tools; `None` until the model has been loaded
    /// once (the template lives in the GGUF).
    pub tools: Option<bool>,
    /// How long the last successful load took.
    pub load_time: Option<Duration>,
    /// Requests waiting for the worker (not counting the one it runs).
    pub queued: usize,
    /// Why the last load failed (the file is named).
    pub error: Option<String>,
}

/// The settings of one `local` provider, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    pub model_path: PathBuf,
    /// Context window (prompt + reply) in tokens.
    pub context_tokens: u32,
    pub threads: u32,
    /// Longest reply in tokens.
    pub max_tokens: u32,
    /// Release the model after this long without a request.
    pub idle_unload: Duration,
    /// Requests that may wait behind the one being generated; more are refused as busy.
    pub queue_size: usize,
}

impl LocalSettings {
    pub const DEFAULT_CONTEXT_TOKENS: u32 = 2048;
    pub const DEFAULT_MAX_TOKENS: u32 = 512;
    pub const DEFAULT_IDLE_UNLOAD_SECS: u64 = 300;
    pub const DEFAULT_QUEUE_SIZE: usize = 4;

    /// Defaults for `model_path`: 2048-token context, 512-token replies, released after 5 min
    /// idle, threads = available cores up to 4 (more rarely helps a small model on a laptop).
    pub fn new(model_path: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            model_path,
            context_tokens: Self::DEFAULT_CONTEXT_TOKENS,
            threads: cores.clamp(1, 4) as u32,
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            idle_unload: Duration::from_secs(Self::DEFAULT_IDLE_UNLOAD_SECS),
            queue_size: Self::DEFAULT_QUEUE_SIZE,
        }
    }
}

/// `model_path` as configured: absolute as is; relative to the models directory when one is
/// known (so `model_path: SmolLM2-135M-Instruct.Q4_1.gguf` names a file `openclaw models add`
/// put there), else to the working directory. Missing: the default model in the models dir.
pub fn resolve_model_path(configured: Option<&str>, models_dir: Option<&Path>) -> Option<PathBuf> {
    match (configured, models_dir) {
        (Some(p), _) if Path::new(p).is_absolute() => Some(PathBuf::from(p)),
        (Some(p), Some(dir)) => Some(dir.join(p)),
        (Some(p), None) => Some(PathBuf::from(p)),
        (None, Some(dir)) => Some(dir.join(DEFAULT_MODEL_FILE)),
        (None, None) => None,
    }
}

/// The model to use when no provider is configured: the default model in `models_dir`, else the
/// first `.gguf` there by name. `None` when the directory holds none.
pub fn default_model(models_dir: &Path) -> Option<PathBuf> {
    let preferred = models_dir.join(DEFAULT_MODEL_FILE);
    if preferred.is_file() {
        return Some(preferred);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(models_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    found.sort();
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_models_dir() {
        let dir = Path::new("/data/models");
        assert_eq!(
            resolve_model_path(Some("/abs/m.gguf"), Some(dir)),
            Some(PathBuf::from("/abs/m.gguf"))
        );
        assert_eq!(
            resolve_model_path(Some("m.gguf"), Some(dir)),
            Some(dir.join("m.gguf"))
        );
        assert_eq!(
            resolve_model_path(None, Some(dir)),
            Some(dir.join(DEFAULT_MODEL_FILE))
        );
        assert_eq!(resolve_model_path(None, None), None);
    }

    #[test]
    fn default_model_prefers_smollm_then_first_gguf() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(default_model(dir.path()), None);
        std::fs::write(dir.path().join("b.gguf"), b"x")?;
        std::fs::write(dir.path().join("a.gguf"), b"x")?;
        std::fs::write(dir.path().join("notes.txt"), b"x")?;
        assert_eq!(default_model(dir.path()), Some(dir.path().join("a.gguf")));
        std::fs::write(dir.path().join(DEFAULT_MODEL_FILE), b"x")?;
        assert_eq!(
            default_model(dir.path()),
            Some(dir.path().join(DEFAULT_MODEL_FILE))
        );
        assert_eq!(default_model(&dir.path().join("missing")), None);
        Ok(())
    }
}
