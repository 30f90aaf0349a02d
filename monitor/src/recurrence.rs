//! 重点风控 and recurrence, counted on warnings a person confirmed real.
//!
//! MONITOR-SPEC §4 (隐患发现): a venue with many alarms in a window is
//! proposed for the key-risk list (动态隐患多发), and an alarm that keeps
//! coming back at a venue becomes a hazard (or reopens the closed one of
//! its category). Counting every alarm let noise write to the ledger: an
//! offline blip, a blue pre-warning or a confirmed false alarm opened and
//! reopened hazards. So the rules run when a person confirms a warning
//! real (`POST /warnings/{id}/confirm` with `false_alarm: false`) and count
//! only warnings confirmed real (`false_alarm = 0`) raised in the window:
//! a false alarm, or a warning nobody judged, never opens, reopens or
//! proposes anything.

use sqlx::{AnyConnection, Row};

use crate::App;
use crate::db;
use crate::error::Result;

/// The confirmed warning the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct Confirmed<'a> {
    /// The warning.
    pub id: &'a str,
    /// Its venue (the rules need one).
    pub venue: &'a str,
    /// Its region.
    pub region: Option<&'a str>,
    /// Its rule: the hazard category of a recurrence.
    pub rule: &'a str,
}

/// Runs both rules for a warning just confirmed real, in the caller's
/// transaction. Returns what happened, for the caller's answer and tests.
pub async fn on_confirmed_real(
    app: &App,
    c: &mut AnyConnection,
    w: Confirmed<'_>,
    now: i64,
) -> Result<Outcome> {
    let since = now - (app.cfg.key_risk.window_days as i64) * 86_400_000;
    // Confirmed-real warnings of the venue in the window, per rule; this
    // one is counted whether or not its row is written yet.
    let rows = sqlx::query(
        "SELECT rule, COUNT(*) AS n FROM warnings \
         WHERE venue_id = $1 AND false_alarm = 0 AND raised_ms >= $2 AND id <> $3 \
         GROUP BY rule",
    )
    .bind(w.venue)
    .bind(since)
    .bind(w.id)
    .fetch_all(&mut *c)
    .await?;
    let (mut at_venue, mut of_rule) = (1i64, 1i64);
    for r in rows {
        let n: i64 = r.try_get("n")?;
        at_venue += n;
        if r.try_get::<String, _>("rule")? == w.rule {
            of_rule += n;
        }
    }
    let threshold = app.cfg.key_risk.alarms as i64;
    let mut out = Outcome::default();
    if at_venue >= threshold {
        out.proposed = propose(app, c, w.venue, at_venue, now).await?;
    }
    out.hazard = recur(app, c, &w, of_rule, threshold, now).await?;
    Ok(out)
}

/// What the rules did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// A 重点风控 proposal was made for the venue.
    pub proposed: bool,
    /// A hazard was opened (`Opened`) or reopened (`Reopened`).
    pub hazard: Option<HazardChange>,
}

/// A hazard the recurrence rule touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HazardChange {
    /// A new hazard, by id.
    Opened(String),
    /// A closed hazard reopened, by id.
    Reopened(String),
}

/// Proposes `venue` for the key-risk list once (in any state a proposal
/// exists, nothing more is done); a person decides.
async fn propose(
    app: &App,
    c: &mut AnyConnection,
    venue: &str,
    alarms: i64,
    now: i64,
) -> Result<bool> {
    let ins = sqlx::query(
        "INSERT INTO key_risk_proposals (venue_id, proposed_ms, alarms, state) VALUES ($1, $2, $3, 'PROPOSED') \
         ON CONFLICT (venue_id) DO NOTHING",
    )
    .bind(venue)
    .bind(now)
    .bind(alarms)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if ins == 1 {
        db::audit(
            c,
            now,
            "system:rules",
            "key_risk",
            venue,
            None,
            "PROPOSED",
            &format!(
                "{alarms} confirmed alarms in {} days (动态隐患多发); a person confirms",
                app.cfg.key_risk.window_days
            ),
        )
        .await?;
    }
    Ok(ins == 1)
}

/// A recurring confirmed alarm: nothing while a hazard of its category is
/// open; the newest closed one reopened; else a new hazard once the rule
/// has `threshold` confirmed alarms in the window.
async fn recur(
    app: &App,
    c: &mut AnyConnection,
    w: &Confirmed<'_>,
    of_rule: i64,
    threshold: i64,
    now: i64,
) -> Result<Option<HazardChange>> {
    let rows = sqlx::query(
        "SELECT id, state FROM hazards WHERE venue_id = $1 AND category = $2 ORDER BY created_ms DESC",
    )
    .bind(w.venue)
    .bind(w.rule)
    .fetch_all(&mut *c)
    .await?;
    let mut latest_closed = None;
    for r in &rows {
        let state: String = r.try_get("state")?;
        if state == "CLOSED" || state == "ARCHIVED" {
            if latest_closed.is_none() {
                latest_closed = Some((r.try_get::<String, _>("id")?, state));
            }
        } else {
            // An open hazard of this category already tracks it.
            return Ok(None);
        }
    }
    if let Some((hid, st)) = latest_closed {
        crate::work::reopen_in(
            c,
            now,
            &hid,
            &st,
            "system:rules",
            &format!(
                "recurrence: alarm {} confirmed real again (warning {})",
                w.rule, w.id
            ),
        )
        .await?;
        return Ok(Some(HazardChange::Reopened(hid)));
    }
    if of_rule < threshold {
        return Ok(None);
    }
    let (id, _) = crate::work::create_hazard(
        c,
        now,
        "system:rules",
        crate::work::NewHazard {
            venue_id: w.venue.to_string(),
            region_id: w.region.map(str::to_string),
            category: w.rule.to_string(),
            title: format!(
                "recurring alarm {}: {of_rule} confirmed in {} days",
                w.rule, app.cfg.key_risk.window_days
            ),
            source: "alarm".into(),
            source_ref: Some(w.id.to_string()),
        },
    )
    .await?;
    Ok(Some(HazardChange::Opened(id)))
}
