//! The monitor in the demo: the "六个自动" service in-process on a loopback
//! port, SQLite in the demo's data directory, on the demo's simulated
//! clock; the gateway forwards its alarms to it over HTTP. The people of
//! the demo site are reached the way they would be in production — SMS
//! and voice calls through Alibaba Cloud, the site's WeCom group robot —
//! except that those providers are the monitor's local stand-ins
//! (`anquan_monitor::notify::standin`, which check each request's shape and
//! signature as the providers document them): the real APIs are not
//! reached. The demo prints every message the stand-ins receive.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use anquan_monitor::App;
use anquan_monitor::messages::{self, Lang};
use anquan_monitor::notify::standin::{Credentials, Received, Standin};

/// The monitor's bearer token for the gateway.
pub const TOKEN: &str = "demo-gateway-token";

/// The provider callback token (receipts, SMS replies).
const CALLBACK_TOKEN: &str = "demo-callback-token-0123456789";

/// The demo clock, seen by the monitor.
#[derive(Debug)]
struct SimClock(anquan_gateway::ManualClock);

impl anquan_monitor::clock::Clock for SimClock {
    fn now_ms(&self) -> i64 {
        i64::try_from(anquan_gateway::Clock::now_ms(&self.0)).unwrap_or(i64::MAX)
    }
}

/// The demo's people: id, name, phone, region, channels.
const PEOPLE: [(&str, &str, &str, &str, &str); 8] = [
    (
        "safety1",
        "王安全",
        "13800000001",
        "demo-town",
        "sms,voice,wecom:site-group",
    ),
    (
        "manager",
        "李经理",
        "13800000002",
        "demo-town",
        "sms,voice,wecom:site-group",
    ),
    ("grid1", "张网格", "13800000003", "demo-town", "sms,voice"),
    (
        "county1",
        "赵值班",
        "13800000004",
        "demo-county",
        "sms,voice",
    ),
    (
        "countyld",
        "钱带班",
        "13800000005",
        "demo-county",
        "sms,voice",
    ),
    ("city1", "孙值班", "13800000006", "demo-city", "sms,voice"),
    ("force", "周专班", "13800000007", "demo-city", "sms,voice"),
    ("cityld", "吴带班", "13800000008", "demo-city", "sms,voice"),
];

/// The rota: person, role, region (always on duty in the demo).
const DUTY: [(&str, &str, &str); 8] = [
    ("county1", "duty_officer", "demo-county"),
    ("county1", "county", "demo-county"),
    ("countyld", "shift_leader", "demo-county"),
    ("countyld", "county", "demo-county"),
    ("city1", "duty_officer", "demo-city"),
    ("city1", "city", "demo-city"),
    ("force", "task_force_leader", "demo-city"),
    ("cityld", "shift_leader", "demo-city"),
];

/// The web accounts of `--web`: username, role, person, who.
pub const USERS: [(&str, &str, Option<&str>, &str); 5] = [
    (
        "county",
        "county",
        Some("county1"),
        "the county duty officer 赵值班",
    ),
    (
        "ent",
        "enterprise",
        Some("safety1"),
        "the site's safety officer 王安全",
    ),
    ("grid", "grid", Some("grid1"), "the grid officer 张网格"),
    (
        "city",
        "city",
        Some("city1"),
        "the city duty officer 孙值班",
    ),
    ("admin", "admin", None, "the administrator"),
];

/// The devices' names and places (the messages carry them).
fn device_info(id: &str) -> (&'static str, &'static str) {
    match id {
        "gas-0001" => ("燃气探测器1号", "食堂后厨"),
        "elec-0001" => ("电气火灾监控器", "1号配电房"),
        "wp-0001" => ("消防水压传感器", "消防泵房"),
        "crane-0001" => ("1号塔吊", "2号楼作业面"),
        _ => ("设备", ""),
    }
}

/// The running monitor.
pub struct DemoMonitor {
    /// The service.
    pub app: App,
    /// Its base URL.
    pub url: String,
    /// The providers' stand-ins.
    pub standin: Standin,
    /// Phone → person.
    phones: BTreeMap<String, &'static str>,
    /// The web accounts' password (`--web`).
    pub password: Option<String>,
    /// The SMS reply to send on the next pass: (phone, code, what).
    reply: std::sync::Mutex<Option<(String, String, String)>>,
    /// Whether the demo's safety officer has answered an SMS yet.
    replied: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for DemoMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoMonitor")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A password nobody can guess from the source (the OS's random hash
/// keys; nothing here needs more).
fn random_password() -> String {
    let part = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("{:08x}{:08x}", part() as u32, part() as u32)
}

/// Starts the monitor with the demo site's registry; with `web`, on that
/// address with the demo's web accounts.
pub async fn start(
    dir: &std::path::Path,
    site: &str,
    clock: anquan_gateway::ManualClock,
    web: Option<&str>,
) -> Result<DemoMonitor, String> {
    let standin = Standin::start(Credentials::default())
        .await
        .map_err(|e| format!("the providers' stand-ins: {e}"))?;
    let ml = tokio::net::TcpListener::bind(web.unwrap_or("127.0.0.1:0"))
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", web.unwrap_or("127.0.0.1:0")))?;
    let addr = ml.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}");
    let c = &standin.creds;
    let templates: String = [
        "call",
        "inform",
        "escalated",
        "no_response",
        "acked",
        "cleared",
        "disposal",
        "resolved",
    ]
    .iter()
    .map(|m| format!("{m} = \"SMS_{}\"\n", m.to_uppercase()))
    .collect();
    let mut seed = String::new();
    for (id, name, phone, region, channels) in PEOPLE {
        seed.push_str(&format!(
            "[[seed.people]]\nid = \"{id}\"\nname = \"{name}\"\nrole = \"{role}\"\nregion_id = \"{region}\"\n\
             phone = \"{phone}\"\nchannels = \"{channels}\"\n",
            role = match region {
                "demo-town" if id == "grid1" => "grid_officer",
                "demo-town" => "safety_officer",
                "demo-county" => "county",
                _ => "city",
            }
        ));
    }
    for (person, role, region) in DUTY {
        seed.push_str(&format!(
            "[[seed.duty]]\nperson_id = \"{person}\"\nrole = \"{role}\"\nregion_id = \"{region}\"\n"
        ));
    }
    for (person, role) in [("safety1", "safety_officer"), ("manager", "principal")] {
        seed.push_str(&format!(
            "[[seed.venue_people]]\nvenue_id = \"{site}\"\nperson_id = \"{person}\"\nrole = \"{role}\"\n"
        ));
    }
    for (id, kind, _) in crate::DEVICES {
        let (name, location) = device_info(id);
        seed.push_str(&format!(
            "[[seed.devices]]\nid = \"{id}\"\nvenue_id = \"{site}\"\nkind = \"{kind}\"\nname = \"{name}\"\nlocation = \"{location}\"\n"
        ));
    }
    let password = web.map(|_| random_password());
    if let Some(pw) = &password {
        // Cheap argon2 parameters: the accounts live as long as the demo.
        for (u, role, person, _) in USERS {
            let hash = anquan_monitor::web::auth::hash_password(
                pw,
                anquan_monitor::web::auth::test_params(),
            )
            .map_err(|e| e.to_string())?;
            seed.push_str(&format!(
                "[[users]]\nusername = \"{u}\"\npassword_hash = \"{hash}\"\nrole = \"{role}\"\n"
            ));
            if let Some(p) = person {
                seed.push_str(&format!("person_id = \"{p}\"\n"));
            }
        }
    }
    let text = format!(
        r#"
[server]
listen = "{addr}"
[database]
url = "sqlite://{db}?mode=rwc"
[auth]
intake_tokens = ["{TOKEN}"]
api_tokens = ["demo-operator-token"]
[web]
public_base_url = "{url}"
[notify]
lang = "zh"
[notify.webhook]
secret = "demo-webhook-hmac-secret"
[notify.sms]
provider = "aliyun"
endpoint = "{sms}"
access_key_id = "{aid}"
access_key_secret = "{asec}"
sign_name = "安全监管"
per_minute = 10
per_hour = 100
[notify.sms.templates]
{templates}
[notify.voice]
provider = "aliyun"
endpoint = "{voice}"
access_key_id = "{aid}"
access_key_secret = "{asec}"
called_show_number = "057100000000"
per_minute = 10
per_hour = 100
[notify.voice.templates]
call = "TTS_CALL"
escalated = "TTS_ESCALATED"
no_response = "TTS_NO_RESPONSE"
[[notify.robots]]
name = "site-group"
kind = "wecom"
url = "{wecom}"
[notify.callbacks]
token = "{CALLBACK_TOKEN}"
[ack]
secret = "{ack}"
[[seed.regions]]
id = "demo-city"
name = "演示市"
tier = "city"
[[seed.regions]]
id = "demo-county"
name = "演示县"
tier = "county"
parent_id = "demo-city"
[[seed.regions]]
id = "demo-town"
name = "演示镇"
tier = "town"
parent_id = "demo-county"
[[seed.grids]]
id = "demo-grid"
name = "演示镇第一网格"
region_id = "demo-town"
officers = ["grid1"]
[[seed.venues]]
id = "{site}"
name = "滨江工地"
sector = "construction"
address = "1 Demo Road"
lat = 30.75
lon = 120.76
region_id = "demo-town"
grid_id = "demo-grid"
{seed}
"#,
        db = dir.join("monitor.db").display(),
        sms = standin.aliyun_sms(),
        voice = standin.aliyun_voice(),
        wecom = standin.wecom(),
        aid = c.aliyun_id,
        asec = c.aliyun_secret,
        ack = random_password() + &random_password() + &random_password(),
    );
    let cfg = anquan_monitor::Config::parse(&text).map_err(|e| format!("monitor config: {e}"))?;
    let app = App::new(cfg, Arc::new(SimClock(clock)))
        .await
        .map_err(|e| format!("monitor: {e}"))?;
    let router = anquan_monitor::http::router(app.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(ml, router).await;
    });
    let phones = PEOPLE
        .iter()
        .map(|(id, _, phone, _, _)| (phone.to_string(), *id))
        .collect();
    Ok(DemoMonitor {
        app,
        url,
        standin,
        phones,
        password,
        reply: std::sync::Mutex::new(None),
        replied: std::sync::atomic::AtomicBool::new(false),
    })
}

/// `${name}` variables of a registered SMS template, filled in.
fn fill(template: &str, params: &serde_json::Value) -> String {
    let mut s = template.to_string();
    if let Some(o) = params.as_object() {
        for (k, v) in o {
            let v = match v {
                serde_json::Value::String(t) => t.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            s = s.replace(&format!("${{{k}}}"), &v);
        }
    }
    s
}

impl DemoMonitor {
    fn who(&self, phone: &str) -> &str {
        let p = phone.trim_start_matches("+86");
        self.phones.get(p).copied().unwrap_or("?")
    }

    /// One line per message a provider stand-in received.
    fn line(&self, r: &Received) -> String {
        match r.provider {
            "aliyun-sms" | "tencent-sms" => {
                let kind = r.template.trim_start_matches("SMS_").to_lowercase();
                let text = messages::sms_template("warning", &kind, Lang::Zh, false)
                    .map(|t| fill(&t, &r.params))
                    .unwrap_or_else(|| format!("{} {}", r.template, r.params));
                format!(
                    "monitor -> {:<8} sms    【安全监管】{text}",
                    self.who(&r.to)
                )
            }
            "aliyun-voice" => format!(
                "monitor -> {:<8} voice  {} (语音外呼 {}{}，按 1 确认)",
                self.who(&r.to),
                r.template,
                r.params["venue"].as_str().unwrap_or_default(),
                r.params["reading"].as_str().unwrap_or_default(),
            ),
            provider => {
                let at: Vec<&str> = r.mentions.iter().map(|m| self.who(m)).collect();
                format!(
                    "monitor -> {:<8} {provider:<6} @{} {}",
                    "group",
                    at.join(","),
                    r.text.lines().next().unwrap_or_default()
                )
            }
        }
    }

    /// One scheduler pass (SLA calls, reminders, deliveries) at the demo's
    /// time; returns a line per message sent since the last pass. The
    /// site's safety officer answers the first call about the crane's
    /// lift in strong wind by SMS reply code, one pass after it arrived.
    pub async fn tick(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let pending = self.reply.lock().ok().and_then(|mut r| r.take());
        if let Some((phone, code, what)) = pending {
            let body = serde_json::json!([{
                "phone_number": phone, "content": code,
                "send_time": "", "sign_name": "安全监管"
            }]);
            let h = anquan_monitor::callbacks::handle(
                &self.app,
                "aliyun-sms",
                "reply",
                body.to_string().as_bytes(),
            )
            .await
            .map_err(|e| format!("monitor: {e}"))?;
            let outcome = if h.acks > 0 {
                "acknowledged"
            } else {
                "refused"
            };
            out.push(format!(
                "{:<8} -> monitor  sms    replies {code} to the call about {what}: {outcome}",
                self.who(&phone)
            ));
        }
        anquan_monitor::scheduler::tick(&self.app)
            .await
            .map_err(|e| format!("monitor: {e}"))?;
        let mut got = self.standin.take();
        // Stable output: per person, SMS before voice before the group.
        got.sort_by(|a, b| {
            (self.who(&a.to), a.provider, &a.template).cmp(&(
                self.who(&b.to),
                b.provider,
                &b.template,
            ))
        });
        for r in &got {
            out.push(self.line(r));
            let crane_call = r.provider == "aliyun-sms"
                && r.template == "SMS_CALL"
                && r.params["reading"] == "大风中起吊"
                && r.params["device"] == device_info("crane-0001").0
                && self.who(&r.to) == "safety1";
            if crane_call && !self.replied.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let code = r.params["code"].as_str().unwrap_or_default().to_string();
                if let Ok(mut p) = self.reply.lock() {
                    *p = Some((r.to.clone(), code, "the crane".into()));
                }
            }
        }
        Ok(out)
    }

    /// How many alarm events the monitor has taken.
    pub async fn events(&self) -> Result<i64, String> {
        count(&self.app, "SELECT COUNT(*) AS n FROM alarm_events").await
    }

    /// One summary line per warning (no braces: the demo test parses lines
    /// with `{` as alarm events), then its 叫应 ladder.
    pub async fn summary(&self) -> Result<Vec<String>, String> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT id, device, rule, max_level, state, clearable, ladder_step, acked_by, acked_via \
             FROM warnings ORDER BY raised_ms, id",
        )
        .fetch_all(&self.app.db)
        .await
        .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut c = self.app.db.acquire().await.map_err(|e| e.to_string())?;
        for r in rows {
            let get = |c: &str| r.try_get::<String, _>(c).unwrap_or_default();
            let acked = match (get("acked_by").as_str(), get("acked_via").as_str()) {
                ("", _) => String::new(),
                (by, via) => format!(" by {by} ({via})"),
            };
            out.push(format!(
                "monitor: warning {:<10} {:<20} max {:<6} {:<8}{acked} cleared at source: {:<3} 叫应 step {}",
                get("device"),
                get("rule"),
                get("max_level"),
                get("state"),
                if r.try_get::<i64, _>("clearable").unwrap_or(0) == 1 { "yes" } else { "no" },
                r.try_get::<i64, _>("ladder_step").unwrap_or(0)
            ));
            let ladder = anquan_monitor::warnings::rungs(&mut c, &get("id"))
                .await
                .map_err(|e| e.to_string())?;
            let mut steps: BTreeMap<(i64, String), Vec<String>> = BTreeMap::new();
            for g in ladder {
                steps
                    .entry((g.step, g.purpose.clone()))
                    .or_default()
                    .push(g.person_id);
            }
            for ((step, purpose), people) in steps {
                // An escalation's step is the level it rose to.
                let at = if purpose == "escalated" {
                    let level = ["blue", "yellow", "orange", "red"]
                        .get(usize::try_from(step).unwrap_or(0))
                        .copied()
                        .unwrap_or("?");
                    format!("to {level:<4}")
                } else {
                    format!("step {step}")
                };
                out.push(format!(
                    "           {at:<9} {purpose:<11} {}",
                    people.join(", ")
                ));
            }
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
