//! The monitor in the demo: the "六个自动" service in-process on a free
//! loopback port, SQLite in the demo's data directory, on the demo's
//! simulated clock; the gateway forwards its alarms to it over HTTP. A small
//! webhook receiver stands in for the people on duty and prints each call.

use std::sync::{Arc, Mutex};

use anquan_monitor::App;

/// The monitor's bearer token for the gateway.
pub const TOKEN: &str = "demo-gateway-token";

/// The demo clock, seen by the monitor.
#[derive(Debug)]
struct SimClock(anquan_gateway::ManualClock);

impl anquan_monitor::clock::Clock for SimClock {
    fn now_ms(&self) -> i64 {
        i64::try_from(anquan_gateway::Clock::now_ms(&self.0)).unwrap_or(i64::MAX)
    }
}

/// The running monitor.
#[derive(Debug)]
pub struct DemoMonitor {
    /// The service.
    pub app: App,
    /// Its base URL.
    pub url: String,
    /// Calls received by the people's webhook, not printed yet.
    pub calls: Arc<Mutex<Vec<String>>>,
}

async fn listener() -> Result<(tokio::net::TcpListener, String), String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("no free port: {e}"))?;
    let a = l.local_addr().map_err(|e| e.to_string())?;
    Ok((l, format!("http://{a}")))
}

/// Starts the monitor with the demo site's registry.
pub async fn start(
    dir: &std::path::Path,
    site: &str,
    clock: anquan_gateway::ManualClock,
) -> Result<DemoMonitor, String> {
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let c2 = calls.clone();
    let receiver = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |body: axum::body::Bytes| {
            let calls = c2.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let line = format!(
                        "monitor -> {:<8} {}",
                        v["person_id"].as_str().unwrap_or("?"),
                        v["title"].as_str().unwrap_or("?")
                    );
                    if let Ok(mut c) = calls.lock() {
                        c.push(line);
                    }
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let (rl, hook) = listener().await?;
    tokio::spawn(async move {
        let _ = axum::serve(rl, receiver).await;
    });
    let people = [
        ("safety1", "safety_officer", "demo-town", 0),
        ("safety2", "safety_officer", "demo-town", 1),
        ("grid1", "grid_officer", "demo-town", 0),
        ("county1", "county", "demo-county", 0),
        ("city1", "city", "demo-city", 0),
    ];
    let mut seed = String::new();
    for (id, role, region, rank) in people {
        seed.push_str(&format!(
            "[[seed.people]]\nid = \"{id}\"\nname = \"{id}\"\nrole = \"{role}\"\nregion_id = \"{region}\"\nwebhook = \"{hook}/notify\"\n\
             [[seed.duty]]\nperson_id = \"{id}\"\nrole = \"{role}\"\nregion_id = \"{region}\"\nrank = {rank}\n"
        ));
    }
    for (id, kind, _) in crate::DEVICES {
        seed.push_str(&format!(
            "[[seed.devices]]\nid = \"{id}\"\nvenue_id = \"{site}\"\nkind = \"{kind}\"\n"
        ));
    }
    let text = format!(
        r#"
[database]
url = "sqlite://{db}?mode=rwc"
[auth]
intake_tokens = ["{TOKEN}"]
api_tokens = ["demo-operator-token"]
[notify.webhook]
secret = "demo-webhook-hmac-secret"
[[routing]]
level = "blue"
roles = ["safety_officer", "grid_officer", "county", "city"]
[[seed.regions]]
id = "demo-city"
name = "Demo city"
tier = "city"
[[seed.regions]]
id = "demo-county"
name = "Demo county"
tier = "county"
parent_id = "demo-city"
[[seed.regions]]
id = "demo-town"
name = "Demo town"
tier = "town"
parent_id = "demo-county"
[[seed.venues]]
id = "{site}"
name = "Demo site"
sector = "construction"
address = "1 Demo Road"
region_id = "demo-town"
{seed}
"#,
        db = dir.join("monitor.db").display()
    );
    let cfg = anquan_monitor::Config::parse(&text).map_err(|e| format!("monitor config: {e}"))?;
    let app = App::new(cfg, Arc::new(SimClock(clock)))
        .await
        .map_err(|e| format!("monitor: {e}"))?;
    let (ml, url) = listener().await?;
    let router = anquan_monitor::api::router(app.clone());
    tokio::spawn(async move {
        let _ = axum::serve(ml, router).await;
    });
    Ok(DemoMonitor { app, url, calls })
}

impl DemoMonitor {
    /// One scheduler pass (SLA calls, reminders, deliveries) at the demo's
    /// time; returns the calls received since the last pass.
    pub async fn tick(&self) -> Result<Vec<String>, String> {
        anquan_monitor::scheduler::tick(&self.app)
            .await
            .map_err(|e| format!("monitor: {e}"))?;
        Ok(self
            .calls
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default())
    }

    /// How many alarm events the monitor has taken.
    pub async fn events(&self) -> Result<i64, String> {
        count(&self.app, "SELECT COUNT(*) AS n FROM alarm_events").await
    }

    /// One summary line per warning (no braces: the demo test parses lines
    /// with `{` as alarm events).
    pub async fn summary(&self) -> Result<Vec<String>, String> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT device, rule, max_level, state, clearable, notify_rank FROM warnings ORDER BY raised_ms, id",
        )
        .fetch_all(&self.app.db)
        .await
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for r in rows {
            let get = |c: &str| r.try_get::<String, _>(c).unwrap_or_default();
            out.push(format!(
                "monitor: warning {:<10} {:<20} max {:<6} {:<8} cleared at source: {:<3} people called: {}",
                get("device"),
                get("rule"),
                get("max_level"),
                get("state"),
                if r.try_get::<i64, _>("clearable").unwrap_or(0) == 1 { "yes" } else { "no" },
                r.try_get::<i64, _>("notify_rank").unwrap_or(0) + 1
            ));
        }
        Ok(out)
    }
}

async fn count(app: &App, sql: &str) -> Result<i64, String> {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(&app.db)
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .map_err(|e| e.to_string())
}
