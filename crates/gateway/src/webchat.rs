//! The WebChat page: the files of `ui/`, compiled into the binary so a single executable serves
//! them (no build step, no files to install).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../../ui/index.html");
const APP: &str = include_str!("../../../ui/app.js");
const CLIENT: &str = include_str!("../../../ui/client.js");
const STYLE: &str = include_str!("../../../ui/style.css");
const PAGES: &str = include_str!("../../../ui/pages.js");
const API: &str = include_str!("../../../ui/api.js");
const SETTINGS: &str = include_str!("../../../ui/settings.js");
const SETUP: &str = include_str!("../../../ui/setup.js");
const MODEL_FETCH: &str = include_str!("../../../ui/model_fetch.js");

/// The page may load only its own scripts and talk only to its own gateway.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    file_cached(content_type, "no-cache", body)
}

fn file_cached(
    content_type: &'static str,
    cache: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body.into(),
    )
        .into_response()
}

/// Where the page's token goes: a `<meta name="openclaw-token">` the page reads.
const TOKEN_SLOT: &str = "<meta name=\"openclaw-token\" content=\"\">";

/// The page, carrying the generated token when it is asked for directly over loopback: a
/// same-origin read, which no other site's page can make (the `Host` and `Origin` rules stop
/// rebinding and cross-origin requests before this). A configured token is never put in the
/// page; the user enters it once.
pub async fn index(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::GatewayState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    match state.access.page_token() {
        Some(token) if state.access.is_direct_loopback(&headers) => {
            let page = INDEX.replacen(
                TOKEN_SLOT,
                &format!("<meta name=\"openclaw-token\" content=\"{token}\">"),
                1,
            );
            // The token is in the page: no cache may keep it.
            file_cached("text/html; charset=utf-8", "no-store", page)
        }
        _ => file("text/html; charset=utf-8", INDEX),
    }
}

pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match name.as_str() {
        "app.js" => file("text/javascript; charset=utf-8", APP),
        "client.js" => file("text/javascript; charset=utf-8", CLIENT),
        "pages.js" => file("text/javascript; charset=utf-8", PAGES),
        "api.js" => file("text/javascript; charset=utf-8", API),
        "settings.js" => file("text/javascript; charset=utf-8", SETTINGS),
        "setup.js" => file("text/javascript; charset=utf-8", SETUP),
        "model_fetch.js" => file("text/javascript; charset=utf-8", MODEL_FETCH),
        "style.css" => file("text/css; charset=utf-8", STYLE),
        _ => crate::http::error(
            StatusCode::NOT_FOUND,
            openclaw_protocol::ErrorCode::NotFound,
            format!("no UI file named {name}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    /// A file added to `ui/` and not here would fail to load in the page (an ES module import
    /// of a 404 stops every page's script): each one must be served.
    #[tokio::test]
    async fn every_file_of_ui_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("ui dir") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name == "index.html" {
                continue;
            }
            let answer = super::asset(axum::extract::Path(name.clone())).await;
            assert_eq!(answer.status(), axum::http::StatusCode::OK, "ui/{name}");
            names.push(name);
        }
        assert!(names.len() >= 7, "{names:?}");
    }
}
