//! Prometheus metrics at `GET /metrics` (text format). One registry per
//! [`crate::App`], so several monitors can run in one process (tests).
//!
//! Counters count what this replica did (events taken, SLA misses acted
//! on, deliveries, reminder rungs); gauges about the shared state (warnings
//! by state, open hazards, overdue tasks) are read from the database when
//! the page is scraped, so every replica shows the same figures (use
//! `max` across replicas, not `sum`). Every name starts with
//! `anquan_monitor_`; README lists them.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use sqlx::Row;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::App;
use crate::error::{Error, Result};

/// Every metric of the monitor.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Alarm events stored (new `event_id`s).
    pub alarms_received: IntCounter,
    /// Alarm events received again (idempotent redeliveries).
    pub alarms_duplicate: IntCounter,
    /// Alarm requests refused, by reason (unauthorized, invalid, too_large,
    /// bad_request, unavailable).
    pub alarms_rejected: IntCounterVec,
    /// Time from request to answer of `POST /api/v1/alarms` (includes
    /// waiting for the group commit).
    pub intake_seconds: Histogram,
    /// Warnings by state (from the database at scrape time).
    pub warnings: IntGaugeVec,
    /// Acknowledgement SLAs missed (叫应 the next person), by level.
    pub sla_breaches: IntCounterVec,
    /// Deliveries sent, by channel.
    pub notifications_sent: IntCounterVec,
    /// Failed delivery attempts, by channel.
    pub notifications_failed: IntCounterVec,
    /// Messages held back by a rate limit (ours or the provider's), by
    /// channel.
    pub notifications_throttled: IntCounterVec,
    /// Messages waiting in the queue, by channel (from the database).
    pub notifications_queued: IntGaugeVec,
    /// Notices that went inside a digest (carrier included), by channel.
    pub notifications_digested: IntCounterVec,
    /// Notices that could not be queued for a person, by reason
    /// (`not_registered`, `no_channel`).
    pub notices_unreachable: IntCounterVec,
    /// Acknowledgements, by how (api, web, link, sms, voice).
    pub acks: IntCounterVec,
    /// Acknowledgements from a message refused, by reason (forged,
    /// expired, used, unknown_code, ambiguous, unknown_sender).
    pub ack_refused: IntCounterVec,
    /// Reminder ladder steps fired, by rung.
    pub reminders_fired: IntCounterVec,
    /// Gateway heartbeats, by result (accepted, refused: an unknown or
    /// unauthorised gateway or a site it may not name, invalid).
    pub heartbeats: IntCounterVec,
    /// `/api/v1` requests refused for their credential, by what was sent
    /// (none, operator_token, personal_token, csrf).
    pub api_refused: IntCounterVec,
    /// Gateways judged silent (two intervals without a heartbeat): their
    /// sites are blind.
    pub gateways_silent: IntCounter,
    /// Warning calls held back by a maintenance window.
    pub warnings_held: IntCounter,
    /// Group warnings formed from an alarm storm (one cause).
    pub groups_formed: IntCounter,
    /// Open hazards by severity (general, major, unjudged).
    pub hazards_open: IntGaugeVec,
    /// Open tasks past their deadline.
    pub tasks_overdue: IntGauge,
    /// 1 while this replica runs the scheduler and its last tick succeeded.
    pub scheduler_lease_held: IntGauge,
    /// Scheduler ticks, by result (ok, error).
    pub scheduler_ticks: IntCounterVec,
    /// Database errors, by where they surfaced (api, intake, scheduler,
    /// metrics).
    pub db_errors: IntCounterVec,
    /// Evidence uploads refused, by reason (type, too_large, bad_request,
    /// malformed).
    pub evidence_rejected: IntCounterVec,
    /// Web sign-ins, by result (ok, failed, refused by the rate limit).
    pub web_signins: IntCounterVec,
    /// Intake batches committed, by path: `fast` (one transaction, no
    /// savepoints) or `fallback` (the fast path failed, e.g. a race with
    /// another replica, and the batch was taken event by event).
    pub intake_batches: IntCounterVec,
    /// Alarm events waiting for the intake worker in this replica, by lane
    /// (`red`, `rest`): a storm beyond the worker's pace waits here (and
    /// its senders wait for room), never dropped.
    pub intake_queued: IntGaugeVec,
}

const P: &str = "anquan_monitor_";

/// Label values created at start, so every series exists (at 0) before its
/// first event: dashboards and alert rules see a value, not "no data".
pub const LEVELS: [&str; 4] = ["red", "orange", "yellow", "blue"];
/// Delivery channels.
pub const CHANNELS: [&str; 7] = [
    "sms", "voice", "wecom", "dingtalk", "feishu", "webhook", "email",
];
/// Reminder rungs (`work::Step::name`).
pub const RUNGS: [&str; 5] = ["before", "due", "overdue", "node", "listing"];
/// Warning states.
pub const WARNING_STATES: [&str; 5] = ["RAISED", "NOTIFIED", "ACKED", "DISPOSING", "RESOLVED"];
/// Reasons an alarm request is refused.
pub const REJECT_REASONS: [&str; 5] = [
    "unauthorized",
    "invalid",
    "too_large",
    "bad_request",
    "unavailable",
];
/// `result` label values of `heartbeats_total`.
pub const HEARTBEAT_RESULTS: [&str; 3] = ["accepted", "refused", "invalid"];
/// `credential` label values of `api_refused_total`.
pub const API_CREDENTIALS: [&str; 4] = ["none", "operator_token", "personal_token", "csrf"];
/// Where database errors are counted.
pub const DB_SOURCES: [&str; 4] = ["api", "intake", "scheduler", "metrics"];
/// Hazard severities (`unjudged` until set).
pub const SEVERITIES: [&str; 3] = ["general", "major", "unjudged"];
/// Results of a web sign-in.
pub const SIGNIN_RESULTS: [&str; 3] = ["ok", "failed", "refused"];
/// Reasons an evidence upload is refused.
pub const EVIDENCE_REASONS: [&str; 4] = ["type", "too_large", "bad_request", "malformed"];

/// Metric definitions are constants; this fails only on a programming
/// error, which the unit test below catches.
#[allow(clippy::panic)]
fn bad_definition<T>(e: prometheus::Error) -> T {
    panic!("invalid metric definition: {e}")
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    // Registration fails only on a duplicate name (a bug; see the test).
    let _ = r.register(Box::new(m.clone()));
    m
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    reg(
        r,
        IntCounter::with_opts(Opts::new(format!("{P}{name}"), help)).unwrap_or_else(bad_definition),
    )
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &str, init: &[&str]) -> IntCounterVec {
    let m = reg(
        r,
        IntCounterVec::new(Opts::new(format!("{P}{name}"), help), &[label])
            .unwrap_or_else(bad_definition),
    );
    for v in init {
        m.with_label_values(&[*v]);
    }
    m
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    reg(
        r,
        IntGauge::with_opts(Opts::new(format!("{P}{name}"), help)).unwrap_or_else(bad_definition),
    )
}

fn gauge_vec(r: &Registry, name: &str, help: &str, label: &str, init: &[&str]) -> IntGaugeVec {
    let m = reg(
        r,
        IntGaugeVec::new(Opts::new(format!("{P}{name}"), help), &[label])
            .unwrap_or_else(bad_definition),
    );
    for v in init {
        m.with_label_values(&[*v]).set(0);
    }
    m
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let r = Registry::new();
        Self {
            alarms_received: counter(
                &r,
                "alarms_received_total",
                "Alarm events stored (new event_id).",
            ),
            alarms_duplicate: counter(
                &r,
                "alarms_duplicate_total",
                "Alarm events received again (idempotent redeliveries).",
            ),
            alarms_rejected: counter_vec(
                &r,
                "alarms_rejected_total",
                "Alarm requests refused, by reason.",
                "reason",
                &REJECT_REASONS,
            ),
            intake_seconds: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        format!("{P}intake_seconds"),
                        "Time to answer POST /api/v1/alarms (incl. the group commit).",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ]),
                )
                .unwrap_or_else(bad_definition),
            ),
            warnings: gauge_vec(
                &r,
                "warnings",
                "Warnings by state (from the database).",
                "state",
                &WARNING_STATES,
            ),
            sla_breaches: counter_vec(
                &r,
                "sla_breaches_total",
                "Acknowledgement SLAs missed (the next person on duty is called), by level.",
                "level",
                &LEVELS,
            ),
            notifications_sent: counter_vec(
                &r,
                "notifications_sent_total",
                "Deliveries sent, by channel.",
                "channel",
                &CHANNELS,
            ),
            notifications_failed: counter_vec(
                &r,
                "notifications_failed_total",
                "Failed delivery attempts, by channel.",
                "channel",
                &CHANNELS,
            ),
            notifications_throttled: counter_vec(
                &r,
                "notifications_throttled_total",
                "Messages held back by a rate limit (ours or the provider's), by channel.",
                "channel",
                &CHANNELS,
            ),
            notifications_queued: gauge_vec(
                &r,
                "notifications_queued",
                "Messages waiting to be sent, by channel (from the database).",
                "channel",
                &CHANNELS,
            ),
            notifications_digested: counter_vec(
                &r,
                "notifications_digested_total",
                "Notices that went inside a digest (carrier included), by channel.",
                "channel",
                &CHANNELS,
            ),
            notices_unreachable: counter_vec(
                &r,
                "notices_unreachable_total",
                "Notices that could not be queued for a person, by reason.",
                "reason",
                &["not_registered", "no_channel"],
            ),
            acks: counter_vec(
                &r,
                "acks_total",
                "Warnings acknowledged, by how.",
                "via",
                &crate::warnings::VIAS,
            ),
            ack_refused: counter_vec(
                &r,
                "ack_refused_total",
                "Acknowledgements from a message refused, by reason.",
                "reason",
                &crate::ack::REFUSALS,
            ),
            reminders_fired: counter_vec(
                &r,
                "reminders_fired_total",
                "Reminder ladder steps (事项催办) fired, by rung.",
                "rung",
                &RUNGS,
            ),
            heartbeats: counter_vec(
                &r,
                "heartbeats_total",
                "Gateway heartbeats, by result.",
                "result",
                &HEARTBEAT_RESULTS,
            ),
            api_refused: counter_vec(
                &r,
                "api_refused_total",
                "/api/v1 requests refused for their credential, by what was sent.",
                "credential",
                &API_CREDENTIALS,
            ),
            gateways_silent: counter(
                &r,
                "gateways_silent_total",
                "Gateways judged silent (two intervals without a heartbeat).",
            ),
            warnings_held: counter(
                &r,
                "warnings_held_total",
                "Warning calls held back by a maintenance window (recorded, nobody called).",
            ),
            groups_formed: counter(
                &r,
                "groups_formed_total",
                "Group warnings formed from alarms of one cause (alarm storms).",
            ),
            hazards_open: gauge_vec(
                &r,
                "hazards_open",
                "Open hazards (not CLOSED/ARCHIVED) by severity (from the database).",
                "severity",
                &SEVERITIES,
            ),
            tasks_overdue: gauge(
                &r,
                "tasks_overdue",
                "Open tasks past their deadline (from the database).",
            ),
            scheduler_lease_held: gauge(
                &r,
                "scheduler_lease_held",
                "1 while this replica runs the scheduler and its last tick succeeded.",
            ),
            scheduler_ticks: counter_vec(
                &r,
                "scheduler_ticks_total",
                "Scheduler ticks, by result.",
                "result",
                &["ok", "error"],
            ),
            db_errors: counter_vec(
                &r,
                "db_errors_total",
                "Database errors, by where they surfaced.",
                "source",
                &DB_SOURCES,
            ),
            evidence_rejected: counter_vec(
                &r,
                "evidence_rejected_total",
                "Evidence uploads refused, by reason.",
                "reason",
                &EVIDENCE_REASONS,
            ),
            web_signins: counter_vec(
                &r,
                "web_signins_total",
                "Web sign-ins, by result (ok, failed: wrong name or password, refused: over the rate limit).",
                "result",
                &SIGNIN_RESULTS,
            ),
            intake_batches: counter_vec(
                &r,
                "intake_batches_total",
                "Intake batches, by path (fast, fallback).",
                "path",
                &["fast", "fallback"],
            ),
            intake_queued: gauge_vec(
                &r,
                "intake_queued",
                "Alarm events waiting for the intake worker in this replica, by lane (red, rest).",
                "lane",
                &["red", "rest"],
            ),
            registry: r,
        }
    }

    /// Counts a database error that surfaced at `source`.
    pub fn db_error(&self, source: &str) {
        self.db_errors.with_label_values(&[source]).inc();
    }

    /// The text exposition of the registry as it is now.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec fails only on an invalid metric family.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Counts one answered `POST /api/v1/alarms`.
pub fn count_intake(m: &Metrics, out: &Result<crate::intake::Outcome>, took: std::time::Duration) {
    m.intake_seconds.observe(took.as_secs_f64());
    match out {
        Ok(o) if o.duplicate => m.alarms_duplicate.inc(),
        Ok(_) => m.alarms_received.inc(),
        Err(e) => {
            let reason = match e {
                Error::Unauthorized(_) => "unauthorized",
                Error::Forbidden(_) => "forbidden_site",
                Error::TooMany(_) => "rate_limited",
                Error::Invalid(_) => "invalid",
                Error::TooLarge(_) => "too_large",
                Error::EventReused(_) => "event_id_reused",
                Error::BadRequest(_) | Error::UnsupportedMedia(_) => "bad_request",
                _ => "unavailable",
            };
            m.alarms_rejected.with_label_values(&[reason]).inc();
        }
    }
}

/// Reads the state gauges from the database, then renders the page. A
/// database failure leaves the gauges at their last values and is counted
/// (the page itself still answers: the counters are still true).
pub async fn scrape(app: &App) -> String {
    let (red, rest) = app.intake.queued();
    for (lane, n) in [("red", red), ("rest", rest)] {
        app.metrics
            .intake_queued
            .with_label_values(&[lane])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Err(e) = refresh(app).await {
        tracing::warn!(error = %e, "metrics: cannot read the state gauges");
        app.metrics.db_error("metrics");
    }
    app.metrics.render()
}

async fn refresh(app: &App) -> Result<()> {
    let m = &app.metrics;
    let now = app.now_ms();
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM warnings GROUP BY state")
        .fetch_all(&app.db)
        .await?;
    for s in WARNING_STATES {
        m.warnings.with_label_values(&[s]).set(0);
    }
    for r in &rows {
        let s: String = r.try_get("state")?;
        m.warnings.with_label_values(&[&s]).set(r.try_get("n")?);
    }
    let rows = sqlx::query(
        "SELECT COALESCE(severity, 'unjudged') AS severity, COUNT(*) AS n FROM hazards \
         WHERE state NOT IN ('CLOSED', 'ARCHIVED') GROUP BY COALESCE(severity, 'unjudged')",
    )
    .fetch_all(&app.db)
    .await?;
    for s in SEVERITIES {
        m.hazards_open.with_label_values(&[s]).set(0);
    }
    for r in &rows {
        let s: String = r.try_get("severity")?;
        m.hazards_open.with_label_values(&[&s]).set(r.try_get("n")?);
    }
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM tasks WHERE state = 'OVERDUE' \
         OR (state IN ('PLANNED', 'ASSIGNED', 'IN_PROGRESS') AND due_ms < $1)",
    )
    .bind(now)
    .fetch_one(&app.db)
    .await?
    .try_get("n")?;
    m.tasks_overdue.set(n);
    for c in CHANNELS {
        m.notifications_queued.with_label_values(&[c]).set(0);
    }
    for r in sqlx::query(
        "SELECT channel, COUNT(*) AS n FROM deliveries WHERE state IN ('QUEUED', 'MERGED') GROUP BY channel",
    )
    .fetch_all(&app.db)
    .await?
    {
        let c: String = r.try_get("channel")?;
        m.notifications_queued
            .with_label_values(&[&c])
            .set(r.try_get("n")?);
    }
    Ok(())
}

// HTTP (routed in `api`).

/// Counts responses caused by a database failure (see [`crate::error::DbFailure`]).
pub async fn count_db_errors(
    State(app): State<App>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    if resp.extensions().get::<crate::error::DbFailure>().is_some() {
        app.metrics.db_error("api");
    }
    resp
}

/// `GET /metrics`: Prometheus text format, no token (`[metrics]`).
#[utoipa::path(get, path = "/metrics", tag = "ops", operation_id = "metrics",
    summary = "Prometheus metrics (text format, no token)",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "`metrics.enabled` is false", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn page(State(app): State<App>) -> Result<Response> {
    if !app.cfg.metrics.enabled {
        return Err(Error::NotFound {
            what: "page (metrics.enabled = false)",
            id: "/metrics".into(),
        });
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scrape(&app).await,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_and_renders() {
        let m = Metrics::new();
        m.sla_breaches.with_label_values(&["red"]).inc();
        let page = m.render();
        for name in [
            "anquan_monitor_alarms_received_total",
            "anquan_monitor_alarms_duplicate_total",
            "anquan_monitor_alarms_rejected_total{reason=\"invalid\"}",
            "anquan_monitor_intake_seconds_bucket",
            "anquan_monitor_warnings{state=\"RAISED\"}",
            "anquan_monitor_sla_breaches_total{level=\"red\"} 1",
            "anquan_monitor_notifications_sent_total{channel=\"email\"}",
            "anquan_monitor_notifications_failed_total{channel=\"webhook\"}",
            "anquan_monitor_reminders_fired_total{rung=\"listing\"}",
            "anquan_monitor_hazards_open{severity=\"major\"}",
            "anquan_monitor_tasks_overdue",
            "anquan_monitor_scheduler_lease_held",
            "anquan_monitor_scheduler_ticks_total{result=\"ok\"}",
            "anquan_monitor_db_errors_total{source=\"api\"}",
            "anquan_monitor_evidence_rejected_total{reason=\"type\"}",
            "anquan_monitor_web_signins_total{result=\"refused\"}",
            "anquan_monitor_intake_batches_total{path=\"fallback\"}",
            "anquan_monitor_heartbeats_total{result=\"refused\"}",
            "anquan_monitor_gateways_silent_total",
            "anquan_monitor_warnings_held_total",
            "anquan_monitor_groups_formed_total",
            "anquan_monitor_notifications_digested_total{channel=\"sms\"}",
            "anquan_monitor_intake_queued{lane=\"red\"}",
            "anquan_monitor_api_refused_total{credential=\"none\"}",
        ] {
            assert!(page.contains(name), "{name} missing:\n{page}");
        }
        // 29 families, each registered once.
        assert_eq!(m.registry.gather().len(), 29);
    }
}
