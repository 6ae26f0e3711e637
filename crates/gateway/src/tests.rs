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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
    _dir: tempfile::TempDir,
}

impl TestGateway {
    fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
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
        };
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
                ready_tx.send(gateway.state()).unwrap();
                gateway
                    .run(async move {
                        let _ = stop_rx.await;
                    })
                    .await
            })
        });
        let state = ready_rx.recv().unwrap();
        Self {
            addr: state.local_addr,
            state,
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
            .record_message("telegram", true, Duration::from_millis(300))
            .await;
        state
            .record_message("telegram", false, Duration::from_millis(100))
            .await;
        state.record_tool_call("memory_search", true).await;
        state.metrics.tokens("anthropic", "output", 42);
    });
    let (_, report) = gw.health();
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
    assert_eq!(handshake(&mut a, None)["ok"], true);
    let mut b = gw.ws();
    assert_eq!(handshake(&mut b, None)["ok"], true);

    let mut c = gw.ws();
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
    assert_eq!(handshake(&mut d, None)["ok"], true);
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
    assert_eq!(handshake(&mut ws, None)["ok"], true);
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
