//! Typed errors; over HTTP they become `application/problem+json` with a
//! reason a person can act on.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::config::ConfigError;

/// What can go wrong in the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not understood (not JSON, wrong field types).
    #[error("{0}")]
    BadRequest(String),
    /// Understood but violates the contract or a rule (→ 422).
    #[error("{0}")]
    Invalid(String),
    /// The body is larger than `server.max_body_bytes`.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// The content is of a type not accepted here (→ 415).
    #[error("{0}")]
    UnsupportedMedia(String),
    /// Missing or wrong bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Signed in, but the role may not do this, or the CSRF token is
    /// missing (→ 403).
    #[error("{0}")]
    Forbidden(String),
    /// The path exists, not with this method (→ 405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Too many attempts (sign-in rate limit, → 429).
    #[error("{0}")]
    TooMany(String),
    /// No such row.
    #[error("{what} {id:?} does not exist")]
    NotFound {
        /// The kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The state does not allow this (wrong state, a gate not met, a race
    /// lost); the reason says what is missing.
    #[error("{0}")]
    Conflict(String),
    /// Expired: it worked once, it no longer does (an acknowledgement
    /// link past its time, → 410).
    #[error("{0}")]
    Gone(String),
    /// An alarm event id already stored for a different event of the same
    /// site (→ 409; see [`crate::intake`]).
    #[error("{0}")]
    EventReused(String),
    /// Temporarily unavailable (a batch failed to commit, a worker stopped).
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The configuration is wrong.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// Anything about I/O at start-up.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Marks a response caused by a database failure (a response extension),
/// so the metrics layer can count it without knowing the handler.
#[derive(Debug, Clone, Copy)]
pub struct DbFailure;

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// RFC 9457 problem details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:anquan:problem:invalid")]
    pub kind: &'static str,
    /// Short title.
    pub title: &'static str,
    /// HTTP status.
    #[schema(example = 422)]
    pub status: u16,
    /// What is wrong and what to do.
    pub detail: String,
}

/// The problem type and title of an error answer with `status`: the one
/// table behind the typed errors and the rewritten extractor rejections
/// ([`problem_for_plain`]).
fn problem_of(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("urn:anquan:problem:bad-request", "Bad request"),
        401 => ("urn:anquan:problem:unauthorized", "Not authorized"),
        403 => ("urn:anquan:problem:forbidden", "Forbidden"),
        404 => ("urn:anquan:problem:not-found", "Not found"),
        405 => (
            "urn:anquan:problem:method-not-allowed",
            "Method not allowed",
        ),
        409 => (
            "urn:anquan:problem:conflict",
            "Not allowed in the current state",
        ),
        410 => ("urn:anquan:problem:gone", "No longer valid"),
        413 => ("urn:anquan:problem:too-large", "Body too large"),
        415 => (
            "urn:anquan:problem:unsupported-media-type",
            "Unsupported content type",
        ),
        422 => ("urn:anquan:problem:invalid", "The request breaks a rule"),
        429 => ("urn:anquan:problem:too-many", "Too many attempts"),
        _ if status.is_server_error() => (
            "urn:anquan:problem:unavailable",
            "Service unavailable; retry later",
        ),
        _ => ("urn:anquan:problem:bad-request", "Bad request"),
    }
}

impl Error {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::EventReused(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::Db(_)
            | Self::Unavailable(_)
            | Self::Migrate(_)
            | Self::Io(_)
            | Self::Config(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Status, problem type and title; a reused event id is a conflict of
    /// its own kind (the gateway tells it from a state conflict).
    fn problem(&self) -> (StatusCode, &'static str, &'static str) {
        let status = self.status();
        let (kind, title) = match self {
            Self::EventReused(_) => (
                "urn:anquan:problem:event-id-reused",
                "Event id already used for another event",
            ),
            _ => problem_of(status),
        };
        (status, kind, title)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.problem();
        let db_failure = matches!(self, Self::Db(_) | Self::Migrate(_));
        // Internal failures are logged in full under an incident id; the
        // answer names the id, never the SQL, the query or a path.
        let internal = matches!(
            self,
            Self::Db(_) | Self::Migrate(_) | Self::Io(_) | Self::Config(_)
        );
        let incident = uuid::Uuid::new_v4().simple().to_string();
        if status.is_server_error() {
            tracing::error!(error = %self, incident = %incident, "request failed");
        }
        let body = Problem {
            kind,
            title,
            status: status.as_u16(),
            detail: if internal {
                format!(
                    "the monitor could not complete the request (logged as incident {incident}); retry later"
                )
            } else {
                self.to_string()
            },
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json,
        )
            .into_response();
        if db_failure {
            resp.extensions_mut().insert(DbFailure);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Middleware: an error answer that is not problem+json (axum's extractor
/// rejections are plain text: a form of the wrong content type, a path
/// that is not valid UTF-8, a query that does not parse) becomes one, with
/// the rejection's text as `detail` and its headers (`Allow`,
/// `Retry-After`) kept. Answers with a body of another type (HTML pages,
/// problem+json) pass unchanged.
pub async fn problem_for_plain(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(plain && (status.is_client_error() || status.is_server_error())) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (kind, title) = problem_of(status);
    let detail = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_string()
    } else {
        text
    };
    let body = Problem {
        kind,
        title,
        status: status.as_u16(),
        detail,
    };
    let mut out = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out.extensions_mut().extend(parts.extensions);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: Error) -> (StatusCode, String) {
        let r = e.into_response();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn database_failures_show_an_incident_not_the_sql() {
        let e = Error::Db(sqlx::Error::Protocol(
            "syntax error at or near \"SELECT password_hash FROM web_users\"".into(),
        ));
        let (status, body) = body_of(e).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("incident"), "{body}");
        for leak in ["SELECT", "syntax", "web_users", "password"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
    }

    #[tokio::test]
    async fn client_errors_keep_their_reason() {
        let (status, body) = body_of(Error::Invalid("level: unknown \"purple\"".into())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body.contains("purple"), "{body}");
    }
}
