//! A safe first run: `check` and `serve` refuse a configuration that still
//! carries the example's secrets (tokens and keys containing `change-me`)
//! or web accounts whose password is the example's, a well-known one or
//! the account's own name, unless told it is a demo (`--demo`). The example
//! file is meant to be copied and edited; started as it is, anyone who has
//! read it could post alarms, call the API and sign in.

use crate::config::{Config, ConfigError};

/// What marks a placeholder in the example file.
pub const PLACEHOLDER: &str = "change-me";

/// Passwords no account may have outside a demo: the example file's and
/// the first few of every guessing list.
pub const KNOWN_PASSWORDS: &[&str] = &[
    "example-password",
    "password",
    "123456",
    "12345678",
    "admin",
    "admin123",
    "changeme",
    "change-me",
    "anquan",
];

/// Everything in `cfg` that must not reach production, each naming its
/// key; empty when the configuration is safe to serve.
pub fn unsafe_settings(cfg: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let placeholder = |s: &str| s.to_ascii_lowercase().contains(PLACEHOLDER);
    let secret = "is the example file's placeholder; generate a secret of your own (e.g. `openssl rand -hex 32`)";
    for (i, t) in cfg.auth.intake_tokens.iter().enumerate() {
        if placeholder(t) {
            out.push(ConfigError::new(format!("auth.intake_tokens[{i}]"), secret));
        }
    }
    for (i, t) in cfg.auth.api_tokens.iter().enumerate() {
        if placeholder(t) {
            out.push(ConfigError::new(format!("auth.api_tokens[{i}]"), secret));
        }
    }
    for (i, o) in cfg.auth.operators.iter().enumerate() {
        if placeholder(&o.token) {
            out.push(ConfigError::new(
                format!("auth.operators[{i}].token"),
                secret,
            ));
        }
    }
    for (i, g) in cfg.auth.gateways.iter().enumerate() {
        if placeholder(&g.token) {
            out.push(ConfigError::new(
                format!("auth.gateways[{i}].token"),
                secret,
            ));
        }
    }
    if placeholder(&cfg.notify.webhook.secret) {
        out.push(ConfigError::new("notify.webhook.secret", secret));
    }
    if let Some(s) = &cfg.ack.secret
        && placeholder(s.expose())
    {
        out.push(ConfigError::new("ack.secret", secret));
    }
    for (i, u) in cfg.users.iter().enumerate() {
        let weak = KNOWN_PASSWORDS
            .iter()
            .copied()
            .chain(std::iter::once(u.username.as_str()))
            .find(|pw| crate::web::auth::verify_password(&u.password_hash, pw));
        if let Some(pw) = weak {
            let why = if pw == u.username {
                "the account's password is its own name".to_string()
            } else {
                format!(
                    "the account's password is {pw:?}, written in the example file or on every guessing list"
                )
            };
            out.push(ConfigError::new(
                format!("users[{i}].password_hash"),
                format!("{why}; set a new one with `anquan-monitor hash-password`"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_example_is_refused_key_by_key() {
        let text = include_str!("../monitor.example.toml");
        let cfg = Config::parse(text).unwrap();
        let keys: Vec<String> = unsafe_settings(&cfg).into_iter().map(|e| e.key).collect();
        for k in [
            "auth.intake_tokens[0]",
            "auth.api_tokens[0]",
            "auth.gateways[0].token",
            "notify.webhook.secret",
            "ack.secret",
            "users[0].password_hash",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
        }
    }

    #[test]
    fn own_secrets_pass() {
        let text = include_str!("../monitor.example.toml").replace("change-me", "f3a9c1");
        let mut cfg = Config::parse(&text).unwrap();
        let strong = crate::web::auth::hash_password(
            "a long passphrase nobody guesses",
            crate::web::auth::test_params(),
        )
        .unwrap();
        for u in &mut cfg.users {
            u.password_hash = strong.clone();
        }
        assert!(unsafe_settings(&cfg).is_empty());
        let named = crate::web::auth::hash_password(
            &cfg.users[0].username.clone(),
            crate::web::auth::test_params(),
        )
        .unwrap();
        cfg.users[0].password_hash = named;
        let e = unsafe_settings(&cfg);
        assert_eq!(e.len(), 1);
        assert!(e[0].reason.contains("its own name"), "{}", e[0].reason);
    }
}
