//! The OpenAPI 3 document of the monitor, generated from the code with
//! utoipa: every handler carries `#[utoipa::path]` (method, path,
//! parameters, body, responses) and the bodies derive `ToSchema`. Served at
//! `GET /api/openapi.json`; `anquan-monitor openapi` prints it.
//!
//! This module holds what the handlers share: the error responses (every
//! error is `application/problem+json`, see [`crate::error::Problem`]), the
//! security schemes, and schema-only types for bodies a handler reads by
//! hand (a mirror of the wire contract's alarm event, the registry rows, the
//! web forms).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::Problem;

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "anquan-monitor",
        description = "The 六个自动 supervision service. `POST /api/v1/alarms` takes a gateway token \
            (`[[auth.gateways]]` or `auth.intake_tokens`); every other `/api/v1` endpoint takes a \
            person's credential (a signed-in session, with `X-CSRF-Token` on writes, or a personal \
            API token `aqp_…` from `POST /api/v1/me/tokens`), acting as that person under their \
            role and region, or an operator token (`auth.api_tokens`) for machines, which names the \
            person it acts for (`person_id` / `actor`); the `/web` endpoints take a session. \
            Errors are `application/problem+json` (RFC 9457) whose `detail` says what to fix; an \
            internal failure answers 503 with an incident id (the log has the details)."
    ),
    paths(
        crate::http::health,
        crate::metrics::page,
        crate::http::openapi,
        crate::http::intake::alarm,
        crate::http::intake::heartbeat,
        crate::http::me::whoami,
        crate::http::me::list_tokens,
        crate::http::me::issue_token,
        crate::http::me::revoke_token,
        crate::http::warnings::list_warnings,
        crate::http::warnings::get_warning,
        crate::http::warnings::ack,
        crate::http::warnings::confirm,
        crate::http::warnings::resolve,
        crate::http::warnings::warning_ladder,
        crate::http::storms::warning_members,
        crate::http::intake::callback,
        crate::web::ack::page_handler,
        crate::web::ack::confirm,
        crate::http::warnings::venue_status,
        crate::http::warnings::key_risk_list,
        crate::http::warnings::key_risk_decide,
        crate::http::maintenance::list_maintenance,
        crate::http::maintenance::set_maintenance,
        crate::http::maintenance::end_maintenance,
        crate::http::registry::registry_list,
        crate::http::registry::registry_put,
        crate::http::registry::registry_delete,
        crate::http::work::list_tasks,
        crate::http::work::create_task,
        crate::http::work::get_task,
        crate::http::work::move_task,
        crate::http::work::list_hazards,
        crate::http::work::create_hazard,
        crate::http::work::get_hazard,
        crate::http::work::move_hazard,
        crate::http::work::list_hazard,
        crate::http::reports::accident,
        crate::http::reports::report,
        crate::http::reports::list_snapshots,
        crate::http::reports::get_snapshot,
        crate::http::audit::audit,
        crate::http::audit::deliveries,
        crate::http::work::sanctions,
        crate::http::work::decide_sanction,
        crate::evidence::list_task,
        crate::evidence::add_task,
        crate::evidence::list_hazard,
        crate::evidence::add_hazard,
        crate::evidence::download,
        crate::http::public::public_venue,
        crate::http::public::public_report,
        crate::http::public::list_public_reports,
        crate::http::public::decide_public_report,
        crate::web::public::qr_svg,
        crate::web::public::qr_png,
        crate::web::pages::dashboard_json,
        crate::web::pages::ack,
        crate::web::pages::confirm,
        crate::web::live::events,
    ),
    // Schemas reached from bodies and responses are collected by utoipa;
    // those of parameters are not, so they are named here.
    components(schemas(Problem, RegistryTable, Period, ReportFormat, ReportState)),
    modifiers(&SecuritySchemes, &AnyOfRows),
    tags(
        (name = "ops", description = "Health, metrics and this document"),
        (name = "me", description = "The caller and their personal API tokens"),
        (name = "intake", description = "Alarm events from the gateways"),
        (name = "warnings", description = "Warnings, venue state, 重点风控"),
        (name = "registry", description = "Regions, grids, venues, devices, people, their venues, the rota, overrides, holidays"),
        (name = "tasks", description = "Tasks and their evidence"),
        (name = "hazards", description = "Hazards, their evidence, 挂牌督办, sanctions"),
        (name = "reports", description = "Reports, snapshots, accidents"),
        (name = "audit", description = "The audit trail and notification deliveries"),
        (name = "public", description = "No token: the 安全码 pages and public reports"),
        (name = "web", description = "The web front's JSON, SSE and action endpoints (session)"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| {
            format!("{{\"error\": \"cannot serialize the OpenAPI document: {e}\"}}")
        })
    })
}

/// Untagged row enums as `anyOf`, not the derived `oneOf`: their variants
/// are rows of different tables that may share every property a given row
/// has (a venue row is also a valid region row), so "exactly one" would
/// refuse rows the API rightly sends.
#[derive(Debug)]
struct AnyOfRows;

impl Modify for AnyOfRows {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(c) = doc.components.as_mut() else {
            return;
        };
        for name in ["RegistryListRow"] {
            if let Some(RefOr::T(Schema::OneOf(one))) = c.schemas.get(name) {
                let mut any = utoipa::openapi::schema::AnyOf::new();
                any.items.clone_from(&one.items);
                any.description.clone_from(&one.description);
                c.schemas
                    .insert(name.to_string(), RefOr::T(Schema::AnyOf(any)));
            }
        }
    }
}

/// The security schemes named by the operations.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        let bearer = |what: &str| {
            let mut s = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
            s.description = Some(what.into());
            SecurityScheme::Http(s)
        };
        c.add_security_scheme(
            "intake_token",
            bearer("A gateway token: `[[auth.gateways]] token` or one of `auth.intake_tokens`"),
        );
        c.add_security_scheme(
            "api_token",
            bearer(
                "A personal API token (`aqp_…`, from `POST /api/v1/me/tokens`: acts as its \
                 account's person, role and region) or an operator token (one of \
                 `auth.api_tokens`: a machine, naming the person it acts for)",
            ),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::web::auth::SESSION_COOKIE,
                "Web session from POST /web/sign-in (HttpOnly, SameSite=Strict). \
                 State-changing requests also need the CSRF token.",
            ))),
        );
    }
}

// The error response sets. Each variant is one status; the types are never
// built (they only describe responses), hence `dead_code`.

/// Errors of an operator list that takes no parameter it checks.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum ListErrors {
    /// No or unknown credential.
    #[response(
        status = 401,
        description = "No credential, or an unknown, expired or revoked one (a session, a personal token, one of `auth.api_tokens`)",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The caller may not.
    #[response(
        status = 403,
        description = "The caller's role or region does not allow this (or, on a session, the CSRF token is missing)",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "Storage unavailable; retry later. `detail` has an incident id",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of an operator lookup by id.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum LookupErrors {
    /// No or unknown credential.
    #[response(
        status = 401,
        description = "No credential, or an unknown, expired or revoked one (a session, a personal token, one of `auth.api_tokens`)",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The caller may not.
    #[response(
        status = 403,
        description = "The caller's role or region does not allow this (or, on a session, the CSRF token is missing)",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// No such row.
    #[response(
        status = 404,
        description = "No such row; `detail` names what and the id",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "Storage unavailable; retry later. `detail` has an incident id",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of an operator read with parameters it checks (reports).
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// A query parameter is missing or wrong.
    #[response(
        status = 400,
        description = "A query parameter is missing or wrong; `detail` names it",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    /// No or unknown credential.
    #[response(
        status = 401,
        description = "No credential, or an unknown, expired or revoked one (a session, a personal token, one of `auth.api_tokens`)",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The caller may not.
    #[response(
        status = 403,
        description = "The caller's role or region does not allow this (or, on a session, the CSRF token is missing)",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// No such row.
    #[response(
        status = 404,
        description = "No such row; `detail` names what and the id",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// A value breaks a rule.
    #[response(
        status = 422,
        description = "A value breaks a rule (e.g. a date that is not YYYY-MM-DD)",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "The request could not be completed (storage; for a PDF report, the printer); retry later. `detail` says which, with an incident id for internal failures",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of an operator write (`POST`/`PUT`/`DELETE /api/v1/...`).
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// Not JSON, or a field missing or of the wrong type.
    #[response(
        status = 400,
        description = "Not JSON, an unknown field, or a field missing or of the wrong type; `detail` names the field",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    /// No or unknown credential.
    #[response(
        status = 401,
        description = "No credential, or an unknown, expired or revoked one (a session, a personal token, one of `auth.api_tokens`)",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The person may not do this.
    #[response(
        status = 403,
        description = "The acting person may not do this",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// No such row.
    #[response(
        status = 404,
        description = "No such row; `detail` names what and the id",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// The state does not allow this.
    #[response(
        status = 409,
        description = "The current state does not allow this; `detail` says what is missing (e.g. the fields of a gate)",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    /// Body too large.
    #[response(
        status = 413,
        description = "The body is larger than `server.max_body_bytes`",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    /// A value breaks a rule.
    #[response(
        status = 422,
        description = "A value breaks a rule; `detail` names the field and the rule",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "Storage unavailable; retry later. `detail` has an incident id",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of the alarm intake.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum IntakeErrors {
    /// The body cannot be read.
    #[response(
        status = 400,
        description = "The body cannot be read",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    /// No or unknown gateway token.
    #[response(
        status = 401,
        description = "No token, or not a gateway token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The gateway may not send events of this site.
    #[response(
        status = 403,
        description = "The gateway's token is bound to other sites",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// Body too large.
    #[response(
        status = 413,
        description = "The body is larger than the contract's 1024 bytes or `server.max_body_bytes`",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    /// The event breaks the contract.
    #[response(
        status = 422,
        description = "The event breaks the wire contract; `detail` names the field",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
    /// The event id is taken by another event of the site.
    #[response(
        status = 409,
        description = "This site already has a different event under this `event_id` (another device, rule, level, state, value, threshold or gateway); refused, never a silent duplicate",
        content_type = "application/problem+json"
    )]
    EventReused(Problem),
    /// Too many requests.
    #[response(
        status = 429,
        description = "Over the gateway's rate; retry after `Retry-After` seconds",
        content_type = "application/problem+json"
    )]
    TooMany(Problem),
    /// Not stored.
    #[response(
        status = 503,
        description = "Not stored (storage or the intake worker unavailable); retry, the event id makes it idempotent",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of the public (no token) reads.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum PublicReadErrors {
    /// No such venue.
    #[response(
        status = 404,
        description = "No such venue (a browser asking for text/html gets an HTML page)",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "Storage unavailable; retry later",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of the public hazard report.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum PublicWriteErrors {
    /// Not JSON, or a field missing or of the wrong type.
    #[response(
        status = 400,
        description = "Not JSON, an unknown field, or a field missing or of the wrong type; `detail` names the field",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    /// No such venue.
    #[response(
        status = 404,
        description = "No such venue",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// Body too large.
    #[response(
        status = 413,
        description = "The body is larger than `server.max_body_bytes`",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    /// A value breaks a rule.
    #[response(
        status = 422,
        description = "The description or category is empty or too long",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
    /// Too many reports from this address.
    #[response(
        status = 429,
        description = "Too many reports from this address; retry after `Retry-After` seconds",
        content_type = "application/problem+json"
    )]
    TooMany(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "Storage unavailable; retry later",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of the web front's endpoints (session).
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum SessionErrors {
    /// Not signed in.
    #[response(
        status = 401,
        description = "Not signed in (or the session expired): sign in at /web/sign-in",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    /// The role may not, the CSRF token is missing, or out of the user's region.
    #[response(
        status = 403,
        description = "The role may not do this, the row is outside the user's region, or the CSRF token is missing or wrong",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// No such row.
    #[response(
        status = 404,
        description = "No such row",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    /// The state does not allow this.
    #[response(
        status = 409,
        description = "The current state does not allow this",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "Storage unavailable; retry later",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of an acknowledgement link (a browser asking for text/html gets
/// an HTML page in its language).
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum AckLinkErrors {
    /// Forged.
    #[response(
        status = 403,
        description = "Forged: no such link, or its signature does not match (counted, audited)",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    /// Used.
    #[response(
        status = 409,
        description = "Used before: a link works once (counted, audited)",
        content_type = "application/problem+json"
    )]
    Used(Problem),
    /// Expired.
    #[response(
        status = 410,
        description = "Expired (counted, audited); the SMS reply code or the web still work",
        content_type = "application/problem+json"
    )]
    Gone(Problem),
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "Storage unavailable; retry later",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// Errors of an endpoint that only fails when the storage does.
#[derive(Debug, IntoResponses)]
#[allow(dead_code)]
pub enum Unavailable {
    /// Storage unavailable.
    #[response(
        status = 503,
        description = "The database does not answer; `detail` has an incident id",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

/// An alarm transition, as forwarded by the gateway: the wire contract
/// (`anquan_protocol::AlarmEvent`, which is `no_std` and decodes by hand),
/// described here; a test checks this description against the contract.
#[derive(Debug, Serialize, ToSchema)]
#[schema(
    example = json!({"event_id": "gw-01/s1/gas-0001/gas.lel/7", "site": "s1", "device": "gas-0001",
        "kind": "gas", "rule": "gas.lel", "level": "red", "state": "raised", "value": 55.0,
        "threshold": 50.0, "ts_ms": 1_732_300_000_000_u64, "gateway": "gw-01"})
)]
#[allow(dead_code)]
pub struct AlarmEvent {
    /// Stable id of this transition; the receiver's idempotency key.
    #[schema(
        pattern = "^[A-Za-z0-9_.:/-]{1,256}$",
        min_length = 1,
        max_length = 256
    )]
    event_id: String,
    /// Site id.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    site: String,
    /// Device id.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    device: String,
    /// Device kind.
    kind: DeviceKind,
    /// The rule that fired.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,32}$", min_length = 1, max_length = 32)]
    rule: String,
    /// The level now (for `cleared`, the level that was cleared).
    level: Level,
    /// What happened.
    state: AlarmState,
    /// The value that caused the transition (finite).
    value: f32,
    /// The threshold it crossed (finite).
    threshold: f32,
    /// When, in Unix ms (2000-01-01 to 2200-01-01).
    #[schema(minimum = 946_684_800_000_u64, maximum = 7_258_118_400_000_u64)]
    ts_ms: u64,
    /// The gateway that judged it.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    gateway: String,
}

/// A device kind.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum DeviceKind {
    /// Combustible gas.
    Gas,
    /// Electrical fire monitoring.
    Electrical,
    /// Fire water pressure.
    WaterPressure,
    /// Tower crane.
    Crane,
    /// Fire alarm control panel behind a GB/T 26875.3 transmission device.
    FirePanel,
}

/// A warning level.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum Level {
    /// 蓝.
    Blue,
    /// 黄.
    Yellow,
    /// 橙.
    Orange,
    /// 红.
    Red,
}

/// An alarm transition.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum AlarmState {
    /// A new alarm.
    Raised,
    /// A higher level.
    Escalated,
    /// A lower level.
    Downgraded,
    /// Cleared at the source.
    Cleared,
}

/// A registry table.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum RegistryTable {
    /// [`crate::registry::Region`].
    Regions,
    /// [`crate::registry::Venue`].
    Venues,
    /// [`crate::registry::Device`].
    Devices,
    /// [`crate::registry::Person`].
    People,
    /// [`crate::registry::Duty`].
    Duty,
    /// [`crate::registry::Grid`].
    Grids,
    /// [`crate::registry::VenuePerson`].
    VenuePeople,
    /// Grid officers (read only; written with their grid).
    GridPeople,
    /// [`crate::registry::DutyOverride`].
    DutyOverrides,
    /// [`crate::registry::Holiday`].
    Holidays,
}

/// A registry row: the type is the table's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum RegistryRow {
    /// `regions`.
    Region(crate::registry::Region),
    /// `venues`.
    Venue(crate::registry::Venue),
    /// `devices`.
    Device(crate::registry::Device),
    /// `people`.
    Person(crate::registry::Person),
    /// `duty`.
    Duty(crate::registry::Duty),
    /// `grids`.
    Grid(crate::registry::Grid),
    /// `venue-people`.
    VenuePerson(crate::registry::VenuePerson),
    /// `duty-overrides`.
    Override(crate::registry::DutyOverride),
    /// `holidays`.
    Holiday(crate::registry::Holiday),
}

/// The category of an anonymous hazard report: the catalogue
/// ([`crate::moderation::CATEGORIES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportCategory {
    /// 消防 (blocked exits, extinguishers, alarms).
    Fire,
    /// 燃气 (a smell of gas, hoses, valves).
    Gas,
    /// 用电 (wiring, overloaded sockets, heaters).
    Electrical,
    /// 人员密集 (crowding).
    Crowd,
    /// Anything else.
    Other,
}

impl ReportCategory {
    /// The catalogue name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fire => "fire",
            Self::Gas => "gas",
            Self::Electrical => "electrical",
            Self::Crowd => "crowd",
            Self::Other => "other",
        }
    }
}

/// The state of an anonymous report.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[allow(dead_code)]
pub enum ReportState {
    /// Waiting for an officer.
    Pending,
    /// Accepted: a hazard of the ledger.
    Accepted,
    /// Rejected, with the reason.
    Rejected,
}

/// A report period.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum Period {
    /// A day.
    Daily,
    /// An ISO week from Monday.
    Weekly,
    /// A 15-day node (1–15, 16–end).
    HalfMonthly,
    /// A month.
    Monthly,
    /// A quarter.
    Quarterly,
    /// A calendar year (also accepted as `year` or `annual`).
    Yearly,
}

/// A report format.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReportFormat {
    /// JSON (the default).
    Json,
    /// CSV.
    Csv,
    /// HTML.
    Html,
    /// XLSX.
    Xlsx,
    /// PDF (printed by headless Chromium).
    Pdf,
}

/// A new task: `actor` (the id of the person acting) and the fields of
/// [`crate::work::NewTask`].
#[derive(Debug)]
pub struct CreateTask;

impl PartialSchema for CreateTask {
    fn schema() -> RefOr<Schema> {
        with_actor(
            crate::work::NewTask::schema(),
            "A new task, with `actor`: the id of the person acting",
        )
    }
}

impl ToSchema for CreateTask {}

/// A new hazard: `actor` (the id of the person acting; not stored for
/// `source` = `report`) and the fields of [`crate::work::NewHazard`].
#[derive(Debug)]
pub struct CreateHazard;

impl PartialSchema for CreateHazard {
    fn schema() -> RefOr<Schema> {
        with_actor(
            crate::work::NewHazard::schema(),
            "A new hazard, with `actor`: the id of the person acting (not stored for `source` = `report`)",
        )
    }
}

impl ToSchema for CreateHazard {}

/// `schema` (an object) with a string property `actor` added: the create
/// endpoints take the acting person beside the row's fields (and the row's
/// schema allows no other property). Required with an operator token only,
/// so not `required` in the schema.
fn with_actor(schema: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            o.properties.insert(
                "actor".into(),
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "The id of the person acting: required with an operator token; a \
                         personal credential acts as its own person (another id is 403)",
                    ))
                    .into(),
            );
            o.description = Some(description.into());
            RefOr::T(Schema::Object(o))
        }
        other => other,
    }
}

/// The form of `POST /web/warnings/{id}/ack`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct WebAckForm {
    /// Free text.
    note: Option<String>,
    /// The session's CSRF token, unless sent in `X-CSRF-Token`.
    csrf: Option<String>,
}

/// The form of `POST /web/warnings/{id}/confirm`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct WebConfirmForm {
    /// `1`: a false alarm (→ RESOLVED); else real (→ DISPOSING with a
    /// disposal task).
    false_alarm: Option<String>,
    /// Why (default: "confirmed in the web by <user>").
    reason: Option<String>,
    /// The session's CSRF token, unless sent in `X-CSRF-Token`.
    csrf: Option<String>,
}

/// A photo upload (multipart/form-data).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct EvidenceUpload {
    /// Id of the person uploading: required with an operator token; a
    /// personal credential uploads as its own person.
    actor: Option<String>,
    /// JPEG, PNG or WebP (recognised by content), at most `evidence.max_bytes`.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Bytes (a file).
#[derive(Debug)]
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_str(super::json()).expect("the document is JSON")
    }

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// `(method, path, operation)` of every operation.
    fn operations(d: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in d["paths"].as_object().unwrap() {
            for (m, op) in item.as_object().unwrap() {
                if METHODS.contains(&m.as_str()) {
                    out.push((m.clone(), path.clone(), op.clone()));
                }
            }
        }
        out
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    if k == "$ref" {
                        out.push(v.as_str().expect("$ref is a string").to_string());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn is_openapi_3_with_info_and_operations() {
        let d = doc();
        assert!(
            d["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            d["openapi"]
        );
        assert_eq!(d["info"]["title"], "anquan-monitor");
        assert_eq!(d["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(operations(&d).len() >= 40);
    }

    #[test]
    fn every_ref_resolves_to_a_component() {
        let d = doc();
        let mut all = Vec::new();
        refs(&d, &mut all);
        assert!(all.len() > 50, "{all:?}");
        for r in &all {
            assert!(
                r.starts_with("#/components/"),
                "{r} is not a local component"
            );
            let target = d.pointer(&r[1..]);
            assert!(
                target.is_some_and(|t| t.is_object()),
                "{r} does not resolve"
            );
        }
        // And every component schema is used (a stale one is a mistake).
        let used: BTreeSet<&str> = all.iter().map(String::as_str).collect();
        for name in d["components"]["schemas"].as_object().unwrap().keys() {
            let r = format!("#/components/schemas/{name}");
            assert!(used.contains(r.as_str()), "schema {name} is never used");
        }
    }

    #[test]
    fn operations_are_complete_and_consistent() {
        let d = doc();
        let schemes = d["components"]["securitySchemes"].as_object().unwrap();
        let mut ids = BTreeSet::new();
        for (m, path, op) in operations(&d) {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{m} {path}: no operationId");
            assert!(
                ids.insert(id.to_string()),
                "{m} {path}: operationId {id} twice"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{m} {path}: no summary"
            );
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()));
            // Every `{param}` of the path is a declared path parameter,
            // and every declared path parameter is in the path.
            let in_path: BTreeSet<String> = path
                .split('{')
                .skip(1)
                .map(|s| s.split('}').next().unwrap().to_string())
                .collect();
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .inspect(|p| assert_eq!(p["required"], true, "{m} {path}"))
                        .map(|p| p["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(in_path, declared, "{m} {path}: path parameters");
            // Security names a declared scheme.
            for req in op["security"].as_array().into_iter().flatten() {
                for name in req.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{m} {path}: scheme {name}");
                }
            }
            // The API and the web front (not the public or ops endpoints)
            // require a credential.
            if path.starts_with("/api/v1/") || path.starts_with("/web/") {
                assert!(op["security"].is_array(), "{m} {path}: no security");
            }
            // Errors are problem+json with the Problem schema, and only
            // problem+json.
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{m} {path}: no success response"
            );
            let mut problems = 0;
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = r["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{m} {path} {status}"
                    );
                    assert_eq!(
                        content["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{m} {path} {status}"
                    );
                    problems += 1;
                }
            }
            // The document itself is a constant: it cannot fail.
            if path == "/api/openapi.json" {
                assert_eq!(problems, 0);
            } else {
                assert!(problems > 0, "{m} {path}: no problem+json error response");
            }
            // Operations behind a token or session list 401.
            if op["security"].is_array() {
                assert!(responses.contains_key("401"), "{m} {path}: no 401");
            }
        }
    }

    #[test]
    fn the_problem_schema_is_what_errors_send() {
        let d = doc();
        let p = &d["components"]["schemas"]["Problem"];
        let props: BTreeSet<&str> = p["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let sent = crate::error::Problem {
            kind: "urn:anquan:problem:invalid",
            title: "t",
            status: 422,
            detail: "d".into(),
        };
        let sent = serde_json::to_value(&sent).unwrap();
        let keys: BTreeSet<&str> = sent
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(props, keys);
        let required: BTreeSet<&str> = p["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, keys);
    }

    /// The described alarm event is the wire contract's: the same fields,
    /// all required, and the same enumerations.
    #[test]
    fn the_alarm_event_schema_mirrors_the_contract() {
        use anquan_protocol::{AlarmState, DeviceKind, Level};
        let d = doc();
        let s = &d["components"]["schemas"];
        let ev = &s["AlarmEvent"];
        let sample = ev["example"].to_string();
        let decoded = anquan_protocol::AlarmEvent::decode(sample.as_bytes())
            .expect("the schema's example is a valid event");
        let wire: Value = serde_json::from_slice(&decoded.to_vec().unwrap()).unwrap();
        let wire_keys: BTreeSet<&str> = wire
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let props: BTreeSet<&str> = ev["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(props, wire_keys);
        let required: BTreeSet<&str> = ev["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, wire_keys);
        let values = |name: &str| -> Vec<String> {
            s[name]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {}", s[name]))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            values("DeviceKind"),
            DeviceKind::ALL.map(|k| k.as_str().to_string())
        );
        assert_eq!(values("Level"), Level::ALL.map(|k| k.as_str().to_string()));
        assert_eq!(
            values("AlarmState"),
            AlarmState::ALL.map(|k| k.as_str().to_string())
        );
        assert_eq!(
            ev["properties"]["ts_ms"]["minimum"].as_u64(),
            Some(anquan_protocol::MIN_TS_MS)
        );
        assert_eq!(
            ev["properties"]["ts_ms"]["maximum"].as_u64(),
            Some(anquan_protocol::MAX_TS_MS)
        );
        for (field, max) in [
            ("event_id", anquan_protocol::MAX_EVENT_ID_LEN),
            ("site", anquan_protocol::MAX_ID_LEN),
            ("device", anquan_protocol::MAX_ID_LEN),
            ("gateway", anquan_protocol::MAX_ID_LEN),
            ("rule", anquan_protocol::MAX_RULE_ID_LEN),
        ] {
            assert_eq!(
                ev["properties"][field]["maxLength"].as_u64(),
                Some(max as u64),
                "{field}"
            );
        }
    }

    /// The other enumerations are the ones the handlers check.
    #[test]
    fn parameter_enumerations_match_the_code() {
        let d = doc();
        let s = &d["components"]["schemas"];
        let values = |name: &str| -> Vec<String> {
            s[name]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(values("Period"), crate::reports::PERIODS);
        assert_eq!(
            values("RegistryTable"),
            crate::registry::TABLES
                .iter()
                .map(|t| t.0)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            values("ReportFormat"),
            ["json", "csv", "html", "xlsx", "pdf"]
        );
    }
}
