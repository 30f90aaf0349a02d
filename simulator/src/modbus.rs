//! Modbus server mode: virtual devices of every kind expose our firmware's
//! input-register map (`anquan_firmware::modbus`, encoded by the firmware's
//! own encoder) on one TCP port (tokio-modbus `tcp-server`) or one serial
//! line (RTU), one unit id per device, so a lab can poll a whole simulated
//! site.
//!
//! Holding registers (function 03) show each device's settings on its
//! kind's default rules (read-only here). A [`Site`] holds the register
//! images; tests and the `modbus` command
//! change readings with [`Site::set`], make a device stop answering with
//! [`Site::set_silent`], or make it answer with an exception with
//! [`Site::set_exception`].

use std::collections::HashMap;
use std::future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use anquan_firmware::modbus::{
    InputImage, Settings, Status, encode_holding_registers, encode_input_registers, map_for,
};
use anquan_protocol::{DeviceKind, Fault, Faults, Metric, Readings};
use tokio::net::TcpListener;
pub use tokio_modbus::ExceptionCode;
use tokio_modbus::server::Service;
use tokio_modbus::{Request, Response, SlaveRequest};

/// One virtual device.
#[derive(Debug, Clone)]
struct Unit {
    kind: DeviceKind,
    seq: u32,
    readings: Readings,
    faults: Faults,
    input: Vec<u16>,
    holding: Vec<u16>,
    silent: bool,
    exception: Option<ExceptionCode>,
}

/// The virtual devices behind one port, by unit id.
#[derive(Debug, Default)]
pub struct Site {
    units: Mutex<HashMap<u8, Unit>>,
    requests: std::sync::atomic::AtomicU64,
    /// Answer delay, µs (a device's processing time / a slow bus).
    delay_us: std::sync::atomic::AtomicU64,
    /// Requests being answered now, and the most ever at once.
    in_flight: std::sync::atomic::AtomicU64,
    max_in_flight: std::sync::atomic::AtomicU64,
}

impl Site {
    /// A site with `devices` (unit id, kind), every reading at `nominal`.
    pub fn new(devices: &[(u8, DeviceKind)]) -> Arc<Self> {
        let site = Self::default();
        for (unit, kind) in devices {
            let mut u = Unit {
                kind: *kind,
                seq: 0,
                readings: nominal(*kind).into_iter().collect(),
                faults: Faults::new(),
                input: vec![0; map_for(*kind).input_len()],
                holding: holding(*kind),
                silent: false,
                exception: None,
            };
            let _ = encode(&mut u, 0);
            site.lock().insert(*unit, u);
        }
        Arc::new(site)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u8, Unit>> {
        self.units.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets readings of `unit` (others keep their value); a value outside
    /// the metric's range or not in the kind's map is refused.
    pub fn set(&self, unit: u8, readings: &[(Metric, f32)], ts_ms: u64) -> Result<(), String> {
        let mut units = self.lock();
        let u = units.get_mut(&unit).ok_or(format!("no unit {unit}"))?;
        let before = u.readings.clone();
        for (m, v) in readings {
            let _ = u.readings.set(*m, *v);
        }
        u.seq = u.seq.wrapping_add(1);
        if let Err(e) = encode(u, ts_ms) {
            u.readings = before;
            let _ = encode(u, ts_ms);
            return Err(e);
        }
        Ok(())
    }

    /// Sets the active faults of `unit` (a faulty channel's reading is
    /// left out, as the firmware does).
    pub fn set_faults(&self, unit: u8, faults: &[Fault], ts_ms: u64) -> Result<(), String> {
        let mut units = self.lock();
        let u = units.get_mut(&unit).ok_or(format!("no unit {unit}"))?;
        u.faults = faults.iter().copied().collect();
        for f in faults {
            if let Some(m) = f.metric {
                u.readings.remove(m);
            }
        }
        u.seq = u.seq.wrapping_add(1);
        encode(u, ts_ms)
    }

    /// Makes `unit` stop answering (or answer again).
    pub fn set_silent(&self, unit: u8, silent: bool) {
        if let Some(u) = self.lock().get_mut(&unit) {
            u.silent = silent;
        }
    }

    /// Makes `unit` answer every request with `exception` (None: normally).
    pub fn set_exception(&self, unit: u8, exception: Option<ExceptionCode>) {
        if let Some(u) = self.lock().get_mut(&unit) {
            u.exception = exception;
        }
    }

    /// Delays every answer by `delay` (a device's turnaround on a real
    /// bus); zero by default.
    pub fn set_answer_delay(&self, delay: std::time::Duration) {
        self.delay_us.store(
            delay.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The most requests this site was answering at once (over all its
    /// connections).
    pub fn max_in_flight(&self) -> u64 {
        self.max_in_flight
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The units and kinds.
    pub fn units(&self) -> Vec<(u8, DeviceKind)> {
        let mut v: Vec<_> = self.lock().iter().map(|(u, d)| (*u, d.kind)).collect();
        v.sort();
        v
    }

    pub(crate) fn answer(&self, req: SlaveRequest<'_>) -> Result<Option<Response>, ExceptionCode> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let units = self.lock();
        // An absent unit does not answer (as on a serial bus).
        let Some(u) = units.get(&req.slave) else {
            return Ok(None);
        };
        if u.silent {
            return Ok(None);
        }
        if let Some(e) = u.exception {
            return Err(e);
        }
        match req.request {
            Request::ReadInputRegisters(addr, cnt) => {
                let (a, n) = (usize::from(addr), usize::from(cnt));
                if n == 0 || n > 125 {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                let words = u
                    .input
                    .get(a..a + n)
                    .ok_or(ExceptionCode::IllegalDataAddress)?;
                Ok(Some(Response::ReadInputRegisters(words.to_vec())))
            }
            Request::ReadHoldingRegisters(addr, cnt) => {
                let (a, n) = (usize::from(addr), usize::from(cnt));
                if n == 0 || n > 125 {
                    return Err(ExceptionCode::IllegalDataValue);
                }
                let words = u
                    .holding
                    .get(a..a + n)
                    .ok_or(ExceptionCode::IllegalDataAddress)?;
                Ok(Some(Response::ReadHoldingRegisters(words.to_vec())))
            }
            Request::ReadCoils(..) | Request::ReadDiscreteInputs(..) => {
                Err(ExceptionCode::IllegalDataAddress)
            }
            _ => Err(ExceptionCode::IllegalFunction),
        }
    }
}

/// The holding registers (settings) of a device of `kind` on its default
/// rules: 15 s reports, 1 s samples, buzzer and relay on red.
fn holding(kind: DeviceKind) -> Vec<u16> {
    let map = map_for(kind);
    let rules = anquan_edge_rules::defaults::for_kind(kind);
    let settings = Settings::from_parts(
        map,
        15_000,
        1_000,
        Some(anquan_protocol::Level::Red),
        Some(anquan_protocol::Level::Red),
        &rules,
    );
    let mut out = vec![0; map.holding_len()];
    let _ = encode_holding_registers(map, &settings, &mut out);
    out
}

fn encode(u: &mut Unit, ts_ms: u64) -> Result<(), String> {
    let image = InputImage {
        status: Status {
            clock: ts_ms != 0,
            ..Status::default()
        },
        seq: u.seq,
        ts_ms,
        readings: u.readings.clone(),
        faults: u.faults.clone(),
    };
    encode_input_registers(map_for(u.kind), &image, &mut u.input)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Quiet readings of a healthy device of `kind`.
pub fn nominal(kind: DeviceKind) -> Vec<(Metric, f32)> {
    match kind {
        DeviceKind::Gas => vec![(Metric::LelPct, 1.0), (Metric::CoPpm, 2.0)],
        DeviceKind::Electrical => vec![
            (Metric::ResidualMa, 120.0),
            (Metric::Temp1C, 38.0),
            (Metric::Temp2C, 39.0),
            (Metric::Temp3C, 38.0),
            (Metric::Temp4C, 37.0),
        ],
        DeviceKind::WaterPressure => vec![(Metric::PressureMpa, 0.45), (Metric::LevelM, 3.2)],
        DeviceKind::FirePanel => vec![
            (Metric::FirePoints, 0.0),
            (Metric::FaultPoints, 0.0),
            (Metric::IsolatedPoints, 0.0),
            (Metric::SupervisionPoints, 0.0),
        ],
        DeviceKind::Crane => vec![
            (Metric::LoadT, 2.0),
            (Metric::MomentPct, 40.0),
            (Metric::RadiusM, 25.0),
            (Metric::HeightM, 30.0),
            (Metric::SlewDeg, 90.0),
            (Metric::WindMs, 6.0),
            (Metric::TiltDeg, 0.1),
        ],
    }
}

/// The tokio-modbus service of a site.
#[derive(Debug, Clone)]
pub struct SiteService(pub Arc<Site>);

impl Service for SiteService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = std::pin::Pin<
        Box<dyn future::Future<Output = Result<Self::Response, Self::Exception>> + Send>,
    >;

    fn call(&self, req: Self::Request) -> Self::Future {
        use std::sync::atomic::Ordering::SeqCst;
        let site = self.0.clone();
        let now = site.in_flight.fetch_add(1, SeqCst) + 1;
        site.max_in_flight.fetch_max(now, SeqCst);
        let answer = site.answer(req);
        let delay = site.delay_us.load(SeqCst);
        Box::pin(async move {
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_micros(delay)).await;
            }
            site.in_flight.fetch_sub(1, SeqCst);
            answer
        })
    }
}

/// Serves `site` over Modbus TCP on `listener` until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, site: Arc<Site>) -> std::io::Result<()> {
    let server = tokio_modbus::server::tcp::Server::new(listener);
    let on_connected = |stream, _addr: SocketAddr| {
        let svc = SiteService(site.clone());
        async move { Ok(Some((svc, stream))) }
    };
    server.serve(&on_connected, |_err| {}).await
}

/// Serves `site` over Modbus RTU on the serial device `path`.
pub async fn serve_rtu(path: &str, baud: u32, site: Arc<Site>) -> std::io::Result<()> {
    let server = tokio_modbus::server::rtu::Server::new_from_path(path, baud)?;
    server.serve_forever(SiteService(site)).await
}

/// Parses `gas:3,water_pressure:2,crane` into units numbered from 1.
pub fn parse_devices(spec: &str) -> Result<Vec<(u8, DeviceKind)>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, n) = match part.split_once(':') {
            Some((k, n)) => (k, n.parse::<usize>().map_err(|e| format!("{part}: {e}"))?),
            None => (part, 1),
        };
        let kind = DeviceKind::parse(kind).ok_or(format!(
            "{part}: unknown kind (gas, electrical, water_pressure, crane)"
        ))?;
        for _ in 0..n {
            let unit = u8::try_from(out.len() + 1)
                .ok()
                .filter(|u| *u <= 247)
                .ok_or("at most 247 devices per port (Modbus unit ids 1-247)")?;
            out.push((unit, kind));
        }
    }
    if out.is_empty() {
        return Err("no devices".into());
    }
    Ok(out)
}

/// The gateway's `[modbus.dtu]` listener for DTUs that dial `addr`, with
/// their `heartbeat` packet (as the config writes it), if any.
pub fn gateway_dtu_toml(addr: &str, heartbeat: Option<&str>) -> String {
    let mut s = format!("[modbus.dtu]\nlisten = {}\n", toml_string(addr));
    if let Some(h) = heartbeat {
        s.push_str(&format!("heartbeat = {}\n", toml_string(h)));
    }
    s.push('\n');
    s
}

/// `s` as a TOML basic string, quoted and escaped.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The gateway config of a link polling this site at `target` (the
/// `address` for `tcp` and `rtu_over_tcp`, the serial `path` for `rtu`,
/// the `dtu_id` for `dtu`): a `[[modbus.links]]` with one device per unit
/// (ids `{prefix}-{unit}`); `link_extra` is more `key = value` lines for
/// the link.
#[allow(clippy::too_many_arguments)]
pub fn gateway_link_toml(
    name: &str,
    transport: &str,
    target: &str,
    site: &str,
    prefix: &str,
    units: &[(u8, DeviceKind)],
    poll_interval_ms: u64,
    link_extra: &str,
) -> String {
    let target_key = match transport {
        "rtu" => "path",
        "dtu" => "dtu_id",
        _ => "address",
    };
    let target = toml_string(target);
    let mut s = format!(
        "[[modbus.links]]\nname = \"{name}\"\ntransport = \"{transport}\"\n{target_key} = {target}\npoll_interval_ms = {poll_interval_ms}\n{link_extra}\n"
    );
    for (unit, kind) in units {
        s.push_str(&format!(
            "[[modbus.links.devices]]\nid = \"{prefix}-{unit}\"\nsite = \"{site}\"\nkind = \"{kind}\"\nunit = {unit}\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_images_encode() {
        let d = parse_devices("gas:2, water_pressure").unwrap();
        assert_eq!(
            d,
            vec![
                (1, DeviceKind::Gas),
                (2, DeviceKind::Gas),
                (3, DeviceKind::WaterPressure)
            ]
        );
        assert!(parse_devices("smoke").is_err());
        assert!(parse_devices("gas:248").is_err());
        let site = Site::new(&d);
        site.set(3, &[(Metric::PressureMpa, 0.05)], 0).unwrap();
        assert!(site.set(3, &[(Metric::PressureMpa, 99.0)], 0).is_err());
        let r = site
            .answer(SlaveRequest {
                slave: 3,
                request: Request::ReadInputRegisters(9, 1),
            })
            .unwrap();
        assert_eq!(r, Some(Response::ReadInputRegisters(vec![50])));
        // Holding register 0: the report period, 15 s.
        let r = site
            .answer(SlaveRequest {
                slave: 3,
                request: Request::ReadHoldingRegisters(0, 2),
            })
            .unwrap();
        assert_eq!(r, Some(Response::ReadHoldingRegisters(vec![15, 1000])));
        let e = site.answer(SlaveRequest {
            slave: 3,
            request: Request::ReadInputRegisters(9, 100),
        });
        assert_eq!(e, Err(ExceptionCode::IllegalDataAddress));
        assert_eq!(
            site.answer(SlaveRequest {
                slave: 9,
                request: Request::ReadInputRegisters(0, 1),
            }),
            Ok(None)
        );
    }
}
