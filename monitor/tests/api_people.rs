//! Per-person authentication on `/api/v1` (issue 16 item 3): a person's
//! session or personal token acts as that person, under their role and
//! region; an operator token is a machine that names the person; the
//! actor of every write comes from the credential.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::OP;
use common::web::WebHarness;
use serde_json::{Value, json};

struct Call<'a> {
    h: &'a WebHarness,
}

enum Cred<'a> {
    Bearer(&'a str),
    Session {
        cookie: &'a str,
        csrf: Option<&'a str>,
    },
    None,
}

impl Call<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        cred: &Cred<'_>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .h
            .http
            .request(method, format!("{}{path}", self.h.base));
        match cred {
            Cred::Bearer(t) => r = r.bearer_auth(t),
            Cred::Session { cookie, csrf } => {
                r = r.header("cookie", format!("anquan_session={cookie}"));
                if let Some(c) = csrf {
                    r = r.header("x-csrf-token", *c);
                }
            }
            Cred::None => {}
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let s = resp.status().as_u16();
        (s, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, cred: &Cred<'_>) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, cred, None).await
    }

    async fn post(&self, path: &str, cred: &Cred<'_>, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, cred, Some(body))
            .await
    }
}

/// Issues a personal token for `user` through a signed-in session.
async fn token_of(h: &WebHarness, user: &str) -> String {
    let (cookie, csrf) = h.sign_in(user).await;
    let c = Call { h };
    let (s, v) = c
        .post(
            "/api/v1/me/tokens",
            &Cred::Session {
                cookie: &cookie,
                csrf: Some(&csrf),
            },
            json!({"label": format!("{user}'s script"), "days": 30}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let t = v["token"].as_str().unwrap().to_string();
    assert!(t.starts_with("aqp_") && t.len() == 68, "{t}");
    t
}

fn audit_actors(rows: &Value, to: &str) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["to_state"] == to)
        .map(|r| r["actor"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn sessions_and_personal_tokens_act_as_their_person() {
    let h = WebHarness::start().await;
    let c = Call { h: &h };
    let (cookie, csrf) = h.sign_in("grid").await;
    let session = Cred::Session {
        cookie: &cookie,
        csrf: Some(&csrf),
    };

    // The README promised it: a signed-in session works on /api/v1.
    let (s, me) = c.get("/api/v1/me", &session).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["credential"], "session");
    assert_eq!(me["person_id"], "grid");
    assert_eq!(me["role"], "grid");

    // A write on a session needs the CSRF token (a cookie rides along with
    // any cross-site form).
    let no_csrf = Cred::Session {
        cookie: &cookie,
        csrf: None,
    };
    let (s, v) = c
        .post("/api/v1/me/tokens", &no_csrf, json!({"label": "x"}))
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("CSRF"), "{v}");

    // A personal token: shown once, listed without its secret.
    let token = token_of(&h, "grid").await;
    let tok = Cred::Bearer(&token);
    let (s, me) = c.get("/api/v1/me", &tok).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["credential"], "personal_token");
    assert_eq!(me["person_id"], "grid");
    let (s, list) = c.get("/api/v1/me/tokens", &tok).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(!list.to_string().contains(&token[4..]), "{list}");
    // A token cannot mint another (a leaked one must not outlive its
    // revocation).
    let (s, _) = c
        .post("/api/v1/me/tokens", &tok, json!({"label": "child"}))
        .await;
    assert_eq!(s, 403);

    // The actor comes from the credential: the body need not name anyone,
    // and naming someone else is refused.
    let w = h.alarm("s1", "gas-0001", 1, "red").await;
    let (s, v) = c
        .post(
            &format!("/api/v1/warnings/{w}/ack"),
            &tok,
            json!({"person_id": "city1", "note": "not me"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("person_id"), "{v}");
    let (s, v) = c
        .post(
            &format!("/api/v1/warnings/{w}/ack"),
            &tok,
            json!({"note": "on my way"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let trail = h.api_get(&format!("/api/v1/audit?entity_id={w}")).await;
    assert_eq!(
        audit_actors(&trail, "ACKED"),
        vec!["person:grid"],
        "{trail}"
    );

    // A hazard recorded on the session: its creator is the grid officer.
    let (s, v) = c
        .post(
            "/api/v1/hazards",
            &session,
            json!({"venue_id": "s1", "category": "fire", "title": "blocked exit",
                   "source": "inspection"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let hz = v["id"].as_str().unwrap().to_string();
    let trail = h.api_get(&format!("/api/v1/audit?entity_id={hz}")).await;
    assert_eq!(
        audit_actors(&trail, "DETECTED"),
        vec!["person:grid"],
        "{trail}"
    );

    // An operator token is a machine: it names the person it acts for.
    let (s, v) = c
        .post(
            &format!("/api/v1/warnings/{w}/confirm"),
            &Cred::Bearer(OP),
            json!({"false_alarm": true, "reason": "test gas"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().starts_with("person_id:"),
        "{v}"
    );

    // Revoked: 401 at once; counted.
    let id = list[0]["id"].as_str().unwrap().to_string();
    let (s, _) = c
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/me/tokens/{id}"),
            &tok,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = c.get("/api/v1/warnings", &tok).await;
    assert_eq!(s, 401, "{v}");
    // Expired: a fresh token stops working after its days.
    let token = token_of(&h, "grid").await;
    assert_eq!(c.get("/api/v1/me", &Cred::Bearer(&token)).await.0, 200);
    h.clock.advance_ms(31 * 86_400_000);
    assert_eq!(c.get("/api/v1/me", &Cred::Bearer(&token)).await.0, 401);
    // Nothing at all, and a forged token: 401 too.
    assert_eq!(c.get("/api/v1/me", &Cred::None).await.0, 401);
    let forged = format!("aqp_{}", "0".repeat(64));
    assert_eq!(c.get("/api/v1/me", &Cred::Bearer(&forged)).await.0, 401);
    let metrics = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "anquan_monitor_api_refused_total{credential=\"personal_token\"} 3",
        "anquan_monitor_api_refused_total{credential=\"none\"} 1",
        "anquan_monitor_api_refused_total{credential=\"csrf\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
}

#[tokio::test]
async fn roles_and_regions_bind_personal_credentials() {
    let h = WebHarness::start().await;
    let c = Call { h: &h };
    let ent = token_of(&h, "ent").await;
    let grid = token_of(&h, "grid").await;
    let city = token_of(&h, "city").await;
    let admin = token_of(&h, "admin").await;

    // The enterprise does not assign work; the grid officer does.
    let task = json!({"kind": "inspection", "title": "check the kitchen", "venue_id": "s1",
                      "assignee_id": "safety1", "due_ms": common::T0 + 86_400_000});
    let (s, v) = c
        .post("/api/v1/tasks", &Cred::Bearer(&ent), task.clone())
        .await;
    assert_eq!(s, 403, "{v}");
    // A new task or hazard must lie in the caller's region by both its
    // venue and the region it names: the town's grid officer can neither
    // file one about a town venue into another town (the row is stored
    // under the region given) nor one about the other town's venue.
    let mut elsewhere = task.clone();
    elsewhere["region_id"] = json!("town2");
    let mut far_venue = task.clone();
    far_venue["venue_id"] = json!("s7");
    far_venue["region_id"] = json!("town");
    for body in [elsewhere, far_venue] {
        let (s, v) = c
            .post("/api/v1/tasks", &Cred::Bearer(&grid), body.clone())
            .await;
        assert_eq!(s, 403, "{body} → {v}");
    }
    let (s, v) = c
        .post(
            "/api/v1/hazards",
            &Cred::Bearer(&grid),
            json!({"venue_id": "s1", "region_id": "town2", "category": "fire",
                   "title": "blocked exit", "source": "inspection"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = c.post("/api/v1/tasks", &Cred::Bearer(&grid), task).await;
    assert_eq!(s, 201, "{v}");
    let t = v["id"].as_str().unwrap().to_string();
    // The assignee works it; the grid officer may not start someone
    // else's task.
    let start = json!({"to": "IN_PROGRESS", "reason": "starting"});
    let (s, v) = c
        .post(
            &format!("/api/v1/tasks/{t}/transition"),
            &Cred::Bearer(&grid),
            start.clone(),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = c
        .post(
            &format!("/api/v1/tasks/{t}/transition"),
            &Cred::Bearer(&ent),
            start,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // The enterprise lists its own tasks only.
    let (s, v) = c.get("/api/v1/tasks", &Cred::Bearer(&ent)).await;
    assert_eq!(s, 200);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|t| t["assignee_id"] == "safety1"),
        "{v}"
    );

    // A warning in another town is outside the town's grid officer's
    // region: not listed, not readable, not acknowledgeable; the city sees it.
    let far = h.alarm("s7", "gas-s7", 1, "red").await;
    let near = h.alarm("s1", "gas-0001", 2, "red").await;
    let (_, v) = c.get("/api/v1/warnings", &Cred::Bearer(&grid)).await;
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&near.as_str()) && !ids.contains(&far.as_str()),
        "{v}"
    );
    assert_eq!(
        c.get(&format!("/api/v1/warnings/{far}"), &Cred::Bearer(&grid))
            .await
            .0,
        403
    );
    assert_eq!(
        c.post(
            &format!("/api/v1/warnings/{far}/ack"),
            &Cred::Bearer(&grid),
            json!({})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        c.get(&format!("/api/v1/warnings/{far}"), &Cred::Bearer(&city))
            .await
            .0,
        200
    );

    // Records with personal data (the audit trail, deliveries with phone
    // numbers, the registry's people) are for the admin and the
    // supervising levels; only the admin writes the registry, audited
    // under its account.
    assert_eq!(c.get("/api/v1/audit", &Cred::Bearer(&grid)).await.0, 403);
    assert_eq!(
        c.get("/api/v1/deliveries", &Cred::Bearer(&ent)).await.0,
        403
    );
    assert_eq!(c.get("/api/v1/audit", &Cred::Bearer(&city)).await.0, 200);
    let holiday = json!({"date": "2026-12-31", "name": "year end"});
    let (s, v) = c
        .send(
            reqwest::Method::PUT,
            "/api/v1/registry/holidays",
            &Cred::Bearer(&city),
            Some(holiday.clone()),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = c
        .send(
            reqwest::Method::PUT,
            "/api/v1/registry/holidays",
            &Cred::Bearer(&admin),
            Some(holiday),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let trail = h
        .api_get("/api/v1/audit?entity_id=holidays/2026-12-31")
        .await;
    assert_eq!(audit_actors(&trail, "PUT"), vec!["user:admin"], "{trail}");
    // The admin runs the system and takes no part in the workflow.
    assert_eq!(
        c.post(
            &format!("/api/v1/warnings/{near}/ack"),
            &Cred::Bearer(&admin),
            json!({})
        )
        .await
        .0,
        403
    );
    // 挂牌督办 is the county's or the city's.
    let hz = h.new_hazard("s1", "fire").await;
    let listing = json!({"reason": "third time this year"});
    assert_eq!(
        c.post(
            &format!("/api/v1/hazards/{hz}/list"),
            &Cred::Bearer(&grid),
            listing.clone()
        )
        .await
        .0,
        403
    );
    let (s, v) = c
        .post(
            &format!("/api/v1/hazards/{hz}/list"),
            &Cred::Bearer(&city),
            listing,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["listed_level"], "city");
}

#[test]
fn issue_token_from_the_command_line() {
    // The example configuration, its SQLite file in a temp dir (a relative
    // path resolves against the config file).
    let dir = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("monitor.example.toml");
    let cfg = dir.path().join("monitor.toml");
    std::fs::copy(&example, &cfg).unwrap();
    let bin = env!("CARGO_BIN_EXE_anquan-monitor");
    let run = |user: &str, days: &str| {
        std::process::Command::new(bin)
            .args(["issue-token", "--config"])
            .arg(&cfg)
            .args(["--user", user, "--label", "tablet", "--days", days])
            .output()
            .unwrap()
    };
    let out = run("county-duty", "7");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(token.trim().starts_with("aqp_"), "{token}");
    // Unknown account, out-of-range days: refused, naming what is wrong.
    let out = run("nobody", "7");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nobody"),
        "{out:?}"
    );
    let out = run("county-duty", "400");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("days"),
        "{out:?}"
    );
}

#[tokio::test]
async fn unknown_routes_methods_and_filters_answer_problem_json() {
    let h = WebHarness::start().await;
    let op = Cred::Bearer(OP);
    for (method, path, status) in [
        (reqwest::Method::GET, "/api/v1/nothing-here", 404),
        (reqwest::Method::GET, "/no/such/page", 404),
        (reqwest::Method::DELETE, "/api/v1/warnings", 405),
        (reqwest::Method::PUT, "/api/v1/alarms", 405),
        (reqwest::Method::GET, "/api/v1/warnings?state=BOGUS", 422),
        (reqwest::Method::GET, "/api/v1/tasks?state=AAA", 422),
        (reqwest::Method::GET, "/api/v1/hazards?state=open", 422),
        (
            reqwest::Method::GET,
            "/api/v1/report-snapshots?period=AAA",
            422,
        ),
    ] {
        let resp = h
            .http
            .request(method.clone(), format!("{}{path}", h.base))
            .bearer_auth(OP)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(ct, "application/problem+json", "{method} {path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["status"], status, "{v}");
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{v}");
    }
    // The dashboard's JSON answers a script without a session with 401,
    // not the sign-in page.
    let r = h
        .http
        .get(format!("{}/web/api/dashboard", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Extractor rejections too: a path that is not UTF-8, a form endpoint
    // sent JSON.
    let r = h
        .http
        .get(format!("{}/api/v1/warnings/%FF%FE", h.base))
        .bearer_auth(OP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let (cookie, csrf) = h.sign_in("grid").await;
    let r = h
        .http
        .post(format!("{}/web/warnings/x/ack", h.base))
        .header("cookie", format!("anquan_session={cookie}"))
        .header("x-csrf-token", csrf)
        .json(&json!({"note": "json, not a form"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 415, "{v}");
    assert!(!v["detail"].as_str().unwrap().is_empty(), "{v}");
    // The filters' valid values still answer.
    let (s, _) = Call { h: &h }
        .get("/api/v1/hazards?state=DETECTED", &op)
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn named_operator_tokens_keep_to_their_regions_and_reads() {
    use anquan_monitor::config::OperatorToken;
    const BRIDGE: &str = "bridge-token-0123456789";
    const READER: &str = "reader-token-0123456789";
    let h = WebHarness::start_tuned(None, |cfg| {
        cfg.auth.operators.push(OperatorToken {
            name: "phone-bridge".into(),
            token: BRIDGE.into(),
            regions: vec!["town".into()],
            read_only: false,
        });
        cfg.auth.operators.push(OperatorToken {
            name: "wall-display".into(),
            token: READER.into(),
            regions: Vec::new(),
            read_only: true,
        });
    })
    .await;
    let c = Call { h: &h };
    let (bridge, reader) = (Cred::Bearer(BRIDGE), Cred::Bearer(READER));
    let (s, me) = c.get("/api/v1/me", &bridge).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["credential"], "operator_token");
    assert_eq!(me["username"], "phone-bridge");

    let far = h.alarm("s7", "gas-s7", 1, "red").await;
    let near = h.alarm("s1", "gas-0001", 2, "red").await;
    // The town's bridge sees and acts in its town only.
    let (_, v) = c.get("/api/v1/warnings", &bridge).await;
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&near.as_str()) && !ids.contains(&far.as_str()),
        "{v}"
    );
    assert_eq!(
        c.get(&format!("/api/v1/warnings/{far}"), &bridge).await.0,
        403
    );
    let ack = json!({"person_id": "grid", "note": "answered on the phone"});
    assert_eq!(
        c.post(&format!("/api/v1/warnings/{far}/ack"), &bridge, ack.clone())
            .await
            .0,
        403
    );
    let (s, v) = c
        .post(&format!("/api/v1/warnings/{near}/ack"), &bridge, ack)
        .await;
    assert_eq!(s, 200, "{v}");
    // A write without a person of its own is audited under the token's name.
    let (s, v) = c
        .send(
            reqwest::Method::PUT,
            "/api/v1/registry/holidays",
            &bridge,
            Some(json!({"date": "2026-12-30", "name": "drill day"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let trail = h
        .api_get("/api/v1/audit?entity_id=holidays/2026-12-30")
        .await;
    assert_eq!(
        audit_actors(&trail, "PUT"),
        vec!["operator:phone-bridge"],
        "{trail}"
    );

    // The wall display reads everything and writes nothing.
    let (s, v) = c.get("/api/v1/warnings", &reader).await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    let (s, v) = c
        .post(
            &format!("/api/v1/warnings/{far}/ack"),
            &reader,
            json!({"person_id": "city1"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("reads only"), "{v}");
}

#[tokio::test]
async fn maintenance_windows_are_set_by_the_venues_people_and_officers() {
    let h = WebHarness::start().await;
    let c = Call { h: &h };
    let ent = token_of(&h, "ent").await;
    let grid = token_of(&h, "grid").await;
    let admin = token_of(&h, "admin").await;
    let ends = common::T0 + 3_600_000;
    let window = |venue: &str| json!({"venue_id": venue, "ends_ms": ends, "reason": "servicing"});
    // A venue of the town whose people do not include the enterprise's.
    let (s, v) = c
        .send(
            reqwest::Method::PUT,
            "/api/v1/registry/venues",
            &Cred::Bearer(&admin),
            Some(
                json!({"id": "s3", "name": "Theatre", "sector": "theatre", "address": "3 Lake Road",
                        "region_id": "town", "grid_id": "g1"}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Its own venue: yes, audited as its person; another's in the same
    // town, another town's, or the admin: no.
    let (s, w) = c
        .post("/api/v1/maintenance", &Cred::Bearer(&ent), window("s1"))
        .await;
    assert_eq!(s, 201, "{w}");
    assert_eq!(w["created_by"], "person:safety1");
    for (who, venue) in [(&ent, "s3"), (&ent, "s7"), (&grid, "s7"), (&admin, "s1")] {
        let (s, v) = c
            .post("/api/v1/maintenance", &Cred::Bearer(who), window(venue))
            .await;
        assert_eq!(s, 403, "{venue}: {v}");
    }
    // The grid officer over the town sets and ends any of its venues'.
    let (s, w3) = c
        .post("/api/v1/maintenance", &Cred::Bearer(&grid), window("s3"))
        .await;
    assert_eq!(s, 201, "{w3}");
    let id = w3["id"].as_str().unwrap();
    let (s, v) = c
        .post(
            &format!("/api/v1/maintenance/{id}/end"),
            &Cred::Bearer(&ent),
            json!({"reason": "not mine to end"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = c
        .post(
            &format!("/api/v1/maintenance/{id}/end"),
            &Cred::Bearer(&grid),
            json!({"reason": "done"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Each sees the windows of its region.
    let (s, v) = c
        .get("/api/v1/maintenance?all=true", &Cred::Bearer(&grid))
        .await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(2)), "{v}");
}
