//! The last mile, per level, against the providers' stand-ins (Alibaba
//! Cloud SMS and voice, Tencent Cloud SMS, WeCom, DingTalk and Feishu
//! robots: `anquan_monitor::notify::standin`, which checks every request's
//! shape and signature as documented), on a simulated clock: who receives
//! what, on which channel, in which order; parallel calls, 抄送, the chain
//! on no answer, cleared at the source, the exhausted chain, acknowledging
//! by link, SMS reply code and voice key, 闭环 notices, receipts, provider
//! failures, the rota's shifts. Each runs on SQLite (`tests/last_mile.rs`)
//! and PostgreSQL (`tests/api_postgres.rs`).

use anquan_monitor::notify::standin::{Credentials, Received, Scripted, Standin};
use serde_json::{Value, json};

use super::*;

const MIN: i64 = 60_000;

/// The callback path token.
pub const CALLBACK_TOKEN: &str = "callback-token-0123456789";

/// A person's phone in the harness.
pub fn phone(who: &str) -> &'static str {
    match who {
        "safety1" => "13800000001",
        "safety2" => "13800000002",
        "grid" => "13800000003",
        "county1" => "13800000004",
        "leader" => "13800000005",
        "city1" => "13800000006",
        "force" => "13800000007",
        "cityleader" => "13800000008",
        _ => "13899999999",
    }
}

const MESSAGES: [&str; 8] = [
    "call",
    "inform",
    "escalated",
    "no_response",
    "acked",
    "cleared",
    "disposal",
    "resolved",
];

/// The harness with every channel pointed at a stand-in.
pub struct LastMile {
    pub h: Harness,
    pub s: Standin,
}

/// How the harness is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sms {
    Aliyun,
    Tencent,
}

impl LastMile {
    pub async fn start(db_url: &str, sms: Sms) -> Self {
        Self::start_with(db_url, sms, "", |_| {}).await
    }

    pub async fn start_with(
        db_url: &str,
        sms: Sms,
        extra: &str,
        tune: impl FnOnce(&mut anquan_monitor::Config),
    ) -> Self {
        let s = Standin::start(Credentials::default()).await.unwrap();
        let c = &s.creds;
        let templates: String = MESSAGES
            .iter()
            .map(|m| format!("{m} = \"SMS_{}\"\n", m.to_uppercase()))
            .collect();
        let tts: String = ["call", "escalated", "no_response"]
            .iter()
            .map(|m| format!("{m} = \"TTS_{}\"\n", m.to_uppercase()))
            .collect();
        let sms_cfg = match sms {
            Sms::Aliyun => format!(
                "[notify.sms]\nprovider = \"aliyun\"\nendpoint = \"{}\"\naccess_key_id = \"{}\"\naccess_key_secret = \"{}\"\n\
                 sign_name = \"安全监管\"\nper_minute = 10\nper_hour = 100\ntimeout_ms = 500\n[notify.sms.templates]\n{templates}",
                s.aliyun_sms(),
                c.aliyun_id,
                c.aliyun_secret
            ),
            Sms::Tencent => format!(
                "[notify.sms]\nprovider = \"tencent\"\nendpoint = \"{}\"\naccess_key_id = \"{}\"\naccess_key_secret = \"{}\"\n\
                 app_id = \"{}\"\nsign_name = \"安全监管\"\nper_minute = 10\nper_hour = 100\ntimeout_ms = 500\n[notify.sms.templates]\n{templates}",
                s.tencent(),
                c.tencent_id,
                c.tencent_key,
                c.tencent_app
            ),
        };
        let cfg = format!(
            "{sms_cfg}\
             [notify.voice]\nprovider = \"aliyun\"\nendpoint = \"{voice}\"\naccess_key_id = \"{aid}\"\naccess_key_secret = \"{asec}\"\n\
             called_show_number = \"057100000000\"\nper_minute = 10\nper_hour = 100\n[notify.voice.templates]\n{tts}\
             [[notify.robots]]\nname = \"duty-room\"\nkind = \"wecom\"\nurl = \"{wecom}\"\n\
             [[notify.robots]]\nname = \"town-ding\"\nkind = \"dingtalk\"\nurl = \"{ding}\"\nsecret = \"{dsec}\"\n\
             [[notify.robots]]\nname = \"city-feishu\"\nkind = \"feishu\"\nurl = \"{fs}\"\nsecret = \"{fsec}\"\n\
             [notify.callbacks]\ntoken = \"{CALLBACK_TOKEN}\"\n{extra}",
            voice = s.aliyun_voice(),
            aid = c.aliyun_id,
            asec = c.aliyun_secret,
            wecom = s.wecom(),
            ding = s.dingtalk(),
            dsec = c.dingtalk_secret,
            fs = s.feishu(),
            fsec = c.feishu_secret,
        );
        let h = Harness::start_tuned(db_url, false, &cfg, |c| {
            c.notify.max_attempts = 4;
            for p in c.seed.people.iter_mut() {
                p.phone = Some(phone(&p.id).to_string());
                p.channels = Some(
                    match p.id.as_str() {
                        "safety1" | "safety2" | "grid" => "sms,voice,wecom:duty-room,webhook",
                        "county1" | "leader" => "sms,voice,dingtalk:town-ding,webhook",
                        _ => "sms,voice,feishu:city-feishu,webhook",
                    }
                    .to_string(),
                );
            }
            tune(c);
        })
        .await;
        Self { h, s }
    }

    /// Posts a provider callback.
    pub async fn callback(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .h
            .http
            .post(format!("{}/callbacks/{path}", self.h.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    /// The deliveries of a warning.
    pub async fn deliveries(&self, w: &str) -> Vec<Value> {
        let (_, d) = self
            .h
            .get(&format!("/api/v1/deliveries?subject_id={w}"))
            .await;
        d.as_array().unwrap().clone()
    }

    pub async fn warning(&self, w: &str) -> Value {
        self.h.get(&format!("/api/v1/warnings/{w}")).await.1
    }
}

/// SMS received (either provider) by `who`, in order.
pub fn sms(rs: &[Received], who: &str) -> Vec<Received> {
    let p = phone(who);
    rs.iter()
        .filter(|r| r.provider.ends_with("sms") && r.to.ends_with(p))
        .cloned()
        .collect()
}

/// Voice calls to `who`.
pub fn voice(rs: &[Received], who: &str) -> Vec<Received> {
    rs.iter()
        .filter(|r| r.provider == "aliyun-voice" && r.to == phone(who))
        .cloned()
        .collect()
}

/// Robot messages mentioning (or, Feishu, naming) `who`.
pub fn robot(rs: &[Received], provider: &str, who: &str) -> Vec<Received> {
    rs.iter()
        .filter(|r| r.provider == provider && r.mentions.contains(&phone(who).to_string()))
        .cloned()
        .collect()
}

/// The template codes of `who`'s SMS.
pub fn templates(rs: &[Received], who: &str) -> Vec<String> {
    sms(rs, who).iter().map(|r| r.template.clone()).collect()
}

fn red(id: u32, device: &str) -> Value {
    event_on(id, device, "gas.lel", "raised", "red")
}

fn token_of(link: &str) -> String {
    link.rsplit("/a/").next().unwrap().to_string()
}

/// The issue's "done when": a red gas alarm at a venue reaches its safety
/// officer, its principal and the grid officer at once by SMS, voice and
/// WeCom in Chinese with value, unit and deadline; the county is informed
/// at once; nobody answering moves the call up the chain (with the real
/// value, not 0); one click acknowledges; everyone reached hears of the
/// acknowledgement and the clearing.
pub async fn red_reaches_the_right_people(m: &LastMile) {
    let h = &m.h;
    let (st, a) = h.alarm(&red(1, "gas-0001")).await;
    assert_eq!(st, 200, "{a}");
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    let rs = m.s.take();
    assert!(m.s.refused().is_empty(), "{:?}", m.s.refused());
    for who in ["safety1", "safety2", "grid"] {
        assert_eq!(templates(&rs, who), ["SMS_CALL"], "{who}");
        assert_eq!(voice(&rs, who).len(), 1, "{who}: red calls ring the phone");
        assert_eq!(voice(&rs, who)[0].template, "TTS_CALL");
        let wecom = robot(&rs, "wecom", who);
        assert_eq!(wecom.len(), 1, "{who}");
        let text = &wecom[0].text;
        for part in [
            "【红色预警】Scenic area 可燃气体浓度",
            "Scenic area（Kitchen） Gas detector 1",
            "可燃气体浓度 55%LEL，阈值 50%LEL",
            "11月10日 08:00",
            "请于 08:05 前确认收到",
            "一键确认：",
            "/a/",
        ] {
            assert!(text.contains(part), "{who}: {part:?} not in {text}");
        }
    }
    let p = &sms(&rs, "safety1")[0].params;
    for (k, v) in [
        ("level", "红色"),
        ("venue", "Scenic area"),
        ("device", "Gas detector 1"),
        ("reading", "可燃气体浓度"),
        ("value", "55"),
        ("threshold", "50"),
        ("deadline", "08:05"),
    ] {
        assert_eq!(p[k], v, "{k}: {p}");
    }
    assert_eq!(p["code"].as_str().unwrap().len(), 4);
    // The county is informed at once: SMS and its DingTalk room, no call.
    assert_eq!(templates(&rs, "county1"), ["SMS_INFORM"]);
    assert!(voice(&rs, "county1").is_empty());
    assert_eq!(robot(&rs, "dingtalk", "county1").len(), 1);
    assert!(robot(&rs, "dingtalk", "county1")[0].text.contains("抄送"));
    for nobody in ["leader", "city1", "force", "cityleader"] {
        assert!(sms(&rs, nobody).is_empty(), "{nobody}");
    }
    let wj = m.warning(&w).await;
    assert_eq!(wj["state"], "NOTIFIED");
    assert_eq!(wj["ladder_step"], 0);
    // Nobody answers within the red SLA: the chain's first step.
    h.clock.advance_ms(5 * MIN - 1);
    h.tick().await;
    assert!(m.s.take().is_empty(), "not before the deadline");
    h.clock.advance_ms(1);
    let t = h.tick().await;
    assert_eq!(t.calls, 1);
    let rs = m.s.take();
    for who in ["county1", "leader"] {
        assert_eq!(templates(&rs, who), ["SMS_CALL"], "{who}");
        assert_eq!(voice(&rs, who).len(), 1, "{who}");
        // The "value 0, threshold 0" defect: the follow-up call carries the
        // alarm's real reading.
        let p = &sms(&rs, who)[0].params;
        assert_eq!(
            (p["value"].as_str(), p["threshold"].as_str()),
            (Some("55"), Some("50")),
            "{p}"
        );
        let ding = &robot(&rs, "dingtalk", who)[0].text;
        assert!(
            ding.contains("55%LEL") && ding.contains("此前无人应答"),
            "{ding}"
        );
    }
    assert!(sms(&rs, "safety1").is_empty(), "called once per warning");
    // One click: the county duty officer's link acknowledges, as them.
    let link = sms(&rs, "county1")[0].params["link"]
        .as_str()
        .unwrap()
        .to_string();
    let token = token_of(&link);
    let page = h
        .http
        .get(format!("{}/a/{token}", h.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("55%LEL") && html.contains("ack-button"),
        "{html}"
    );
    assert_eq!(
        m.warning(&w).await["state"],
        "NOTIFIED",
        "opening the link changes nothing"
    );
    let r = h
        .http
        .post(format!("{}/a/{token}", h.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let wj = m.warning(&w).await;
    assert_eq!(wj["state"], "ACKED");
    assert_eq!(wj["acked_by"], "county1");
    assert_eq!(wj["acked_via"], "link");
    // Used: refused, counted, audited.
    let again = h
        .http
        .post(format!("{}/a/{token}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let forged = format!("{}x", &token[..token.len() - 1]);
    let f = h
        .http
        .post(format!("{}/a/{forged}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(f.status().as_u16(), 403);
    let f = h
        .http
        .get(format!("{}/a/nothing.atall", h.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(f.status().as_u16(), 403);
    assert!(f.text().await.unwrap().contains("链接无效"));
    assert_eq!(
        scenarios::metric(h, r#"anquan_monitor_ack_refused_total{reason="used"}"#).await,
        Some(1.0)
    );
    assert_eq!(
        scenarios::metric(h, r#"anquan_monitor_ack_refused_total{reason="forged"}"#).await,
        Some(2.0)
    );
    let (_, au) = h.get("/api/v1/audit").await;
    assert!(
        au.as_array()
            .unwrap()
            .iter()
            .any(|r| r["entity"] == "ack_refused" && r["to_state"] == "used"),
        "{au}"
    );
    // 闭环: everyone reached hears who acknowledged, not the one who did.
    h.clock.advance_ms(MIN);
    h.tick().await;
    let rs = m.s.take();
    for who in ["safety1", "safety2", "grid", "leader"] {
        assert_eq!(templates(&rs, who), ["SMS_ACKED"], "{who}");
        assert!(voice(&rs, who).is_empty(), "no calls for information");
    }
    assert_eq!(sms(&rs, "safety1")[0].params["by"], "County");
    assert!(sms(&rs, "county1").is_empty());
    // Cleared at the source: everyone reached hears it.
    let mut c = event_on(2, "gas-0001", "gas.lel", "cleared", "red");
    c["value"] = json!(12.5);
    h.alarm(&c).await;
    h.clock.advance_ms(MIN);
    h.tick().await;
    let rs = m.s.take();
    for who in ["safety1", "safety2", "grid", "county1", "leader"] {
        assert_eq!(templates(&rs, who), ["SMS_CLEARED"], "{who}");
    }
    assert_eq!(sms(&rs, "grid")[0].params["value"], "12.5");
    // The ladder as the duty screen and the API show it.
    let (_, ladder) = h.get(&format!("/api/v1/warnings/{w}/ladder")).await;
    let rungs: Vec<(String, String, i64)> = ladder
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["person_id"].as_str().unwrap().to_string(),
                r["purpose"].as_str().unwrap().to_string(),
                r["step"].as_i64().unwrap(),
            )
        })
        .collect();
    for want in [
        ("safety1", "call", 0),
        ("county1", "inform", 0),
        ("county1", "call", 1),
        ("leader", "call", 1),
        ("leader", "acked", 0),
        ("safety2", "cleared", 0),
    ] {
        assert!(
            rungs.contains(&(want.0.into(), want.1.into(), want.2)),
            "{want:?} in {rungs:?}"
        );
    }
    let county_call = ladder
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["person_id"] == "county1" && r["purpose"] == "call")
        .unwrap();
    let ch: Vec<&str> = county_call["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for c in ["sms:SENT", "voice:SENT", "dingtalk:SENT", "webhook:SENT"] {
        assert!(ch.contains(&c), "{ch:?}");
    }
}

/// Nobody answers a red alarm: the chain climbs to the city and the 专班
/// leader, then is exhausted: the city's shift leader hears "no answer";
/// nobody is called after that. An orange warning cleared at the source
/// before anyone answered stops climbing and still waits for a person; a
/// blue one resolves itself; blue goes by the quiet channels only.
pub async fn chain_exhausts_and_clearing_stops_it(m: &LastMile) {
    let h = &m.h;
    let (_, a) = h.alarm(&red(10, "gas-0010")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    m.s.take();
    h.clock.advance_ms(5 * MIN);
    h.tick().await;
    m.s.take();
    h.clock.advance_ms(5 * MIN);
    h.tick().await;
    let rs = m.s.take();
    for who in ["city1", "force"] {
        assert_eq!(templates(&rs, who), ["SMS_CALL"], "{who}");
        assert_eq!(rs.iter().filter(|r| r.provider == "feishu").count(), 2);
    }
    let feishu = rs.iter().find(|r| r.provider == "feishu").unwrap();
    assert!(feishu.text.contains("红色预警"), "{}", feishu.text);
    h.clock.advance_ms(5 * MIN);
    h.tick().await;
    let rs = m.s.take();
    assert_eq!(templates(&rs, "cityleader"), ["SMS_NO_RESPONSE"]);
    assert_eq!(
        templates(&rs, "force"),
        ["SMS_NO_RESPONSE"],
        "the 专班 leader hears it too"
    );
    assert_eq!(voice(&rs, "cityleader").len(), 1, "no answer is a call");
    let wj = m.warning(&w).await;
    assert_eq!(wj["ack_due_ms"], Value::Null);
    assert_eq!(wj["ladder_step"], 3);
    let (_, au) = h.get(&format!("/api/v1/audit?entity_id={w}")).await;
    assert!(
        au.as_array()
            .unwrap()
            .iter()
            .any(|r| r["to_state"] == "EXHAUSTED"),
        "{au}"
    );
    h.clock.advance_ms(60 * MIN);
    assert_eq!(h.tick().await.calls, 0);
    assert!(
        m.s.take().is_empty(),
        "nothing after the chain is exhausted"
    );

    // Orange, cleared at the source before anyone answered.
    let (_, a) = h
        .alarm(&event_on(1, "gas-0011", "gas.lel", "raised", "orange"))
        .await;
    let o = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    let rs = m.s.take();
    assert_eq!(templates(&rs, "safety1"), ["SMS_CALL"]);
    assert_eq!(templates(&rs, "safety2"), ["SMS_CALL"]);
    assert_eq!(
        templates(&rs, "grid"),
        ["SMS_INFORM"],
        "orange informs the grid officer"
    );
    assert!(voice(&rs, "safety1").is_empty(), "orange rings no phone");
    h.alarm(&event_on(2, "gas-0011", "gas.lel", "cleared", "orange"))
        .await;
    h.clock.advance_ms(MIN);
    h.tick().await;
    let rs = m.s.take();
    for who in ["safety1", "safety2", "grid"] {
        assert_eq!(templates(&rs, who), ["SMS_CLEARED"], "{who}");
    }
    assert!(
        sms(&rs, "safety1")[0].params["venue"] == "Scenic area",
        "{:?}",
        sms(&rs, "safety1")
    );
    h.clock.advance_ms(30 * MIN);
    assert_eq!(h.tick().await.calls, 0, "cleared: no more climbing");
    assert!(m.s.take().is_empty());
    let oj = m.warning(&o).await;
    assert_eq!(oj["clearable"], 1);
    assert_eq!(oj["state"], "NOTIFIED", "orange still waits for a person");

    // Blue: the safety officer by the quiet channels; cleared → resolved.
    let (_, a) = h
        .alarm(&event_on(1, "gas-0012", "gas.lel", "raised", "blue"))
        .await;
    let b = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    let rs = m.s.take();
    assert!(sms(&rs, "safety1").is_empty(), "blue sends no SMS");
    assert_eq!(robot(&rs, "wecom", "safety1").len(), 1);
    h.alarm(&event_on(2, "gas-0012", "gas.lel", "cleared", "blue"))
        .await;
    assert_eq!(m.warning(&b).await["state"], "RESOLVED");
}

/// Yellow: the safety officer, then the principal, then the grid officer,
/// an hour apart; then the nearest shift leader and the county hear
/// nobody answered.
pub async fn yellow_climbs_hourly(m: &LastMile) {
    let h = &m.h;
    h.alarm(&event_on(1, "gas-0020", "gas.lel", "raised", "yellow"))
        .await;
    h.tick().await;
    let rs = m.s.take();
    assert_eq!(templates(&rs, "safety1"), ["SMS_CALL"]);
    assert!(sms(&rs, "safety2").is_empty() && sms(&rs, "grid").is_empty());
    for (who, t) in [
        ("safety2", "SMS_CALL"),
        ("grid", "SMS_CALL"),
        ("leader", "SMS_NO_RESPONSE"),
    ] {
        h.clock.advance_ms(60 * MIN);
        h.tick().await;
        let rs = m.s.take();
        assert_eq!(templates(&rs, who), [t], "{who}");
    }
}

/// SMS delivery reports and replies, the voice key: acknowledging by SMS
/// reply code (the person is the sender's number, the warning the code),
/// by pressing 1 during the call; refusals counted.
pub async fn replies_receipts_and_voice_keys(m: &LastMile) {
    let h = &m.h;
    let (_, a) = h.alarm(&red(30, "gas-0030")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    let rs = m.s.take();
    let s1 = &sms(&rs, "safety1")[0];
    let g = &sms(&rs, "grid")[0];
    // Bad token, unknown path, not JSON.
    let (st, _) = m
        .callback("aliyun-sms/report/wrong-token-0123456789", json!([]))
        .await;
    assert_eq!(st, 401);
    let (st, _) = m
        .callback(&format!("pager/report/{CALLBACK_TOKEN}"), json!([]))
        .await;
    assert_eq!(st, 404);
    let r = h
        .http
        .post(format!(
            "{}/callbacks/aliyun-sms/report/{CALLBACK_TOKEN}",
            h.base
        ))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Delivery reports.
    let (st, ans) = m
        .callback(
            &format!("aliyun-sms/report/{CALLBACK_TOKEN}"),
            json!([
                {"phone_number": phone("safety1"), "success": true, "err_code": "DELIVERED", "err_msg": "用户接收成功", "biz_id": s1.id, "out_id": s1.out_id, "report_time": "2026-11-10 08:00:05", "send_time": "2026-11-10 08:00:01", "sms_size": "2"},
                {"phone_number": phone("grid"), "success": false, "err_code": "MK:0001", "err_msg": "关机", "biz_id": g.id, "out_id": g.out_id},
            ]),
        )
        .await;
    assert_eq!((st, ans["code"].as_i64()), (200, Some(0)), "{ans}");
    let d = m.deliveries(&w).await;
    let state_of = |who: &str, ch: &str| {
        d.iter()
            .find(|x| x["person_id"] == who && x["channel"] == ch && x["purpose"] == "call")
            .map(|x| {
                (
                    x["state"].as_str().unwrap().to_string(),
                    x["receipt"].clone(),
                )
            })
            .unwrap()
    };
    assert_eq!(state_of("safety1", "sms").0, "DELIVERED");
    assert_eq!(state_of("grid", "sms").0, "UNDELIVERED");
    assert!(state_of("grid", "sms").1.as_str().unwrap().contains("关机"));
    // Replies: the wrong code, a stranger, then the right code.
    let code = sms(&rs, "safety2")[0].params["code"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = if code == "1000" { "1001" } else { "1000" };
    let up = |who: &str, text: &str| json!([{"phone_number": who, "content": text, "send_time": "2026-11-10 08:01:00", "sign_name": "安全监管"}]);
    m.callback(
        &format!("aliyun-sms/reply/{CALLBACK_TOKEN}"),
        up(phone("safety2"), wrong),
    )
    .await;
    m.callback(
        &format!("aliyun-sms/reply/{CALLBACK_TOKEN}"),
        up("13912345678", &code),
    )
    .await;
    assert_eq!(m.warning(&w).await["state"], "NOTIFIED");
    let (st, _) = m
        .callback(
            &format!("aliyun-sms/reply/{CALLBACK_TOKEN}"),
            up(&format!("+86{}", phone("safety2")), &format!(" {code} ")),
        )
        .await;
    assert_eq!(st, 200);
    let wj = m.warning(&w).await;
    assert_eq!(wj["state"], "ACKED");
    assert_eq!(wj["acked_by"], "safety2");
    assert_eq!(wj["acked_via"], "sms");
    m.callback(
        &format!("aliyun-sms/reply/{CALLBACK_TOKEN}"),
        up(phone("safety2"), &code),
    )
    .await;
    for (reason, n) in [
        ("unknown_code", 1.0),
        ("unknown_sender", 1.0),
        ("used", 1.0),
    ] {
        assert_eq!(
            scenarios::metric(
                h,
                &format!("anquan_monitor_ack_refused_total{{reason=\"{reason}\"}}")
            )
            .await,
            Some(n),
            "{reason}"
        );
    }
    // The voice key: a second warning, the principal presses 1.
    let (_, a) = h.alarm(&red(31, "gas-0031")).await;
    let w2 = a["warning_id"].as_str().unwrap().to_string();
    h.clock.advance_ms(MIN);
    h.tick().await;
    let rs = m.s.take();
    let call = &voice(&rs, "safety2")[0];
    let (st, _) = m
        .callback(
            &format!("aliyun-voice/report/{CALLBACK_TOKEN}"),
            json!([{"call_id": call.id, "status_code": "200000", "status_msg": "用户听完通知", "dtmf": "1", "out_id": call.out_id}]),
        )
        .await;
    assert_eq!(st, 200);
    let wj = m.warning(&w2).await;
    assert_eq!(
        (wj["state"].as_str(), wj["acked_via"].as_str()),
        (Some("ACKED"), Some("voice"))
    );
    assert_eq!(wj["acked_by"], "safety2");
    assert_eq!(
        scenarios::metric(h, r#"anquan_monitor_acks_total{via="voice"}"#).await,
        Some(1.0)
    );
}

/// Tencent Cloud SMS: the variables in template order, the status
/// callback, the reply callback.
pub async fn tencent_sms(m: &LastMile) {
    let h = &m.h;
    let (_, a) = h.alarm(&red(40, "gas-0040")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    let rs = m.s.take();
    assert!(m.s.refused().is_empty(), "{:?}", m.s.refused());
    let s1 = sms(&rs, "safety1");
    assert_eq!(s1.len(), 1);
    assert_eq!(s1[0].provider, "tencent-sms");
    assert_eq!(s1[0].to, format!("+86{}", phone("safety1")));
    // {1} level, {2} venue, {3} device, {4} reading, {5} value, {6} unit,
    // {7} threshold, {8} time, {9} deadline, {10} code, {11} link.
    let set = s1[0].params.as_array().unwrap();
    assert_eq!(set.len(), 11);
    assert_eq!(set[0], "红色");
    assert_eq!(set[3], "可燃气体浓度");
    assert_eq!(
        (set[4].as_str(), set[5].as_str(), set[6].as_str()),
        (Some("55"), Some("%LEL"), Some("50"))
    );
    let (st, ans) = m
        .callback(
            &format!("tencent-sms/report/{CALLBACK_TOKEN}"),
            json!([{"user_receive_time": "2026-11-10 08:00:04", "nationcode": "86", "mobile": phone("safety1"), "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功", "sid": s1[0].id}]),
        )
        .await;
    assert_eq!((st, ans["result"].as_i64()), (200, Some(0)));
    let code = set[9].as_str().unwrap();
    let (st, _) = m
        .callback(
            &format!("tencent-sms/reply/{CALLBACK_TOKEN}"),
            json!({"extend": "", "mobile": phone("safety1"), "nationcode": "86", "sign": "安全监管", "text": code, "time": 1_794_268_900}),
        )
        .await;
    assert_eq!(st, 200);
    let wj = m.warning(&w).await;
    assert_eq!(
        (wj["acked_by"].as_str(), wj["acked_via"].as_str()),
        (Some("safety1"), Some("sms"))
    );
    let d = m.deliveries(&w).await;
    assert!(
        d.iter().any(|x| x["person_id"] == "safety1"
            && x["channel"] == "sms"
            && x["state"] == "DELIVERED"),
        "{d:?}"
    );
}

/// A provider answering 5xx, slowly, "throttled" or "never": retried,
/// waiting (not an attempt), or failed at once; every call of a step
/// failing moves the ladder on without waiting for the SLA; a request the
/// provider cannot verify (wrong secret) fails for good.
pub async fn provider_failures(m: &LastMile) {
    let h = &m.h;
    // Yellow calls only the safety officer.
    m.s.script("aliyun-sms", [Scripted::Status(503)]);
    let (_, a) = h
        .alarm(&event_on(1, "gas-0050", "gas.lel", "raised", "yellow"))
        .await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    let t = h.tick().await;
    assert_eq!(t.failed, 1, "{t:?}");
    let sms_row = |d: &[Value]| {
        d.iter()
            .find(|x| x["channel"] == "sms" && x["person_id"] == "safety1")
            .cloned()
            .unwrap()
    };
    let d = sms_row(&m.deliveries(&w).await);
    assert_eq!(
        (d["state"].as_str(), d["attempts"].as_i64()),
        (Some("QUEUED"), Some(1))
    );
    assert!(d["last_error"].as_str().unwrap().contains("503"), "{d}");
    // Throttled by the provider: waits a minute, not an attempt.
    m.s.script(
        "aliyun-sms",
        [Scripted::Code("isv.BUSINESS_LIMIT_CONTROL".into())],
    );
    h.clock.advance_ms(2_000);
    let t = h.tick().await;
    assert_eq!(t.throttled, 1, "{t:?}");
    let d = sms_row(&m.deliveries(&w).await);
    assert_eq!(
        (d["state"].as_str(), d["attempts"].as_i64()),
        (Some("QUEUED"), Some(1))
    );
    assert!(
        scenarios::metric(
            h,
            r#"anquan_monitor_notifications_throttled_total{channel="sms"}"#
        )
        .await
            >= Some(1.0)
    );
    // Slow: the timeout (500 ms) fails the attempt.
    m.s.script("aliyun-sms", [Scripted::Delay(1_500)]);
    h.clock.advance_ms(MIN);
    let t = h.tick().await;
    assert_eq!(t.failed, 1, "{t:?}");
    let d = sms_row(&m.deliveries(&w).await);
    assert!(
        d["last_error"].as_str().unwrap().contains("timed out"),
        "{d}"
    );
    // Then it goes through.
    h.clock.advance_ms(MIN);
    h.tick().await;
    assert_eq!(sms_row(&m.deliveries(&w).await)["state"], "SENT");
    m.s.take();
}

/// A number the provider refuses for good, on the step's only channel:
/// FAILED at once (no retries), and the next step is called without
/// waiting for the SLA.
pub async fn a_failed_step_moves_on(url: &str) {
    let m = LastMile::start_with(url, Sms::Aliyun, "", |c| {
        for p in c.seed.people.iter_mut().filter(|p| p.id == "safety1") {
            p.channels = Some("sms".into());
        }
    })
    .await;
    let h = &m.h;
    m.s.script(
        "aliyun-sms",
        [Scripted::Code("isv.MOBILE_NUMBER_ILLEGAL".into())],
    );
    let (_, a) = h
        .alarm(&event_on(1, "gas-0051", "gas.lel", "raised", "yellow"))
        .await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    let d = m.deliveries(&w).await;
    assert_eq!(d[0]["state"], "FAILED", "{d:?}");
    assert_eq!(d[0]["attempts"], 1);
    assert!(
        d.iter()
            .any(|x| x["person_id"] == "safety2" && x["purpose"] == "call"),
        "{d:?}"
    );
    h.tick().await;
    assert_eq!(templates(&m.s.take(), "safety2"), ["SMS_CALL"]);
    let (_, au) = h.get(&format!("/api/v1/audit?entity_id={w}")).await;
    assert!(
        au.as_array()
            .unwrap()
            .iter()
            .any(|r| r["to_state"] == "FAILED" && r["entity"] == "warning_call"),
        "{au}"
    );
}

/// A request the provider cannot verify fails for good (the stand-in's
/// check works: a wrong secret is refused, as Alibaba Cloud would).
pub async fn a_bad_signature_is_refused(url: &str) {
    let m = LastMile::start_with(url, Sms::Aliyun, "", |c| {
        if let Some(s) = c.notify.sms.as_mut() {
            s.access_key_secret = "not-the-secret".into();
        }
    })
    .await;
    m.h.alarm(&event_on(1, "gas-0060", "gas.lel", "raised", "yellow"))
        .await;
    m.h.tick().await;
    assert!(
        m.s.refused().iter().any(|r| r.contains("signature")),
        "{:?}",
        m.s.refused()
    );
    let (_, d) = m.h.get("/api/v1/deliveries").await;
    let sms = d
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["channel"] == "sms")
        .unwrap()
        .clone();
    assert_eq!(sms["state"], "FAILED", "{sms}");
    assert!(
        sms["last_error"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch")
    );
}

/// The rota decides who is informed: the county's day and night shifts,
/// a dated override, a holiday the night shift skips. Red-first in the
/// queue: with one SMS a minute per number, a red call to a person goes
/// before a blue notice queued earlier.
pub async fn rota_and_red_first(url: &str) {
    let m = LastMile::start_with(url, Sms::Aliyun, "", |c| {
        // The county's duty officer: county1 08:00–20:00, the leader
        // 20:00–08:00 on weekdays but not on holidays; on 2026-11-12 the
        // city's duty officer stands in all day.
        c.seed
            .duty
            .retain(|d| !(d.role == "duty_officer" && d.region_id == "county"));
        let shift = |p: &str, start: &str, end: &str, days: Option<&str>, hol: Option<&str>| {
            anquan_monitor::registry::Duty {
                person_id: p.into(),
                role: "duty_officer".into(),
                region_id: "county".into(),
                rank: 0,
                from_ms: None,
                until_ms: None,
                days: days.map(str::to_string),
                start: Some(start.into()),
                end: Some(end.into()),
                holidays: hol.map(str::to_string),
            }
        };
        c.seed
            .duty
            .push(shift("county1", "08:00", "20:00", None, None));
        c.seed.duty.push(shift(
            "leader",
            "20:00",
            "08:00",
            Some("12345"),
            Some("skip"),
        ));
        c.seed
            .duty_overrides
            .push(anquan_monitor::registry::DutyOverride {
                date: "2026-11-12".into(),
                region_id: "county".into(),
                role: "duty_officer".into(),
                person_id: "city1".into(),
                rank: 0,
                start: None,
                end: None,
            });
        c.seed.holidays.push(anquan_monitor::registry::Holiday {
            date: "2026-11-10".into(),
            name: "test holiday".into(),
        });
        if let Some(s) = c.notify.sms.as_mut() {
            s.per_minute = 1;
        }
    })
    .await;
    let h = &m.h;
    // Who was informed (抄送) of the warning just raised; the earlier
    // warnings' ladders are acknowledged out of the way.
    let informed =
        |rs: &[Received], who: &str| templates(rs, who).iter().any(|t| t == "SMS_INFORM");
    let ack = |w: String| async move {
        let (s, p) = h
            .post(
                &format!("/api/v1/warnings/{w}/ack"),
                json!({"person_id": "safety1"}),
            )
            .await;
        assert_eq!(s, 200, "{p}");
    };
    // Tuesday 08:00: the day shift.
    let (_, a) = h.alarm(&red(1, "gas-0070")).await;
    h.tick().await;
    assert!(informed(&m.s.take(), "county1"));
    ack(a["warning_id"].as_str().unwrap().to_string()).await;
    // Tuesday 21:00, a holiday: the night shift skips it — nobody on duty
    // (the county is not informed).
    h.clock.set_ms(T0 + 13 * 60 * MIN);
    let (_, a) = h.alarm(&red(1, "gas-0071")).await;
    h.tick().await;
    let rs = m.s.take();
    assert!(
        !informed(&rs, "county1") && !informed(&rs, "leader"),
        "{rs:?}"
    );
    ack(a["warning_id"].as_str().unwrap().to_string()).await;
    // Wednesday 21:00: the night shift.
    h.clock.set_ms(T0 + 37 * 60 * MIN);
    let (_, a) = h.alarm(&red(1, "gas-0072")).await;
    h.tick().await;
    let rs = m.s.take();
    assert!(informed(&rs, "leader") && !informed(&rs, "county1"));
    ack(a["warning_id"].as_str().unwrap().to_string()).await;
    // Thursday 10:00: the override.
    h.clock.set_ms(T0 + 50 * 60 * MIN);
    let (_, a) = h.alarm(&red(1, "gas-0073")).await;
    h.tick().await;
    let rs = m.s.take();
    assert!(informed(&rs, "city1") && !informed(&rs, "county1"));
    ack(a["warning_id"].as_str().unwrap().to_string()).await;
    // Red first: with one SMS a minute to a number, a yellow call queued
    // first waits behind a red call queued after it.
    h.clock.set_ms(T0 + 60 * 60 * MIN);
    h.alarm(&event_on(1, "gas-0074", "gas.lel", "raised", "yellow"))
        .await;
    h.alarm(&red(1, "gas-0075")).await;
    let t = h.tick().await;
    assert!(t.throttled >= 1, "{t:?}");
    let rs = m.s.take();
    let s1 = sms(&rs, "safety1");
    assert_eq!(s1.len(), 1, "{s1:?}");
    assert_eq!(s1[0].params["level"], "红色", "red first");
    h.clock.advance_ms(MIN);
    h.tick().await;
    let s1 = sms(&m.s.take(), "safety1");
    assert_eq!(s1.len(), 1);
    assert_eq!(s1[0].params["level"], "黄色", "then the yellow one");
}

/// A person the monitor cannot reach is never a silent drop: safety1 has
/// only e-mail and no SMTP server is configured → audited UNREACHABLE,
/// counted, and the chain moves on at once; safety2 has only SMS, which
/// the blue policy does not use → sent by SMS anyway, audited FALLBACK.
pub async fn unreachable_and_fallback(url: &str) {
    let m = LastMile::start_with(url, Sms::Aliyun, "", |c| {
        for p in c.seed.people.iter_mut() {
            match p.id.as_str() {
                "safety1" => {
                    p.email = Some("safety1@example.invalid".into());
                    p.channels = Some("email".into());
                }
                "safety2" => p.channels = Some("sms".into()),
                _ => {}
            }
        }
    })
    .await;
    let h = &m.h;
    let (st, a) = h.alarm(&event(1, "raised", "blue")).await;
    assert_eq!(st, 200, "{a}");
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    let d = m.deliveries(&w).await;
    assert!(
        d.iter().all(|x| x["person_id"] != "safety1"),
        "nothing queued for safety1: {d:?}"
    );
    let s2: Vec<_> = d.iter().filter(|x| x["person_id"] == "safety2").collect();
    assert_eq!(s2.len(), 1, "{d:?}");
    assert_eq!(s2[0]["channel"], "sms");
    assert_eq!(s2[0]["purpose"], "call");
    assert_eq!(templates(&m.s.take(), "safety2"), ["SMS_CALL"]);
    let (_, au) = h.get(&format!("/api/v1/audit?entity_id={w}")).await;
    let audit = |state: &str, who: &str| {
        au.as_array().unwrap().iter().any(|r| {
            r["to_state"] == state && r["reason"].as_str().unwrap_or_default().contains(who)
        })
    };
    assert!(audit("UNREACHABLE", "safety1"), "{au}");
    assert!(audit("FALLBACK", "safety2"), "{au}");
    let (_, metrics) = h.get_text("/metrics").await;
    assert!(
        metrics.contains("anquan_monitor_notices_unreachable_total{reason=\"no_channel\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("unreachable"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The ladder shows both: safety1 called (and failed), safety2 next.
    let (_, ladder) = h.get(&format!("/api/v1/warnings/{w}/ladder")).await;
    let called: Vec<_> = ladder
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["purpose"] == "call")
        .map(|r| r["person_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(called, ["safety1", "safety2"], "{ladder}");
}

/// The last SMS of a number's minute is kept for red: with two a minute,
/// a yellow call takes the first, a second yellow waits, and a red call
/// raised after it still goes at once.
pub async fn the_last_send_is_kept_for_red(url: &str) {
    let m = LastMile::start_with(url, Sms::Aliyun, "", |c| {
        if let Some(s) = c.notify.sms.as_mut() {
            s.per_minute = 2;
        }
    })
    .await;
    let h = &m.h;
    h.alarm(&event_on(1, "gas-0080", "gas.lel", "raised", "yellow"))
        .await;
    h.tick().await;
    let s1 = sms(&m.s.take(), "safety1");
    assert_eq!(s1.len(), 1, "{s1:?}");
    h.alarm(&event_on(1, "gas-0081", "gas.co", "raised", "yellow"))
        .await;
    let t = h.tick().await;
    assert!(t.throttled >= 1, "{t:?}");
    assert!(
        sms(&m.s.take(), "safety1").is_empty(),
        "the second yellow waits"
    );
    h.alarm(&red(1, "gas-0082")).await;
    h.tick().await;
    let s1 = sms(&m.s.take(), "safety1");
    assert_eq!(s1.len(), 1, "{s1:?}");
    assert_eq!(s1[0].params["level"], "红色", "red takes the kept send");
    h.clock.advance_ms(MIN);
    h.tick().await;
    let s1 = sms(&m.s.take(), "safety1");
    assert_eq!(s1.len(), 1, "{s1:?}");
    assert_eq!(
        s1[0].params["level"], "黄色",
        "the yellow one in the next minute"
    );
}

/// Digests (`notify.digest_ms`, one minute by default): three yellow
/// alarms cleared at the source within one minute tell the safety officer
/// once at once and then once more, one SMS listing the other two, when
/// the minute is over; their calls, and a red call inside the window, are
/// never held. The deliveries show what went inside which digest.
pub async fn notices_wait_for_a_digest_and_red_does_not(url: &str) {
    let m = LastMile::start_with(url, Sms::Aliyun, "", |c| {
        if let Some(s) = c.notify.sms.as_mut() {
            s.templates.insert("digest".into(), "SMS_DIGEST".into());
        }
    })
    .await;
    let h = &m.h;
    let devices = ["gas-0090", "gas-0091", "gas-0092"];
    let mut ws = Vec::new();
    for d in devices {
        let (st, a) = h
            .alarm(&event_on(1, d, "gas.lel", "raised", "yellow"))
            .await;
        assert_eq!(st, 200, "{a}");
        ws.push(a["warning_id"].as_str().unwrap().to_string());
    }
    h.tick().await;
    assert_eq!(
        templates(&m.s.take(), "safety1"),
        ["SMS_CALL"; 3],
        "calls are never held"
    );
    h.clock.advance_ms(2 * MIN);
    h.alarm(&event_on(2, devices[0], "gas.lel", "cleared", "yellow"))
        .await;
    h.tick().await;
    assert_eq!(
        templates(&m.s.take(), "safety1"),
        ["SMS_CLEARED"],
        "a quiet inbox: the first notice at once"
    );
    for d in &devices[1..] {
        h.alarm(&event_on(2, d, "gas.lel", "cleared", "yellow"))
            .await;
    }
    let t = h.tick().await;
    assert!(t.throttled >= 2, "{t:?}");
    assert!(
        sms(&m.s.take(), "safety1").is_empty(),
        "the next two wait for the window"
    );
    h.clock.advance_ms(10_000);
    h.alarm(&red(1, "gas-0093")).await;
    h.tick().await;
    let rs = m.s.take();
    let s1 = sms(&rs, "safety1");
    assert_eq!(templates(&rs, "safety1"), ["SMS_CALL"], "red is not held");
    assert_eq!(s1[0].params["level"], "红色");
    h.clock.advance_ms(MIN);
    h.tick().await;
    let rs = m.s.take();
    let s1 = sms(&rs, "safety1");
    assert_eq!(templates(&rs, "safety1"), ["SMS_DIGEST"], "{s1:?}");
    assert_eq!(s1[0].params["count"], "2", "{s1:?}");
    assert!(
        s1[0].params["first"]
            .as_str()
            .unwrap()
            .contains("Scenic area"),
        "{s1:?}"
    );
    // The robot got one digest too, listing both in full.
    let duty = robot(&rs, "wecom", "safety1");
    assert_eq!(duty.len(), 1, "{duty:?}");
    assert!(duty[0].text.contains("2 条通知"), "{}", duty[0].text);
    // Each notice's delivery says which digest carried it; all are sent.
    let mut carried = 0;
    for w in &ws[1..] {
        for d in m.deliveries(w).await {
            if d["purpose"] == "cleared" && d["person_id"] == "safety1" && d["channel"] == "sms" {
                assert!(
                    ["SENT", "DELIVERED"].contains(&d["state"].as_str().unwrap()),
                    "{d}"
                );
                if !d["digest_id"].is_null() {
                    carried += 1;
                }
            }
        }
    }
    assert_eq!(carried, 1, "one carried the SMS digest, the other names it");
    let (_, metrics) = h.get_text("/metrics").await;
    assert!(
        metrics.contains("anquan_monitor_notifications_digested_total{channel=\"sms\"} 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("digested"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Throttled fall-over: red never waits for a throttled channel. The
/// safety officer's SMS number has used its one send of the minute (a
/// yellow call); a red alarm then reaches them at once by voice and by the
/// duty-room robot, its SMS waits for the minute (counted as throttled)
/// and follows when the window frees.
pub async fn red_goes_around_a_throttled_channel(url: &str) {
    let m = LastMile::start_with(url, Sms::Aliyun, "", |c| {
        if let Some(s) = c.notify.sms.as_mut() {
            s.per_minute = 1;
        }
    })
    .await;
    let h = &m.h;
    h.alarm(&event_on(1, "gas-0070", "gas.lel", "raised", "yellow"))
        .await;
    h.tick().await;
    assert_eq!(templates(&m.s.take(), "safety1"), ["SMS_CALL"]);
    h.clock.advance_ms(5_000);
    let (_, a) = h.alarm(&red(1, "gas-0071")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    let t = h.tick().await;
    assert!(t.throttled >= 1, "{t:?}");
    let rs = m.s.take();
    assert!(
        sms(&rs, "safety1").is_empty(),
        "the SMS number is throttled"
    );
    assert_eq!(voice(&rs, "safety1").len(), 1, "voice at once: {rs:?}");
    assert_eq!(
        robot(&rs, "wecom", "safety1").len(),
        1,
        "the robot at once: {rs:?}"
    );
    let d = m.deliveries(&w).await;
    let waiting = d
        .iter()
        .find(|x| x["channel"] == "sms" && x["person_id"] == "safety1")
        .unwrap();
    assert_eq!(waiting["state"], "QUEUED", "{waiting}");
    assert!(
        waiting["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("held back"),
        "{waiting}"
    );
    h.clock.advance_ms(MIN);
    h.tick().await;
    let s1 = sms(&m.s.take(), "safety1");
    assert_eq!(s1.len(), 1, "{s1:?}");
    assert_eq!(s1[0].params["level"], "红色");
}
