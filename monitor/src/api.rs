//! The HTTP API (axum). `POST /api/v1/alarms` takes the gateway's bearer
//! token (`auth.intake_tokens`); every other `/api/v1` endpoint takes an
//! operator token (`auth.api_tokens`). Errors are problem+json.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::{App, evidence, intake, notify, registry, reports, warnings, work};

/// The router.
pub fn router(app: App) -> Router {
    let limit = app.cfg.server.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::page))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/alarms", post(alarm))
        .route(
            "/public/venues/{id}",
            get(public_venue)
                .layer(axum::middleware::from_fn(crate::web::html_errors))
                .layer(axum::middleware::map_response(crate::web::security_headers)),
        )
        .route("/public/reports", post(public_report))
        .route("/api/v1/warnings", get(list_warnings))
        .route("/api/v1/warnings/{id}", get(get_warning))
        .route("/api/v1/warnings/{id}/ack", post(ack))
        .route("/api/v1/warnings/{id}/confirm", post(confirm))
        .route("/api/v1/warnings/{id}/resolve", post(resolve))
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
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::metrics::count_db_errors,
        ))
        .with_state(app)
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(h: &HeaderMap) -> Result<&str> {
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

fn body(b: std::result::Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(limit)
        } else {
            Error::BadRequest(format!("cannot read the body: {e}"))
        }
    })
}

fn parse<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(b);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Error::BadRequest(format!("JSON body, at {path}: {}", e.into_inner()))
    })
}

async fn health(State(app): State<App>) -> Result<&'static str> {
    sqlx::query("SELECT 1").execute(&app.db).await?;
    Ok("ok\n")
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::api::OPENAPI,
    )
        .into_response()
}

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

type Q = Query<HashMap<String, String>>;

async fn list_warnings(
    State(app): State<App>,
    h: HeaderMap,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        warnings::list(&mut c, q.get("state").map(String::as_str)).await?,
    ))
}

async fn get_warning(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(warnings::get(&mut c, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    person_id: String,
    #[serde(default)]
    note: String,
}

async fn ack(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let a: AckBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    warnings::ack(&app, &id, &a.person_id, &a.note).await?;
    Ok(axum::Json(json!({"id": id, "state": "ACKED"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    person_id: String,
    false_alarm: bool,
    #[serde(default)]
    assignee_id: Option<String>,
    reason: String,
}

async fn confirm(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let a: ConfirmBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let task = warnings::confirm(
        &app,
        &id,
        &a.person_id,
        a.false_alarm,
        a.assignee_id.as_deref(),
        &a.reason,
    )
    .await?;
    Ok(axum::Json(
        json!({"id": id, "state": if a.false_alarm { "RESOLVED" } else { "DISPOSING" }, "task_id": task}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    person_id: String,
    reason: String,
}

async fn resolve(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let a: ResolveBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    warnings::resolve(&app, &id, &a.person_id, &a.reason).await?;
    Ok(axum::Json(json!({"id": id, "state": "RESOLVED"})))
}

async fn venue_status(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<warnings::VenueStatus>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(warnings::venue_status(&mut c, &id).await?))
}

async fn key_risk_list(State(app): State<App>, h: HeaderMap) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    let rows = sqlx::query(
        "SELECT venue_id, proposed_ms, alarms, state FROM key_risk_proposals ORDER BY proposed_ms",
    )
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| crate::db::row_json(r, &["venue_id", "proposed_ms", "alarms", "state"]))
            .collect::<Result<_>>()?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    person_id: String,
    accept: bool,
    reason: String,
}

async fn key_risk_decide(
    State(app): State<App>,
    h: HeaderMap,
    Path(venue): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let d: DecideBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    warnings::decide_key_risk(&app, &venue, &d.person_id, d.accept, &d.reason).await?;
    Ok(axum::Json(json!({"venue_id": venue, "accepted": d.accept})))
}

async fn registry_list(
    State(app): State<App>,
    h: HeaderMap,
    Path(table): Path<String>,
) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(registry::list(&mut c, &table).await?))
}

async fn registry_put(
    State(app): State<App>,
    h: HeaderMap,
    Path(table): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    operator(&app, &h)?;
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
        "operator",
        "registry",
        &format!("{table}/{id}"),
        None,
        "PUT",
        "registry row written",
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::OK, axum::Json(json!({"id": id}))))
}

async fn registry_delete(
    State(app): State<App>,
    h: HeaderMap,
    Path((table, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    operator(&app, &h)?;
    let mut tx = app.db.begin().await?;
    registry::delete(&mut tx, &table, &id).await?;
    crate::db::audit(
        &mut tx,
        app.now_ms(),
        "operator",
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

async fn list_tasks(
    State(app): State<App>,
    h: HeaderMap,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        work::list(
            &mut c,
            "tasks",
            work::TASK_COLS,
            q.get("state").map(String::as_str),
        )
        .await?,
    ))
}

async fn get_task(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    let mut v = work::get(&mut c, "tasks", "task", work::TASK_COLS, &id).await?;
    evidence::attach(&mut c, &mut v, evidence::Subject::Task, &id).await?;
    Ok(axum::Json(v))
}

async fn create_task(
    State(app): State<App>,
    h: HeaderMap,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    operator(&app, &h)?;
    let v: Value = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let (actor, t) = split_actor::<work::NewTask>(v)?;
    let mut tx = app.db.begin().await?;
    let id = work::create_task(&mut tx, app.now_ms(), &format!("person:{actor}"), t).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id}))))
}

fn split_actor<T: DeserializeOwned>(mut v: Value) -> Result<(String, T)> {
    let actor = v
        .as_object_mut()
        .and_then(|o| o.remove("actor"))
        .and_then(|a| a.as_str().map(str::to_string))
        .ok_or_else(|| Error::BadRequest("actor: give the id of the person acting".into()))?;
    let t = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        Error::BadRequest(format!("JSON body, at {path}: {}", e.into_inner()))
    })?;
    Ok((actor, t))
}

async fn move_task(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let m: work::TaskMove = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let hazards = work::move_task(&app, &id, &m).await?;
    Ok(axum::Json(
        json!({"id": id, "state": m.to, "hazards": hazards}),
    ))
}

async fn list_hazards(
    State(app): State<App>,
    h: HeaderMap,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        work::list(
            &mut c,
            "hazards",
            work::HAZARD_COLS,
            q.get("state").map(String::as_str),
        )
        .await?,
    ))
}

async fn get_hazard(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    let mut v = work::get(&mut c, "hazards", "hazard", work::HAZARD_COLS, &id).await?;
    evidence::attach(&mut c, &mut v, evidence::Subject::Hazard, &id).await?;
    Ok(axum::Json(v))
}

async fn create_hazard(
    State(app): State<App>,
    h: HeaderMap,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    operator(&app, &h)?;
    let v: Value = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let (actor, hz) = split_actor::<work::NewHazard>(v)?;
    // A public report's reporter is never stored (举报人 protected).
    let actor = if hz.source == "report" {
        "public".to_string()
    } else {
        format!("person:{actor}")
    };
    let mut tx = app.db.begin().await?;
    let (id, created) = work::create_hazard(&mut tx, app.now_ms(), &actor, hz).await?;
    tx.commit().await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        axum::Json(json!({"id": id, "duplicate": !created})),
    ))
}

async fn move_hazard(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let m: work::HazardMove = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    work::move_hazard(&app, &id, &m).await?;
    Ok(axum::Json(json!({"id": id, "state": m.to})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccidentBody {
    region_id: String,
    #[serde(default)]
    venue_id: Option<String>,
    at_ms: i64,
    deaths: i64,
    note: String,
}

async fn accident(
    State(app): State<App>,
    h: HeaderMap,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    operator(&app, &h)?;
    let a: AccidentBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    if a.deaths < 0 {
        return Err(Error::Invalid("deaths: must not be negative".into()));
    }
    let id = crate::db::new_id();
    let mut tx = app.db.begin().await?;
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
        "operator",
        "accident",
        &id,
        None,
        "RECORDED",
        &a.note,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"id": id}))))
}

async fn report(
    State(app): State<App>,
    h: HeaderMap,
    Path(period): Path<String>,
    Query(q): Q,
) -> Result<Response> {
    operator(&app, &h)?;
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

async fn list_snapshots(
    State(app): State<App>,
    h: HeaderMap,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    Ok(axum::Json(
        crate::snapshots::list(
            &app,
            q.get("period").map(String::as_str),
            q.get("region").map(String::as_str),
        )
        .await?,
    ))
}

async fn get_snapshot(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response> {
    operator(&app, &h)?;
    let m = crate::snapshots::get(&app, &id).await?;
    render_report(&app, m, q.get("format").map(String::as_str)).await
}

async fn audit(
    State(app): State<App>,
    h: HeaderMap,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    const COLS: &[&str] = &[
        "at_ms",
        "actor",
        "entity",
        "entity_id",
        "from_state",
        "to_state",
        "reason",
    ];
    let rows = sqlx::query(
        "SELECT at_ms, actor, entity, entity_id, from_state, to_state, reason FROM audit \
         WHERE ($1 = '' OR entity_id = $1) ORDER BY id LIMIT 5000",
    )
    .bind(q.get("entity_id").cloned().unwrap_or_default())
    .fetch_all(&app.db)
    .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| crate::db::row_json(r, COLS))
            .collect::<Result<_>>()?,
    ))
}

async fn deliveries(
    State(app): State<App>,
    h: HeaderMap,
    Query(q): Q,
) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        notify::list(&mut c, q.get("subject_id").map(String::as_str)).await?,
    ))
}

async fn sanctions(State(app): State<App>, h: HeaderMap) -> Result<axum::Json<Vec<Value>>> {
    operator(&app, &h)?;
    const COLS: &[&str] = &[
        "id",
        "subject",
        "subject_id",
        "proposal",
        "state",
        "created_ms",
    ];
    let rows = sqlx::query("SELECT id, subject, subject_id, proposal, state, created_ms FROM sanction_proposals ORDER BY created_ms, id")
        .fetch_all(&app.db)
        .await?;
    Ok(axum::Json(
        rows.iter()
            .map(|r| crate::db::row_json(r, COLS))
            .collect::<Result<_>>()?,
    ))
}

async fn decide_sanction(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let d: DecideBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    work::decide_sanction(&app, &id, &d.person_id, d.accept, &d.reason).await?;
    Ok(axum::Json(json!({"id": id, "accepted": d.accept})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListBody {
    person_id: String,
    reason: String,
}

async fn list_hazard(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    operator(&app, &h)?;
    let l: ListBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let level = work::list_hazard(&app, &id, &l.person_id, &l.reason).await?;
    Ok(axum::Json(json!({"id": id, "listed_level": level})))
}

async fn public_venue(
    State(app): State<App>,
    crate::web::UiLang(lang): crate::web::UiLang,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(crate::web::public::venue_page(&app, lang, &id)
        .await?
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicReport {
    venue_id: String,
    category: String,
    description: String,
}

async fn public_report(
    State(app): State<App>,
    client: crate::web::pages::ClientIp,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    app.public_limit.admit(&client.0)?;
    let r: PublicReport = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    if r.description.trim().is_empty() || r.description.chars().count() > 2000 {
        return Err(Error::Invalid(
            "description: say what you saw, in at most 2000 characters".into(),
        ));
    }
    if r.category.trim().is_empty() || r.category.chars().count() > 64 {
        return Err(Error::Invalid("category: 1 to 64 characters".into()));
    }
    let mut tx = app.db.begin().await?;
    // No identity is taken or kept: the actor is "public".
    let (id, created) = work::create_hazard(
        &mut tx,
        app.now_ms(),
        "public",
        work::NewHazard {
            venue_id: r.venue_id,
            region_id: None,
            category: r.category,
            title: r.description,
            source: "report".into(),
            source_ref: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"received": true, "hazard_id": id, "duplicate": !created})),
    ))
}

/// The OpenAPI 3 document (kept next to the routes above; a test checks
/// that every route is in it).
pub const OPENAPI: &str = include_str!("../openapi.json");
