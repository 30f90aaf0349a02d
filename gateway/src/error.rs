//! The configuration error: which key, and what is wrong with it.
//!
//! A leaf module on purpose. Every config section lives next to the code
//! it configures and validates itself, and `config` assembles the
//! sections; if the error type lived in `config`, every section would
//! import the module that imports it (the cycle this file breaks).

use std::fmt;

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The key path, e.g. `sink.influx.url`, or `(file)` / `(syntax)`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl From<crate::secret::SecretError> for ConfigError {
    fn from(e: crate::secret::SecretError) -> Self {
        Self::new(e.key, e.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config: {}: {}", self.key, self.message)
    }
}

/// Checks a `host:port` socket address string for `key`.
pub(crate) fn parse_addr(key: &str, s: &str) -> Result<std::net::SocketAddr, ConfigError> {
    s.parse()
        .map_err(|e| ConfigError::new(key, format!("`{s}` is not an ip:port address ({e})")))
}
