//! The frame envelope (数据包, standard 6.6):
//!
//! | bytes | field |
//! |---|---|
//! | 2 | start `@@` |
//! | 2 | 业务流水号 serial number, low byte first |
//! | 2 | 协议版本号 version: main (fixed 1), user |
//! | 6 | 时间标签 send time, see [`TimeTag`] |
//! | 6 | 源地址 source address, low byte first |
//! | 6 | 目的地址 destination address, low byte first |
//! | 2 | 应用数据单元长度 data unit length, low byte first, ≤ 1024 |
//! | 1 | 命令字节 command |
//! | n | 应用数据单元 data unit (may be empty: confirm, deny, heartbeat) |
//! | 1 | 校验和 sum of the serial number through the data unit, mod 256 |
//! | 2 | end `##` |

use super::bytes::{Reader, Writer, sum};
use super::objects::Objects;
use super::{Gb26875Error, MAX_ADU_LEN, MAX_FRAME_LEN, MIN_FRAME_LEN, TimeTag};

const START: [u8; 2] = *b"@@";
const END: [u8; 2] = *b"##";
/// Start, control unit and command: the bytes before the data unit.
const HEAD_LEN: usize = 27;

/// The command byte (命令字节): what the frame asks or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// 1 控制命令: the centre commands the device (initialise, set clock,
    /// roll call); answered with confirm.
    Control,
    /// 2 发送数据: the device reports alarms and states; answered with
    /// confirm. An empty data unit is the heartbeat.
    Send,
    /// 3 确认: the receiver accepts a control command or sent data.
    Confirm,
    /// 4 请求: the centre queries the device.
    Request,
    /// 5 应答: the device answers a query.
    Response,
    /// 6 否认: the receiver rejects a frame that failed its checks; the
    /// sender retries.
    Deny,
}

impl Command {
    /// The wire byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::Control => 1,
            Self::Send => 2,
            Self::Confirm => 3,
            Self::Request => 4,
            Self::Response => 5,
            Self::Deny => 6,
        }
    }

    /// The command for a wire byte; 0, 7–127 (reserved) and 128–255
    /// (vendor-defined) are rejected, as the standard counts an
    /// unrecognised command among the errors answered with deny.
    pub const fn from_code(code: u8) -> Result<Self, Gb26875Error> {
        Ok(match code {
            1 => Self::Control,
            2 => Self::Send,
            3 => Self::Confirm,
            4 => Self::Request,
            5 => Self::Response,
            6 => Self::Deny,
            other => return Err(Gb26875Error::BadCommand(other)),
        })
    }
}

/// A six-byte source or destination address (a device or the monitoring
/// centre), as on the wire: low byte first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// The address of a 48-bit number; bits above 48 are dropped.
    pub const fn from_u64(v: u64) -> Self {
        let b = v.to_le_bytes();
        Self([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The address as a number (what device labels and configs show).
    pub const fn to_u64(self) -> u64 {
        let [a, b, c, d, e, f] = self.0;
        u64::from_le_bytes([a, b, c, d, e, f, 0, 0])
    }
}

/// The protocol version (协议版本号).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// Main version; the standard fixes it at 1 and the decoder rejects
    /// anything else.
    pub main: u8,
    /// User version, defined by the user; carried, not checked.
    pub user: u8,
}

impl Version {
    /// Main version 1, user version 1: what the standard's examples send.
    pub const V1_1: Self = Self { main: 1, user: 1 };
}

/// The control unit (控制单元): everything about a frame except its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Business serial number: chosen by the side that starts an exchange,
    /// echoed in the confirm, response or deny.
    pub serial: u16,
    /// Protocol version.
    pub version: Version,
    /// When the frame was sent.
    pub time: TimeTag,
    /// Who sent it.
    pub source: Address,
    /// For whom.
    pub destination: Address,
    /// What it asks or answers.
    pub command: Command,
}

impl Header {
    /// The header of an answer to this frame: same serial number and
    /// version, source and destination swapped, sent at `time`. Used to
    /// confirm (or deny) sent data and control commands, and to respond to
    /// requests.
    pub const fn reply(&self, command: Command, time: TimeTag) -> Self {
        Self {
            serial: self.serial,
            version: self.version,
            time,
            source: self.destination,
            destination: self.source,
            command,
        }
    }

    /// Decodes and checks the control unit and command at the front of
    /// `buf` (the first 27 bytes) and returns it with the data unit's
    /// length, without waiting for the rest of the frame. [`Frame::decode`]
    /// starts with this; a receiver also uses it to address the deny that
    /// answers a frame whose checksum failed.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), Gb26875Error> {
        // "Incomplete": at least one more byte, so a reader never spins
        // without reading.
        let incomplete = Gb26875Error::Incomplete {
            need: MIN_FRAME_LEN.saturating_sub(buf.len()).max(1),
        };
        match buf {
            [] | [b'@'] => return Err(incomplete),
            [b'@', b'@', ..] => {}
            _ => return Err(Gb26875Error::BadStart),
        }
        let mut r = Reader::new(buf.get(START.len()..).unwrap_or_default());
        let head = (|| {
            Some((
                r.u16_le()?,
                r.array::<2>()?,
                r.array::<6>()?,
                r.array::<6>()?,
                r.array::<6>()?,
                r.u16_le()?,
                r.u8()?,
            ))
        })();
        let Some((serial, [main, user], time, source, destination, len, command)) = head else {
            return Err(incomplete);
        };
        let adu_len = usize::from(len);
        if adu_len > MAX_ADU_LEN {
            return Err(Gb26875Error::TooLong(adu_len));
        }
        if main != 1 {
            return Err(Gb26875Error::BadVersion(main));
        }
        let header = Self {
            serial,
            version: Version { main, user },
            time: TimeTag::from_bytes(time)?,
            source: Address(source),
            destination: Address(destination),
            command: Command::from_code(command)?,
        };
        Ok((header, adu_len))
    }
}

/// A decoded frame: the header and the data unit, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame<'a> {
    /// The control unit.
    pub header: Header,
    /// The application data unit (type flag, object count, objects); empty
    /// for confirm, deny and the heartbeat.
    pub adu: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Decodes one frame from the front of `buf` and returns it with the
    /// number of bytes it took.
    ///
    /// Strict: the start and end characters, the length (≤ 1024), the
    /// checksum, the command byte (1–6), the main version (1) and the time
    /// tag are all checked. The header fields are checked as soon as the 27
    /// header bytes are in, before waiting for the rest, so a stream that
    /// lost sync fails fast instead of waiting for up to a kilobyte of
    /// garbage. The information objects are checked when iterated
    /// ([`Frame::objects`]).
    ///
    /// [`Gb26875Error::Incomplete`] means "read more and call again"; any
    /// other error means the bytes at the front are not a frame: drop
    /// [`resync`](super::resync)`(buf)` bytes and try again. Never panics,
    /// never allocates.
    pub fn decode(buf: &'a [u8]) -> Result<(Self, usize), Gb26875Error> {
        let (header, adu_len) = Header::decode(buf)?;
        let total = MIN_FRAME_LEN + adu_len;
        if buf.len() < total {
            return Err(Gb26875Error::Incomplete {
                need: total - buf.len(),
            });
        }
        let mut r = Reader::new(buf.get(HEAD_LEN..).unwrap_or_default());
        let incomplete = Gb26875Error::Incomplete { need: 1 };
        let adu = r.take(adu_len).ok_or(incomplete)?;
        let got = r.u8().ok_or(incomplete)?;
        if r.array::<2>() != Some(END) {
            return Err(Gb26875Error::BadEnd);
        }
        let expected = sum(buf.get(START.len()..HEAD_LEN + adu_len).unwrap_or_default());
        if expected != got {
            return Err(Gb26875Error::Checksum { expected, got });
        }
        Ok((Self { header, adu }, total))
    }

    /// A frame with this header and data unit (for example one built with
    /// [`encode_objects`](super::encode_objects)).
    pub const fn new(header: Header, adu: &'a [u8]) -> Self {
        Self { header, adu }
    }

    /// The information objects of the data unit. For send data (2) and
    /// responses (5) these are the reports; for requests (4) and control
    /// commands (1) the query or command objects (types 61–91, iterated as
    /// [`Object::Unknown`](super::Object::Unknown)).
    pub fn objects(&self) -> Objects<'a> {
        Objects::new(self.adu)
    }

    /// Encodes the frame into `out`; returns the number of bytes written
    /// (30 + the data unit). Fails with [`Gb26875Error::TooLong`] for a
    /// data unit over 1024 bytes and [`Gb26875Error::BufferFull`] when
    /// `out` is too small; `out` may then hold a partial frame.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, Gb26875Error> {
        let len = self.adu.len();
        let wire_len = u16::try_from(len)
            .ok()
            .filter(|_| len <= MAX_ADU_LEN)
            .ok_or(Gb26875Error::TooLong(len))?;
        let h = &self.header;
        let mut w = Writer::new(out);
        w.put(&START)?;
        w.u16_le(h.serial)?;
        w.put(&[h.version.main, h.version.user])?;
        h.time.write(&mut w)?;
        w.put(&h.source.0)?;
        w.put(&h.destination.0)?;
        w.u16_le(wire_len)?;
        w.u8(h.command.code())?;
        w.put(self.adu)?;
        let checksum = sum(w.written().get(START.len()..).unwrap_or_default());
        w.u8(checksum)?;
        w.put(&END)?;
        Ok(w.len())
    }

    /// Encodes into a fixed-capacity vector big enough for any frame.
    pub fn to_vec(&self) -> Result<heapless::Vec<u8, MAX_FRAME_LEN>, Gb26875Error> {
        let mut v = heapless::Vec::new();
        // Cannot fail: the capacity is exactly the largest frame.
        v.resize_default(MAX_FRAME_LEN)
            .map_err(|_| Gb26875Error::BufferFull)?;
        let n = self.encode(&mut v)?;
        v.truncate(n);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> TimeTag {
        TimeTag::from_bytes([0x20, 0x3A, 0x09, 0x1A, 0x09, 0x0C]).unwrap()
    }

    fn header(command: Command) -> Header {
        Header {
            serial: 1,
            version: Version::V1_1,
            time: time(),
            source: Address([0x79, 0x03, 0, 0, 0, 0]),
            destination: Address([0x38, 0x5B, 0x01, 0, 0, 0]),
            command,
        }
    }

    #[test]
    fn command_codes_round_trip() {
        for code in 0..=255u8 {
            match Command::from_code(code) {
                Ok(c) => {
                    assert!((1..=6).contains(&code));
                    assert_eq!(c.code(), code);
                }
                Err(e) => assert_eq!(e, Gb26875Error::BadCommand(code)),
            }
        }
    }

    #[test]
    fn address_is_low_byte_first() {
        let a = Address([0x38, 0x5B, 0x01, 0, 0, 0]);
        assert_eq!(a.to_u64(), 0x01_5B38);
        assert_eq!(Address::from_u64(0x01_5B38), a);
        assert_eq!(Address::from_u64(u64::MAX).to_u64(), 0xFFFF_FFFF_FFFF);
    }

    #[test]
    fn reply_swaps_addresses_and_keeps_the_serial() {
        let h = header(Command::Send);
        let r = h.reply(Command::Confirm, time());
        assert_eq!(r.serial, h.serial);
        assert_eq!(r.source, h.destination);
        assert_eq!(r.destination, h.source);
        assert_eq!(r.command, Command::Confirm);
    }

    #[test]
    fn encode_checks_room_and_length() {
        let f = Frame::new(header(Command::Send), &[0; 1025]);
        assert_eq!(f.encode(&mut [0; 2000]), Err(Gb26875Error::TooLong(1025)));
        let f = Frame::new(header(Command::Confirm), &[]);
        assert_eq!(f.encode(&mut [0; 29]), Err(Gb26875Error::BufferFull));
        assert_eq!(f.encode(&mut [0; 30]), Ok(30));
        let v = f.to_vec().unwrap();
        assert_eq!(Frame::decode(&v).unwrap(), (f, 30));
    }
}
