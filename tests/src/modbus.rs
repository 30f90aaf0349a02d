//! Modbus servers for the end-to-end tests: the simulator's (in process,
//! its own runtime) and a third-party one, pymodbus (a Python child
//! process driven over stdin).

use std::sync::Arc;

use anquan_protocol::DeviceKind;
use anquan_sim::modbus::{Site, serve_tcp};

/// The simulator's Modbus TCP server on a free port.
#[derive(Debug)]
pub struct SimServer {
    /// The virtual devices.
    pub site: Arc<Site>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _rt: tokio::runtime::Runtime,
}

impl SimServer {
    /// Serves `units` (unit id, kind).
    pub fn start(units: &[(u8, DeviceKind)]) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
        let site = Site::new(units);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"))
            .port();
        rt.spawn(serve_tcp(listener, site.clone()));
        Self {
            site,
            port,
            _rt: rt,
        }
    }
}
