//! Test harness: the monitor in-process on a free loopback port with a
//! manual clock, a real webhook receiver (axum) that checks the HMAC, and
//! an optional SMTP sink speaking enough SMTP for lettre.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod lastmile;
pub mod pg;
pub mod scenarios;
pub mod schema;
pub mod smtp;
pub mod web;

use std::sync::{Arc, Mutex};

use anquan_monitor::clock::ManualClock;
use anquan_monitor::{App, Config, http, scheduler};
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::{Value, json};

pub const SECRET: &str = "test-webhook-secret-0123456789";
pub const ACK_SECRET: &str = "test-ack-link-secret-0123456789abcdef";
pub const GW: &str = "gateway-token-1";
pub const OP: &str = "operator-token-1";
/// 2026-11-10T00:00:00Z.
pub const T0: i64 = 1_794_268_800_000;

#[derive(Debug, Clone)]
pub struct Hook {
    pub delivery: String,
    pub body: Value,
}

pub struct Harness {
    pub base: String,
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub hooks: Arc<Mutex<Vec<Hook>>>,
    pub http: reqwest::Client,
    pub smtp: Option<smtp::Sink>,
    pub fail_hooks: Arc<std::sync::atomic::AtomicBool>,
}

async fn receiver(
    hooks: Arc<Mutex<Vec<Hook>>>,
    fail: Arc<std::sync::atomic::AtomicBool>,
) -> String {
    let app = axum::Router::new().route(
        "/hook/{who}",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let hooks = hooks.clone();
            let fail = fail.clone();
            async move {
                if fail.load(std::sync::atomic::Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let sig = h
                    .get("x-anquan-signature")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                assert_eq!(
                    sig,
                    anquan_monitor::notify::sign::webhook(SECRET.as_bytes(), &b),
                    "bad HMAC"
                );
                let delivery = h
                    .get("x-anquan-delivery")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                hooks.lock().unwrap().push(Hook {
                    delivery,
                    body: serde_json::from_slice(&b).unwrap(),
                });
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

pub fn config(db_url: &str, hook_base: &str, smtp_port: Option<u16>, extra: &str) -> Config {
    let smtp = smtp_port
        .map(|p| format!("[notify.smtp]\nhost = \"127.0.0.1\"\nport = {p}\nfrom = \"monitor@example.invalid\"\n"))
        .unwrap_or_default();
    let email = |who: &str| {
        if smtp_port.is_some() {
            format!("email = \"{who}@example.invalid\"\n")
        } else {
            String::new()
        }
    };
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "{db_url}"
[auth]
intake_tokens = ["{GW}"]
api_tokens = ["{OP}"]
[notify]
max_attempts = 2
retry_base_ms = 1000
[notify.webhook]
secret = "{SECRET}"
{smtp}
[ack]
secret = "{ACK_SECRET}"

[[seed.regions]]
id = "city"
name = "City"
tier = "city"
[[seed.regions]]
id = "county"
name = "County"
tier = "county"
parent_id = "city"
[[seed.regions]]
id = "town"
name = "Town"
tier = "town"
parent_id = "county"
[[seed.grids]]
id = "g1"
name = "Grid 1"
region_id = "town"
officers = ["grid"]
[[seed.venues]]
id = "s1"
name = "Scenic area"
sector = "scenic_area"
address = "1 Lake Road"
lat = 30.7
lon = 120.7
region_id = "town"
grid_id = "g1"
[[seed.venues]]
id = "s2"
name = "Hotel"
sector = "hotel"
address = "2 Lake Road"
region_id = "town"
grid_id = "g1"
[[seed.devices]]
id = "gas-0001"
venue_id = "s1"
kind = "gas"
name = "Gas detector 1"
location = "Kitchen"
[[seed.people]]
id = "safety1"
name = "Safety 1"
role = "safety_officer"
region_id = "town"
webhook = "{hook_base}/hook/safety1"
{e1}
[[seed.people]]
id = "safety2"
name = "Safety 2"
role = "principal"
region_id = "town"
webhook = "{hook_base}/hook/safety2"
[[seed.people]]
id = "grid"
name = "Grid"
role = "grid_officer"
region_id = "town"
webhook = "{hook_base}/hook/grid"
[[seed.people]]
id = "county1"
name = "County"
role = "county"
region_id = "county"
webhook = "{hook_base}/hook/county1"
[[seed.people]]
id = "leader"
name = "County shift leader"
role = "county"
region_id = "county"
webhook = "{hook_base}/hook/leader"
[[seed.people]]
id = "city1"
name = "City"
role = "city"
region_id = "city"
webhook = "{hook_base}/hook/city1"
[[seed.people]]
id = "force"
name = "Task force leader"
role = "city"
region_id = "city"
webhook = "{hook_base}/hook/force"
[[seed.people]]
id = "cityleader"
name = "City shift leader"
role = "city"
region_id = "city"
webhook = "{hook_base}/hook/cityleader"
[[seed.venue_people]]
venue_id = "s1"
person_id = "safety1"
role = "safety_officer"
[[seed.venue_people]]
venue_id = "s1"
person_id = "safety2"
role = "principal"
[[seed.venue_people]]
venue_id = "s2"
person_id = "safety1"
role = "safety_officer"
[[seed.duty]]
person_id = "safety1"
role = "safety_officer"
region_id = "town"
[[seed.duty]]
person_id = "grid"
role = "grid_officer"
region_id = "town"
[[seed.duty]]
person_id = "county1"
role = "duty_officer"
region_id = "county"
[[seed.duty]]
person_id = "county1"
role = "county"
region_id = "county"
[[seed.duty]]
person_id = "leader"
role = "shift_leader"
region_id = "county"
[[seed.duty]]
person_id = "city1"
role = "duty_officer"
region_id = "city"
[[seed.duty]]
person_id = "city1"
role = "city"
region_id = "city"
[[seed.duty]]
person_id = "force"
role = "task_force_leader"
region_id = "city"
[[seed.duty]]
person_id = "cityleader"
role = "shift_leader"
region_id = "city"
{extra}
"#,
        e1 = email("safety1"),
    );
    Config::parse(&text).unwrap()
}

impl Harness {
    pub async fn start(db_url: &str, with_smtp: bool) -> Self {
        Self::start_with(db_url, with_smtp, "").await
    }

    /// With extra TOML appended to the configuration.
    pub async fn start_with(db_url: &str, with_smtp: bool, extra: &str) -> Self {
        Self::start_tuned(db_url, with_smtp, extra, |_| {}).await
    }

    /// With extra TOML, then `tune` applied to the parsed configuration.
    pub async fn start_tuned(
        db_url: &str,
        with_smtp: bool,
        extra: &str,
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        let smtp = if with_smtp {
            Some(smtp::Sink::start().await)
        } else {
            None
        };
        Self::start_with_sink(db_url, smtp, extra, tune).await
    }

    /// With the given SMTP sink (e.g. one that requires AUTH), extra TOML,
    /// then `tune` applied to the parsed configuration.
    pub async fn start_with_sink(
        db_url: &str,
        smtp: Option<smtp::Sink>,
        extra: &str,
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hook_base = receiver(hooks.clone(), fail.clone()).await;
        let mut cfg = config(db_url, &hook_base, smtp.as_ref().map(|s| s.port), extra);
        // Scheduled report snapshots would add to every tick's counts; the
        // scenario that tests them turns them back on.
        cfg.reports.scheduled_tiers.clear();
        tune(&mut cfg);
        cfg.validate().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let app = App::new(cfg, clock.clone()).await.unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let router = http::router(app.clone());
        tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
        Self {
            base,
            app,
            clock,
            hooks,
            http: reqwest::Client::new(),
            smtp,
            fail_hooks: fail,
        }
    }

    /// With scheduled report snapshots for city and county regions.
    pub async fn start_with_snapshots(db_url: &str) -> Self {
        Self::start_tuned(db_url, false, "", |c| {
            c.reports.scheduled_tiers = vec!["city".into(), "county".into()];
        })
        .await
    }

    pub async fn tick(&self) -> scheduler::Tick {
        scheduler::tick(&self.app).await.unwrap()
    }

    pub async fn alarm(&self, body: &Value) -> (u16, Value) {
        self.raw_alarm(GW, serde_json::to_vec(body).unwrap()).await
    }

    pub async fn raw_alarm(&self, token: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/v1/alarms", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(OP)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(OP)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(OP)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(OP)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// DELETE with the operator token; the status.
    pub async fn delete(&self, path: &str) -> u16 {
        self.http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(OP)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub fn hooks_for(&self, who: &str) -> Vec<Hook> {
        self.hooks
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.body["person_id"] == who)
            .cloned()
            .collect()
    }
}

pub fn event(id: u32, state: &str, level: &str) -> Value {
    json!({
        "event_id": format!("gw-01/s1/gas-0001/gas.lel/{id}"),
        "site": "s1", "device": "gas-0001", "kind": "gas", "rule": "gas.lel",
        "level": level, "state": state, "value": 55.0, "threshold": 50.0,
        "ts_ms": T0, "gateway": "gw-01"
    })
}

pub fn event_on(id: u32, device: &str, rule: &str, state: &str, level: &str) -> Value {
    json!({
        "event_id": format!("gw-01/s1/{device}/{rule}/{id}"),
        "site": "s1", "device": device, "kind": "gas", "rule": rule,
        "level": level, "state": state, "value": 55.0, "threshold": 50.0,
        "ts_ms": T0, "gateway": "gw-01"
    })
}

pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/monitor.db?mode=rwc", dir.path().display())
}
