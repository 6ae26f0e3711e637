//! `PATCH /api/settings`: the Settings page's changes to providers, channels, rate limits and
//! backups, written into the owner's config file (comments kept, see [`crate::config_write`]).
//! Keys and tokens never go in the file: a provider's key typed on the page goes to the secret
//! store first, and the file refers to it as `${keyring:NAME}`.
//!
//! A change takes effect when the gateway restarts: [`GatewayEvent::RestartNeeded`] tells the
//! embedder (the tray app restarts its gateway); a server's answer says to restart the service.

use crate::config_write::{self, GatewayEnv, WriteError};
use crate::http::error;
use crate::{GatewayEvent, GatewayState, routes::read_json};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use openclaw_config::{Change, ProviderKind};
use openclaw_protocol::ErrorCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest `PATCH /api/settings` body.
pub const MAX_SETTINGS_BODY: usize = 16 * 1024;

/// Longest provider name the page may make.
const MAX_PROVIDER_NAME: usize = 48;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsEdit {
    /// The config file's revision the page read (`GET /api/settings`'s `config.revision`).
    revision: String,
    #[serde(default)]
    provider: Option<ProviderEdit>,
    #[serde(default)]
    remove_provider: Option<String>,
    /// Channels to turn on (`true`) or off.
    #[serde(default)]
    channels: BTreeMap<Channel, bool>,
    #[serde(default)]
    rate_limiting: Option<RateLimitEdit>,
    #[serde(default)]
    backup: Option<BackupEdit>,
}

/// A provider added, or changed in place (its position, so the failover order, stays).
/// Fields left out or empty are removed from its entry; keys the page does not show stay.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEdit {
    name: String,
    kind: ProviderKind,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    model_path: Option<String>,
    #[serde(default)]
    max_tokens: Option<u32>,
    /// A key typed with it: kept in the secret store as the provider's name.
    #[serde(default)]
    api_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Channel {
    Telegram,
    Slack,
    Discord,
    Whatsapp,
    Webchat,
}

impl Channel {
    fn key(self) -> &'static str {
        match self {
            Self::Telegram => "telegram",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Whatsapp => "whatsapp",
            Self::Webchat => "webchat",
        }
    }

    /// The tokens it needs: referred to from the keyring when the channel is turned on, the
    /// file names none and the keyring holds one.
    fn tokens(self) -> impl Iterator<Item = &'static crate::settings::ChannelToken> {
        crate::settings::CHANNEL_TOKENS
            .iter()
            .filter(move |t| t.channel == self.key())
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitEdit {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    messages_per_minute: Option<u32>,
    #[serde(default)]
    tool_calls_per_minute: Option<u32>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupEdit {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    max_backups: Option<u32>,
    /// Empty: the default (`<data dir>/backups`).
    #[serde(default)]
    path: Option<String>,
}

fn bad_request(message: impl ToString) -> Response {
    error(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
}

/// Text the owner typed, trimmed; `None` when empty.
fn typed(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// Sets `key` to the typed text, or removes it when nothing was typed.
fn set_or_remove(changes: &mut Vec<Change>, key: &[&str], text: Option<&str>) {
    changes.push(match text {
        Some(text) => Change::set(key.iter().copied(), text),
        None => Change::remove(key.iter().copied()),
    });
}

/// Checks what the page sent before anything is kept or written.
fn check(edit: &SettingsEdit) -> Result<(), String> {
    let nothing = edit.provider.is_none()
        && edit.remove_provider.is_none()
        && edit.channels.is_empty()
        && edit.rate_limiting.is_none()
        && edit.backup.is_none();
    if nothing {
        return Err(String::from(
            "nothing to change: send provider, remove_provider, channels, rate_limiting or backup",
        ));
    }
    for name in edit
        .provider
        .iter()
        .map(|p| p.name.as_str())
        .chain(edit.remove_provider.as_deref())
    {
        let plain = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if name.is_empty() || name.len() > MAX_PROVIDER_NAME || !plain {
            return Err(format!(
                "`{name}` cannot name a provider: up to {MAX_PROVIDER_NAME} letters, digits, `_` or `-`"
            ));
        }
    }
    if let Some(p) = &edit.provider {
        let control = |t: &Option<String>| {
            t.as_deref()
                .is_some_and(|t| t.chars().any(char::is_control))
        };
        if [&p.model, &p.base_url, &p.model_path]
            .into_iter()
            .any(control)
        {
            return Err(String::from(
                "a provider's model, base URL and model file are one line each",
            ));
        }
        if let Some(key) = typed(&p.api_key)
            && crate::settings::typed_secret(key).is_none()
        {
            return Err(String::from("the API key must be on one line"));
        }
        if p.kind == ProviderKind::Local && typed(&p.api_key).is_some() {
            return Err(String::from("a local provider needs no API key"));
        }
    }
    if let Some(b) = &edit.backup {
        if let Some(schedule) = &b.schedule
            && let Err(e) = openclaw_config::parse_schedule(schedule.trim())
        {
            return Err(format!("backup schedule `{schedule}`: {e}"));
        }
        if b.path
            .as_deref()
            .is_some_and(|p| p.chars().any(char::is_control))
        {
            return Err(String::from("the backup path is one line"));
        }
    }
    Ok(())
}

/// What the edit changes in the file. `has_secret` says whether the store holds a name; `file`
/// is the file's text (to see which keys it already has).
fn changes_for(edit: &SettingsEdit, file: &str, has_secret: &dyn Fn(&str) -> bool) -> Vec<Change> {
    let mut changes = Vec::new();
    let has_key = |key: &[&str]| openclaw_config::has_key(file, key.iter().copied());
    if let Some(name) = &edit.remove_provider {
        changes.push(Change::remove(["providers", name.as_str()]));
    }
    if let Some(p) = &edit.provider {
        let name = p.name.as_str();
        let at = |key: &'static str| ["providers", name, key];
        if ProviderKind::from_name(name) == Some(p.kind) {
            changes.push(Change::remove(at("type")));
        } else {
            changes.push(Change::set(at("type"), p.kind.as_str()));
        }
        if p.kind == ProviderKind::Local {
            for key in ["api_key", "base_url", "model", "max_tokens"] {
                changes.push(Change::remove(at(key)));
            }
            set_or_remove(&mut changes, &at("model_path"), typed(&p.model_path));
        } else {
            for key in [
                "model_path",
                "context_tokens",
                "threads",
                "idle_unload_seconds",
            ] {
                changes.push(Change::remove(at(key)));
            }
            set_or_remove(&mut changes, &at("model"), typed(&p.model));
            set_or_remove(&mut changes, &at("base_url"), typed(&p.base_url));
            changes.push(match p.max_tokens {
                Some(n) => Change::set(at("max_tokens"), n),
                None => Change::remove(at("max_tokens")),
            });
            // The key is the keyring's: referred to when one was typed now, or the store
            // holds one of this name and the file names no key of its own (`${VAR}` stays).
            let typed_now = typed(&p.api_key).is_some();
            if typed_now || (!has_key(&at("api_key")) && has_secret(name)) {
                changes.push(Change::set(at("api_key"), format!("${{keyring:{name}}}")));
            }
        }
    }
    for (channel, on) in &edit.channels {
        let at = |key: &'static str| ["channels", channel.key(), key];
        changes.push(Change::set(at("enabled"), *on));
        if *on {
            for token in channel.tokens() {
                if !has_key(&at(token.key)) && has_secret(token.secret) {
                    changes.push(Change::set(
                        at(token.key),
                        format!("${{keyring:{}}}", token.secret),
                    ));
                }
            }
        }
    }
    if let Some(r) = &edit.rate_limiting {
        let at = |key: &'static str| ["security", "rate_limiting", key];
        if let Some(on) = r.enabled {
            changes.push(Change::set(at("enabled"), on));
        }
        if let Some(n) = r.messages_per_minute {
            changes.push(Change::set(at("default_messages_per_minute"), n));
        }
        if let Some(n) = r.tool_calls_per_minute {
            changes.push(Change::set(at("default_tool_calls_per_minute"), n));
        }
    }
    if let Some(b) = &edit.backup {
        let at = |key: &'static str| ["backup", key];
        if let Some(on) = b.enabled {
            changes.push(Change::set(at("enabled"), on));
        }
        if let Some(schedule) = &b.schedule {
            changes.push(Change::set(at("schedule"), schedule.trim()));
        }
        if let Some(n) = b.max_backups {
            changes.push(Change::set(at("max_backups"), n));
        }
        if b.path.is_some() {
            set_or_remove(&mut changes, &at("path"), typed(&b.path));
        }
    }
    changes
}

fn write_failure(e: WriteError) -> Response {
    let status = match &e {
        WriteError::Stale { .. } | WriteError::NotEditable { .. } => StatusCode::CONFLICT,
        WriteError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        WriteError::Read { .. } | WriteError::Write { .. } => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, e);
        }
    };
    error(status, ErrorCode::InvalidRequest, e)
}

/// `PATCH /api/settings {revision, provider?, remove_provider?, channels?, rate_limiting?,
/// backup?}`: `{saved, changed, revision, restart, restarts_itself, config_file}`.
pub async fn edit_settings(State(state): State<Arc<GatewayState>>, req: Request) -> Response {
    let edit: SettingsEdit = match read_json(
        req,
        MAX_SETTINGS_BODY,
        "the body must be {\"revision\": \"…\", and one or more of provider, remove_provider, channels, rate_limiting, backup}",
    )
    .await
    {
        Ok(edit) => edit,
        Err(refused) => return refused,
    };
    if let Err(why) = check(&edit) {
        return bad_request(why);
    }
    let Some(file) = state.config_file.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "this gateway has no config file to write to: start it with --config FILE",
        );
    };
    // A key typed with a provider is kept first: the file may then refer to it.
    if let Some(p) = &edit.provider
        && let Some(key) = typed(&p.api_key)
        && let Err(refused) = crate::settings::keep_secret(&state, &p.name, key.to_owned()).await
    {
        return refused;
    }
    let secrets = state.secrets.clone();
    let written = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let text = config_write::read(&file)?.unwrap_or_default();
            let has_secret = |name: &str| {
                secrets
                    .as_ref()
                    .is_some_and(|s| s.get(name).ok().flatten().is_some())
            };
            let changes = changes_for(&edit, &text, &has_secret);
            // For the audit: what is set, and what was there to remove.
            let keys: Vec<String> = changes
                .iter()
                .filter(|c| match c {
                    Change::Set { .. } => true,
                    Change::Remove { key } => {
                        openclaw_config::has_key(&text, key.iter().map(String::as_str))
                    }
                })
                .map(|c| c.key().join("."))
                .collect();
            let env = GatewayEnv { secrets };
            config_write::edit_file(&file, Some(&edit.revision), &changes, &env)
                .map(|written| (written, keys))
        })
        .await
    };
    let (written, keys) = match written {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return write_failure(e),
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                format!("the settings' task failed: {e}"),
            );
        }
    };
    if written.changed {
        state.audit.record(
            "config.edited",
            json!({"config_file": file, "keys": keys, "sha256": written.revision}),
        );
        state.events.send(GatewayEvent::RestartNeeded {
            reason: "the Settings page changed the config".into(),
        });
    }
    Json(json!({
        "saved": true,
        "changed": written.changed,
        "revision": written.revision,
        "restart": written.changed,
        "restarts_itself": state.restarts_itself,
        "config_file": file,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(body: serde_json::Value) -> SettingsEdit {
        serde_json::from_value(body).unwrap()
    }

    fn keys(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Set { key, value } => format!("{}={value:?}", key.join(".")),
                Change::Remove { key } => format!("-{}", key.join(".")),
            })
            .collect()
    }

    #[test]
    fn a_provider_refers_to_its_key_in_the_keyring_unless_the_file_names_one() {
        let body = json!({"revision": "", "provider": {"name": "openrouter", "kind": "openai",
            "model": " gpt-4o ", "base_url": "", "max_tokens": 1000}});
        let none = |_: &str| false;
        let held = |n: &str| n == "openrouter";
        assert_eq!(
            keys(&changes_for(&edit(body.clone()), "", &none)),
            [
                "providers.openrouter.type=Text(\"openai\")",
                "-providers.openrouter.model_path",
                "-providers.openrouter.context_tokens",
                "-providers.openrouter.threads",
                "-providers.openrouter.idle_unload_seconds",
                "providers.openrouter.model=Text(\"gpt-4o\")",
                "-providers.openrouter.base_url",
                "providers.openrouter.max_tokens=Number(1000)",
            ]
        );
        let with_key = keys(&changes_for(&edit(body.clone()), "", &held));
        assert_eq!(
            with_key.last().unwrap(),
            "providers.openrouter.api_key=Text(\"${keyring:openrouter}\")"
        );
        // The file's own `${VAR}` stays.
        let file = "providers:\n  openrouter:\n    api_key: ${OR_KEY}\n";
        assert!(
            !keys(&changes_for(&edit(body), file, &held))
                .iter()
                .any(|k| k.contains("api_key"))
        );
        // A local provider loses what does not apply to it.
        let local = json!({"revision": "", "provider": {"name": "local", "kind": "local"}});
        assert_eq!(
            keys(&changes_for(&edit(local), "", &held)),
            [
                "-providers.local.type",
                "-providers.local.api_key",
                "-providers.local.base_url",
                "-providers.local.model",
                "-providers.local.max_tokens",
                "-providers.local.model_path",
            ]
        );
    }

    #[test]
    fn a_channel_turned_on_gets_its_tokens_from_the_keyring_when_it_holds_them() {
        let body = edit(json!({"revision": "", "channels": {"slack": true, "telegram": false}}));
        let held = |n: &str| n == "slack_bot";
        assert_eq!(
            keys(&changes_for(&body, "", &held)),
            [
                "channels.telegram.enabled=Bool(false)",
                "channels.slack.enabled=Bool(true)",
                "channels.slack.bot_token=Text(\"${keyring:slack_bot}\")",
            ]
        );
    }

    #[test]
    fn what_the_page_sends_is_checked_before_anything_is_kept() {
        let refused = |body: serde_json::Value| check(&edit(body)).is_err();
        assert!(refused(json!({"revision": ""})), "nothing to change");
        assert!(refused(json!({"revision": "", "remove_provider": "a.b"})));
        assert!(refused(
            json!({"revision": "", "provider": {"name": "", "kind": "openai"}})
        ));
        assert!(refused(
            json!({"revision": "", "provider": {"name": "local", "kind": "local", "api_key": "k"}})
        ));
        assert!(refused(
            json!({"revision": "", "provider": {"name": "a", "kind": "openai", "model": "x\ny"}})
        ));
        assert!(refused(
            json!({"revision": "", "backup": {"schedule": "at two"}})
        ));
        assert!(!refused(
            json!({"revision": "", "backup": {"schedule": "0 3 * * *", "path": ""}})
        ));
        for unknown in [
            json!({"revision": "", "gateway": {"port": 1}}),
            json!({"revision": "", "channels": {"irc": true}}),
            json!({"revision": "", "provider": {"name": "a", "kind": "palm"}}),
        ] {
            assert!(serde_json::from_value::<SettingsEdit>(unknown).is_err());
        }
    }
}
