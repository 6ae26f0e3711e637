//! Fetching the built-in local model from the app (`#setup`, Settings): `POST
//! /api/models/fetch` starts the download in a gateway task ([`openclaw_models::Fetcher`]), and
//! `GET /api/models/fetch` says where it is, for the page's progress bar. One fetch runs at a
//! time; asking again while it runs answers its progress. The task is the gateway's (a closed
//! window does not stop it; stopping the gateway does).
//!
//! With no provider configured the agent was built without the model: the answer then says
//! `restart: true`, and choosing the model (`POST /api/setup {"choice": "local"}`, which the
//! setup and the Settings page do once the fetch is done) asks the embedder for the restart
//! ([`crate::GatewayEvent::RestartNeeded`]); a server's owner restarts the service. The fetch
//! itself restarts nothing, so the page that follows it sees it finish.

use crate::GatewayState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use openclaw_models::{BUILT_IN, Fetcher, Progress};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::watch;

/// The fetch under way or last finished, if any.
#[derive(Debug, Default)]
pub(crate) struct ModelFetch {
    progress: std::sync::Mutex<Option<watch::Receiver<Progress>>>,
}

impl ModelFetch {
    fn current(&self) -> Progress {
        match self.progress.lock() {
            Ok(p) => p.as_ref().map_or(Progress::Idle, |rx| rx.borrow().clone()),
            Err(_) => Progress::Idle,
        }
    }
}

async fn answer(state: &GatewayState, status: StatusCode) -> Response {
    let progress = state.model_fetch.current();
    let path = crate::setup::models_dir(state).join(BUILT_IN.file_name);
    let restart = matches!(progress, Progress::Done { .. }) && state.agent.awaits_default_model();
    // A stat: off the async workers, as the setup's own look at the models dir.
    let present = tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file());
    (
        status,
        Json(json!({
            "fetch": progress,
            "restart": restart,
            "model": {
                "title": BUILT_IN.title,
                "file": BUILT_IN.file_name,
                "size_bytes": BUILT_IN.size,
                "path": path,
                "present": present,
            },
        })),
    )
        .into_response()
}

/// `GET /api/models/fetch`.
pub async fn status(State(state): State<Arc<GatewayState>>) -> Response {
    answer(&state, StatusCode::OK).await
}

/// `POST /api/models/fetch`: 202 when a fetch started, 200 with its progress when one runs
/// already.
pub async fn start(State(state): State<Arc<GatewayState>>) -> Response {
    let index = state
        .model_index
        .clone()
        .unwrap_or_else(openclaw_models::index_from_env);
    // Making the HTTP client reads the system's CA certificates: off the async workers.
    let made = tokio::task::spawn_blocking(move || Fetcher::new(&index)).await;
    let fetcher = match made {
        Ok(Ok(f)) => f,
        Err(e) => {
            return crate::http::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                openclaw_protocol::ErrorCode::Internal,
                format!("the fetch's task failed: {e}"),
            );
        }
        Ok(Err(e)) => {
            return crate::http::error(
                StatusCode::SERVICE_UNAVAILABLE,
                openclaw_protocol::ErrorCode::Unavailable,
                e.to_string(),
            );
        }
    };
    // The lock is let go before answering (`answer` takes it again).
    let started = match state.model_fetch.progress.lock() {
        Ok(mut slot) if !slot.as_ref().is_some_and(|rx| rx.borrow().is_running()) => {
            let (tx, rx) = watch::channel(Progress::Looking {
                index: fetcher.index().to_owned(),
            });
            *slot = Some(rx);
            Some(tx)
        }
        _ => None,
    };
    let Some(tx) = started else {
        return answer(&state, StatusCode::OK).await;
    };
    state.audit.record(
        "model.fetch",
        json!({"model": BUILT_IN.file_name, "index": fetcher.index()}),
    );
    let task_state = state.clone();
    state.tasks.spawn(async move {
        let dir = crate::setup::models_dir(&task_state);
        match fetcher.fetch(&BUILT_IN, &dir, &tx).await {
            Ok(path) => {
                task_state.audit.record(
                    "model.fetched",
                    json!({"model": BUILT_IN.file_name, "path": path}),
                );
                if task_state.agent.awaits_default_model() {
                    tracing::info!(path = %path.display(), "the built-in model was fetched: it answers after a restart");
                } else {
                    tracing::info!(path = %path.display(), "the built-in model was fetched");
                }
            }
            Err(e) => {
                task_state.audit.record(
                    "model.fetch_failed",
                    json!({"model": BUILT_IN.file_name, "error": e.to_string()}),
                );
                tracing::warn!(error = %e, "fetching the built-in model failed");
            }
        }
        // `tx` ends here; the receiver keeps the last progress for later questions.
    });
    answer(&state, StatusCode::ACCEPTED).await
}

#[cfg(test)]
mod tests {
    /// The file the fetch puts in place is the one the agent looks for with no provider.
    #[test]
    fn the_fetched_model_is_the_agents_default_one() {
        assert_eq!(
            openclaw_models::BUILT_IN.file_name,
            openclaw_agent::provider::DEFAULT_MODEL_FILE
        );
    }
}
