//! The embedded MQTT broker (rumqttd) for the all-in-one mode: devices and
//! the gateway talk to it on a loopback port (18830 by default, so it never
//! collides with a Mosquitto on 1883).
//!
//! rumqttd's `start()` blocks forever and cannot be stopped, only logs a
//! bind failure, cannot report a port it picked, and defaults its router
//! limits to zero. So: we check the port is free first, run it on a thread
//! of its own (it lives as long as the process), set every limit, and wait
//! until a TCP connect succeeds before returning.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, parse_addr};

/// `[broker]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Run the embedded broker; the gateway then ingests from it and
    /// ignores `mqtt.host`/`mqtt.port`.
    pub enabled: bool,
    /// Listen address (MQTT 3.1.1, plain TCP).
    pub listen: String,
    /// Most simultaneous client connections.
    pub max_connections: usize,
    /// Largest publish payload, bytes.
    pub max_payload_bytes: usize,
    /// QoS 1 messages in flight per connection.
    pub max_inflight: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:18830".into(),
            max_connections: 10_000,
            max_payload_bytes: 16 * 1024,
            max_inflight: 100,
        }
    }
}

impl BrokerConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let a = parse_addr("broker.listen", &self.listen)?;
        if a.port() == 0 {
            return Err(ConfigError::new(
                "broker.listen",
                "needs a fixed port (rumqttd cannot report a port it picked)",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new(
                "broker.max_connections",
                "must be at least 1",
            ));
        }
        if self.max_payload_bytes < 2048 {
            return Err(ConfigError::new(
                "broker.max_payload_bytes",
                "must be at least 2048",
            ));
        }
        if !(1..=65_535).contains(&self.max_inflight) {
            return Err(ConfigError::new(
                "broker.max_inflight",
                "must be between 1 and 65535",
            ));
        }
        Ok(())
    }

    /// The listen address.
    pub fn addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_addr("broker.listen", &self.listen)
    }
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The port is taken.
    #[error("embedded broker: cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// It did not accept connections in time.
    #[error("embedded broker: not accepting connections on {0} after 10 s")]
    NotReady(SocketAddr),
}

/// Starts the broker on its own thread and waits until it accepts
/// connections. It runs until the process exits.
pub fn start(cfg: &BrokerConfig) -> Result<SocketAddr, BrokerError> {
    let addr = cfg.addr()?;
    // Fail with a clear error when the port is taken (rumqttd would only log).
    drop(TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?);
    let server = rumqttd::ServerSettings {
        name: "v4-1".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: cfg.max_payload_bytes,
            max_inflight_count: cfg.max_inflight,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: cfg.max_connections,
            max_outgoing_packet_count: 1_000,
            max_segment_size: 64 << 20,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("v4-1".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|source| BrokerError::Bind { addr, source })?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            tracing::info!(%addr, "embedded broker listening");
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotReady(addr))
}
