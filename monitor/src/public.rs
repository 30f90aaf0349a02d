//! The public side, no token: what the venue's 文旅安全码 page shows (the
//! QR code at the entrance points to it) and the 举报 entry. No personal
//! data is shown or stored: the page has counts and dates only, and a
//! report keeps no reporter identity (不得对举报人进行打击报复). The page
//! itself is rendered in [`crate::web::public`].
//!
//! # Only judged input colours the public code
//!
//! The public code is what visitors and the venue's customers see, so only
//! what a person or a firm rule has judged may change it:
//!
//! * a warning confirmed real always counts; a false alarm never does;
//! * a warning not yet judged counts only if it is a danger reading at
//!   yellow or above: unjudged offline and fault alarms (a dead battery, a
//!   lost link) and blue notices do not colour the public code (they still
//!   show on the duty screen and in the officers' status);
//! * open hazards of the official ledger count (anonymous reports enter
//!   it only once an officer accepts them: [`crate::moderation`]).
//!
//! Every colour other than green comes with its reasons (what, level,
//! date), so the page never shows a red code next to "operation normal"
//! without saying why.
//!
//! A venue whose gateway went silent is never green: with nothing else
//! colouring it, its code is grey ("no data"), with the silence as its
//! reason and its date ([`crate::liveness`]).

use anquan_protocol::Level;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::{Error, Result};
use crate::warnings;

/// What the safety-code page shows.
#[derive(Debug, Clone, Serialize)]
pub struct SafetyCode {
    /// Venue id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Sector.
    pub sector: String,
    /// Address.
    pub address: String,
    /// The code color of the period: the worst of what colours it now and
    /// of the warnings raised in the period that may colour it (see the
    /// module documentation).
    pub color: &'static str,
    /// What colours it now: open warnings that count and open hazards (the
    /// officers' status, `GET /api/v1/venues/{id}/status`, counts every
    /// open warning).
    pub current: &'static str,
    /// The period (`web.code_period`, CST): `2026-W46`, `2026-11`, `2026-Q4`.
    pub period: String,
    /// Open 重大 hazards.
    pub open_major: i64,
    /// Open 一般 hazards (incl. not yet judged).
    pub open_general: i64,
    /// Last done inspection-type task, Unix ms.
    pub last_inspection_ms: Option<i64>,
    /// A hazard of the venue is under 挂牌督办.
    pub listed: bool,
    /// Operation suspended (interim control).
    pub operation_blocked: bool,
    /// Why the code is not green: the warnings and hazards that colour it,
    /// worst first (at most 10).
    pub reasons: Vec<Reason>,
}

/// One thing that colours a public code.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Reason {
    /// `warning` or `hazard`.
    pub source: &'static str,
    /// For a warning, the device kind (`gas`, `electrical`,
    /// `water_pressure`, `crane`); for a hazard, its category.
    pub what: String,
    /// The colour it gives.
    pub color: &'static str,
    /// When it was raised or found, Unix ms.
    pub at_ms: i64,
    /// Still open now (else: earlier in the period).
    pub open: bool,
    /// What to show for `what` (the page puts the catalogue's name in the
    /// reader's language here).
    pub label: String,
}

/// The SQL condition (on `warnings`) of a warning that may colour the
/// public code (see the module documentation).
/// `%offline` takes the devices' `*.offline` rules and the monitor's own
/// `site.gateway_offline`.
const PUBLIC_WARNING: &str = "(false_alarm = 0 OR (false_alarm IS NULL AND level <> 'blue' \
     AND rule NOT LIKE '%offline' AND rule NOT LIKE '%.fault'))";

const RANK: [&str; 5] = ["green", "blue", "yellow", "orange", "red"];

fn worse(a: &'static str, b: &'static str) -> &'static str {
    let r = |c: &str| RANK.iter().position(|x| *x == c).unwrap_or(0);
    if r(b) > r(a) { b } else { a }
}

/// The periods a safety code's color can cover (`web.code_period`).
pub const PERIODS: [&str; 3] = ["week", "month", "quarter"];

/// The period (CST) of kind `kind` that contains `now_ms`: its label
/// (`2026-W46`, `2026-11`, `2026-Q4`) and its start in Unix ms. An unknown
/// kind is taken as `month` (the configuration rejects it before).
pub fn period_of(kind: &str, now_ms: i64) -> (String, i64) {
    use chrono::Datelike;
    let cst = 8 * 3_600_000;
    let d = chrono::DateTime::from_timestamp_millis(now_ms + cst)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let (first, label) = match kind {
        "week" => {
            let w = d.iso_week();
            let back = i64::from(d.weekday().num_days_from_monday());
            (
                d - chrono::Duration::days(back),
                format!("{}-W{:02}", w.year(), w.week()),
            )
        }
        "quarter" => {
            let q = (d.month() - 1) / 3;
            (
                chrono::NaiveDate::from_ymd_opt(d.year(), q * 3 + 1, 1).unwrap_or(d),
                format!("{}-Q{}", d.year(), q + 1),
            )
        }
        _ => (d.with_day(1).unwrap_or(d), d.format("%Y-%m").to_string()),
    };
    let start = first
        .and_hms_opt(0, 0, 0)
        .map_or(now_ms, |t| t.and_utc().timestamp_millis() - cst);
    (label, start)
}

/// The safety-code data of `venue` at `now_ms`, its color over the period
/// of kind `period` (see [`PERIODS`]).
pub async fn safety_code(
    c: &mut AnyConnection,
    venue: &str,
    now_ms: i64,
    period: &str,
) -> Result<SafetyCode> {
    let v = sqlx::query("SELECT name, sector, address, site FROM venues WHERE id = $1")
        .bind(venue)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "venue",
            id: venue.into(),
        })?;
    let st = warnings::venue_status(c, venue).await?;
    let last: Option<i64> = sqlx::query(
        "SELECT MAX(done_ms) AS t FROM tasks WHERE venue_id = $1 AND state = 'DONE' \
         AND kind IN ('inspection', 'patrol', 'grid_visit', 'sampling')",
    )
    .bind(venue)
    .fetch_one(&mut *c)
    .await?
    .try_get("t")?;
    let listed: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM hazards WHERE venue_id = $1 AND listed_level IS NOT NULL \
         AND state NOT IN ('CLOSED', 'ARCHIVED')",
    )
    .bind(venue)
    .fetch_one(&mut *c)
    .await?
    .try_get("n")?;
    let (period, start) = period_of(period, now_ms);
    let mut reasons = Vec::new();
    // Open warnings that count now, and those raised in the period.
    for r in sqlx::query(&format!(
        "SELECT kind, level, max_level, raised_ms, state, clearable FROM warnings \
         WHERE venue_id = $1 AND {PUBLIC_WARNING} \
         AND ((state <> 'RESOLVED' AND clearable = 0) OR raised_ms >= $2)"
    ))
    .bind(venue)
    .bind(start)
    .fetch_all(&mut *c)
    .await?
    {
        let open = r.try_get::<String, _>("state")? != "RESOLVED"
            && r.try_get::<i64, _>("clearable")? == 0;
        let raised: i64 = r.try_get("raised_ms")?;
        // Open: its level now; earlier in the period: the worst it reached.
        let col = if raised >= start {
            "max_level"
        } else {
            "level"
        };
        if let Some(l) = Level::parse(&r.try_get::<String, _>(col)?) {
            let what: String = r.try_get("kind")?;
            reasons.push(Reason {
                source: "warning",
                label: what.clone(),
                what,
                color: l.as_str(),
                at_ms: raised,
                open,
            });
        }
    }
    for h in sqlx::query(
        "SELECT category, severity, created_ms FROM hazards WHERE venue_id = $1 \
         AND state NOT IN ('CLOSED', 'ARCHIVED')",
    )
    .bind(venue)
    .fetch_all(&mut *c)
    .await?
    {
        let major = crate::db::opt_str(&h, "severity")?.as_deref() == Some("major");
        let what: String = h.try_get("category")?;
        reasons.push(Reason {
            source: "hazard",
            label: what.clone(),
            what,
            color: if major { "orange" } else { "yellow" },
            at_ms: h.try_get("created_ms")?,
            open: true,
        });
    }
    let blind = match crate::db::opt_str(&v, "site")? {
        Some(site) => crate::liveness::blind_since(c, &site).await?,
        None => None,
    };
    if let Some(since) = blind {
        reasons.push(Reason {
            source: "no_data",
            what: "no_data".into(),
            label: "no_data".into(),
            color: "grey",
            at_ms: since,
            open: true,
        });
    }
    let rank = |c: &str| RANK.iter().position(|x| *x == c).unwrap_or(0);
    reasons.sort_by(|a, b| {
        rank(b.color)
            .cmp(&rank(a.color))
            .then(b.at_ms.cmp(&a.at_ms))
    });
    // Blind and nothing else: grey, never green.
    let unless_blind = |c: &'static str| {
        if c == "green" && blind.is_some() {
            "grey"
        } else {
            c
        }
    };
    let color = unless_blind(reasons.iter().fold("green", |acc, r| worse(acc, r.color)));
    let current = unless_blind(
        reasons
            .iter()
            .filter(|r| r.open)
            .fold("green", |acc, r| worse(acc, r.color)),
    );
    reasons.truncate(10);
    Ok(SafetyCode {
        id: venue.into(),
        name: v.try_get("name")?,
        sector: v.try_get("sector")?,
        address: v.try_get("address")?,
        color,
        current,
        period,
        open_major: st.open_major_hazards,
        open_general: st.open_general_hazards,
        last_inspection_ms: last,
        listed: listed > 0,
        operation_blocked: st.operation_blocked,
        reasons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_cst() {
        // 2026-11-30T16:30Z is Tuesday 2026-12-01 00:30 CST.
        let now = 1_796_056_200_000;
        let (p, start) = period_of("month", now);
        assert_eq!(p, "2026-12");
        assert_eq!(start, 1_796_054_400_000);
        let (p, start) = period_of("quarter", now);
        assert_eq!(p, "2026-Q4");
        // 2026-10-01 00:00 CST.
        assert_eq!(start, 1_790_784_000_000);
        let (p, start) = period_of("week", now);
        assert_eq!(p, "2026-W49");
        // Monday 2026-11-30 00:00 CST.
        assert_eq!(start, 1_796_054_400_000 - 86_400_000);
        assert_eq!(worse("yellow", "red"), "red");
        assert_eq!(worse("orange", "blue"), "orange");
    }
}
