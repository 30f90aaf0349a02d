//! Who the client is: the peer address, or, when the peer is one of the
//! configured reverse proxies (`server.trusted_proxies`), the address it
//! names in `X-Forwarded-For`. The sign-in limit and the public-report limit
//! are keyed on it; reading the header from anyone would let a client pick
//! its own key, and ignoring it behind a proxy would put every user behind
//! one key.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::App;
use crate::config::ConfigError;

/// `server.trusted_proxies`, parsed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Addresses (`10.0.0.5`) or blocks (`10.0.0.0/8`, `fd00::/8`); the
    /// error names the entry.
    pub fn parse(entries: &[String]) -> Result<Self, ConfigError> {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError::new(
                            format!("server.trusted_proxies[{i}]"),
                            format!("{e:?} is not an IP address or CIDR block"),
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request from `peer` with headers `h`: walking
    /// `X-Forwarded-For` from the right (the hop nearest to us), the first
    /// address that is not a trusted proxy. A malformed entry stops the walk
    /// at the last trusted hop: what lies beyond it cannot be trusted.
    pub fn client(&self, peer: IpAddr, h: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = h
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                break;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so one client has one key.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address (see the module documentation); `unknown` when the
/// server runs without connection info.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl FromRequestParts<App> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &App,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(
                    || "unknown".into(),
                    |c| app.proxies.client(c.0.ip(), &parts.headers).to_string(),
                ),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let t = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let h = headers(&["203.0.113.7"]);
        assert_eq!(t.client(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        assert_eq!(
            t.client(ip("198.51.100.1"), &h),
            ip("198.51.100.1"),
            "an untrusted peer cannot name its own key"
        );
        assert_eq!(
            t.client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop() {
        let t = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        // The client spoofs a first entry; our proxies appended the rest.
        let h = headers(&["1.1.1.1, 203.0.113.7", "10.1.2.3"]);
        assert_eq!(t.client(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        let h = headers(&["1.1.1.1, garbage, 10.1.2.3"]);
        assert_eq!(t.client(ip("127.0.0.1"), &h), ip("10.1.2.3"));
        let h = headers(&["::ffff:203.0.113.9"]);
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/8".into(), "proxy.local".into()]).unwrap_err();
        assert_eq!(e.key, "server.trusted_proxies[1]");
    }
}
