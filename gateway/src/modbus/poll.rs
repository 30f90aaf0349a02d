//! The link tasks: one per `[[modbus.links]]`, links run concurrently; the
//! devices of a link are polled one after another (never two requests in
//! flight on one link), each on its own interval.
//!
//! Every request has a timeout (tokio-modbus has none of its own); a
//! timeout or transport error drops the connection (a late answer must not
//! be taken for the next request's) and is retried with backoff up to
//! `retries` times. An exception answer is counted by code and not retried
//! (except "busy"/"acknowledge"); the other reads of the poll go on. A
//! poll with no successful read is a failed poll; after `offline_after`
//! failed polls in a row the device is reported `offline` through the
//! judge's status input (the kind's offline rule), and `online` again
//! with its next good poll. An offline device gets a single attempt per
//! read (no retries), so a dead slave costs the bus one timeout per poll.
//!
//! A `dtu` link cannot reconnect by itself: its stream is the one its DTU
//! registered last (taken from the link's [`Slot`] before each request, so
//! a re-registration replaces the old stream between two requests). A
//! timeout or a malformed answer keeps that stream (dropping it would cut
//! every device behind the DTU off until it dials again; the stream
//! discards late bytes before the next request); a transport error or a
//! silent DTU drops it.

use std::time::Duration;

use anquan_firmware::modbus::{RegisterMap, decode_input_registers, map_for};
use anquan_protocol::{DeviceStatus, Faults, Id, Readings, Telemetry};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_modbus::client::{Client, Context, rtu, tcp};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::{ExceptionCode, Request, Response, Slave};
use tokio_util::sync::CancellationToken;

use super::dtu::listen::{Slot, Slots};
use super::map::{Function, Map};
use super::plan::{Plan, Read, plan, spans};
use super::{LinkConfig, ModbusConfig, Parity, Transport};
use crate::backoff::Backoff;
use crate::clock::SharedClock;
use crate::error::ConfigError;
use crate::judge::{Body, Guarantee, Input};
use crate::logging::RateLimiter;
use crate::metrics::Metrics;
use crate::pipeline::{Arrival, Inbound};

/// One device's polling state.
#[derive(Debug)]
struct Device {
    id: Id,
    site: Id,
    kind: anquan_protocol::DeviceKind,
    unit: u8,
    map: Map,
    plan: Plan,
    /// Our firmware's map: one read of the whole image, firmware decoder.
    firmware: Option<&'static RegisterMap>,
    interval: Duration,
    next: Instant,
    seq: u32,
    failures: u32,
    offline: bool,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The device answered with an exception.
    Exception(ExceptionCode),
    /// No usable answer (timeout, transport error, malformed frame), after
    /// the retries.
    NoAnswer,
}

/// The metric label of an exception code.
pub fn exception_reason(e: ExceptionCode) -> String {
    match e {
        ExceptionCode::IllegalFunction => "exception_illegal_function".into(),
        ExceptionCode::IllegalDataAddress => "exception_illegal_data_address".into(),
        ExceptionCode::IllegalDataValue => "exception_illegal_data_value".into(),
        ExceptionCode::ServerDeviceFailure => "exception_server_device_failure".into(),
        ExceptionCode::Acknowledge => "exception_acknowledge".into(),
        ExceptionCode::ServerDeviceBusy => "exception_server_device_busy".into(),
        ExceptionCode::MemoryParityError => "exception_memory_parity_error".into(),
        ExceptionCode::GatewayPathUnavailable => "exception_gateway_path_unavailable".into(),
        ExceptionCode::GatewayTargetDevice => "exception_gateway_target_device".into(),
        ExceptionCode::Custom(c) => format!("exception_{c:02x}"),
    }
}

/// Starts one task per link. The devices' maps are resolved here (the
/// config was validated, so this fails only on a config that was not).
/// `dtu` links take their streams from `dtu` (see [`super::dtu::listen::start`]).
pub fn spawn(
    cfg: &ModbusConfig,
    dtu: &Slots,
    tx: mpsc::Sender<Inbound>,
    clock: SharedClock,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, ConfigError> {
    let mut tasks = Vec::new();
    let now = Instant::now();
    for (li, link) in cfg.links.iter().enumerate() {
        let mut devices = Vec::new();
        for (di, d) in link.devices.iter().enumerate() {
            let map = cfg.resolve_map(li, di, d)?;
            let specs: Vec<_> = map.entries.iter().map(|(_, s)| s.clone()).collect();
            let firmware = map.firmware.map(map_for);
            let plan = match firmware {
                Some(fw) => Plan {
                    reads: vec![Read {
                        function: Function::Input,
                        address: 0,
                        count: fw.input_len() as u16,
                    }],
                    slots: Vec::new(),
                },
                None => plan(&spans(&specs), link.max_gap),
            };
            let interval =
                Duration::from_millis(d.poll_interval_ms.unwrap_or(link.poll_interval_ms));
            metrics
                .modbus_device_failures
                .with_label_values(&[d.id.as_str()])
                .reset();
            devices.push(Device {
                id: d.id.clone(),
                site: d.site.clone(),
                kind: d.kind,
                unit: d.unit,
                map,
                plan,
                firmware,
                interval,
                next: now,
                seq: 0,
                failures: 0,
                offline: false,
            });
        }
        metrics
            .modbus_devices_offline
            .with_label_values(&[link.name.as_str()])
            .set(0);
        let slot = match link.transport {
            Transport::Dtu => Some(dtu.get(link.name.as_str()).cloned().ok_or_else(|| {
                ConfigError::new(
                    format!("modbus.links[{li}].transport"),
                    "a dtu link needs [modbus.dtu]",
                )
            })?),
            _ => None,
        };
        tasks.push(tokio::spawn(run_link(
            link.clone(),
            slot,
            devices,
            tx.clone(),
            clock.clone(),
            metrics.clone(),
            shutdown.clone(),
        )));
    }
    Ok(tasks)
}

/// A link's connection and counters.
struct Conn {
    link: LinkConfig,
    ctx: Option<Context>,
    /// Where a `dtu` link's DTU leaves its stream.
    dtu: Option<std::sync::Arc<Slot>>,
    metrics: Metrics,
    requests: prometheus::IntCounter,
    retries: prometheus::IntCounter,
    limiter: RateLimiter,
    last_request: Option<Instant>,
    /// Reconnect backoff of the link.
    reconnect: Backoff,
    /// No connection attempt before this (after a failed one).
    down_until: Option<Instant>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("link", &self.link.name)
            .field("connected", &self.ctx.is_some())
            .finish()
    }
}

impl Conn {
    fn count(&self, reason: &str) {
        self.metrics
            .modbus_errors
            .with_label_values(&[self.link.name.as_str(), reason])
            .inc();
    }

    async fn connect(&mut self) -> Result<(), String> {
        let t = Duration::from_millis(self.link.timeout_ms);
        let ctx = match self.link.transport {
            Transport::Tcp => {
                let addr = parse(self.link.address.as_deref())?;
                tokio::time::timeout(t, tcp::connect(addr))
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| e.to_string())?
            }
            Transport::RtuOverTcp => {
                let addr = parse(self.link.address.as_deref())?;
                let s = tokio::time::timeout(t, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| e.to_string())?;
                let _ = s.set_nodelay(true);
                rtu::attach(s)
            }
            Transport::Dtu => {
                let s = self
                    .dtu
                    .as_ref()
                    .and_then(|slot| slot.take())
                    .ok_or_else(|| "no DTU registered".to_string())?;
                rtu::attach(s)
            }
            Transport::Rtu => {
                let path = self
                    .link
                    .path
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let parity = match self.link.parity {
                    Parity::None => tokio_serial::Parity::None,
                    Parity::Even => tokio_serial::Parity::Even,
                    Parity::Odd => tokio_serial::Parity::Odd,
                };
                let stop = if self.link.stop_bits == 2 {
                    tokio_serial::StopBits::Two
                } else {
                    tokio_serial::StopBits::One
                };
                let builder = tokio_serial::new(path, self.link.baud)
                    .parity(parity)
                    .stop_bits(stop)
                    .data_bits(tokio_serial::DataBits::Eight);
                let port = tokio_serial::SerialStream::open(&builder).map_err(|e| e.to_string())?;
                rtu::attach(port)
            }
        };
        self.ctx = Some(ctx);
        Ok(())
    }

    /// One read with timeout and up to `retries` retries.
    async fn read(
        &mut self,
        unit: u8,
        r: Read,
        retries: u32,
        shutdown: &CancellationToken,
    ) -> Result<Vec<u16>, Failure> {
        let mut backoff = Backoff::new(self.link.backoff);
        let t = Duration::from_millis(self.link.timeout_ms);
        let name = self.link.name.clone();
        for attempt in 0..=retries {
            if attempt > 0 {
                self.retries.inc();
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    () = shutdown.cancelled() => return Err(Failure::NoAnswer),
                }
            }
            // A DTU that registered (again) since the last request: its
            // new stream replaces the old one, whatever state that is in.
            if let Some(s) = self.dtu.as_ref().and_then(|slot| slot.take()) {
                self.ctx = Some(rtu::attach(s));
                self.down_until = None;
                self.reconnect.reset();
            }
            if self.ctx.is_none() {
                // The link is down: every device's poll fails at once
                // (and counts towards its offline alarm) until the
                // reconnect backoff has passed; no per-device connect
                // timeouts stall the round.
                if self.down_until.is_some_and(|t| Instant::now() < t) {
                    return Err(Failure::NoAnswer);
                }
                if let Err(e) = self.connect().await {
                    self.count("connect");
                    self.down_until = Some(Instant::now() + self.reconnect.next_delay());
                    if let Some(suppressed) = self.limiter.check("connect") {
                        tracing::warn!(link = %name, error = %e, suppressed, "modbus: cannot connect");
                    }
                    return Err(Failure::NoAnswer);
                }
                self.down_until = None;
                self.reconnect.reset();
            }
            if self.link.turnaround_ms > 0
                && let Some(last) = self.last_request
            {
                tokio::time::sleep_until(last + Duration::from_millis(self.link.turnaround_ms))
                    .await;
            }
            let Some(ctx) = self.ctx.as_mut() else {
                continue;
            };
            ctx.set_slave(Slave(unit));
            let req = match r.function {
                Function::Input => Request::ReadInputRegisters(r.address, r.count),
                Function::Holding => Request::ReadHoldingRegisters(r.address, r.count),
                Function::Coil => Request::ReadCoils(r.address, r.count),
                Function::Discrete => Request::ReadDiscreteInputs(r.address, r.count),
            };
            self.requests.inc();
            let res = tokio::time::timeout(t, ctx.call(req)).await;
            self.last_request = Some(Instant::now());
            let reason = match res {
                Err(_) => "timeout",
                Ok(Err(tokio_modbus::Error::Protocol(_))) => "malformed",
                Ok(Err(tokio_modbus::Error::Transport(e))) => {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        "malformed"
                    } else {
                        "io"
                    }
                }
                Ok(Ok(Err(code))) => {
                    self.count(&exception_reason(code));
                    if let Some(suppressed) = self.limiter.check("exception") {
                        tracing::warn!(link = %name, unit, function = r.function.as_str(), address = r.address, count = r.count, exception = ?code, suppressed, "modbus: exception response");
                    }
                    if matches!(
                        code,
                        ExceptionCode::ServerDeviceBusy | ExceptionCode::Acknowledge
                    ) {
                        continue;
                    }
                    return Err(Failure::Exception(code));
                }
                Ok(Ok(Ok(resp))) => match words(resp, r) {
                    Some(w) => return Ok(w),
                    None => "malformed",
                },
            };
            self.count(reason);
            if let Some(suppressed) = self.limiter.check(reason) {
                tracing::warn!(link = %name, unit, reason, attempt, suppressed, "modbus: request failed; reconnecting");
            }
            // A late answer must not be read as the next one's: start over.
            // Not on a DTU's stream for a timeout or a bad answer (it
            // discards late bytes itself; closing it would cut every
            // device behind the DTU off until it dials again).
            let keep =
                self.link.transport == Transport::Dtu && matches!(reason, "timeout" | "malformed");
            if !keep {
                self.ctx = None;
            }
        }
        Err(Failure::NoAnswer)
    }
}

fn parse(a: Option<&str>) -> Result<std::net::SocketAddr, String> {
    a.unwrap_or_default()
        .parse()
        .map_err(|e: std::net::AddrParseError| e.to_string())
}

/// The words (bits as 0/1) of a response, if it answers `r` in full.
fn words(resp: Response, r: Read) -> Option<Vec<u16>> {
    let n = usize::from(r.count);
    let w: Vec<u16> = match (resp, r.function) {
        (Response::ReadInputRegisters(w), Function::Input)
        | (Response::ReadHoldingRegisters(w), Function::Holding) => w,
        (Response::ReadCoils(b), Function::Coil)
        | (Response::ReadDiscreteInputs(b), Function::Discrete) => {
            b.into_iter().map(u16::from).collect()
        }
        _ => return None,
    };
    if w.len() < n || (!r.function.is_bits() && w.len() != n) {
        return None;
    }
    Some(w.into_iter().take(n).collect())
}

/// Polls one device: every read of its plan; `None` when none succeeded.
async fn poll_device(
    conn: &mut Conn,
    d: &Device,
    shutdown: &CancellationToken,
) -> Option<(Readings, Faults)> {
    let mut results: Vec<Option<Vec<u16>>> = Vec::with_capacity(d.plan.reads.len());
    let mut any = false;
    // A device already reported offline gets one attempt per read: a dead
    // slave must not hold the bus for (retries + 1) timeouts every poll.
    let retries = if d.offline { 0 } else { conn.link.retries };
    for r in &d.plan.reads {
        match conn.read(d.unit, *r, retries, shutdown).await {
            Ok(w) => {
                any = true;
                results.push(Some(w));
            }
            Err(Failure::Exception(_)) => results.push(None),
            Err(Failure::NoAnswer) => {
                // The device (or link) is not answering: skip its other
                // reads rather than wait out every timeout.
                return None;
            }
        }
        if shutdown.is_cancelled() {
            return None;
        }
    }
    if !any {
        return None;
    }
    if let Some(fw) = d.firmware {
        let words = results.first()?.as_ref()?;
        return match decode_input_registers(fw, words) {
            Ok(image) => Some((image.readings, image.faults)),
            Err(e) => {
                conn.count("bad_image");
                if let Some(suppressed) = conn.limiter.check("bad_image") {
                    tracing::warn!(link = %conn.link.name, device = %d.id, error = %e, suppressed, "modbus: the input registers are not a valid image of this kind's map");
                }
                None
            }
        };
    }
    let mut readings = Readings::new();
    for ((metric, spec), slot) in d.map.entries.iter().zip(&d.plan.slots) {
        let Some(Some(w)) = results.get(slot.read) else {
            continue;
        };
        let Some(words) = w.get(slot.offset..slot.offset + usize::from(spec.width())) else {
            continue;
        };
        if let Some(v) = spec.decode(words) {
            let _ = readings.set(*metric, v as f32);
        }
    }
    Some((readings, Faults::new()))
}

/// A poll's result for the judge: read once, never delivered again.
fn input(d: &Device, body: Body) -> Arrival {
    Arrival {
        input: Input {
            site: d.site.clone(),
            device: d.id.clone(),
            body,
            guarantee: Guarantee::Once,
        },
        receipt: None,
    }
}

async fn run_link(
    link: LinkConfig,
    dtu: Option<std::sync::Arc<Slot>>,
    mut devices: Vec<Device>,
    tx: mpsc::Sender<Inbound>,
    clock: SharedClock,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let name = link.name.clone();
    let offline_after = link.offline_after;
    let label = [name.as_str()];
    let link_backoff = link.backoff;
    let mut conn = Conn {
        requests: metrics.modbus_requests.with_label_values(&label),
        retries: metrics.modbus_retries.with_label_values(&label),
        link,
        ctx: None,
        dtu,
        metrics: metrics.clone(),
        limiter: RateLimiter::new(Duration::from_secs(10)),
        last_request: None,
        reconnect: Backoff::new(link_backoff),
        down_until: None,
    };
    let n = devices.len();
    let mut cycle_start: Option<Instant> = None;
    let mut polled_in_cycle = 0usize;
    let polls_ok = metrics
        .modbus_polls
        .with_label_values(&[name.as_str(), "ok"]);
    let polls_failed = metrics
        .modbus_polls
        .with_label_values(&[name.as_str(), "failed"]);
    let offline_gauge = metrics.modbus_devices_offline.with_label_values(&label);
    tracing::info!(link = %name, devices = n, "modbus: link started");
    loop {
        let Some(i) = (0..n).min_by_key(|&i| devices[i].next) else {
            return;
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(devices[i].next) => {}
        }
        let started = Instant::now();
        cycle_start.get_or_insert(started);
        let d = &mut devices[i];
        // Keep the cadence; skip polls missed while the link was busy.
        while d.next <= started {
            d.next += d.interval;
        }
        let result = poll_device(&mut conn, d, &shutdown).await;
        if shutdown.is_cancelled() {
            break;
        }
        metrics
            .modbus_poll_seconds
            .observe(started.elapsed().as_secs_f64());
        let mut out = Vec::with_capacity(2);
        match result {
            Some((readings, faults)) => {
                polls_ok.inc();
                d.failures = 0;
                if d.offline {
                    d.offline = false;
                    offline_gauge.dec();
                    tracing::info!(link = %name, device = %d.id, "modbus: device answers again");
                    out.push(input(d, Body::Status(DeviceStatus::Online)));
                }
                let frame = Telemetry {
                    device: d.id.clone(),
                    kind: d.kind,
                    seq: d.seq,
                    ts_ms: clock.now_ms(),
                    readings,
                    faults,
                    dropped: 0,
                };
                d.seq = d.seq.wrapping_add(1);
                out.push(input(d, Body::Telemetry(frame)));
            }
            None => {
                polls_failed.inc();
                d.failures += 1;
                metrics
                    .modbus_device_failures
                    .with_label_values(&[d.id.as_str()])
                    .inc();
                if d.failures >= offline_after && !d.offline {
                    d.offline = true;
                    offline_gauge.inc();
                    tracing::warn!(link = %name, device = %d.id, failures = d.failures, "modbus: device not answering; reporting it offline");
                    out.push(input(d, Body::Status(DeviceStatus::Offline)));
                }
            }
        }
        for m in out {
            if tx.send(m.into()).await.is_err() {
                return;
            }
        }
        polled_in_cycle += 1;
        if polled_in_cycle >= n {
            if let Some(s) = cycle_start.take() {
                metrics
                    .modbus_cycle_seconds
                    .with_label_values(&[name.as_str()])
                    .set(s.elapsed().as_secs_f64());
            }
            polled_in_cycle = 0;
        }
    }
    if let Some(mut ctx) = conn.ctx.take() {
        let _ = tokio::time::timeout(Duration::from_millis(200), ctx.disconnect()).await;
    }
}
