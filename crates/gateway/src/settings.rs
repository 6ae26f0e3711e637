//! What the Settings page shows and changes: `GET /api/settings` (providers, the local model,
//! channels, rate limits and backups as the config file says now, and which secrets the
//! keyring holds; [`crate::settings_edit`] changes the file), and
//! `PUT` / `DELETE /api/secrets/{name}`, which keep API keys and bot tokens in the embedder's
//! secret store (the OS keyring) and never in a file. Config refers to them as
//! `${keyring:NAME}`.
//!
//! Secret values never leave the store through here: the page learns only whether one is set.

use crate::http::error;
use crate::{GatewayState, routes::read_json};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use openclaw_config::{Config, ProviderKind};
use openclaw_protocol::ErrorCode;
use openclaw_secrets::SecretError;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest `PUT /api/secrets/{name}` body: a key or a token with room to spare.
pub const MAX_SECRET_BODY: usize = 16 * 1024;

/// A secret the Settings page offers a field for.
struct Known {
    name: String,
    label: String,
    /// Where config uses it.
    used_by: String,
}

/// A chat channel's token, kept in the secret store.
pub(crate) struct ChannelToken {
    pub channel: &'static str,
    /// Its key under `channels.CHANNEL` in config.
    pub key: &'static str,
    /// Its name in the secret store (`${keyring:NAME}`).
    pub secret: &'static str,
    pub label: &'static str,
}

/// Every channel's tokens: the Settings page's fields, and what turning a channel on refers to.
pub(crate) const CHANNEL_TOKENS: [ChannelToken; 5] = [
    ChannelToken {
        channel: "telegram",
        key: "token",
        secret: "telegram",
        label: "Telegram bot token",
    },
    ChannelToken {
        channel: "slack",
        key: "bot_token",
        secret: "slack_bot",
        label: "Slack bot token",
    },
    ChannelToken {
        channel: "slack",
        key: "app_token",
        secret: "slack_app",
        label: "Slack app token",
    },
    ChannelToken {
        channel: "discord",
        key: "bot_token",
        secret: "discord",
        label: "Discord bot token",
    },
    ChannelToken {
        channel: "whatsapp",
        key: "access_token",
        secret: "whatsapp",
        label: "WhatsApp access token",
    },
];

/// The provider keys (one per configured Anthropic or OpenAI-compatible provider, and the two
/// usual ones when none is configured) and the channels' tokens.
fn known_secrets(config: &Config) -> Vec<Known> {
    let mut known: Vec<Known> = Vec::new();
    let mut add = |name: &str, label: String, used_by: String| {
        if !known.iter().any(|k| k.name == name) {
            known.push(Known {
                name: name.to_owned(),
                label,
                used_by,
            });
        }
    };
    for provider in config.providers() {
        let what = match provider.kind {
            ProviderKind::Anthropic => "Anthropic API key",
            ProviderKind::Openai => "OpenAI-compatible API key",
            ProviderKind::Local => continue,
        };
        let label = if provider.name == provider.kind.as_str() {
            what.to_owned()
        } else {
            format!("{what} ({})", provider.name)
        };
        add(
            &provider.name,
            label,
            format!("providers.{}.api_key", provider.name),
        );
    }
    add(
        "anthropic",
        "Anthropic API key".into(),
        "providers.anthropic.api_key".into(),
    );
    add(
        "openai",
        "OpenAI API key".into(),
        "providers.openai.api_key".into(),
    );
    for t in CHANNEL_TOKENS {
        add(
            t.secret,
            t.label.into(),
            format!("channels.{}.{}", t.channel, t.key),
        );
    }
    known
}

/// The answer when the embedder gave the gateway no secret store.
fn no_store() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "this gateway keeps no secrets (it was started without a secret store): put keys in environment variables and refer to them as ${VAR}",
    )
}

/// A store failure as the answer to send: a bad name is the caller's, the rest the machine's.
fn secret_failure(e: SecretError) -> Response {
    let (status, code) = match e {
        SecretError::BadName(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
        SecretError::TimedOut { .. } => (StatusCode::GATEWAY_TIMEOUT, ErrorCode::Unavailable),
        SecretError::NoKeyring { .. } => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
        SecretError::Keyring { .. } | SecretError::File { .. } => {
            (StatusCode::BAD_GATEWAY, ErrorCode::Unavailable)
        }
    };
    error(status, code, e)
}

/// Runs a store call off the async workers: keyring calls block, up to their time limit.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(secret_failure(e)),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            format!("the secret store's task failed: {e}"),
        )),
    }
}

/// A key or token as the owner typed it, trimmed; `None` when it is empty or not on one line.
pub(crate) fn typed_secret(raw: &str) -> Option<String> {
    let value = raw.trim();
    (!value.is_empty() && !value.chars().any(char::is_control)).then(|| value.to_owned())
}

/// Keeps `value` as `name` in the gateway's secret store (off the async workers: keyring calls
/// block) and audits it by name: where it went, or the answer saying why it could not.
pub(crate) async fn keep_secret(
    state: &GatewayState,
    name: &str,
    value: String,
) -> Result<String, Response> {
    let Some(store) = state.secrets.clone() else {
        return Err(no_store());
    };
    let place = store.place();
    let key = name.to_owned();
    blocking(move || store.set(&key, value.as_bytes())).await?;
    state
        .audit
        .record("secret.saved", json!({"name": name, "store": place}));
    Ok(place)
}

/// What the config file says now (it may have changed since this gateway loaded it), for the
/// page to show and edit: `${VAR}` expanded as at start, `${keyring:NAME}` not read (the page
/// learns only that a key is referred to).
struct FileView {
    config: Arc<Config>,
    revision: String,
    /// Why the file could not be read or parsed; the running config is shown then.
    error: Option<String>,
}

struct SecretsUnread;

impl openclaw_config::Env for SecretsUnread {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn secret(&self, _: &str) -> Result<Option<String>, String> {
        Ok(Some("kept in the keyring".into()))
    }
}

fn file_view(state: &GatewayState) -> FileView {
    let running = |revision: String, error: Option<String>| FileView {
        config: state.config.clone(),
        revision,
        error,
    };
    let Some(file) = &state.config_file else {
        return running(state.loaded_revision.clone(), None);
    };
    match crate::config_write::read(file) {
        Err(e) => running(state.loaded_revision.clone(), Some(e.to_string())),
        Ok(None) => running(crate::config_write::NO_FILE.to_owned(), None),
        Ok(Some(text)) => {
            let revision = crate::config_write::revision_of(Some(&text));
            match openclaw_config::parse(&text, &file.display().to_string(), &SecretsUnread) {
                Ok(config) => FileView {
                    config: Arc::new(config),
                    revision,
                    error: None,
                },
                Err(e) => running(revision, Some(e.to_string())),
            }
        }
    }
}

/// `GET /api/settings`.
pub async fn settings(State(state): State<Arc<GatewayState>>) -> Response {
    let view = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || file_view(&state)).await
    };
    let Ok(view) = view else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the settings' task failed",
        );
    };
    let config = view.config.clone();
    let known = known_secrets(&config);
    let (place, presence) = match &state.secrets {
        None => (None, Err("this gateway keeps no secrets".to_owned())),
        Some(store) => {
            let store = store.clone();
            let names: Vec<String> = known.iter().map(|k| k.name.clone()).collect();
            let place = store.place();
            let presence = tokio::task::spawn_blocking(move || {
                names
                    .iter()
                    .map(|n| store.get(n).map(|v| v.is_some()))
                    .collect::<Result<Vec<bool>, SecretError>>()
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            (Some(place), presence)
        }
    };
    let items: Vec<Value> = known
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({
                "name": k.name,
                "label": k.label,
                "used_by": k.used_by,
                "reference": format!("${{keyring:{}}}", k.name),
                "present": presence.as_ref().ok().map(|p| p[i]),
            })
        })
        .collect();
    let providers: Vec<Value> = config
        .providers()
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "kind": p.kind.as_str(),
                "model": p.config.model,
                "base_url": p.config.base_url,
                "model_path": p.config.model_path,
                "max_tokens": p.config.max_tokens,
                "key_configured": p.config.api_key.is_some(),
            })
        })
        .collect();
    let channels = &config.channels;
    let rate = &config.security.rate_limiting;
    let backup = &config.backup;
    Json(json!({
        "config": {
            "file": state.config_file,
            "revision": view.revision,
            "editable": state.config_file.is_some(),
            "pending_restart": view.revision != state.loaded_revision,
            "restarts_itself": state.restarts_itself,
            "error": view.error,
        },
        "secrets": {
            "store": place,
            "error": presence.as_ref().err(),
            "items": items,
        },
        "providers": providers,
        "channels": [
            {"name": "telegram", "enabled": channels.telegram.enabled},
            {"name": "slack", "enabled": channels.slack.enabled},
            {"name": "discord", "enabled": channels.discord.enabled},
            {"name": "whatsapp", "enabled": channels.whatsapp.enabled},
            {"name": "webchat", "enabled": channels.webchat.enabled},
        ],
        "rate_limiting": {
            "enabled": rate.enabled,
            "messages_per_minute": rate.default_messages_per_minute,
            "tool_calls_per_minute": rate.default_tool_calls_per_minute,
        },
        "backup": {
            "enabled": backup.enabled,
            "schedule": backup.schedule,
            "max_backups": backup.max_backups,
            "path": backup.path,
        },
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    value: String,
}

/// `PUT /api/secrets/{name} {value}`: keeps the secret (replacing one of that name) and answers
/// `{name, stored, store, reference}`.
pub async fn put_secret(
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    if state.secrets.is_none() {
        return no_store();
    }
    if let Err(e) = openclaw_secrets::check_name(&name) {
        return secret_failure(e);
    }
    let body: SecretBody = match read_json(
        req,
        MAX_SECRET_BODY,
        "the body must be {\"value\": \"the key or token\"}",
    )
    .await
    {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let Some(value) = typed_secret(&body.value) else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "the value must be a key or token: not empty, on one line",
        );
    };
    let place = match keep_secret(&state, &name, value).await {
        Ok(place) => place,
        Err(refused) => return refused,
    };
    Json(json!({
        "name": name,
        "stored": true,
        "store": place,
        "reference": format!("${{keyring:{name}}}"),
    }))
    .into_response()
}

/// `DELETE /api/secrets/{name}`: `{name, removed}`.
pub async fn delete_secret(
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
) -> Response {
    let Some(store) = state.secrets.clone() else {
        return no_store();
    };
    let removed = {
        let name = name.clone();
        blocking(move || store.delete(&name)).await
    };
    match removed {
        Ok(removed) => {
            if removed {
                state.audit.record("secret.removed", json!({"name": name}));
            }
            Json(json!({"name": name, "removed": removed})).into_response()
        }
        Err(refused) => refused,
    }
}
