//! Scenarios run against both SQLite and PostgreSQL.

use serde_json::{Value, json};

use super::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// The contract of `POST /api/v1/alarms`: auth, validation with a reason,
/// size limit, idempotency.
pub async fn intake_contract(h: &Harness) {
    let ev = event(1, "raised", "red");
    // No / wrong token → 401 problem+json.
    let r = h
        .http
        .post(format!("{}/api/v1/alarms", h.base))
        .json(&ev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let (s, p) = h.raw_alarm(OP, serde_json::to_vec(&ev).unwrap()).await;
    assert_eq!(s, 401, "an operator token is not a gateway token: {p}");
    // Contract violations → 422 naming the field.
    let mut bad = ev.clone();
    bad["level"] = json!("purple");
    let (s, p) = h.alarm(&bad).await;
    assert_eq!(s, 422);
    assert!(p["detail"].as_str().unwrap().contains("level"), "{p}");
    let mut bad = ev.clone();
    bad.as_object_mut().unwrap().remove("event_id");
    let (s, p) = h.alarm(&bad).await;
    assert_eq!(s, 422);
    assert!(p["detail"].as_str().unwrap().contains("event_id"), "{p}");
    let (s, _) = h.raw_alarm(GW, b"not json".to_vec()).await;
    assert_eq!(s, 422);
    // Too large → 413 (both over the contract's 1 KiB and over the body limit).
    let (s, _) = h.raw_alarm(GW, vec![b' '; 2000]).await;
    assert_eq!(s, 413);
    // Over server.max_body_bytes the server answers 413 without reading
    // the rest, so the client may see the reset before the answer. A
    // client of its own: the connection the server drops must not go back
    // to the pool the next requests use.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/alarms", h.base))
        .bearer_auth(GW)
        .body(vec![b' '; 200_000])
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    // Accepted, then the same event again: the same answer, one warning.
    let (s1, a1) = h.alarm(&ev).await;
    assert_eq!(s1, 200, "{a1}");
    assert_eq!(a1["duplicate"], false);
    let (s2, a2) = h.alarm(&ev).await;
    assert_eq!(s2, 200);
    assert_eq!(a2["duplicate"], true);
    assert_eq!(a1["warning_id"], a2["warning_id"]);
    let (_, ws) = h.get("/api/v1/warnings").await;
    assert_eq!(ws.as_array().unwrap().len(), 1);
    // One call queued and sent, once.
    h.tick().await;
    h.tick().await;
    assert_eq!(h.hooks_for("safety1").len(), 1);
    let (_, ws) = h
        .get(&format!(
            "/api/v1/warnings/{}",
            a1["warning_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ws["state"], "NOTIFIED");
    // Two transitions of a new alarm at once: both accepted, one warning.
    for round in 0..5u32 {
        let dev = format!("race-{round}");
        let (e1, e2) = (
            event_on(1, &dev, "gas.lel", "raised", "yellow"),
            event_on(2, &dev, "gas.lel", "escalated", "red"),
        );
        let (a, b) = tokio::join!(h.alarm(&e1), h.alarm(&e2));
        assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        assert_eq!(a.1["warning_id"], b.1["warning_id"]);
    }
}

/// RAISED → NOTIFIED → (SLA miss: next person) → ACKED → DISPOSING → task
/// done → RESOLVED; escalate/clear update the same warning; venue color.
pub async fn warning_lifecycle(h: &Harness) {
    let (_, a) = h.alarm(&event(10, "raised", "orange")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["color"], "orange");
    // Escalation to red: same warning, level red, shorter SLA.
    let (_, a2) = h.alarm(&event(11, "escalated", "red")).await;
    assert_eq!(a2["warning_id"], w.as_str());
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["color"], "red");
    let t = h.tick().await;
    // Orange called the venue's safety officer and principal at once and
    // informed the grid officer; the rise to red told them it got worse,
    // called the grid officer (red calls it) and informed the county.
    assert_eq!(t.sent, 7, "{t:?}");
    let purposes = |who: &str| {
        let mut p: Vec<String> = h
            .hooks_for(who)
            .iter()
            .map(|x| x.body["purpose"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    assert_eq!(purposes("safety1"), ["call", "escalated"]);
    assert_eq!(purposes("safety2"), ["call", "escalated"]);
    assert_eq!(purposes("grid"), ["call", "inform"]);
    assert_eq!(purposes("county1"), ["inform"]);
    let s1 = h.hooks_for("safety1");
    assert!(
        s1.iter()
            .any(|x| x.body["title"].as_str().unwrap().contains("橙色预警"))
    );
    assert!(
        s1.iter()
            .any(|x| x.body["title"].as_str().unwrap().contains("升级为红色预警"))
    );
    // Not acknowledged within the red SLA (5 min) → the chain's first
    // step: the county's duty officer and its shift leader.
    h.clock.advance_ms(4 * MIN);
    assert_eq!(h.tick().await.calls, 0);
    h.clock.advance_ms(MIN);
    let t = h.tick().await;
    assert_eq!(t.calls, 1);
    assert_eq!(
        purposes("county1"),
        ["call", "inform"],
        "叫应: the county is called next"
    );
    assert_eq!(purposes("leader"), ["call"]);
    let call = h
        .hooks_for("county1")
        .into_iter()
        .find(|x| x.body["purpose"] == "call")
        .unwrap();
    assert!(
        call.body["body"].as_str().unwrap().contains("此前无人应答"),
        "{}",
        call.body
    );
    // Ticking again at the same time does nothing more.
    assert_eq!(h.tick().await, anquan_monitor::scheduler::Tick::default());
    // Ack by safety2.
    let (s, p) = h
        .post(
            &format!("/api/v1/warnings/{w}/ack"),
            json!({"person_id": "safety2", "note": "on my way"}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    // Everyone reached hears of it (闭环), but safety2.
    h.tick().await;
    for who in ["safety1", "grid", "county1", "leader"] {
        assert!(purposes(who).contains(&"acked".to_string()), "{who}");
    }
    assert!(!purposes("safety2").contains(&"acked".to_string()));
    // A second ack is refused with a reason.
    let (s, p) = h
        .post(
            &format!("/api/v1/warnings/{w}/ack"),
            json!({"person_id": "safety1"}),
        )
        .await;
    assert_eq!(s, 409);
    assert!(p["detail"].as_str().unwrap().contains("ACKED"), "{p}");
    // After the ack no more calls.
    h.clock.advance_ms(30 * MIN);
    assert_eq!(h.tick().await.calls, 0);
    // Cleared at the source: clearable, same warning.
    let (_, a3) = h.alarm(&event(12, "cleared", "red")).await;
    assert_eq!(a3["warning_id"], w.as_str());
    let (_, wj) = h.get(&format!("/api/v1/warnings/{w}")).await;
    assert_eq!(wj["clearable"], 1);
    assert_eq!(wj["max_level"], "red");
    assert_eq!(wj["events"].as_array().unwrap().len(), 3);
    // Confirmed real → DISPOSING + disposal task due in 24 h (red).
    let (s, c) = h.post(&format!("/api/v1/warnings/{w}/confirm"), json!({"person_id": "safety2", "false_alarm": false, "reason": "leak found at valve 3"})).await;
    assert_eq!(s, 200, "{c}");
    let task = c["task_id"].as_str().unwrap().to_string();
    let (_, tj) = h.get(&format!("/api/v1/tasks/{task}")).await;
    assert_eq!(tj["state"], "ASSIGNED");
    assert_eq!(tj["assignee_id"], "safety2");
    assert_eq!(tj["due_ms"], json!(h.clock_now() + DAY));
    // Resolve is refused while the task is open.
    let (s, _) = h
        .post(
            &format!("/api/v1/warnings/{w}/resolve"),
            json!({"person_id": "safety2", "reason": "x"}),
        )
        .await;
    assert_eq!(s, 409);
    dispose(h, &task, "safety2", "valve replaced, photo p1.jpg").await;
    let (_, wj) = h.get(&format!("/api/v1/warnings/{w}")).await;
    assert_eq!(wj["state"], "RESOLVED");
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["color"], "green");
    // The audit trail has every step with who and why.
    let (_, au) = h.get(&format!("/api/v1/audit?entity_id={w}")).await;
    let steps: Vec<String> = au
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["entity"] == "warning")
        .map(|r| r["to_state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        steps,
        ["RAISED", "NOTIFIED", "ACKED", "DISPOSING", "RESOLVED"]
    );
    assert!(
        au.as_array()
            .unwrap()
            .iter()
            .any(|r| r["entity"] == "warning_call"
                && r["to_state"] == "MISSED"
                && r["reason"].as_str().unwrap().contains("step 0")),
        "{au}"
    );
    assert!(
        au.as_array()
            .unwrap()
            .iter()
            .all(|r| !r["actor"].as_str().unwrap().is_empty() && r["at_ms"].as_i64().unwrap() > 0)
    );
    // A false alarm resolves at once.
    let (_, a) = h
        .alarm(&event_on(1, "gas-0002", "gas.co", "raised", "yellow"))
        .await;
    let w2 = a["warning_id"].as_str().unwrap().to_string();
    let (s, _) = h
        .post(
            &format!("/api/v1/warnings/{w2}/confirm"),
            json!({"person_id": "safety1", "false_alarm": true, "reason": "x"}),
        )
        .await;
    assert_eq!(s, 409, "must be acknowledged first");
    h.post(
        &format!("/api/v1/warnings/{w2}/ack"),
        json!({"person_id": "safety1"}),
    )
    .await;
    let (s, _) = h
        .post(
            &format!("/api/v1/warnings/{w2}/confirm"),
            json!({"person_id": "safety1", "false_alarm": true, "reason": "calibration"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, wj) = h.get(&format!("/api/v1/warnings/{w2}")).await;
    assert_eq!(wj["state"], "RESOLVED");
    assert_eq!(wj["false_alarm"], 1);
}

impl Harness {
    pub fn clock_now(&self) -> i64 {
        use anquan_monitor::clock::Clock;
        self.clock.now_ms()
    }
}

/// A failing webhook is retried, then FAILED, and since that was the
/// step's only call, the next step is called at once (a yellow alarm calls
/// the safety officer, then the principal).
pub async fn delivery_retries(h: &Harness) {
    h.fail_hooks
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (_, a) = h.alarm(&event(20, "raised", "yellow")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    let t = h.tick().await;
    assert_eq!((t.sent, t.failed), (0, 1));
    h.clock.advance_ms(999);
    assert_eq!(h.tick().await.failed, 0, "not before the retry delay");
    h.fail_hooks
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.fail_hooks
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.clock.advance_ms(1);
    let t = h.tick().await;
    assert_eq!(t.failed, 1, "second and last attempt");
    let (_, d) = h.get(&format!("/api/v1/deliveries?subject_id={w}")).await;
    let d = d.as_array().unwrap();
    assert_eq!(d[0]["state"], "FAILED");
    assert_eq!(d[0]["attempts"], 2);
    assert!(d[0]["last_error"].as_str().unwrap().contains("503"));
    assert_eq!(d.len(), 2, "the next person's call is queued: {d:?}");
    assert_eq!(d[1]["person_id"], "safety2");
    h.fail_hooks
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let t = h.tick().await;
    assert_eq!(t.sent, 1);
    assert_eq!(h.hooks_for("safety2").len(), 1);
}

/// E-mail through a real SMTP conversation.
pub async fn email(h: &Harness) {
    let sink = h.smtp.as_ref().unwrap();
    h.alarm(&event(30, "raised", "red")).await;
    let t = h.tick().await;
    assert_eq!(
        t.sent, 5,
        "webhook and e-mail to safety1, webhooks to safety2 and grid, the county informed"
    );
    let mails = sink.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].to[0].contains("safety1@example.invalid"));
    assert!(mails[0].from.contains("monitor@example.invalid"));
    assert!(mails[0].data.contains("Subject:"), "{}", mails[0].data);
    let text = mail_text(&mails[0].data);
    assert!(
        text.contains("可燃气体浓度 55%LEL") && text.contains("Scenic area"),
        "{text}"
    );
}

/// Hazard gates, the reminder ladder (each step once), OVERDUE, escalation,
/// sanction proposals, reopen on recurrence.
pub async fn hazards_and_reminders(h: &Harness) {
    let (s, c) = h.post("/api/v1/hazards", json!({"actor": "grid", "venue_id": "s1", "category": "fire.exit", "title": "blocked fire exit", "source": "inspection"})).await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    // Dedupe on venue + category while open.
    let (s, c2) = h.post("/api/v1/hazards", json!({"actor": "grid", "venue_id": "s1", "category": "fire.exit", "title": "again", "source": "report"})).await;
    assert_eq!(s, 200);
    assert_eq!(c2["id"], id.as_str());
    let mv = |to: &str, fields: Value| json!({"to": to, "actor": "county1", "reason": format!("to {to}"), "fields": fields});
    let path = format!("/api/v1/hazards/{id}/transition");
    let (s, p) = h.post(&path, mv("JUDGED", json!({}))).await;
    assert_eq!(s, 409);
    assert!(p["detail"].as_str().unwrap().contains("severity"));
    let (s, _) = h
        .post(&path, mv("JUDGED", json!({"severity": "major"})))
        .await;
    assert_eq!(s, 200);
    // FILED: 四项清单 + 牵头验收单位 + owner + due; 重大 adds 资金/预案.
    let due = h.clock_now() + 10 * DAY;
    let (s, p) = h
        .post(
            &path,
            mv(
                "FILED",
                json!({"problem": "exit blocked by goods", "measures": "clear and mark"}),
            ),
        )
        .await;
    assert_eq!(s, 409, "a failed gate changes nothing");
    let d = p["detail"].as_str().unwrap();
    assert!(
        d.contains("standard")
            && d.contains("responsibility")
            && d.contains("acceptance_unit")
            && d.contains("funds")
            && d.contains("plan"),
        "{d}"
    );
    let (s, p) = h.post(&path, mv("FILED", json!({"problem": "exit blocked by goods", "measures": "clear and mark", "standard": "GB 50016", "responsibility": "venue principal", "acceptance_unit": "county fire brigade", "owner_id": "safety1", "due_ms": due, "funds": "2000 CNY", "plan": "evacuation plan v2"}))).await;
    assert_eq!(s, 200, "{p}");
    let (s, _) = h.post(&path, mv("RECTIFYING", json!({}))).await;
    assert_eq!(s, 200);
    // Interim control blocks operation.
    let (s, _) = h
        .post(
            &path,
            mv("INTERIM_CONTROL", json!({"interim_watcher": "guard Li"})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["operation_blocked"], true);
    assert_eq!(st["color"], "orange");
    h.post(&path, mv("RECTIFYING", json!({}))).await;
    // The ladder: before (owner), due (owner + grid), overdue (county),
    // node (city + 约谈/通报), listing (挂牌督办) — each once.
    h.clock.set_ms(due - 72 * HOUR);
    assert_eq!(h.tick().await.reminders, 1);
    assert_eq!(h.tick().await.reminders, 0);
    assert_eq!(h.hooks_for("safety1").len(), 1);
    h.clock.set_ms(due);
    assert_eq!(
        h.tick().await.reminders,
        2,
        "due + overdue (overdue_after_h = 0)"
    );
    assert_eq!(h.hooks_for("safety1").len(), 2);
    assert_eq!(h.hooks_for("grid").len(), 1);
    assert_eq!(h.hooks_for("county1").len(), 1);
    h.clock.set_ms(due + 15 * DAY);
    assert_eq!(h.tick().await.reminders, 1);
    assert_eq!(h.hooks_for("city1").len(), 1);
    h.clock.set_ms(due + 30 * DAY);
    assert_eq!(h.tick().await.reminders, 1);
    assert_eq!(h.tick().await.reminders, 0);
    let (_, sp) = h.get("/api/v1/sanctions").await;
    let props: Vec<&str> = sp
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["proposal"].as_str().unwrap())
        .collect();
    assert_eq!(props, ["约谈/通报", "挂牌督办"]);
    // A person confirms the 挂牌督办 proposal: the hazard is listed at the
    // city level; a county person cannot list or lift it.
    let listing = sp[1]["id"].as_str().unwrap();
    let (s, p) = h
        .post(
            &format!("/api/v1/sanctions/{listing}/decide"),
            json!({"person_id": "city1", "accept": true, "reason": "long overdue"}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let (_, hz) = h.get(&format!("/api/v1/hazards/{id}")).await;
    assert_eq!(hz["listed_level"], "city");
    assert_eq!(hz["listed_by"], "city1");
    let (s, _) = h
        .post(
            &format!("/api/v1/hazards/{id}/list"),
            json!({"person_id": "county1", "reason": "x"}),
        )
        .await;
    assert_eq!(s, 409, "already listed");
    let (s, _) = h
        .post(
            &format!("/api/v1/sanctions/{listing}/decide"),
            json!({"person_id": "city1", "accept": true, "reason": "again"}),
        )
        .await;
    assert_eq!(s, 409, "decided once");
    // Verify and close: acceptance record and signer required.
    h.post(&path, mv("VERIFYING", json!({}))).await;
    let (s, p) = h.post(&path, mv("CLOSED", json!({}))).await;
    assert_eq!(s, 409);
    assert!(p["detail"].as_str().unwrap().contains("signer"));
    let fields =
        json!({"acceptance_record": "accepted on site, photos a1-a3", "signer": "组长 Wang"});
    let (s, p) = h.post(&path, mv("CLOSED", fields.clone())).await;
    assert_eq!(s, 409, "listed by the city: the county cannot lift it");
    assert!(p["detail"].as_str().unwrap().contains("摘牌"), "{p}");
    let (s, p) = h
        .post(
            &path,
            json!({"to": "CLOSED", "actor": "city1", "reason": "摘牌", "fields": fields}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let (s, _) = h.post(&path, mv("ARCHIVED", json!({}))).await;
    assert_eq!(s, 200);
    let (s, _) = h.post(&path, mv("REOPENED", json!({}))).await;
    assert_eq!(s, 200);
    let (_, hz) = h.get(&format!("/api/v1/hazards/{id}")).await;
    assert_eq!(hz["state"], "REOPENED");
    assert_eq!(hz["reopened"], 1);
    // A task past its deadline becomes OVERDUE (by the scheduler only).
    let (s, t) = h.post("/api/v1/tasks", json!({"actor": "county1", "kind": "inspection", "title": "monthly visit", "venue_id": "s2", "assignee_id": "grid", "due_ms": h.clock_now() + DAY})).await;
    assert_eq!(s, 201, "{t}");
    let tid = t["id"].as_str().unwrap();
    let (s, _) = h
        .post(
            &format!("/api/v1/tasks/{tid}/transition"),
            json!({"to": "OVERDUE", "actor": "grid", "reason": "x"}),
        )
        .await;
    assert_eq!(s, 409);
    h.clock.advance_ms(DAY);
    h.tick().await;
    let (_, tj) = h.get(&format!("/api/v1/tasks/{tid}")).await;
    assert_eq!(tj["state"], "OVERDUE");
    let (s, p) = h
        .post(
            &format!("/api/v1/tasks/{tid}/transition"),
            json!({"to": "SUBMITTED", "actor": "grid", "reason": "late"}),
        )
        .await;
    assert_eq!(s, 422, "evidence required: {p}");
}

/// Walks a disposal task to DONE as `actor` (IN_PROGRESS, SUBMITTED with
/// `evidence`, REVIEWED, DONE).
async fn dispose(h: &Harness, task: &str, actor: &str, evidence: &str) {
    for (to, extra) in [
        ("IN_PROGRESS", json!({})),
        ("SUBMITTED", json!({ "evidence": evidence })),
        ("REVIEWED", json!({})),
        ("DONE", json!({})),
    ] {
        let mut b = json!({"to": to, "actor": actor, "reason": "step"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        let (s, p) = h.post(&format!("/api/v1/tasks/{task}/transition"), b).await;
        assert_eq!(s, 200, "{to}: {p}");
    }
}

/// safety1 acknowledges warning `w`, then confirms it false or real;
/// the confirmation's answer.
async fn ack_then_confirm(h: &Harness, w: &str, false_alarm: bool, reason: &str) -> (u16, Value) {
    h.post(
        &format!("/api/v1/warnings/{w}/ack"),
        json!({"person_id": "safety1"}),
    )
    .await;
    h.post(
        &format!("/api/v1/warnings/{w}/confirm"),
        json!({"person_id": "safety1", "false_alarm": false_alarm, "reason": reason}),
    )
    .await
}

/// Raises a yellow gas.lel alarm at the venue's detector (event `n`),
/// acknowledges it and confirms it false or real; returns the warning.
async fn judged_alarm(h: &Harness, n: u32, false_alarm: bool) -> String {
    let (_, a) = h
        .alarm(&event_on(n, "gas-0001", "gas.lel", "raised", "yellow"))
        .await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    let (s, p) = ack_then_confirm(h, &w, false_alarm, "test").await;
    assert_eq!(s, 200, "{p}");
    if !false_alarm {
        // Disposal done: the warning closes, the next alarm opens anew.
        dispose(
            h,
            p["task_id"].as_str().unwrap(),
            "safety1",
            "valve replaced",
        )
        .await;
        let (_, wj) = h.get(&format!("/api/v1/warnings/{w}")).await;
        assert_eq!(wj["state"], "RESOLVED");
    }
    w
}

/// 重点风控 and recurrence count confirmed-real alarms only (issue 18):
/// three alarms confirmed false in 30 days propose nothing and open no
/// hazard; three confirmed real do both; after the hazard is closed, an
/// unjudged alarm and a false one leave it closed, a real one reopens it.
pub async fn key_risk_and_recurrence(h: &Harness) {
    let mut ws = Vec::new();
    for i in 0..3u32 {
        ws.push(judged_alarm(h, 100 + 2 * i, true).await);
        h.clock.advance_ms(DAY);
    }
    assert_eq!(ws.iter().collect::<std::collections::HashSet<_>>().len(), 3);
    let (_, kp) = h.get("/api/v1/key-risk/proposals").await;
    assert_eq!(
        kp.as_array().unwrap().len(),
        0,
        "false alarms counted: {kp}"
    );
    let (_, hz) = h.get("/api/v1/hazards").await;
    assert_eq!(
        hz.as_array().unwrap().len(),
        0,
        "false alarms counted: {hz}"
    );
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["key_risk_proposed"], false);

    for i in 0..3u32 {
        judged_alarm(h, 110 + 2 * i, false).await;
        h.clock.advance_ms(DAY);
        let (_, kp) = h.get("/api/v1/key-risk/proposals").await;
        assert_eq!(kp.as_array().unwrap().len(), usize::from(i == 2), "{kp}");
    }
    let (_, kp) = h.get("/api/v1/key-risk/proposals").await;
    assert_eq!(kp[0]["venue_id"], "s1");
    assert_eq!(kp[0]["alarms"], 3);
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["key_risk_proposed"], true);
    let (s, _) = h
        .post(
            "/api/v1/key-risk/proposals/s1/decide",
            json!({"person_id": "county1", "accept": true, "reason": "动态隐患多发"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["key_risk"], true);
    let (_, hz) = h.get("/api/v1/hazards").await;
    let hz = hz.as_array().unwrap();
    assert_eq!(hz.len(), 1);
    assert_eq!(hz[0]["source"], "alarm");
    assert_eq!(hz[0]["category"], "gas.lel");
    assert_eq!(hz[0]["state"], "DETECTED");
    // 立查立改 fast path, close; the alarm recurs.
    let id = hz[0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/hazards/{id}/transition");
    let (s, p) = h.post(&path, json!({"to": "VERIFYING", "actor": "safety1", "reason": "fixed at once", "fields": {"problem": "loose fitting", "measures": "tightened", "acceptance_record": "photo f1"}})).await;
    assert_eq!(s, 200, "{p}");
    let (s, p) = h.post(&path, json!({"to": "CLOSED", "actor": "county1", "reason": "ok", "fields": {"acceptance_unit": "town office", "signer": "组长 Wang"}})).await;
    assert_eq!(s, 200, "{p}");
    // Raised but not judged: the closed hazard stays closed.
    let (_, a) = h
        .alarm(&event_on(200, "gas-0001", "gas.lel", "raised", "yellow"))
        .await;
    let (_, hz) = h.get(&format!("/api/v1/hazards/{id}")).await;
    assert_eq!(hz["state"], "CLOSED");
    // Judged false: still closed.
    let w = a["warning_id"].as_str().unwrap();
    h.post(
        &format!("/api/v1/warnings/{w}/confirm"),
        json!({"person_id": "safety1", "false_alarm": true, "reason": "cleaning spray"}),
    )
    .await;
    let (_, hz) = h.get(&format!("/api/v1/hazards/{id}")).await;
    assert_eq!(hz["state"], "CLOSED");
    // Confirmed real: reopened.
    judged_alarm(h, 210, false).await;
    let (_, hz) = h.get(&format!("/api/v1/hazards/{id}")).await;
    assert_eq!(hz["state"], "REOPENED");
}

/// The monthly report reflects what happened, in JSON, CSV and HTML.
pub async fn monthly_report(h: &Harness) {
    // One red warning acknowledged after 2 min, resolved after 1 h.
    let (_, a) = h.alarm(&event(300, "raised", "red")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.clock.advance_ms(2 * MIN);
    h.post(
        &format!("/api/v1/warnings/{w}/ack"),
        json!({"person_id": "safety1"}),
    )
    .await;
    h.clock.advance_ms(58 * MIN);
    h.post(
        &format!("/api/v1/warnings/{w}/confirm"),
        json!({"person_id": "safety1", "false_alarm": true, "reason": "x"}),
    )
    .await;
    // One done inspection at s2 that found a hazard; s1 not inspected.
    let (_, t) = h.post("/api/v1/tasks", json!({"actor": "grid", "kind": "inspection", "title": "check", "venue_id": "s2", "assignee_id": "grid", "due_ms": h.clock_now() + DAY})).await;
    let tid = t["id"].as_str().unwrap().to_string();
    for (to, ev) in [
        ("IN_PROGRESS", None),
        ("SUBMITTED", Some("checklist 2.0 done")),
        ("REVIEWED", None),
        ("DONE", None),
    ] {
        let mut b = json!({"to": to, "actor": "grid", "reason": "r"});
        if let Some(e) = ev {
            // Checklist 2.0: one failed item becomes a hazard of the venue.
            b["evidence"] = json!(e);
            b["checklist"] = json!([
                {"item": "2.0/extinguisher", "ok": false, "note": "expired extinguisher"},
                {"item": "2.0/fire.exit", "ok": true}
            ]);
        }
        let (s, p) = h.post(&format!("/api/v1/tasks/{tid}/transition"), b).await;
        assert_eq!(s, 200, "{p}");
        if to == "SUBMITTED" {
            let hz = p["hazards"].as_array().unwrap();
            assert_eq!(hz.len(), 1);
            let (_, hj) = h
                .get(&format!("/api/v1/hazards/{}", hz[0].as_str().unwrap()))
                .await;
            assert_eq!(hj["source"], "checklist");
            assert_eq!(hj["source_ref"], tid.as_str());
            assert_eq!(hj["category"], "2.0/extinguisher");
            assert_eq!(hj["venue_id"], "s2");
        }
    }
    h.post(
        "/api/v1/accidents",
        json!({"region_id": "county", "at_ms": h.clock_now(), "deaths": 0, "note": "minor fall"}),
    )
    .await;
    let (s, m) = h
        .get("/api/v1/reports/monthly?region=city&month=2026-11")
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["venues"], 2);
    assert_eq!(m["venues_inspected"], 1);
    assert_eq!(m["inspection_coverage"], 0.5);
    assert_eq!(m["hazard_discovery_rate"], 1.0);
    assert_eq!(m["alarms"], 1);
    assert_eq!(m["alarms_by_kind_level"]["gas/red"], 1);
    assert_eq!(m["mtta_s"], 120.0);
    assert_eq!(m["mttr_s"], 3600.0);
    assert_eq!(m["accidents"], json!([1, 0]));
    assert_eq!(m["accident_decline"], Value::Null);
    let (s, csv) = h
        .get_text("/api/v1/reports/monthly?region=town&month=2026-11&format=csv")
        .await;
    assert_eq!(s, 200);
    assert!(
        csv.contains("\"检查覆盖率 inspection coverage\",\"50.00%\""),
        "{csv}"
    );
    let (s, html) = h
        .get_text("/api/v1/reports/monthly?region=town&month=2026-11&format=html")
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("<table") && html.contains("mean time to acknowledge"));
    let (s, _) = h
        .get("/api/v1/reports/monthly?region=nowhere&month=2026-11")
        .await;
    assert_eq!(s, 404);
    // The other periods: the same alarm on its CST day, week, 15-day node
    // and quarter; nothing the day before.
    for (period, date, alarms) in [
        ("daily", "2026-11-10", 1),
        ("daily", "2026-11-09", 0),
        ("weekly", "2026-11-12", 1),
        ("half-monthly", "2026-11-01", 1),
        ("half-monthly", "2026-11-20", 0),
        ("quarterly", "2026-12-31", 1),
    ] {
        let (s, m) = h
            .get(&format!("/api/v1/reports/{period}?region=city&date={date}"))
            .await;
        assert_eq!(s, 200, "{period}: {m}");
        assert_eq!(m["alarms"], alarms, "{period} {date}");
    }
    // Per sector: the hotel (s2) was inspected and had no alarm.
    let (s, m) = h
        .get("/api/v1/reports/monthly?region=city&month=2026-11&sector=hotel")
        .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["sector"], "hotel");
    assert_eq!(m["venues"], 1);
    assert_eq!(m["inspection_coverage"], 1.0);
    assert_eq!(m["alarms"], 0);
    let (_, m) = h
        .get("/api/v1/reports/monthly?region=city&month=2026-11&sector=scenic_area")
        .await;
    assert_eq!(m["venues"], 1);
    assert_eq!(m["alarms"], 1);
    assert_eq!(m["inspections"], 0);
    let (s, _) = h
        .get("/api/v1/reports/fortnightly?region=city&date=2026-11-10")
        .await;
    assert_eq!(s, 404);
}

/// Registry CRUD with validation naming the field.
pub async fn registry_crud(h: &Harness) {
    let (s, _) = h
        .put(
            "/api/v1/registry/regions",
            json!({"id": "town2", "name": "Town 2", "tier": "town", "parent_id": "county"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, p) = h.put("/api/v1/registry/venues", json!({"id": "v9", "name": "KTV", "sector": "entertainment", "address": "x", "region_id": "nowhere"})).await;
    assert_eq!(s, 422);
    assert!(p["detail"].as_str().unwrap().contains("nowhere"));
    let (s, _) = h.put("/api/v1/registry/venues", json!({"id": "v9", "name": "KTV", "sector": "entertainment", "address": "x", "region_id": "town2", "lat": 30.1, "lon": 120.2})).await;
    assert_eq!(s, 200);
    let (s, p) = h
        .put(
            "/api/v1/registry/devices",
            json!({"id": "gas-0009", "venue_id": "v9", "kind": "smoke"}),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    let (s, _) = h
        .put(
            "/api/v1/registry/devices",
            json!({"id": "gas-0009", "venue_id": "v9", "kind": "gas"}),
        )
        .await;
    assert_eq!(s, 200);
    // A crane with its 使用登记编号; control characters refused naming it.
    let (s, p) = h
        .put(
            "/api/v1/registry/devices",
            json!({"id": "crane-0009", "venue_id": "v9", "kind": "crane", "name": "1号塔吊", "registration": "苏A\u{7}T00123"}),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("registration"),
        "{p}"
    );
    let (s, p) = h
        .put(
            "/api/v1/registry/devices",
            json!({"id": "crane-0009", "venue_id": "v9", "kind": "crane", "name": "1号塔吊", "registration": "苏A-T00123"}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let (_, d) = h.get("/api/v1/registry/devices").await;
    assert!(
        d.as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == "crane-0009" && x["registration"] == "苏A-T00123"),
        "{d}"
    );
    assert_eq!(h.delete("/api/v1/registry/devices/crane-0009").await, 204);
    // A venue whose coordinates were copied from AMap (GCJ-02) is stored
    // in WGS-84.
    let (s, p) = h.put("/api/v1/registry/venues", json!({"id": "v10", "name": "Hall", "sector": "entertainment", "address": "y", "region_id": "town2", "lat": 39.91640428150164, "lon": 116.41024449916938, "datum": "gcj02"})).await;
    assert_eq!(s, 200, "{p}");
    let (_, v) = h.get("/api/v1/registry/venues").await;
    let v10 = v
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "v10")
        .unwrap()
        .clone();
    assert!(
        (v10["lat"].as_f64().unwrap() - 39.915).abs() < 1e-8,
        "{v10}"
    );
    assert!(
        (v10["lon"].as_f64().unwrap() - 116.404).abs() < 1e-8,
        "{v10}"
    );
    assert_eq!(h.delete("/api/v1/registry/venues/v10").await, 204);
    let (s, p) = h.put("/api/v1/registry/people", json!({"id": "x", "name": "X", "role": "mayor", "region_id": "town2", "email": "x@example.invalid"})).await;
    assert_eq!(s, 422);
    assert!(p["detail"].as_str().unwrap().contains("role"));
    let (s, p) = h.put("/api/v1/registry/people", json!({"id": "x", "name": "X", "role": "safety_officer", "region_id": "town2", "email": 5})).await;
    assert_eq!(s, 400);
    assert!(p["detail"].as_str().unwrap().contains("email"), "{p}");
    let (_, v) = h.get("/api/v1/registry/venues").await;
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(h.delete("/api/v1/registry/devices/gas-0009").await, 204);
    let (_, d) = h.get("/api/v1/registry/devices").await;
    assert_eq!(d.as_array().unwrap().len(), 1);
    // An alarm from a device bound to v9's site goes to v9's region roster
    // (the town2 roster is empty → the county's people via the chain).
    let (s, _) = h.get("/api/v1/registry/nonsense").await;
    assert_eq!(s, 404);
    let r = h
        .http
        .get(format!("{}/api/v1/registry/venues", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// Two service instances on one database, same clock: every call,
/// reminder and delivery happens once.
pub async fn two_replicas(h: &Harness, other: &Harness) {
    h.post("/api/v1/tasks", json!({"actor": "county1", "kind": "patrol", "title": "daily patrol", "venue_id": "s1", "assignee_id": "grid", "due_ms": h.clock_now() + HOUR})).await;
    for i in 0..5u32 {
        h.alarm(&event_on(
            500 + i,
            &format!("dev-{i}"),
            "gas.lel",
            "raised",
            "red",
        ))
        .await;
    }
    other.clock.set_ms(h.clock_now());
    let (a, b) = tokio::join!(h.tick(), other.tick());
    assert_eq!(
        a.sent + b.sent,
        5 * 4 + 1,
        "5 red warnings x (3 called at once + the county informed) + the patrol's 'before' reminder: {a:?} {b:?}"
    );
    h.clock.advance_ms(5 * MIN);
    other.clock.set_ms(h.clock_now());
    let (a, b) = tokio::join!(h.tick(), other.tick());
    assert_eq!(a.calls + b.calls, 5, "{a:?} {b:?}");
    let (a, b) = tokio::join!(h.tick(), other.tick());
    assert_eq!(a.calls + b.calls, 0);
    assert!(
        a.sent + b.sent <= 5 * 2,
        "the county duty officer and shift leader, once each"
    );
    h.clock.advance_ms(HOUR);
    other.clock.set_ms(h.clock_now());
    let (a, b) = tokio::join!(h.tick(), other.tick());
    let (c, d) = tokio::join!(h.tick(), other.tick());
    assert_eq!(
        a.reminders + b.reminders + c.reminders + d.reminders,
        2,
        "due + overdue, once"
    );
    let mut all: Vec<String> = h
        .hooks
        .lock()
        .unwrap()
        .iter()
        .map(|x| x.delivery.clone())
        .collect();
    all.extend(
        other
            .hooks
            .lock()
            .unwrap()
            .iter()
            .map(|x| x.delivery.clone()),
    );
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "no delivery sent twice");
    assert_eq!(
        h.hooks_for("safety2").len() + other.hooks_for("safety2").len(),
        5
    );
}

/// The issue's chain in one go: a red gas alarm → warning → the person on
/// duty e-mailed → not acknowledged within the SLA → the next person →
/// acknowledged → disposal task → overdue → escalated to the county →
/// hazard filed → rectified → verified → closed → in the monthly report.
pub async fn full_chain(h: &Harness) {
    let sink = h.smtp.as_ref().unwrap();
    let (s, a) = h.alarm(&event(900, "raised", "red")).await;
    assert_eq!(s, 200);
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.tick().await;
    {
        let mails = sink.mails.lock().unwrap();
        assert_eq!(mails.len(), 1);
        assert!(mails[0].to[0].contains("safety1@"));
        let text = mail_text(&mails[0].data);
        assert!(text.contains("/a/"), "the one-click link: {text}");
    }
    h.clock.advance_ms(5 * MIN);
    assert_eq!(h.tick().await.calls, 1);
    assert_eq!(h.hooks_for("safety2").len(), 1, "called once, at once");
    assert_eq!(h.hooks_for("leader").len(), 1, "the chain's first step");
    let (s, _) = h
        .post(
            &format!("/api/v1/warnings/{w}/ack"),
            json!({"person_id": "safety2"}),
        )
        .await;
    assert_eq!(s, 200);
    h.clock.advance_ms(3 * MIN);
    let (_, c) = h
        .post(
            &format!("/api/v1/warnings/{w}/confirm"),
            json!({"person_id": "safety2", "false_alarm": false, "reason": "leak confirmed"}),
        )
        .await;
    let task = c["task_id"].as_str().unwrap().to_string();
    // The disposal task runs past its 24 h deadline: OVERDUE, county told.
    h.post(
        &format!("/api/v1/tasks/{task}/transition"),
        json!({"to": "IN_PROGRESS", "actor": "safety2", "reason": "started"}),
    )
    .await;
    h.clock.advance_ms(DAY);
    h.tick().await;
    let (_, tj) = h.get(&format!("/api/v1/tasks/{task}")).await;
    assert_eq!(tj["state"], "OVERDUE");
    assert!(
        h.hooks_for("county1")
            .iter()
            .any(|x| x.body["subject_id"] == task.as_str() && x.body["purpose"] == "escalation")
    );
    // The leak's cause becomes a filed hazard, rectified, verified, closed.
    let (_, hz) = h.post("/api/v1/hazards", json!({"actor": "county1", "venue_id": "s1", "category": "gas.valve", "title": "corroded valve", "source": "alarm", "source_ref": w})).await;
    let hid = hz["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/hazards/{hid}/transition");
    let mv = |to: &str, f: Value| json!({"to": to, "actor": "county1", "reason": to, "fields": f});
    for (to, f) in [
        ("JUDGED", json!({"severity": "general"})),
        (
            "FILED",
            json!({"problem": "corroded valve", "measures": "replace valve", "standard": "GB/T 50493", "responsibility": "venue principal", "acceptance_unit": "town office", "owner_id": "safety2", "due_ms": h.clock_now() + 7 * DAY}),
        ),
        ("RECTIFYING", json!({})),
        ("VERIFYING", json!({})),
        (
            "CLOSED",
            json!({"acceptance_record": "valve replaced, leak test passed", "signer": "组长 Wang"}),
        ),
    ] {
        let (s, p) = h.post(&path, mv(to, f)).await;
        assert_eq!(s, 200, "{to}: {p}");
    }
    for (to, ev) in [
        ("SUBMITTED", Some("valve replaced")),
        ("REVIEWED", None),
        ("DONE", None),
    ] {
        let mut b = json!({"to": to, "actor": "safety2", "reason": to});
        if let Some(e) = ev {
            b["evidence"] = json!(e);
        }
        let (s, p) = h.post(&format!("/api/v1/tasks/{task}/transition"), b).await;
        assert_eq!(s, 200, "{to}: {p}");
    }
    let (_, wj) = h.get(&format!("/api/v1/warnings/{w}")).await;
    assert_eq!(wj["state"], "RESOLVED");
    let (_, m) = h
        .get("/api/v1/reports/monthly?region=city&month=2026-11")
        .await;
    assert_eq!(m["alarms"], 1);
    assert_eq!(m["alarms_by_kind_level"]["gas/red"], 1);
    assert_eq!(m["mtta_s"], 300.0);
    assert_eq!(m["mttr_s"], (8 * MIN + DAY) as f64 / 1000.0);
    assert_eq!(m["alarm_hazard_share"], 1.0);
    assert_eq!(m["hazards_found"], 1);
}

/// The templates for [`recurring_tasks`].
pub const TEMPLATES: &str = r#"
[[task_templates]]
id = "daily-patrol"
kind = "patrol"
title = "日巡查"
every = "day"
region_id = "town"
assignee_role = "safety_officer"
due_h = 20
[[task_templates]]
id = "random-check"
kind = "sampling"
title = "双随机抽查"
every = "month"
region_id = "city"
assignee_role = "county"
due_h = 240
sample = 1
"#;

/// 任务督导: a daily patrol per venue and one random sampling a month,
/// generated once per period; a patrol not done walks the ladder.
pub async fn recurring_tasks(h: &Harness) {
    let t = h.tick().await;
    assert_eq!(
        t.tasks,
        2 + 1,
        "2 venues x daily patrol + 1 sampled venue: {t:?}"
    );
    assert_eq!(h.tick().await.tasks, 0, "once per period");
    let (_, tasks) = h.get("/api/v1/tasks").await;
    let tasks = tasks.as_array().unwrap();
    let patrols: Vec<_> = tasks.iter().filter(|t| t["kind"] == "patrol").collect();
    assert_eq!(patrols.len(), 2);
    assert!(
        patrols
            .iter()
            .all(|t| t["assignee_id"] == "safety1" && t["state"] == "ASSIGNED")
    );
    assert!(patrols[0]["title"].as_str().unwrap().contains("2026-11-10"));
    let sampled: Vec<_> = tasks.iter().filter(|t| t["kind"] == "sampling").collect();
    assert_eq!(sampled.len(), 1);
    assert_eq!(sampled[0]["assignee_id"], "county1");
    // Next day: new patrols, no new sampling.
    h.clock.advance_ms(DAY);
    assert_eq!(h.tick().await.tasks, 2);
    // Yesterday's patrols (due 20 h after the CST day began) and the
    // sampling (due 10 days after the CST month began) are overdue by now.
    let (_, over) = h.get("/api/v1/tasks?state=OVERDUE").await;
    let over = over.as_array().unwrap();
    assert_eq!(over.iter().filter(|t| t["kind"] == "patrol").count(), 2);
    assert_eq!(over.iter().filter(|t| t["kind"] == "sampling").count(), 1);
    assert_eq!(over.len(), 3);
}

/// The public side: the 安全码 page without a token and without personal
/// data, and an anonymous 举报 that becomes a hazard and turns the code
/// yellow.
pub async fn public_side(h: &Harness) {
    let page_of = |venue: &'static str| async move {
        let r = h
            .http
            .get(format!("{}/public/venues/{venue}", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    };
    let report = |body: Value| async move {
        let r = h
            .http
            .post(format!("{}/public/reports", h.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let page = page_of("s1").await;
    assert!(
        page.contains("Scenic area") && page.contains("绿码 green"),
        "{page}"
    );
    assert!(
        !page.contains("code-why"),
        "a green code needs no reasons: {page}"
    );
    // Only the catalogue's categories (S4), something said, a real venue.
    let (s, p) = report(
        json!({"venue_id": "s1", "category": "fire.exit", "description": "exit 3 is chained shut"}),
    )
    .await;
    assert_eq!(s, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("category"), "{p}");
    let (s, _) = report(json!({"venue_id": "s1", "category": "fire", "description": "  "})).await;
    assert_eq!(s, 422);
    let (s, _) =
        report(json!({"venue_id": "nowhere", "category": "fire", "description": "x"})).await;
    assert_eq!(s, 404);
    // A report waits for judgement: no hazard, no colour.
    let (s, a) = report(
        json!({"venue_id": "s1", "category": "fire", "description": "exit 3 is chained shut"}),
    )
    .await;
    assert_eq!(s, 202, "{a}");
    let rid = a["report_id"].as_str().unwrap().to_string();
    let (_, hz) = h.get("/api/v1/hazards").await;
    assert_eq!(hz.as_array().unwrap().len(), 0, "{hz}");
    assert!(page_of("s1").await.contains("绿码 green"));
    let (_, au) = h.get(&format!("/api/v1/audit?entity_id={rid}")).await;
    assert_eq!(au[0]["actor"], "public", "no reporter identity is kept");
    let (s, q) = h.get("/api/v1/public-reports?state=PENDING").await;
    assert_eq!(s, 200);
    assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q[0]["id"], rid.as_str());
    let (s, _) = h.get("/api/v1/public-reports?state=BOGUS").await;
    assert_eq!(s, 422);
    // Judged by a person of the registry.
    let decide = |id: String, body: Value| async move {
        h.post(&format!("/api/v1/public-reports/{id}/decide"), body)
            .await
    };
    let (s, p) = decide(
        rid.clone(),
        json!({"person_id": "nobody", "accept": true, "reason": "seen"}),
    )
    .await;
    assert_eq!(s, 422, "{p}");
    let (s, p) = decide(rid.clone(), json!({"person_id": "grid", "accept": true, "category": "fire", "reason": "verified on site"})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["state"], "ACCEPTED");
    let hid = p["hazard_id"].as_str().unwrap().to_string();
    let (_, hz) = h.get(&format!("/api/v1/hazards/{hid}")).await;
    assert_eq!(
        (
            hz["source"].as_str(),
            hz["state"].as_str(),
            hz["category"].as_str()
        ),
        (Some("report"), Some("DETECTED"), Some("fire"))
    );
    assert_eq!(hz["source_ref"], rid.as_str());
    let (s, _) = decide(
        rid.clone(),
        json!({"person_id": "grid", "accept": false, "reason": "again"}),
    )
    .await;
    assert_eq!(s, 409, "judged once");
    // Now the public code is yellow, and says why.
    let page = page_of("s1").await;
    assert!(page.contains("黄码 yellow"), "{page}");
    assert!(
        page.contains("id=\"code-why\"") && page.contains("隐患 · 消防"),
        "{page}"
    );
    // No names or contacts of people on the page.
    assert!(!page.contains("safety1") && !page.contains("example.invalid"));
    assert!(
        !page.contains("exit 3"),
        "the report's text stays with the officers"
    );
    // A rejected report stays on record, without a hazard.
    let (_, a) =
        report(json!({"venue_id": "s1", "category": "crowd", "description": "too many people"}))
            .await;
    let rid2 = a["report_id"].as_str().unwrap().to_string();
    let (s, p) = decide(
        rid2,
        json!({"person_id": "grid", "accept": false, "reason": "a normal holiday crowd"}),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["state"].as_str(), p["hazard_id"].as_str()),
        (Some("REJECTED"), None)
    );
    let (_, hz) = h.get("/api/v1/hazards").await;
    assert_eq!(hz.as_array().unwrap().len(), 1, "{hz}");
    let r = h
        .http
        .get(format!("{}/public/venues/nowhere", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// The public code counts only judged input: unjudged offline and fault
/// alarms and blue notices leave it green (the officers' status shows
/// them); a danger reading colours it at once, with its reason; a
/// confirmed false alarm never colours it.
pub async fn public_code_counts_judged_input(h: &Harness) {
    let page = || async {
        h.http
            .get(format!("{}/public/venues/s1", h.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    for (n, rule, level) in [
        (1, "gas.lel", "blue"),
        (2, "gas.offline", "yellow"),
        (3, "gas.fault", "orange"),
    ] {
        let (s, a) = h
            .alarm(&event_on(n, "gas-0001", rule, "raised", level))
            .await;
        assert_eq!(s, 200, "{a}");
    }
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(
        st["color"], "orange",
        "the officers see every open warning: {st}"
    );
    let p = page().await;
    assert!(p.contains("绿码 green") && !p.contains("code-why"), "{p}");
    let (_, a) = h
        .alarm(&event_on(4, "gas-0001", "gas.co", "raised", "orange"))
        .await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    let p = page().await;
    assert!(
        p.contains("橙码 orange") && p.contains("报警 · 燃气"),
        "{p}"
    );
    // Confirmed a false alarm: green again, for the whole period.
    h.tick().await;
    let (s, r) = h
        .post(
            &format!("/api/v1/warnings/{w}/ack"),
            json!({"person_id": "safety1"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = h
        .post(
            &format!("/api/v1/warnings/{w}/confirm"),
            json!({"person_id": "grid", "false_alarm": true, "reason": "kitchen steam"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let p = page().await;
    assert!(p.contains("绿码 green"), "{p}");
}

/// `GET /metrics` (no token): the value of one sample, `None` when absent.
pub async fn metric(h: &Harness, sample: &str) -> Option<f64> {
    let r = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Metrics follow what happened: intake outcomes by kind, the warning
/// gauge, deliveries by channel, and a missed acknowledgement SLA counts
/// one breach at the warning's level (and only once the SLA has passed).
pub async fn metrics(h: &Harness) {
    let red = r#"anquan_monitor_sla_breaches_total{level="red"}"#;
    assert_eq!(metric(h, red).await, Some(0.0));
    let (s, a) = h.alarm(&event(500, "raised", "red")).await;
    assert_eq!(s, 200, "{a}");
    let w = a["warning_id"].as_str().unwrap().to_string();
    assert_eq!(h.alarm(&event(500, "raised", "red")).await.0, 200);
    let mut bad = event(501, "raised", "red");
    bad["level"] = json!("purple");
    assert_eq!(h.alarm(&bad).await.0, 422);
    let (s, _) = h
        .raw_alarm(
            OP,
            serde_json::to_vec(&event(502, "raised", "red")).unwrap(),
        )
        .await;
    assert_eq!(s, 401);
    for (sample, want) in [
        ("anquan_monitor_alarms_received_total", 1.0),
        ("anquan_monitor_alarms_duplicate_total", 1.0),
        (
            r#"anquan_monitor_alarms_rejected_total{reason="invalid"}"#,
            1.0,
        ),
        (
            r#"anquan_monitor_alarms_rejected_total{reason="unauthorized"}"#,
            1.0,
        ),
        ("anquan_monitor_intake_seconds_count", 4.0),
        (r#"anquan_monitor_warnings{state="RAISED"}"#, 1.0),
    ] {
        assert_eq!(metric(h, sample).await, Some(want), "{sample}");
    }
    h.tick().await;
    assert_eq!(
        metric(
            h,
            r#"anquan_monitor_notifications_sent_total{channel="webhook"}"#
        )
        .await,
        Some(4.0),
        "red: three called at once, the county informed"
    );
    assert_eq!(
        metric(h, r#"anquan_monitor_warnings{state="NOTIFIED"}"#).await,
        Some(1.0)
    );
    // Within the red SLA (5 min): no breach.
    h.clock.advance_ms(4 * MIN);
    assert_eq!(h.tick().await.calls, 0);
    assert_eq!(metric(h, red).await, Some(0.0));
    // Past it: the next person is called and one breach is counted.
    h.clock.advance_ms(MIN);
    assert_eq!(h.tick().await.calls, 1);
    assert_eq!(metric(h, red).await, Some(1.0));
    assert_eq!(
        metric(h, r#"anquan_monitor_sla_breaches_total{level="orange"}"#).await,
        Some(0.0)
    );
    let (_, wv) = h.get(&format!("/api/v1/warnings/{w}")).await;
    assert_eq!(wv["ladder_step"], 1);
    // Ticking again at the same time breaches nothing more.
    h.tick().await;
    assert_eq!(metric(h, red).await, Some(1.0));
}

/// A real 2×2 RGB PNG (IHDR, IDAT, IEND with valid CRCs).
pub const PNG: &str = "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000001349444154789c63f8cfc0c000c240e2ffffff0022ec05fb660a117e0000000049454e44ae426082";
/// A real 1×1 GIF: a photo format we do not take.
pub const GIF: &str =
    "47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `POST path` as multipart/form-data (`actor` and `file`), built by hand
/// as a browser sends it; the declared content type is deliberately wrong
/// when `declared` says so (the server looks at the bytes).
pub async fn upload(
    h: &Harness,
    path: &str,
    actor: &str,
    name: &str,
    declared: &str,
    data: &[u8],
) -> (u16, Value) {
    let b = "----anquan-test-boundary-7d3f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"actor\"\r\n\r\n{actor}\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {declared}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    let r = h
        .http
        .post(format!("{}{path}", h.base))
        .bearer_auth(OP)
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    if s >= 400 {
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Photo evidence on a task and a hazard: real PNG bytes stored under
/// their SHA-256, listed on the item, downloadable with a token only,
/// audited; other content (a GIF, text calling itself JPEG) is 415 and
/// counted; over `evidence.max_bytes` is 413. `dir` is `evidence.dir`.
pub async fn photo_evidence(h: &Harness, dir: &std::path::Path) {
    use sha2::Digest;
    let png = unhex(PNG);
    let (s, t) = h
        .post(
            "/api/v1/tasks",
            json!({"actor": "grid", "kind": "inspection", "title": "check", "venue_id": "s1",
                   "assignee_id": "grid", "due_ms": h.clock_now() + DAY}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let tid = t["id"].as_str().unwrap().to_string();
    let (s, p) = upload(
        h,
        &format!("/api/v1/tasks/{tid}/evidence"),
        "grid",
        "exit.png",
        "application/octet-stream",
        &png,
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let sha = hex::encode(sha2::Sha256::digest(&png));
    assert_eq!(p["sha256"], sha.as_str());
    assert_eq!(p["media_type"], "image/png");
    assert_eq!(p["bytes"], png.len());
    assert_eq!(std::fs::read(dir.join(&sha)).unwrap(), png);
    let eid = p["id"].as_str().unwrap().to_string();
    // Listed on the task and on its own list.
    let (_, tj) = h.get(&format!("/api/v1/tasks/{tid}")).await;
    assert_eq!(tj["photos"][0]["id"], eid.as_str());
    assert_eq!(tj["photos"][0]["filename"], "exit.png");
    let (_, l) = h.get(&format!("/api/v1/tasks/{tid}/evidence")).await;
    assert_eq!(l.as_array().unwrap().len(), 1);
    // Downloadable with a token, byte for byte; not without one.
    let r = h
        .http
        .get(format!("{}/api/v1/evidence/{eid}", h.base))
        .bearer_auth(OP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    let r = h
        .http
        .get(format!("{}/api/v1/evidence/{eid}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Audited.
    let (_, a) = h.get(&format!("/api/v1/audit?entity_id={tid}")).await;
    assert!(
        a.as_array()
            .unwrap()
            .iter()
            .any(|r| r["entity"] == "task_evidence" && r["to_state"] == "PHOTO_ADDED"),
        "{a}"
    );
    // Not a photo we take: 415, counted, nothing stored.
    let (s, p) = upload(
        h,
        &format!("/api/v1/tasks/{tid}/evidence"),
        "grid",
        "x.gif",
        "image/gif",
        &unhex(GIF),
    )
    .await;
    assert_eq!(s, 415, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("JPEG, PNG or WebP"));
    let (s, _) = upload(
        h,
        &format!("/api/v1/tasks/{tid}/evidence"),
        "grid",
        "fake.jpg",
        "image/jpeg",
        b"this is not a JPEG at all",
    )
    .await;
    assert_eq!(s, 415);
    assert_eq!(
        metric(
            h,
            r#"anquan_monitor_evidence_rejected_total{reason="type"}"#
        )
        .await,
        Some(2.0)
    );
    // Over evidence.max_bytes (the harness sets 4096): 413.
    let mut big = png.clone();
    big.resize(5000, 0);
    let (s, _) = upload(
        h,
        &format!("/api/v1/tasks/{tid}/evidence"),
        "grid",
        "big.png",
        "image/png",
        &big,
    )
    .await;
    assert_eq!(s, 413);
    assert_eq!(
        metric(
            h,
            r#"anquan_monitor_evidence_rejected_total{reason="too_large"}"#
        )
        .await,
        Some(1.0)
    );
    let (_, l) = h.get(&format!("/api/v1/tasks/{tid}/evidence")).await;
    assert_eq!(
        l.as_array().unwrap().len(),
        1,
        "refused uploads store nothing"
    );
    // Missing fields and unknown items.
    let (s, _) = upload(
        h,
        "/api/v1/tasks/nope/evidence",
        "grid",
        "a.png",
        "image/png",
        &png,
    )
    .await;
    assert_eq!(s, 404);
    let (s, p) = upload(
        h,
        &format!("/api/v1/tasks/{tid}/evidence"),
        "",
        "a.png",
        "image/png",
        &png,
    )
    .await;
    assert_eq!(s, 400, "{p}");
    // The uploader an operator token names is a person of the registry.
    let (s, p) = upload(
        h,
        &format!("/api/v1/tasks/{tid}/evidence"),
        "{\"not\": \"a person\"}",
        "a.png",
        "image/png",
        &png,
    )
    .await;
    assert_eq!(s, 422, "{p}");
    assert!(p["detail"].as_str().unwrap().starts_with("actor"), "{p}");
    // A hazard too; the same content is stored once.
    let (s, hz) = h
        .post(
            "/api/v1/hazards",
            json!({"actor": "grid", "venue_id": "s1", "category": "exit", "title": "exit blocked",
                   "source": "inspection"}),
        )
        .await;
    assert_eq!(s, 201, "{hz}");
    let hid = hz["id"].as_str().unwrap().to_string();
    let (s, p) = upload(
        h,
        &format!("/api/v1/hazards/{hid}/evidence"),
        "grid",
        "exit.png",
        "image/png",
        &png,
    )
    .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["sha256"], sha.as_str());
    let (_, hj) = h.get(&format!("/api/v1/hazards/{hid}")).await;
    assert_eq!(hj["photos"].as_array().unwrap().len(), 1);
    let files = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(files, 1, "one file per content");
}

/// Reports as XLSX (read back: a workbook whose sheet has the indicator
/// rows) and, when `pdf`, as PDF printed by Chromium.
pub async fn report_files(h: &Harness, pdf: bool) {
    use std::io::Read;
    let (s, _) = h.alarm(&event(700, "raised", "red")).await;
    assert_eq!(s, 200);
    let get = |q: &'static str| async move {
        let r = h
            .http
            .get(format!(
                "{}/api/v1/reports/monthly?region=city&month=2026-11&format={q}",
                h.base
            ))
            .bearer_auth(OP)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (s, ct, r.bytes().await.unwrap().to_vec())
    };
    let (s, ct, b) = get("xlsx").await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(ct, anquan_monitor::export::XLSX_MIME);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(b)).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        z.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    assert!(read("[Content_Types].xml").contains("spreadsheetml"));
    assert!(read("xl/workbook.xml").contains("name=\"report\""));
    let strings = read("xl/sharedStrings.xml");
    for row in [
        "检查覆盖率 inspection coverage",
        "隐患整改率 rectification rate",
        "重大隐患存量 open major hazards",
        "mean time to acknowledge",
        "alarms gas/red",
    ] {
        assert!(strings.contains(row), "{row} missing: {strings}");
    }
    let sheet = read("xl/worksheets/sheet1.xml");
    // Counts are numbers: registered venues 2, alarms 1.
    assert!(
        sheet.contains("<v>2</v>") && sheet.contains("<v>1</v>"),
        "{sheet}"
    );
    if pdf {
        let (s, ct, b) = get("pdf").await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        assert_eq!(ct, "application/pdf");
        assert!(b.starts_with(b"%PDF-"), "not a PDF");
        let text = String::from_utf8_lossy(&b);
        let count = |pat: &str| text.matches(pat).count();
        let pages = count("/Type /Page") + count("/Type/Page")
            - count("/Type /Pages")
            - count("/Type/Pages");
        assert!(pages >= 1, "no page object in the PDF");
    }
    let (s, _, b) = get("docx").await;
    assert_eq!(s, 400);
    assert!(String::from_utf8_lossy(&b).contains("xlsx or pdf"));
}

/// Many requests at once (they share group-commit batches): 16 copies of
/// one event and 16 new alarms. One copy is new, the others are
/// duplicates of it with the same warning; every new alarm has its
/// warning, its RAISED audit row, its stored event and its queued call.
/// (Each new alarm has a rule of its own: one rule on many devices at once
/// would be a storm, gathered into one warning, `alarm_storms`.)
pub async fn concurrent_intake(h: &Harness) {
    let mut calls = Vec::new();
    for i in 0..32u32 {
        let ev = if i % 2 == 0 {
            event(900, "raised", "red")
        } else {
            event_on(
                900 + i,
                &format!("burst-{i}"),
                &format!("gas.site_rule_{i}"),
                "raised",
                "yellow",
            )
        };
        calls.push(async move { h.alarm(&ev).await });
    }
    let answers = futures_join_all(calls).await;
    let copies: Vec<&Value> = answers
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, (s, a))| {
            assert_eq!(*s, 200, "{a}");
            a
        })
        .collect();
    assert_eq!(
        copies.iter().filter(|a| a["duplicate"] == false).count(),
        1,
        "{copies:?}"
    );
    // Batches took the fast path (one transaction, no savepoints).
    assert!(metric(h, r#"anquan_monitor_intake_batches_total{path="fast"}"#).await >= Some(1.0));
    assert_eq!(
        metric(h, r#"anquan_monitor_intake_batches_total{path="fallback"}"#).await,
        Some(0.0)
    );
    let w = &copies[0]["warning_id"];
    assert!(w.is_string());
    assert!(copies.iter().all(|a| &a["warning_id"] == w), "{copies:?}");
    let (_, ws) = h.get("/api/v1/warnings").await;
    assert_eq!(ws.as_array().unwrap().len(), 17);
    for wv in ws.as_array().unwrap() {
        let id = wv["id"].as_str().unwrap();
        let (_, full) = h.get(&format!("/api/v1/warnings/{id}")).await;
        assert_eq!(full["events"].as_array().unwrap().len(), 1, "{full}");
        let (_, a) = h.get(&format!("/api/v1/audit?entity_id={id}")).await;
        assert!(
            a.as_array()
                .unwrap()
                .iter()
                .any(|r| r["to_state"] == "RAISED"),
            "{a}"
        );
        let (_, d) = h.get(&format!("/api/v1/deliveries?subject_id={id}")).await;
        // Red: the safety officer, the principal and the grid officer
        // called, the county informed; yellow: the safety officer.
        let want = if wv["level"] == "red" { 4 } else { 1 };
        assert_eq!(d.as_array().unwrap().len(), want, "{d}");
    }
}

/// Runs the futures concurrently on this task, answers in order.
pub async fn futures_join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut fs: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = fs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in fs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

/// 报告生成 on schedule: once a period has ended, the scheduler stores its
/// report for every city and county region as a frozen snapshot, once,
/// and later data changes the on-demand report but not the snapshot.
pub async fn scheduled_reports(h: &Harness) {
    const MIN: i64 = 60_000;
    // 2026-12-01 00:05 Beijing time.
    let dec1 = 1_796_083_200_000 - 8 * 3_600_000 + 5 * MIN;
    // A red alarm on 2026-11-20 (Beijing).
    h.clock.set_ms(dec1 - 11 * 86_400_000);
    let (s, _) = h.alarm(&crate::common::event(1, "raised", "red")).await;
    assert_eq!(s, 200);

    h.clock.set_ms(dec1);
    // A few reports per tick (the SLA watch shares the tick), until done.
    let mut ticks = Vec::new();
    loop {
        let n = h.tick().await.reports;
        ticks.push(n);
        assert!(ticks.len() < 200, "{ticks:?}");
        if n == 0 {
            break;
        }
    }
    assert!(
        ticks.len() > 2 && ticks.iter().all(|&n| n <= 2),
        "{ticks:?}"
    );
    let (s, list) = h
        .get("/api/v1/report-snapshots?period=monthly&region=city")
        .await;
    assert_eq!(s, 200, "{list}");
    let list = list.as_array().unwrap().clone();
    let nov: Vec<_> = list.iter().filter(|x| x["label"] == "2026-11").collect();
    assert_eq!(nov.len(), 1, "{list:?}");
    let id = nov[0]["id"].as_str().unwrap().to_string();
    let (_, snap) = h.get(&format!("/api/v1/report-snapshots/{id}")).await;
    assert_eq!(snap["alarms"], 1, "{snap}");
    // The county got its own, and December (not ended) has none.
    let (_, all) = h.get("/api/v1/report-snapshots").await;
    let all = all.as_array().unwrap();
    assert!(all.iter().any(|x| x["region_id"] == "county"
        && x["label"] == "2026-11"
        && x["period"] == "monthly"));
    assert!(
        !all.iter()
            .any(|x| x["label"].as_str().unwrap().starts_with("2026-12")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|x| x["period"] == "daily" && x["label"] == "2026-11-30")
    );

    // Nothing twice: later ticks (past the once-a-minute gate) add nothing.
    h.clock.set_ms(dec1 + 2 * MIN);
    assert_eq!(h.tick().await.reports, 0);
    let (_, again) = h.get("/api/v1/report-snapshots").await;
    assert_eq!(again.as_array().unwrap().len(), all.len());

    // Frozen: a late alarm dated in November changes the on-demand report,
    // not the snapshot.
    h.clock.set_ms(dec1 - 5 * 86_400_000);
    let (s, _) = h
        .alarm(&crate::common::event_on(
            2, "gas-0002", "gas.lel", "raised", "red",
        ))
        .await;
    assert_eq!(s, 200);
    h.clock.set_ms(dec1 + 4 * MIN);
    let (_, live) = h
        .get("/api/v1/reports/monthly?region=city&month=2026-11")
        .await;
    assert_eq!(live["alarms"], 2, "{live}");
    let (_, snap) = h.get(&format!("/api/v1/report-snapshots/{id}")).await;
    assert_eq!(snap["alarms"], 1, "{snap}");
    let (s, csv) = h
        .get_text(&format!("/api/v1/report-snapshots/{id}?format=csv"))
        .await;
    assert_eq!(s, 200);
    assert!(csv.contains("2026-11"), "{csv}");
    let (s, _) = h.get("/api/v1/report-snapshots/nope").await;
    assert_eq!(s, 404);
}

/// A row's `cols` as JSON text (integers, floats, text or null).
fn row_text(r: &sqlx::any::AnyRow, cols: &[&str]) -> String {
    use sqlx::Row;
    let mut m = serde_json::Map::new();
    for &c in cols {
        let v = if let Ok(v) = r.try_get::<Option<i64>, _>(c) {
            json!(v)
        } else if let Ok(v) = r.try_get::<Option<f64>, _>(c) {
            json!(v)
        } else {
            json!(r.try_get::<Option<String>, _>(c).unwrap())
        };
        m.insert(c.to_string(), v);
    }
    Value::Object(m).to_string()
}

/// What the intake rules left in the database, without ids and times that
/// differ between two runs: each row as JSON text, sorted.
async fn rule_state(h: &Harness) -> Vec<String> {
    let queries: [(&str, &[&str]); 7] = [
        (
            "SELECT person_id, purpose, step FROM warning_calls",
            &["person_id", "purpose", "step"],
        ),
        (
            "SELECT alarm_key, level, max_level, state, clearable, ack_due_ms, ladder_step, venue_id, region_id FROM warnings",
            &[
                "alarm_key",
                "level",
                "max_level",
                "state",
                "clearable",
                "ack_due_ms",
                "ladder_step",
                "venue_id",
                "region_id",
            ],
        ),
        (
            "SELECT venue_id, category, state, reopened, title, source FROM hazards",
            &[
                "venue_id", "category", "state", "reopened", "title", "source",
            ],
        ),
        (
            "SELECT venue_id, alarms, state FROM key_risk_proposals",
            &["venue_id", "alarms", "state"],
        ),
        (
            "SELECT person_id, channel, purpose, title, priority, step FROM deliveries",
            &[
                "person_id",
                "channel",
                "purpose",
                "title",
                "priority",
                "step",
            ],
        ),
        (
            "SELECT entity, from_state, to_state, actor FROM audit WHERE entity <> 'user'",
            &["entity", "from_state", "to_state", "actor"],
        ),
        (
            "SELECT event_id, level, state, CASE WHEN warning_id IS NULL THEN 0 ELSE 1 END AS has_warning FROM alarm_events",
            &["event_id", "level", "state", "has_warning"],
        ),
    ];
    let mut out = Vec::new();
    for (sql, cols) in queries {
        let rows = sqlx::query(sql).fetch_all(&h.app.db).await.unwrap();
        let mut table: Vec<String> = rows.iter().map(|r| row_text(r, cols)).collect();
        table.sort();
        out.push(format!("{sql}: {} rows", table.len()));
        out.extend(table);
    }
    out
}

/// The batch fast path (alarms taken many per transaction, the rules'
/// reads fetched once per batch and kept in memory) leaves exactly what
/// taking the same events one by one leaves: warnings, escalation notices,
/// audit rows. `fast` runs with the fast path, `careful` without it; each wave is
/// sent all at once, so it shares batches.
pub async fn batch_rules_match_event_by_event(fast: &Harness, careful: &Harness) {
    careful.app.intake.set_fast_path(false);
    let wave1: Vec<Value> = (0..6)
        .map(|i| event_on(1, &format!("d{i}"), "gas.lel", "raised", "yellow"))
        .chain([
            event_on(1, "gas-0001", "gas.co", "raised", "orange"),
            json!({
                "event_id": "gw-01/zz/x1/gas.lel/1", "site": "zz", "device": "x1",
                "kind": "gas", "rule": "gas.lel", "level": "red", "state": "raised",
                "value": 80.0, "threshold": 50.0, "ts_ms": T0, "gateway": "gw-01"
            }),
        ])
        .collect();
    let wave2: Vec<Value> = (0..3)
        .map(|i| event_on(2, &format!("d{i}"), "gas.lel", "escalated", "red"))
        .chain([
            event_on(2, "d3", "gas.lel", "cleared", "yellow"),
            event_on(2, "d4", "gas.lel", "downgraded", "blue"),
            event_on(2, "gas-0001", "gas.co", "escalated", "red"),
            // Redeliveries, in the same batches as new events.
            event_on(1, "d0", "gas.lel", "raised", "yellow"),
            event_on(1, "d5", "gas.lel", "raised", "yellow"),
        ])
        .collect();
    let wave3: Vec<Value> = (6..9)
        .map(|i| event_on(1, &format!("d{i}"), "gas.lel", "raised", "orange"))
        .chain([event_on(3, "d0", "gas.lel", "cleared", "red")])
        .collect();
    for h in [fast, careful] {
        for wave in [&wave1, &wave2] {
            let answers = futures_join_all(wave.iter().map(|e| h.alarm(e)).collect()).await;
            for (s, a) in answers {
                assert_eq!(s, 200, "{a}");
            }
        }
        // Alarms alone, unjudged, open no hazard and propose nothing
        // (recurrence and 重点风控 count confirmed-real alarms).
        let (_, hz) = h.get("/api/v1/hazards").await;
        assert_eq!(hz.as_array().unwrap().len(), 0, "{hz:?}");
        let (_, kp) = h.get("/api/v1/key-risk/proposals").await;
        assert_eq!(kp.as_array().unwrap().len(), 0, "{kp:?}");
        let answers = futures_join_all(wave3.iter().map(|e| h.alarm(e)).collect()).await;
        for (s, a) in answers {
            assert_eq!(s, 200, "{a}");
        }
    }
    // The fast harness really took the fast path, never the fallback (a
    // fallback would make both runs the careful path).
    let fast_batches = metric(fast, r#"anquan_monitor_intake_batches_total{path="fast"}"#).await;
    assert!(fast_batches >= Some(1.0), "{fast_batches:?}");
    let fallback = metric(
        fast,
        r#"anquan_monitor_intake_batches_total{path="fallback"}"#,
    )
    .await;
    assert!(fallback.unwrap_or(0.0) == 0.0, "{fallback:?}");
    let a = rule_state(fast).await;
    let b = rule_state(careful).await;
    // Not vacuous: the waves did what they are for.
    let has = |needle: &str| a.iter().any(|l| l.contains(needle));
    assert!(has(r#""purpose":"escalated""#), "{a:#?}");
    assert!(has(r#""purpose":"cleared""#), "{a:#?}");
    assert!(has(r#""to_state":"cleared""#), "{a:#?}");
    assert_eq!(a, b);
}

/// The yearly (annual) report: CST calendar years, the 003:L41 vector as
/// year-on-year (2026: 24 accidents and 31 deaths against 18 and 23 in
/// 2025: 同比上升 33.33 % and 34.78 %), accidents a minute either side of
/// the new year (Beijing time) counted in the right year, `year` and
/// `annual` as aliases, and the year's snapshot frozen once it has ended.
pub async fn annual_report(h: &Harness) {
    const MIN: i64 = 60_000;
    // 2026-01-01 00:00 and 2027-01-01 00:00 Beijing time.
    let y2026 = 1_767_196_800_000;
    let y2027 = y2026 + 365 * DAY;
    let accident = |at_ms: i64, deaths: i64| json!({"region_id": "town", "venue_id": "s1", "at_ms": at_ms, "deaths": deaths, "note": "yoy"});
    // Accidents are recorded after they happen: it is now just past
    // midnight on 2027-01-01.
    h.clock.set_ms(y2027 + MIN);
    // 2025: 18 accidents, 23 deaths; the last one a minute before 2026.
    for i in 0..18 {
        let at = if i == 17 {
            y2026 - MIN
        } else {
            y2026 - 300 * DAY + i * DAY
        };
        let (s, r) = h
            .post("/api/v1/accidents", accident(at, if i < 5 { 2 } else { 1 }))
            .await;
        assert_eq!(s, 201, "{r}");
    }
    // 2026: 24 accidents, 31 deaths; the first at 00:00 on 1 January, the
    // last a minute before 2027.
    for i in 0..24 {
        let at = match i {
            0 => y2026,
            23 => y2027 - MIN,
            _ => y2026 + i * 10 * DAY,
        };
        let (s, r) = h
            .post("/api/v1/accidents", accident(at, if i < 7 { 2 } else { 1 }))
            .await;
        assert_eq!(s, 201, "{r}");
    }
    // 2024 and 2027 count in neither.
    for at in [y2026 - 400 * DAY, y2027] {
        let (s, _) = h.post("/api/v1/accidents", accident(at, 5)).await;
        assert_eq!(s, 201);
    }
    for period in ["yearly", "year", "annual"] {
        let (s, r) = h
            .get(&format!(
                "/api/v1/reports/{period}?region=city&date=2026-06-01"
            ))
            .await;
        assert_eq!(s, 200, "{period}: {r}");
        assert_eq!(r["period"], "yearly", "{r}");
        assert_eq!(r["month"], "2026", "{r}");
        assert_eq!(r["accidents"], json!([24, 18]), "{r}");
        assert_eq!(r["deaths"], json!([31, 23]), "{r}");
        let pct = |k: &str| (r[k].as_f64().unwrap() * 10_000.0).round() / 100.0;
        assert_eq!(pct("accident_decline"), -33.33, "{r}");
        assert_eq!(pct("death_decline"), -34.78, "{r}");
    }
    // 2027 so far: one accident (00:00 on 1 January) against 2026's 24.
    let (_, r) = h
        .get("/api/v1/reports/yearly?region=city&date=2027-01-01")
        .await;
    assert_eq!(r["accidents"], json!([1, 24]), "{r}");
    let (s, csv) = h
        .get_text("/api/v1/reports/annual?region=county&date=2026-12-31&format=csv")
        .await;
    assert_eq!(s, 200);
    assert!(csv.contains("yearly 2026"), "{csv}");
    // Titled by its period, not "月度报告".
    let (s, html) = h
        .get_text("/api/v1/reports/yearly?region=county&date=2026-12-31&format=html")
        .await;
    assert_eq!(s, 200);
    assert!(
        html.contains("<title>年度报告 county 2026</title>"),
        "{html}"
    );
    assert!(!html.contains("月度报告"), "{html}");
    let (s, _) = h
        .get("/api/v1/reports/decade?region=city&date=2026-06-01")
        .await;
    assert_eq!(s, 404);

    // Scheduled: at 00:05 on 2027-01-01 the year 2026 has ended.
    h.clock.set_ms(y2027 + 5 * MIN);
    for _ in 0..200 {
        if h.tick().await.reports == 0 {
            break;
        }
    }
    let (_, list) = h.get("/api/v1/report-snapshots?period=yearly").await;
    let list = list.as_array().unwrap().clone();
    let mut got: Vec<(String, String)> = list
        .iter()
        .map(|x| {
            (
                x["region_id"].as_str().unwrap().to_string(),
                x["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("city".into(), "2026".into()),
            ("county".into(), "2026".into())
        ],
        "{list:?}"
    );
    let id = list.iter().find(|x| x["region_id"] == "city").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, snap) = h.get(&format!("/api/v1/report-snapshots/{id}")).await;
    assert_eq!(snap["accidents"], json!([24, 18]), "{snap}");
    assert_eq!(snap["period"], "yearly");
}

/// The attachment `filename` of a received mail, decoded (base64). lettre
/// writes the name as an RFC 2231 parameter (`filename*0="…"`).
/// The text of a single-part mail (base64 or quoted-printable body, as
/// lettre writes non-ASCII text).
pub fn mail_text(data: &str) -> String {
    let Some(i) = data.find("\r\n\r\n") else {
        return data.to_string();
    };
    let (head, body) = (&data[..i], &data[i + 4..]);
    if head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: base64")
    {
        let b64: String = body.split_whitespace().collect();
        return String::from_utf8(crate::common::smtp::b64decode(&b64).unwrap_or_default())
            .unwrap_or_default();
    }
    if head.to_ascii_lowercase().contains("quoted-printable") {
        let joined = body.replace("=\r\n", "");
        let mut out = Vec::new();
        let b = joined.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'='
                && i + 2 < b.len()
                && let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        return String::from_utf8_lossy(&out).into_owned();
    }
    body.to_string()
}

pub fn mail_attachment(data: &str, filename: &str) -> Option<Vec<u8>> {
    let at = data
        .find(&format!("filename=\"{filename}\""))
        .or_else(|| data.find(&format!("filename*0=\"{filename}\"")))?;
    let rest = &data[at..];
    let body = &rest[rest.find("\r\n\r\n")? + 4..];
    let b64: String = body
        .lines()
        .take_while(|l| !l.starts_with("--"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    crate::common::smtp::b64decode(&b64)
}

/// Scheduled reports mailed to `[[reports.mail]]` (two addresses and the
/// city's rostered `city` person): the November snapshot is frozen on
/// 1 December, one mail per recipient goes out with an HTML body and the
/// XLSX attached; a first attempt refused by the relay (wrong SMTP
/// password) is retried after a restart with the right one, and sent once;
/// another restart sends nothing again. Runs on `url` (SQLite or
/// PostgreSQL), restarting the service on the same database.
pub async fn report_mail(url: &str) {
    use crate::common::smtp::{Auth, Sink};
    use anquan_monitor::config::ReportMail;
    const MIN: i64 = 60_000;
    // 2026-12-01 00:05 Beijing time.
    let dec1 = 1_796_083_200_000 - 8 * 3_600_000 + 5 * MIN;
    let start = |password: &'static str| async move {
        let sink = Sink::start_with(Some(Auth {
            user: "monitor".into(),
            password: "right-password".into(),
            mechanisms: "PLAIN LOGIN".into(),
        }))
        .await;
        let h = Harness::start_with_sink(url, Some(sink), "", move |c| {
            c.reports.scheduled_tiers = vec!["city".into(), "county".into()];
            c.reports.mail = vec![ReportMail {
                region: "city".into(),
                periods: vec!["monthly".into()],
                to: vec![
                    "boss@example.invalid".into(),
                    "deputy@example.invalid".into(),
                ],
                roles: vec!["city".into()],
                attach: Default::default(),
            }];
            let s = c.notify.smtp.as_mut().unwrap();
            s.username = Some("monitor".into());
            s.password = Some(anquan_monitor::secret::Secret::from(password));
        })
        .await;
        h.clock.set_ms(dec1);
        h
    };
    let mails = |h: &Harness| h.smtp.as_ref().unwrap().mails.lock().unwrap().clone();
    let report_deliveries = |d: &Value| -> Vec<Value> {
        d.as_array()
            .unwrap()
            .iter()
            .filter(|x| x["subject"] == "report")
            .cloned()
            .collect()
    };

    // 1. The snapshots are frozen; the relay refuses the first attempts.
    let h = start("wrong-password").await;
    let (s, p) = h
        .put(
            "/api/v1/registry/people",
            json!({"id": "city1", "name": "City", "role": "city", "region_id": "city",
                   "email": "city1@example.invalid", "webhook": format!("{}/hook/city1", h.base)}),
        )
        .await;
    assert!(s == 200 || s == 201, "{p}");
    let mut failed = 0;
    for _ in 0..100 {
        let t = h.tick().await;
        failed += t.failed;
        if t.reports == 0 && t.sent == 0 && t.failed == 0 {
            break;
        }
    }
    assert!(mails(&h).is_empty());
    assert_eq!(failed, 3, "one failed attempt per recipient");
    let (_, d) = h.get("/api/v1/deliveries").await;
    let queued = report_deliveries(&d);
    assert_eq!(queued.len(), 3, "{queued:?}");
    let mut targets: Vec<&str> = queued
        .iter()
        .map(|x| x["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "boss@example.invalid",
            "city1@example.invalid",
            "deputy@example.invalid"
        ]
    );
    assert!(queued.iter().all(|x| x["state"] == "QUEUED"), "{queued:?}");
    let (_, snaps) = h
        .get("/api/v1/report-snapshots?period=monthly&region=city")
        .await;
    let snap = snaps.as_array().unwrap()[0].clone();
    assert_eq!(snap["label"], "2026-11");
    assert!(queued.iter().all(|x| x["subject_id"] == snap["id"]));
    drop(h);

    // 2. Restart with the right password, past the retry delay: one mail
    // per recipient, with the report.
    let h = start("right-password").await;
    h.clock.set_ms(dec1 + 10 * MIN);
    for _ in 0..5 {
        h.tick().await;
    }
    let got = mails(&h);
    assert_eq!(got.len(), 3, "{got:?}");
    let mut to: Vec<String> = got.iter().map(|m| m.to.join(",")).collect();
    to.sort();
    assert_eq!(
        to,
        [
            "<boss@example.invalid>",
            "<city1@example.invalid>",
            "<deputy@example.invalid>"
        ]
    );
    for m in &got {
        assert_eq!(m.user.as_deref(), Some("monitor"));
        assert!(m.data.contains("multipart/mixed"), "{}", m.data);
        assert!(m.data.contains("text/html"), "{}", m.data);
        let xlsx = mail_attachment(&m.data, "report-city-monthly-2026-11.xlsx")
            .unwrap_or_else(|| panic!("no attachment in {}", m.data));
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
        let mut strings = String::new();
        std::io::Read::read_to_string(
            &mut z.by_name("xl/sharedStrings.xml").unwrap(),
            &mut strings,
        )
        .unwrap();
        assert!(strings.contains("检查覆盖率"), "{strings}");
        assert!(strings.contains("2026-11"), "{strings}");
    }
    let (_, d) = h.get("/api/v1/deliveries").await;
    let sent = report_deliveries(&d);
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|x| x["state"] == "SENT" && x["attempts"] == 2),
        "{sent:?}"
    );
    drop(h);

    // 3. Another restart, later: nothing is frozen or mailed again.
    let h = start("right-password").await;
    h.clock.set_ms(dec1 + 30 * MIN);
    for _ in 0..5 {
        let t = h.tick().await;
        assert_eq!((t.reports, t.sent, t.failed), (0, 0, 0), "{t:?}");
    }
    assert!(mails(&h).is_empty());
    let (_, d) = h.get("/api/v1/deliveries").await;
    assert_eq!(report_deliveries(&d).len(), 3);
}

/// Creates at least one row of every kind the API reads straight from the
/// database (warnings with events, tasks, hazards, photos, audit rows,
/// deliveries, 重点风控 and sanction proposals, report snapshots, registry
/// rows), then checks every list and single row the API sends against the
/// schema of its response in the served OpenAPI document. `h` has
/// `evidence.dir` set and scheduled reports for the city.
pub async fn rows_match_the_schemas(h: &Harness) {
    use super::schema::{assert_valid, response_schema};
    let (s, doc) = h.get("/api/openapi.json").await;
    assert_eq!(s, 200);
    // 重点风控: three alarms of one device confirmed real in three days
    // (a proposal, and a hazard from the recurring alarm).
    for i in 0..3u32 {
        judged_alarm(h, 300 + 2 * i, false).await;
        h.clock.advance_ms(DAY);
    }
    // A real alarm: notified (deliveries), escalated (events), confirmed
    // (a disposal task).
    let (_, a) = h.alarm(&event(400, "raised", "orange")).await;
    let w = a["warning_id"].as_str().unwrap().to_string();
    h.alarm(&event(401, "escalated", "red")).await;
    h.tick().await;
    h.post(
        &format!("/api/v1/warnings/{w}/ack"),
        json!({"person_id": "safety1", "note": "going"}),
    )
    .await;
    let (s, c) = h
        .post(
            &format!("/api/v1/warnings/{w}/confirm"),
            json!({"person_id": "safety1", "false_alarm": false, "reason": "real"}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let task = c["task_id"].as_str().unwrap().to_string();
    // A planned task (no assignee, no warning: nulls).
    let (s, t) = h
        .post(
            "/api/v1/tasks",
            json!({"actor": "grid", "kind": "inspection", "title": "check", "venue_id": "s1",
                   "due_ms": h.clock_now() + DAY}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    // A hazard filed with a deadline, left to run late (reminders, a
    // sanction proposal).
    let (s, c) = h.post("/api/v1/hazards", json!({"actor": "grid", "venue_id": "s1", "category": "fire.exit", "title": "blocked fire exit", "source": "inspection"})).await;
    assert_eq!(s, 201, "{c}");
    let hz = c["id"].as_str().unwrap().to_string();
    let due = h.clock_now() + 2 * DAY;
    let mv = |to: &str, fields: Value| json!({"to": to, "actor": "county1", "reason": format!("to {to}"), "fields": fields});
    let path = format!("/api/v1/hazards/{hz}/transition");
    for (to, fields) in [
        ("JUDGED", json!({"severity": "major"})),
        (
            "FILED",
            json!({"problem": "exit blocked", "measures": "clear it", "standard": "GB 50016",
                   "responsibility": "principal", "acceptance_unit": "county fire brigade",
                   "owner_id": "safety1", "due_ms": due, "funds": "2000 CNY", "plan": "plan v2"}),
        ),
        ("RECTIFYING", json!({})),
    ] {
        let (s, p) = h.post(&path, mv(to, fields)).await;
        assert_eq!(s, 200, "{to}: {p}");
    }
    // Photos on the task and the hazard; the upload's reply is a row too.
    let png = unhex(PNG);
    for (p, op) in [
        (
            format!("/api/v1/tasks/{task}/evidence"),
            "/api/v1/tasks/{id}/evidence",
        ),
        (
            format!("/api/v1/hazards/{hz}/evidence"),
            "/api/v1/hazards/{id}/evidence",
        ),
    ] {
        let (s, e) = upload(h, &p, "safety1", "exit.png", "image/png", &png).await;
        assert_eq!(s, 201, "{e}");
        assert_valid(&doc, response_schema(&doc, "post", op, "201"), &e, &p);
    }
    // Late: the ladder runs to the 15-day node (约谈/通报) and past the
    // month's end (scheduled reports).
    for at in [due, due + 15 * DAY, due + 30 * DAY, T0 + 25 * DAY] {
        h.clock.set_ms(at.max(h.clock_now()));
        for _ in 0..200 {
            let t = h.tick().await;
            if t.reports == 0 && t.reminders == 0 {
                break;
            }
        }
    }

    let t2 = t["id"].as_str().unwrap();
    let reads = [
        ("/api/v1/warnings".to_string(), "/api/v1/warnings"),
        (format!("/api/v1/warnings/{w}"), "/api/v1/warnings/{id}"),
        ("/api/v1/tasks".into(), "/api/v1/tasks"),
        (format!("/api/v1/tasks/{task}"), "/api/v1/tasks/{id}"),
        (format!("/api/v1/tasks/{t2}"), "/api/v1/tasks/{id}"),
        ("/api/v1/hazards".into(), "/api/v1/hazards"),
        (format!("/api/v1/hazards/{hz}"), "/api/v1/hazards/{id}"),
        (
            format!("/api/v1/tasks/{task}/evidence"),
            "/api/v1/tasks/{id}/evidence",
        ),
        (
            format!("/api/v1/hazards/{hz}/evidence"),
            "/api/v1/hazards/{id}/evidence",
        ),
        ("/api/v1/audit".into(), "/api/v1/audit"),
        ("/api/v1/deliveries".into(), "/api/v1/deliveries"),
        (
            "/api/v1/key-risk/proposals".into(),
            "/api/v1/key-risk/proposals",
        ),
        ("/api/v1/sanctions".into(), "/api/v1/sanctions"),
        (
            "/api/v1/report-snapshots".into(),
            "/api/v1/report-snapshots",
        ),
        (
            "/api/v1/registry/regions".into(),
            "/api/v1/registry/{table}",
        ),
        ("/api/v1/registry/venues".into(), "/api/v1/registry/{table}"),
        (
            "/api/v1/registry/devices".into(),
            "/api/v1/registry/{table}",
        ),
        ("/api/v1/registry/people".into(), "/api/v1/registry/{table}"),
        ("/api/v1/registry/duty".into(), "/api/v1/registry/{table}"),
    ];
    for (url, op) in reads {
        let (s, v) = h.get(&url).await;
        assert_eq!(s, 200, "{url}: {v}");
        if let Some(rows) = v.as_array() {
            assert!(!rows.is_empty(), "{url}: no rows to check");
        }
        assert_valid(&doc, response_schema(&doc, "get", op, "200"), &v, &url);
    }
    // The rows carry the kinds of values the schemas allow: nulls (a
    // planned task's assignee) and numbers (an event's value).
    let (_, tv) = h.get(&format!("/api/v1/tasks/{t2}")).await;
    assert!(
        tv["assignee_id"].is_null() && tv["warning_id"].is_null(),
        "{tv}"
    );
    let (_, wv) = h.get(&format!("/api/v1/warnings/{w}")).await;
    assert!(wv["events"][0]["value"].is_f64(), "{wv}");
    assert_eq!(wv["events"].as_array().unwrap().len(), 2);
}

/// Two gateways, each with a token scoped to its own site.
pub const S1_TOKEN: &str = "site-s1-token-0123456789";
pub const S2_TOKEN: &str = "site-s2-token-0123456789";
pub const SCOPED_GATEWAYS: &str = "[[auth.gateways]]\nname = \"gw-01\"\ntoken = \"site-s1-token-0123456789\"\nsites = [\"s1\"]\n\
[[auth.gateways]]\nname = \"gw-02\"\ntoken = \"site-s2-token-0123456789\"\nsites = [\"s2\"]\n";

/// S1 of the security review: one site's token must not be able to take
/// another site's next event id and so silence its alarm, nor read another
/// site's warning by replaying its ids; an id reused within a site for a
/// different event is a 409, counted, never a silent duplicate. Needs a
/// harness started with [`SCOPED_GATEWAYS`].
pub async fn cross_site_event_ids(h: &Harness) {
    let post = |token: &'static str, ev: Value| async move {
        h.raw_alarm(token, serde_json::to_vec(&ev).unwrap()).await
    };
    let s2_event = |n: u32, level: &str| {
        json!({
            "event_id": format!("gw-02/s2/gas-9/gas.lel/{n}"),
            "site": "s2", "device": "gas-9", "kind": "gas", "rule": "gas.lel",
            "level": level, "state": "raised", "value": 60.0, "threshold": 50.0,
            "ts_ms": T0, "gateway": "gw-02"
        })
    };
    let as_s1 = |mut ev: Value| {
        ev["site"] = "s1".into();
        ev["gateway"] = "gw-01".into();
        ev
    };

    // The attack: s1's token posts, under its own site, the id that s2's
    // gateway will use next.
    let (s, a) = post(S1_TOKEN, as_s1(s2_event(1, "blue"))).await;
    assert_eq!(s, 200, "{a}");
    // s2's real red alarm under that id is new to s2 and raises a warning.
    let (s, real) = post(S2_TOKEN, s2_event(1, "red")).await;
    assert_eq!(s, 200, "{real}");
    assert_eq!(real["duplicate"], false, "s2's alarm was swallowed: {real}");
    let w2 = real["warning_id"].as_str().expect("a warning").to_string();
    let (_, w) = h.get(&format!("/api/v1/warnings/{w2}")).await;
    assert_eq!(
        (w["site"].as_str(), w["level"].as_str()),
        (Some("s2"), Some("red")),
        "{w}"
    );

    // Replaying a stored s2 id (another alarm of s2) with s1's token
    // learns nothing of s2.
    let mut other_alarm = s2_event(2, "orange");
    other_alarm["device"] = "gas-7".into();
    other_alarm["event_id"] = "gw-02/s2/gas-7/gas.lel/2".into();
    let (s, b) = post(S2_TOKEN, other_alarm.clone()).await;
    assert_eq!(s, 200, "{b}");
    let (s, replay) = post(S1_TOKEN, as_s1(other_alarm)).await;
    assert_eq!(s, 200, "{replay}");
    assert_eq!(replay["duplicate"], false, "{replay}");
    assert_ne!(
        replay["warning_id"], b["warning_id"],
        "s2's warning leaked: {replay}"
    );
    assert_ne!(replay["warning_id"].as_str(), Some(w2.as_str()));
    // And s1's token still cannot write into s2.
    let (s, _) = post(S1_TOKEN, s2_event(3, "red")).await;
    assert_eq!(s, 403);

    // The same id and site with other content: 409, problem+json, naming
    // the field; nothing changes.
    let (s, p) = post(S2_TOKEN, s2_event(1, "blue")).await;
    assert_eq!(s, 409, "{p}");
    assert_eq!(p["type"], "urn:anquan:problem:event-id-reused", "{p}");
    assert!(p["detail"].as_str().unwrap().contains("level"), "{p}");
    let mut other_device = s2_event(1, "red");
    other_device["device"] = "gas-8".into();
    let (s, p) = post(S2_TOKEN, other_device).await;
    assert_eq!(s, 409, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("device"), "{p}");
    let mut other_value = s2_event(1, "red");
    other_value["value"] = 61.0.into();
    let (s, p) = post(S2_TOKEN, other_value).await;
    assert_eq!(s, 409, "{p}");
    let (_, w) = h.get(&format!("/api/v1/warnings/{w2}")).await;
    assert_eq!(w["level"], "red", "{w}");
    assert_eq!(w["events"].as_array().unwrap().len(), 1, "{w}");

    // A true redelivery (a later receive time only) is still a duplicate
    // with the stored answer.
    let mut again = s2_event(1, "red");
    again["ts_ms"] = (T0 + 5_000).into();
    let (s, d) = post(S2_TOKEN, again).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(
        (d["duplicate"].as_bool(), d["warning_id"].as_str()),
        (Some(true), Some(w2.as_str()))
    );

    // Two different events under one new id at once (one batch or two):
    // exactly one is stored, the other is refused.
    let (a, b) = tokio::join!(
        post(S2_TOKEN, s2_event(7, "red")),
        post(S2_TOKEN, s2_event(7, "yellow"))
    );
    let mut codes = [a.0, b.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409], "{a:?} {b:?}");

    // Every refusal counted.
    let reused = metric(
        h,
        "anquan_monitor_alarms_rejected_total{reason=\"event_id_reused\"}",
    )
    .await
    .unwrap_or(0.0);
    assert!(reused >= 4.0, "event_id_reused = {reused}");
}

/// What people type is checked before it is stored: no deadline in the
/// past, titles that say something, no control characters anywhere in a
/// JSON body, references that exist, bounded accident counts that never
/// wrap in a report.
pub async fn input_rules(h: &Harness) {
    let now = h.clock_now();
    let task = |due: i64, title: &str| {
        json!({"actor": "grid", "kind": "inspection", "title": title, "venue_id": "s1",
               "assignee_id": "safety1", "due_ms": due})
    };
    let refused = |s: u16, p: &Value, key: &str| {
        assert_eq!(s, 422, "{p}");
        assert!(p["detail"].as_str().unwrap().starts_with(key), "{key}: {p}");
    };
    let (s, p) = h.post("/api/v1/tasks", task(now - 1, "检查消防通道")).await;
    refused(s, &p, "due_ms");
    let (s, p) = h.post("/api/v1/tasks", task(now, "检查消防通道")).await;
    refused(s, &p, "due_ms");
    let (s, p) = h.post("/api/v1/tasks", task(now + DAY, "   ")).await;
    refused(s, &p, "title");
    let (s, p) = h.post("/api/v1/tasks", task(now + DAY, "a\u{0}b")).await;
    refused(s, &p, "title");
    let mut t = task(now + DAY, "检查消防通道");
    t["assignee_id"] = "nobody".into();
    let (s, p) = h.post("/api/v1/tasks", t).await;
    refused(s, &p, "assignee_id");
    let (s, p) = h
        .post("/api/v1/tasks", task(now + DAY, "  检查消防通道 "))
        .await;
    assert_eq!(s, 201, "{p}");
    let (_, t) = h
        .get(&format!("/api/v1/tasks/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(t["title"], "检查消防通道", "stored trimmed: {t}");
    // A NUL anywhere in a JSON body, even in a field that is ignored.
    let (s, p) = h
        .post(
            "/api/v1/hazards",
            json!({"actor": "grid", "venue_id": "s1", "category": "fire\u{0}exit",
               "title": "堵塞", "source": "inspection"}),
        )
        .await;
    refused(s, &p, "category");

    let accident = |region: &str, venue: &str, at: i64, deaths: i64| json!({"region_id": region, "venue_id": venue, "at_ms": at, "deaths": deaths, "note": "n"});
    let (s, p) = h
        .post(
            "/api/v1/accidents",
            accident("town", "s1", now - DAY, 10_001),
        )
        .await;
    refused(s, &p, "deaths");
    let (s, p) = h
        .post("/api/v1/accidents", accident("town", "s1", now - DAY, -1))
        .await;
    refused(s, &p, "deaths");
    let (s, p) = h
        .post("/api/v1/accidents", accident("town", "s1", now + DAY, 1))
        .await;
    refused(s, &p, "at_ms");
    let (s, p) = h
        .post(
            "/api/v1/accidents",
            accident("atlantis", "s1", now - DAY, 1),
        )
        .await;
    refused(s, &p, "region_id");
    let (s, p) = h
        .post(
            "/api/v1/accidents",
            accident("town", "nowhere", now - DAY, 1),
        )
        .await;
    refused(s, &p, "venue_id");
    // The largest counts add up without wrapping.
    for _ in 0..3 {
        let (s, p) = h
            .post(
                "/api/v1/accidents",
                accident("town", "s1", now - DAY, 10_000),
            )
            .await;
        assert_eq!(s, 201, "{p}");
    }
    let (s, r) = h
        .get("/api/v1/reports/monthly?region=city&month=2026-11")
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["deaths"][0], 30_000, "{r}");
}

/// Posts a heartbeat of `gateway` with `token`.
async fn heartbeat(h: &Harness, token: &str, gateway: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(format!("{}/api/v1/gateways/{gateway}/heartbeat", h.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Site liveness (issue 18): a gateway that misses two heartbeats makes
/// its sites blind: an orange `site.gateway_offline` warning at the venue,
/// `no_data` on its status, never green (grey once the warning is closed
/// while the gateway is still silent); the next heartbeat clears it. A
/// heartbeat for another gateway, a site outside the token's scope, bad
/// values or no token are refused and counted. `h` has
/// [`SCOPED_GATEWAYS`].
pub async fn gateway_liveness(h: &Harness) {
    let beat = json!({"sites": ["s1"], "interval_s": 30, "broker_connected": true,
                      "buffered": 12, "alarms_queued": 0, "last_frame_ms": T0});
    let (s, b) = heartbeat(h, S1_TOKEN, "gw-01", beat.clone()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"recovered": false, "sites": 1}));
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(
        (st["color"].as_str(), st["no_data"].as_bool()),
        (Some("green"), Some(false))
    );

    // Refused: another gateway's name, another site, bad values, no token.
    let (s, p) = heartbeat(h, S1_TOKEN, "gw-02", beat.clone()).await;
    assert_eq!(s, 403, "{p}");
    let mut other_site = beat.clone();
    other_site["sites"] = json!(["s1", "s2"]);
    let (s, p) = heartbeat(h, S1_TOKEN, "gw-01", other_site).await;
    assert_eq!(s, 403, "{p}");
    let mut bad = beat.clone();
    bad["interval_s"] = json!(1);
    let (s, p) = heartbeat(h, S1_TOKEN, "gw-01", bad).await;
    assert_eq!(s, 422, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("interval_s"), "{p}");
    let (s, _) = heartbeat(h, "", "gw-01", beat.clone()).await;
    assert_eq!(s, 401);
    assert_eq!(
        metric(h, r#"anquan_monitor_heartbeats_total{result="refused"}"#).await,
        Some(3.0)
    );
    assert_eq!(
        metric(h, r#"anquan_monitor_heartbeats_total{result="invalid"}"#).await,
        Some(1.0)
    );

    // One interval late: still heard.
    h.clock.advance_ms(45_000);
    assert_eq!(h.tick().await.silent_gateways, 0);
    // Two intervals without a heartbeat: silent, once (a second tick and
    // a second replica's tick find nothing more to do).
    h.clock.advance_ms(16_000);
    assert_eq!(h.tick().await.silent_gateways, 1);
    assert_eq!(h.tick().await.silent_gateways, 0);
    let (_, ws) = h.get("/api/v1/warnings").await;
    let blind: Vec<&Value> = ws
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["rule"] == "site.gateway_offline")
        .collect();
    assert_eq!(blind.len(), 1, "{ws}");
    let w = blind[0]["id"].as_str().unwrap().to_string();
    assert_eq!(blind[0]["venue_id"], "s1");
    assert_eq!(blind[0]["level"], "orange");
    assert_eq!(blind[0]["device"], "gw-01");
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(
        (st["color"].as_str(), st["no_data"].as_bool()),
        (Some("orange"), Some(true))
    );
    let (_, st2) = h.get("/api/v1/venues/s2/status").await;
    assert_eq!(st2["no_data"], false, "another gateway's site is not blind");
    // The public code: the unjudged offline warning does not colour it,
    // the blindness does: grey with its reason, never green.
    let (s, page) = h.get_text("/public/venues/s1").await;
    assert_eq!(s, 200);
    assert!(page.contains(r#"id="code" data-color="grey""#), "{page}");
    assert!(page.contains(r#"data-source="no_data""#), "{page}");
    let (_, page2) = h.get_text("/public/venues/s2").await;
    assert!(!page2.contains(r#"data-source="no_data""#), "{page2}");
    // The venue's people were called about it.
    let (_, ladder) = h.get(&format!("/api/v1/warnings/{w}/ladder")).await;
    assert!(!ladder.as_array().unwrap().is_empty(), "{ladder}");

    // Heard again: cleared at the source, status back.
    let (s, b) = heartbeat(h, S1_TOKEN, "gw-01", beat.clone()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["recovered"], true);
    let (_, wj) = h.get(&format!("/api/v1/warnings/{w}")).await;
    assert_eq!(wj["clearable"], 1, "{wj}");
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(st["no_data"], false);
    let (_, page) = h.get_text("/public/venues/s1").await;
    assert!(!page.contains(r#"data-source="no_data""#), "{page}");
    assert!(!page.contains(r#"data-color="grey""#), "{page}");

    // Silent again; the warning is judged (a planned outage) and closed
    // while the gateway is still silent: grey, not green.
    h.clock.advance_ms(61_000);
    assert_eq!(h.tick().await.silent_gateways, 1);
    let (_, ws) = h.get("/api/v1/warnings").await;
    let w = ws
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["rule"] == "site.gateway_offline" && w["state"] != "RESOLVED")
        .and_then(|w| w["id"].as_str())
        .unwrap()
        .to_string();
    let (s, p) = ack_then_confirm(h, &w, true, "planned power cut").await;
    assert_eq!(s, 200, "{p}");
    let (_, st) = h.get("/api/v1/venues/s1/status").await;
    assert_eq!(
        (st["color"].as_str(), st["no_data"].as_bool()),
        (Some("grey"), Some(true))
    );
    assert_eq!(
        metric(h, "anquan_monitor_gateways_silent_total").await,
        Some(2.0)
    );
}

/// Maintenance windows: bad windows refused naming the field; inside a
/// device's window its alarm opens a warning that is shown and held (no
/// call, no deadline) while another device of the venue calls as usual;
/// ending the window early starts the held warning's calls; an alarm
/// raised and cleared inside a venue's window calls nobody, then or after.
pub async fn maintenance_windows(h: &Harness) {
    const HOUR: i64 = 3_600_000;
    let now = h.app.now_ms();
    for (body, status, names) in [
        (
            json!({"venue_id": "s1", "ends_ms": now - 1, "reason": "calibration"}),
            422,
            "ends_ms",
        ),
        (
            json!({"venue_id": "s1", "starts_ms": now - 2 * HOUR, "ends_ms": now + HOUR, "reason": "calibration"}),
            422,
            "starts_ms",
        ),
        (
            json!({"venue_id": "s1", "ends_ms": now + 8 * 24 * HOUR, "reason": "calibration"}),
            422,
            "7 days",
        ),
        (
            json!({"venue_id": "s1", "starts_ms": now + 100 * 24 * HOUR, "ends_ms": now + 101 * 24 * HOUR, "reason": "x"}),
            422,
            "90 days",
        ),
        (
            json!({"venue_id": "s2", "device_id": "gas-0001", "ends_ms": now + HOUR, "reason": "calibration"}),
            422,
            "device_id",
        ),
        (
            json!({"venue_id": "nowhere", "ends_ms": now + HOUR, "reason": "calibration"}),
            404,
            "nowhere",
        ),
        (
            json!({"venue_id": "s1", "ends_ms": now + HOUR, "reason": " "}),
            422,
            "reason",
        ),
        (
            json!({"venue_id": "s1", "ends_ms": now + HOUR, "reason": "cal\u{0}ibration"}),
            422,
            "reason",
        ),
    ] {
        let (s, p) = h.post("/api/v1/maintenance", body.clone()).await;
        assert_eq!(s, status, "{body} → {p}");
        assert!(
            p["detail"].as_str().unwrap_or_default().contains(names),
            "{body} → {p}"
        );
    }
    let (s, _) = h.get("/api/v1/maintenance?all=maybe").await;
    assert_eq!(s, 422);

    // A device under calibration for two hours.
    let (s, win) = h
        .post(
            "/api/v1/maintenance",
            json!({"venue_id": "s1", "device_id": "gas-0001", "ends_ms": now + 2 * HOUR,
                   "reason": "calibration with test gas"}),
        )
        .await;
    assert_eq!(s, 201, "{win}");
    let win_id = win["id"].as_str().unwrap().to_string();
    assert_eq!(win["starts_ms"], now);
    assert_eq!(win["created_by"], "operator");
    // Overlapping it (the device, or its whole venue): refused, naming
    // the window; no end: refused, naming the key.
    for body in [
        json!({"venue_id": "s1", "device_id": "gas-0001", "starts_ms": now + HOUR, "ends_ms": now + 3 * HOUR, "reason": "again"}),
        json!({"venue_id": "s1", "ends_ms": now + HOUR, "reason": "whole venue"}),
    ] {
        let (s, p) = h.post("/api/v1/maintenance", body.clone()).await;
        assert_eq!(s, 409, "{body} → {p}");
        assert!(p["detail"].as_str().unwrap().contains(&win_id), "{p}");
    }
    let (s, p) = h
        .post(
            "/api/v1/maintenance",
            json!({"venue_id": "s1", "reason": "open-ended"}),
        )
        .await;
    assert!(s == 400 || s == 422, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("ends_ms"), "{p}");

    let (s, _) = h.alarm(&event(1, "raised", "red")).await;
    assert_eq!(s, 200);
    let (s, _) = h
        .alarm(&event_on(2, "gas-0002", "gas.lel", "raised", "red"))
        .await;
    assert_eq!(s, 200);
    h.tick().await;
    let (_, ws) = h.get("/api/v1/warnings").await;
    let id_of = |device: &str| {
        ws.as_array()
            .unwrap()
            .iter()
            .find(|w| w["device"] == device)
            .unwrap_or_else(|| panic!("no warning of {device}: {ws}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (held, other) = (id_of("gas-0001"), id_of("gas-0002"));
    // Shown, with the window that holds it; nobody called about it.
    let (_, list) = h.get("/api/v1/maintenance").await;
    assert_eq!(list[0]["id"], win_id.as_str(), "{list}");
    assert_eq!(list[0]["held"], json!([held]), "{list}");
    let (_, w) = h.get(&format!("/api/v1/warnings/{held}")).await;
    assert_eq!(
        (w["state"].as_str(), w["ack_due_ms"].as_i64()),
        (Some("RAISED"), None),
        "{w}"
    );
    let (_, ladder) = h.get(&format!("/api/v1/warnings/{held}/ladder")).await;
    assert_eq!(ladder, json!([]), "held: {ladder}");
    let called = |hooks: Vec<Hook>, warning: &str| {
        hooks
            .iter()
            .filter(|k| k.body["subject_id"] == warning)
            .count()
    };
    assert_eq!(called(h.hooks_for("safety1"), &held), 0);
    // The window is the device's, not the venue's: its neighbour calls.
    assert!(
        called(h.hooks_for("safety1"), &other) > 0,
        "not called about {other}"
    );
    assert_eq!(
        metric(h, "anquan_monitor_warnings_held_total").await,
        Some(1.0)
    );
    // An hour on, still held: the deadline watch has nothing to do.
    h.clock.advance_ms(HOUR);
    h.tick().await;
    assert_eq!(called(h.hooks_for("safety1"), &held), 0);

    // Ended early with the alarm still active: the calls start.
    let (s, ended) = h
        .post(
            &format!("/api/v1/maintenance/{win_id}/end"),
            json!({"reason": "detector back in service"}),
        )
        .await;
    assert_eq!(s, 200, "{ended}");
    assert_eq!(ended["ends_ms"], now + HOUR);
    assert_eq!(ended["ended_by"], "operator");
    let (s, p) = h
        .post(
            &format!("/api/v1/maintenance/{win_id}/end"),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(s, 409, "{p}");
    let t = h.tick().await;
    assert_eq!(t.released, 1);
    assert_eq!(h.tick().await.released, 0, "released once");
    h.tick().await;
    assert!(
        called(h.hooks_for("safety1"), &held) > 0,
        "the held warning calls after the window"
    );
    let (_, w) = h.get(&format!("/api/v1/warnings/{held}")).await;
    assert!(w["ack_due_ms"].as_i64().is_some(), "{w}");
    let (_, list) = h.get("/api/v1/maintenance").await;
    assert_eq!(list, json!([]), "{list}");
    let (_, all) = h.get("/api/v1/maintenance?all=true").await;
    assert_eq!(all[0]["end_reason"], "detector back in service", "{all}");
    let (_, trail) = h.get(&format!("/api/v1/audit?entity_id={win_id}")).await;
    let states: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["to_state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"SET") && states.contains(&"ENDED"),
        "{trail}"
    );

    // The whole venue, a power shutdown: an alarm raised and cleared
    // inside it calls nobody, then or after the window.
    let now = h.app.now_ms();
    let (s, win) = h
        .post(
            "/api/v1/maintenance",
            json!({"venue_id": "s1", "ends_ms": now + HOUR, "reason": "planned power shutdown"}),
        )
        .await;
    assert_eq!(s, 201, "{win}");
    h.alarm(&event_on(3, "gas-0003", "gas.lel", "raised", "yellow"))
        .await;
    h.alarm(&event_on(4, "gas-0003", "gas.lel", "cleared", "yellow"))
        .await;
    h.tick().await;
    let (_, ws) = h.get("/api/v1/warnings").await;
    let quiet = ws
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["device"] == "gas-0003")
        .unwrap_or_else(|| panic!("{ws}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.clock.advance_ms(HOUR);
    assert_eq!(
        h.tick().await.released,
        0,
        "cleared meanwhile: nothing to call"
    );
    h.tick().await;
    for who in ["safety1", "safety2", "grid"] {
        assert_eq!(
            called(h.hooks_for(who), &quiet),
            0,
            "{who} called about {quiet}"
        );
    }
}

/// Alarm storms (issue 22): a site losing power sends its devices' offline
/// alarms together → one group warning, one call per person; members that
/// recover leave it, one that goes red breaks out and is called at once,
/// and when the last recovers the group clears. Red alarms are never
/// grouped or held.
pub async fn alarm_storms(h: &Harness) {
    const SEC: i64 = 1000;
    let offline = |n: u32, dev: &str, state: &str, level: &str| {
        let mut e = event_on(n, dev, "gas.offline", state, level);
        e["value"] = json!(0.0);
        e["threshold"] = json!(0.0);
        e
    };
    let calls_about = |id: &str| {
        h.hooks
            .lock()
            .unwrap()
            .iter()
            .filter(|k| k.body["subject_id"] == id && k.body["purpose"] == "call")
            .count()
    };
    // Two devices go offline: each opens its own warning, whose first call
    // waits while more of the same cause may come.
    let (s, a) = h.alarm(&offline(1, "gas-0101", "raised", "yellow")).await;
    assert_eq!(s, 200, "{a}");
    h.clock.advance_ms(2 * SEC);
    let (_, b) = h.alarm(&offline(2, "gas-0102", "raised", "yellow")).await;
    let (first, second) = (
        a["warning_id"].as_str().unwrap().to_string(),
        b["warning_id"].as_str().unwrap().to_string(),
    );
    assert_ne!(first, second);
    h.tick().await;
    h.tick().await;
    assert_eq!(
        calls_about(&first) + calls_about(&second),
        0,
        "held while a group may form"
    );
    // The third within the window: one group warning takes all three; the
    // two held ones are folded into it, nobody was called about them.
    h.clock.advance_ms(2 * SEC);
    let (_, c) = h.alarm(&offline(3, "gas-0103", "raised", "yellow")).await;
    let group = c["warning_id"].as_str().unwrap().to_string();
    let (_, g) = h.get(&format!("/api/v1/warnings/{group}")).await;
    assert_eq!(
        (
            g["kind"].as_str(),
            g["rule"].as_str(),
            g["value"].as_f64(),
            g["level"].as_str()
        ),
        (
            Some("group"),
            Some("group.site_offline"),
            Some(3.0),
            Some("yellow")
        ),
        "{g}"
    );
    for w in [&first, &second] {
        let (_, x) = h.get(&format!("/api/v1/warnings/{w}")).await;
        assert_eq!(x["state"], "RESOLVED", "{x}");
    }
    assert_eq!(
        metric(h, "anquan_monitor_groups_formed_total").await,
        Some(1.0)
    );
    // 197 more of the same cause join it: no warning, no call of their own.
    for n in 4..200u32 {
        let (s, r) = h
            .alarm(&offline(
                n,
                &format!("gas-{:04}", 100 + n),
                "raised",
                "yellow",
            ))
            .await;
        assert_eq!(
            (s, r["warning_id"].as_str()),
            (200, Some(group.as_str())),
            "{r}"
        );
    }
    h.tick().await;
    h.tick().await;
    let (_, g) = h.get(&format!("/api/v1/warnings/{group}")).await;
    assert_eq!(g["value"], 199.0, "{g}");
    let (_, ws) = h.get("/api/v1/warnings?state=RAISED").await;
    let (_, wn) = h.get("/api/v1/warnings?state=NOTIFIED").await;
    let open: Vec<&Value> = ws
        .as_array()
        .unwrap()
        .iter()
        .chain(wn.as_array().unwrap())
        .collect();
    assert_eq!(open.len(), 1, "one warning for one cause: {open:?}");
    // Each person on duty got one call for it, not 199.
    for who in ["safety1", "safety2"] {
        let theirs = h
            .hooks_for(who)
            .iter()
            .filter(|k| k.body["purpose"] == "call")
            .count();
        assert!(theirs <= 1, "{who} got {theirs} calls");
    }
    assert!(calls_about(&group) >= 1, "the group is called");
    let (_, members) = h.get(&format!("/api/v1/warnings/{group}/members")).await;
    assert_eq!(members.as_array().map(Vec::len), Some(199), "{members}");

    // A member recovers: it leaves; one goes red: it breaks out, its own
    // warning called at once (no hold for red).
    h.alarm(&offline(1001, "gas-0104", "cleared", "yellow"))
        .await;
    let (_, red) = h
        .alarm(&offline(1002, "gas-0105", "escalated", "red"))
        .await;
    let red = red["warning_id"].as_str().unwrap().to_string();
    assert_ne!(red, group);
    h.tick().await;
    h.tick().await;
    assert!(
        calls_about(&red) >= 1,
        "the red break-out is called at once"
    );
    let (_, g) = h.get(&format!("/api/v1/warnings/{group}")).await;
    assert_eq!(g["value"], 197.0, "{g}");
    let (_, members) = h.get(&format!("/api/v1/warnings/{group}/members")).await;
    let left: Vec<(&str, &str)> = members
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["left_ms"].is_null())
        .map(|m| {
            (
                m["device"].as_str().unwrap(),
                m["left_why"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        left,
        vec![("gas-0104", "recovered"), ("gas-0105", "broke out")]
    );
    // Power back: every member recovers; the group clears at the source.
    for n in 1..200u32 {
        let dev = format!("gas-{:04}", 100 + n);
        if dev == "gas-0104" || dev == "gas-0105" {
            continue;
        }
        h.alarm(&offline(2000 + n, &dev, "cleared", "yellow")).await;
    }
    let (_, g) = h.get(&format!("/api/v1/warnings/{group}")).await;
    assert_eq!(
        (g["clearable"].as_i64(), g["value"].as_f64()),
        (Some(1), Some(0.0)),
        "{g}"
    );

    // Red alarms of one rule on three devices at once: never grouped, each
    // its own warning, each called at once.
    let mut reds = Vec::new();
    for n in 0..3u32 {
        let (_, r) = h
            .alarm(&event_on(
                3000 + n,
                &format!("gas-09{n:02}"),
                "gas.lel",
                "raised",
                "red",
            ))
            .await;
        reds.push(r["warning_id"].as_str().unwrap().to_string());
    }
    h.tick().await;
    h.tick().await;
    reds.sort();
    reds.dedup();
    assert_eq!(reds.len(), 3);
    for r in &reds {
        assert!(calls_about(r) >= 1, "{r} not called");
    }
    assert_eq!(
        metric(h, "anquan_monitor_groups_formed_total").await,
        Some(1.0)
    );
    // The report counts the storm once, with its members: the group, the
    // red break-out and the three reds are five alarms; the two warnings
    // folded into the group when it formed are not counted again.
    let (st, r) = h
        .get("/api/v1/reports/daily?region=city&date=2026-11-10")
        .await;
    assert_eq!(st, 200, "{r}");
    let storms = r["storms"].as_array().unwrap();
    assert_eq!(storms.len(), 1, "{r}");
    assert_eq!(storms[0]["warning_id"], group.as_str());
    assert_eq!(storms[0]["members"], 199, "{r}");
    assert_eq!(storms[0]["devices"].as_array().map(Vec::len), Some(50));
    assert_eq!(r["alarms"], 5, "{r}");
    let (_, csv) = h
        .get_text("/api/v1/reports/daily?region=city&date=2026-11-10&format=csv")
        .await;
    assert!(
        csv.contains("\"alarm storms (each one warning above)\",\"1 (199 alarms)\""),
        "{csv}"
    );
    assert!(csv.contains("group.site_offline"), "{csv}");
}
