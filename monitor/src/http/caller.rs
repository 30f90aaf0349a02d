//! Who is calling `/api/v1`, from the request's credential alone.
//!
//! * A **person**: signed in (the web session's cookie; a write also carries
//!   the session's CSRF token in `X-CSRF-Token`), or holding a personal API
//!   token ([`crate::tokens`], `Authorization: Bearer aqp_…`). A person acts
//!   as the registry person of their account, under the role policy of the
//!   web ([`crate::web::auth`]) and within their region: a body may leave
//!   out `person_id` / `actor`, and naming anyone else is refused (403).
//! * A **machine**: an operator token, named (`[[auth.operators]]`) or not
//!   (`auth.api_tokens`). It belongs to an integration the operator trusts
//!   (a duty-room telephone system, a provisioning script); it is not a
//!   person, so a write names the person it acts for, and that person must
//!   be in the registry. A named token may be held to regions and to
//!   reading. Writes without a person of their own (registry rows,
//!   accidents) are audited as `operator:<name>` (or `operator`), a
//!   person's as `user:<account>`.
//!
//! The gateways' intake tokens are another credential altogether
//! ([`crate::gatekeeper`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use sqlx::AnyConnection;

use crate::App;
use crate::error::{Error, Result};
use crate::web::auth::{self, SESSION_COOKIE, Session};
use crate::web::data::{InRegion, Scope};

/// How a person proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The web session's cookie.
    Session,
    /// A personal API token.
    Token,
}

impl Credential {
    /// Its name in answers and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Token => "personal_token",
        }
    }
}

/// The authenticated caller of an `/api/v1` endpoint.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A person, with their account.
    Person(Session, Credential),
    /// An integration holding an operator token.
    Machine(Operator),
}

/// What an operator token may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operator {
    /// Its name (`[[auth.operators]]`); none for `auth.api_tokens`.
    pub name: Option<String>,
    /// The regions it sees, with those under them; empty: all.
    pub regions: Vec<String>,
    /// Reads only.
    pub read_only: bool,
}

impl FromRequestParts<App> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let token = super::bearer(&parts.headers)?;
            if token.starts_with(crate::tokens::PREFIX) {
                let lang = crate::web::lang_of(parts);
                return match crate::tokens::lookup(app, token, lang).await? {
                    Some(s) => Ok(Self::Person(s, Credential::Token)),
                    None => {
                        refused(app, "personal_token");
                        Err(Error::Unauthorized(
                            "unknown, expired or revoked personal token; issue a new one",
                        ))
                    }
                };
            }
            let op = super::operator(app, &parts.headers).inspect_err(|_| {
                refused(app, "operator_token");
            })?;
            if op.read_only && !matches!(parts.method, Method::GET | Method::HEAD) {
                return Err(Error::Forbidden(format!(
                    "operator token {} reads only",
                    op.name.as_deref().unwrap_or("")
                )));
            }
            return Ok(Self::Machine(op));
        }
        if let Some(raw) = auth::cookie(&parts.headers, SESSION_COOKIE) {
            let lang = crate::web::lang_of(parts);
            if let Some(s) = auth::lookup(app, raw, lang).await? {
                if !matches!(parts.method, Method::GET | Method::HEAD) {
                    let given = parts
                        .headers
                        .get("x-csrf-token")
                        .and_then(|v| v.to_str().ok());
                    s.check_csrf(given).inspect_err(|_| refused(app, "csrf"))?;
                }
                return Ok(Self::Person(s, Credential::Session));
            }
        }
        refused(app, "none");
        Err(Error::Unauthorized(
            "send Authorization: Bearer <token> (an operator token or a personal API token), or sign in",
        ))
    }
}

/// Counts and logs a refused `/api/v1` credential.
fn refused(app: &App, why: &'static str) {
    app.metrics.api_refused.with_label_values(&[why]).inc();
    tracing::warn!(credential = why, "api request refused: not authenticated");
}

impl Caller {
    /// The account of a person (`None` for a machine).
    pub fn person(&self) -> Option<&Session> {
        match self {
            Self::Person(s, _) => Some(s),
            Self::Machine(_) => None,
        }
    }

    /// Whether the caller is held to a part of the map (a person, or an
    /// operator token with regions): lookups and actions check the region.
    pub fn scoped(&self) -> bool {
        match self {
            Self::Person(..) => true,
            Self::Machine(op) => !op.regions.is_empty(),
        }
    }

    /// The registry person a write acts as. A person acts as their own
    /// (`named`, the body's `field`, may be left out or be that same id);
    /// a machine must name one.
    pub fn acts_as(&self, field: &str, named: Option<&str>) -> Result<String> {
        let named = named.filter(|n| !n.is_empty());
        match self {
            Self::Person(s, _) => {
                let me = s.person()?;
                match named {
                    Some(n) if n != me => Err(Error::Forbidden(format!(
                        "{field}: you act as yourself ({me}); {n:?} is someone else"
                    ))),
                    _ => Ok(me.to_string()),
                }
            }
            Self::Machine(_) => named.map(str::to_string).ok_or_else(|| {
                Error::BadRequest(format!(
                    "{field}: an operator token names the person it acts for (a personal credential acts as its own person)"
                ))
            }),
        }
    }

    /// 403 unless a person's role passes `allowed`; a machine passes (the
    /// domain still checks the person it names, e.g. that a 挂牌督办 is by
    /// the county or the city).
    pub fn require(&self, allowed: impl FnOnce(&str) -> bool, what: &str) -> Result<()> {
        match self {
            Self::Person(s, _) => s.require(allowed(&s.role), what),
            Self::Machine(_) => Ok(()),
        }
    }

    /// What the caller sees: a person their region and below, an operator
    /// token its regions and below, or everything when it has none.
    pub async fn scope(&self, c: &mut AnyConnection) -> Result<Scope> {
        match self {
            Self::Person(s, _) => Scope::of(c, s).await,
            Self::Machine(op) if op.regions.is_empty() => Ok(Scope::all()),
            Self::Machine(op) => Scope::under(c, &op.regions, false).await,
        }
    }

    /// 403 unless the caller sees `region`.
    pub async fn in_scope(&self, c: &mut AnyConnection, region: Option<&str>) -> Result<()> {
        if self.scope(c).await?.sees(region) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "outside your region: your account oversees another part of the map".into(),
            ))
        }
    }

    /// 403 unless the caller sees the row's region.
    pub async fn sees_row(&self, c: &mut AnyConnection, row: &impl InRegion) -> Result<()> {
        self.in_scope(c, row.region()).await
    }

    /// Keeps the rows the caller sees (by their region).
    pub async fn only_visible<T: InRegion>(
        &self,
        c: &mut AnyConnection,
        mut rows: Vec<T>,
    ) -> Result<Vec<T>> {
        let scope = self.scope(c).await?;
        rows.retain(|r| scope.sees_row(r));
        Ok(rows)
    }

    /// Who the audit trail names for a write that has no person of its own
    /// (a registry row, an accident): `user:<account>`, `operator:<name>`
    /// or `operator`.
    pub fn audit_name(&self) -> String {
        match self {
            Self::Person(s, _) => format!("user:{}", s.username),
            Self::Machine(Operator { name: Some(n), .. }) => format!("operator:{n}"),
            Self::Machine(_) => "operator".into(),
        }
    }
}

/// Roles that read the audit trail, the deliveries (phone numbers and
/// addresses) and the registry's people: the system's admin and the
/// supervising levels.
pub fn may_read_records(role: &str) -> bool {
    matches!(role, "admin" | "county" | "city")
}

/// Roles that write the registry: the admin only.
pub fn may_write_registry(role: &str) -> bool {
    role == "admin"
}

/// Roles that create tasks (assign work): the grid, county and city.
pub fn may_assign(role: &str) -> bool {
    matches!(role, "grid" | "county" | "city")
}

/// Roles that record hazards: everyone in the workflow (the enterprise's
/// self-inspection too), not the admin.
pub fn may_report_hazard(role: &str) -> bool {
    matches!(role, "enterprise" | "grid" | "county" | "city")
}

/// Roles that decide 重点风控 proposals, sanctions and record accidents:
/// the county and the city.
pub fn may_decide(role: &str) -> bool {
    matches!(role, "county" | "city")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn person(role: &str, id: Option<&str>) -> Caller {
        Caller::Person(
            Session {
                username: "u".into(),
                role: role.into(),
                person_id: id.map(str::to_string),
                region_id: None,
                csrf: String::new(),
                lang: crate::web::i18n::Lang::Zh,
            },
            Credential::Token,
        )
    }

    #[test]
    fn a_person_acts_as_themselves_only() {
        let p = person("grid", Some("grid1"));
        assert_eq!(p.acts_as("person_id", None).unwrap(), "grid1");
        assert_eq!(p.acts_as("person_id", Some("")).unwrap(), "grid1");
        assert_eq!(p.acts_as("person_id", Some("grid1")).unwrap(), "grid1");
        let e = p.acts_as("person_id", Some("city1")).unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)), "{e}");
        assert!(e.to_string().contains("person_id"), "{e}");
        // An account without a registry person cannot act.
        let admin = person("admin", None);
        assert!(matches!(
            admin.acts_as("actor", None),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn a_machine_names_the_person() {
        assert_eq!(
            Caller::Machine(Operator::default())
                .acts_as("actor", Some("p1"))
                .unwrap(),
            "p1"
        );
        let e = Caller::Machine(Operator::default())
            .acts_as("actor", None)
            .unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)));
        assert!(e.to_string().starts_with("actor:"), "{e}");
        assert_eq!(
            Caller::Machine(Operator::default()).audit_name(),
            "operator"
        );
    }

    #[test]
    fn roles_gate_persons_not_machines() {
        let ent = person("enterprise", Some("safety1"));
        assert!(ent.require(may_assign, "assign").is_err());
        assert!(ent.require(may_report_hazard, "report").is_ok());
        assert!(
            person("admin", None)
                .require(may_write_registry, "w")
                .is_ok()
        );
        assert!(
            person("city", Some("c"))
                .require(may_write_registry, "w")
                .is_err()
        );
        assert!(
            Caller::Machine(Operator::default())
                .require(|_| false, "anything")
                .is_ok()
        );
    }
}
