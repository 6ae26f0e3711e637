//! How a provider call failed, and whether trying again (here or elsewhere) can help.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 429: slow down; `retry_after` when the provider said how long.
    RateLimited { retry_after: Option<Duration> },
    /// 529 / 503: the provider is overloaded.
    Overloaded,
    /// Other 5xx.
    Server,
    /// No answer in time.
    Timeout,
    /// Could not connect, or the connection dropped (also mid-stream).
    Connection,
    /// The provider answered with something that is not its documented format.
    Malformed,
    /// 401 / 403: the key is wrong or lacks access. Retrying cannot help.
    Auth,
    /// 400 / 404 / 422: the request itself is wrong. Retrying cannot help.
    BadRequest,
    /// Configuration prevents the call (no key, unknown provider type).
    Config,
}

impl ErrorKind {
    /// Label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::Server => "server_error",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Malformed => "malformed",
            Self::Auth => "auth",
            Self::BadRequest => "bad_request",
            Self::Config => "config",
        }
    }

    /// The kind a [`label`](Self::label) names (a retry-after is not part of a label); an
    /// unknown label is a server error.
    pub fn from_label(label: &str) -> Self {
        match label {
            "rate_limited" => Self::RateLimited { retry_after: None },
            "overloaded" => Self::Overloaded,
            "timeout" => Self::Timeout,
            "connection" => Self::Connection,
            "malformed" => Self::Malformed,
            "auth" => Self::Auth,
            "bad_request" => Self::BadRequest,
            "config" => Self::Config,
            _ => Self::Server,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    pub provider: String,
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
}

impl ProviderError {
    pub fn new(
        provider: &str,
        kind: ErrorKind,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.to_owned(),
            kind,
            status,
            message: message.into(),
        }
    }

    /// Worth another attempt (on this provider later, or on the next one now).
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self.kind,
            ErrorKind::Auth | ErrorKind::BadRequest | ErrorKind::Config
        )
    }

    /// Classifies an HTTP error status and the provider's error body.
    pub fn from_status(
        provider: &str,
        status: u16,
        retry_after: Option<Duration>,
        body: &str,
    ) -> Self {
        let detail = error_detail(body);
        let kind = match status {
            429 => ErrorKind::RateLimited { retry_after },
            529 | 503 => ErrorKind::Overloaded,
            408 | 504 => ErrorKind::Timeout,
            401 | 403 => ErrorKind::Auth,
            s if s >= 500 => ErrorKind::Server,
            _ => ErrorKind::BadRequest,
        };
        let hint = match kind {
            ErrorKind::Auth => {
                format!(" — the API key was refused: check providers.{provider}.api_key")
            }
            ErrorKind::RateLimited {
                retry_after: Some(d),
            } => format!(" (retry after {} s)", d.as_secs()),
            _ => String::new(),
        };
        Self::new(
            provider,
            kind,
            Some(status),
            format!("HTTP {status}: {detail}{hint}"),
        )
    }
}

/// The message inside an Anthropic (`{"type":"error","error":{"type","message"}}`) or OpenAI
/// (`{"error":{"message","type","code"}}`) error body, or the body itself.
pub fn error_detail(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    if let Some(err) = parsed.as_ref().and_then(|v| v.get("error")) {
        let kind = err
            .get("type")
            .and_then(|t| t.as_str())
            .or_else(|| err.get("code").and_then(|c| c.as_str()));
        let message = err.get("message").and_then(|m| m.as_str());
        return match (kind, message) {
            (Some(k), Some(m)) => format!("{k}: {m}"),
            (None, Some(m)) => m.to_owned(),
            (Some(k), None) => k.to_owned(),
            (None, None) => err.to_string(),
        };
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        "(empty body)".to_owned()
    } else {
        trimmed.chars().take(300).collect()
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = (when.as_second() - now.as_second()).max(0);
    Some(Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_its_label() {
        for kind in [
            ErrorKind::RateLimited { retry_after: None },
            ErrorKind::Overloaded,
            ErrorKind::Server,
            ErrorKind::Timeout,
            ErrorKind::Connection,
            ErrorKind::Malformed,
            ErrorKind::Auth,
            ErrorKind::BadRequest,
            ErrorKind::Config,
        ] {
            assert_eq!(ErrorKind::from_label(kind.label()), kind);
        }
        assert_eq!(ErrorKind::from_label("anything else"), ErrorKind::Server);
    }

    #[test]
    fn classification() {
        let e = ProviderError::from_status(
            "anthropic",
            401,
            None,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(!e.is_retryable());
        assert!(
            e.to_string()
                .contains("authentication_error: invalid x-api-key"),
            "{e}"
        );
        assert!(e.to_string().contains("providers.anthropic.api_key"), "{e}");

        let e = ProviderError::from_status(
            "openai",
            429,
            Some(Duration::from_secs(7)),
            r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(
            e.kind,
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(e.is_retryable());
        assert_eq!(
            ProviderError::from_status("a", 529, None, "").kind,
            ErrorKind::Overloaded
        );
        assert_eq!(
            ProviderError::from_status("a", 503, None, "").kind,
            ErrorKind::Overloaded
        );
        assert_eq!(
            ProviderError::from_status("a", 500, None, "").kind,
            ErrorKind::Server
        );
        assert_eq!(
            ProviderError::from_status("a", 400, None, "").kind,
            ErrorKind::BadRequest
        );
        assert!(!ProviderError::from_status("a", 403, None, "").is_retryable());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
