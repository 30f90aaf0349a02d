//! The same API scenarios against a real PostgreSQL started by the test
//! (initdb + pg_ctl on a free loopback port), one database per scenario,
//! plus two service instances on one database (replicas): every call,
//! reminder and delivery happens once; and the last mile's scenarios
//! against the providers' stand-ins (`common/lastmile.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pg::Pg;
use common::{Harness, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_scenarios_and_replicas() {
    let pg = Pg::start();
    let h = Harness::start(&pg.database("intake").await, false).await;
    scenarios::intake_contract(&h).await;
    let h = Harness::start_with(
        &pg.database("crosssite").await,
        false,
        scenarios::SCOPED_GATEWAYS,
    )
    .await;
    scenarios::cross_site_event_ids(&h).await;
    let h = Harness::start_with(
        &pg.database("liveness").await,
        false,
        scenarios::SCOPED_GATEWAYS,
    )
    .await;
    scenarios::gateway_liveness(&h).await;
    let h = Harness::start(&pg.database("maintenance").await, false).await;
    scenarios::maintenance_windows(&h).await;
    let h = Harness::start(&pg.database("storms").await, false).await;
    scenarios::alarm_storms(&h).await;
    let h = Harness::start(&pg.database("inputrules").await, false).await;
    scenarios::input_rules(&h).await;
    let h = Harness::start(&pg.database("lifecycle").await, false).await;
    scenarios::warning_lifecycle(&h).await;
    let h = Harness::start(&pg.database("retries").await, false).await;
    scenarios::delivery_retries(&h).await;
    let h = Harness::start(&pg.database("email").await, true).await;
    scenarios::email(&h).await;
    let h = Harness::start(&pg.database("hazards").await, false).await;
    scenarios::hazards_and_reminders(&h).await;
    let h = Harness::start(&pg.database("keyrisk").await, false).await;
    scenarios::key_risk_and_recurrence(&h).await;
    let h = Harness::start(&pg.database("report").await, false).await;
    scenarios::monthly_report(&h).await;
    let h = Harness::start(&pg.database("registry").await, false).await;
    scenarios::registry_crud(&h).await;
    let h = Harness::start(&pg.database("chain").await, true).await;
    scenarios::full_chain(&h).await;
    let h = Harness::start_with(&pg.database("templates").await, false, scenarios::TEMPLATES).await;
    scenarios::recurring_tasks(&h).await;
    let h = Harness::start(&pg.database("public").await, false).await;
    scenarios::public_side(&h).await;
    let h = Harness::start(&pg.database("publiccode").await, false).await;
    scenarios::public_code_counts_judged_input(&h).await;
    let w = common::web::WebHarness::start_on(Some(pg.database("web").await)).await;
    common::web::smoke(&w).await;
    let h = Harness::start(&pg.database("metrics").await, false).await;
    scenarios::metrics(&h).await;
    let h = Harness::start_with_snapshots(&pg.database("snapshots").await).await;
    scenarios::scheduled_reports(&h).await;
    let h = Harness::start_with_snapshots(&pg.database("annual").await).await;
    scenarios::annual_report(&h).await;
    scenarios::report_mail(&pg.database("reportmail").await).await;
    let files = tempfile::tempdir().unwrap();
    let h = Harness::start_with(
        &pg.database("evidence").await,
        false,
        &format!(
            "[evidence]\ndir = \"{}\"\nmax_bytes = 4096\n",
            files.path().display()
        ),
    )
    .await;
    scenarios::photo_evidence(&h, files.path()).await;
    let h = Harness::start_tuned(
        &pg.database("rows").await,
        false,
        &format!("[evidence]\ndir = \"{}\"\n", files.path().display()),
        |c| c.reports.scheduled_tiers = vec!["city".into()],
    )
    .await;
    scenarios::rows_match_the_schemas(&h).await;
    let h = Harness::start(&pg.database("burst").await, false).await;
    scenarios::concurrent_intake(&h).await;
    // Grouping depends on the arrival order of the concurrent waves: off
    // here (see the SQLite test of the same name).
    let alone = |c: &mut anquan_monitor::Config| c.correlation.enabled = false;
    let fast = Harness::start_tuned(&pg.database("batchfast").await, false, "", alone).await;
    let careful = Harness::start_tuned(&pg.database("batchcareful").await, false, "", alone).await;
    scenarios::batch_rules_match_event_by_event(&fast, &careful).await;
    let h = Harness::start(&pg.database("files").await, false).await;
    scenarios::report_files(&h, false).await;
    // The last mile against the providers' stand-ins.
    use common::lastmile::{self, LastMile, Sms};
    let m = LastMile::start(&pg.database("lm_red").await, Sms::Aliyun).await;
    lastmile::red_reaches_the_right_people(&m).await;
    let m = LastMile::start(&pg.database("lm_chain").await, Sms::Aliyun).await;
    lastmile::chain_exhausts_and_clearing_stops_it(&m).await;
    let m = LastMile::start(&pg.database("lm_yellow").await, Sms::Aliyun).await;
    lastmile::yellow_climbs_hourly(&m).await;
    let m = LastMile::start(&pg.database("lm_replies").await, Sms::Aliyun).await;
    lastmile::replies_receipts_and_voice_keys(&m).await;
    let m = LastMile::start(&pg.database("lm_tencent").await, Sms::Tencent).await;
    lastmile::tencent_sms(&m).await;
    let m = LastMile::start(&pg.database("lm_failures").await, Sms::Aliyun).await;
    lastmile::provider_failures(&m).await;
    lastmile::a_failed_step_moves_on(&pg.database("lm_step").await).await;
    lastmile::a_bad_signature_is_refused(&pg.database("lm_sig").await).await;
    lastmile::rota_and_red_first(&pg.database("lm_rota").await).await;
    lastmile::unreachable_and_fallback(&pg.database("lm_reach").await).await;
    lastmile::the_last_send_is_kept_for_red(&pg.database("lm_kept").await).await;
    lastmile::notices_wait_for_a_digest_and_red_does_not(&pg.database("lm_digest").await).await;
    lastmile::red_goes_around_a_throttled_channel(&pg.database("lm_around").await).await;
    // Two replicas on one database.
    let url = pg.database("replicas").await;
    let a = Harness::start(&url, false).await;
    let b = Harness::start(&url, false).await;
    scenarios::two_replicas(&a, &b).await;
}
