//! Warnings: lists, the 叫应 ladder, acknowledgement, confirmation, resolution, venue status and 重点风控.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::{self, Caller};
use super::{DecideBody, NewState, Q, body, parse};
use crate::db::Columns;
use crate::error::Result;
use crate::rows::KeyRiskProposal;
use crate::web::auth;
use crate::{App, warnings};

#[utoipa::path(get, path = "/api/v1/warnings", tag = "warnings", operation_id = "list_warnings",
    summary = "Warnings, newest first",
    security(("api_token" = []), ("session" = [])),
    params(("state" = Option<String>, Query, description = "Only warnings in this state (`RAISED`, `NOTIFIED`, `ACKED`, `DISPOSING`, `RESOLVED`)")),
    responses(
        (status = 200, description = "Warning rows", body = [crate::rows::Warning]),
        crate::openapi::ReadErrors,
    ))]
pub(super) async fn list_warnings(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<crate::rows::Warning>>> {
    let mut c = app.db.acquire().await?;
    let rows = warnings::list(&mut c, q.get("state").map(String::as_str)).await?;
    Ok(axum::Json(caller.only_visible(&mut c, rows).await?))
}

#[utoipa::path(get, path = "/api/v1/warnings/{id}", tag = "warnings", operation_id = "get_warning",
    summary = "One warning with its alarm events",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Warning id")),
    responses(
        (status = 200, description = "The warning", body = crate::rows::WarningDetail),
        crate::openapi::LookupErrors,
    ))]
pub(super) async fn get_warning(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<crate::rows::WarningDetail>> {
    let mut c = app.db.acquire().await?;
    let w = warnings::get(&mut c, &id).await?;
    caller.sees_row(&mut c, &w.row).await?;
    Ok(axum::Json(w))
}

#[utoipa::path(get, path = "/api/v1/warnings/{id}/ladder", tag = "warnings", operation_id = "warning_ladder",
    summary = "The warning's 叫应 ladder: who was called, informed and told of the outcome, when, by which channels",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Warning id")),
    responses(
        (status = 200, description = "The ladder's rungs, oldest first", body = [crate::warnings::Rung]),
        crate::openapi::LookupErrors,
    ))]
pub(super) async fn warning_ladder(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<warnings::Rung>>> {
    let mut c = app.db.acquire().await?;
    let w = warnings::get(&mut c, &id).await?;
    caller.sees_row(&mut c, &w.row).await?;
    Ok(axum::Json(warnings::rungs(&mut c, &id).await?))
}

/// Acknowledgement of a warning.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    /// The person answering (registry id).
    /// Required with an operator token; a personal credential (session or
    /// personal token) acts as its own person and may leave it out.
    #[serde(default)]
    person_id: Option<String>,
    /// Free text.
    #[serde(default)]
    note: String,
}

#[utoipa::path(post, path = "/api/v1/warnings/{id}/ack", tag = "warnings", operation_id = "ack",
    summary = "Acknowledge a warning (叫应 answered)",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Warning id")),
    request_body(content = AckBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Acknowledged", body = NewState),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn ack(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<NewState>> {
    caller.require(auth::may_ack, "acknowledge warnings")?;
    let a: AckBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", a.person_id.as_deref())?;
    warning_visible(&app, &caller, &id).await?;
    warnings::ack(&app, &id, &person, warnings::Via::Api, &a.note).await?;
    Ok(axum::Json(NewState {
        id,
        state: "ACKED".into(),
    }))
}

/// Confirmation of a warning.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfirmBody {
    /// The person confirming (registry id).
    /// Required with an operator token; a personal credential (session or
    /// personal token) acts as its own person and may leave it out.
    #[serde(default)]
    person_id: Option<String>,
    /// A false alarm (→ RESOLVED) or real (→ DISPOSING with a disposal task).
    false_alarm: bool,
    /// Assignee of the disposal task.
    #[serde(default)]
    assignee_id: Option<String>,
    /// Why.
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/warnings/{id}/confirm", tag = "warnings", operation_id = "confirm",
    summary = "Confirm a warning: false alarm → RESOLVED; real → DISPOSING with a disposal task",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Warning id")),
    request_body(content = ConfirmBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Confirmed", body = Confirmed),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn confirm(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Confirmed>> {
    caller.require(auth::may_ack, "confirm warnings")?;
    let a: ConfirmBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", a.person_id.as_deref())?;
    warning_visible(&app, &caller, &id).await?;
    let task = warnings::confirm(
        &app,
        &id,
        &person,
        a.false_alarm,
        a.assignee_id.as_deref(),
        &a.reason,
    )
    .await?;
    Ok(axum::Json(Confirmed {
        id,
        state: if a.false_alarm {
            "RESOLVED"
        } else {
            "DISPOSING"
        }
        .into(),
        task_id: task,
    }))
}

/// Resolution of a warning.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveBody {
    /// The person resolving (registry id).
    /// Required with an operator token; a personal credential (session or
    /// personal token) acts as its own person and may leave it out.
    #[serde(default)]
    person_id: Option<String>,
    /// Why.
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/warnings/{id}/resolve", tag = "warnings", operation_id = "resolve",
    summary = "DISPOSING → RESOLVED (every disposal task must be DONE)",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Warning id")),
    request_body(content = ResolveBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Resolved", body = NewState),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn resolve(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<NewState>> {
    caller.require(auth::may_ack, "resolve warnings")?;
    let a: ResolveBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", a.person_id.as_deref())?;
    warning_visible(&app, &caller, &id).await?;
    warnings::resolve(&app, &id, &person, &a.reason).await?;
    Ok(axum::Json(NewState {
        id,
        state: "RESOLVED".into(),
    }))
}

#[utoipa::path(get, path = "/api/v1/venues/{id}/status", tag = "warnings", operation_id = "venue_status",
    summary = "A venue's dynamic color, active warnings, open hazards, operation_blocked and 重点风控 flags",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Venue id")),
    responses(
        (status = 200, description = "The venue's state", body = crate::warnings::VenueStatus),
        crate::openapi::LookupErrors,
    ))]
pub(super) async fn venue_status(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<warnings::VenueStatus>> {
    let mut c = app.db.acquire().await?;
    let status = warnings::venue_status(&mut c, &id).await?;
    if caller.scoped() {
        let region = crate::registry::venue_region(&mut c, &id).await?;
        caller.in_scope(&mut c, region.as_deref()).await?;
    }
    Ok(axum::Json(status))
}

#[utoipa::path(get, path = "/api/v1/key-risk/proposals", tag = "warnings", operation_id = "key_risk_list",
    summary = "重点风控 proposals",
    security(("api_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The proposals, oldest first", body = [crate::rows::KeyRiskProposal]),
        crate::openapi::ListErrors,
    ))]
pub(super) async fn key_risk_list(
    State(app): State<App>,
    caller: Caller,
) -> Result<axum::Json<Vec<KeyRiskProposal>>> {
    caller.require(caller::may_read_records, "read 重点风控 proposals")?;
    Ok(axum::Json(
        sqlx::query_as(&format!(
            "SELECT {} FROM key_risk_proposals ORDER BY proposed_ms",
            KeyRiskProposal::select()
        ))
        .fetch_all(&app.db)
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/key-risk/proposals/{venue}/decide", tag = "warnings", operation_id = "key_risk_decide",
    summary = "The human decision on a 重点风控 proposal",
    security(("api_token" = []), ("session" = [])),
    params(("venue" = String, Path, description = "Venue id")),
    request_body(content = DecideBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided", body = VenueDecided),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn key_risk_decide(
    State(app): State<App>,
    caller: Caller,
    Path(venue): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<VenueDecided>> {
    caller.require(caller::may_decide, "decide 重点风控 proposals")?;
    let d: DecideBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", d.person_id.as_deref())?;
    warnings::decide_key_risk(&app, &venue, &person, d.accept, &d.reason).await?;
    Ok(axum::Json(VenueDecided {
        venue_id: venue,
        accepted: d.accept,
    }))
}

/// 403 unless a person caller sees warning `id` (404 if there is none);
/// a machine sees everything.
pub(super) async fn warning_visible(app: &App, caller: &Caller, id: &str) -> Result<()> {
    if !caller.scoped() {
        return Ok(());
    }
    let mut c = app.db.acquire().await?;
    let w = warnings::get(&mut c, id).await?;
    caller.sees_row(&mut c, &w.row).await
}

/// A confirmed warning.
#[derive(Debug, Serialize, ToSchema)]
pub struct Confirmed {
    /// The warning.
    pub id: String,
    /// `RESOLVED` (false alarm) or `DISPOSING`.
    pub state: String,
    /// The disposal task opened (none for a false alarm).
    pub task_id: Option<String>,
}

/// A 重点风控 decision.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VenueDecided {
    /// The venue.
    venue_id: String,
    /// Accepted (on the 重点风控 list) or rejected.
    accepted: bool,
}
