//! MQTT 3.1.1 packets, the subset a publishing device needs: it writes
//! CONNECT, PUBLISH, PINGREQ and DISCONNECT, and reads CONNACK, PUBACK and
//! PINGRESP. Writers stream straight into an `embedded-io` sink (no packet
//! buffer: a 1 KiB payload never sits in RAM twice); the reader is strict
//! and total: any other packet, a reserved flag set, a wrong length or an
//! oversized remaining length is a typed [`DecodeError`], never a panic and
//! never a guess (OASIS MQTT 3.1.1, §2–3).

use embedded_io::Write;

/// Protocol level 4 = MQTT 3.1.1 (§3.1.2.2).
const LEVEL: u8 = 4;
/// The longest packet a publishing client is ever sent (CONNACK, PUBACK:
/// 2 + 2 bytes); anything longer is refused before it is buffered.
pub const MAX_INCOMING: usize = 4;

/// CONNACK return codes (§3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectReturn {
    /// 0: accepted.
    Accepted,
    /// 1: unacceptable protocol version.
    BadProtocol,
    /// 2: client identifier rejected.
    IdentifierRejected,
    /// 3: server unavailable.
    ServerUnavailable,
    /// 4: bad user name or password.
    BadCredentials,
    /// 5: not authorized.
    NotAuthorized,
}

impl ConnectReturn {
    /// All codes, by value.
    pub const ALL: [Self; 6] = [
        Self::Accepted,
        Self::BadProtocol,
        Self::IdentifierRejected,
        Self::ServerUnavailable,
        Self::BadCredentials,
        Self::NotAuthorized,
    ];
}

/// A packet from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// CONNACK.
    ConnAck {
        /// The broker kept a session for this client id.
        session_present: bool,
        /// Accepted or why not.
        code: ConnectReturn,
    },
    /// PUBACK of a QoS 1 publish.
    PubAck {
        /// Its packet id.
        pid: u16,
    },
    /// PINGRESP.
    PingResp,
}

/// Why bytes from the broker are not a packet this client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length is not a valid variable byte integer.
    BadLength,
    /// Longer than any packet a publishing client is sent.
    Oversized,
    /// A packet type a publishing client never receives (e.g. PUBLISH when
    /// it subscribed to nothing, SUBACK, a client-to-server type).
    Unexpected(u8),
    /// The fixed-header flags of this type are fixed by the spec and differ.
    BadFlags(u8),
    /// The remaining length differs from the type's fixed length.
    WrongLength(u8),
    /// CONNACK acknowledge flags with reserved bits set, a return code
    /// above 5, or a session flag with a refusal (§3.2.2.2).
    BadConnAck,
    /// PUBACK of packet id 0 (§2.3.1).
    ZeroPacketId,
}

/// What a CONNECT carries (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Client identifier (the device id).
    pub client_id: &'a str,
    /// Keep-alive, seconds (0 = off).
    pub keep_alive_s: u16,
    /// Start a new session (`false`: the broker keeps the session, so
    /// QoS 1 messages in flight survive a reconnect).
    pub clean_session: bool,
    /// Last will: topic, payload; QoS 1, retained.
    pub will: Option<(&'a str, &'a [u8])>,
    /// User name.
    pub username: Option<&'a str>,
    /// Password.
    pub password: Option<&'a [u8]>,
}

/// Why a packet cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError<E> {
    /// A string or payload longer than MQTT allows (65 535 bytes per
    /// string, 268 435 455 per packet).
    TooLong,
    /// The sink failed.
    Io(E),
}

impl<E> From<E> for EncodeError<E> {
    fn from(e: E) -> Self {
        Self::Io(e)
    }
}

fn str_len<E>(s: &[u8]) -> Result<usize, EncodeError<E>> {
    if s.len() > usize::from(u16::MAX) {
        return Err(EncodeError::TooLong);
    }
    Ok(2 + s.len())
}

/// Writes the fixed header: type/flags byte and the remaining length.
fn header<W: Write>(w: &mut W, first: u8, remaining: usize) -> Result<(), EncodeError<W::Error>> {
    if remaining > 268_435_455 {
        return Err(EncodeError::TooLong);
    }
    let mut buf = [first, 0, 0, 0, 0];
    let mut n = 1;
    let mut x = remaining;
    loop {
        let mut byte = (x % 128) as u8;
        x /= 128;
        if x > 0 {
            byte |= 0x80;
        }
        buf[n] = byte;
        n += 1;
        if x == 0 {
            break;
        }
    }
    w.write_all(&buf[..n])?;
    Ok(())
}

fn string<W: Write>(w: &mut W, s: &[u8]) -> Result<(), EncodeError<W::Error>> {
    w.write_all(&(s.len() as u16).to_be_bytes())?;
    w.write_all(s)?;
    Ok(())
}

/// Writes a CONNECT.
pub fn write_connect<W: Write>(w: &mut W, c: &Connect<'_>) -> Result<(), EncodeError<W::Error>> {
    let mut remaining = 10 + str_len(c.client_id.as_bytes())?;
    let mut flags = 0u8;
    if c.clean_session {
        flags |= 0x02;
    }
    if let Some((topic, message)) = c.will {
        remaining += str_len(topic.as_bytes())? + str_len(message)?;
        // Will flag, will QoS 1, will retain.
        flags |= 0x04 | 0x08 | 0x20;
    }
    if let Some(u) = c.username {
        remaining += str_len(u.as_bytes())?;
        flags |= 0x80;
    }
    if let Some(p) = c.password {
        remaining += str_len(p)?;
        flags |= 0x40;
    }
    header(w, 0x10, remaining)?;
    string(w, b"MQTT")?;
    w.write_all(&[LEVEL, flags])?;
    w.write_all(&c.keep_alive_s.to_be_bytes())?;
    string(w, c.client_id.as_bytes())?;
    if let Some((topic, message)) = c.will {
        string(w, topic.as_bytes())?;
        string(w, message)?;
    }
    if let Some(u) = c.username {
        string(w, u.as_bytes())?;
    }
    if let Some(p) = c.password {
        string(w, p)?;
    }
    Ok(())
}

/// Writes a PUBLISH: QoS 1 with `pid`, or QoS 0 when `pid` is `None`.
pub fn write_publish<W: Write>(
    w: &mut W,
    topic: &str,
    payload: &[u8],
    pid: Option<u16>,
    dup: bool,
    retain: bool,
) -> Result<(), EncodeError<W::Error>> {
    let remaining = str_len(topic.as_bytes())? + pid.map_or(0, |_| 2) + payload.len();
    let mut first = 0x30;
    if pid.is_some() {
        first |= 0x02;
        if dup {
            first |= 0x08;
        }
    }
    if retain {
        first |= 0x01;
    }
    header(w, first, remaining)?;
    string(w, topic.as_bytes())?;
    if let Some(pid) = pid {
        w.write_all(&pid.to_be_bytes())?;
    }
    w.write_all(payload)?;
    Ok(())
}

/// Writes a PINGREQ.
pub fn write_pingreq<W: Write>(w: &mut W) -> Result<(), EncodeError<W::Error>> {
    w.write_all(&[0xC0, 0])?;
    Ok(())
}

/// Writes a DISCONNECT (the broker closes the connection and drops the
/// will: only for a session the client ends on purpose).
pub fn write_disconnect<W: Write>(w: &mut W) -> Result<(), EncodeError<W::Error>> {
    w.write_all(&[0xE0, 0])?;
    Ok(())
}

/// Reads one packet from the start of `buf`: `Ok(None)` while it is
/// incomplete, else the packet and the bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Incoming, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    // The type is known from the first byte: refuse early.
    let (packet, expect_len) = match first >> 4 {
        2 => (2u8, 2usize),
        4 => (4, 2),
        13 => (13, 0),
        other => return Err(DecodeError::Unexpected(other)),
    };
    if first & 0x0F != 0 {
        return Err(DecodeError::BadFlags(first));
    }
    // Remaining length: at most 4 bytes; the 4th must end it (§2.2.3).
    let mut remaining = 0usize;
    let mut at = 1;
    loop {
        let Some(&b) = buf.get(at) else {
            // Incomplete, but already longer than anything we accept?
            return if at > 2 {
                Err(DecodeError::Oversized)
            } else {
                Ok(None)
            };
        };
        remaining |= usize::from(b & 0x7F) << (7 * (at - 1));
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return Err(DecodeError::BadLength);
        }
    }
    // A length in more bytes than it needs (a trailing 0x00) is malformed.
    if at > 2 && buf[at - 1] == 0 {
        return Err(DecodeError::BadLength);
    }
    if remaining > MAX_INCOMING - 2 {
        return Err(DecodeError::Oversized);
    }
    if remaining != expect_len {
        return Err(DecodeError::WrongLength(first));
    }
    let end = at + remaining;
    let Some(body) = buf.get(at..end) else {
        return Ok(None);
    };
    let p = match packet {
        2 => {
            let (ack, rc) = (body[0], body[1]);
            let code = ConnectReturn::ALL
                .get(usize::from(rc))
                .copied()
                .ok_or(DecodeError::BadConnAck)?;
            if ack & 0xFE != 0 || (ack == 1 && code != ConnectReturn::Accepted) {
                return Err(DecodeError::BadConnAck);
            }
            Incoming::ConnAck {
                session_present: ack == 1,
                code,
            }
        }
        4 => {
            let pid = u16::from_be_bytes([body[0], body[1]]);
            if pid == 0 {
                return Err(DecodeError::ZeroPacketId);
            }
            Incoming::PubAck { pid }
        }
        _ => Incoming::PingResp,
    };
    Ok(Some((p, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn bytes(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    #[test]
    fn connect_with_will_and_credentials() {
        let c = Connect {
            client_id: "gas-1",
            keep_alive_s: 30,
            clean_session: false,
            will: Some(("s/st", b"offline")),
            username: Some("u"),
            password: Some(b"pw"),
        };
        let v = bytes(|v| write_connect(v, &c).unwrap());
        let mut expect = std::vec![0x10, 0];
        expect.extend_from_slice(&[
            0,
            4,
            b'M',
            b'Q',
            b'T',
            b'T',
            4,
            0x80 | 0x40 | 0x20 | 0x08 | 0x04,
            0,
            30,
        ]);
        expect.extend_from_slice(&[0, 5, b'g', b'a', b's', b'-', b'1']);
        expect.extend_from_slice(&[0, 4, b's', b'/', b's', b't']);
        expect.extend_from_slice(&[0, 7]);
        expect.extend_from_slice(b"offline");
        expect.extend_from_slice(&[0, 1, b'u', 0, 2, b'p', b'w']);
        expect[1] = (expect.len() - 2) as u8;
        assert_eq!(v, expect);
    }

    #[test]
    fn publish_qos1_dup_and_long_length() {
        let payload = [b'x'; 200];
        let v = bytes(|v| write_publish(v, "a/b", &payload, Some(0x1234), true, false).unwrap());
        // 2+3 topic, 2 pid, 200 payload = 207 = 0xCF 0x01.
        assert_eq!(&v[..3], &[0x3A, 0xCF, 0x01]);
        assert_eq!(&v[3..8], &[0, 3, b'a', b'/', b'b']);
        assert_eq!(&v[8..10], &[0x12, 0x34]);
        assert_eq!(v.len(), 3 + 207);
        let v = bytes(|v| write_publish(v, "t", b"on", None, true, true).unwrap());
        assert_eq!(v, [0x31, 5, 0, 1, b't', b'o', b'n']);
        assert_eq!(bytes(|v| write_pingreq(v).unwrap()), [0xC0, 0]);
        assert_eq!(bytes(|v| write_disconnect(v).unwrap()), [0xE0, 0]);
    }

    #[test]
    fn decodes_what_a_broker_sends() {
        assert_eq!(
            decode(&[0x20, 2, 1, 0, 0xD0]),
            Ok(Some((
                Incoming::ConnAck {
                    session_present: true,
                    code: ConnectReturn::Accepted
                },
                4
            )))
        );
        assert_eq!(
            decode(&[0x20, 2, 0, 5]).unwrap().unwrap().0,
            Incoming::ConnAck {
                session_present: false,
                code: ConnectReturn::NotAuthorized
            }
        );
        assert_eq!(
            decode(&[0x40, 2, 0x12, 0x34]),
            Ok(Some((Incoming::PubAck { pid: 0x1234 }, 4)))
        );
        assert_eq!(decode(&[0xD0, 0]), Ok(Some((Incoming::PingResp, 2))));
        // Incomplete.
        for part in [&[][..], &[0x40], &[0x40, 2], &[0x40, 2, 0]] {
            assert_eq!(decode(part), Ok(None));
        }
    }

    #[test]
    fn refuses_everything_else() {
        use DecodeError::*;
        assert_eq!(decode(&[0x20, 2, 2, 0]), Err(BadConnAck));
        assert_eq!(decode(&[0x20, 2, 1, 5]), Err(BadConnAck));
        assert_eq!(decode(&[0x20, 2, 0, 6]), Err(BadConnAck));
        assert_eq!(decode(&[0x40, 2, 0, 0]), Err(ZeroPacketId));
        assert_eq!(decode(&[0x42, 2, 0, 1]), Err(BadFlags(0x42)));
        assert_eq!(decode(&[0x40, 1, 0]), Err(WrongLength(0x40)));
        assert_eq!(decode(&[0x30, 2, 0, 0]), Err(Unexpected(3)));
        assert_eq!(decode(&[0x90, 3, 0, 1, 0]), Err(Unexpected(9)));
        assert_eq!(decode(&[0x40, 3, 0, 1, 0]), Err(Oversized));
        assert_eq!(decode(&[0x40, 0x80, 0x80]), Err(Oversized));
        assert_eq!(decode(&[0x40, 0xFF, 0xFF, 0xFF, 0xFF, 1]), Err(BadLength));
        assert_eq!(decode(&[0xD0, 0x80, 0x00]), Err(BadLength));
    }
}
