//! The anquan-iot edge gateway.
//!
//! ```text
//! ingest (MQTT, rumqttc) ─▶ pipeline: validate ▶ rules ▶ durable batch (outbox, redb) ▶ ack
//!                                                        ├─▶ sink (InfluxDB 2 / VictoriaMetrics / file)
//!                                                        └─▶ forward (HTTP, MQTT) ─▶ monitor
//! modbus (poll TCP/RTU devices) ─▶ the same pipeline
//! broker (embedded rumqttd, all-in-one mode)   api (/healthz, /metrics)   clock (injectable)
//! ```
//!
//! One module per concept, each with its own config section: [`ingest`],
//! [`validate`], [`rules`], [`pipeline`], [`outbox`], [`sink`], [`forward`],
//! [`api`], [`broker`], [`clock`], [`secret`]. [`Gateway::start`] runs one in-process
//! (the simulator's demo does) and returns a [`GatewayHandle`].

pub mod api;
pub mod backoff;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod forward;
mod gateway;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod modbus;
pub mod outbox;
pub mod pipeline;
pub mod rules;
pub use anquan_secret as secret;
pub mod sink;
pub mod validate;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigError};
pub use gateway::{Gateway, GatewayHandle, StartError};
