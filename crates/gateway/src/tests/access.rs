//! The access rules on a live gateway: Host, Origin, JSON-only routes, the generated token,
//! the WebSocket budgets and limits, redacted public health, throttled refusals.

use super::*;
use std::io::{Read, Write};
use tungstenite::client::IntoClientRequest;

/// One raw HTTP/1.1 request (`Connection: close`); returns status and body.
fn raw(gw: &TestGateway, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A WebSocket opened with extra request headers; `Err(status)` when the upgrade is refused.
fn ws_with(
    gw: &TestGateway,
    headers: &[(&str, &str)],
) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, u16> {
    let mut req = format!("ws://{}/ws", gw.addr)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tungstenite::connect(req) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected WebSocket error: {e}"),
    }
}

#[test]
fn pages_of_other_origins_are_refused_and_our_own_and_non_browsers_pass() {
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["ok"]));
    let gw = TestGateway::start(with_fake(&fake));
    let token = gw.token();
    let ours = format!("http://{}", gw.addr);
    let port = gw.addr.port();

    // A cross-site page cannot open the WebSocket (refused before any upgrade)...
    assert_eq!(
        ws_with(&gw, &[("Origin", "http://evil.example")]).err(),
        Some(403)
    );
    // ...nor can another server on this machine (a dev server, another app).
    assert_eq!(
        ws_with(&gw, &[("Origin", "http://localhost:3000")]).err(),
        Some(403)
    );
    assert_eq!(ws_with(&gw, &[("Origin", "null")]).err(), Some(403));
    // The page this gateway serves can, with the token it was given.
    let mut ws = ws_with(&gw, &[("Origin", &ours)]).unwrap();
    assert_eq!(handshake(&mut ws, Some(&token))["ok"], true);
    let localhost = format!("http://localhost:{port}");
    let mut ws = ws_with(&gw, &[("Origin", &localhost)]).unwrap();
    assert_eq!(handshake(&mut ws, Some(&token))["ok"], true);
    // So can the tray app's webview.
    let mut ws = ws_with(&gw, &[("Origin", "tauri://localhost")]).unwrap();
    assert_eq!(handshake(&mut ws, Some(&token))["ok"], true);
    // A client with no Origin (CLI, node, tray's Rust side) is not locked out; the token decides.
    let mut ws = ws_with(&gw, &[]).unwrap();
    assert_eq!(handshake(&mut ws, Some(&token))["ok"], true);
    let mut ws = ws_with(&gw, &[]).unwrap();
    assert_eq!(handshake(&mut ws, None)["error"]["code"], "UNAUTHORIZED");
    // A wrong token in the upgrade request is refused before upgrading.
    assert_eq!(
        ws_with(&gw, &[("Authorization", "Bearer wrong-wrong-wrong-wrong")]).err(),
        Some(401)
    );

    let host = format!("Host: {}", gw.addr);
    let chat = r#"{"model":"openclaw","messages":[{"role":"user","content":"hi"}]}"#;
    // The no-preflight POST a cross-site page can send: refused for its origin...
    let (status, body) = raw(
        &gw,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\n{host}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain"
        ),
        chat,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("FORBIDDEN"), "{body}");
    // ...and for its content type, even with the token and no Origin.
    let (status, body) = raw(
        &gw,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\n{host}\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain"
        ),
        chat,
    );
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("application/json"), "{body}");
    let (status, _) = raw(
        &gw,
        &format!(
            "POST /api/nodes/invoke HTTP/1.1\r\n{host}\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain"
        ),
        r#"{"command":"system.notify"}"#,
    );
    assert_eq!(status, 415);
    // JSON with the token: answered. `application/…+json` with parameters is JSON too.
    let (status, body) = raw(
        &gw,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\n{host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/vnd.api+json; charset=utf-8"
        ),
        chat,
    );
    assert_eq!(status, 200, "{body}");
    // Our own page may POST.
    let (status, body) = raw(
        &gw,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\n{host}\r\nOrigin: {ours}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json"
        ),
        chat,
    );
    assert_eq!(status, 200, "{body}");
    // Reads of the open routes from any page still answer (the page cannot read them).
    let (status, _) = raw(
        &gw,
        &format!("GET /health HTTP/1.1\r\n{host}\r\nOrigin: http://evil.example"),
        "",
    );
    assert_eq!(status, 200);
    let (status, _) = raw(
        &gw,
        &format!(
            "GET /api/status HTTP/1.1\r\n{host}\r\nOrigin: http://evil.example\r\nAuthorization: Bearer {token}"
        ),
        "",
    );
    assert_eq!(status, 403);
}

#[test]
fn foreign_hosts_are_misdirected_unless_the_token_vouches() {
    let gw = TestGateway::start(|c| c.gateway.allowed_hosts = vec!["chat.example.com".into()]);
    let token = gw.token();
    for path in ["/api/status", "/health", "/", "/ws"] {
        let (status, body) = raw(
            &gw,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: rebind.evil.example:{}",
                gw.addr.port()
            ),
            "",
        );
        assert_eq!(status, 421, "{path}: {body}");
    }
    let (_, body) = raw(&gw, "GET /health HTTP/1.1\r\nHost: evil.example", "");
    assert!(
        body.contains("MISDIRECTED_REQUEST") && body.contains("gateway.allowed_hosts"),
        "{body}"
    );
    // A client that has the token is no rebinding page (a proxy under another name).
    let (status, body) = raw(
        &gw,
        &format!("GET /api/status HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {token}"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    // Loopback names and configured names are ours.
    for host in ["localhost", "127.0.0.1", "[::1]", "chat.example.com"] {
        let (status, _) = raw(&gw, &format!("GET /health HTTP/1.1\r\nHost: {host}"), "");
        assert_eq!(status, 200, "{host}");
    }
}

#[test]
fn a_gateway_without_a_configured_token_makes_one_and_guards_with_it() {
    let gw = TestGateway::start(|_| {});
    let path = gw._dir.path().join(crate::access::TOKEN_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = gw.token();
    assert!(token.len() >= 32);
    assert_eq!(gw.get("/api/status").0, 401);
    assert_eq!(gw.get("/v1/models").0, 401);
    assert_eq!(gw.get_with("/api/status", Some(&token)).0, 200);
    assert_eq!(gw.get_with("/v1/models", Some(&token)).0, 200);
    for open in ["/health", "/ready", "/metrics", "/", "/ui/app.js"] {
        assert_eq!(gw.get(open).0, 200, "{open}");
    }
    // The page it serves over loopback carries the token (a same-origin read)...
    let (_, page) = gw.get("/");
    assert!(
        page.contains(&format!(
            "<meta name=\"openclaw-token\" content=\"{token}\">"
        )),
        "{page}"
    );
    // ...not through a proxy, nor under another name.
    let (_, proxied) = raw(
        &gw,
        &format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nX-Forwarded-For: 203.0.113.9",
            gw.addr
        ),
        "",
    );
    assert!(!proxied.contains(&token), "{proxied}");
    let status: openclaw_protocol::StatusReport =
        serde_json::from_str(&gw.get_with("/api/status", Some(&token)).1).unwrap();
    assert_eq!(
        status.security.unwrap().token,
        openclaw_protocol::status::TokenOrigin::Generated
    );

    // A restart keeps the token; a configured one is never put in the page.
    let configured = TestGateway::start(|c| {
        c.gateway.auth.token = Some(Secret::new("a-configured-token-of-32-chars!!"))
    });
    let (_, page) = configured.get("/");
    assert!(
        page.contains("<meta name=\"openclaw-token\" content=\"\">"),
        "{page}"
    );
    assert!(
        !configured
            ._dir
            .path()
            .join(crate::access::TOKEN_FILE)
            .exists()
    );
}

#[test]
fn public_health_names_no_paths_or_addresses() {
    let gw = TestGateway::start(|_| {});
    let data_dir = gw._dir.path().display().to_string();
    let (status, public) = gw.get("/health");
    assert_eq!(status, 200);
    assert!(!public.contains(&data_dir), "{public}");
    assert!(!public.contains(&gw.addr.to_string()), "{public}");
    assert!(public.contains("<data dir>"), "{public}");
    let (_, full) = gw.get_with("/health", Some(&gw.token()));
    assert!(full.contains(&data_dir), "{full}");
    assert!(full.contains(&gw.addr.to_string()), "{full}");
}

#[test]
fn idle_sockets_cannot_hold_the_door_and_big_frames_are_refused() {
    let gw = TestGateway::start(|_| {});
    let token = gw.token();
    // A full pre-auth budget of idle strangers (upgraded, never saying `connect`).
    let mut idle: Vec<_> = (0..crate::ws::PRE_AUTH_BUDGET)
        .map(|_| {
            let mut ws = gw.ws();
            let challenge = read_json(&mut ws);
            assert_eq!(challenge["event"], "connect.challenge");
            ws
        })
        .collect();
    // A real client still gets in: the oldest stranger makes room.
    let mut ws = gw.ws();
    assert_eq!(handshake(&mut ws, Some(&token))["ok"], true);
    let (code, reason) = read_close(&mut idle[0]);
    assert_eq!(code, close::TRY_AGAIN_LATER, "{reason}");
    // Authenticated clients do not count against the pre-auth budget.
    assert!(gw.state.pre_auth.len() <= crate::ws::PRE_AUTH_BUDGET as usize);
    drop(idle);

    // A frame over the limit is refused without being buffered whole.
    let mut big = gw.ws();
    let _ = read_json(&mut big);
    let huge = "x".repeat(crate::ws::MAX_FRAME_BYTES + 1);
    let _ = big.send(Message::text(huge));
    let closed = loop {
        match big.read() {
            Ok(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    assert!(
        closed.is_none() || closed == Some(1009),
        "expected a close for a too-big message, got {closed:?}"
    );
    // The gateway is fine.
    assert_eq!(gw.get("/health").0, 200);
}

#[test]
fn metrics_speak_the_text_format_unless_openmetrics_is_asked_for() {
    let gw = TestGateway::start(|_| {});
    let (status, body) = raw(
        &gw,
        &format!("GET /metrics HTTP/1.1\r\nHost: {}", gw.addr),
        "",
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE openclaw_messages_received_total counter"),
        "{body}"
    );
    assert!(!body.contains("# EOF"));
    let (_, body) = raw(
        &gw,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            gw.addr
        ),
        "",
    );
    assert!(
        body.contains("# TYPE openclaw_messages_received counter"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"));
    // The guide's six families are there before any traffic or provider.
    let (_, body) = gw.get("/metrics");
    for family in [
        "openclaw_messages_received_total{",
        "openclaw_messages_processed_total{",
        "openclaw_response_time_seconds_bucket{",
        "openclaw_tool_executions_total{",
        "openclaw_active_sessions{",
        "openclaw_tokens_used_total{",
    ] {
        assert!(body.contains(family), "missing {family} in\n{body}");
    }
}

#[test]
fn refusals_are_audited_with_a_throttle_and_bounded_paths() {
    let gw = TestGateway::start(|_| {});
    let long = format!("/api/{}?token=guess", "a".repeat(2000));
    for _ in 0..60 {
        assert_eq!(gw.get(&long).0, 401);
    }
    // The audit writes are off the request path; give them a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let audit = loop {
        let audit = gw.audit_text();
        if audit.matches("\"auth.failure\"").count() >= crate::access::AUDIT_BURST as usize
            || Instant::now() > deadline
        {
            break audit;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        audit.matches("\"auth.failure\"").count(),
        crate::access::AUDIT_BURST as usize,
        "{audit}"
    );
    assert!(!audit.contains("token=guess"), "the query is not kept");
    assert!(
        audit.lines().all(|l| l.len() < 800),
        "lines stay short whatever the path"
    );
    let metrics = gw.get("/metrics").1;
    assert!(
        metrics.contains("openclaw_auth_failures_total 60"),
        "{metrics}"
    );
}

#[test]
fn new_session_keys_do_not_escape_the_rate_limit() {
    let fake = FakeLlm::start_in_thread();
    fake.set_fallback(Script::text(["ok"]));
    let gw = TestGateway::start(|c| {
        with_fake(&fake)(c);
        c.security.rate_limiting.default_messages_per_minute = 3;
    });
    let mut ws = gw.ws();
    assert_eq!(handshake(&mut ws, Some(&gw.token()))["ok"], true);
    let mut kinds = Vec::new();
    for i in 0..5 {
        send_json(
            &mut ws,
            json!({"type":"req","id":format!("m{i}"),"method":"chat.send","params":{"text":"hi","session":format!("fresh-{i}")}}),
        );
        let fin = loop {
            let ev = read_json(&mut ws);
            if ev["event"] == "chat.final" || ev["event"] == "chat.error" {
                break ev;
            }
        };
        kinds.push(
            fin["payload"]["kind"]
                .as_str()
                .unwrap_or("error")
                .to_owned(),
        );
    }
    assert_eq!(
        kinds,
        ["answer", "answer", "answer", "rate_limited", "rate_limited"],
        "a new session per message must not reset the limit"
    );
    // The OpenAI API's `user` is the client's choice too.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let (status, _, _) = post_json(
            &gw,
            "/v1/chat/completions",
            json!({"model":"openclaw","user":format!("u{i}"),"messages":[{"role":"user","content":"hi"}]}),
        );
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // Idle state is pruned: nothing is kept per session key once its turn is over.
    let (_, locks) = gw.state.agent.prune_idle_state();
    assert_eq!(locks, 0);
}
