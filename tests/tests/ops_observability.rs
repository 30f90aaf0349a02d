//! The Grafana dashboard (`ops/grafana/anquan.json`) and the Prometheus
//! alert rules (`ops/prometheus/alerts.yml`) cannot drift from the
//! gateway or the monitor: both parse, `promtool check rules` accepts the
//! rules, and every `anquan_*` metric name used in any panel, variable or
//! rule is a sample name in the `/metrics` page of a real gateway process,
//! driven through every path that creates a labelled series (alarms,
//! rejects, sequence gaps, HTTP 401/422, a time-series outage until the
//! queue drops, a Modbus link whose slave never answers, a DTU that dials
//! in and one that is refused, a rules reload),
//! or of a real monitor (the example configuration, served on loopback with
//! its scheduler: an alarm, a redelivery, refusals, failing deliveries, a
//! missed red SLA).

// Test helpers outside #[test] fns: a failed setup step is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::mqtt::{Publisher, gas_frame, now_ms, telemetry_topic};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, VictoriaMetrics, eventually};
use serde::Deserialize;

const T: Duration = Duration::from_secs(60);

/// Metrics Prometheus makes itself (not exported by our services).
const PROMETHEUS_BUILTIN: &[&str] = &["up"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    _for: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// Every PromQL expression of the dashboard: panel targets (rows nest
/// panels) and query variables, with where each is.
fn dashboard_exprs(d: &serde_json::Value) -> Vec<(String, String)> {
    fn panels(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in v.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                let e = t["expr"].as_str().unwrap_or("");
                assert!(!e.is_empty(), "panel `{title}`: target without expr");
                out.push((format!("panel `{title}`"), e.to_string()));
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&d["panels"], &mut out);
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]
                .as_str()
                .or_else(|| v["query"]["query"].as_str())
                .unwrap_or("");
            out.push((format!("variable `{}`", v["name"]), q.to_string()));
        }
    }
    out
}

/// Metric names in a PromQL expression: identifiers that start with
/// `anquan_`, plus the Prometheus built-ins used.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            // A label name inside `{...}` or `by (...)` never starts with
            // `anquan_`; `up` only counts as a metric when a selector follows.
            if word.starts_with("anquan_")
                || (PROMETHEUS_BUILTIN.contains(&word) && expr[i..].starts_with('{'))
            {
                names.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Sample names on a Prometheus text page.
fn page_names(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn dashboard_and_alert_rules_parse_and_use_only_real_metrics() {
    // 1. Parse both.
    let dash_path = repo().join("ops/grafana/anquan.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dash_path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", dash_path.display()));
    assert!(dash["uid"].is_string() && dash["title"].is_string());
    let mut used: Vec<(String, String)> = dashboard_exprs(&dash);
    assert!(used.len() >= 20, "dashboard has {} queries", used.len());
    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        assert!(ids.insert(p["id"].as_i64().unwrap()), "duplicate panel id");
    }

    let rules_path = repo().join("ops/prometheus/alerts.yml");
    let rules: RuleFile = serde_norway::from_str(&std::fs::read_to_string(&rules_path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", rules_path.display()));
    let mut alerts = BTreeSet::new();
    for g in &rules.groups {
        for r in &g.rules {
            assert!(
                alerts.insert(r.alert.clone()),
                "duplicate alert {}",
                r.alert
            );
            assert!(
                r.labels.contains_key("severity") && r.annotations.contains_key("summary"),
                "{}/{}: needs a severity label and a summary",
                g.name,
                r.alert
            );
            used.push((format!("alert {}", r.alert), r.expr.clone()));
        }
    }
    for must in [
        "AnquanGatewayDown",
        "AnquanGatewayBufferGrowing",
        "AnquanGatewayBufferOverflow",
        "AnquanDevicesOfflineSpike",
        "AnquanForwardUnauthorized",
        "AnquanForwardDeadLetters",
        "AnquanSinkErrors",
        "AnquanMonitorDown",
        "AnquanMonitorRedSlaBreached",
        "AnquanMonitorNotificationFailures",
        "AnquanMonitorSchedulerWithoutLeader",
    ] {
        assert!(alerts.contains(must), "alert {must} missing");
    }

    // 2. promtool (scripts/install-deps installs Debian's `prometheus`).
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules_path)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool not runnable ({e}): run scripts/install-deps (Debian package `prometheus`)")
        });
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let prom_cfg = repo().join("ops/prometheus/prometheus.yml");
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(&prom_cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // 3. A real gateway and a real monitor through every path that creates
    // a series.
    let page = format!("{}\n{}", drive_gateway(), drive_monitor());
    let exported = page_names(&page);
    let mut missing = Vec::new();
    for (place, expr) in &used {
        for name in metric_names(expr) {
            if !exported.contains(&name) && !PROMETHEUS_BUILTIN.contains(&name.as_str()) {
                missing.push(format!("{place}: {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "metric names used but not exported by the gateway or the monitor:\n{}\n\n/metrics:\n{page}",
        missing.join("\n")
    );
    // And the reverse, as a guard against a dashboard that forgot a whole
    // family: every gateway and monitor family appears somewhere.
    let all_used: BTreeSet<String> = used.iter().flat_map(|(_, e)| metric_names(e)).collect();
    let unused: Vec<&String> = exported
        .iter()
        .filter(|n| n.starts_with("anquan_gateway_") || n.starts_with("anquan_monitor_"))
        .filter(|n| {
            let family = n
                .strip_suffix("_bucket")
                .or_else(|| n.strip_suffix("_sum"))
                .or_else(|| n.strip_suffix("_count"))
                .unwrap_or(n);
            !all_used.iter().any(|u| u.starts_with(family))
        })
        .collect();
    assert!(
        unused.is_empty(),
        "gateway or monitor metrics on no dashboard panel and in no rule: {unused:?}"
    );
}

/// The value of one sample on a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Serves the monitor (its example configuration, SQLite in a temp dir, a
/// hand-moved clock, its scheduler ticking every 50 ms) on loopback and
/// drives it: an alarm, its redelivery, an invalid one, a wrong token,
/// calls whose webhook refuses connections, a red SLA missed. Returns the
/// final `/metrics` page.
fn drive_monitor() -> String {
    use anquan_monitor::clock::ManualClock;
    const GW: &str = "change-me-gateway-token";
    const T0: i64 = 1_794_268_800_000;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/monitor.db?mode=rwc", dir.path().display());
    let example = std::fs::read_to_string(repo().join("monitor/monitor.example.toml")).unwrap();
    let text = example
        .replace("sqlite://monitor.db?mode=rwc", &db)
        .replace("tick_ms = 1000", "tick_ms = 50")
        .replace("retry_base_ms = 2000", "retry_base_ms = 1");
    assert!(text.contains(&db) && text.contains("tick_ms = 50"));
    let cfg = anquan_monitor::Config::parse(&text).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let clock = Arc::new(ManualClock::new(T0));
        let app = anquan_monitor::App::new(cfg, clock.clone()).await.unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(anquan_monitor::scheduler::run(app.clone(), stop.clone()));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(l, anquan_monitor::http::router(app)).await;
        });
        let http = reqwest::Client::new();
        let page = || async {
            let r = http.get(format!("{base}/metrics")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.text().await.unwrap()
        };
        let until = |what: &'static str, name: &'static str, min: f64| {
            let page = &page;
            async move {
                for _ in 0..600 {
                    let p = page().await;
                    if sample(&p, name).is_some_and(|v| v >= min) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!(
                    "monitor: {what} ({name} >= {min}) within 60 s:\n{}",
                    page().await
                );
            }
        };
        let ev = serde_json::json!({
            "event_id": "gw-01/s1/gas-0001/gas.lel/1", "site": "s1", "device": "gas-0001",
            "kind": "gas", "rule": "gas.lel", "level": "red", "state": "raised",
            "value": 55.0, "threshold": 50.0, "ts_ms": T0, "gateway": "gw-01"
        });
        let post = |token: &'static str, body: serde_json::Value| {
            let http = &http;
            let base = &base;
            async move {
                http.post(format!("{base}/api/v1/alarms"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(post(GW, ev.clone()).await, 200);
        assert_eq!(post(GW, ev.clone()).await, 200);
        let mut bad = ev.clone();
        bad["level"] = "purple".into();
        assert_eq!(post(GW, bad).await, 422);
        assert_eq!(post("wrong-token-0000", ev).await, 401);
        until(
            "the scheduler ticking",
            "anquan_monitor_scheduler_lease_held",
            1.0,
        )
        .await;
        until(
            "a failed webhook call",
            r#"anquan_monitor_notifications_failed_total{channel="webhook"}"#,
            1.0,
        )
        .await;
        clock.advance_ms(6 * 60_000);
        until(
            "a red SLA breach",
            r#"anquan_monitor_sla_breaches_total{level="red"}"#,
            1.0,
        )
        .await;
        let last = page().await;
        stop.cancel();
        last
    })
}

/// Starts Mosquitto, VictoriaMetrics, an HTTP receiver and the gateway,
/// drives it, and returns its final `/metrics` page.
/// A GB/T 26875.3 send-data frame from device 100001: one detector back
/// to normal operation.
fn gb26875_frame() -> Vec<u8> {
    use anquan_protocol::gb26875::{
        ComponentAddress, ComponentId, ComponentState, Description, Object, SystemId, TimeTag,
    };
    let time = TimeTag::new(26, 12, 6, 10, 0, 0).unwrap();
    let obj = Object::ComponentStatus {
        component: ComponentId {
            system: SystemId {
                kind: 1,
                address: 1,
            },
            kind: 40,
            address: ComponentAddress::new(1, 2),
        },
        state: ComponentState::NORMAL,
        description: Description::new(b"1F"),
        time,
    };
    anquan_sim::fire_panel::send_frame(1, 100_001, 0, time, Some(&obj)).unwrap()
}

fn drive_gateway() -> String {
    let mq = Mosquitto::start();
    let mut vm = VictoriaMetrics::start();
    let rx = Receiver::start("good");
    // A Modbus "slave" that accepts connections and never answers: requests
    // time out, are retried, polls fail, the device goes offline.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let dtu_port = anquan_e2e::services::free_port();
    let gb_port = anquan_e2e::services::free_port();
    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_dir.path().join("rules.toml");
    std::fs::write(&rules, "[kind.gas.rules.\"gas.offline\"]\nafter_s = 3600\n").unwrap();

    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        tsdb_url: Some(vm.url()),
        http: Some((rx.url(), "good".into())),
        mqtt_alarms: true,
        extra: format!(
            "[rules]\nfile = \"{}\"\n\n[buffer]\npoints_max_bytes = 65536\n\n\
             [[modbus.links]]\nname = \"silent\"\ntransport = \"tcp\"\naddress = \"{silent_addr}\"\n\
             poll_interval_ms = 300\ntimeout_ms = 200\nretries = 1\noffline_after = 1\n\
             backoff = {{ initial_ms = 50, max_ms = 200 }}\n\n\
             [[modbus.links.devices]]\nid = \"wp-1\"\nsite = \"s1\"\nkind = \"water_pressure\"\nunit = 1\n\n\
             [modbus.dtu]\nlisten = \"127.0.0.1:{dtu_port}\"\nheartbeat = \"HB\"\n\n\
             [[modbus.links]]\nname = \"dtu\"\ntransport = \"dtu\"\ndtu_id = \"OBS-DTU\"\n\
             poll_interval_ms = 300\ntimeout_ms = 200\nretries = 0\noffline_after = 1\n\n\
             [[modbus.links.devices]]\nid = \"wp-2\"\nsite = \"s1\"\nkind = \"water_pressure\"\nunit = 1\n\n\
             [gb26875]\nlisten = \"127.0.0.1:{gb_port}\"\n\n\
             [[gb26875.devices]]\naddress = 100001\nid = \"fp-1\"\nsite = \"s1\"\n",
            rules.display()
        ),
        ..Setup::default()
    });
    let mut p = Publisher::connect(mq.port(), "devs");

    // An alarm delivered over MQTT and HTTP (after a 401 and a 503),
    // then one the receiver refuses for good (422 → dead letter).
    rx.answer_next(&[401, 503]);
    p.publish(
        &telemetry_topic("s1", "gas-1"),
        &gas_frame("gas-1", 1, now_ms(), 60.0),
    );
    eventually(T, "the first alarm delivered", || {
        rx.events().first().cloned()
    });
    rx.answer_next(&[422]);
    // seq 1 → 5: a gap of 3; 1 %LEL clears the alarm (dead-lettered).
    p.publish(
        &telemetry_topic("s1", "gas-1"),
        &gas_frame("gas-1", 5, now_ms(), 1.0),
    );
    // Garbage is rejected and counted by reason.
    p.publish(&telemetry_topic("s1", "gas-1"), "not json");
    eventually(T, "the dead letter", || {
        let m = gw.metrics();
        m.contains("anquan_gateway_forward_dead_letter_total")
            .then_some(())
    });

    // Rules reload by SIGHUP.
    gw.hangup();
    eventually(T, "rules reloaded", || {
        (gw.metric(r#"anquan_gateway_rules_reloads_total{result="ok"}"#) >= 1.0).then_some(())
    });

    // Modbus: the silent slave's device goes offline.
    eventually(T, "the Modbus device offline", || {
        (gw.metric(r#"anquan_gateway_modbus_devices_offline{link="silent"}"#) >= 1.0).then_some(())
    });

    // Modbus over a DTU that dials in: one registers, sends a heartbeat
    // and garbage between requests (it never answers); one sends an
    // unknown registration and is refused.
    let mut dtu = std::net::TcpStream::connect(("127.0.0.1", dtu_port)).unwrap();
    dtu.write_all(b"OBS-DTU").unwrap();
    eventually(T, "the DTU registered", || {
        (gw.metric(r#"anquan_gateway_dtu_connections_total{result="accepted"}"#) >= 1.0)
            .then_some(())
    });
    dtu.write_all(b"HBzz").unwrap();
    eventually(T, "its heartbeat and garbage dropped", || {
        (gw.metric(r#"anquan_gateway_dtu_heartbeats_total{link="dtu"}"#) >= 1.0
            && gw.metric(r#"anquan_gateway_dtu_discarded_bytes_total{link="dtu"}"#) >= 2.0)
            .then_some(())
    });
    let mut stranger = std::net::TcpStream::connect(("127.0.0.1", dtu_port)).unwrap();
    stranger.write_all(b"WHO-AM-I").unwrap();
    eventually(T, "the unknown DTU refused", || {
        (gw.metric(r#"anquan_gateway_dtu_connections_total{result="unknown"}"#) >= 1.0)
            .then_some(())
    });

    // A fire-alarm transmission device: one frame (a detector back to
    // normal) confirmed.
    let mut fire_panel = std::net::TcpStream::connect(("127.0.0.1", gb_port)).unwrap();
    fire_panel.write_all(&gb26875_frame()).unwrap();
    eventually(T, "the transmission device's frame confirmed", || {
        (gw.metric(r#"anquan_gateway_gb26875_frames_total{result="confirmed"}"#) >= 1.0)
            .then_some(())
    });

    // Time-series outage: writes fail, points pile up past the 64 KiB cap
    // and the oldest are dropped.
    eventually(T, "a successful sink write", || {
        (gw.metric("anquan_gateway_sink_points_total") >= 1.0).then_some(())
    });
    vm.stop();
    let mut seq = 10;
    eventually(T, "points dropped at the byte cap", || {
        for _ in 0..200 {
            seq += 1;
            p.publish(
                &telemetry_topic("s1", "gas-2"),
                &gas_frame("gas-2", seq, now_ms(), 1.0),
            );
        }
        let m = gw.metrics();
        (m.contains("anquan_gateway_queue_dropped_total")
            && m.contains("anquan_gateway_sink_errors_total"))
        .then_some(())
    });
    gw.metrics()
}
