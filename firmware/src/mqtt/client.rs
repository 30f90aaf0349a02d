//! An MQTT 3.1.1 client for a transparent byte pipe: a 4G DTU in
//! transparent mode, ESP-AT passthrough, a W5500 socket, a UART to a
//! serial-to-TCP converter. It owns the session the wire contract asks for
//! and implements [`Transport`], so `device.step(now, &mut client)` is the
//! whole network side of a device.
//!
//! * CONNECT with a persistent session (`clean_session = false`, client id
//!   = device id) and the last will (`…/status` = `offline`, QoS 1,
//!   retained); CONNACK within [`Config::connack_timeout_ms`], else again
//!   after a doubling back-off; refusals counted by return code.
//! * Keep-alive: PINGREQ after `keep_alive_s` without sending; no PINGRESP
//!   within [`Config::ping_timeout_ms`] means the pipe is dead.
//! * QoS 1: a publish is written with a packet id and answered
//!   [`PublishError::Pending`] until its PUBACK arrives; the device offers
//!   the same message again on later steps and gets `Ok` once it is
//!   acknowledged, and only then deletes the frame. After a reconnect an
//!   unacknowledged message is written again with its packet id and DUP set
//!   (§4.4): at-least-once, duplicates absorbed by the frame's `seq`.
//! * A transparent pipe cannot be closed or re-dialled by the device: the
//!   module does that. When the client gives a session up (a dead keep-alive,
//!   garbage from the broker) it sends DISCONNECT, so a broker still holding
//!   the old connection closes it and the module dials again, and then
//!   CONNECTs anew.
//!
//! Nothing here blocks for an answer: [`Client::poll`] reads what the pipe
//! has (`ReadReady`) and acts on the clock passed in. Every malformed or
//! unexpected packet is counted in [`ClientStats`] and ends the session;
//! nothing from the broker can panic the device.

use embedded_io::{Read, ReadReady, Write};

use super::codec::{self, Connect, ConnectReturn, DecodeError, Incoming, MAX_INCOMING};
use super::{Publish, PublishError, Qos, Transport};

/// Session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    /// Client id: the device id.
    pub client_id: &'a str,
    /// Last will topic (`sites/{site}/devices/{device}/status`, see
    /// [`super::last_will`]); its payload is `offline`, retained, QoS 1.
    pub will_topic: &'a str,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a [u8]>,
    /// Keep-alive, s (the broker drops the session after 1.5× this without
    /// a packet).
    pub keep_alive_s: u16,
    /// How long to wait for CONNACK, ms.
    pub connack_timeout_ms: u32,
    /// How long to wait for PINGRESP, ms.
    pub ping_timeout_ms: u32,
    /// First reconnect delay, ms (doubling up to `max_backoff_ms`).
    pub initial_backoff_ms: u32,
    /// Longest reconnect delay, ms.
    pub max_backoff_ms: u32,
}

impl<'a> Config<'a> {
    /// Defaults for a cellular DTU: keep-alive 60 s, CONNACK within 10 s,
    /// PINGRESP within 10 s, reconnect after 1 s doubling to 60 s.
    pub const fn new(client_id: &'a str, will_topic: &'a str) -> Self {
        Self {
            client_id,
            will_topic,
            username: None,
            password: None,
            keep_alive_s: 60,
            connack_timeout_ms: 10_000,
            ping_timeout_ms: 10_000,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
        }
    }
}

/// Counters since boot: what the link went through (for the device's
/// diagnostic registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// CONNECTs sent.
    pub connects: u32,
    /// Sessions established (CONNACK accepted).
    pub sessions: u32,
    /// CONNACK refusals, by return code 1–5 (index 0 unused).
    pub refused: [u32; 6],
    /// CONNACKs that never came.
    pub connack_timeouts: u32,
    /// PINGRESPs that never came.
    pub ping_timeouts: u32,
    /// Malformed or oversized packets from the broker.
    pub malformed: u32,
    /// Well-formed packets the broker should not have sent (a second
    /// CONNACK, a PUBLISH).
    pub unexpected: u32,
    /// PUBACKs for no message in flight (ignored).
    pub stray_acks: u32,
    /// QoS 1 messages written (first time).
    pub published: u32,
    /// Messages written again after a reconnect (DUP).
    pub resent: u32,
    /// PUBACKs matched.
    pub acked: u32,
    /// Writes or reads the pipe failed.
    pub io_errors: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No session; CONNECT at `retry_at_ms`.
    Down { retry_at_ms: u64 },
    /// CONNECT sent at `since_ms`.
    Connecting { since_ms: u64 },
    /// Session up.
    Up,
}

/// A QoS 1 message in flight, known by a fingerprint of its topic and
/// payload (the device offers the very same bytes again until `Ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    pid: u16,
    fingerprint: u64,
    acked: bool,
    /// Written in an earlier session: write again with DUP.
    resend: bool,
}

/// FNV-1a over topic and payload, with both lengths.
fn fingerprint(m: &Publish<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let len = (m.topic.len() as u64) << 32 | m.payload.len() as u64;
    for b in len
        .to_le_bytes()
        .iter()
        .chain(m.topic.as_bytes())
        .chain(m.payload)
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The client over the pipe `IO`, with `W` messages in flight at most (2:
/// the `online` status and one frame after a reconnect).
#[derive(Debug)]
pub struct Client<'a, IO, const W: usize = 2> {
    io: IO,
    config: Config<'a>,
    state: State,
    rx: [u8; MAX_INCOMING],
    rx_len: usize,
    now_ms: u64,
    last_tx_ms: u64,
    ping_sent_ms: Option<u64>,
    backoff_ms: u32,
    session: u32,
    next_pid: u16,
    in_flight: [Option<InFlight>; W],
    stats: ClientStats,
}

impl<'a, IO: Read + ReadReady + Write, const W: usize> Client<'a, IO, W> {
    /// A client that connects at its first [`Self::poll`].
    pub fn new(io: IO, config: Config<'a>) -> Self {
        Self {
            io,
            config,
            state: State::Down { retry_at_ms: 0 },
            rx: [0; MAX_INCOMING],
            rx_len: 0,
            now_ms: 0,
            last_tx_ms: 0,
            ping_sent_ms: None,
            backoff_ms: config.initial_backoff_ms,
            session: 0,
            next_pid: 1,
            in_flight: [None; W],
            stats: ClientStats::default(),
        }
    }

    /// Counters since boot.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Whether a session is up.
    pub fn is_connected(&self) -> bool {
        self.state == State::Up
    }

    /// The pipe (for the board: e.g. its counters).
    pub fn io(&mut self) -> &mut IO {
        &mut self.io
    }

    /// Messages in flight (written, not yet acknowledged).
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().flatten().filter(|f| !f.acked).count()
    }

    /// Runs the session up to `now_ms` (monotonic): reads what arrived,
    /// connects, pings, times out. Call it before every `device.step`.
    pub fn poll(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.read_incoming();
        match self.state {
            State::Down { retry_at_ms } if now_ms >= retry_at_ms => self.connect(),
            State::Connecting { since_ms }
                if now_ms.saturating_sub(since_ms) >= u64::from(self.config.connack_timeout_ms) =>
            {
                self.stats.connack_timeouts = self.stats.connack_timeouts.saturating_add(1);
                self.give_up(false);
            }
            State::Up => {
                if let Some(sent) = self.ping_sent_ms {
                    if now_ms.saturating_sub(sent) >= u64::from(self.config.ping_timeout_ms) {
                        self.stats.ping_timeouts = self.stats.ping_timeouts.saturating_add(1);
                        self.give_up(true);
                    }
                } else if self.config.keep_alive_s > 0
                    && now_ms.saturating_sub(self.last_tx_ms)
                        >= u64::from(self.config.keep_alive_s) * 1000
                    && self.send(codec::write_pingreq)
                {
                    self.ping_sent_ms = Some(now_ms);
                }
            }
            _ => {}
        }
    }

    fn connect(&mut self) {
        self.rx_len = 0;
        self.ping_sent_ms = None;
        let c = Connect {
            client_id: self.config.client_id,
            keep_alive_s: self.config.keep_alive_s,
            clean_session: false,
            will: Some((
                self.config.will_topic,
                anquan_protocol::DeviceStatus::Offline.as_str().as_bytes(),
            )),
            username: self.config.username,
            password: self.config.password,
        };
        self.stats.connects = self.stats.connects.saturating_add(1);
        if self.send(|w| codec::write_connect(w, &c)) {
            self.state = State::Connecting {
                since_ms: self.now_ms,
            };
        } else {
            self.schedule_retry();
        }
    }

    /// Ends the session; a session that may still be alive on the broker
    /// is closed with DISCONNECT first.
    fn give_up(&mut self, disconnect: bool) {
        if disconnect {
            let _ = self.send(codec::write_disconnect);
        }
        self.schedule_retry();
    }

    fn schedule_retry(&mut self) {
        self.state = State::Down {
            retry_at_ms: self.now_ms + u64::from(self.backoff_ms),
        };
        self.backoff_ms = self
            .backoff_ms
            .saturating_mul(2)
            .min(self.config.max_backoff_ms);
        self.rx_len = 0;
        self.ping_sent_ms = None;
        for f in self.in_flight.iter_mut().flatten() {
            f.resend = true;
        }
    }

    /// Writes one packet; a failed write ends the session.
    fn send<F>(&mut self, write: F) -> bool
    where
        F: FnOnce(&mut IO) -> Result<(), codec::EncodeError<IO::Error>>,
    {
        let ok = write(&mut self.io).is_ok() && self.io.flush().is_ok();
        if ok {
            self.last_tx_ms = self.now_ms;
        } else {
            self.stats.io_errors = self.stats.io_errors.saturating_add(1);
            self.state = State::Down {
                retry_at_ms: self.now_ms + u64::from(self.backoff_ms),
            };
        }
        ok
    }

    fn read_incoming(&mut self) {
        loop {
            match self.io.read_ready() {
                Ok(true) => {}
                Ok(false) => return,
                Err(_) => {
                    self.stats.io_errors = self.stats.io_errors.saturating_add(1);
                    return;
                }
            }
            let mut byte = [0u8; 1];
            match self.io.read(&mut byte) {
                Ok(1) => {}
                Ok(_) => return,
                Err(_) => {
                    self.stats.io_errors = self.stats.io_errors.saturating_add(1);
                    return;
                }
            }
            if matches!(self.state, State::Down { .. }) {
                // Left-overs of a session given up: ignored until CONNECT.
                continue;
            }
            self.rx[self.rx_len] = byte[0];
            self.rx_len += 1;
            match codec::decode(&self.rx[..self.rx_len]) {
                Ok(None) if self.rx_len < MAX_INCOMING => {}
                Ok(None) => self.malformed(DecodeError::Oversized),
                Ok(Some((packet, _))) => {
                    self.rx_len = 0;
                    self.handle(packet);
                }
                Err(e) => self.malformed(e),
            }
        }
    }

    fn malformed(&mut self, e: DecodeError) {
        if matches!(e, DecodeError::Unexpected(_)) {
            self.stats.unexpected = self.stats.unexpected.saturating_add(1);
        } else {
            self.stats.malformed = self.stats.malformed.saturating_add(1);
        }
        // The stream cannot be resynchronised: end the session.
        self.give_up(true);
    }

    fn handle(&mut self, packet: Incoming) {
        match (self.state, packet) {
            (
                State::Connecting { .. },
                Incoming::ConnAck {
                    code: ConnectReturn::Accepted,
                    ..
                },
            ) => {
                self.state = State::Up;
                self.session = self.session.wrapping_add(1).max(1);
                self.stats.sessions = self.stats.sessions.saturating_add(1);
                self.backoff_ms = self.config.initial_backoff_ms;
            }
            (State::Connecting { .. }, Incoming::ConnAck { code, .. }) => {
                let i = code as usize;
                self.stats.refused[i] = self.stats.refused[i].saturating_add(1);
                self.give_up(false);
            }
            (State::Up, Incoming::PubAck { pid }) => {
                match self
                    .in_flight
                    .iter_mut()
                    .flatten()
                    .find(|f| f.pid == pid && !f.acked)
                {
                    Some(f) => {
                        f.acked = true;
                        self.stats.acked = self.stats.acked.saturating_add(1);
                    }
                    None => self.stats.stray_acks = self.stats.stray_acks.saturating_add(1),
                }
            }
            (State::Up, Incoming::PingResp) => self.ping_sent_ms = None,
            _ => {
                self.stats.unexpected = self.stats.unexpected.saturating_add(1);
                self.give_up(true);
            }
        }
    }

    fn take_pid(&mut self) -> u16 {
        let pid = self.next_pid;
        self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
        pid
    }
}

impl<IO: Read + ReadReady + Write, const W: usize> Transport for Client<'_, IO, W> {
    fn session(&mut self) -> Option<u32> {
        (self.state == State::Up).then_some(self.session)
    }

    fn publish(&mut self, m: &Publish<'_>) -> Result<(), PublishError> {
        self.read_incoming();
        if self.state != State::Up {
            return Err(PublishError::NotConnected);
        }
        if m.qos == Qos::AtMostOnce {
            let sent =
                self.send(|w| codec::write_publish(w, m.topic, m.payload, None, false, m.retain));
            return if sent {
                Ok(())
            } else {
                Err(PublishError::NotConnected)
            };
        }
        let fp = fingerprint(m);
        if let Some(i) = self
            .in_flight
            .iter()
            .position(|f| f.is_some_and(|f| f.fingerprint == fp))
        {
            let Some(f) = self.in_flight[i] else {
                return Err(PublishError::Busy);
            };
            if f.acked {
                self.in_flight[i] = None;
                return Ok(());
            }
            if f.resend {
                if !self.send(|w| {
                    codec::write_publish(w, m.topic, m.payload, Some(f.pid), true, m.retain)
                }) {
                    return Err(PublishError::NotConnected);
                }
                self.stats.resent = self.stats.resent.saturating_add(1);
                if let Some(f) = self.in_flight[i].as_mut() {
                    f.resend = false;
                }
            }
            return Err(PublishError::Pending);
        }
        // A free slot, else one whose message was acknowledged but never
        // claimed (the device moved on): it was delivered.
        let slot = self.in_flight.iter().position(Option::is_none).or_else(|| {
            self.in_flight
                .iter()
                .position(|f| f.is_some_and(|f| f.acked))
        });
        let Some(slot) = slot else {
            return Err(PublishError::Busy);
        };
        let pid = self.take_pid();
        if !self.send(|w| codec::write_publish(w, m.topic, m.payload, Some(pid), false, m.retain)) {
            return Err(PublishError::NotConnected);
        }
        self.stats.published = self.stats.published.saturating_add(1);
        self.in_flight[slot] = Some(InFlight {
            pid,
            fingerprint: fp,
            acked: false,
            resend: false,
        });
        Err(PublishError::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// A pipe: what the client wrote, and what the "broker" queued for it.
    #[derive(Default)]
    struct Pipe {
        written: Vec<u8>,
        incoming: VecDeque<u8>,
    }
    impl embedded_io::ErrorType for Pipe {
        type Error = core::convert::Infallible;
    }
    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let mut n = 0;
            while n < buf.len() {
                let Some(b) = self.incoming.pop_front() else {
                    break;
                };
                buf[n] = b;
                n += 1;
            }
            Ok(n)
        }
    }
    impl ReadReady for Pipe {
        fn read_ready(&mut self) -> Result<bool, Self::Error> {
            Ok(!self.incoming.is_empty())
        }
    }
    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    fn client() -> Client<'static, Pipe> {
        let mut c = Config::new("gas-1", "sites/s/devices/gas-1/status");
        c.keep_alive_s = 10;
        Client::new(Pipe::default(), c)
    }

    /// The packets written since the last call: (first byte, pid if a
    /// QoS 1 publish).
    fn sent(c: &mut Client<'static, Pipe>) -> Vec<(u8, Option<u16>)> {
        let bytes = core::mem::take(&mut c.io.written);
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let first = bytes[at];
            let (mut len, mut shift, mut i) = (0usize, 0, at + 1);
            loop {
                let b = bytes[i];
                len |= usize::from(b & 0x7F) << shift;
                shift += 7;
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let body = &bytes[i..i + len];
            let pid = (first >> 4 == 3 && first & 0x06 != 0).then(|| {
                let t = usize::from(u16::from_be_bytes([body[0], body[1]]));
                u16::from_be_bytes([body[2 + t], body[3 + t]])
            });
            out.push((first, pid));
            at = i + len;
        }
        out
    }

    fn msg(payload: &[u8]) -> Publish<'_> {
        Publish {
            topic: "sites/s/devices/gas-1/telemetry",
            payload,
            qos: Qos::AtLeastOnce,
            retain: false,
        }
    }

    fn up(c: &mut Client<'static, Pipe>, now: u64) {
        c.poll(now);
        assert_eq!(sent(c), [(0x10, None)]);
        c.io.incoming.extend([0x20, 2, 0, 0]);
        c.poll(now);
        assert!(c.is_connected());
    }

    #[test]
    fn publish_is_pending_until_its_puback() {
        let mut c = client();
        assert_eq!(c.publish(&msg(b"1")), Err(PublishError::NotConnected));
        up(&mut c, 0);
        assert_eq!(c.session(), Some(1));
        assert_eq!(c.publish(&msg(b"1")), Err(PublishError::Pending));
        assert_eq!(sent(&mut c), [(0x32, Some(1))]);
        // Offered again: nothing written, still pending.
        assert_eq!(c.publish(&msg(b"1")), Err(PublishError::Pending));
        assert!(sent(&mut c).is_empty());
        // A stray ack is counted and ignored.
        c.io.incoming.extend([0x40, 2, 0, 9, 0x40, 2, 0, 1]);
        assert_eq!(c.publish(&msg(b"1")), Ok(()));
        assert_eq!(c.stats().stray_acks, 1);
        assert_eq!(c.stats().acked, 1);
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.publish(&msg(b"2")), Err(PublishError::Pending));
        assert_eq!(sent(&mut c), [(0x32, Some(2))]);
    }

    #[test]
    fn resends_with_dup_after_reconnect() {
        let mut c = client();
        up(&mut c, 0);
        assert_eq!(c.publish(&msg(b"frame")), Err(PublishError::Pending));
        sent(&mut c);
        // No PINGRESP: the pipe is dead; DISCONNECT, back-off, CONNECT.
        c.poll(10_000);
        assert_eq!(sent(&mut c), [(0xC0, None)]);
        c.poll(20_000);
        assert_eq!(sent(&mut c), [(0xE0, None)]);
        assert_eq!(c.stats().ping_timeouts, 1);
        assert_eq!(c.session(), None);
        assert_eq!(c.publish(&msg(b"frame")), Err(PublishError::NotConnected));
        c.poll(20_999);
        assert!(sent(&mut c).is_empty());
        up(&mut c, 21_000);
        assert_eq!(c.session(), Some(2));
        // The status first (a new message), then the frame again: same
        // pid, DUP set; then its PUBACK.
        let status = Publish {
            topic: "sites/s/devices/gas-1/status",
            payload: b"online",
            qos: Qos::AtLeastOnce,
            retain: true,
        };
        assert_eq!(c.publish(&status), Err(PublishError::Pending));
        assert_eq!(sent(&mut c), [(0x33, Some(2))]);
        assert_eq!(c.publish(&msg(b"frame")), Err(PublishError::Pending));
        assert_eq!(sent(&mut c), [(0x3A, Some(1))]);
        assert_eq!(c.stats().resent, 1);
        c.io.incoming.extend([0x40, 2, 0, 2, 0x40, 2, 0, 1]);
        assert_eq!(c.publish(&status), Ok(()));
        assert_eq!(c.publish(&msg(b"frame")), Ok(()));
    }

    #[test]
    fn refusal_timeout_and_garbage_are_counted() {
        let mut c = client();
        c.poll(0);
        sent(&mut c);
        c.io.incoming.extend([0x20, 2, 0, 5]);
        c.poll(1);
        assert_eq!(c.stats().refused[5], 1);
        assert_eq!(c.session(), None);
        // Back-off 1 s, then no CONNACK within 10 s, then 2 s.
        c.poll(1_001);
        assert_eq!(sent(&mut c), [(0x10, None)]);
        c.poll(11_001);
        assert_eq!(c.stats().connack_timeouts, 1);
        c.poll(13_000);
        assert!(sent(&mut c).is_empty());
        c.poll(13_001);
        assert_eq!(sent(&mut c), [(0x10, None)]);
        // Garbage instead of CONNACK: counted, DISCONNECT, back-off again.
        c.io.incoming.extend([0x20, 3, 0, 0, 0]);
        c.poll(13_002);
        assert_eq!(c.stats().malformed, 1);
        assert_eq!(sent(&mut c), [(0xE0, None)]);
        // A PUBLISH from the broker while up is unexpected.
        up(&mut c, 30_000);
        c.io.incoming.extend([0x30, 3, 0, 1, b'x']);
        c.poll(30_001);
        assert_eq!(c.stats().unexpected, 1);
        assert_eq!(c.session(), None);
        // Bytes arriving while down are dropped, not parsed.
        c.io.incoming.extend([0xFF, 0xFF]);
        c.poll(30_002);
        assert_eq!(c.stats().malformed, 1);
    }

    #[test]
    fn keeps_alive() {
        let mut c = client();
        up(&mut c, 0);
        c.poll(9_999);
        assert!(sent(&mut c).is_empty());
        c.poll(10_000);
        assert_eq!(sent(&mut c), [(0xC0, None)]);
        c.io.incoming.extend([0xD0, 0]);
        c.poll(12_000);
        c.poll(25_000);
        assert!(c.is_connected());
        assert_eq!(sent(&mut c), [(0xC0, None)]);
    }
}
