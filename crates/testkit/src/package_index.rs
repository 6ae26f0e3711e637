//! A loopback Python package index: PEP 691's JSON simple API (`GET /simple/<project>/` with
//! `Accept: application/vnd.pypi.simple.v1+json`, HTML otherwise, as PyPI does) and the files it
//! lists, with the failures a real index or its CDN shows: a missing project, a server error, a
//! download that breaks off, a file that does not match its listed hash, a slow transfer.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fake misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexFailure {
    /// Answers as PyPI does.
    #[default]
    None,
    /// The project page is a 404.
    NoProject,
    /// The project page is a 503 (PyPI's "backend is unhealthy").
    Unavailable,
    /// Files are served, but each one's listed SHA-256 is another file's.
    WrongHash,
    /// File downloads stop after this many bytes (the connection closes mid-body).
    BreakAfter(usize),
}

struct Listing {
    project: String,
    files: Vec<(String, Bytes)>,
    failure: IndexFailure,
    /// Pause between 64 KiB chunks of a file (so progress can be watched).
    chunk_delay: Duration,
    /// Paths asked for, in order.
    requests: Vec<String>,
}

type Shared = Arc<Mutex<Listing>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Listing> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fake index; it serves until dropped (the thread version) or its runtime ends.
pub struct FakePackageIndex {
    addr: SocketAddr,
    shared: Shared,
    _runtime: Option<crate::RuntimeThread>,
}

impl std::fmt::Debug for FakePackageIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePackageIndex")
            .field("addr", &self.addr)
            .finish()
    }
}

/// A wheel (a zip) holding `files` (path, contents), stored uncompressed as many wheels' large
/// data files are.
pub fn wheel(files: &[(&str, &[u8])]) -> Vec<u8> {
    zip_of(files, zip::CompressionMethod::Stored)
}

/// [`wheel`], deflated.
pub fn deflated_wheel(files: &[(&str, &[u8])]) -> Vec<u8> {
    zip_of(files, zip::CompressionMethod::Deflated)
}

fn zip_of(files: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for (path, data) in files {
            zip.start_file(*path, options).expect("zip entry");
            zip.write_all(data).expect("zip data");
        }
        zip.finish().expect("zip end");
    }
    out.into_inner()
}

impl FakePackageIndex {
    /// Serves `project` with `files` (file name, contents) on the current tokio runtime.
    pub async fn start(project: &str, files: Vec<(String, Vec<u8>)>) -> Self {
        let shared = shared(project, files);
        let addr = crate::serve_here("fake package index", router(shared.clone())).await;
        Self {
            addr,
            shared,
            _runtime: None,
        }
    }

    /// Serves from a thread of its own (for synchronous tests and other processes).
    pub fn start_in_thread(project: &str, files: Vec<(String, Vec<u8>)>) -> Self {
        let shared = shared(project, files);
        let app = router(shared.clone());
        let (addr, runtime) = crate::serve_in_thread("fake package index", app);
        Self {
            addr,
            shared,
            _runtime: Some(runtime),
        }
    }

    /// The simple API's URL, as pip's `--index-url` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    pub fn fail(&self, failure: IndexFailure) {
        lock(&self.shared).failure = failure;
    }

    pub fn set_chunk_delay(&self, delay: Duration) {
        lock(&self.shared).chunk_delay = delay;
    }

    /// The paths asked for so far.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared).requests.clone()
    }

    /// How many file downloads were asked for so far.
    pub fn downloads(&self) -> usize {
        lock(&self.shared)
            .requests
            .iter()
            .filter(|r| r.starts_with("/files/"))
            .count()
    }
}

fn shared(project: &str, files: Vec<(String, Vec<u8>)>) -> Shared {
    Arc::new(Mutex::new(Listing {
        project: project.to_owned(),
        files: files
            .into_iter()
            .map(|(n, d)| (n, Bytes::from(d)))
            .collect(),
        failure: IndexFailure::None,
        chunk_delay: Duration::ZERO,
        requests: Vec::new(),
    }))
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/simple/{project}/", get(project_page))
        .route("/files/{name}", get(file))
        .with_state(shared)
}

async fn project_page(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Response {
    let listing = {
        let mut l = lock(&shared);
        l.requests.push(format!("/simple/{project}/"));
        if project != l.project || l.failure == IndexFailure::NoProject {
            return (StatusCode::NOT_FOUND, "Not Found").into_response();
        }
        if l.failure == IndexFailure::Unavailable {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Backend is unhealthy\n\nError 503 Backend is unhealthy",
            )
                .into_response();
        }
        let wrong = l.failure == IndexFailure::WrongHash;
        l.files
            .iter()
            .map(|(name, data)| {
                let hashed: &[u8] = if wrong { b"another file" } else { data };
                (name.clone(), hex(hashed), data.len())
            })
            .collect::<Vec<_>>()
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/vnd.pypi.simple.v1+json"));
    if !wants_json {
        // PEP 503 HTML, PyPI's default.
        let links: String = listing
            .iter()
            .map(|(name, sha, _)| {
                format!("<a href=\"../../files/{name}#sha256={sha}\">{name}</a><br/>\n")
            })
            .collect();
        return (
            [(header::CONTENT_TYPE, "text/html")],
            format!(
                "<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{links}</body></html>"
            ),
        )
            .into_response();
    }
    let files: Vec<_> = listing
        .iter()
        .map(|(name, sha, size)| {
            // Relative, as PEP 691 allows (PyPI itself gives absolute CDN URLs).
            json!({"filename": name, "url": format!("../../files/{name}"),
                   "hashes": {"sha256": sha}, "requires-python": ">=3.9",
                   "size": size, "yanked": false})
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/vnd.pypi.simple.v1+json")],
        json!({"meta": {"api-version": "1.1"}, "name": project, "files": files,
               "versions": ["0.1.2"]})
        .to_string(),
    )
        .into_response()
}

async fn file(State(shared): State<Shared>, Path(name): Path<String>) -> Response {
    let (data, failure, delay) = {
        let mut l = lock(&shared);
        l.requests.push(format!("/files/{name}"));
        let Some((_, data)) = l.files.iter().find(|(n, _)| *n == name) else {
            return (StatusCode::NOT_FOUND, "Not Found").into_response();
        };
        (data.clone(), l.failure, l.chunk_delay)
    };
    let full = data.len();
    let sent = match failure {
        IndexFailure::BreakAfter(n) => data.slice(..n.min(full)),
        _ => data,
    };
    const CHUNK: usize = 64 * 1024;
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..sent.len())
        .step_by(CHUNK)
        .map(|at| Ok(sent.slice(at..(at + CHUNK).min(sent.len()))))
        .collect();
    let broken = matches!(failure, IndexFailure::BreakAfter(_));
    let body = futures_util::StreamExt::then(stream::iter(chunks), move |c| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        c
    });
    let tail = stream::iter(broken.then(|| {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the fake index broke the download off",
        ))
    }));
    let body = futures_util::StreamExt::chain(body, tail);
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            // The full length, as a CDN says before the connection drops.
            (header::CONTENT_LENGTH, full.to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
