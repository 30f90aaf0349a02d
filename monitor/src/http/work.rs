//! Tasks and hazards, 挂牌督办 and sanctions.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::caller::{self, Caller};
use super::{Created, DecideBody, NewState, Q, body, parse};
use crate::db::Columns;
use crate::error::{Error, Result};
use crate::evidence::Subject;
use crate::rows::{Hazard, HazardDetail, Photos, SanctionProposal, Task, TaskDetail};
use crate::web::auth;
use crate::web::data::InRegion;
use crate::{App, evidence, work};

/// The rows of a ledger (tasks or hazards: they are listed and read alike)
/// that the caller sees, newest first, of `?state=` when given.
async fn ledger_rows<T: Columns + InRegion>(
    app: &App,
    caller: &Caller,
    ledger: Subject,
    q: &HashMap<String, String>,
) -> Result<Vec<T>> {
    let mut c = app.db.acquire().await?;
    let rows = work::list(&mut c, ledger.table(), q.get("state").map(String::as_str)).await?;
    caller.only_visible(&mut c, rows).await
}

/// One row of a ledger with its photos, if the caller sees it.
async fn ledger_row<T: Columns + InRegion>(
    app: &App,
    caller: &Caller,
    ledger: Subject,
    id: &str,
) -> Result<(T, Photos)> {
    let mut c = app.db.acquire().await?;
    let row = ledger.row(&mut c, id).await?;
    caller.sees_row(&mut c, &row).await?;
    let photos = evidence::list(&mut c, ledger, id).await?;
    Ok((row, Photos { photos }))
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", operation_id = "list_tasks",
    summary = "Tasks",
    security(("api_token" = []), ("session" = [])),
    params(("state" = Option<String>, Query, description = "Only tasks in this state")),
    responses(
        (status = 200, description = "Task rows, newest first (at most 1000)", body = [crate::rows::Task]),
        crate::openapi::ReadErrors,
    ))]
pub(super) async fn list_tasks(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Task>>> {
    let mut rows: Vec<Task> = ledger_rows(&app, &caller, Subject::Task, &q).await?;
    // The enterprise sees the tasks given to its own people, as in the web.
    if let Some(s) = caller.person().filter(|s| s.role == "enterprise") {
        rows.retain(|t| t.assignee_id == s.person_id);
    }
    Ok(axum::Json(rows))
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", operation_id = "get_task",
    summary = "One task with its evidence",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = crate::rows::TaskDetail),
        crate::openapi::LookupErrors,
    ))]
pub(super) async fn get_task(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<TaskDetail>> {
    let (row, more) = ledger_row(&app, &caller, Subject::Task, &id).await?;
    Ok(axum::Json(TaskDetail { row, more }))
}

#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", operation_id = "create_task",
    summary = "Create a task (ASSIGNED with an assignee, else PLANNED)",
    security(("api_token" = []), ("session" = [])),
    request_body(content = crate::openapi::CreateTask, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = Created),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn create_task(
    State(app): State<App>,
    caller: Caller,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Created>)> {
    caller.require(caller::may_assign, "create tasks")?;
    let v: Value = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let (actor, t) = split_actor::<work::NewTask>(v)?;
    let actor = caller.acts_as("actor", actor.as_deref())?;
    let mut tx = app.db.begin().await?;
    if caller.scoped() {
        place_in_scope(
            &caller,
            &mut tx,
            t.region_id.as_deref(),
            t.venue_id.as_deref(),
        )
        .await?;
    }
    let id = work::create_task(&mut tx, app.now_ms(), &format!("person:{actor}"), t).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// The body's optional `actor` (see [`Caller::acts_as`]) and the rest as `T`.
pub(super) fn split_actor<T: DeserializeOwned>(mut v: Value) -> Result<(Option<String>, T)> {
    let actor = match v.as_object_mut().and_then(|o| o.remove("actor")) {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) => Some(a),
        Some(_) => {
            return Err(Error::BadRequest(
                "JSON body, at actor: the id of the person acting, a string".into(),
            ));
        }
    };
    let t = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        Error::BadRequest(format!("JSON body, at {path}: {}", e.into_inner()))
    })?;
    Ok((actor, t))
}

#[utoipa::path(post, path = "/api/v1/tasks/{id}/transition", tag = "tasks", operation_id = "move_task",
    summary = "Move a task; DONE of a disposal task resolves its warning",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Task id")),
    request_body(content = crate::work::TaskMove, content_type = "application/json"),
    responses(
        (status = 200, description = "Moved; `hazards` lists those opened from failed checklist items", body = TaskMoved),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn move_task(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<TaskMoved>> {
    let mut m: work::TaskMove = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    m.actor = caller.acts_as("actor", Some(&m.actor))?;
    if caller.scoped() {
        let mut c = app.db.acquire().await?;
        let t = work::task(&mut c, &id).await?;
        caller.sees_row(&mut c, &t).await?;
        if let Some(s) = caller.person() {
            let from = t.state.as_str();
            let mine = t.assignee_id.as_deref() == Some(m.actor.as_str());
            s.require(
                auth::may_move_task(&s.role, from, &m.to, mine),
                &format!("move a task {from} → {}", m.to),
            )?;
        }
    }
    let hazards = work::move_task(&app, &id, &m).await?;
    Ok(axum::Json(TaskMoved {
        id,
        state: m.to,
        hazards,
    }))
}

#[utoipa::path(get, path = "/api/v1/hazards", tag = "hazards", operation_id = "list_hazards",
    summary = "Hazards",
    security(("api_token" = []), ("session" = [])),
    params(("state" = Option<String>, Query, description = "Only hazards in this state")),
    responses(
        (status = 200, description = "Hazard rows, newest first (at most 1000)", body = [crate::rows::Hazard]),
        crate::openapi::ReadErrors,
    ))]
pub(super) async fn list_hazards(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Hazard>>> {
    Ok(axum::Json(
        ledger_rows(&app, &caller, Subject::Hazard, &q).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/hazards/{id}", tag = "hazards", operation_id = "get_hazard",
    summary = "One hazard with its evidence",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Hazard id")),
    responses(
        (status = 200, description = "The hazard", body = crate::rows::HazardDetail),
        crate::openapi::LookupErrors,
    ))]
pub(super) async fn get_hazard(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<HazardDetail>> {
    let (row, more) = ledger_row(&app, &caller, Subject::Hazard, &id).await?;
    Ok(axum::Json(HazardDetail { row, more }))
}

#[utoipa::path(post, path = "/api/v1/hazards", tag = "hazards", operation_id = "create_hazard",
    summary = "Create a hazard in DETECTED, or return the open one of the same venue and category",
    security(("api_token" = []), ("session" = [])),
    request_body(content = crate::openapi::CreateHazard, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = HazardCreated),
        (status = 200, description = "An open hazard of the same venue and category exists (`duplicate`)", body = HazardCreated),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn create_hazard(
    State(app): State<App>,
    caller: Caller,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<HazardCreated>)> {
    caller.require(caller::may_report_hazard, "record hazards")?;
    let v: Value = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let (actor, hz) = split_actor::<work::NewHazard>(v)?;
    let actor = caller.acts_as("actor", actor.as_deref())?;
    // A public report's reporter is never stored (举报人 protected).
    let actor = if hz.source == "report" {
        "public".to_string()
    } else {
        format!("person:{actor}")
    };
    let mut tx = app.db.begin().await?;
    if caller.scoped() {
        place_in_scope(
            &caller,
            &mut tx,
            hz.region_id.as_deref(),
            Some(&hz.venue_id),
        )
        .await?;
    }
    let (id, created) = work::create_hazard(&mut tx, app.now_ms(), &actor, hz).await?;
    tx.commit().await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        axum::Json(HazardCreated {
            id,
            duplicate: !created,
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/hazards/{id}/transition", tag = "hazards", operation_id = "move_hazard",
    summary = "Move a hazard; the gate of the target state names the missing fields",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Hazard id")),
    request_body(content = crate::work::HazardMove, content_type = "application/json"),
    responses(
        (status = 200, description = "Moved", body = NewState),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn move_hazard(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<NewState>> {
    let mut m: work::HazardMove = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    m.actor = caller.acts_as("actor", Some(&m.actor))?;
    if caller.scoped() {
        let mut c = app.db.acquire().await?;
        let row = work::hazard(&mut c, &id).await?;
        caller.sees_row(&mut c, &row).await?;
        if let Some(s) = caller.person() {
            let from = row.state.as_str();
            s.require(
                auth::may_move_hazard(&s.role, from, &m.to),
                &format!("move a hazard {from} → {}", m.to),
            )?;
            if m.to == "CLOSED"
                && let Some(level) = row.listed_level.as_deref()
            {
                s.require(
                    level == s.role,
                    &format!("close (摘牌) a hazard listed by the {level} level"),
                )?;
            }
        }
    }
    work::move_hazard(&app, &id, &m).await?;
    Ok(axum::Json(NewState { id, state: m.to }))
}

#[utoipa::path(get, path = "/api/v1/sanctions", tag = "hazards", operation_id = "sanctions",
    summary = "Sanction proposals",
    security(("api_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The proposals, oldest first", body = [crate::rows::SanctionProposal]),
        crate::openapi::ListErrors,
    ))]
pub(super) async fn sanctions(
    State(app): State<App>,
    caller: Caller,
) -> Result<axum::Json<Vec<SanctionProposal>>> {
    caller.require(caller::may_read_records, "read sanction proposals")?;
    Ok(axum::Json(
        sqlx::query_as(&format!(
            "SELECT {} FROM sanction_proposals ORDER BY created_ms, id",
            SanctionProposal::select()
        ))
        .fetch_all(&app.db)
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/sanctions/{id}/decide", tag = "hazards", operation_id = "decide_sanction",
    summary = "The human decision on a sanction proposal",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Proposal id")),
    request_body(content = DecideBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided", body = Decided),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn decide_sanction(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Decided>> {
    caller.require(caller::may_decide, "decide sanctions")?;
    let d: DecideBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", d.person_id.as_deref())?;
    work::decide_sanction(&app, &id, &person, d.accept, &d.reason).await?;
    Ok(axum::Json(Decided {
        id,
        accepted: d.accept,
    }))
}

/// 挂牌督办 of a hazard.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListBody {
    /// The county or city person listing it (registry id).
    /// Required with an operator token; a personal credential (session or
    /// personal token) acts as its own person and may leave it out.
    #[serde(default)]
    person_id: Option<String>,
    /// Why.
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/hazards/{id}/list", tag = "hazards", operation_id = "list_hazard",
    summary = "挂牌督办: a county or city person lists an open hazard at their level",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Hazard id")),
    request_body(content = ListBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Listed", body = Listed),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn list_hazard(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Listed>> {
    caller.require(auth::may_list, "list a hazard (挂牌督办)")?;
    let l: ListBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", l.person_id.as_deref())?;
    if caller.scoped() {
        let mut c = app.db.acquire().await?;
        let row = work::hazard(&mut c, &id).await?;
        caller.sees_row(&mut c, &row).await?;
    }
    let level = work::list_hazard(&app, &id, &person, &l.reason).await?;
    Ok(axum::Json(Listed {
        id,
        listed_level: level,
    }))
}

/// 403 unless the caller oversees every region a new task or hazard
/// names: the one given (the domain files the row there when present) and
/// its venue's (the row is about that venue). Checking only one of them let
/// a person file a task about a venue of their own region into another
/// region, or about another region's venue into their own.
pub(super) async fn place_in_scope(
    caller: &Caller,
    c: &mut sqlx::AnyConnection,
    region: Option<&str>,
    venue: Option<&str>,
) -> Result<()> {
    let venue_region = match venue {
        Some(v) => crate::registry::venue_region(c, v).await?,
        None => None,
    };
    if region.is_none() && venue_region.is_none() {
        // Unplaced (or a venue that does not exist: the domain answers
        // 422 for it): seen only by callers who see unplaced rows.
        return caller.in_scope(c, None).await;
    }
    for r in [region, venue_region.as_deref()].into_iter().flatten() {
        caller.in_scope(c, Some(r)).await?;
    }
    Ok(())
}

/// A sanction decision.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Decided {
    /// The proposal.
    id: String,
    /// Accepted or rejected.
    accepted: bool,
}

/// A moved task.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskMoved {
    /// The task.
    id: String,
    /// Its state now.
    state: String,
    /// Hazards opened from failed checklist items.
    hazards: Vec<String>,
}

/// A created (or deduplicated) hazard.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HazardCreated {
    /// The hazard.
    id: String,
    /// An open hazard of the same venue and category already existed.
    duplicate: bool,
}

/// A listed (挂牌督办) hazard.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Listed {
    /// The hazard.
    id: String,
    /// The level it is listed at (`county` or `city`).
    listed_level: String,
}
