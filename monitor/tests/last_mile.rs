//! The last mile on SQLite: who hears of a warning, when, by which
//! channel, in which words, and how they answer, against the providers'
//! stand-ins on a simulated clock (`common/lastmile.rs`; the same on
//! PostgreSQL in `api_postgres.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::lastmile::{self, LastMile, Sms};
use common::{Harness, event, sqlite_url};
use serde_json::json;

async fn harness(sms: Sms) -> (LastMile, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (LastMile::start(&sqlite_url(&dir), sms).await, dir)
}

#[tokio::test]
async fn red_reaches_the_right_people() {
    let (m, _d) = harness(Sms::Aliyun).await;
    lastmile::red_reaches_the_right_people(&m).await;
}

#[tokio::test]
async fn chain_exhausts_and_clearing_stops_it() {
    let (m, _d) = harness(Sms::Aliyun).await;
    lastmile::chain_exhausts_and_clearing_stops_it(&m).await;
}

#[tokio::test]
async fn yellow_climbs_hourly() {
    let (m, _d) = harness(Sms::Aliyun).await;
    lastmile::yellow_climbs_hourly(&m).await;
}

#[tokio::test]
async fn replies_receipts_and_voice_keys() {
    let (m, _d) = harness(Sms::Aliyun).await;
    lastmile::replies_receipts_and_voice_keys(&m).await;
}

#[tokio::test]
async fn tencent_sms() {
    let (m, _d) = harness(Sms::Tencent).await;
    lastmile::tencent_sms(&m).await;
}

#[tokio::test]
async fn provider_failures() {
    let (m, _d) = harness(Sms::Aliyun).await;
    lastmile::provider_failures(&m).await;
}

#[tokio::test]
async fn a_failed_step_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    lastmile::a_failed_step_moves_on(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    lastmile::a_bad_signature_is_refused(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn rota_and_red_first() {
    let dir = tempfile::tempdir().unwrap();
    lastmile::rota_and_red_first(&sqlite_url(&dir)).await;
}

/// The old defect: follow-up calls said "value 0, threshold 0". The call
/// the deadline watch makes carries the alarm's latest reading.
#[tokio::test]
async fn follow_up_calls_carry_the_real_value() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(&sqlite_url(&dir), false).await;
    let mut e = event(1, "raised", "red");
    e["value"] = json!(61.5);
    h.alarm(&e).await;
    h.tick().await;
    h.clock.advance_ms(5 * 60_000);
    h.tick().await;
    let call = h
        .hooks_for("county1")
        .into_iter()
        .find(|x| x.body["purpose"] == "call")
        .expect("the county is called when nobody answered");
    let body = call.body["body"].as_str().unwrap();
    assert!(
        body.contains("可燃气体浓度 61.5%LEL，阈值 50%LEL"),
        "{body}"
    );
    assert!(!body.contains(" 0%LEL"), "{body}");
}

#[tokio::test]
async fn unreachable_and_fallback() {
    let dir = tempfile::tempdir().unwrap();
    lastmile::unreachable_and_fallback(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn the_last_send_is_kept_for_red() {
    let dir = tempfile::tempdir().unwrap();
    lastmile::the_last_send_is_kept_for_red(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn notices_wait_for_a_digest_and_red_does_not() {
    let dir = tempfile::tempdir().unwrap();
    lastmile::notices_wait_for_a_digest_and_red_does_not(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn red_goes_around_a_throttled_channel() {
    let dir = tempfile::tempdir().unwrap();
    lastmile::red_goes_around_a_throttled_channel(&sqlite_url(&dir)).await;
}
