//! `/api/v1/me`: who the credential is, and the person's own API tokens.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::caller::{Caller, Credential};
use crate::App;
use crate::error::{Error, Result};
use crate::tokens::{self, Issued, NewToken, TokenInfo};
use crate::web::auth::Session;

/// The caller, as the monitor sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `session`, `personal_token` or `operator_token`.
    pub credential: &'static str,
    /// The account, or the name of a named operator token.
    pub username: Option<String>,
    /// The web role (`enterprise`, `grid`, `county`, `city`, `admin`).
    pub role: Option<String>,
    /// The registry person writes act as.
    pub person_id: Option<String>,
    /// The region the account oversees (with the regions under it).
    pub region_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", operation_id = "whoami",
    summary = "Who this credential is: account, role, registry person, region",
    security(("api_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        crate::openapi::ListErrors,
    ))]
pub async fn whoami(caller: Caller) -> axum::Json<Me> {
    axum::Json(match caller {
        Caller::Person(s, how) => Me {
            credential: how.as_str(),
            username: Some(s.username),
            role: Some(s.role),
            person_id: s.person_id,
            region_id: s.region_id,
        },
        Caller::Machine(op) => Me {
            credential: "operator_token",
            username: op.name,
            role: None,
            person_id: None,
            region_id: None,
        },
    })
}

/// The person behind the caller; an operator token has no tokens of its
/// own (403).
fn account(caller: &Caller) -> Result<&Session> {
    caller.person().ok_or_else(|| {
        Error::Forbidden(
            "an operator token is not a person: personal tokens belong to signed-in accounts"
                .into(),
        )
    })
}

#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me", operation_id = "list_tokens",
    summary = "The caller's personal API tokens, newest first (never their secrets)",
    security(("api_token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The tokens", body = [TokenInfo]),
        crate::openapi::ListErrors,
    ))]
pub async fn list_tokens(
    State(app): State<App>,
    caller: Caller,
) -> Result<axum::Json<Vec<TokenInfo>>> {
    let me = account(&caller)?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(tokens::list(&mut c, &me.username).await?))
}

#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "me", operation_id = "issue_token",
    summary = "Issue a personal API token for the signed-in account (its secret is shown only in this answer)",
    description = "Only a signed-in session issues tokens (a token cannot mint another: a leaked token must not outlive its revocation). The token acts as the account: same role, region and registry person.",
    security(("session" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    request_body(content = NewToken, content_type = "application/json"),
    responses(
        (status = 201, description = "Issued", body = Issued),
        crate::openapi::WriteErrors,
    ))]
pub async fn issue_token(
    State(app): State<App>,
    caller: Caller,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Issued>)> {
    let me = account(&caller)?;
    if !matches!(caller, Caller::Person(_, Credential::Session)) {
        return Err(Error::Forbidden(
            "sign in to issue a token: a personal token cannot issue another".into(),
        ));
    }
    let t: NewToken = super::parse(&super::body(b, app.cfg.server.max_body_bytes)?)?;
    let mut tx = app.db.begin().await?;
    let by = format!("user:{}", me.username);
    let issued = tokens::issue(&mut tx, app.now_ms(), &me.username, &by, &t).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(issued)))
}

#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "me", operation_id = "revoke_token",
    summary = "Revoke one of the caller's personal API tokens (a token may revoke itself)",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        crate::openapi::WriteErrors,
    ))]
pub async fn revoke_token(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let me = account(&caller)?;
    let mut tx = app.db.begin().await?;
    let by = format!("user:{}", me.username);
    tokens::revoke(&mut tx, app.now_ms(), &me.username, &by, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
