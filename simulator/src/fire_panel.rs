//! `anquan-sim fire-panel`: a GB/T 26875.3-2011 user information
//! transmission device (用户信息传输装置, the box wired to a building's fire
//! alarm control panel) that dials the gateway's `[gb26875]` listener over
//! TCP and reports scripted panel events, one frame per step, each waiting
//! for the gateway's confirm (确认) as a real device does.
//!
//! * Every report is a send-data frame (命令 2) with serial numbers 1, 2, …
//!   (wrapping, 0 skipped). A confirm (3) with that serial moves on to the
//!   next step; a deny (6), no answer within the confirm timeout, or a
//!   connection lost before the confirm sends the same frame again (same
//!   serial, same bytes), up to `--retries` times, after which the run
//!   fails.
//! * A connection that drops or cannot be made is dialled again with
//!   backoff (100 ms doubling to 5 s); failing to connect does not use up
//!   retries, only frames sent and not confirmed do.
//! * While idle (`wait=` steps and `--hold-s`), an empty send-data frame
//!   (the heartbeat) goes out every `--heartbeat-s` seconds after the last
//!   frame sent, awaiting its confirm like any report.
//!
//! Descriptions are sent as the UTF-8 bytes given on the command line (the
//! standard says GB 18030, which is identical for ASCII), cut to the 31
//! bytes of the field at a character boundary.
//!
//! Stdout, one line per event, flushed at once: `confirmed serial=N
//! step=STEP` per confirmed step and `done` at the end. Stderr: `connected
//! HOST:PORT` on each connect, dial failures, denies, timeouts, resends, and
//! `unconfirmed serial=N step=STEP` before a non-zero exit; `--verbose`
//! adds `debug:` lines (heartbeat confirms, frames ignored, garbage
//! skipped).

use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anquan_protocol::gb26875::{
    Address, Command, ComponentAddress, ComponentId, ComponentState, DESCRIPTION_LEN, Description,
    DeviceState, Frame, Gb26875Error, Header, Object, SystemId, SystemOperation, TimeTag, Version,
    encode_objects, resync,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// 部件类型 of a point detector (smoke): fire, fault, isolate, supervise,
/// restore steps.
const SMOKE_DETECTOR: u8 = 40;
/// 部件类型 of a manual call point: `call` steps.
const MANUAL_CALL_POINT: u8 = 23;
/// The panel: 系统类型 1 (fire alarm system), 系统地址 1.
const PANEL: SystemId = SystemId {
    kind: 1,
    address: 1,
};
/// The time tags are China Standard Time, as the devices keep it.
const CST_OFFSET_S: i32 = 8 * 3_600;
/// The largest 48-bit address.
const MAX_ADDRESS: u64 = 0xFFFF_FFFF_FFFF;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The time tag used if the wall clock is outside 2000–2099.
const FALLBACK_TIME: TimeTag = match TimeTag::new(0, 1, 1, 0, 0, 0) {
    Ok(t) => t,
    Err(_) => panic!("2000-01-01 00:00:00 is a valid time tag"),
};

/// `anquan-sim fire-panel`.
#[derive(clap::Args, Debug, Clone)]
pub struct FirePanelArgs {
    /// The gateway's `[gb26875] listen` address to dial.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: String,
    /// This device's 48-bit source address (decimal), as configured in
    /// the gateway's `[[gb26875.devices]] address`.
    #[arg(long, value_name = "N", value_parser = parse_address)]
    pub address: u64,
    /// The destination address (the monitoring centre's), decimal.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_address)]
    pub centre: u64,
    /// Send a heartbeat (an empty send-data frame) every this many seconds
    /// while idle (`wait=` steps, `--hold-s`); 0: never.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub heartbeat_s: u64,
    /// How long to wait for the confirm of a frame before sending it again.
    #[arg(long, value_name = "MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub confirm_timeout_ms: u64,
    /// How many times to send a frame again (after a deny, a timeout or a
    /// lost connection) before giving up with a non-zero exit.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// After the last step, keep the connection (and heartbeats) this many
    /// seconds, then print `done` and exit; 0: at once.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub hold_s: u64,
    /// A step, in order (repeat the option): `fire@ZONE/POINT[=DESC]` (smoke
    /// detector fire alarm), `call@ZONE/POINT[=DESC]` (manual call point),
    /// `fault@…`, `isolate@…`, `supervise@…`, `restore@…` (back to
    /// normal), `reset` (the panel reset), `power-fault`, `power-ok` (the
    /// device's main power), `heartbeat`, `wait=SECONDS`. DESC (≤ 31 bytes)
    /// is sent as UTF-8 bytes.
    #[arg(long = "step", value_name = "STEP")]
    pub steps: Vec<Step>,
    /// Print `debug:` lines on stderr (heartbeat confirms, frames ignored,
    /// garbage skipped).
    #[arg(long, short)]
    pub verbose: bool,
}

/// A 48-bit address in decimal.
fn parse_address(s: &str) -> Result<u64, String> {
    let v: u64 = s
        .parse()
        .map_err(|_| format!("`{s}`: not a decimal number"))?;
    if v > MAX_ADDRESS {
        return Err(format!("`{s}`: over 48 bits (max {MAX_ADDRESS})"));
    }
    Ok(v)
}

/// A component report: what happened to a detector or call point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `fire@`: a smoke detector in fire alarm.
    Fire,
    /// `call@`: a manual call point pressed (fire alarm).
    Call,
    /// `fault@`: a detector fault.
    Fault,
    /// `isolate@`: a detector isolated (屏蔽).
    Isolate,
    /// `supervise@`: a supervisory signal (监管).
    Supervise,
    /// `restore@`: the detector back to normal.
    Restore,
}

impl Report {
    const ALL: [Self; 6] = [
        Self::Fire,
        Self::Call,
        Self::Fault,
        Self::Isolate,
        Self::Supervise,
        Self::Restore,
    ];

    /// The step's name before the `@`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fire => "fire",
            Self::Call => "call",
            Self::Fault => "fault",
            Self::Isolate => "isolate",
            Self::Supervise => "supervise",
            Self::Restore => "restore",
        }
    }

    /// The 部件类型 reported.
    pub const fn component_kind(self) -> u8 {
        match self {
            Self::Call => MANUAL_CALL_POINT,
            _ => SMOKE_DETECTOR,
        }
    }

    /// The component state reported.
    pub fn state(self) -> ComponentState {
        let extra = match self {
            Self::Fire | Self::Call => ComponentState::FIRE_ALARM,
            Self::Fault => ComponentState::FAULT,
            Self::Isolate => ComponentState::ISOLATED,
            Self::Supervise => ComponentState::SUPERVISION,
            Self::Restore => ComponentState(0),
        };
        ComponentState::NORMAL | extra
    }
}

/// One `--step`.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A component state (type 2 object).
    Component {
        /// What is reported.
        report: Report,
        /// 区号.
        zone: u16,
        /// 位号.
        point: u16,
        /// The location text, as given (sent cut to 31 bytes).
        description: Option<String>,
    },
    /// The panel's reset (type 4 object, 复位).
    Reset,
    /// The device's main power failed (type 21 object).
    PowerFault,
    /// The device's power is back (type 21 object, normal).
    PowerOk,
    /// A heartbeat: a send-data frame with an empty data unit.
    Heartbeat,
    /// Stay idle this long (heartbeats go on).
    Wait(Duration),
}

const STEP_FORMS: &str = "fire@ZONE/POINT[=DESC], call@ZONE/POINT[=DESC], \
    fault@ZONE/POINT[=DESC], isolate@ZONE/POINT[=DESC], supervise@ZONE/POINT[=DESC], \
    restore@ZONE/POINT[=DESC], reset, power-fault, power-ok, heartbeat, wait=SECONDS";

impl FromStr for Step {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let err = |why: &str| format!("step `{s}`: {why}");
        match s {
            "reset" => return Ok(Self::Reset),
            "power-fault" => return Ok(Self::PowerFault),
            "power-ok" => return Ok(Self::PowerOk),
            "heartbeat" => return Ok(Self::Heartbeat),
            _ => {}
        }
        if let Some(v) = s.strip_prefix("wait=") {
            let secs: f64 = v
                .parse()
                .map_err(|_| err("SECONDS is not a number (wait=5, wait=0.5)"))?;
            return Duration::try_from_secs_f64(secs)
                .map(Self::Wait)
                .map_err(|_| err("SECONDS must be 0 or more"));
        }
        let Some((name, rest)) = s.split_once('@') else {
            return Err(err(&format!("unknown step; expected one of {STEP_FORMS}")));
        };
        let Some(report) = Report::ALL.into_iter().find(|r| r.name() == name) else {
            return Err(err(&format!(
                "unknown component report `{name}`; expected one of {STEP_FORMS}"
            )));
        };
        let (at, description) = match rest.split_once('=') {
            Some((at, d)) => (at, Some(d.to_string())),
            None => (rest, None),
        };
        let Some((zone, point)) = at.split_once('/') else {
            return Err(err("expected ZONE/POINT after `@` (fire@1/2)"));
        };
        let number = |what: &str, v: &str| {
            v.parse::<u16>()
                .map_err(|_| err(&format!("{what} `{v}` is not a number 0-65535")))
        };
        Ok(Self::Component {
            report,
            zone: number("ZONE", zone)?,
            point: number("POINT", point)?,
            description,
        })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Component {
                report,
                zone,
                point,
                description,
            } => {
                write!(f, "{}@{zone}/{point}", report.name())?;
                match description {
                    Some(d) => write!(f, "={d}"),
                    None => Ok(()),
                }
            }
            Self::Reset => f.write_str("reset"),
            Self::PowerFault => f.write_str("power-fault"),
            Self::PowerOk => f.write_str("power-ok"),
            Self::Heartbeat => f.write_str("heartbeat"),
            Self::Wait(d) => write!(f, "wait={}", d.as_secs_f64()),
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a
/// character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

impl Step {
    /// The information object this step reports at `time`; `None` for a
    /// heartbeat (and a wait, which sends nothing).
    pub fn object(&self, time: TimeTag) -> Option<Object<'static>> {
        Some(match self {
            Self::Component {
                report,
                zone,
                point,
                description,
            } => Object::ComponentStatus {
                component: ComponentId {
                    system: PANEL,
                    kind: report.component_kind(),
                    address: ComponentAddress::new(*zone, *point),
                },
                state: report.state(),
                description: Description::new(
                    truncate_utf8(description.as_deref().unwrap_or_default(), DESCRIPTION_LEN)
                        .as_bytes(),
                ),
                time,
            },
            Self::Reset => Object::SystemOperation {
                system: PANEL,
                operation: SystemOperation::RESET,
                operator: 0,
                time,
            },
            Self::PowerFault => Object::DeviceStatus {
                state: DeviceState::NORMAL | DeviceState::MAIN_POWER_FAULT,
                time,
            },
            Self::PowerOk => Object::DeviceStatus {
                state: DeviceState::NORMAL,
                time,
            },
            Self::Heartbeat | Self::Wait(_) => return None,
        })
    }
}

/// A send-data frame (命令 2) from `source` to `destination` carrying
/// `object`, or an empty data unit (the heartbeat) for `None`.
pub fn send_frame(
    serial: u16,
    source: u64,
    destination: u64,
    time: TimeTag,
    object: Option<&Object<'_>>,
) -> Result<Vec<u8>, Gb26875Error> {
    let mut adu = [0u8; 64];
    let n = match object {
        Some(o) => encode_objects(o.type_code(), std::slice::from_ref(o), &mut adu)?,
        None => 0,
    };
    let header = Header {
        serial,
        version: Version::V1_1,
        time,
        source: Address::from_u64(source),
        destination: Address::from_u64(destination),
        command: Command::Send,
    };
    let data = adu.get(..n).ok_or(Gb26875Error::BufferFull)?;
    Ok(Frame::new(header, data).to_vec()?.to_vec())
}

/// Now, as China Standard Time.
pub fn now_time_tag() -> TimeTag {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    TimeTag::from_unix_secs(secs, CST_OFFSET_S).unwrap_or(FALLBACK_TIME)
}

/// What to dial and report.
#[derive(Debug, Clone)]
pub struct Options {
    /// The gateway's `host:port`.
    pub connect: String,
    /// This device's source address.
    pub address: u64,
    /// The destination address.
    pub centre: u64,
    /// The heartbeat period while idle (`None`: no heartbeats).
    pub heartbeat: Option<Duration>,
    /// How long to wait for a confirm.
    pub confirm_timeout: Duration,
    /// Resends of a frame before giving up.
    pub retries: u32,
    /// How long to stay connected after the last step.
    pub hold: Duration,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// `debug:` lines on stderr.
    pub verbose: bool,
}

impl From<&FirePanelArgs> for Options {
    fn from(a: &FirePanelArgs) -> Self {
        Self {
            connect: a.connect.clone(),
            address: a.address,
            centre: a.centre,
            heartbeat: (a.heartbeat_s > 0).then(|| Duration::from_secs(a.heartbeat_s)),
            confirm_timeout: Duration::from_millis(a.confirm_timeout_ms),
            retries: a.retries,
            hold: Duration::from_secs(a.hold_s),
            steps: a.steps.clone(),
            verbose: a.verbose,
        }
    }
}

/// Why a run failed: a frame was never confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirePanelError {
    /// The frame with this serial (of this step, `heartbeat` for an idle
    /// one) was sent `1 + retries` times without a confirm.
    Unconfirmed {
        /// Its serial number.
        serial: u16,
        /// The step.
        step: String,
    },
    /// A frame could not be encoded (cannot happen with the steps above).
    Encode(Gb26875Error),
}

impl fmt::Display for FirePanelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unconfirmed { serial, step } => {
                write!(f, "unconfirmed serial={serial} step={step}")
            }
            Self::Encode(e) => write!(f, "cannot encode a frame: {e}"),
        }
    }
}

impl std::error::Error for FirePanelError {}

/// How a sent frame was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Confirm,
    Deny,
    Timeout,
    Lost,
}

/// The device's connection and counters.
#[derive(Debug)]
struct Device<'a> {
    opts: &'a Options,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
    backoff: Duration,
    /// Wait `backoff` before dialling (the last dial failed, or the
    /// connection dropped).
    pause: bool,
    serial: u16,
    /// When the last frame went out: heartbeats are due a period later.
    last_tx: Instant,
}

impl<'a> Device<'a> {
    fn new(opts: &'a Options) -> Self {
        Self {
            opts,
            conn: None,
            buf: Vec::new(),
            backoff: FIRST_BACKOFF,
            pause: false,
            serial: 0,
            last_tx: Instant::now(),
        }
    }

    fn debug(&self, msg: fmt::Arguments<'_>) {
        if self.opts.verbose {
            eprintln!("debug: {msg}");
        }
    }

    /// The next serial number: 1, 2, … 65535, 1, …
    fn next_serial(&mut self) -> u16 {
        self.serial = self.serial.wrapping_add(1).max(1);
        self.serial
    }

    /// Dials until connected. Cancel-safe: the connection is stored only
    /// once made.
    async fn ensure_connected(&mut self) {
        while self.conn.is_none() {
            if self.pause {
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
            self.pause = true;
            match TcpStream::connect(&self.opts.connect).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    eprintln!("connected {}", self.opts.connect);
                    self.conn = Some(s);
                    self.buf.clear();
                    self.backoff = FIRST_BACKOFF;
                    self.pause = false;
                }
                Err(e) => eprintln!("cannot connect {}: {e}", self.opts.connect),
            }
        }
    }

    fn drop_conn(&mut self, why: fmt::Arguments<'_>) {
        if self.conn.take().is_some() {
            eprintln!("connection to {} lost: {why}", self.opts.connect);
        }
        self.buf.clear();
        self.pause = true;
    }

    /// Takes the next frame's header off the read buffer, skipping
    /// garbage; `None`: read more.
    fn take_frame(&mut self) -> Option<Header> {
        loop {
            match Frame::decode(&self.buf) {
                Ok((frame, used)) => {
                    let header = frame.header;
                    self.buf.drain(..used);
                    return Some(header);
                }
                Err(e) if e.is_incomplete() => return None,
                Err(e) => {
                    let skip = resync(&self.buf);
                    self.debug(format_args!(
                        "skipped {skip} bytes that are not a frame: {e}"
                    ));
                    self.buf.drain(..skip);
                }
            }
        }
    }

    /// Reads from the connection until `deadline`: `Some(true)` bytes
    /// came in, `Some(false)` the connection was lost, `None` the deadline
    /// passed.
    async fn read_until(&mut self, deadline: Instant) -> Option<bool> {
        let stream = self.conn.as_mut()?;
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => None,
            Ok(Ok(0)) => {
                self.drop_conn(format_args!("closed by the gateway"));
                Some(false)
            }
            Ok(Err(e)) => {
                self.drop_conn(format_args!("{e}"));
                Some(false)
            }
            Ok(Ok(n)) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Some(true)
            }
        }
    }

    fn ignore(&self, h: &Header) {
        self.debug(format_args!(
            "ignored a {:?} frame, serial={}",
            h.command, h.serial
        ));
    }

    /// Waits for the confirm or deny of `serial`.
    async fn await_answer(&mut self, serial: u16) -> Answer {
        let deadline = Instant::now() + self.opts.confirm_timeout;
        loop {
            while let Some(h) = self.take_frame() {
                match h.command {
                    Command::Confirm if h.serial == serial => return Answer::Confirm,
                    Command::Deny if h.serial == serial => return Answer::Deny,
                    _ => self.ignore(&h),
                }
            }
            if self.conn.is_none() {
                return Answer::Lost;
            }
            match self.read_until(deadline).await {
                None => return Answer::Timeout,
                Some(false) => return Answer::Lost,
                Some(true) => {}
            }
        }
    }

    /// Sends `frame` until confirmed, at most `1 + retries` times; `step`
    /// names it on stdout (`None`: an idle heartbeat, not printed).
    async fn exchange<W: Write>(
        &mut self,
        frame: &[u8],
        serial: u16,
        step: Option<&str>,
        out: &mut W,
    ) -> Result<(), FirePanelError> {
        let mut failures = 0u32;
        loop {
            self.ensure_connected().await;
            let sent = match self.conn.as_mut() {
                Some(s) => s.write_all(frame).await,
                None => Ok(()),
            };
            let answer = match sent {
                Ok(()) => {
                    self.last_tx = Instant::now();
                    self.await_answer(serial).await
                }
                Err(e) => {
                    self.drop_conn(format_args!("{e}"));
                    Answer::Lost
                }
            };
            let what = step.unwrap_or("heartbeat");
            match answer {
                Answer::Confirm => {
                    match step {
                        Some(step) => {
                            let _ = writeln!(out, "confirmed serial={serial} step={step}");
                            let _ = out.flush();
                        }
                        None => self.debug(format_args!("heartbeat confirmed serial={serial}")),
                    }
                    return Ok(());
                }
                Answer::Deny => eprintln!("denied serial={serial} step={what}"),
                Answer::Timeout => eprintln!(
                    "no confirm for serial={serial} step={what} within {} ms",
                    self.opts.confirm_timeout.as_millis()
                ),
                Answer::Lost => {
                    eprintln!("no confirm for serial={serial} step={what}: connection lost")
                }
            }
            failures += 1;
            if failures > self.opts.retries {
                return Err(FirePanelError::Unconfirmed {
                    serial,
                    step: what.to_string(),
                });
            }
            eprintln!(
                "resending serial={serial} step={what} (retry {failures} of {})",
                self.opts.retries
            );
        }
    }

    /// Stays idle for `d`: keeps the connection (dialling again if it
    /// drops), logs what the gateway sends, and sends heartbeats when due.
    async fn idle<W: Write>(&mut self, d: Duration, out: &mut W) -> Result<(), FirePanelError> {
        let deadline = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            let beat_at = self.opts.heartbeat.map(|p| self.last_tx + p);
            if let Some(at) = beat_at
                && at <= now
            {
                let serial = self.next_serial();
                let frame = send_frame(
                    serial,
                    self.opts.address,
                    self.opts.centre,
                    now_time_tag(),
                    None,
                )
                .map_err(FirePanelError::Encode)?;
                self.exchange(&frame, serial, None, out).await?;
                continue;
            }
            let wake = beat_at.map_or(deadline, |at| at.min(deadline));
            if self.conn.is_none() {
                let _ = tokio::time::timeout_at(wake, self.ensure_connected()).await;
                continue;
            }
            if self.read_until(wake).await == Some(true) {
                while let Some(h) = self.take_frame() {
                    self.ignore(&h);
                }
            }
        }
    }

    async fn run<W: Write>(&mut self, out: &mut W) -> Result<(), FirePanelError> {
        for step in &self.opts.steps {
            if let Step::Wait(d) = step {
                self.idle(*d, out).await?;
                continue;
            }
            let serial = self.next_serial();
            let time = now_time_tag();
            let frame = send_frame(
                serial,
                self.opts.address,
                self.opts.centre,
                time,
                step.object(time).as_ref(),
            )
            .map_err(FirePanelError::Encode)?;
            self.exchange(&frame, serial, Some(&step.to_string()), out)
                .await?;
        }
        if !self.opts.hold.is_zero() {
            self.idle(self.opts.hold, out).await?;
        }
        let _ = writeln!(out, "done");
        let _ = out.flush();
        Ok(())
    }
}

/// Plays the steps against the gateway, printing `confirmed …` lines and
/// `done` to `out` (flushed after each line).
pub async fn run<W: Write>(opts: &Options, out: &mut W) -> Result<(), FirePanelError> {
    Device::new(opts).run(out).await
}

/// `anquan-sim fire-panel`: exit 0 after `done`, 1 when a frame stays
/// unconfirmed.
pub fn main(args: &FirePanelArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anquan-sim fire-panel: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = Options::from(args);
    match rt.block_on(run(&opts, &mut std::io::stdout())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn component(report: Report, zone: u16, point: u16, d: Option<&str>) -> Step {
        Step::Component {
            report,
            zone,
            point,
            description: d.map(str::to_string),
        }
    }

    #[test]
    fn steps_parse_and_print_back() {
        let cases = [
            (
                "fire@1/2=3F east corridor",
                component(Report::Fire, 1, 2, Some("3F east corridor")),
            ),
            ("fire@1/2", component(Report::Fire, 1, 2, None)),
            ("call@0/65535=", component(Report::Call, 0, 65535, Some(""))),
            ("fault@1/7=a=b", component(Report::Fault, 1, 7, Some("a=b"))),
            ("isolate@3/4", component(Report::Isolate, 3, 4, None)),
            ("supervise@3/5", component(Report::Supervise, 3, 5, None)),
            (
                "restore@1/2=三楼",
                component(Report::Restore, 1, 2, Some("三楼")),
            ),
            ("reset", Step::Reset),
            ("power-fault", Step::PowerFault),
            ("power-ok", Step::PowerOk),
            ("heartbeat", Step::Heartbeat),
            ("wait=5", Step::Wait(Duration::from_secs(5))),
            ("wait=0.5", Step::Wait(Duration::from_millis(500))),
            ("wait=0", Step::Wait(Duration::ZERO)),
        ];
        for (text, want) in cases {
            let got: Step = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string(), text);
        }
    }

    #[test]
    fn bad_steps_are_refused_with_a_reason() {
        for (text, why) in [
            ("", "unknown step"),
            ("smoke@1/2", "unknown component report `smoke`"),
            ("fire", "unknown step"),
            ("fire@", "expected ZONE/POINT"),
            ("fire@1", "expected ZONE/POINT"),
            ("fire@1=x", "expected ZONE/POINT"),
            ("fire@a/2", "ZONE `a` is not a number"),
            ("fire@1/70000", "POINT `70000` is not a number"),
            ("fire@-1/2", "ZONE `-1`"),
            ("fire@1/2/3", "POINT `2/3`"),
            ("Reset", "unknown step"),
            ("reset=1", "unknown step"),
            ("heartbeat ", "unknown step"),
            ("wait", "unknown step"),
            ("wait=", "not a number"),
            ("wait=soon", "not a number"),
            ("wait=-1", "0 or more"),
            ("wait=inf", "0 or more"),
            ("wait=NaN", "0 or more"),
        ] {
            let e = text.parse::<Step>().unwrap_err();
            assert!(e.starts_with(&format!("step `{text}`: ")), "{text}: {e}");
            assert!(e.contains(why), "{text}: {e}");
        }
        // The unknown-step message lists the forms.
        let e = "smoke@1/2".parse::<Step>().unwrap_err();
        assert!(e.contains("fire@ZONE/POINT[=DESC]") && e.contains("wait=SECONDS"));
    }

    #[test]
    fn addresses_are_48_bits() {
        assert_eq!(parse_address("100001"), Ok(100_001));
        assert_eq!(parse_address("281474976710655"), Ok(MAX_ADDRESS));
        assert!(
            parse_address("281474976710656")
                .unwrap_err()
                .contains("48 bits")
        );
        assert!(parse_address("0x10").is_err());
    }

    #[test]
    fn descriptions_are_cut_at_a_char_boundary() {
        assert_eq!(truncate_utf8("abc", 31), "abc");
        let long = "x".repeat(40);
        assert_eq!(truncate_utf8(&long, 31).len(), 31);
        // 11 three-byte characters: 33 bytes, cut to 10 (30 bytes).
        let zh = "三".repeat(11);
        assert_eq!(truncate_utf8(&zh, 31), "三".repeat(10));
        let t = TimeTag::new(26, 1, 2, 3, 4, 5).unwrap();
        let step: Step = format!("fire@1/2={zh}").parse().unwrap();
        let Some(Object::ComponentStatus { description, .. }) = step.object(t) else {
            panic!("not a component status");
        };
        assert_eq!(description.trimmed(), "三".repeat(10).as_bytes());
    }

    fn decode(bytes: &[u8]) -> (Header, Vec<Object<'_>>) {
        let (f, used) = Frame::decode(bytes).unwrap();
        assert_eq!(used, bytes.len());
        let objects = f.objects().collect::<Result<Vec<_>, _>>().unwrap();
        (f.header, objects)
    }

    #[test]
    fn a_fire_step_decodes_back() {
        let t = TimeTag::new(26, 12, 6, 10, 6, 8).unwrap();
        let step: Step = "fire@1/2=X".parse().unwrap();
        let bytes = send_frame(9, 100_001, 0, t, step.object(t).as_ref()).unwrap();
        let (h, objects) = decode(&bytes);
        assert_eq!(h.serial, 9);
        assert_eq!(h.command, Command::Send);
        assert_eq!(h.source.to_u64(), 100_001);
        assert_eq!(h.destination.to_u64(), 0);
        assert_eq!(h.time, t);
        let [
            Object::ComponentStatus {
                component,
                state,
                description,
                time,
            },
        ] = objects.as_slice()
        else {
            panic!("{objects:?}");
        };
        assert!(state.fire_alarm() && state.normal() && !state.fault());
        assert_eq!(component.kind, SMOKE_DETECTOR);
        assert_eq!(component.system, PANEL);
        assert_eq!(component.address.zone(), 1);
        assert_eq!(component.address.point(), 2);
        assert_eq!(description.trimmed(), b"X");
        assert_eq!(*time, t);
    }

    #[test]
    fn every_step_encodes_its_object() {
        let t = TimeTag::new(26, 12, 6, 10, 6, 8).unwrap();
        let frame = |s: &str| {
            let step: Step = s.parse().unwrap();
            send_frame(1, 1, 2, t, step.object(t).as_ref()).unwrap()
        };
        let one = |s: &str| {
            let bytes: &'static [u8] = Vec::leak(frame(s));
            let (_, objects) = decode(bytes);
            assert_eq!(objects.len(), 1, "{s}");
            objects[0]
        };
        let state = |s: &str| match one(s) {
            Object::ComponentStatus {
                state, component, ..
            } => (state, component.kind),
            o => panic!("{s}: {o:?}"),
        };
        assert_eq!(
            state("call@1/1"),
            (ComponentState::NORMAL | ComponentState::FIRE_ALARM, 23)
        );
        assert_eq!(
            state("fault@1/1"),
            (ComponentState::NORMAL | ComponentState::FAULT, 40)
        );
        assert_eq!(
            state("isolate@1/1"),
            (ComponentState::NORMAL | ComponentState::ISOLATED, 40)
        );
        assert_eq!(
            state("supervise@1/1"),
            (ComponentState::NORMAL | ComponentState::SUPERVISION, 40)
        );
        assert_eq!(state("restore@1/1"), (ComponentState::NORMAL, 40));
        assert!(matches!(
            one("reset"),
            Object::SystemOperation { system: PANEL, operation, .. } if operation == SystemOperation::RESET
        ));
        assert!(matches!(
            one("power-fault"),
            Object::DeviceStatus { state, .. } if state.main_power_fault() && state.normal()
        ));
        assert!(matches!(
            one("power-ok"),
            Object::DeviceStatus { state, .. } if state == DeviceState::NORMAL
        ));
        let hb = frame("heartbeat");
        let (f, _) = Frame::decode(&hb).unwrap();
        assert!(f.adu.is_empty());
        assert_eq!(f.header.command, Command::Send);
    }

    #[test]
    fn serials_wrap_and_skip_zero() {
        let opts = options("127.0.0.1:1", vec![]);
        let mut d = Device::new(&opts);
        assert_eq!(d.next_serial(), 1);
        d.serial = u16::MAX;
        assert_eq!(d.next_serial(), 1);
    }

    #[test]
    fn the_clock_makes_a_time_tag() {
        assert!(now_time_tag().year() >= 2024);
    }

    // The in-process gateway.

    /// Bounds every exchange; nothing asserts on timing.
    const BOUND: Duration = Duration::from_secs(10);

    fn options(connect: &str, steps: Vec<Step>) -> Options {
        Options {
            connect: connect.to_string(),
            address: 100_001,
            centre: 0,
            heartbeat: None,
            confirm_timeout: Duration::from_secs(3),
            retries: 3,
            hold: Duration::ZERO,
            steps,
            verbose: true,
        }
    }

    /// Reads the next whole frame (its bytes) from `s`; `None` at EOF.
    async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
        loop {
            match Frame::decode(buf) {
                Ok((_, used)) => return Some(buf.drain(..used).collect()),
                Err(e) if e.is_incomplete() => {}
                Err(e) => panic!("the device sent garbage: {e}"),
            }
            let mut chunk = [0u8; 512];
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Answers `frame` with `command` (and some noise first: garbage and
    /// a confirm of another serial, which the device must skip).
    async fn answer(s: &mut TcpStream, frame: &[u8], command: Command) {
        let (f, _) = Frame::decode(frame).unwrap();
        let mut other = f.header.reply(Command::Confirm, f.header.time);
        other.serial = f.header.serial.wrapping_add(100);
        let mut bytes = b"@@garbage".to_vec();
        bytes.extend_from_slice(&Frame::new(other, &[]).to_vec().unwrap());
        let reply = f.header.reply(command, f.header.time);
        bytes.extend_from_slice(&Frame::new(reply, &[]).to_vec().unwrap());
        s.write_all(&bytes).await.unwrap();
    }

    fn serial(frame: &[u8]) -> u16 {
        Frame::decode(frame).unwrap().0.header.serial
    }

    #[tokio::test]
    async fn a_denied_frame_is_sent_again_with_the_same_serial() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let gateway = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let first = read_frame(&mut s, &mut buf).await.unwrap();
            answer(&mut s, &first, Command::Deny).await;
            let second = read_frame(&mut s, &mut buf).await.unwrap();
            answer(&mut s, &second, Command::Confirm).await;
            let third = read_frame(&mut s, &mut buf).await.unwrap();
            answer(&mut s, &third, Command::Confirm).await;
            (first, second, third)
        });
        let opts = options(
            &addr,
            vec!["fire@1/2=X".parse().unwrap(), "reset".parse().unwrap()],
        );
        let mut out = Vec::new();
        let r = tokio::time::timeout(BOUND, run(&opts, &mut out))
            .await
            .unwrap();
        assert_eq!(r, Ok(()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "confirmed serial=1 step=fire@1/2=X\nconfirmed serial=2 step=reset\ndone\n"
        );
        let (first, second, third) = tokio::time::timeout(BOUND, gateway).await.unwrap().unwrap();
        assert_eq!(serial(&first), 1);
        assert_eq!(first, second, "the resent frame differs");
        assert_eq!(serial(&third), 2);
    }

    #[tokio::test]
    async fn the_device_dials_again_when_the_connection_drops() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let gateway = tokio::spawn(async move {
            // The first connection is dropped once the frame is in,
            // unanswered.
            let (mut s, _) = listener.accept().await.unwrap();
            let first = read_frame(&mut s, &mut Vec::new()).await.unwrap();
            drop(s);
            let (mut s, _) = listener.accept().await.unwrap();
            let second = read_frame(&mut s, &mut Vec::new()).await.unwrap();
            answer(&mut s, &second, Command::Confirm).await;
            (first, second)
        });
        let opts = options(&addr, vec!["fault@1/7".parse().unwrap()]);
        let mut out = Vec::new();
        let r = tokio::time::timeout(BOUND, run(&opts, &mut out))
            .await
            .unwrap();
        assert_eq!(r, Ok(()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "confirmed serial=1 step=fault@1/7\ndone\n"
        );
        let (first, second) = tokio::time::timeout(BOUND, gateway).await.unwrap().unwrap();
        assert_eq!(first, second);
    }

    #[tokio::test]
    async fn a_frame_never_confirmed_fails_the_run() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let gateway = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut serials = Vec::new();
            while let Some(f) = read_frame(&mut s, &mut buf).await {
                serials.push(serial(&f));
                answer(&mut s, &f, Command::Deny).await;
            }
            serials
        });
        let mut opts = options(&addr, vec!["heartbeat".parse().unwrap()]);
        opts.retries = 2;
        let mut out = Vec::new();
        let r = tokio::time::timeout(BOUND, run(&opts, &mut out))
            .await
            .unwrap();
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), "unconfirmed serial=1 step=heartbeat");
        assert!(out.is_empty());
        let serials = tokio::time::timeout(BOUND, gateway).await.unwrap().unwrap();
        assert_eq!(serials, [1, 1, 1]);
    }

    #[tokio::test]
    async fn idle_heartbeats_are_confirmed_quietly() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let gateway = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut frames = Vec::new();
            while let Some(f) = read_frame(&mut s, &mut buf).await {
                answer(&mut s, &f, Command::Confirm).await;
                frames.push(f);
            }
            frames
        });
        let mut opts = options(
            &addr,
            vec!["power-fault".parse().unwrap(), "wait=0.3".parse().unwrap()],
        );
        opts.heartbeat = Some(Duration::from_millis(50));
        opts.hold = Duration::from_millis(1);
        let mut out = Vec::new();
        let r = tokio::time::timeout(BOUND, run(&opts, &mut out))
            .await
            .unwrap();
        assert_eq!(r, Ok(()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "confirmed serial=1 step=power-fault\ndone\n"
        );
        let frames = tokio::time::timeout(BOUND, gateway).await.unwrap().unwrap();
        // The report, then at least one heartbeat, serials in order.
        assert!(frames.len() >= 2, "{} frames", frames.len());
        for (i, f) in frames.iter().enumerate() {
            let (h, objects) = decode(f);
            assert_eq!(usize::from(h.serial), i + 1);
            assert_eq!(objects.is_empty(), i > 0);
        }
    }
}
