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
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let src = include_str!("../src/api.rs");
    for line in src
        .lines()
        .filter(|l| l.trim_start().starts_with(".route(\""))
    {
        let path = line.split('"').nth(1).unwrap();
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} is not in openapi.json"
        );
    }
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
