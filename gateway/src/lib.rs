//! The anquan-iot edge gateway.
//!
//! ```text
//! ingest (MQTT) ─┐                     ┌─ fast lane: early alarms ─────────────┐
//! modbus (poll) ─┼─ Input ─▶ pipeline: judge (pure core) ▶ group commit (store) ├─▶ drain ▶ forward (HTTP, MQTT) ─▶ monitor
//! (more sources) ┘   ▲                  └─ after the commit: acks, wake-ups ──┤
//!                    └── receipts: MQTT acknowledges what is committed          └─▶ drain ▶ sink (InfluxDB 2 / VictoriaMetrics / file)
//! broker (embedded rumqttd, all-in-one mode)   api (/healthz, /metrics)   clock (injectable)
//! ```
//!
//! One module per concept, each with its own config section: [`ingest`],
//! [`modbus`], [`judge`] (with [`validate`] and [`rules`]), [`pipeline`],
//! [`store`], [`drain`], [`sink`], [`forward`], [`api`], [`broker`],
//! [`clock`], [`link`], [`secret`]; [`lab`] (a driven clock, for test
//! benches only). [`Gateway::start`] runs one in-process
//! (the simulator's demo does) and returns a [`GatewayHandle`].

pub mod api;
pub mod backoff;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod drain;
pub mod error;
pub mod forward;
mod gateway;
pub mod gb26875;
pub mod heartbeat;
pub mod ingest;
pub mod judge;
pub mod lab;
pub mod link;
pub mod logging;
pub mod metrics;
pub mod modbus;
pub mod pipeline;
pub mod rules;
pub use anquan_secret as secret;
pub mod sink;
pub mod store;
pub mod validate;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use error::ConfigError;
pub use gateway::{Gateway, GatewayHandle, StartError};
