//! deploy/ checked by the real tools: promtool (rules and their unit tests), a real Prometheus
//! scraping a running gateway, systemd-analyze, nginx -t, docker-compose config, and the Grafana
//! dashboard's queries against the metrics a gateway really exports.
//! Needs the Debian packages that scripts/install-deps.sh installs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::{FakeLlm, Script};
use openclaw_tests::{GatewayProcess, free_port};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn deploy_dir() -> PathBuf {
    openclaw_tests::repo_root().join("deploy")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}): run ./scripts/install-deps.sh"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests() {
    let (ok, out) = run(Command::new("promtool").current_dir(deploy_dir()).args([
        "check",
        "rules",
        "alerts.yaml",
    ]));
    assert!(ok && out.contains("SUCCESS: 5 rules found"), "{out}");
    let (ok, out) = run(Command::new("promtool").current_dir(deploy_dir()).args([
        "test",
        "rules",
        "alerts.test.yaml",
    ]));
    assert!(ok && out.contains("SUCCESS"), "{out}");
    let (ok, out) = run(Command::new("promtool").current_dir(deploy_dir()).args([
        "check",
        "config",
        "prometheus.yml",
    ]));
    assert!(ok, "{out}");
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn promtool_finds_the_metrics_clean_and_the_guides_families_present() {
    let mut gw = GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    // A plain scrape gets the text format promtool reads.
    let (status, text) = gw.get("/metrics").unwrap();
    assert_eq!(status, 200);
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) — run ./scripts/install-deps.sh");
    use std::io::Write;
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{text}"
    );
    // The guide's six families, with no provider or channel configured and no traffic yet.
    for family in [
        "openclaw_messages_received_total",
        "openclaw_messages_processed_total",
        "openclaw_response_time_seconds_bucket",
        "openclaw_tool_executions_total",
        "openclaw_active_sessions",
        "openclaw_tokens_used_total",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{family}{{"))),
            "no {family} series in\n{text}"
        );
    }
}

#[test]
fn a_real_prometheus_scrapes_the_gateway_and_loads_the_rules() {
    let mut gw = GatewayProcess::start(None, &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: openclaw\n    static_configs:\n      - targets: [\"{}\"]\n",
            deploy_dir().join("alerts.yaml").display(),
            gw.addr
        ),
    )
    .unwrap();
    let port = free_port();
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package) — run ./scripts/install-deps.sh");
    let _prom = Killed(prom);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let api = |path: &str| -> Option<Value> {
        let mut resp = agent.get(format!("http://{addr}{path}")).call().ok()?;
        serde_json::from_str(&resp.body_mut().read_to_string().ok()?).ok()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        if let Some(v) = api("/api/v1/query?query=openclaw_messages_received_total")
            && !v["data"]["result"].as_array().is_none_or(|r| r.is_empty())
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never got openclaw_messages_received_total"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let series = result["data"]["result"].as_array().unwrap();
    assert!(
        series.iter().all(|s| s["metric"]["job"] == "openclaw"),
        "{result}"
    );
    let channels: Vec<&str> = series
        .iter()
        .filter_map(|s| s["metric"]["channel"].as_str())
        .collect();
    assert!(
        channels.contains(&"webchat") && channels.contains(&"api"),
        "{channels:?}"
    );
    let up = api("/api/v1/query?query=up%7Bjob%3D%22openclaw%22%7D").unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1");
    let rules = api("/api/v1/rules").unwrap();
    let names: Vec<&str> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "OpenClawDown",
            "HighErrorRate",
            "ChannelDisconnected",
            "HighMemoryUsage",
            "HighResponseTime"
        ]
    );
}

#[test]
fn systemd_analyze_verifies_the_unit_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(deploy_dir().join("openclaw.service")).unwrap();
    // What the service writes (database, logs, backups, tokens) is its user's alone.
    assert!(
        unit.lines().any(|l| l.trim() == "UMask=0077"),
        "the unit must set UMask=0077:\n{unit}"
    );
    // The unit names the installed path; point it at the binary built here.
    let unit = unit.replace(
        "/usr/local/bin/openclaw",
        &openclaw_tests::openclaw_bin().display().to_string(),
    );
    let path = dir.path().join("openclaw.service");
    std::fs::write(&path, unit).unwrap();
    let (ok, out) = run(Command::new("systemd-analyze").arg("verify").arg(&path));
    assert!(ok, "{out}");
    assert!(out.trim().is_empty(), "systemd-analyze warned:\n{out}");
}

fn make_cert(dir: &Path, host: &str) {
    let (ok, out) = run(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={host}"),
        "-keyout",
        &format!("{host}.key"),
        "-out",
        &format!("{host}.crt"),
    ]));
    assert!(ok, "{out}");
}

#[test]
fn nginx_accepts_the_multi_instance_config() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["user1.example.com", "user2.example.com"] {
        make_cert(dir.path(), host);
    }
    let d = dir.path().display().to_string();
    let conf = std::fs::read_to_string(deploy_dir().join("nginx.conf"))
        .unwrap()
        .replace("/etc/nginx/certs", &d)
        .replace("/run/nginx-openclaw.pid", &format!("{d}/nginx.pid"))
        .replace("/var/log/nginx/", &format!("{d}/"));
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let (ok, out) = run(Command::new("nginx")
        .arg("-t")
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path()));
    assert!(ok && out.contains("test is successful"), "{out}");
}

#[test]
fn docker_compose_accepts_the_compose_file() {
    let (ok, out) = run(Command::new("docker-compose")
        .current_dir(deploy_dir())
        .args(["-f", "docker-compose.yml", "config"])
        .env("ANTHROPIC_API_KEY", "a")
        .env("OPENAI_API_KEY", "b")
        .env("OPENCLAW_GATEWAY_TOKEN", "c"));
    assert!(ok, "{out}");
    for needle in [
        "gateway:",
        "browser:",
        "sandbox-pool:",
        "127.0.0.1",
        "18789",
        "memory: 2G",
        "openclaw-data:",
        "no-new-privileges:true",
    ] {
        assert!(out.contains(needle), "missing {needle}:\n{out}");
    }
}

/// Metric names in a Prometheus expression: identifiers outside `{…}` label matchers, `[…]`
/// ranges and `by (…)` / `without (…)` label lists that are neither functions nor operators.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "topk",
        "bottomk",
        "quantile",
        "stddev",
        "stdvar",
        "count_values",
        "group",
    ];
    const KEYWORDS: [&str; 9] = [
        "by", "without", "on", "ignoring", "and", "or", "unless", "bool", "offset",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut label_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' | '"' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => '"',
                };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            ')' => {
                label_list = false;
                i += 1;
            }
            c if c.is_ascii_digit() => {
                // A number, exponent included (1e-9).
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                    i += 1;
                    if i < chars.len() && (chars[i] == '-' || chars[i] == '+') {
                        i += 1;
                    }
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
                if matches!(word.as_str(), "by" | "without" | "on" | "ignoring") {
                    label_list = true;
                } else if !(label_list
                    || next == Some('(')
                    || AGGREGATIONS.contains(&word.as_str())
                    || KEYWORDS.contains(&word.as_str()))
                {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_name_extraction() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.95, sum by (job, le) (rate(openclaw_response_time_seconds_bucket{channel="a b"}[5m]))) > 30"#
        ),
        BTreeSet::from(["openclaw_response_time_seconds_bucket".to_owned()])
    );
    assert_eq!(
        metric_names("sum(rate(a_total[5m])) / clamp_min(sum(rate(b_total[5m])), 1e-9) > 1.5e9"),
        BTreeSet::from(["a_total".to_owned(), "b_total".to_owned()])
    );
    assert_eq!(
        metric_names("time() - process_start_time_seconds{job=\"openclaw\"}"),
        BTreeSet::from(["process_start_time_seconds".to_owned()])
    );
}

#[test]
fn every_grafana_query_names_a_metric_the_gateway_exports() {
    // A gateway that has failed over once, so every family has series.
    let first = FakeLlm::start_in_thread();
    let second = FakeLlm::start_in_thread();
    first.push(Script::overloaded());
    second.push(Script::text(["ok"]));
    let config = format!(
        "providers:\n  anthropic:\n    api_key: k\n    base_url: \"{}\"\n    failover_enabled: true\n  openai:\n    api_key: k\n    base_url: \"{}\"\n",
        first.anthropic_url(),
        second.openai_url()
    );
    let mut gw = GatewayProcess::start(Some(&config), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let out = gw.cli(&["status"]);
    assert!(out.status.success());
    let body = r#"{"model":"openclaw","messages":[{"role":"user","content":"hi"}]}"#;
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        gw.addr,
        gw.token().unwrap_or_default(),
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let (_, metrics) = gw.get("/metrics").unwrap();
    let mut exported: BTreeSet<String> = BTreeSet::from(["up".to_owned()]);
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name: String = line
            .chars()
            .take_while(|c| *c != '{' && *c != ' ')
            .collect();
        exported.insert(name);
    }
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut checked = 0;
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names(expr);
            assert!(!names.is_empty(), "no metric in {expr}");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "panel {:?} queries {name}, which the gateway does not export",
                    panel["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 14);
}
