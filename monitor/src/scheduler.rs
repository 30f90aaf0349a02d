//! The one scheduler loop: each tick generates recurring tasks, runs the
//! warnings' deadline watch (叫应), the reminder ladder (事项催办), the
//! delivery worker (whose outcomes go back to the warnings: a call
//! delivered, a step whose calls all failed) and, once a minute, the
//! reports of ended periods (报告生成). All state is in the database
//! and every step is a compare-and-set or an insert on a unique key, so a
//! restart or a second replica neither loses nor repeats a step.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::{App, notify, warnings, work};

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Recurring tasks generated.
    pub tasks: usize,
    /// Warnings that moved to their next call.
    pub calls: usize,
    /// Reminder steps fired.
    pub reminders: usize,
    /// Deliveries sent.
    pub sent: usize,
    /// Delivery attempts that failed.
    pub failed: usize,
    /// Deliveries held back by a rate limit.
    pub throttled: usize,
    /// Reports generated on schedule (snapshots).
    pub reports: usize,
    /// Gateways judged silent (their sites blind).
    pub silent_gateways: usize,
    /// Warnings whose maintenance window ended with the alarm still active
    /// (their calls start).
    pub released: usize,
}

/// One pass at the clock's now.
pub async fn tick(app: &App) -> Result<Tick> {
    let now = app.now_ms();
    let tasks = crate::templates::tick(app, now).await?;
    let released = crate::maintenance::release(app, now).await?;
    let calls = warnings::tick(app, now).await?;
    let reminders = work::reminder_tick(app, now).await?;
    let worked = notify::deliver_tick(app, now).await?;
    warnings::on_deliveries(app, &worked.outcomes).await?;
    let reports = crate::snapshots::tick(app, now).await?;
    let silent_gateways = crate::liveness::check(app, now).await?;
    Ok(Tick {
        tasks,
        calls,
        reminders,
        sent: worked.sent,
        failed: worked.failed,
        throttled: worked.throttled,
        reports,
        silent_gateways,
        released,
    })
}

/// Runs until `stop`.
pub async fn run(app: App, stop: CancellationToken) {
    let period = Duration::from_millis(app.cfg.scheduler.tick_ms);
    let m = &app.metrics;
    loop {
        let r = tick(&app).await;
        // No leader election: every replica ticks and every step is a
        // compare-and-set. "Lease held" = this replica is ticking and its
        // last tick worked; a sum of 0 over replicas means nobody is.
        m.scheduler_lease_held.set(i64::from(r.is_ok()));
        m.scheduler_ticks
            .with_label_values(&[if r.is_ok() { "ok" } else { "error" }])
            .inc();
        match r {
            Ok(t) if t != Tick::default() => tracing::info!(?t, "scheduler tick"),
            Ok(_) => {}
            Err(e) => {
                if matches!(e, crate::Error::Db(_)) {
                    m.db_error("scheduler");
                }
                tracing::warn!(error = %e, "scheduler tick failed; retrying next tick");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = stop.cancelled() => break,
        }
    }
    m.scheduler_lease_held.set(0);
}
