//! Who may use the gateway. A browser on the same machine is an attacker: any page it shows
//! can open a WebSocket to a loopback port, send a no-preflight POST, or rebind its own DNS
//! name to 127.0.0.1. So the gateway answers only to its own `Host` names, accepts browser
//! requests only from its own origins, and guards `/api`, `/ws` and `/v1` with a token — the
//! configured `gateway.auth.token`, or one generated on first run and kept 0600 in the data dir.
//!
//! Clients that send no `Origin` (the CLI, device nodes, the tray's Rust side, OpenAI clients)
//! are not browsers: the origin rule lets them through and the token decides.
//!
//! This module decides; the HTTP middleware (`routes`) and the WebSocket (`ws`) apply it.

use axum::http::{HeaderMap, header};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The generated token's file in the data dir.
pub const TOKEN_FILE: &str = "gateway.token";

/// Origins of the tray app's webview (Tauri: `tauri://localhost` on macOS and Linux,
/// `http(s)://tauri.localhost` on Windows). No web page can claim them.
const TRAY_ORIGINS: [&str; 3] = [
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// Reads the generated token from `data_dir`, creating it (0600) on first use. A file that is
/// empty or too short (a crash while it was written) is replaced.
///
/// Not synced to disk on purpose: it costs a flush on the first start, and a token lost in a
/// power cut is simply made again (clients read the file anew).
pub fn load_or_create_token(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(TOKEN_FILE);
    if let Some(token) = read_token_file(&path)? {
        return Ok(token);
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let tmp = data_dir.join(format!("{TOKEN_FILE}.tmp"));
    openclaw_fs::write_private(&tmp, token.as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok(token)
}

/// The generated token in `data_dir`, if a gateway made one (for the CLI and the tray app).
pub fn generated_token(data_dir: &Path) -> Option<String> {
    read_token_file(&data_dir.join(TOKEN_FILE)).ok().flatten()
}

fn read_token_file(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim();
            Ok((token.len() >= openclaw_config::MIN_TOKEN_CHARS).then(|| token.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where the gateway's token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `gateway.auth.token` in config.
    Configured,
    /// Made on first run and kept in this file.
    Generated(PathBuf),
}

/// How a request's `Origin` header fares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin`: not a browser's cross-origin request (the token still decides).
    Absent,
    /// One of ours: a page this gateway served, the tray app, or `gateway.allowed_origins`.
    Allowed,
    /// A page of another origin (or an opaque `null` one).
    Refused(String),
}

/// The gateway's access rules, built once at start-up.
pub struct Access {
    token: String,
    source: TokenSource,
    bind: SocketAddr,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &"<redacted>")
            .field("source", &self.source)
            .field("bind", &self.bind)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

impl Access {
    pub fn new(
        token: String,
        source: TokenSource,
        bind: SocketAddr,
        allowed_hosts: &[String],
        allowed_origins: &[String],
    ) -> Self {
        Self {
            token,
            source,
            bind,
            allowed_hosts: allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// The token itself, for the embedder that runs this gateway (its own window or CLI).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The token, for the WebChat page this gateway serves when the token is its own
    /// generated one (a configured token is the operator's to hand out).
    pub fn page_token(&self) -> Option<&str> {
        matches!(self.source, TokenSource::Generated(_)).then_some(self.token.as_str())
    }

    /// Constant-time comparison with the gateway's token.
    pub fn token_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.token.as_bytes())))
    }

    /// True when the request's `Host` is one of this gateway's names: a loopback name or
    /// address, the bind address (any address literal when bound to all interfaces: an
    /// address cannot be rebound), or `gateway.allowed_hosts`. No `Host` at all is not a
    /// browser (browsers always send one).
    pub fn host_ok(&self, headers: &HeaderMap) -> bool {
        !headers.contains_key(header::HOST)
            || host_header(headers).is_some_and(|(name, _)| self.name_is_ours(name))
    }

    /// True when the request was addressed to a loopback name or address and came through
    /// no proxy: only then may the WebChat page carry the generated token (a page fetched
    /// through a reverse proxy could be anyone's).
    pub fn is_direct_loopback(&self, headers: &HeaderMap) -> bool {
        if headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED) {
            return false;
        }
        host_header(headers).is_some_and(|(name, _)| is_loopback_name(name))
    }

    fn name_is_ours(&self, name: &str) -> bool {
        if is_loopback_name(name) {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ip == self.bind.ip() || self.bind.ip().is_unspecified();
        }
        self.is_allowed_host(name)
    }

    fn is_allowed_host(&self, name: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Judges the `Origin` header against the request's own `Host`.
    pub fn origin(&self, headers: &HeaderMap) -> OriginCheck {
        let Some(value) = headers.get(header::ORIGIN) else {
            return OriginCheck::Absent;
        };
        let Ok(origin) = value.to_str() else {
            return OriginCheck::Refused("(not text)".into());
        };
        let normalized = origin.trim_end_matches('/').to_ascii_lowercase();
        if TRAY_ORIGINS.contains(&normalized.as_str()) || self.allowed_origins.contains(&normalized)
        {
            return OriginCheck::Allowed;
        }
        if self.served_by_us(&normalized, headers) {
            OriginCheck::Allowed
        } else {
            OriginCheck::Refused(truncate(origin, 100))
        }
    }

    /// A page this gateway served: an http(s) origin naming one of our hosts on our port, or
    /// exactly the `Host` the request was sent to (a reverse proxy's allowed name).
    fn served_by_us(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let default_port = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some((name, port)) = split_authority(authority) else {
            return false;
        };
        let port = port.unwrap_or(default_port);
        if port == self.bind.port() && self.name_is_ours(name) {
            return true;
        }
        // Behind a proxy the page's origin is the proxy's name and port, which the request
        // carries as its Host (and that name must be in allowed_hosts).
        host_header(headers).is_some_and(|(host_name, host_port)| {
            host_name.eq_ignore_ascii_case(name)
                && host_port.unwrap_or(default_port) == port
                && self.is_allowed_host(name)
        })
    }
}

/// The request's `Host`, parsed; `None` when it has none or it does not parse.
fn host_header(headers: &HeaderMap) -> Option<(&str, Option<u16>)> {
    split_authority(headers.get(header::HOST)?.to_str().ok()?)
}

/// `localhost` or a loopback address.
fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` → (host without brackets, port). Names compare case-insensitively.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let authority = authority.trim();
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (inside, port)
    } else {
        match authority.rsplit_once(':') {
            Some((n, p)) => (n, Some(p.parse().ok()?)),
            None => (authority, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    Some((name, port))
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The token a request presents as `Authorization: Bearer …`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Keeps refused requests from flooding the audit log: at most [`AUDIT_BURST`] lines per
/// window, then one line saying how many were left out.
#[derive(Debug)]
pub struct RefusalThrottle {
    state: Mutex<ThrottleState>,
}

#[derive(Debug)]
struct ThrottleState {
    window_start: Instant,
    written: u32,
    suppressed: u64,
}

/// Refusals written to the audit log per window.
pub const AUDIT_BURST: u32 = 20;
/// The throttle's window.
pub const AUDIT_WINDOW: Duration = Duration::from_secs(60);

/// What to do with one refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Throttled {
    /// Write it; `suppressed_before` refusals were left out in the window that just ended.
    Write { suppressed_before: u64 },
    /// Leave it out (counted).
    Skip,
}

impl Default for RefusalThrottle {
    fn default() -> Self {
        Self {
            state: Mutex::new(ThrottleState {
                window_start: Instant::now(),
                written: 0,
                suppressed: 0,
            }),
        }
    }
}

impl RefusalThrottle {
    pub fn admit(&self, now: Instant) -> Throttled {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut suppressed_before = 0;
        if now.duration_since(s.window_start) >= AUDIT_WINDOW {
            suppressed_before = std::mem::take(&mut s.suppressed);
            s.window_start = now;
            s.written = 0;
        }
        if s.written < AUDIT_BURST {
            s.written += 1;
            Throttled::Write { suppressed_before }
        } else {
            s.suppressed += 1;
            Throttled::Skip
        }
    }
}

/// A request path as the audit log keeps it: bounded, no query string.
pub fn audit_path(path: &str) -> String {
    truncate(path.split('?').next().unwrap_or(""), 128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn access(bind: &str, hosts: &[&str], origins: &[&str]) -> Access {
        Access::new(
            "0123456789abcdef0123".into(),
            TokenSource::Configured,
            bind.parse().unwrap(),
            &hosts.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &origins.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hosts_are_loopback_the_bind_address_or_configured() {
        let a = access("127.0.0.1:18789", &["chat.example.com"], &[]);
        for ok in [
            "127.0.0.1:18789",
            "localhost:18789",
            "LOCALHOST",
            "[::1]:18789",
            "127.0.0.2",
            "chat.example.com",
        ] {
            assert!(a.host_ok(&headers(&[(header::HOST, ok)])), "{ok}");
        }
        for bad in [
            "evil.example:18789",
            "localhost.evil.example",
            "10.0.0.5:18789",
            "chat.example.com.evil",
            "",
            "[::1",
            "a b",
        ] {
            assert!(!a.host_ok(&headers(&[(header::HOST, bad)])), "{bad}");
        }
        assert!(a.host_ok(&HeaderMap::new()), "no Host: not a browser");

        let wildcard = access("0.0.0.0:18789", &[], &[]);
        assert!(wildcard.host_ok(&headers(&[(header::HOST, "10.0.0.5:18789")])));
        assert!(!wildcard.host_ok(&headers(&[(header::HOST, "rebind.evil.example")])));
        let bound = access("100.64.0.7:18789", &[], &[]);
        assert!(bound.host_ok(&headers(&[(header::HOST, "100.64.0.7:18789")])));
        assert!(!bound.host_ok(&headers(&[(header::HOST, "100.64.0.8:18789")])));
    }

    #[test]
    fn origins_are_our_pages_the_tray_or_configured() {
        let a = access(
            "127.0.0.1:18789",
            &["chat.example.com"],
            &["https://ui.example.org/"],
        );
        let check = |origin: &str, host: &str| {
            a.origin(&headers(&[(header::ORIGIN, origin), (header::HOST, host)]))
        };
        let here = "127.0.0.1:18789";
        assert_eq!(check("http://127.0.0.1:18789", here), OriginCheck::Allowed);
        assert_eq!(check("http://localhost:18789", here), OriginCheck::Allowed);
        assert_eq!(check("http://[::1]:18789", here), OriginCheck::Allowed);
        assert_eq!(check("tauri://localhost", here), OriginCheck::Allowed);
        assert_eq!(check("http://tauri.localhost", here), OriginCheck::Allowed);
        assert_eq!(check("https://ui.example.org", here), OriginCheck::Allowed);
        // Through a proxy: the page's origin is the Host the proxy forwards.
        assert_eq!(
            check("https://chat.example.com", "chat.example.com"),
            OriginCheck::Allowed
        );
        for bad in [
            "http://evil.example",
            "http://evil.example:18789",
            // Another loopback server (a dev server, another app) is not us.
            "http://localhost:3000",
            "http://127.0.0.1:18790",
            "null",
            "file://",
            "ws://127.0.0.1:18789",
            "https://chat.example.com.evil",
        ] {
            assert!(
                matches!(check(bad, here), OriginCheck::Refused(_)),
                "{bad} must be refused"
            );
        }
        // A rebinding page names its own host in both headers; that name is not ours.
        assert!(matches!(
            check("http://evil.example:18789", "evil.example:18789"),
            OriginCheck::Refused(_)
        ));
        assert_eq!(
            a.origin(&headers(&[(header::HOST, here)])),
            OriginCheck::Absent
        );
    }

    #[test]
    fn tokens_compare_whole() {
        let a = access("127.0.0.1:1", &[], &[]);
        assert!(a.token_ok(Some("0123456789abcdef0123")));
        assert!(!a.token_ok(Some("0123456789abcdef012")));
        assert!(!a.token_ok(Some("")));
        assert!(!a.token_ok(None));
        assert_eq!(a.page_token(), None, "a configured token is not handed out");
        assert!(
            !format!("{a:?}").contains("0123456789"),
            "no token in Debug"
        );
    }

    #[test]
    fn generated_token_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(generated_token(dir.path()), None);
        let t = load_or_create_token(dir.path()).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), t);
        assert_eq!(generated_token(dir.path()).as_deref(), Some(t.as_str()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A torn file (a crash mid-write) is replaced, not trusted.
        std::fs::write(dir.path().join(TOKEN_FILE), "abc").unwrap();
        let again = load_or_create_token(dir.path()).unwrap();
        assert_ne!(again, "abc");
        assert_eq!(again.len(), 64);
    }

    #[test]
    fn refusals_are_throttled_per_window() {
        let t = RefusalThrottle::default();
        let start = Instant::now();
        for _ in 0..AUDIT_BURST {
            assert_eq!(
                t.admit(start),
                Throttled::Write {
                    suppressed_before: 0
                }
            );
        }
        for _ in 0..500 {
            assert_eq!(t.admit(start), Throttled::Skip);
        }
        assert_eq!(
            t.admit(start + AUDIT_WINDOW),
            Throttled::Write {
                suppressed_before: 500
            }
        );
        assert_eq!(audit_path("/api/x?token=secret"), "/api/x");
        assert!(audit_path(&"/a".repeat(500)).chars().count() <= 129);
    }
}
