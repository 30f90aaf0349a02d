//! Warnings after intake: acknowledgement, the 叫应 call chain, confirmation
//! (false alarm → resolved; real → disposing with a disposal task), the
//! venue's dynamic color, 重点风控 proposals and recurrence → hazard.

use anquan_protocol::Level;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::db::{self, WARNING, opt_str};
use crate::error::{Error, Result};
use crate::{App, notify, registry};

/// The ordered call list for a warning at `level` in `region`.
pub async fn call_list(
    app: &App,
    c: &mut AnyConnection,
    level: Level,
    region: Option<&str>,
    now: i64,
) -> Result<Vec<String>> {
    registry::call_list(c, &app.cfg.roles_for(level), region, now).await
}

/// Title and body of a warning notice.
pub fn message(
    id: &str,
    level: Level,
    rule: &str,
    device: &str,
    place: &str,
    value: f32,
    threshold: f32,
) -> (String, String) {
    let cn = match level {
        Level::Red => "红色",
        Level::Orange => "橙色",
        Level::Yellow => "黄色",
        Level::Blue => "蓝色",
    };
    (
        format!("[{cn}预警 {level}] {rule} at {place}"),
        format!(
            "Alarm {rule} on device {device} at {place}: value {value}, threshold {threshold}.\n\
             Acknowledge: POST /api/v1/warnings/{id}/ack\nWarning id: {id}\n"
        ),
    )
}

/// Loads a warning row's `state`.
async fn state_of(c: &mut AnyConnection, id: &str) -> Result<sqlx::any::AnyRow> {
    sqlx::query(
        "SELECT id, state, level, venue_id, region_id, rule, device, site, clearable, acked_by FROM warnings WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(Error::NotFound { what: "warning", id: id.into() })
}

/// `POST /warnings/{id}/ack`: RAISED/NOTIFIED → ACKED by `person`.
pub async fn ack(app: &App, id: &str, person: &str, note: &str) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let w = state_of(&mut tx, id).await?;
    let state: String = w.try_get("state")?;
    person_exists(&mut tx, person).await?;
    WARNING
        .transition(
            &mut tx,
            now,
            id,
            &state,
            "ACKED",
            &format!("person:{person}"),
            &format!("acknowledged: {note}"),
        )
        .await?;
    sqlx::query(
        "UPDATE warnings SET acked_ms = $1, acked_by = $2, ack_due_ms = NULL WHERE id = $3",
    )
    .bind(now)
    .bind(person)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    app.live
        .publish(crate::web::live::Change::Warning(id.to_string()));
    Ok(())
}

async fn person_exists(c: &mut AnyConnection, person: &str) -> Result<()> {
    match sqlx::query("SELECT id FROM people WHERE id = $1")
        .bind(person)
        .fetch_optional(&mut *c)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::Invalid(format!(
            "person {person:?} is not in the registry"
        ))),
    }
}

/// `POST /warnings/{id}/confirm`: after ACKED, a person judges it. A false
/// alarm is resolved; a real one goes DISPOSING with a disposal task
/// (deadline by level) assigned to `assignee` (default: whoever acked).
/// Returns the task id.
pub async fn confirm(
    app: &App,
    id: &str,
    person: &str,
    false_alarm: bool,
    assignee: Option<&str>,
    reason: &str,
) -> Result<Option<String>> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let w = state_of(&mut tx, id).await?;
    let state: String = w.try_get("state")?;
    person_exists(&mut tx, person).await?;
    let actor = format!("person:{person}");
    if false_alarm {
        WARNING
            .transition(
                &mut tx,
                now,
                id,
                &state,
                "RESOLVED",
                &actor,
                &format!("false alarm: {reason}"),
            )
            .await?;
        sqlx::query("UPDATE warnings SET false_alarm = 1, resolved_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        app.live
            .publish(crate::web::live::Change::Warning(id.to_string()));
        return Ok(None);
    }
    WARNING
        .transition(
            &mut tx,
            now,
            id,
            &state,
            "DISPOSING",
            &actor,
            &format!("confirmed, not a false alarm: {reason}"),
        )
        .await?;
    sqlx::query("UPDATE warnings SET false_alarm = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let level = Level::parse(&w.try_get::<String, _>("level")?).unwrap_or(Level::Blue);
    let acked_by = opt_str(&w, "acked_by")?;
    let assignee = assignee
        .map(str::to_string)
        .or(acked_by)
        .unwrap_or_else(|| person.to_string());
    person_exists(&mut tx, &assignee).await?;
    let rule: String = w.try_get("rule")?;
    let device: String = w.try_get("device")?;
    let task = crate::work::create_task(
        &mut tx,
        now,
        &actor,
        crate::work::NewTask {
            kind: "disposal".into(),
            title: format!("处置 {level} alarm {rule} on {device}"),
            venue_id: opt_str(&w, "venue_id")?,
            region_id: opt_str(&w, "region_id")?,
            warning_id: Some(id.to_string()),
            level: Some(level.as_str().to_string()),
            assignee_id: Some(assignee),
            due_ms: Some(now + app.cfg.tasks.deadline_ms(level)),
        },
    )
    .await?;
    tx.commit().await?;
    app.live
        .publish(crate::web::live::Change::Warning(id.to_string()));
    Ok(Some(task))
}

/// `POST /warnings/{id}/resolve`: DISPOSING → RESOLVED, when its disposal
/// task is done (or it has none).
pub async fn resolve(app: &App, id: &str, person: &str, reason: &str) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let w = state_of(&mut tx, id).await?;
    let state: String = w.try_get("state")?;
    let open: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM tasks WHERE warning_id = $1 AND state <> 'DONE'")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
    if open > 0 {
        return Err(Error::Conflict(format!(
            "warning {id} has {open} disposal task(s) not DONE; finish them first"
        )));
    }
    resolve_in(
        &mut tx,
        now,
        id,
        &state,
        &format!("person:{person}"),
        reason,
    )
    .await?;
    tx.commit().await?;
    app.live
        .publish(crate::web::live::Change::Warning(id.to_string()));
    Ok(())
}

/// Resolves inside a transaction.
pub async fn resolve_in(
    c: &mut AnyConnection,
    now: i64,
    id: &str,
    state: &str,
    actor: &str,
    reason: &str,
) -> Result<()> {
    WARNING
        .transition(c, now, id, state, "RESOLVED", actor, reason)
        .await?;
    sqlx::query("UPDATE warnings SET resolved_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Marks RAISED → NOTIFIED once a call reached someone.
pub async fn mark_notified(c: &mut AnyConnection, now: i64, id: &str, why: &str) -> Result<()> {
    let n = sqlx::query("UPDATE warnings SET state = 'NOTIFIED', updated_ms = $1 WHERE id = $2 AND state = 'RAISED'")
        .bind(now)
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 1 {
        db::audit(
            c,
            now,
            "system:notifier",
            "warning",
            id,
            Some("RAISED"),
            "NOTIFIED",
            why,
        )
        .await?;
    }
    Ok(())
}

/// The SLA watch: every unacknowledged warning past its ack deadline calls
/// the next person on its list (叫应). Compare-and-set on `notify_rank`,
/// so each step happens once, across restarts and replicas. Returns how
/// many warnings moved on.
pub async fn sla_tick(app: &App, now: i64) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT id FROM warnings WHERE state IN ('RAISED', 'NOTIFIED') AND ack_due_ms IS NOT NULL \
         AND ack_due_ms <= $1 ORDER BY ack_due_ms LIMIT 200",
    )
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let mut moved = 0;
    for r in rows {
        let id: String = r.try_get("id")?;
        if next_call(
            app,
            &id,
            now,
            Trigger::Sla,
            "not acknowledged within the SLA",
        )
        .await?
        {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Why the next person is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The ack deadline passed.
    Sla,
    /// The call to the person at this rank could not be delivered.
    Failed(i64),
}

/// Calls the next person for warning `id` (after an SLA miss or a failed
/// delivery). Returns whether this caller made the move.
pub async fn next_call(app: &App, id: &str, now: i64, trigger: Trigger, why: &str) -> Result<bool> {
    let mut tx = app.db.begin().await?;
    let Some(w) = sqlx::query(
        "SELECT notify_rank, ack_due_ms, level, region_id, venue_id, site, rule, device FROM warnings \
         WHERE id = $1 AND state IN ('RAISED', 'NOTIFIED')",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(false);
    };
    let rank: i64 = w.try_get("notify_rank")?;
    let due: Option<i64> = w.try_get("ack_due_ms")?;
    // Another worker (or replica) may have moved on already: only the
    // trigger that still holds acts.
    match trigger {
        Trigger::Sla if due.is_none_or(|d| d > now) => return Ok(false),
        Trigger::Failed(r) if r != rank => return Ok(false),
        _ => {}
    }
    let level = Level::parse(&w.try_get::<String, _>("level")?).unwrap_or(Level::Blue);
    let region = opt_str(&w, "region_id")?;
    let calls = call_list(app, &mut tx, level, region.as_deref(), now).await?;
    let next = rank + 1;
    let person = calls
        .get(usize::try_from(next).unwrap_or(usize::MAX))
        .cloned();
    let new_due = person.as_ref().map(|_| now + app.cfg.sla.ack_ms(level));
    let n = sqlx::query(
        "UPDATE warnings SET notify_rank = $1, ack_due_ms = $2, updated_ms = $3 \
         WHERE id = $4 AND notify_rank = $5 AND state IN ('RAISED', 'NOTIFIED')",
    )
    .bind(next)
    .bind(new_due)
    .bind(now)
    .bind(id)
    .bind(rank)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Ok(false);
    }
    let prev = calls
        .get(usize::try_from(rank).unwrap_or(usize::MAX))
        .cloned()
        .unwrap_or_default();
    match person {
        Some(p) => {
            let place = opt_str(&w, "venue_id")?.unwrap_or_else(|| "unregistered site".into());
            let (t, b) = message(
                id,
                level,
                &w.try_get::<String, _>("rule")?,
                &w.try_get::<String, _>("device")?,
                &place,
                0.0,
                0.0,
            );
            notify::queue(
                app,
                &mut tx,
                now,
                &format!("warning:{id}:call:{next}"),
                "warning",
                id,
                &p,
                "call",
                &format!("[叫应 #{next}] {t}"),
                &b,
            )
            .await?;
            db::audit(
                &mut tx,
                now,
                "system:scheduler",
                "warning_call",
                id,
                Some(&prev),
                &p,
                &format!("{why}; calling the next person on duty (call {next})"),
            )
            .await?;
        }
        None => {
            db::audit(
                &mut tx,
                now,
                "system:scheduler",
                "warning_call",
                id,
                Some(&prev),
                "EXHAUSTED",
                &format!("{why}; no one else on duty — the call list is exhausted"),
            )
            .await?;
        }
    }
    tx.commit().await?;
    if trigger == Trigger::Sla {
        app.metrics
            .sla_breaches
            .with_label_values(&[level.as_str()])
            .inc();
    }
    Ok(true)
}

/// A venue's dynamic state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VenueStatus {
    /// The venue.
    pub venue_id: String,
    /// `red`, `orange`, `yellow`, `blue` or `green`.
    pub color: &'static str,
    /// Warnings not resolved and not cleared at the source.
    pub active_warnings: i64,
    /// Open 一般 hazards.
    pub open_general_hazards: i64,
    /// Open 重大 hazards.
    pub open_major_hazards: i64,
    /// A hazard under interim control blocks operation (不得组织作业).
    pub operation_blocked: bool,
    /// On the 重点风控 list.
    pub key_risk: bool,
    /// A 重点风控 proposal waits for a decision.
    pub key_risk_proposed: bool,
}

/// The color rule: the highest level among active warnings; an open 重大
/// hazard is at least orange, an open hazard (any, incl. unjudged) at least
/// yellow; else green.
pub fn color(max_active: Option<Level>, major: i64, other: i64) -> &'static str {
    let mut lvl = max_active;
    let floor = if major > 0 {
        Some(Level::Orange)
    } else if other > 0 {
        Some(Level::Yellow)
    } else {
        None
    };
    lvl = match (lvl, floor) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    lvl.map_or("green", Level::as_str)
}

/// Computes a venue's status.
pub async fn venue_status(c: &mut AnyConnection, venue: &str) -> Result<VenueStatus> {
    let v = sqlx::query("SELECT key_risk FROM venues WHERE id = $1")
        .bind(venue)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "venue",
            id: venue.into(),
        })?;
    let key_risk: i64 = v.try_get("key_risk")?;
    let rows = sqlx::query(
        "SELECT level FROM warnings WHERE venue_id = $1 AND state <> 'RESOLVED' AND clearable = 0",
    )
    .bind(venue)
    .fetch_all(&mut *c)
    .await?;
    let mut max: Option<Level> = None;
    for r in &rows {
        if let Some(l) = Level::parse(&r.try_get::<String, _>("level")?) {
            max = Some(max.map_or(l, |m| m.max(l)));
        }
    }
    let hz = sqlx::query("SELECT severity, state FROM hazards WHERE venue_id = $1 AND state NOT IN ('CLOSED', 'ARCHIVED')")
        .bind(venue)
        .fetch_all(&mut *c)
        .await?;
    let (mut major, mut general, mut blocked) = (0, 0, false);
    for h in &hz {
        if opt_str(h, "severity")?.as_deref() == Some("major") {
            major += 1;
        } else {
            general += 1;
        }
        blocked |= h.try_get::<String, _>("state")? == "INTERIM_CONTROL";
    }
    let proposed = sqlx::query(
        "SELECT state FROM key_risk_proposals WHERE venue_id = $1 AND state = 'PROPOSED'",
    )
    .bind(venue)
    .fetch_optional(&mut *c)
    .await?
    .is_some();
    Ok(VenueStatus {
        venue_id: venue.into(),
        color: color(max, major, general),
        active_warnings: rows.len() as i64,
        open_general_hazards: general,
        open_major_hazards: major,
        operation_blocked: blocked,
        key_risk: key_risk != 0,
        key_risk_proposed: proposed,
    })
}

/// Decides a 重点风控 proposal.
pub async fn decide_key_risk(
    app: &App,
    venue: &str,
    person: &str,
    accept: bool,
    reason: &str,
) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    person_exists(&mut tx, person).await?;
    let to = if accept { "ACCEPTED" } else { "REJECTED" };
    let n = sqlx::query(
        "UPDATE key_risk_proposals SET state = $1 WHERE venue_id = $2 AND state = 'PROPOSED'",
    )
    .bind(to)
    .bind(venue)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!(
            "no open 重点风控 proposal for venue {venue}"
        )));
    }
    if accept {
        sqlx::query("UPDATE venues SET key_risk = 1 WHERE id = $1")
            .bind(venue)
            .execute(&mut *tx)
            .await?;
    }
    db::audit(
        &mut tx,
        now,
        &format!("person:{person}"),
        "key_risk",
        venue,
        Some("PROPOSED"),
        to,
        reason,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Columns of the warning JSON.
pub const COLS: &[&str] = &[
    "id",
    "alarm_key",
    "venue_id",
    "region_id",
    "site",
    "device",
    "kind",
    "rule",
    "level",
    "max_level",
    "state",
    "clearable",
    "false_alarm",
    "raised_ms",
    "acked_ms",
    "acked_by",
    "resolved_ms",
    "notify_rank",
    "ack_due_ms",
];

/// Columns of an alarm event in the warning JSON's `events`.
pub const EVENT_COLS: &[&str] = &["event_id", "state", "level", "value", "threshold", "ts_ms"];

/// One warning as JSON with its events.
pub async fn get(c: &mut AnyConnection, id: &str) -> Result<serde_json::Value> {
    let sql = format!("SELECT {} FROM warnings WHERE id = $1", COLS.join(", "));
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "warning",
            id: id.into(),
        })?;
    let mut v = db::row_json(&row, COLS)?;
    let ev = sqlx::query(&format!(
        "SELECT {} FROM alarm_events WHERE warning_id = $1 ORDER BY received_ms, event_id",
        EVENT_COLS.join(", ")
    ))
    .bind(id)
    .fetch_all(&mut *c)
    .await?;
    let events: Vec<_> = ev
        .iter()
        .map(|r| db::row_json(r, EVENT_COLS))
        .collect::<Result<_>>()?;
    if let Some(o) = v.as_object_mut() {
        o.insert("events".into(), events.into());
    }
    Ok(v)
}

/// Warnings, newest first, optionally in one state.
pub async fn list(c: &mut AnyConnection, state: Option<&str>) -> Result<Vec<serde_json::Value>> {
    let sql = format!(
        "SELECT {} FROM warnings WHERE ($1 = '' OR state = $1) ORDER BY raised_ms DESC, id LIMIT 1000",
        COLS.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(state.unwrap_or(""))
        .fetch_all(&mut *c)
        .await?;
    rows.iter().map(|r| db::row_json(r, COLS)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_rule() {
        assert_eq!(color(None, 0, 0), "green");
        assert_eq!(color(Some(Level::Blue), 0, 0), "blue");
        assert_eq!(color(Some(Level::Blue), 0, 1), "yellow");
        assert_eq!(color(None, 1, 0), "orange");
        assert_eq!(color(Some(Level::Red), 1, 0), "red");
        assert_eq!(color(Some(Level::Yellow), 2, 3), "orange");
    }
}
