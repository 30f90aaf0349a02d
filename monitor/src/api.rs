//! The HTTP API (axum). `POST /api/v1/alarms` and the heartbeat take a
//! gateway's bearer token (`auth.intake_tokens`, `[[auth.gateways]]`);
//! every other `/api/v1` endpoint takes a [`Caller`]: a person (session or
//! personal token) acting as themselves under their role and region, or
//! an operator token naming the person it acts for. Errors are
//! problem+json.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::caller::{self, Caller};
use crate::error::{Error, Result};
use crate::web::auth;
use crate::{App, evidence, intake, notify, registry, reports, warnings, work};

/// The router.
pub fn router(app: App) -> Router {
    let limit = app.cfg.server.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::page))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/alarms", post(alarm))
        .route("/api/v1/gateways/{id}/heartbeat", post(heartbeat))
        .route(
            "/public/venues/{id}",
            get(public_venue)
                .layer(axum::middleware::from_fn(crate::web::html_errors))
                .layer(axum::middleware::map_response(crate::web::security_headers)),
        )
        .route("/public/reports", post(public_report))
        .route("/api/v1/public-reports", get(list_public_reports))
        .route(
            "/api/v1/public-reports/{id}/decide",
            post(decide_public_report),
        )
        .route("/api/v1/me", get(crate::me::whoami))
        .route(
            "/api/v1/me/tokens",
            get(crate::me::list_tokens).post(crate::me::issue_token),
        )
        .route(
            "/api/v1/me/tokens/{id}",
            axum::routing::delete(crate::me::revoke_token),
        )
        .route("/api/v1/warnings", get(list_warnings))
        .route("/api/v1/warnings/{id}", get(get_warning))
        .route("/api/v1/warnings/{id}/ack", post(ack))
        .route("/api/v1/warnings/{id}/confirm", post(confirm))
        .route("/api/v1/warnings/{id}/resolve", post(resolve))
        .route("/api/v1/warnings/{id}/ladder", get(warning_ladder))
        .route("/callbacks/{provider}/{kind}/{token}", post(callback))
        .route("/api/v1/venues/{id}/status", get(venue_status))
        .route("/api/v1/key-risk/proposals", get(key_risk_list))
        .route(
            "/api/v1/key-risk/proposals/{venue}/decide",
            post(key_risk_decide),
        )
        .route(
            "/api/v1/registry/{table}",
            get(registry_list).put(registry_put),
        )
        .route(
            "/api/v1/registry/{table}/{id}",
            axum::routing::delete(registry_delete),
        )
        .route("/api/v1/tasks", get(list_tasks).post(create_task))
        .route("/api/v1/tasks/{id}", get(get_task))
        .route("/api/v1/tasks/{id}/transition", post(move_task))
        .route("/api/v1/hazards", get(list_hazards).post(create_hazard))
        .route("/api/v1/hazards/{id}", get(get_hazard))
        .route("/api/v1/hazards/{id}/transition", post(move_hazard))
        .route("/api/v1/accidents", post(accident))
        .route("/api/v1/reports/{period}", get(report))
        .route("/api/v1/report-snapshots", get(list_snapshots))
        .route("/api/v1/report-snapshots/{id}", get(get_snapshot))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/deliveries", get(deliveries))
        .route("/api/v1/sanctions", get(sanctions))
        .route("/api/v1/sanctions/{id}/decide", post(decide_sanction))
        .route("/api/v1/hazards/{id}/list", post(list_hazard))
        .merge(crate::web::router(crate::evidence::upload_limit(&app)))
        .route(
            "/api/v1/tasks/{id}/evidence",
            get(evidence::list_task)
                .post(evidence::add_task)
                .layer(DefaultBodyLimit::max(evidence::upload_limit(&app))),
        )
        .route(
            "/api/v1/hazards/{id}/evidence",
            get(evidence::list_hazard)
                .post(evidence::add_hazard)
                .layer(DefaultBodyLimit::max(evidence::upload_limit(&app))),
        )
        .route("/api/v1/evidence/{id}", get(evidence::download))
        // Every answer is problem+json, a path or a method the router does
        // not serve included.
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(crate::error::problem_for_plain))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::metrics::count_db_errors,
        ))
        .with_state(app)
}

async fn unknown_route(uri: axum::http::Uri) -> Error {
    Error::NotFound {
        what: "route",
        id: uri.path().to_string(),
    }
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Error {
    Error::MethodNotAllowed(format!(
        "{method} is not served at {}; /api/openapi.json lists the methods of every path",
        uri.path()
    ))
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(h: &HeaderMap) -> Result<&str> {
    let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(Error::Unauthorized("send Authorization: Bearer <token>"));
    };
    v.strip_prefix("Bearer ").ok_or(Error::Unauthorized(
        "the Authorization header must be 'Bearer <token>'",
    ))
}

/// An operator endpoint: one of `auth.api_tokens`.
pub(crate) fn operator(app: &App, h: &HeaderMap) -> Result<()> {
    let token = bearer(h)?;
    // Compare every token in full, so timing does not reveal a prefix.
    let ok = app.cfg.auth.api_tokens.iter().fold(false, |acc, t| {
        acc | crate::gatekeeper::ct_eq(t.as_bytes(), token.as_bytes())
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Unauthorized(
            "unknown token; use one of auth.api_tokens",
        ))
    }
}

pub(crate) fn body(b: std::result::Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(limit)
        } else {
            Error::BadRequest(format!("cannot read the body: {e}"))
        }
    })
}

/// A JSON body as `T`; strings with control characters are refused first
/// (see [`crate::text`]), whatever `T` does with them.
pub(crate) fn parse<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    let mut v: Value = serde_json::from_slice(b)
        .map_err(|e| Error::BadRequest(format!("JSON body: not well-formed JSON: {e}")))?;
    crate::text::check_json(&v)?;
    integral(&mut v);
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        Error::BadRequest(format!("JSON body, at {path}: {}", e.into_inner()))
    })
}

/// Numbers without a fraction as integers (`5.0` → `5`), as JSON Schema
/// counts them: a client that writes every number as a float is not
/// refused where an integer is expected. Fractions and numbers beyond
/// ±2^53 (where a float no longer says which integer it was) stay floats.
fn integral(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= 9_007_199_254_740_992.0
            {
                // In range by the check above: the cast is exact.
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral),
        Value::Object(o) => o.values_mut().for_each(integral),
        _ => {}
    }
}

#[utoipa::path(get, path = "/health", tag = "ops", operation_id = "health",
    summary = "Liveness and database check",
    responses(
        (status = 200, description = "The database answers", body = String, content_type = "text/plain"),
        crate::openapi::Unavailable,
    ))]
async fn health(State(app): State<App>) -> Result<&'static str> {
    sqlx::query("SELECT 1").execute(&app.db).await?;
    Ok("ok\n")
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "ops", operation_id = "openapi",
    summary = "This OpenAPI document (generated from the code with utoipa)",
    responses((status = 200, description = "The document", body = Object)))]
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
        .into_response()
}

#[utoipa::path(post, path = "/api/v1/alarms", tag = "intake", operation_id = "alarm",
    summary = "Alarm intake from the gateway (idempotent on event_id)",
    description = "Takes a gateway token (`[[auth.gateways]]` or `auth.intake_tokens`); a gateway token bound to sites may only send events of those sites (403).",
    security(("intake_token" = [])),
    request_body(content = crate::openapi::AlarmEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or a duplicate of a stored event)", body = crate::intake::Outcome),
        crate::openapi::IntakeErrors,
    ))]
async fn alarm(
    State(app): State<App>,
    h: HeaderMap,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let started = std::time::Instant::now();
    let out = alarm_in(&app, &h, b).await;
    crate::metrics::count_intake(&app.metrics, &out, started.elapsed());
    Ok((StatusCode::OK, axum::Json(out?)).into_response())
}

async fn alarm_in(
    app: &App,
    h: &HeaderMap,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<intake::Outcome> {
    let grant = app.gatekeeper.admit(bearer(h)?)?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let ev = intake::decode(&b)?;
    grant.allow_site(ev.site.as_str())?;
    app.intake.accept(ev).await
}

#[utoipa::path(post, path = "/api/v1/gateways/{id}/heartbeat", tag = "intake", operation_id = "gateway_heartbeat",
    summary = "A gateway's heartbeat: the sites it serves and its state (site liveness)",
    description = "Takes a gateway token; a token bound to a gateway (`[[auth.gateways]]`) may report only for that gateway (its `name`) and its sites (403). Two intervals without a heartbeat make the gateway silent: an orange `site.gateway_offline` warning for each site it serves, and `no_data` on their venues until it is heard again.",
    security(("intake_token" = [])),
    params(("id" = String, Path, description = "The gateway's id (its `gateway.id`)")),
    request_body(content = crate::liveness::Heartbeat, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded", body = crate::liveness::Beat),
        crate::openapi::IntakeErrors,
    ))]
async fn heartbeat(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<crate::liveness::Beat>> {
    let out = heartbeat_in(&app, &h, &id, b).await;
    let result = match &out {
        Ok(_) => Some("accepted"),
        Err(Error::Unauthorized(_) | Error::Forbidden(_)) => Some("refused"),
        Err(Error::Invalid(_) | Error::BadRequest(_) | Error::TooLarge(_)) => Some("invalid"),
        Err(_) => None,
    };
    if let Some(r) = result {
        app.metrics.heartbeats.with_label_values(&[r]).inc();
    }
    if let Err(e) = &out {
        tracing::warn!(gateway = %id, error = %e, "heartbeat refused");
    }
    Ok(axum::Json(out?))
}

async fn heartbeat_in(
    app: &App,
    h: &HeaderMap,
    id: &str,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<crate::liveness::Beat> {
    let grant = app.gatekeeper.admit(bearer(h)?)?;
    grant.allow_gateway(id)?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let hb: crate::liveness::Heartbeat = parse(&b)?;
    for s in &hb.sites {
        grant.allow_site(s)?;
    }
    crate::liveness::beat(app, id, &hb).await
}

type Q = Query<HashMap<String, String>>;

#[utoipa::path(get, path = "/api/v1/warnings", tag = "warnings", operation_id = "list_warnings",
    summary = "Warnings, newest first",
    security(("api_token" = []), ("session" = [])),
    params(("state" = Option<String>, Query, description = "Only warnings in this state (`RAISED`, `NOTIFIED`, `ACKED`, `DISPOSING`, `RESOLVED`)")),
    responses(
        (status = 200, description = "Warning rows", body = [crate::rows::Warning]),
        crate::openapi::ReadErrors,
    ))]
async fn list_warnings(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
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
async fn get_warning(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let mut c = app.db.acquire().await?;
    let w = warnings::get(&mut c, &id).await?;
    caller.sees_row(&mut c, &w).await?;
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
async fn warning_ladder(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<warnings::Rung>>> {
    let mut c = app.db.acquire().await?;
    let w = warnings::get(&mut c, &id).await?;
    caller.sees_row(&mut c, &w).await?;
    Ok(axum::Json(warnings::rungs(&mut c, &id).await?))
}

#[utoipa::path(post, path = "/callbacks/{provider}/{kind}/{token}", tag = "intake", operation_id = "callback",
    summary = "A provider's receipts or SMS replies (the URL given in its console)",
    description = "Alibaba Cloud SMS delivery reports (`aliyun-sms/report`, SmsReport) and replies (`aliyun-sms/reply`, SmsUp), voice call reports (`aliyun-voice/report`, VoiceReport; the key 1 acknowledges), Tencent Cloud SMS status reports (`tencent-sms/report`) and replies (`tencent-sms/reply`). The path token is `notify.callbacks.token` (the providers do not sign callbacks); without one configured every callback is 404. A reply's person is found by the sender's number, the warning by the code.",
    params(
        ("provider" = String, Path, description = "`aliyun-sms`, `aliyun-voice` or `tencent-sms`"),
        ("kind" = String, Path, description = "`report` or `reply`"),
        ("token" = String, Path, description = "`notify.callbacks.token`"),
    ),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Taken: the answer the provider expects (`{\"code\":0,…}` or `{\"result\":0,…}`)", body = Object),
        crate::openapi::WriteErrors,
    ))]
async fn callback(
    State(app): State<App>,
    Path((provider, kind, token)): Path<(String, String, String)>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    crate::callbacks::authorize(&app, &token)?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let done = crate::callbacks::handle(&app, &provider, &kind, &b).await?;
    tracing::info!(%provider, %kind, ?done, "provider callback");
    Ok(axum::Json(crate::callbacks::answer(&provider)))
}

/// Acknowledgement of a warning.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AckBody {
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
async fn ack(
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
struct ConfirmBody {
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
async fn confirm(
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
struct ResolveBody {
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
async fn resolve(
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
async fn venue_status(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<warnings::VenueStatus>> {
    let mut c = app.db.acquire().await?;
    let status = warnings::venue_status(&mut c, &id).await?;
    if caller.person().is_some() {
        let region: Option<String> =
            sqlx::query_scalar("SELECT region_id FROM venues WHERE id = $1")
                .bind(&id)
                .fetch_optional(&mut *c)
                .await?;
        caller.in_scope(&mut c, region.as_deref()).await?;
    }
    Ok(axum::Json(status))
}

/// Columns of the 重点风控 proposal JSON.
pub const KEY_RISK_COLS: &[&str] = &["venue_id", "proposed_ms", "alarms", "state"];

#[utoipa::path(get, path = "/api/v1/key-risk/proposals", tag = "warnings", operation_id = "key_risk_list",
    summary = "重点风控 proposals",
    security(("api_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The proposals, oldest first", body = [crate::rows::KeyRiskProposal]),
        crate::openapi::ListErrors,
    ))]
async fn key_risk_list(State(app): State<App>, caller: Caller) -> Result<axum::Json<Vec<Value>>> {
    caller.require(caller::may_read_records, "read 重点风控 proposals")?;
    let rows = sqlx::query(&format!(
        "SELECT {} FROM key_risk_proposals ORDER BY proposed_ms",
        KEY_RISK_COLS.join(", ")
    ))
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| crate::db::row_json(r, KEY_RISK_COLS))
            .collect::<Result<_>>()?,
    ))
}

/// A human decision on a proposal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    /// The person deciding (registry id).
    /// Required with an operator token; a personal credential (session or
    /// personal token) acts as its own person and may leave it out.
    #[serde(default)]
    person_id: Option<String>,
    /// Accept or reject the proposal.
    accept: bool,
    /// Why.
    reason: String,
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
async fn key_risk_decide(
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

#[utoipa::path(get, path = "/api/v1/registry/{table}", tag = "registry", operation_id = "registry_list",
    summary = "Registry rows of one table",
    security(("api_token" = []), ("session" = [])),
    params(("table" = crate::openapi::RegistryTable, Path, description = "The table")),
    responses(
        (status = 200, description = "The rows; the type is the table's (venues carry `key_risk`, not their coordinates)", body = [crate::rows::RegistryListRow]),
        crate::openapi::LookupErrors,
    ))]
async fn registry_list(
    State(app): State<App>,
    caller: Caller,
    Path(table): Path<String>,
) -> Result<axum::Json<Vec<Value>>> {
    caller.require(caller::may_read_records, "read the registry")?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(registry::list(&mut c, &table).await?))
}

#[utoipa::path(put, path = "/api/v1/registry/{table}", tag = "registry", operation_id = "registry_put",
    summary = "Insert or replace a registry row (audited)",
    description = "The body is a row of `table`: a Region, Venue, Device, Person, Duty, Grid (with its officers), VenuePerson, DutyOverride or Holiday. `grid-people` are written with their grid.",
    security(("api_token" = []), ("session" = [])),
    params(("table" = crate::openapi::RegistryTable, Path, description = "The table")),
    request_body(content = crate::openapi::RegistryRow, content_type = "application/json"),
    responses(
        (status = 200, description = "Written", body = Created),
        crate::openapi::WriteErrors,
    ))]
async fn registry_put(
    State(app): State<App>,
    caller: Caller,
    Path(table): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Created>)> {
    caller.require(caller::may_write_registry, "write the registry")?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let mut tx = app.db.begin().await?;
    let id = match table.as_str() {
        "regions" => {
            let r: registry::Region = parse(&b)?;
            registry::put_region(&mut tx, &r).await?;
            r.id
        }
        "venues" => {
            let v: registry::Venue = parse(&b)?;
            registry::put_venue(&mut tx, &v).await?;
            v.id
        }
        "devices" => {
            let d: registry::Device = parse(&b)?;
            registry::put_device(&mut tx, &d).await?;
            d.id
        }
        "people" => {
            let p: registry::Person = parse(&b)?;
            registry::put_person(&mut tx, &p).await?;
            p.id
        }
        "duty" => {
            let d: registry::Duty = parse(&b)?;
            registry::put_duty(&mut tx, &d).await?
        }
        "grids" => {
            let g: registry::Grid = parse(&b)?;
            registry::put_grid(&mut tx, &g).await?;
            g.id
        }
        "venue-people" => {
            let l: registry::VenuePerson = parse(&b)?;
            registry::put_venue_person(&mut tx, &l).await?
        }
        "duty-overrides" => {
            let o: registry::DutyOverride = parse(&b)?;
            registry::put_duty_override(&mut tx, &o).await?
        }
        "holidays" => {
            let h: registry::Holiday = parse(&b)?;
            registry::put_holiday(&mut tx, &h).await?;
            h.date
        }
        _ => {
            return Err(Error::NotFound {
                what: "registry table",
                id: table,
            });
        }
    };
    crate::db::audit(
        &mut tx,
        app.now_ms(),
        &caller.audit_name(),
        "registry",
        &format!("{table}/{id}"),
        None,
        "PUT",
        "registry row written",
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::OK, axum::Json(Created { id })))
}

#[utoipa::path(delete, path = "/api/v1/registry/{table}/{id}", tag = "registry", operation_id = "registry_delete",
    summary = "Delete a registry row (audited)",
    security(("api_token" = []), ("session" = [])),
    params(
        ("table" = crate::openapi::RegistryTable, Path, description = "The table"),
        ("id" = String, Path, description = "Row id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        crate::openapi::WriteErrors,
    ))]
async fn registry_delete(
    State(app): State<App>,
    caller: Caller,
    Path((table, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    caller.require(caller::may_write_registry, "write the registry")?;
    let mut tx = app.db.begin().await?;
    registry::delete(&mut tx, &table, &id).await?;
    crate::db::audit(
        &mut tx,
        app.now_ms(),
        &caller.audit_name(),
        "registry",
        &format!("{table}/{id}"),
        None,
        "DELETED",
        "registry row deleted",
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", operation_id = "list_tasks",
    summary = "Tasks",
    security(("api_token" = []), ("session" = [])),
    params(("state" = Option<String>, Query, description = "Only tasks in this state")),
    responses(
        (status = 200, description = "Task rows, newest first (at most 1000)", body = [crate::rows::Task]),
        crate::openapi::ReadErrors,
    ))]
async fn list_tasks(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    let mut c = app.db.acquire().await?;
    let rows = work::list(
        &mut c,
        "tasks",
        work::TASK_COLS,
        q.get("state").map(String::as_str),
    )
    .await?;
    let mut rows = caller.only_visible(&mut c, rows).await?;
    // The enterprise sees the tasks given to its own people, as in the web.
    if let Some(s) = caller.person().filter(|s| s.role == "enterprise") {
        rows.retain(|t| t["assignee_id"].as_str() == s.person_id.as_deref());
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
async fn get_task(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let mut c = app.db.acquire().await?;
    let mut v = work::get(&mut c, "tasks", "task", work::TASK_COLS, &id).await?;
    caller.sees_row(&mut c, &v).await?;
    evidence::attach(&mut c, &mut v, evidence::Subject::Task, &id).await?;
    Ok(axum::Json(v))
}

#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", operation_id = "create_task",
    summary = "Create a task (ASSIGNED with an assignee, else PLANNED)",
    security(("api_token" = []), ("session" = [])),
    request_body(content = crate::openapi::CreateTask, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = Created),
        crate::openapi::WriteErrors,
    ))]
async fn create_task(
    State(app): State<App>,
    caller: Caller,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Created>)> {
    caller.require(caller::may_assign, "create tasks")?;
    let v: Value = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let (actor, t) = split_actor::<work::NewTask>(v)?;
    let actor = caller.acts_as("actor", actor.as_deref())?;
    let mut tx = app.db.begin().await?;
    if caller.person().is_some() {
        let region = place_region(&mut tx, t.region_id.as_deref(), t.venue_id.as_deref()).await?;
        caller.in_scope(&mut tx, region.as_deref()).await?;
    }
    let id = work::create_task(&mut tx, app.now_ms(), &format!("person:{actor}"), t).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// The body's optional `actor` (see [`Caller::acts_as`]) and the rest as `T`.
fn split_actor<T: DeserializeOwned>(mut v: Value) -> Result<(Option<String>, T)> {
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
async fn move_task(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<TaskMoved>> {
    let mut m: work::TaskMove = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    m.actor = caller.acts_as("actor", Some(&m.actor))?;
    if let Some(s) = caller.person() {
        let mut c = app.db.acquire().await?;
        let t = work::get(&mut c, "tasks", "task", work::TASK_COLS, &id).await?;
        caller.sees_row(&mut c, &t).await?;
        let from = t["state"].as_str().unwrap_or_default();
        let mine = t["assignee_id"].as_str() == Some(m.actor.as_str());
        s.require(
            auth::may_move_task(&s.role, from, &m.to, mine),
            &format!("move a task {from} → {}", m.to),
        )?;
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
async fn list_hazards(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    let mut c = app.db.acquire().await?;
    let rows = work::list(
        &mut c,
        "hazards",
        work::HAZARD_COLS,
        q.get("state").map(String::as_str),
    )
    .await?;
    Ok(axum::Json(caller.only_visible(&mut c, rows).await?))
}

#[utoipa::path(get, path = "/api/v1/hazards/{id}", tag = "hazards", operation_id = "get_hazard",
    summary = "One hazard with its evidence",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Hazard id")),
    responses(
        (status = 200, description = "The hazard", body = crate::rows::HazardDetail),
        crate::openapi::LookupErrors,
    ))]
async fn get_hazard(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let mut c = app.db.acquire().await?;
    let mut v = work::get(&mut c, "hazards", "hazard", work::HAZARD_COLS, &id).await?;
    caller.sees_row(&mut c, &v).await?;
    evidence::attach(&mut c, &mut v, evidence::Subject::Hazard, &id).await?;
    Ok(axum::Json(v))
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
async fn create_hazard(
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
    if caller.person().is_some() {
        let region = place_region(&mut tx, None, Some(&hz.venue_id)).await?;
        caller.in_scope(&mut tx, region.as_deref()).await?;
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
async fn move_hazard(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<NewState>> {
    let mut m: work::HazardMove = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    m.actor = caller.acts_as("actor", Some(&m.actor))?;
    if let Some(s) = caller.person() {
        let mut c = app.db.acquire().await?;
        let row = work::get(&mut c, "hazards", "hazard", work::HAZARD_COLS, &id).await?;
        caller.sees_row(&mut c, &row).await?;
        let from = row["state"].as_str().unwrap_or_default();
        s.require(
            auth::may_move_hazard(&s.role, from, &m.to),
            &format!("move a hazard {from} → {}", m.to),
        )?;
        if m.to == "CLOSED"
            && let Some(level) = row["listed_level"].as_str()
        {
            s.require(
                level == s.role,
                &format!("close (摘牌) a hazard listed by the {level} level"),
            )?;
        }
    }
    work::move_hazard(&app, &id, &m).await?;
    Ok(axum::Json(NewState { id, state: m.to }))
}

/// The most deaths one accident record may carry: far above any accident
/// on record, far below what could overflow a sum of them.
const MAX_DEATHS: i64 = 10_000;

/// An accident.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccidentBody {
    /// Region.
    region_id: String,
    /// Venue, when known.
    #[serde(default)]
    venue_id: Option<String>,
    /// When, Unix ms.
    at_ms: i64,
    /// Deaths (0 to 10 000).
    #[schema(minimum = 0, maximum = 10000)]
    deaths: i64,
    /// What happened.
    note: String,
}

#[utoipa::path(post, path = "/api/v1/accidents", tag = "reports", operation_id = "accident",
    summary = "Record an accident (for the reports' decline rates)",
    security(("api_token" = []), ("session" = [])),
    request_body(content = AccidentBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = Created),
        crate::openapi::WriteErrors,
    ))]
async fn accident(
    State(app): State<App>,
    caller: Caller,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Created>)> {
    caller.require(caller::may_decide, "record accidents")?;
    let a: AccidentBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    if !(0..=MAX_DEATHS).contains(&a.deaths) {
        return Err(Error::Invalid(format!("deaths: from 0 to {MAX_DEATHS}")));
    }
    let now = app.now_ms();
    if !(anquan_protocol::MIN_TS_MS as i64..=now).contains(&a.at_ms) {
        return Err(Error::Invalid(
            "at_ms: an accident is recorded after it happened: Unix ms from 2000-01-01 up to now"
                .into(),
        ));
    }
    crate::text::free("note", &a.note, 4000)?;
    let id = crate::db::new_id();
    let mut tx = app.db.begin().await?;
    registry::check_place(&mut tx, &a.region_id, a.venue_id.as_deref()).await?;
    caller.in_scope(&mut tx, Some(&a.region_id)).await?;
    sqlx::query("INSERT INTO accidents (id, region_id, venue_id, at_ms, deaths, note) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&id)
        .bind(&a.region_id)
        .bind(a.venue_id.clone())
        .bind(a.at_ms)
        .bind(a.deaths)
        .bind(&a.note)
        .execute(&mut *tx)
        .await?;
    crate::db::audit(
        &mut tx,
        app.now_ms(),
        &caller.audit_name(),
        "accident",
        &id,
        None,
        "RECORDED",
        &a.note,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

#[utoipa::path(get, path = "/api/v1/reports/{period}", tag = "reports", operation_id = "report",
    summary = "Report of a region for one period",
    description = "`format=pdf` is printed by headless Chromium (`reports.chromium`); 503 when it cannot run.",
    security(("api_token" = []), ("session" = [])),
    params(
        ("period" = crate::openapi::Period, Path, description = "The period"),
        ("region" = String, Query, description = "Region id (with its subregions)"),
        ("sector" = Option<String>, Query, description = "Only the venues of this sector"),
        ("date" = Option<String>, Query, description = "A day of the period, YYYY-MM-DD (required unless `month`)"),
        ("month" = Option<String>, Query, description = "monthly only: YYYY-MM instead of `date`"),
        ("format" = Option<crate::openapi::ReportFormat>, Query, description = "Default json"),
    ),
    responses(
        (status = 200, description = "The report", content(
            (crate::reports::Monthly = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
            (crate::openapi::Binary = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (crate::openapi::Binary = "application/pdf"),
        )),
        crate::openapi::ReadErrors,
    ))]
async fn report(
    State(app): State<App>,
    caller: Caller,
    Path(period): Path<String>,
    Query(q): Q,
) -> Result<Response> {
    let region = q
        .get("region")
        .ok_or_else(|| Error::BadRequest("region: give ?region=<id>".into()))?;
    let date = match (q.get("date"), q.get("month")) {
        (Some(d), _) => d.clone(),
        (None, Some(m)) if period == "monthly" => {
            reports::month_bounds(m)?;
            format!("{m}-01")
        }
        _ => {
            return Err(Error::BadRequest(
                "date: give ?date=YYYY-MM-DD (monthly also takes ?month=YYYY-MM)".into(),
            ));
        }
    };
    let mut c = app.db.acquire().await?;
    caller.in_scope(&mut c, Some(region)).await?;
    let sector = q.get("sector").map(String::as_str);
    let m = reports::report_for(&mut c, region, sector, &period, &date).await?;
    drop(c);
    render_report(&app, m, q.get("format").map(String::as_str)).await
}

/// A report in the asked format (default JSON).
/// A report in `format` (json by default): also used by the web.
pub(crate) async fn render_report(
    app: &App,
    m: reports::Monthly,
    format: Option<&str>,
) -> Result<Response> {
    Ok(match format.unwrap_or("json") {
        "csv" => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], m.csv()).into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            m.html(),
        )
            .into_response(),
        "json" => axum::Json(m).into_response(),
        "xlsx" => (
            [
                (header::CONTENT_TYPE, crate::export::XLSX_MIME),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"report.xlsx\"",
                ),
            ],
            crate::export::xlsx(&m)?,
        )
            .into_response(),
        "pdf" => (
            [
                (header::CONTENT_TYPE, "application/pdf"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"report.pdf\"",
                ),
            ],
            crate::export::pdf(&app.cfg.reports, &m.html()).await?,
        )
            .into_response(),
        f => {
            return Err(Error::BadRequest(format!(
                "format: {f:?}; use json, csv, html, xlsx or pdf"
            )));
        }
    })
}

#[utoipa::path(get, path = "/api/v1/report-snapshots", tag = "reports", operation_id = "list_snapshots",
    summary = "Stored report snapshots",
    security(("api_token" = []), ("session" = [])),
    params(
        ("period" = Option<crate::openapi::Period>, Query, description = "Only this period"),
        ("region" = Option<String>, Query, description = "Only this region"),
    ),
    responses(
        (status = 200, description = "Snapshot rows, newest first", body = [crate::rows::SnapshotRow]),
        crate::openapi::ReadErrors,
    ))]
async fn list_snapshots(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    let rows = crate::snapshots::list(
        &app,
        q.get("period").map(String::as_str),
        q.get("region").map(String::as_str),
    )
    .await?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(caller.only_visible(&mut c, rows).await?))
}

#[utoipa::path(get, path = "/api/v1/report-snapshots/{id}", tag = "reports", operation_id = "get_snapshot",
    summary = "One stored report snapshot, in any report format",
    security(("api_token" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "Snapshot id"),
        ("format" = Option<crate::openapi::ReportFormat>, Query, description = "Default json"),
    ),
    responses(
        (status = 200, description = "The report", content(
            (crate::reports::Monthly = "application/json"),
            (String = "text/csv"),
            (String = "text/html"),
            (crate::openapi::Binary = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (crate::openapi::Binary = "application/pdf"),
        )),
        crate::openapi::ReadErrors,
    ))]
async fn get_snapshot(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response> {
    let m = crate::snapshots::get(&app, &id).await?;
    if caller.person().is_some() {
        let region: Option<String> =
            sqlx::query_scalar("SELECT region_id FROM report_snapshots WHERE id = $1")
                .bind(&id)
                .fetch_optional(&app.db)
                .await?;
        caller
            .in_scope(&mut *app.db.acquire().await?, region.as_deref())
            .await?;
    }
    render_report(&app, m, q.get("format").map(String::as_str)).await
}

/// Columns of the audit JSON.
pub const AUDIT_COLS: &[&str] = &[
    "at_ms",
    "actor",
    "entity",
    "entity_id",
    "from_state",
    "to_state",
    "reason",
];

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "audit",
    summary = "The audit trail (at most 5000 rows, oldest first)",
    security(("api_token" = []), ("session" = [])),
    params(("entity_id" = Option<String>, Query, description = "Only rows of this entity")),
    responses(
        (status = 200, description = "Audit rows, oldest first", body = [crate::rows::AuditRow]),
        crate::openapi::ListErrors,
    ))]
async fn audit(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    caller.require(caller::may_read_records, "read the audit trail")?;
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audit WHERE ($1 = '' OR entity_id = $1) ORDER BY id LIMIT 5000",
        AUDIT_COLS.join(", ")
    ))
    .bind(q.get("entity_id").cloned().unwrap_or_default())
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| crate::db::row_json(r, AUDIT_COLS))
            .collect::<Result<_>>()?,
    ))
}

#[utoipa::path(get, path = "/api/v1/deliveries", tag = "audit", operation_id = "deliveries",
    summary = "Notification deliveries and their receipts",
    security(("api_token" = []), ("session" = [])),
    params(("subject_id" = Option<String>, Query, description = "Only deliveries about this warning or task")),
    responses(
        (status = 200, description = "Delivery rows, oldest first (at most 1000)", body = [crate::rows::Delivery]),
        crate::openapi::ListErrors,
    ))]
async fn deliveries(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    caller.require(caller::may_read_records, "read the deliveries")?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        notify::list(&mut c, q.get("subject_id").map(String::as_str)).await?,
    ))
}

/// Columns of the sanction proposal JSON.
pub const SANCTION_COLS: &[&str] = &[
    "id",
    "subject",
    "subject_id",
    "proposal",
    "state",
    "created_ms",
];

#[utoipa::path(get, path = "/api/v1/sanctions", tag = "hazards", operation_id = "sanctions",
    summary = "Sanction proposals",
    security(("api_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The proposals, oldest first", body = [crate::rows::SanctionProposal]),
        crate::openapi::ListErrors,
    ))]
async fn sanctions(State(app): State<App>, caller: Caller) -> Result<axum::Json<Vec<Value>>> {
    caller.require(caller::may_read_records, "read sanction proposals")?;
    let rows = sqlx::query(&format!(
        "SELECT {} FROM sanction_proposals ORDER BY created_ms, id",
        SANCTION_COLS.join(", ")
    ))
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| crate::db::row_json(r, SANCTION_COLS))
            .collect::<Result<_>>()?,
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
async fn decide_sanction(
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
struct ListBody {
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
async fn list_hazard(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Listed>> {
    caller.require(auth::may_list, "list a hazard (挂牌督办)")?;
    let l: ListBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", l.person_id.as_deref())?;
    if caller.person().is_some() {
        let mut c = app.db.acquire().await?;
        let row = work::get(&mut c, "hazards", "hazard", work::HAZARD_COLS, &id).await?;
        caller.sees_row(&mut c, &row).await?;
    }
    let level = work::list_hazard(&app, &id, &person, &l.reason).await?;
    Ok(axum::Json(Listed {
        id,
        listed_level: level,
    }))
}

#[utoipa::path(get, path = "/public/venues/{id}", tag = "public", operation_id = "public_venue",
    summary = "Public 文旅安全码 page of a venue (HTML, no token, no personal data)",
    params(("id" = String, Path, description = "Venue id")),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        crate::openapi::PublicReadErrors,
    ))]
async fn public_venue(
    State(app): State<App>,
    crate::web::UiLang(lang): crate::web::UiLang,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(crate::web::public::venue_page(&app, lang, &id)
        .await?
        .into_response())
}

/// A public hazard report (no identity is taken or kept).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PublicReportBody {
    /// The venue (from its 安全码 page).
    venue_id: String,
    /// What kind of hazard.
    #[schema(example = "fire")]
    category: crate::openapi::ReportCategory,
    /// What was seen.
    #[schema(min_length = 1, max_length = 2000)]
    description: String,
}

#[utoipa::path(post, path = "/public/reports", tag = "public", operation_id = "public_report",
    summary = "A public hazard report (no token; the reporter is not stored; rate-limited per client address)",
    description = "The report waits for an officer's judgement (`/api/v1/public-reports`); only an accepted report enters the hazard ledger and may colour the venue's public code.",
    request_body(content = PublicReportBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Received, waiting for judgement", body = PublicReceipt),
        crate::openapi::PublicWriteErrors,
    ))]
async fn public_report(
    State(app): State<App>,
    client: crate::web::pages::ClientIp,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<PublicReceipt>)> {
    app.public_limit.admit(&client.0)?;
    let r: PublicReportBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let mut tx = app.db.begin().await?;
    let id = crate::moderation::receive(
        &mut tx,
        app.now_ms(),
        &r.venue_id,
        r.category.as_str(),
        &r.description,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(PublicReceipt {
            received: true,
            report_id: id,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/public-reports", tag = "hazards", operation_id = "list_public_reports",
    summary = "Anonymous reports, oldest first (the moderation queue with `state=PENDING`)",
    security(("api_token" = []), ("session" = [])),
    params(("state" = Option<crate::openapi::ReportState>, Query, description = "Only reports in this state")),
    responses(
        (status = 200, description = "The reports", body = [crate::moderation::PublicReport]),
        crate::openapi::ReadErrors,
    ))]
async fn list_public_reports(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<crate::moderation::PublicReport>>> {
    caller.require(
        |r| auth::may_judge_reports(r) || r == "admin",
        "read anonymous reports",
    )?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        crate::moderation::list(&mut c, q.get("state").map(String::as_str)).await?,
    ))
}

/// An officer's judgement of an anonymous report.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReportDecision {
    /// The person judging (registry id).
    /// Required with an operator token; a personal credential (session or
    /// personal token) acts as its own person and may leave it out.
    #[serde(default)]
    person_id: Option<String>,
    /// Accept into the hazard ledger, or reject.
    accept: bool,
    /// The category to file it under (default: the reporter's).
    #[serde(default)]
    category: Option<crate::openapi::ReportCategory>,
    /// Why.
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/public-reports/{id}/decide", tag = "hazards", operation_id = "decide_public_report",
    summary = "Judge an anonymous report: accepted, it becomes a DETECTED hazard; rejected, it stays on record",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Report id")),
    request_body(content = ReportDecision, content_type = "application/json"),
    responses(
        (status = 200, description = "Judged", body = crate::moderation::PublicReport),
        crate::openapi::WriteErrors,
    ))]
async fn decide_public_report(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<crate::moderation::PublicReport>> {
    caller.require(auth::may_judge_reports, "judge anonymous reports")?;
    let d: ReportDecision = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", d.person_id.as_deref())?;
    let mut tx = app.db.begin().await?;
    crate::moderation::decide(
        &mut tx,
        app.now_ms(),
        &id,
        &crate::moderation::Decision {
            person: &person,
            accept: d.accept,
            category: d
                .category
                .as_ref()
                .map(crate::openapi::ReportCategory::as_str),
            reason: &d.reason,
        },
    )
    .await?;
    let out = crate::moderation::get(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(axum::Json(out))
}

/// 403 unless a person caller sees warning `id` (404 if there is none);
/// a machine sees everything.
async fn warning_visible(app: &App, caller: &Caller, id: &str) -> Result<()> {
    if caller.person().is_none() {
        return Ok(());
    }
    let mut c = app.db.acquire().await?;
    let w = warnings::get(&mut c, id).await?;
    caller.sees_row(&mut c, &w).await
}

/// The region a new task or hazard belongs to: its venue's, else the one
/// given.
async fn place_region(
    c: &mut sqlx::AnyConnection,
    region: Option<&str>,
    venue: Option<&str>,
) -> Result<Option<String>> {
    if let Some(v) = venue {
        let r: Option<String> = sqlx::query_scalar("SELECT region_id FROM venues WHERE id = $1")
            .bind(v)
            .fetch_optional(&mut *c)
            .await?;
        if r.is_some() {
            return Ok(r);
        }
    }
    Ok(region.map(str::to_string))
}

/// `{"id", "state"}`: the new state of a warning, task or hazard.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewState {
    /// The warning, task or hazard.
    pub id: String,
    /// Its state now.
    pub state: String,
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

/// The id of the row written.
#[derive(Debug, Serialize, ToSchema)]
struct Created {
    /// Its id.
    id: String,
}

/// A 重点风控 decision.
#[derive(Debug, Serialize, ToSchema)]
struct VenueDecided {
    /// The venue.
    venue_id: String,
    /// Accepted (on the 重点风控 list) or rejected.
    accepted: bool,
}

/// A sanction decision.
#[derive(Debug, Serialize, ToSchema)]
struct Decided {
    /// The proposal.
    id: String,
    /// Accepted or rejected.
    accepted: bool,
}

/// A moved task.
#[derive(Debug, Serialize, ToSchema)]
struct TaskMoved {
    /// The task.
    id: String,
    /// Its state now.
    state: String,
    /// Hazards opened from failed checklist items.
    hazards: Vec<String>,
}

/// A created (or deduplicated) hazard.
#[derive(Debug, Serialize, ToSchema)]
struct HazardCreated {
    /// The hazard.
    id: String,
    /// An open hazard of the same venue and category already existed.
    duplicate: bool,
}

/// A listed (挂牌督办) hazard.
#[derive(Debug, Serialize, ToSchema)]
struct Listed {
    /// The hazard.
    id: String,
    /// The level it is listed at (`county` or `city`).
    listed_level: String,
}

/// The receipt of a public report.
#[derive(Debug, Serialize, ToSchema)]
struct PublicReceipt {
    /// Always true.
    received: bool,
    /// The report, waiting for an officer's judgement.
    report_id: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Counts {
        deaths: i64,
        value: f64,
    }

    #[test]
    fn whole_floats_are_integers() {
        let c: Counts = parse(br#"{"deaths": 5.0, "value": 2}"#).unwrap();
        assert_eq!((c.deaths, c.value), (5, 2.0));
        let e = parse::<Counts>(br#"{"deaths": 5.5, "value": 1}"#).unwrap_err();
        assert!(e.to_string().starts_with("JSON body, at deaths:"), "{e}");
        let e = parse::<Counts>(br#"{"deaths": 1e300, "value": 1}"#).unwrap_err();
        assert!(e.to_string().contains("deaths"), "{e}");
        let mut v = serde_json::json!([1.0, {"a": -3.0, "b": 0.25}]);
        integral(&mut v);
        assert_eq!(v, serde_json::json!([1, {"a": -3, "b": 0.25}]));
    }
}
