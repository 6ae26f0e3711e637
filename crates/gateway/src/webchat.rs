//! The WebChat page: the files of `ui/`, compiled into the binary so a single executable serves
//! them (no build step, no files to install).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../../ui/index.html");
const APP: &str = include_str!("../../../ui/app.js");
const CLIENT: &str = include_str!("../../../ui/client.js");
const STYLE: &str = include_str!("../../../ui/style.css");

/// The page may load only its own scripts and talk only to its own gateway.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match name.as_str() {
        "app.js" => file("text/javascript; charset=utf-8", APP),
        "client.js" => file("text/javascript; charset=utf-8", CLIENT),
        "style.css" => file("text/css; charset=utf-8", STYLE),
        _ => crate::routes::error(
            StatusCode::NOT_FOUND,
            openclaw_protocol::ErrorCode::NotFound,
            format!("no UI file named {name}"),
        ),
    }
}
