//! Maintenance windows (维护窗口). Planned work on a device (a detector
//! being calibrated with test gas, a crane being serviced) or a whole venue
//! (a power shutdown) sets off the very alarms the system exists to call
//! people about. A window, set from the monitor's API or web by someone
//! responsible for the place, is bounded in time and audited; inside it an
//! alarm still opens its warning, which is recorded and shown with the
//! window that holds it, but its call ladder does not start: nobody is
//! called ([`covering`], used by the warning logic). When the window ends
//! (or is ended early) with the alarm still active, the ladder starts as it
//! would have ([`release`], run by the scheduler): a real danger that
//! outlives the work is not kept silent by it.
//!
//! Windows are deliberately narrow: a device or a venue, never a region;
//! at most [`MAX_DAYS`] long; never in the past; set by the venue's own
//! people (enterprise accounts) or the officers over its region.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::App;
use crate::db::{self, Columns};
use crate::error::{Error, Result};

/// The longest window, in days: longer work is not maintenance, and an
/// open-ended silence is what the issue of blind sites warns against.
pub const MAX_DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;
/// How far ahead a window may be planned.
pub const MAX_AHEAD_DAYS: i64 = 90;
/// Clock skew tolerated for a start "now" sent by a client.
const SKEW_MS: i64 = 5 * 60_000;
/// Audit entity of windows.
const ENTITY: &str = "maintenance";

crate::db::row! {
    /// A maintenance window.
    #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
    pub struct Window {
        /// Window id.
        pub id: String,
        /// The venue.
        pub venue_id: String,
        /// The device (none: the whole venue).
        #[schema(required = true)]
        pub device_id: Option<String>,
        /// The venue's region.
        pub region_id: String,
        /// Start (Unix ms).
        pub starts_ms: i64,
        /// End (Unix ms); moved to the moment it was ended early.
        pub ends_ms: i64,
        /// Why (the work done).
        pub reason: String,
        /// Who set it (`person:<id>`, `user:<account>` or `operator[:name]`).
        pub created_by: String,
        /// When it was set (Unix ms).
        pub created_ms: i64,
        /// Who ended it early.
        #[schema(required = true)]
        pub ended_by: Option<String>,
        /// Why it was ended early.
        #[schema(required = true)]
        pub end_reason: Option<String>,
    }
}

/// What a listed window adds: the warnings it holds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Held {
    /// The warnings whose calls it holds now.
    pub held: Vec<String>,
}

impl Window {
    /// Whether it holds back alarms of `device` at `venue` at `now`.
    pub fn covers(&self, venue: &str, device: &str, now: i64) -> bool {
        self.venue_id == venue
            && self.device_id.as_deref().is_none_or(|d| d == device)
            && self.starts_ms <= now
            && now < self.ends_ms
    }
}

/// A new window (`POST /api/v1/maintenance`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    /// The venue.
    #[schema(min_length = 1)]
    pub venue_id: String,
    /// One device of the venue (leave out for the whole venue).
    #[serde(default)]
    #[schema(min_length = 1)]
    pub device_id: Option<String>,
    /// Start (Unix ms; leave out for now). Not in the past.
    #[serde(default)]
    pub starts_ms: Option<i64>,
    /// End (Unix ms): after the start and now, at most 7 days after the
    /// start.
    pub ends_ms: i64,
    /// The work done (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
}

/// Sets a window; returns it. 404 for an unknown venue; 422 for a device
/// not of the venue, a time in the past, an end before the start, a window
/// longer than [`MAX_DAYS`] or starting more than [`MAX_AHEAD_DAYS`]
/// ahead, an empty or oversized reason; 409 when it overlaps a window of
/// the same device or venue. Audited under `actor`.
pub async fn create(c: &mut AnyConnection, now: i64, actor: &str, w: NewWindow) -> Result<Window> {
    let reason = crate::text::title("reason", &w.reason, 200)?;
    let region = crate::registry::venue_region(c, &w.venue_id)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "venue",
            id: w.venue_id.clone(),
        })?;
    if let Some(d) = &w.device_id {
        let of: Option<String> = sqlx::query_scalar("SELECT venue_id FROM devices WHERE id = $1")
            .bind(d)
            .fetch_optional(&mut *c)
            .await?;
        if of.as_deref() != Some(w.venue_id.as_str()) {
            return Err(Error::Invalid(format!(
                "device_id: {d:?} is not a device of venue {:?}",
                w.venue_id
            )));
        }
    }
    let starts = match w.starts_ms {
        Some(s) if s < now - SKEW_MS => {
            return Err(Error::Invalid(format!(
                "starts_ms: {s} is in the past (now {now}); a window cannot silence what already happened"
            )));
        }
        Some(s) if s > now + MAX_AHEAD_DAYS * DAY_MS => {
            return Err(Error::Invalid(format!(
                "starts_ms: {s} is more than {MAX_AHEAD_DAYS} days ahead"
            )));
        }
        Some(s) => s.max(now),
        None => now,
    };
    if w.ends_ms <= starts {
        return Err(Error::Invalid(format!(
            "ends_ms: {} is not after the start {starts}",
            w.ends_ms
        )));
    }
    if w.ends_ms - starts > MAX_DAYS * DAY_MS {
        return Err(Error::Invalid(format!(
            "ends_ms: a window lasts at most {MAX_DAYS} days; set a new one when the work goes on"
        )));
    }
    // One window at a time per place: a second one over the same device
    // (or the venue, which covers its devices) in the same time would
    // leave it unclear which one ended the silence.
    let overlapping: Option<(String, i64, i64)> = sqlx::query_as(
        "SELECT id, starts_ms, ends_ms FROM maintenance_windows WHERE venue_id = $1 \
         AND (device_id IS NULL OR $2 IS NULL OR device_id = $2) AND starts_ms < $3 AND ends_ms > $4 \
         ORDER BY starts_ms LIMIT 1",
    )
    .bind(&w.venue_id)
    .bind(w.device_id.clone())
    .bind(w.ends_ms)
    .bind(starts)
    .fetch_optional(&mut *c)
    .await?;
    if let Some((other, from, to)) = overlapping {
        return Err(Error::Conflict(format!(
            "starts_ms/ends_ms: overlaps maintenance window {other} ({from} to {to}) of the same place; end it or choose another time"
        )));
    }
    let win = Window {
        id: db::new_id(),
        venue_id: w.venue_id,
        device_id: w.device_id,
        region_id: region,
        starts_ms: starts,
        ends_ms: w.ends_ms,
        reason,
        created_by: actor.to_string(),
        created_ms: now,
        ended_by: None,
        end_reason: None,
    };
    sqlx::query(
        "INSERT INTO maintenance_windows (id, venue_id, device_id, region_id, starts_ms, ends_ms, reason, \
         created_by, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&win.id)
    .bind(&win.venue_id)
    .bind(win.device_id.clone())
    .bind(&win.region_id)
    .bind(win.starts_ms)
    .bind(win.ends_ms)
    .bind(&win.reason)
    .bind(actor)
    .bind(now)
    .execute(&mut *c)
    .await?;
    let scope = match &win.device_id {
        Some(d) => format!("device {d} of venue {}", win.venue_id),
        None => format!("venue {}", win.venue_id),
    };
    db::audit(
        c,
        now,
        actor,
        ENTITY,
        &win.id,
        None,
        "SET",
        &format!(
            "{scope}, {} to {}: {}",
            win.starts_ms, win.ends_ms, win.reason
        ),
    )
    .await?;
    Ok(win)
}

/// One window (404 when unknown).
pub async fn get(c: &mut AnyConnection, id: &str) -> Result<Window> {
    sqlx::query_as(&format!(
        "SELECT {} FROM maintenance_windows WHERE id = $1",
        Window::select()
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| Error::NotFound {
        what: "maintenance window",
        id: id.into(),
    })
}

/// Ends a window now, before its time (409 when it is already over).
/// Audited under `actor` with `reason`. Alarms it held start calling at
/// the scheduler's next tick.
pub async fn end(
    c: &mut AnyConnection,
    now: i64,
    id: &str,
    actor: &str,
    reason: &str,
) -> Result<Window> {
    let reason = crate::text::title("reason", reason, 200)?;
    let w = get(c, id).await?;
    if w.ends_ms <= now {
        return Err(Error::Conflict(format!(
            "maintenance window {id} is already over"
        )));
    }
    // A window not started yet ends at its start: it never was.
    let at = now.max(w.starts_ms);
    let n = sqlx::query(
        "UPDATE maintenance_windows SET ends_ms = $1, ended_by = $2, end_reason = $3 \
         WHERE id = $4 AND ends_ms > $5",
    )
    .bind(at)
    .bind(actor)
    .bind(&reason)
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!(
            "maintenance window {id} ended meanwhile"
        )));
    }
    db::audit(c, now, actor, ENTITY, id, Some("SET"), "ENDED", &reason).await?;
    get(c, id).await
}

/// Windows not over at `now` (current and planned), soonest end first; at
/// most 1000. `all` adds those over, newest first.
pub async fn list(c: &mut AnyConnection, now: i64, all: bool) -> Result<Vec<Window>> {
    let cols = Window::select();
    Ok(if all {
        sqlx::query_as(&format!(
            "SELECT {cols} FROM maintenance_windows ORDER BY created_ms DESC, id LIMIT 1000"
        ))
        .fetch_all(&mut *c)
        .await?
    } else {
        sqlx::query_as(&format!(
            "SELECT {cols} FROM maintenance_windows WHERE ends_ms > $1 ORDER BY ends_ms, id LIMIT 1000"
        ))
        .bind(now)
        .fetch_all(&mut *c)
        .await?
    })
}

/// The windows in force at `now` (what the warning logic checks).
pub async fn active(c: &mut AnyConnection, now: i64) -> Result<Vec<Window>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM maintenance_windows WHERE starts_ms <= $1 AND ends_ms > $1",
        Window::select()
    ))
    .bind(now)
    .fetch_all(&mut *c)
    .await?)
}

/// The window among `windows` that holds back an alarm of `device` at
/// `venue` at `now` (a device's own before its venue's).
pub fn covering<'a>(
    windows: &'a [Window],
    venue: Option<&str>,
    device: &str,
    now: i64,
) -> Option<&'a Window> {
    let venue = venue?;
    let mut hits = windows.iter().filter(|w| w.covers(venue, device, now));
    let first = hits.next()?;
    Some(
        std::iter::once(first)
            .chain(hits)
            .find(|w| w.device_id.is_some())
            .unwrap_or(first),
    )
}

/// A warning whose calls a window holds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hold {
    /// The warning.
    pub warning_id: String,
    /// The window holding it.
    pub window_id: String,
    /// Since when (Unix ms).
    pub held_ms: i64,
}

/// The warnings held now (at most 5000, longest held first).
pub async fn holds(c: &mut AnyConnection) -> Result<Vec<Hold>> {
    let rows = sqlx::query(
        "SELECT warning_id, window_id, held_ms FROM maintenance_holds WHERE window_id IS NOT NULL \
         ORDER BY held_ms, warning_id LIMIT 5000",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Hold {
                warning_id: r.try_get("warning_id")?,
                window_id: r.try_get("window_id")?,
                held_ms: r.try_get("held_ms")?,
            })
        })
        .collect()
}

/// Each window with the warnings it holds.
pub async fn with_holds(
    c: &mut AnyConnection,
    windows: Vec<Window>,
) -> Result<Vec<crate::rows::ListedWindow>> {
    let holds = if windows.is_empty() {
        Vec::new()
    } else {
        holds(c).await?
    };
    Ok(windows
        .into_iter()
        .map(|w| {
            let held = holds
                .iter()
                .filter(|h| h.window_id == w.id)
                .map(|h| h.warning_id.clone())
                .collect();
            crate::rows::ListedWindow {
                row: w,
                more: Held { held },
            }
        })
        .collect())
}

/// Lets go of the warnings whose hold is over (their window ended, or the
/// storm grouping's settle time passed): each one still waiting for an
/// answer and still active at the source starts (or resumes) its call
/// ladder now; one that cleared, was answered or was grouped meanwhile
/// just leaves the hold. Each release is a compare-and-delete of its hold row, so
/// replicas ticking together release it once. Returns how many started
/// calling.
pub async fn release(app: &App, now: i64) -> Result<usize> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT h.warning_id FROM maintenance_holds h \
         WHERE (h.window_id IS NOT NULL AND NOT EXISTS \
                (SELECT 1 FROM maintenance_windows m WHERE m.id = h.window_id AND m.ends_ms > $1)) \
            OR (h.window_id IS NULL AND h.until_ms <= $1) \
         ORDER BY h.held_ms LIMIT 200",
    )
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let mut started = 0;
    for id in ids {
        let mut tx = app.db.begin().await?;
        let gone = sqlx::query("DELETE FROM maintenance_holds WHERE warning_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 1 && crate::warnings::unhold(app, &mut tx, &id, now).await? {
            started += 1;
        }
        tx.commit().await?;
        if gone == 1 {
            app.events
                .publish(crate::events::Event::Warning(id.clone()));
        }
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(id: &str, device: Option<&str>, starts: i64, ends: i64) -> Window {
        Window {
            id: id.into(),
            venue_id: "v1".into(),
            device_id: device.map(str::to_string),
            region_id: "r".into(),
            starts_ms: starts,
            ends_ms: ends,
            reason: "calibration".into(),
            created_by: "person:p".into(),
            created_ms: 0,
            ended_by: None,
            end_reason: None,
        }
    }

    #[test]
    fn a_window_covers_its_place_and_its_time_only() {
        let w = window("a", Some("gas-1"), 100, 200);
        assert!(w.covers("v1", "gas-1", 100));
        assert!(w.covers("v1", "gas-1", 199));
        assert!(!w.covers("v1", "gas-1", 200), "the end is exclusive");
        assert!(!w.covers("v1", "gas-1", 99));
        assert!(!w.covers("v1", "gas-2", 150), "another device");
        assert!(!w.covers("v2", "gas-1", 150), "another venue");
        let venue = window("b", None, 100, 200);
        assert!(venue.covers("v1", "anything", 150));
    }

    #[test]
    fn covering_prefers_the_device_window_and_needs_a_venue() {
        let ws = [
            window("venue", None, 0, 1_000),
            window("dev", Some("gas-1"), 0, 1_000),
        ];
        assert_eq!(
            covering(&ws, Some("v1"), "gas-1", 10).map(|w| w.id.as_str()),
            Some("dev")
        );
        assert_eq!(
            covering(&ws, Some("v1"), "co-1", 10).map(|w| w.id.as_str()),
            Some("venue")
        );
        assert_eq!(
            covering(&ws, None, "gas-1", 10),
            None,
            "an unregistered site has no windows"
        );
        assert_eq!(covering(&ws, Some("v1"), "gas-1", 1_000), None);
    }
}
