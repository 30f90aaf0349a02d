//! Reports, their snapshots, and accidents.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::caller::{self, Caller};
use super::{Created, Q, body, parse};
use crate::error::{Error, Result};
use crate::{App, registry, reports};

/// The most deaths one accident record may carry: far above any accident
/// on record, far below what could overflow a sum of them.
pub(super) const MAX_DEATHS: i64 = 10_000;

/// An accident.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AccidentBody {
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
pub(super) async fn accident(
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
pub(super) async fn report(
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
pub(super) async fn list_snapshots(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<crate::rows::SnapshotRow>>> {
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
pub(super) async fn get_snapshot(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response> {
    let m = crate::snapshots::get(&app, &id).await?;
    if caller.scoped() {
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
