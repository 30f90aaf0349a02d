//! Who may post alarms, for which sites, how fast. A gateway's token is
//! either unscoped (`auth.intake_tokens`, every site) or scoped to its own
//! sites (`[[auth.gateways]]`): an event whose `site` is not one of them is
//! refused with 403 and counted, so a token stolen from one site cannot
//! raise alarms at another. Each token has its own token bucket
//! (`auth.intake_per_token_per_s`); over it the answer is 429 with
//! `Retry-After`, which the gateway retries (nothing is lost), so one
//! runaway gateway cannot starve the others. Anonymous hazard reports are
//! limited per client address ([`PublicLimit`]).

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::AuthConfig;
use crate::error::{Error, Result};

struct Entry {
    token: String,
    /// `None`: every site.
    scope: Option<(String, Vec<String>)>,
    limit: Option<DefaultDirectRateLimiter>,
}

/// The intake tokens with their scopes and rate limits.
pub struct Gatekeeper {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("Gatekeeper")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

/// What a valid token may do.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    scope: Option<&'a (String, Vec<String>)>,
}

impl Grant<'_> {
    /// Whether the token may report alarms of `site`.
    pub fn allow_site(&self, site: &str) -> Result<()> {
        match self.scope {
            None => Ok(()),
            Some((_, sites)) if sites.iter().any(|s| s == site) => Ok(()),
            Some((name, sites)) => Err(Error::Forbidden(format!(
                "the token of gateway '{name}' may not send alarms of site '{site}' \
                 (its sites: {}); add the site to its auth.gateways entry or use that site's gateway token",
                sites.join(", ")
            ))),
        }
    }
}

impl Grant<'_> {
    /// Whether the token may report for the gateway `id`: a token bound to
    /// a gateway only for that one (its `name`).
    pub fn allow_gateway(&self, id: &str) -> Result<()> {
        match self.scope {
            Some((name, _)) if name != id => Err(Error::Forbidden(format!(
                "the token of gateway '{name}' may not report for gateway '{id}'"
            ))),
            _ => Ok(()),
        }
    }
}

impl Gatekeeper {
    /// From `[auth]`.
    pub fn new(cfg: &AuthConfig) -> Self {
        let limit = || {
            NonZeroU32::new(cfg.intake_per_token_per_s)
                .map(|n| RateLimiter::direct(Quota::per_second(n)))
        };
        let mut entries: Vec<Entry> = cfg
            .intake_tokens
            .iter()
            .map(|t| Entry {
                token: t.clone(),
                scope: None,
                limit: limit(),
            })
            .collect();
        entries.extend(cfg.gateways.iter().map(|g| Entry {
            token: g.token.clone(),
            scope: Some((g.name.clone(), g.sites.clone())),
            limit: limit(),
        }));
        Self { entries }
    }

    /// Checks the bearer `token` and takes one unit of its rate.
    pub fn admit(&self, token: &str) -> Result<Grant<'_>> {
        // Compare with every token in full, so timing reveals no prefix.
        let found = self.entries.iter().fold(None, |acc, e| {
            if ct_eq(e.token.as_bytes(), token.as_bytes()) {
                Some(e)
            } else {
                acc
            }
        });
        let Some(e) = found else {
            return Err(Error::Unauthorized(
                "unknown token; use one of auth.intake_tokens or auth.gateways[].token (the gateway's forward.http.token)",
            ));
        };
        if let Some(l) = &e.limit
            && l.check().is_err()
        {
            return Err(Error::TooMany(
                "this token's alarm rate is over auth.intake_per_token_per_s; retry shortly".into(),
            ));
        }
        Ok(Grant {
            scope: e.scope.as_ref(),
        })
    }
}

/// Anonymous hazard reports per client address and minute
/// (`server.public_reports_per_min`): the 举报 form needs no account, so
/// this is what keeps one client from flooding the hazard ledger.
pub struct PublicLimit {
    limit: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for PublicLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicLimit")
            .field("on", &self.limit.is_some())
            .finish()
    }
}

impl PublicLimit {
    /// `per_min` reports per client address and minute; 0 = none.
    pub fn new(per_min: u32) -> Self {
        Self {
            limit: NonZeroU32::new(per_min).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// Takes one report of `client`'s quota.
    pub fn admit(&self, client: &str) -> Result<()> {
        let Some(l) = &self.limit else {
            return Ok(());
        };
        if l.len() > 100_000 {
            // Forget addresses whose quota is full again (bounded memory).
            l.retain_recent();
        }
        l.check_key(&client.to_string()).map_err(|_| {
            tracing::warn!(client, "public report refused: rate limit");
            Error::TooMany("too many reports from this address; try again in a minute".into())
        })
    }
}

/// Constant-time equality (for equal lengths).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayToken;

    fn cfg(rate: u32) -> AuthConfig {
        AuthConfig {
            intake_tokens: vec!["all-sites-token".into()],
            gateways: vec![GatewayToken {
                name: "gw-a".into(),
                token: "site-a-token-0123".into(),
                sites: vec!["site-a".into(), "site-a2".into()],
            }],
            intake_per_token_per_s: rate,
            ..AuthConfig::default()
        }
    }

    #[test]
    fn scoped_tokens_only_report_their_sites() {
        let g = Gatekeeper::new(&cfg(0));
        let any = g.admit("all-sites-token").unwrap();
        assert!(any.allow_site("site-z").is_ok());
        let a = g.admit("site-a-token-0123").unwrap();
        assert!(a.allow_site("site-a2").is_ok());
        let e = a.allow_site("site-b").unwrap_err();
        assert!(matches!(e, Error::Forbidden(ref m) if m.contains("gw-a") && m.contains("site-b")));
        assert!(matches!(g.admit("nope"), Err(Error::Unauthorized(_))));
        assert!(matches!(g.admit(""), Err(Error::Unauthorized(_))));
    }

    #[test]
    fn each_token_has_its_own_bucket() {
        let g = Gatekeeper::new(&cfg(3));
        for _ in 0..3 {
            g.admit("site-a-token-0123").unwrap();
        }
        assert!(matches!(
            g.admit("site-a-token-0123"),
            Err(Error::TooMany(_))
        ));
        // The other token is not affected.
        g.admit("all-sites-token").unwrap();
    }

    #[test]
    fn public_reports_are_limited_per_address() {
        let p = PublicLimit::new(2);
        p.admit("10.0.0.1").unwrap();
        p.admit("10.0.0.1").unwrap();
        assert!(matches!(p.admit("10.0.0.1"), Err(Error::TooMany(_))));
        p.admit("10.0.0.2").unwrap();
        let off = PublicLimit::new(0);
        for _ in 0..100 {
            off.admit("10.0.0.1").unwrap();
        }
    }

    #[test]
    fn debug_shows_no_token() {
        let g = Gatekeeper::new(&cfg(0));
        assert!(!format!("{g:?}").contains("token-0123"));
    }
}
