//! The HTTP API (axum), one module per resource: the router, the body
//! and error helpers every handler shares, and the answers they have in
//! common. `POST /api/v1/alarms` and the heartbeat take a gateway's bearer
//! token ([`intake`]); every other `/api/v1` endpoint takes a
//! [`caller::Caller`]: a person (session or personal token) acting as
//! themselves under their role and region, or an operator token naming the
//! person it acts for. Every answer is problem+json on error.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::{App, evidence};

pub mod audit;
pub mod caller;
pub mod intake;
pub mod maintenance;
pub mod me;
pub mod public;
pub mod registry;
pub mod reports;
pub mod storms;
pub mod warnings;
pub mod work;

/// The router.
pub fn router(app: App) -> Router {
    let limit = app.cfg.server.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::metrics::page))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/alarms", post(intake::alarm))
        .route("/api/v1/gateways/{id}/heartbeat", post(intake::heartbeat))
        .route(
            "/public/venues/{id}",
            get(public::public_venue)
                .layer(axum::middleware::from_fn(crate::web::html_errors))
                .layer(axum::middleware::map_response(crate::web::security_headers)),
        )
        .route("/public/reports", post(public::public_report))
        .route("/api/v1/public-reports", get(public::list_public_reports))
        .route(
            "/api/v1/public-reports/{id}/decide",
            post(public::decide_public_report),
        )
        .route("/api/v1/me", get(me::whoami))
        .route(
            "/api/v1/me/tokens",
            get(me::list_tokens).post(me::issue_token),
        )
        .route(
            "/api/v1/me/tokens/{id}",
            axum::routing::delete(me::revoke_token),
        )
        .route("/api/v1/warnings", get(warnings::list_warnings))
        .route("/api/v1/warnings/{id}", get(warnings::get_warning))
        .route("/api/v1/warnings/{id}/ack", post(warnings::ack))
        .route("/api/v1/warnings/{id}/confirm", post(warnings::confirm))
        .route("/api/v1/warnings/{id}/resolve", post(warnings::resolve))
        .route(
            "/api/v1/warnings/{id}/ladder",
            get(warnings::warning_ladder),
        )
        .route(
            "/api/v1/warnings/{id}/members",
            get(storms::warning_members),
        )
        .route(
            "/callbacks/{provider}/{kind}/{token}",
            post(intake::callback),
        )
        .route("/api/v1/venues/{id}/status", get(warnings::venue_status))
        .route(
            "/api/v1/maintenance",
            get(maintenance::list_maintenance).post(maintenance::set_maintenance),
        )
        .route(
            "/api/v1/maintenance/{id}/end",
            post(maintenance::end_maintenance),
        )
        .route("/api/v1/key-risk/proposals", get(warnings::key_risk_list))
        .route(
            "/api/v1/key-risk/proposals/{venue}/decide",
            post(warnings::key_risk_decide),
        )
        .route(
            "/api/v1/registry/{table}",
            get(registry::registry_list).put(registry::registry_put),
        )
        .route(
            "/api/v1/registry/{table}/{id}",
            axum::routing::delete(registry::registry_delete),
        )
        .route(
            "/api/v1/tasks",
            get(work::list_tasks).post(work::create_task),
        )
        .route("/api/v1/tasks/{id}", get(work::get_task))
        .route("/api/v1/tasks/{id}/transition", post(work::move_task))
        .route(
            "/api/v1/hazards",
            get(work::list_hazards).post(work::create_hazard),
        )
        .route("/api/v1/hazards/{id}", get(work::get_hazard))
        .route("/api/v1/hazards/{id}/transition", post(work::move_hazard))
        .route("/api/v1/accidents", post(reports::accident))
        .route("/api/v1/reports/{period}", get(reports::report))
        .route("/api/v1/report-snapshots", get(reports::list_snapshots))
        .route("/api/v1/report-snapshots/{id}", get(reports::get_snapshot))
        .route("/api/v1/audit", get(audit::audit))
        .route("/api/v1/deliveries", get(audit::deliveries))
        .route("/api/v1/sanctions", get(work::sanctions))
        .route("/api/v1/sanctions/{id}/decide", post(work::decide_sanction))
        .route("/api/v1/hazards/{id}/list", post(work::list_hazard))
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

/// The operator token of `Authorization: Bearer`: one of
/// `[[auth.operators]]` (named, maybe narrower) or of `auth.api_tokens`
/// (unnamed, every region, reads and writes).
pub(crate) fn operator(app: &App, h: &HeaderMap) -> Result<caller::Operator> {
    let token = bearer(h)?.as_bytes();
    let ct = crate::gatekeeper::ct_eq;
    // Compare every token in full, so timing does not reveal which matched
    // or a prefix.
    let named = app.cfg.auth.operators.iter().fold(None, |found, o| {
        if ct(o.token.as_bytes(), token) {
            Some(o)
        } else {
            found
        }
    });
    let unnamed = app
        .cfg
        .auth
        .api_tokens
        .iter()
        .fold(false, |acc, t| acc | ct(t.as_bytes(), token));
    match (named, unnamed) {
        (Some(o), _) => Ok(caller::Operator {
            name: Some(o.name.clone()),
            regions: o.regions.clone(),
            read_only: o.read_only,
        }),
        (None, true) => Ok(caller::Operator::default()),
        (None, false) => Err(Error::Unauthorized(
            "unknown token; use one of [[auth.operators]] or auth.api_tokens",
        )),
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

pub(super) type Q = Query<HashMap<String, String>>;

/// A human decision on a proposal.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DecideBody {
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

/// The id of the row written.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Created {
    /// Its id.
    id: String,
}

/// `{"id", "state"}`: the new state of a warning, task or hazard.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewState {
    /// The warning, task or hazard.
    pub id: String,
    /// Its state now.
    pub state: String,
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
