//! Kill -9 and restart of the real binary on its SQLite file: no duplicate
//! warnings, queued calls survive the crash and are sent once, redelivered
//! events change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};

const GW: &str = "gateway-token-1";
const OP: &str = "operator-token-1";
const SECRET: &str = "test-webhook-secret-0123456789";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(cfg: &std::path::Path, base: &str, http: &reqwest::Client) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_anquan-monitor"))
        .args(["serve", "--config"])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Server(child);
    for _ in 0..600 {
        if let Ok(r) = http.get(format!("{base}/health")).send().await
            && r.status().is_success()
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the monitor did not come up");
}

fn ev(i: u32) -> Value {
    json!({"event_id": format!("gw-01/s1/gas-{i:04}/gas.lel/1"), "site": "s1", "device": format!("gas-{i:04}"),
           "kind": "gas", "rule": "gas.lel", "level": "red", "state": "raised", "value": 60.0,
           "threshold": 50.0, "ts_ms": 1_794_268_800_000u64, "gateway": "gw-01"})
}

async fn deliveries(http: &reqwest::Client, base: &str) -> Vec<Value> {
    http.get(format!("{base}/api/v1/deliveries"))
        .bearer_auth(OP)
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

async fn wait_all_sent(http: &reqwest::Client, base: &str, n: usize) {
    for _ in 0..1200 {
        let d = deliveries(http, base).await;
        if d.len() == n && d.iter().all(|x| x["state"] == "SENT") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries not all sent: {:?}",
        deliveries(http, base).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_keeps_everything_once() {
    // Webhook receiver: records delivery ids; can be switched to 503.
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let down = Arc::new(AtomicBool::new(true));
    let (g2, d2) = (got.clone(), down.clone());
    let recv = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let (got, down) = (g2.clone(), d2.clone());
            async move {
                if down.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                assert_eq!(
                    h["x-anquan-signature"].to_str().unwrap(),
                    anquan_monitor::notify::sign(SECRET.as_bytes(), &b)
                );
                got.lock()
                    .unwrap()
                    .push(h["x-anquan-delivery"].to_str().unwrap().to_string());
                axum::http::StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, recv).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = dir.path().join("monitor.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[database]
url = "sqlite://{db}?mode=rwc"
[auth]
intake_tokens = ["{GW}"]
api_tokens = ["{OP}"]
[scheduler]
tick_ms = 20
[notify]
max_attempts = 1000
retry_base_ms = 20
[notify.webhook]
secret = "{SECRET}"
[[seed.regions]]
id = "city"
name = "City"
tier = "city"
[[seed.venues]]
id = "s1"
name = "Scenic area"
sector = "scenic_area"
address = "1 Lake Road"
region_id = "city"
[[seed.people]]
id = "duty1"
name = "Duty"
role = "safety_officer"
region_id = "city"
webhook = "{hook}"
[[seed.duty]]
person_id = "duty1"
role = "safety_officer"
region_id = "city"
"#,
            db = dir.path().join("monitor.db").display()
        ),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let post = |b: Value| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .post(format!("{base}/api/v1/alarms"))
                .bearer_auth(GW)
                .json(&b)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.json::<Value>().await.unwrap()
        }
    };

    // 1. The receiver is down: five warnings, calls queued but not sent.
    let s = start(&cfg, &base, &http).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(post(ev(i)).await["warning_id"].clone());
    }
    assert_eq!(deliveries(&http, &base).await.len(), 5);
    // 2. kill -9 while the calls are pending.
    drop(s);
    // 3. Restart; the receiver comes up; the gateway redelivers everything.
    down.store(false, Ordering::SeqCst);
    let s = start(&cfg, &base, &http).await;
    for i in 0..5 {
        let a = post(ev(i)).await;
        assert_eq!(a["duplicate"], true);
        assert_eq!(a["warning_id"], ids[i as usize]);
    }
    wait_all_sent(&http, &base, 5).await;
    // 4. kill -9 again after everything was sent, restart, redeliver.
    drop(s);
    let _s = start(&cfg, &base, &http).await;
    for i in 0..5 {
        assert_eq!(post(ev(i)).await["duplicate"], true);
    }
    // A new alarm after the restart is a new warning and one more call.
    post(ev(9)).await;
    wait_all_sent(&http, &base, 6).await;
    let ws: Vec<Value> = http
        .get(format!("{base}/api/v1/warnings"))
        .bearer_auth(OP)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ws.len(), 6, "no duplicate warnings");
    let mut seen = got.lock().unwrap().clone();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(n, 6, "each call sent once: {seen:?}");
    assert_eq!(seen.len(), 6);
}
