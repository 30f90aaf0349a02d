//! Helpers shared by the end-to-end tests in `tests/tests/` and the
//! gateway bench: real services on free loopback ports ([`services`]), the
//! gateway binary as a child process ([`gateway`]), and a local HTTP
//! receiver standing in for the monitor's alarm intake ([`receiver`]), a
//! fault-injecting proxy ([`proxy`]), the fault matrix ([`faults`]) and
//! the soak ([`soak`]), the monitor binary ([`monitor`]), a PostgreSQL of its own ([`pg`]) and the city-scale
//! alarm storm's plan ([`storm`]).

pub mod faults;
pub mod gateway;
pub mod modbus;
pub mod monitor;
pub mod mqtt;
pub mod pg;
pub mod proxy;
pub mod receiver;
pub mod services;
pub mod soak;
pub mod storm;

use std::path::PathBuf;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
