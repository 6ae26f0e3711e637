//! The first run's setup, for the tray app's window (`#setup`): `GET /api/setup` says whether it
//! is needed (no provider configured and no earlier setup finished) and what is at hand (the
//! built-in local model, where config is written); `POST /api/setup` takes the owner's choice:
//! the built-in local model, or an Anthropic / OpenAI key, which goes to the secret store (the
//! OS keyring) while config gets a provider that refers to it (`${keyring:NAME}`), never the key.
//!
//! A config change needs a restart to take effect: the answer says so, and
//! [`GatewayEvent::RestartNeeded`] tells the embedder (the tray app restarts its gateway; a
//! server's owner restarts the service).

use crate::config_write::{GatewayEnv, WriteError};
use crate::http::error;
use crate::{GatewayEvent, GatewayState, routes::read_json};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use openclaw_config::Change;
use openclaw_protocol::ErrorCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest `POST /api/setup` body: a choice and a key.
pub const MAX_SETUP_BODY: usize = 16 * 1024;

/// The file in the data dir that says the setup was finished (so choosing the built-in model,
/// which configures no provider, does not bring the setup back at every start).
const DONE_FILE: &str = "setup-done";

pub(crate) fn models_dir(state: &GatewayState) -> PathBuf {
    state.data_dir.join("models")
}

/// Whether the window should open on the setup.
pub(crate) fn needed(state: &GatewayState) -> bool {
    state.config.providers().is_empty() && !state.data_dir.join(DONE_FILE).exists()
}

/// `GET /api/setup`.
pub async fn status(State(state): State<Arc<GatewayState>>) -> Response {
    // Directory reads: off the async workers.
    let looked = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let model = openclaw_agent::provider::default_model(&models_dir(&state));
            (model, needed(&state))
        })
        .await
    };
    let Ok((model, needed)) = looked else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the setup's task failed",
        );
    };
    Json(json!({
        "needed": needed,
        "local_model": {
            "present": model.is_some(),
            "path": model,
            "models_dir": models_dir(&state),
        },
        "config_file": state.config_file,
        "providers": state.config.providers().iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum Choice {
    Local,
    Anthropic,
    Openai,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    choice: Choice,
    #[serde(default)]
    api_key: Option<String>,
}

fn conflict(message: impl ToString) -> Response {
    error(StatusCode::CONFLICT, ErrorCode::InvalidRequest, message)
}

/// Why the setup could not write what it chose.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    /// The files are not as the setup can change them (the owner's to fix): 409.
    #[error("{0}")]
    Conflict(String),
    /// Writing failed: 500.
    #[error("{0}")]
    Write(String),
}

impl IntoResponse for SetupError {
    fn into_response(self) -> Response {
        match self {
            Self::Conflict(m) => conflict(m),
            Self::Write(m) => error(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, m),
        }
    }
}

fn mark_done(path: &Path) -> Result<(), SetupError> {
    std::fs::write(path, b"finished in the app's setup\n")
        .map_err(|e| SetupError::Write(format!("cannot write {}: {e}", path.display())))
}

/// `POST /api/setup {choice: local | anthropic | openai, api_key?}`: `{done, restart, ...}`.
pub async fn choose(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let body: SetupBody = match read_json(
        req,
        MAX_SETUP_BODY,
        "the body must be {\"choice\": \"local\"} or {\"choice\": \"anthropic\" | \"openai\", \"api_key\": \"…\"}",
    )
    .await
    {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    if !state.config.providers().is_empty() {
        return conflict(
            "a provider is configured already: change providers in config.yaml (or the Settings page's keys)",
        );
    }
    let (name, kind) = match body.choice {
        Choice::Local => {
            let (dir, done) = (models_dir(&state), state.data_dir.join(DONE_FILE));
            let chosen = tokio::task::spawn_blocking(move || {
                if openclaw_agent::provider::default_model(&dir).is_none() {
                    return Err(SetupError::Conflict(format!(
                        "the built-in model is not in {} yet: download it first (POST /api/models/fetch, `openclaw models fetch`), or enter an API key instead",
                        dir.display()
                    )));
                }
                mark_done(&done)
            })
            .await;
            return match chosen {
                Ok(Ok(())) => {
                    // Fetched after this gateway started: only a new agent has it.
                    let restart = state.agent.awaits_default_model();
                    if restart {
                        state.events.send(GatewayEvent::RestartNeeded {
                            reason: "the setup chose the built-in model".into(),
                        });
                    }
                    Json(json!({"done": true, "restart": restart, "provider": "local"}))
                        .into_response()
                }
                Ok(Err(e)) => e.into_response(),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    format!("the setup's task failed: {e}"),
                ),
            };
        }
        Choice::Anthropic => ("anthropic", "Anthropic"),
        Choice::Openai => ("openai", "OpenAI"),
    };
    // A stat, off the async workers like the setup's other file work.
    if tokio::fs::try_exists(state.data_dir.join(DONE_FILE))
        .await
        .unwrap_or(false)
    {
        return conflict(
            "the setup was finished already: add or change providers on the Settings page",
        );
    }
    let Some(key) = crate::settings::typed_secret(body.api_key.as_deref().unwrap_or_default())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            format!("enter the {kind} API key: not empty, on one line"),
        );
    };
    let Some(file) = state.config_file.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "this gateway has no config file to write the provider to: start it with --config FILE",
        );
    };
    if let Err(refused) = crate::settings::keep_secret(&state, name, key).await {
        return refused;
    }
    let written = {
        let (file, done) = (file.clone(), state.data_dir.join(DONE_FILE));
        let secrets = state.secrets.clone();
        tokio::task::spawn_blocking(move || {
            add_provider(&file, name, secrets).and_then(|()| mark_done(&done))
        })
        .await
    };
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return e.into_response(),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                format!("the setup's task failed: {e}"),
            );
        }
    }
    state.audit.record(
        "setup.provider",
        json!({"provider": name, "config_file": file}),
    );
    state.events.send(GatewayEvent::RestartNeeded {
        reason: format!("the setup configured the {name} provider"),
    });
    Json(json!({
        "done": true,
        "restart": true,
        "provider": name,
        "config_file": file,
        "reference": format!("${{keyring:{name}}}"),
    }))
    .into_response()
}

/// Adds `providers: NAME: api_key: "${keyring:NAME}"` to the config file (made when missing),
/// keeping what is there; nothing is written unless the result loads (see
/// [`crate::config_write`]).
fn add_provider(
    file: &Path,
    name: &str,
    secrets: Option<Arc<dyn openclaw_secrets::SecretStore>>,
) -> Result<(), SetupError> {
    let change = Change::set(
        ["providers", name, "api_key"],
        format!("${{keyring:{name}}}"),
    );
    match crate::config_write::edit_file(file, None, &[change], &GatewayEnv { secrets }) {
        Ok(_) => Ok(()),
        Err(e @ (WriteError::Read { .. } | WriteError::Write { .. })) => {
            Err(SetupError::Write(e.to_string()))
        }
        Err(e) => Err(SetupError::Conflict(e.to_string())),
    }
}
