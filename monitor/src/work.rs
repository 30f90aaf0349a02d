//! 任务督导, 隐患发现 and 事项催办: tasks, hazards with the spec's gates, and
//! the reminder ladder over every dated item.

use serde::Deserialize;
use sqlx::{AnyConnection, Row};

use crate::db::{self, Columns, HAZARD, TASK, opt_str};
use crate::error::{Error, Result};
use crate::rows::{Hazard, Task};
use crate::{App, notify};

/// A new task.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// `disposal`, `patrol`, `inspection`, `grid_visit`, `dispatch`, `sampling`.
    #[schema(pattern = "^(disposal|patrol|inspection|grid_visit|dispatch|sampling)$")]
    pub kind: String,
    /// Title: one line, 1-200 characters (trimmed).
    #[schema(min_length = 1)]
    pub title: String,
    /// Venue.
    #[serde(default)]
    pub venue_id: Option<String>,
    /// Region (default: the venue's).
    #[serde(default)]
    pub region_id: Option<String>,
    /// The warning it disposes of.
    #[serde(default)]
    pub warning_id: Option<String>,
    /// Level of the warning.
    #[serde(default)]
    pub level: Option<String>,
    /// Assignee: the task starts ASSIGNED; without one, PLANNED.
    #[serde(default)]
    pub assignee_id: Option<String>,
    /// Deadline, Unix ms.
    #[serde(default)]
    pub due_ms: Option<i64>,
}

const TASK_KINDS: [&str; 6] = [
    "disposal",
    "patrol",
    "inspection",
    "grid_visit",
    "dispatch",
    "sampling",
];

/// Creates a task; audited.
pub async fn create_task(
    c: &mut AnyConnection,
    now: i64,
    actor: &str,
    t: NewTask,
) -> Result<String> {
    if !TASK_KINDS.contains(&t.kind.as_str()) {
        return Err(Error::Invalid(format!(
            "kind: unknown task kind {:?}; use one of {TASK_KINDS:?}",
            t.kind
        )));
    }
    let Some(due) = t.due_ms else {
        return Err(Error::Invalid(
            "due_ms: a task needs a deadline (Unix ms)".into(),
        ));
    };
    if due <= now {
        // A deadline already passed would make the task overdue, escalate
        // it and propose sanctions within seconds of its creation.
        return Err(Error::Invalid(format!(
            "due_ms: the deadline {due} is not in the future (now {now})"
        )));
    }
    let title = crate::text::title("title", &t.title, 200)?;
    if let Some(p) = &t.assignee_id {
        crate::registry::check_person(c, "assignee_id", p).await?;
    }
    if let Some(r) = &t.region_id {
        crate::registry::check_region(c, "region_id", r).await?;
    }
    let mut region = t.region_id.clone();
    if let Some(v) = &t.venue_id {
        let r = sqlx::query("SELECT region_id FROM venues WHERE id = $1")
            .bind(v)
            .fetch_optional(&mut *c)
            .await?
            .ok_or_else(|| Error::Invalid(format!("venue_id: venue {v:?} does not exist")))?;
        if region.is_none() {
            region = Some(r.try_get("region_id")?);
        }
    }
    let id = db::new_id();
    let state = if t.assignee_id.is_some() {
        "ASSIGNED"
    } else {
        "PLANNED"
    };
    sqlx::query(
        "INSERT INTO tasks (id, kind, title, venue_id, region_id, warning_id, level, assignee_id, state, \
         due_ms, evidence, created_ms, done_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, NULL, $11)",
    )
    .bind(&id)
    .bind(&t.kind)
    .bind(&title)
    .bind(t.venue_id.clone())
    .bind(region)
    .bind(t.warning_id.clone())
    .bind(t.level.clone())
    .bind(t.assignee_id.clone())
    .bind(state)
    .bind(due)
    .bind(now)
    .execute(&mut *c)
    .await?;
    db::audit(
        c,
        now,
        actor,
        "task",
        &id,
        None,
        state,
        &format!("{} task: {}", t.kind, t.title),
    )
    .await?;
    Ok(id)
}

/// A task transition request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskMove {
    /// Target state (one of [`TASK_STATES`]; the move must be allowed).
    #[schema(pattern = "^(PLANNED|ASSIGNED|IN_PROGRESS|SUBMITTED|REVIEWED|DONE|OVERDUE)$")]
    pub to: String,
    /// The person acting (registry id): required with an operator token;
    /// a personal credential acts as its own person and may leave it out.
    #[serde(default)]
    pub actor: String,
    /// Why.
    pub reason: String,
    /// Assignee (for ASSIGNED).
    #[serde(default)]
    pub assignee_id: Option<String>,
    /// Evidence text / photo reference (required for SUBMITTED).
    #[serde(default)]
    pub evidence: Option<String>,
    /// Checklist answers (with SUBMITTED): every failed item becomes a
    /// hazard of the task's venue (source `checklist`).
    #[serde(default)]
    pub checklist: Vec<ChecklistItem>,
}

/// One checklist answer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// The item (e.g. `2.0/fire.exit`): the hazard category.
    pub item: String,
    /// Passed.
    pub ok: bool,
    /// What was found.
    #[serde(default)]
    pub note: Option<String>,
}

/// Moves a task; DONE of a disposal task resolves its warning. Returns the
/// hazards opened from failed checklist items.
pub async fn move_task(app: &App, id: &str, m: &TaskMove) -> Result<Vec<String>> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let t = sqlx::query("SELECT state, warning_id, assignee_id, venue_id FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound {
            what: "task",
            id: id.into(),
        })?;
    let from: String = t.try_get("state")?;
    let actor = format!("person:{}", m.actor);
    match m.to.as_str() {
        "ASSIGNED" => {
            let Some(a) = &m.assignee_id else {
                return Err(Error::Invalid("assignee_id: required to assign".into()));
            };
            sqlx::query("UPDATE tasks SET assignee_id = $1 WHERE id = $2")
                .bind(a)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        "SUBMITTED" => {
            let Some(e) = m.evidence.as_deref().filter(|e| !e.trim().is_empty()) else {
                return Err(Error::Invalid(
                    "evidence: describe what was done (text or photo reference) to submit".into(),
                ));
            };
            let failed = m.checklist.iter().filter(|c| !c.ok).count();
            let e = if m.checklist.is_empty() {
                e.to_string()
            } else {
                format!(
                    "{e}\nchecklist: {} items, {failed} failed",
                    m.checklist.len()
                )
            };
            sqlx::query("UPDATE tasks SET evidence = $1 WHERE id = $2")
                .bind(e)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        "OVERDUE" => {
            return Err(Error::Conflict(
                "OVERDUE is set by the scheduler, not by hand".into(),
            ));
        }
        _ => {}
    }
    TASK.transition(&mut tx, now, id, &from, &m.to, &actor, &m.reason)
        .await?;
    let mut hazards = Vec::new();
    if m.to == "SUBMITTED" {
        for c in m.checklist.iter().filter(|c| !c.ok) {
            let Some(venue) = opt_str(&t, "venue_id")? else {
                return Err(Error::Invalid(
                    "checklist: the task has no venue to file hazards against".into(),
                ));
            };
            let (h, _) = create_hazard(
                &mut tx,
                now,
                &actor,
                NewHazard {
                    venue_id: venue,
                    region_id: None,
                    category: c.item.clone(),
                    title: c
                        .note
                        .clone()
                        .unwrap_or_else(|| format!("checklist item {} failed", c.item)),
                    source: "checklist".into(),
                    source_ref: Some(id.to_string()),
                },
            )
            .await?;
            hazards.push(h);
        }
    }
    if m.to == "DONE" {
        sqlx::query("UPDATE tasks SET done_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if let Some(w) = opt_str(&t, "warning_id")? {
            let st: Option<String> = sqlx::query("SELECT state FROM warnings WHERE id = $1")
                .bind(&w)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("state"))
                .transpose()?;
            if st.as_deref() == Some("DISPOSING") {
                // Another disposal task still open: the warning waits.
                match crate::warnings::resolve_in(
                    app,
                    &mut tx,
                    now,
                    &w,
                    &actor,
                    &format!("disposal task {id} done"),
                )
                .await
                {
                    Ok(()) | Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    tx.commit().await?;
    if let Some(w) = opt_str(&t, "warning_id")? {
        app.events.publish(crate::events::Event::Warning(w));
    }
    Ok(hazards)
}

/// A new hazard.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHazard {
    /// Venue.
    pub venue_id: String,
    /// Region (default: the venue's).
    #[serde(default)]
    pub region_id: Option<String>,
    /// Category (dedupe key with the venue; for alarms, the rule): one
    /// line, 1-64 characters (trimmed).
    #[schema(min_length = 1)]
    pub category: String,
    /// Title: one line, 1-200 characters (trimmed).
    #[schema(min_length = 1)]
    pub title: String,
    /// `alarm`, `checklist`, `report` (public; the reporter is not stored),
    /// `inspection`, `third_party`.
    #[schema(pattern = "^(alarm|checklist|report|inspection|third_party)$")]
    pub source: String,
    /// Reference (warning, task, checklist item).
    #[serde(default)]
    pub source_ref: Option<String>,
}

const SOURCES: [&str; 5] = ["alarm", "checklist", "report", "inspection", "third_party"];

/// Creates a hazard in DETECTED, or returns the open one of the same venue
/// and category (dedupe). Returns (id, created).
pub async fn create_hazard(
    c: &mut AnyConnection,
    now: i64,
    actor: &str,
    h: NewHazard,
) -> Result<(String, bool)> {
    if !SOURCES.contains(&h.source.as_str()) {
        return Err(Error::Invalid(format!(
            "source: unknown {:?}; use one of {SOURCES:?}",
            h.source
        )));
    }
    crate::text::title("category", &h.category, 64)?;
    let title = crate::text::title("title", &h.title, 200)?;
    if let Some(r) = &h.region_id {
        crate::registry::check_region(c, "region_id", r).await?;
    }
    let v = sqlx::query("SELECT region_id FROM venues WHERE id = $1")
        .bind(&h.venue_id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| {
            Error::Invalid(format!("venue_id: venue {:?} does not exist", h.venue_id))
        })?;
    if let Some(r) = sqlx::query("SELECT id FROM hazards WHERE venue_id = $1 AND category = $2 AND state NOT IN ('CLOSED', 'ARCHIVED')")
        .bind(&h.venue_id)
        .bind(&h.category)
        .fetch_optional(&mut *c)
        .await?
    {
        return Ok((r.try_get("id")?, false));
    }
    let region = match h.region_id {
        Some(r) => r,
        None => v.try_get("region_id")?,
    };
    let id = db::new_id();
    sqlx::query(
        "INSERT INTO hazards (id, venue_id, region_id, category, title, source, source_ref, severity, state, \
         owner_id, problem, measures, standard, responsibility, funds, plan, acceptance_unit, acceptance_record, \
         signer, interim_watcher, penalty_case, due_ms, created_ms, closed_ms, reopened, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, 'DETECTED', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
         NULL, NULL, 0, NULL, $8, NULL, 0, $8)",
    )
    .bind(&id)
    .bind(&h.venue_id)
    .bind(region)
    .bind(&h.category)
    .bind(&title)
    .bind(&h.source)
    .bind(h.source_ref.clone())
    .bind(now)
    .execute(&mut *c)
    .await?;
    db::audit(
        c,
        now,
        actor,
        "hazard",
        &id,
        None,
        "DETECTED",
        &format!("{} ({})", h.title, h.source),
    )
    .await?;
    Ok((id, true))
}

/// Fields a hazard transition may set.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HazardFields {
    /// `general` (一般) or `major` (重大).
    pub severity: Option<String>,
    /// Owner (person).
    pub owner_id: Option<String>,
    /// 问题.
    pub problem: Option<String>,
    /// 措施.
    pub measures: Option<String>,
    /// 标准.
    pub standard: Option<String>,
    /// 责任.
    pub responsibility: Option<String>,
    /// 资金 (major).
    pub funds: Option<String>,
    /// 预案 (major).
    pub plan: Option<String>,
    /// 时限: rectification deadline, Unix ms.
    pub due_ms: Option<i64>,
    /// 牵头验收单位.
    pub acceptance_unit: Option<String>,
    /// Acceptance record (验收记录).
    pub acceptance_record: Option<String>,
    /// Signer (组长 or 牵头领导).
    pub signer: Option<String>,
    /// Named watcher for interim control.
    pub interim_watcher: Option<String>,
    /// A penalty case was opened (执法处罚).
    pub penalty_case: Option<bool>,
}

/// A hazard transition request.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HazardMove {
    /// Target state (one of [`HAZARD_STATES`]; the move must be allowed).
    #[schema(
        pattern = "^(DETECTED|JUDGED|FILED|RECTIFYING|INTERIM_CONTROL|VERIFYING|CLOSED|ARCHIVED|REOPENED)$"
    )]
    pub to: String,
    /// The person acting (registry id): required with an operator token;
    /// a personal credential acts as its own person and may leave it out.
    #[serde(default)]
    pub actor: String,
    /// Why.
    pub reason: String,
    /// Fields set before the gate is checked.
    #[serde(default)]
    pub fields: HazardFields,
}

const TEXT_FIELDS: [&str; 11] = [
    "severity",
    "owner_id",
    "problem",
    "measures",
    "standard",
    "responsibility",
    "funds",
    "plan",
    "acceptance_unit",
    "acceptance_record",
    "signer",
];

/// The gate of `to`: the missing fields (empty = passes).
pub fn gate(
    to: &str,
    from: &str,
    get: &dyn Fn(&str) -> Option<String>,
    due: Option<i64>,
) -> Vec<&'static str> {
    let need: &[&'static str] = match (from, to) {
        (_, "JUDGED") => &["severity"],
        // 立查立改: fixed on the spot, with evidence.
        ("DETECTED", "VERIFYING") => &["problem", "measures", "acceptance_record"],
        (_, "FILED") => &[
            "problem",
            "measures",
            "standard",
            "responsibility",
            "acceptance_unit",
            "owner_id",
        ],
        (_, "INTERIM_CONTROL") => &["interim_watcher", "measures"],
        (_, "CLOSED") => &["acceptance_unit", "acceptance_record", "signer"],
        _ => &[],
    };
    let mut missing: Vec<&'static str> = need
        .iter()
        .copied()
        .filter(|f| get(f).is_none_or(|v| v.trim().is_empty()))
        .collect();
    if to == "JUDGED" && get("severity").is_some_and(|s| s != "general" && s != "major") {
        missing.push("severity (general|major)");
    }
    if to == "FILED" {
        if due.is_none() {
            missing.push("due_ms");
        }
        // 五到位 for 重大: measures, responsibility, funds, time limit, plan.
        if get("severity").as_deref() == Some("major") {
            for f in ["funds", "plan"] {
                if get(f).is_none_or(|v| v.trim().is_empty()) {
                    missing.push(f);
                }
            }
        }
    }
    missing
}

/// Moves a hazard through its lifecycle, checking the gates.
pub async fn move_hazard(app: &App, id: &str, m: &HazardMove) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let from: String = sqlx::query("SELECT state FROM hazards WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound {
            what: "hazard",
            id: id.into(),
        })?
        .try_get("state")?;
    let f = &m.fields;
    let sets: [(&str, &Option<String>); 11] = [
        ("severity", &f.severity),
        ("owner_id", &f.owner_id),
        ("problem", &f.problem),
        ("measures", &f.measures),
        ("standard", &f.standard),
        ("responsibility", &f.responsibility),
        ("funds", &f.funds),
        ("plan", &f.plan),
        ("acceptance_unit", &f.acceptance_unit),
        ("acceptance_record", &f.acceptance_record),
        ("signer", &f.signer),
    ];
    for (col, v) in sets {
        if let Some(v) = v {
            sqlx::query(&format!("UPDATE hazards SET {col} = $1 WHERE id = $2"))
                .bind(v)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(w) = &f.interim_watcher {
        sqlx::query("UPDATE hazards SET interim_watcher = $1 WHERE id = $2")
            .bind(w)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(d) = f.due_ms {
        sqlx::query("UPDATE hazards SET due_ms = $1 WHERE id = $2")
            .bind(d)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(p) = f.penalty_case {
        sqlx::query("UPDATE hazards SET penalty_case = $1 WHERE id = $2")
            .bind(i64::from(p))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let row = sqlx::query(&format!(
        "SELECT {}, interim_watcher, due_ms FROM hazards WHERE id = $1",
        TEXT_FIELDS.join(", ")
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let get = |c: &str| opt_str(&row, c).ok().flatten();
    let due: Option<i64> = row.try_get("due_ms")?;
    let missing = gate(&m.to, &from, &get, due);
    if !missing.is_empty() {
        return Err(Error::Conflict(format!(
            "hazard {id} cannot go {from} → {}: missing {} (四项清单 问题/措施/标准/责任, 牵头验收单位; 重大 adds 五到位 资金/预案/时限; closing needs 验收记录 and a signer)",
            m.to,
            missing.join(", ")
        )));
    }
    if m.to == "CLOSED" {
        let listed = sqlx::query("SELECT listed_level FROM hazards WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(level) = opt_str(&listed, "listed_level")? {
            let role = person_role(&mut tx, &m.actor).await?;
            if role.as_deref() != Some(level.as_str()) {
                return Err(Error::Conflict(format!(
                    "hazard {id} is listed (挂牌督办) by the {level} level; only a {level} person can close (摘牌) it, not {} ({})",
                    m.actor,
                    role.unwrap_or_else(|| "unknown person".into())
                )));
            }
        }
    }
    if m.to == "REOPENED" {
        reopen_in(
            &mut tx,
            now,
            id,
            &from,
            &format!("person:{}", m.actor),
            &m.reason,
        )
        .await?;
    } else {
        HAZARD
            .transition(
                &mut tx,
                now,
                id,
                &from,
                &m.to,
                &format!("person:{}", m.actor),
                &m.reason,
            )
            .await?;
        if m.to == "CLOSED" {
            let listed: Option<String> = opt_str(
                &sqlx::query("SELECT listed_level FROM hazards WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?,
                "listed_level",
            )?;
            if let Some(level) = listed {
                db::audit(
                    &mut tx,
                    now,
                    &format!("person:{}", m.actor),
                    "hazard_listing",
                    id,
                    Some(&level),
                    "DELISTED",
                    "摘牌 on closing",
                )
                .await?;
            }
            sqlx::query("UPDATE hazards SET closed_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    app.events
        .publish(crate::events::Event::Hazard(id.to_string()));
    Ok(())
}

async fn person_role(c: &mut AnyConnection, person: &str) -> Result<Option<String>> {
    Ok(sqlx::query("SELECT role FROM people WHERE id = $1")
        .bind(person)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get::<String, _>("role"))
        .transpose()?)
}

/// 挂牌督办: a county or city person lists an open hazard at their level.
pub async fn list_hazard(app: &App, id: &str, person: &str, reason: &str) -> Result<String> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let level = list_in(&mut tx, now, id, person, reason).await?;
    tx.commit().await?;
    Ok(level)
}

async fn list_in(
    c: &mut AnyConnection,
    now: i64,
    id: &str,
    person: &str,
    reason: &str,
) -> Result<String> {
    let role = person_role(c, person)
        .await?
        .ok_or_else(|| Error::Invalid(format!("person {person:?} is not in the registry")))?;
    if role != "county" && role != "city" {
        return Err(Error::Conflict(format!(
            "挂牌督办 is done by the county or the city; {person} is {role}"
        )));
    }
    let n = sqlx::query(
        "UPDATE hazards SET listed_level = $1, listed_by = $2, updated_ms = $3 \
         WHERE id = $4 AND listed_level IS NULL AND state NOT IN ('CLOSED', 'ARCHIVED')",
    )
    .bind(&role)
    .bind(person)
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!(
            "hazard {id} does not exist, is closed, or is already listed"
        )));
    }
    db::audit(
        c,
        now,
        &format!("person:{person}"),
        "hazard_listing",
        id,
        None,
        &role,
        reason,
    )
    .await?;
    Ok(role)
}

/// Decides a sanction proposal; accepting a 挂牌督办 proposal for a hazard
/// lists it at the deciding person's level.
pub async fn decide_sanction(
    app: &App,
    id: &str,
    person: &str,
    accept: bool,
    reason: &str,
) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let p = sqlx::query("SELECT subject, subject_id, proposal FROM sanction_proposals WHERE id = $1 AND state = 'PROPOSED'")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::Conflict(format!("no open sanction proposal {id}")))?;
    person_role(&mut tx, person)
        .await?
        .ok_or_else(|| Error::Invalid(format!("person {person:?} is not in the registry")))?;
    let to = if accept { "ACCEPTED" } else { "REJECTED" };
    sqlx::query("UPDATE sanction_proposals SET state = $1 WHERE id = $2")
        .bind(to)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    db::audit(
        &mut tx,
        now,
        &format!("person:{person}"),
        "sanction",
        id,
        Some("PROPOSED"),
        to,
        reason,
    )
    .await?;
    let subject: String = p.try_get("subject")?;
    let proposal: String = p.try_get("proposal")?;
    if accept && subject == "hazard" && proposal == "挂牌督办" {
        let hid: String = p.try_get("subject_id")?;
        list_in(&mut tx, now, &hid, person, reason).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Reopens a closed or archived hazard (recurrence): REOPENED, its
/// reminders start again.
pub async fn reopen_in(
    c: &mut AnyConnection,
    now: i64,
    id: &str,
    from: &str,
    actor: &str,
    why: &str,
) -> Result<()> {
    HAZARD
        .transition(c, now, id, from, "REOPENED", actor, why)
        .await?;
    sqlx::query("UPDATE hazards SET reopened = reopened + 1, closed_ms = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM reminders WHERE subject = 'hazard' AND subject_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// One row of `table` (404 naming `what` when there is none).
pub async fn get<T: Columns>(
    c: &mut AnyConnection,
    table: &str,
    what: &'static str,
    id: &str,
) -> Result<T> {
    sqlx::query_as(&format!(
        "SELECT {} FROM {table} WHERE id = $1",
        T::select()
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(Error::NotFound {
        what,
        id: id.into(),
    })
}

/// One task.
pub async fn task(c: &mut AnyConnection, id: &str) -> Result<Task> {
    get(c, "tasks", "task", id).await
}

/// One hazard.
pub async fn hazard(c: &mut AnyConnection, id: &str) -> Result<Hazard> {
    get(c, "hazards", "hazard", id).await
}

/// Every task state.
pub const TASK_STATES: [&str; 7] = [
    "PLANNED",
    "ASSIGNED",
    "IN_PROGRESS",
    "SUBMITTED",
    "REVIEWED",
    "DONE",
    "OVERDUE",
];

/// Every hazard state.
pub const HAZARD_STATES: [&str; 9] = [
    "DETECTED",
    "JUDGED",
    "FILED",
    "RECTIFYING",
    "INTERIM_CONTROL",
    "VERIFYING",
    "CLOSED",
    "ARCHIVED",
    "REOPENED",
];

/// Rows of `table` (`tasks` or `hazards`), newest first, optionally of one
/// state (422 for a state the table does not have: a typo must not read as
/// "nothing there").
pub async fn list<T: Columns>(
    c: &mut AnyConnection,
    table: &str,
    state: Option<&str>,
) -> Result<Vec<T>> {
    let states: &[&str] = if table == "tasks" {
        &TASK_STATES
    } else {
        &HAZARD_STATES
    };
    if let Some(s) = state
        && !states.contains(&s)
    {
        return Err(Error::Invalid(format!(
            "state: unknown {s:?}; use one of {states:?}"
        )));
    }
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM {table} WHERE ($1 = '' OR state = $1) ORDER BY created_ms DESC, id LIMIT 1000",
        T::select()
    ))
    .bind(state.unwrap_or(""))
    .fetch_all(&mut *c)
    .await?)
}

/// One ladder step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Before due: the owner.
    Before,
    /// At due: owner and supervisor.
    Due,
    /// Overdue: the county (tasks become OVERDUE).
    Overdue,
    /// One 15-day node later: the city; propose 约谈/通报.
    Node,
    /// Later: propose 挂牌督办.
    Listing,
}

impl Step {
    /// Name in the `reminders` table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Before => "before",
            Self::Due => "due",
            Self::Overdue => "overdue",
            Self::Node => "node",
            Self::Listing => "listing",
        }
    }
}

/// The steps due at `now` for an item due at `due` (pure; unit-tested).
pub fn ladder(cfg: &crate::config::ReminderConfig, due: i64, now: i64) -> Vec<Step> {
    let h = 3_600_000i64;
    let d = 24 * h;
    let at = [
        (Step::Before, due - cfg.before_h as i64 * h),
        (Step::Due, due),
        (Step::Overdue, due + cfg.overdue_after_h as i64 * h),
        (Step::Node, due + cfg.node_days as i64 * d),
        (Step::Listing, due + cfg.listing_days as i64 * d),
    ];
    at.iter()
        .filter(|(_, t)| *t <= now)
        .map(|(s, _)| *s)
        .collect()
}

/// Walks the ladder for every open dated task and hazard. Each step fires
/// once (primary key of `reminders`, inserted in the same transaction as
/// the messages it queues). Returns the steps fired.
///
/// Reminders go to each person's channels but voice, in their language.
#[allow(clippy::too_many_arguments)]
fn reminder_drafts(
    app: &App,
    dir: &crate::directory::Directory,
    subject: &'static str,
    id: &str,
    person: &str,
    purpose: &str,
    rung: &str,
    title: &str,
    due: i64,
) -> Vec<notify::Draft> {
    use crate::policy::ChannelKind;
    let Some(c) = dir.contact(person) else {
        tracing::warn!(%person, "reminder: person not in the registry");
        return Vec::new();
    };
    let lang = c.lang.unwrap_or_else(|| crate::warnings::default_lang(app));
    let t = crate::messages::reminder(rung, lang, subject, id, title, due);
    c.channels
        .iter()
        .filter(|(k, target)| *k != ChannelKind::Voice && app.notifier.can(*k, target, rung))
        .map(|(k, target)| notify::Draft {
            dedupe: format!("{subject}:{id}:{rung}:{person}:{}", k.as_str()),
            subject,
            subject_id: id.to_string(),
            person: person.to_string(),
            channel: *k,
            target: target.clone(),
            purpose: purpose.to_string(),
            template: rung.to_string(),
            title: t.title.clone(),
            body: if *k == ChannelKind::Sms {
                t.sms.clone()
            } else {
                t.body.clone()
            },
            params: match k {
                ChannelKind::Sms => Some(t.params.clone()),
                k if k.is_robot() => {
                    Some(serde_json::json!({"_mention": c.phone.clone().unwrap_or_default()}))
                }
                _ => None,
            },
            priority: notify::Priority::ROUTINE,
            step: None,
        })
        .collect()
}

pub async fn reminder_tick(app: &App, now: i64) -> Result<usize> {
    let before = app.cfg.reminders.before_h as i64 * 3_600_000;
    let tasks = sqlx::query(
        "SELECT id FROM tasks WHERE state IN ('PLANNED', 'ASSIGNED', 'IN_PROGRESS', 'OVERDUE') AND due_ms - $1 <= $2 ORDER BY due_ms LIMIT 500",
    )
    .bind(before)
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let hazards = sqlx::query(
        "SELECT id FROM hazards WHERE state IN ('FILED', 'RECTIFYING', 'INTERIM_CONTROL', 'REOPENED') AND due_ms IS NOT NULL \
         AND due_ms - $1 <= $2 ORDER BY due_ms LIMIT 500",
    )
    .bind(before)
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let mut fired = 0;
    for (subject, rows) in [("task", tasks), ("hazard", hazards)] {
        for r in rows {
            let id: String = r.try_get("id")?;
            fired += remind_one(app, subject, &id, now).await?;
        }
    }
    Ok(fired)
}

async fn remind_one(app: &App, subject: &'static str, id: &str, now: i64) -> Result<usize> {
    let mut tx = app.db.begin().await?;
    let row = if subject == "task" {
        sqlx::query("SELECT title, region_id, venue_id, assignee_id AS owner_id, due_ms, state FROM tasks WHERE id = $1")
    } else {
        sqlx::query("SELECT title, region_id, venue_id, owner_id, due_ms, state FROM hazards WHERE id = $1")
    }
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let due: i64 = row.try_get::<Option<i64>, _>("due_ms")?.unwrap_or(i64::MAX);
    let title: String = row.try_get("title")?;
    let region = opt_str(&row, "region_id")?;
    let owner = opt_str(&row, "owner_id")?;
    let venue = opt_str(&row, "venue_id")?;
    let state: String = row.try_get("state")?;
    let mut dir = crate::directory::Directory::new();
    let regions: Vec<String> = region.iter().cloned().collect();
    let venues: Vec<String> = venue.iter().cloned().collect();
    dir.load(&mut tx, &venues, &[], &[], &regions, now).await?;
    let mut fired = 0;
    let mut rungs = Vec::new();
    for step in ladder(&app.cfg.reminders, due, now) {
        let ins = sqlx::query(
            "INSERT INTO reminders (subject, subject_id, step, fired_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (subject, subject_id, step) DO NOTHING",
        )
        .bind(subject)
        .bind(id)
        .bind(step.name())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ins != 1 {
            continue;
        }
        fired += 1;
        rungs.push(step.name());
        let mut to: Vec<String> = Vec::new();
        let purpose = match step {
            Step::Before | Step::Due => "reminder",
            _ => "escalation",
        };
        if matches!(step, Step::Before | Step::Due)
            && let Some(o) = &owner
        {
            to.push(o.clone());
        }
        let role = match step {
            Step::Before => None,
            Step::Due => Some("grid_officer"),
            Step::Overdue => Some("county"),
            Step::Node | Step::Listing => Some("city"),
        };
        if let Some(role) = role {
            // The venue's own grid officer first, else the rota's.
            let mut found = if role == "grid_officer" {
                dir.resolve(&crate::policy::Selector::Grid, venue.as_deref(), now)
            } else {
                Vec::new()
            };
            if found.is_empty() {
                found = dir.nearest_on_duty(region.as_deref(), role, now);
            }
            for p in found.into_iter().take(1) {
                if !to.contains(&p) {
                    to.push(p);
                }
            }
        }
        dir.load(&mut tx, &[], &[], &to, &[], now).await?;
        let mut drafts = Vec::new();
        for p in &to {
            drafts.extend(reminder_drafts(
                app,
                &dir,
                subject,
                id,
                p,
                purpose,
                step.name(),
                &title,
                due,
            ));
        }
        notify::queue(&mut tx, now, drafts).await?;
        let text = crate::messages::reminder(
            step.name(),
            crate::messages::Lang::En,
            subject,
            id,
            &title,
            due,
        )
        .title;
        db::audit(
            &mut tx,
            now,
            "system:scheduler",
            &format!("{subject}_reminder"),
            id,
            None,
            step.name(),
            &format!("{text}; notified {to:?}"),
        )
        .await?;
        if step == Step::Overdue && subject == "task" && TASK.allows(&state, "OVERDUE") {
            TASK.transition(
                &mut tx,
                now,
                id,
                &state,
                "OVERDUE",
                "system:scheduler",
                "past its deadline",
            )
            .await?;
        }
        if let Some(p) = match step {
            Step::Node => Some("约谈/通报"),
            Step::Listing => Some("挂牌督办"),
            _ => None,
        } {
            let pid = db::new_id();
            sqlx::query("INSERT INTO sanction_proposals (id, subject, subject_id, proposal, state, created_ms) VALUES ($1, $2, $3, $4, 'PROPOSED', $5)")
                .bind(&pid)
                .bind(subject)
                .bind(id)
                .bind(p)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            db::audit(
                &mut tx,
                now,
                "system:scheduler",
                "sanction",
                &pid,
                None,
                "PROPOSED",
                &format!("{p} for {subject} {id}; a person confirms"),
            )
            .await?;
        }
    }
    tx.commit().await?;
    for r in rungs {
        app.metrics.reminders_fired.with_label_values(&[r]).inc();
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {

    /// The enumerations the schema states are the code's lists.
    #[test]
    fn schema_patterns_are_the_code_lists() {
        use utoipa::PartialSchema;
        let pattern = |schema: utoipa::openapi::RefOr<utoipa::openapi::Schema>, field: &str| {
            let v = serde_json::to_value(schema).unwrap();
            v["properties"][field]["pattern"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let alt = |xs: &[&str]| format!("^({})$", xs.join("|"));
        assert_eq!(pattern(NewTask::schema(), "kind"), alt(&TASK_KINDS));
        assert_eq!(pattern(NewHazard::schema(), "source"), alt(&SOURCES));
        assert_eq!(pattern(TaskMove::schema(), "to"), alt(&TASK_STATES));
        assert_eq!(pattern(HazardMove::schema(), "to"), alt(&HAZARD_STATES));
    }

    use super::*;
    use crate::config::ReminderConfig;

    #[test]
    fn the_ladder_walks_in_order() {
        let c = ReminderConfig::default();
        let due = 100 * 86_400_000i64;
        let h = 3_600_000;
        assert!(ladder(&c, due, due - 73 * h).is_empty());
        assert_eq!(ladder(&c, due, due - 72 * h), [Step::Before]);
        assert_eq!(
            ladder(&c, due, due),
            [Step::Before, Step::Due, Step::Overdue]
        );
        assert_eq!(ladder(&c, due, due + 15 * 24 * h).len(), 4);
        assert_eq!(ladder(&c, due, due + 30 * 24 * h).len(), 5);
    }

    #[test]
    fn gates() {
        let none = |_: &str| None;
        assert_eq!(gate("JUDGED", "DETECTED", &none, None), ["severity"]);
        let four = |f: &str| match f {
            "severity" => Some("general".to_string()),
            "problem" | "measures" | "standard" | "responsibility" | "acceptance_unit"
            | "owner_id" => Some("x".into()),
            _ => None,
        };
        assert!(gate("FILED", "JUDGED", &four, Some(1)).is_empty());
        assert_eq!(gate("FILED", "JUDGED", &four, None), ["due_ms"]);
        let major = |f: &str| {
            if f == "severity" {
                Some("major".to_string())
            } else {
                four(f)
            }
        };
        assert_eq!(gate("FILED", "JUDGED", &major, Some(1)), ["funds", "plan"]);
        assert_eq!(
            gate("CLOSED", "VERIFYING", &four, None),
            ["acceptance_record", "signer"]
        );
        let bad = |f: &str| {
            if f == "severity" {
                Some("huge".to_string())
            } else {
                None
            }
        };
        assert_eq!(
            gate("JUDGED", "DETECTED", &bad, None),
            ["severity (general|major)"]
        );
    }
}
