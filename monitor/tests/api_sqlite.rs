//! API tests against SQLite (a temp file), through HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Harness, scenarios, sqlite_url};

async fn harness(smtp: bool) -> (Harness, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Harness::start(&sqlite_url(&dir), smtp).await, dir)
}

#[tokio::test]
async fn sqlite_intake_contract() {
    let (h, _d) = harness(false).await;
    scenarios::intake_contract(&h).await;
}

#[tokio::test]
async fn sqlite_warning_lifecycle() {
    let (h, _d) = harness(false).await;
    scenarios::warning_lifecycle(&h).await;
}

#[tokio::test]
async fn sqlite_delivery_retries_then_next_person() {
    let (h, _d) = harness(false).await;
    scenarios::delivery_retries(&h).await;
}

#[tokio::test]
async fn sqlite_email_over_smtp() {
    let (h, _d) = harness(true).await;
    scenarios::email(&h).await;
}

#[tokio::test]
async fn sqlite_hazards_and_reminders() {
    let (h, _d) = harness(false).await;
    scenarios::hazards_and_reminders(&h).await;
}

#[tokio::test]
async fn sqlite_key_risk_and_recurrence() {
    let (h, _d) = harness(false).await;
    scenarios::key_risk_and_recurrence(&h).await;
}

#[tokio::test]
async fn sqlite_monthly_report() {
    let (h, _d) = harness(false).await;
    scenarios::monthly_report(&h).await;
}

#[tokio::test]
async fn sqlite_registry_crud() {
    let (h, _d) = harness(false).await;
    scenarios::registry_crud(&h).await;
}

/// The `.route("…", …)` paths of a router's source (also those whose path
/// is on the line after `.route(`).
fn routes_in(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let lit = rest.trim_start();
        assert!(
            lit.starts_with('"'),
            "a .route( without a literal path: {lit:.60}"
        );
        out.push(lit[1..].split('"').next().unwrap().to_string());
    }
    out
}

/// The methods the running router serves on `path` (its `{params}` filled
/// in): a request with a method no route has gets 405 and `Allow`.
async fn methods_of(h: &Harness, path: &str) -> Vec<String> {
    let url = format!("{}{}", h.base, path.replace(['{', '}'], ""));
    let r = h
        .http
        .request(reqwest::Method::from_bytes(b"PROBE").unwrap(), &url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405, "{path}: PROBE should be 405");
    let allow = r.headers()["allow"].to_str().unwrap().to_ascii_lowercase();
    let mut m: Vec<String> = allow
        .split(',')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty() && m != "head")
        .collect();
    m.sort();
    assert!(!m.is_empty(), "{path}: no methods in Allow: {allow:?}");
    m
}

/// Every route of the API router and every JSON, SSE, action and public
/// route of the web router is in the served document with exactly the
/// methods the running router answers; the document names no other
/// operation; every operation lists its problem+json errors.
#[tokio::test]
async fn openapi_lists_every_route() {
    let (h, _d) = harness(false).await;
    let r = h
        .http
        .get(format!("{}/api/openapi.json", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served = r.text().await.unwrap();
    assert_eq!(served, anquan_monitor::openapi::json());
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let api = routes_in(include_str!("../src/http/mod.rs"));
    // Pages (HTML) are not API; the JSON, SSE, action and public endpoints
    // are.
    let web: Vec<String> = routes_in(include_str!("../src/web/mod.rs"))
        .into_iter()
        .filter(|p| {
            p.starts_with("/web/api/")
                || p.starts_with("/web/warnings/")
                || p == "/web/events"
                || p.starts_with("/public/venues/{id}/qr")
                || p.starts_with("/a/")
        })
        .collect();
    assert!(api.len() >= 30, "{api:?}");
    assert_eq!(web.len(), 7, "{web:?}");
    let mut routed = std::collections::BTreeSet::new();
    for path in api.iter().chain(&web) {
        for m in methods_of(&h, path).await {
            routed.insert((path.clone(), m));
        }
    }
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (m, op) in item.as_object().unwrap() {
            if !methods.contains(&m.as_str()) {
                continue;
            }
            documented.insert((path.clone(), m.clone()));
            let problems = op["responses"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(status, r)| {
                    (status.starts_with('4') || status.starts_with('5'))
                        && r["content"]["application/problem+json"]["schema"]["$ref"]
                            == "#/components/schemas/Problem"
                })
                .count();
            // The document itself is a constant: it cannot fail.
            if (path.as_str(), m.as_str()) == ("/api/openapi.json", "get") {
                assert_eq!(problems, 0, "{m} {path}");
            } else {
                assert!(problems > 0, "{m} {path}: no problem+json error response");
            }
        }
    }
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routed but not in the document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        extra.is_empty(),
        "in the document but not routed: {extra:?}"
    );
}

#[tokio::test]
async fn sqlite_full_chain_alarm_to_report() {
    let (h, _d) = harness(true).await;
    scenarios::full_chain(&h).await;
}

#[tokio::test]
async fn sqlite_recurring_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(&sqlite_url(&dir), false, scenarios::TEMPLATES).await;
    scenarios::recurring_tasks(&h).await;
}

#[tokio::test]
async fn sqlite_public_safety_code_and_report() {
    let (h, _d) = harness(false).await;
    scenarios::public_side(&h).await;
}

#[tokio::test]
async fn sqlite_metrics_count_intake_and_sla_breaches() {
    let (h, _d) = harness(false).await;
    scenarios::metrics(&h).await;
}

/// Unjudged technical alarms do not colour the public code.
#[tokio::test]
async fn sqlite_public_code_counts_judged_input() {
    let (h, _d) = harness(false).await;
    scenarios::public_code_counts_judged_input(&h).await;
}

/// Deadlines, titles, control characters, references, bounded counts.
#[tokio::test]
async fn sqlite_input_rules() {
    let (h, _d) = harness(false).await;
    scenarios::input_rules(&h).await;
}

/// S1: event ids are scoped to the site the token speaks for.
#[tokio::test]
async fn sqlite_one_site_cannot_silence_another() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(&sqlite_url(&dir), false, scenarios::SCOPED_GATEWAYS).await;
    scenarios::cross_site_event_ids(&h).await;
}

/// Site liveness: a silent gateway's venues are blind, never green.
#[tokio::test]
async fn sqlite_gateway_liveness() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(&sqlite_url(&dir), false, scenarios::SCOPED_GATEWAYS).await;
    scenarios::gateway_liveness(&h).await;
}

/// Alarm storms: one cause, one warning, one call; red still gets through.
#[tokio::test]
async fn sqlite_alarm_storms() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&sqlite_url(&dir), false).await;
    scenarios::alarm_storms(&h).await;
}

/// The same storm taken event by event (no batches, each in its own
/// savepoint): the careful path groups as the fast path does.
#[tokio::test]
async fn sqlite_alarm_storms_event_by_event() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&sqlite_url(&dir), false).await;
    h.app.intake.set_fast_path(false);
    scenarios::alarm_storms(&h).await;
}

/// Maintenance windows hold calls, not records, and only for their time.
#[tokio::test]
async fn sqlite_maintenance_windows() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&sqlite_url(&dir), false).await;
    scenarios::maintenance_windows(&h).await;
}

/// `[[auth.gateways]]`: a site-scoped token may report its own sites only
/// (403, counted, nothing stored), and each intake token has its own rate
/// limit (429 with Retry-After, which the gateway retries).
#[tokio::test]
async fn sqlite_intake_tokens_are_scoped_to_sites_and_rate_limited() {
    const SITE_TOKEN: &str = "site-s1-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_tuned(
        &sqlite_url(&dir),
        false,
        &format!(
            "[[auth.gateways]]\nname = \"gw-01\"\ntoken = \"{SITE_TOKEN}\"\nsites = [\"s1\"]\n"
        ),
        |c| c.auth.intake_per_token_per_s = 5,
    )
    .await;
    let mut own = common::event(1, "raised", "red");
    let (s, _) = h
        .raw_alarm(SITE_TOKEN, serde_json::to_vec(&own).unwrap())
        .await;
    assert_eq!(s, 200, "its own site");

    let mut other = common::event(2, "raised", "red");
    other["site"] = "s2".into();
    other["event_id"] = "gw-01/s2/gas-1/gas.lel/2".into();
    let (s, body) = h
        .raw_alarm(SITE_TOKEN, serde_json::to_vec(&other).unwrap())
        .await;
    assert_eq!(s, 403, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("s2"), "{body}");
    let (_, warnings) = h.get("/api/v1/warnings").await;
    assert_eq!(warnings.as_array().unwrap().len(), 1, "{warnings}");

    // The same event with the unscoped token is accepted.
    let (s, _) = h.alarm(&other).await;
    assert_eq!(s, 200);

    // 5 per second per token: the site token has used 2; a burst of 10
    // more must meet 429s, with Retry-After.
    let mut limited = 0;
    for i in 10..20 {
        own["event_id"] = format!("gw-01/s1/gas-1/gas.lel/{i}").into();
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/alarms", h.base))
            .bearer_auth(SITE_TOKEN)
            .json(&own)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            limited += 1;
        } else {
            assert_eq!(r.status().as_u16(), 200);
        }
    }
    assert!(limited >= 5, "only {limited} of 10 were limited");

    let (_, page) = h.get_text("/metrics").await;
    for (reason, at_least) in [("forbidden_site", 1.0), ("rate_limited", 5.0)] {
        let line = format!("anquan_monitor_alarms_rejected_total{{reason=\"{reason}\"}}");
        let v: f64 = page
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0.0);
        assert!(v >= at_least, "{line} = {v}\n{page}");
    }
}

#[tokio::test]
async fn sqlite_photo_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("evidence");
    let h = Harness::start_with(
        &sqlite_url(&dir),
        false,
        &format!(
            "[evidence]\ndir = \"{}\"\nmax_bytes = 4096\n",
            files.display()
        ),
    )
    .await;
    scenarios::photo_evidence(&h, &files).await;
}

#[tokio::test]
async fn sqlite_report_as_xlsx_and_pdf() {
    let (h, _d) = harness(false).await;
    scenarios::report_files(&h, true).await;
}

#[tokio::test]
async fn sqlite_pdf_without_chromium_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(
        &sqlite_url(&dir),
        false,
        "[reports]\nchromium = \"/nonexistent/chromium\"\n",
    )
    .await;
    let r = h
        .http
        .get(format!(
            "{}/api/v1/reports/monthly?region=city&month=2026-11&format=pdf",
            h.base
        ))
        .bearer_auth(common::OP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: serde_json::Value = r.json().await.unwrap();
    assert!(
        p["detail"].as_str().unwrap().contains("reports.chromium"),
        "{p}"
    );
}

/// Input that would change an SQL statement built by string concatenation
/// is only ever data: the answers are "nothing found", never a 5xx, an SQL
/// error or rows that do not match.
#[tokio::test]
async fn sqlite_sql_injection_attempts_are_plain_data() {
    let (h, _d) = harness(false).await;
    let (s, _) = h.alarm(&common::event(1, "raised", "red")).await;
    assert_eq!(s, 200);
    for probe in ["' OR '1'='1", "x'; DROP TABLE warnings; --", "\" OR 1=1 --"] {
        let q: String = probe.bytes().map(|b| format!("%{b:02X}")).collect();
        // A state filter is checked against the states before any SQL.
        let (s, p) = h.get(&format!("/api/v1/warnings?state={q}")).await;
        assert_eq!(s, 422, "{p}");
        let (s, list) = h.get(&format!("/api/v1/audit?entity_id={q}")).await;
        assert_eq!(s, 200, "{list}");
        assert_eq!(list.as_array().map(Vec::len), Some(0), "{probe}: {list}");
        let (s, p) = h.get(&format!("/api/v1/hazards/{q}")).await;
        assert_eq!(s, 404, "{probe}: {p}");
        let (s, p) = h.get(&format!("/api/v1/venues/{q}/status")).await;
        assert!(s == 404 || s == 200, "{probe}: {s} {p}");
        assert!(!p.to_string().to_lowercase().contains("sql"), "{p}");
    }
    // The table is still there and still holds the one warning.
    let (s, list) = h.get("/api/v1/warnings").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
}

/// The anonymous 举报 entry is limited per client address
/// (`server.public_reports_per_min`): a flood gets 429, not a ledger full
/// of hazards.
#[tokio::test]
async fn sqlite_public_reports_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_tuned(&sqlite_url(&dir), false, "", |c| {
        c.server.public_reports_per_min = 3
    })
    .await;
    let client = reqwest::Client::new();
    let mut codes = Vec::new();
    for i in 0..5 {
        let r = client
            .post(format!("{}/public/reports", h.base))
            .json(&serde_json::json!({"venue_id": "s1", "category": "fire", "description": format!("blocked exit {i}")}))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert!(
        codes[..3].iter().all(|c| (200..300).contains(c)),
        "{codes:?}"
    );
    assert_eq!(&codes[3..], &[429, 429], "{codes:?}");
}

/// A batch whose fast path fails (here: a trigger refuses one event's row)
/// is rolled back and taken again event by event: the bad event alone is
/// refused (503, the gateway retries), the others in the same batches are
/// stored once, and nothing of the bad one stays.
#[tokio::test]
async fn sqlite_failed_fast_path_falls_back_event_by_event() {
    let (h, _d) = harness(false).await;
    sqlx::query(
        "CREATE TRIGGER refuse_one BEFORE INSERT ON alarm_events \
         WHEN NEW.event_id = 'gw-01/s1/bad-1/gas.lel/1' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&h.app.db)
    .await
    .unwrap();
    let mut calls = Vec::new();
    for i in 0..12u32 {
        let dev = if i == 5 {
            "bad-1".to_string()
        } else {
            format!("ok-{i}")
        };
        let ev = common::event_on(1, &dev, "gas.lel", "raised", "red");
        let h = &h;
        calls.push(async move { h.alarm(&ev).await });
    }
    // All at once, so they share batches with the bad one.
    let answers = scenarios::futures_join_all(calls).await;
    for (i, (s, a)) in answers.iter().enumerate() {
        if i == 5 {
            assert_eq!(*s, 503, "{a}");
        } else {
            assert_eq!(*s, 200, "{i}: {a}");
            assert_eq!(a["duplicate"], false);
        }
    }
    let (_, ws) = h.get("/api/v1/warnings").await;
    let ws = ws.as_array().unwrap();
    assert_eq!(ws.len(), 11, "{ws:?}");
    assert!(ws.iter().all(|w| w["device"] != "bad-1"));
    let fallback = scenarios::metric(
        &h,
        r#"anquan_monitor_intake_batches_total{path="fallback"}"#,
    )
    .await;
    assert!(fallback >= Some(1.0), "{fallback:?}");
}

#[tokio::test]
async fn sqlite_concurrent_intake_shares_batches() {
    let (h, _d) = harness(false).await;
    scenarios::concurrent_intake(&h).await;
}

/// 报告生成 on schedule (see the scenario).
#[tokio::test]
async fn sqlite_reports_are_generated_on_schedule_and_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with_snapshots(&sqlite_url(&dir)).await;
    scenarios::scheduled_reports(&h).await;
}

/// The batch fast path and the event-by-event path leave the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_batch_rules_match_event_by_event() {
    // Concurrent waves arrive in no set order; grouping depends on the
    // order (the first two of a storm stand alone), so it is off here and
    // compared on both paths by `sqlite_alarm_storms_event_by_event`.
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alone = |c: &mut anquan_monitor::Config| c.correlation.enabled = false;
    let fast = Harness::start_tuned(&sqlite_url(&d1), false, "", alone).await;
    let careful = Harness::start_tuned(&sqlite_url(&d2), false, "", alone).await;
    scenarios::batch_rules_match_event_by_event(&fast, &careful).await;
}

/// The yearly report and its snapshot (see the scenario).
#[tokio::test]
async fn sqlite_annual_report() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with_snapshots(&sqlite_url(&dir)).await;
    scenarios::annual_report(&h).await;
}

/// Scheduled reports mailed once per recipient, across restarts (see the
/// scenario).
#[tokio::test]
async fn sqlite_report_mail() {
    let dir = tempfile::tempdir().unwrap();
    scenarios::report_mail(&sqlite_url(&dir)).await;
}

/// Every list and single row read from the database, as the running API
/// sends it, is valid under its response schema in the served document.
#[tokio::test]
async fn sqlite_rows_match_the_openapi_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("evidence");
    let h = Harness::start_tuned(
        &sqlite_url(&dir),
        false,
        &format!("[evidence]\ndir = \"{}\"\n", files.display()),
        |c| c.reports.scheduled_tiers = vec!["city".into()],
    )
    .await;
    scenarios::rows_match_the_schemas(&h).await;
}

#[test]
fn the_schema_checker_finds_what_is_wrong() {
    common::schema::self_test();
}
