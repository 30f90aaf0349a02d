//! GB/T 26875.3-2011 (城市消防远程监控系统 第3部分：报警传输网络通信协议):
//! the frames a building's 用户信息传输装置 (user information transmission
//! device, wired to the fire alarm control panel) exchanges with the
//! monitoring centre over TCP or UDP. The gateway receives them with this
//! codec; the simulator produces them with it.
//!
//! * [`Frame::decode`]: one strict, allocation-free frame decoder over a
//!   byte buffer, telling "need more bytes" apart from garbage, and
//!   [`resync`] to skip garbage in a stream.
//! * [`Frame::objects`]: the typed information objects of a data unit
//!   ([`Object`]), with the state words as small flag types
//!   ([`ComponentState::fire_alarm`] …).
//! * [`Frame::encode`], [`encode_objects`] and [`Header::reply`]: frames
//!   into a caller's buffer, among them the confirm (3) or deny (6) that
//!   answers a received frame.
//!
//! A stream reader:
//!
//! ```
//! use anquan_protocol::gb26875::{Frame, resync};
//! fn drain(buf: &mut heapless::Vec<u8, 2048>) {
//!     loop {
//!         match Frame::decode(buf) {
//!             Ok((frame, used)) => {
//!                 for obj in frame.objects() { let _ = obj; }
//!                 buf.rotate_left(used);
//!                 buf.truncate(buf.len() - used);
//!             }
//!             Err(e) if e.is_incomplete() => return, // read more
//!             Err(_) => {
//!                 let skip = resync(buf);
//!                 buf.rotate_left(skip);
//!                 buf.truncate(buf.len() - skip);
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! # Sources, and what is not verified
//!
//! The standard itself (a paid document) was not read. The layout here was
//! checked against:
//!
//! * `ActorLancer/GB-T-26875.3.2011-rs`, `GB26875文档.md`: a Chinese
//!   transcription of the standard's sections 6.6 (frame), 7 (data unit), 8
//!   (type flags, object layouts, state and operation bits, the time tag)
//!   with example frames (component fire alarm, device main power fault,
//!   roll-call answer, software version, confirm, deny). The checksums of
//!   those examples were recomputed and agree with "sum of bytes 3 through
//!   the end of the data unit, mod 256"; several are the test vectors
//!   below.
//! * `shootingfans/codec_gb26875_3_2011` (Go), `codec/codec.go` (frame
//!   layout, byte orders, checksum range), `constant/type.go` (state and
//!   operation bit positions), `constant/apptype.go` (type flags),
//!   `utils/utils.go` (time tag order second…year).
//!
//! The two agree on everything used here. Where the task brief differed
//! they were followed: component state bit 3 is 屏蔽 (isolated) and bit 4
//! 监管 (supervision); bit 5 is 启动 (started), bit 6 反馈, bit 7 延时, bit 8
//! 电源故障; descriptions are GB 18030 (a superset of GB 2312).
//!
//! Not verified against a second source, or not at all:
//!
//! * The split of the component address into 区号 (zone, low two bytes) and
//!   位号 (point, high two bytes) comes from the transcription and one
//!   example only; vendors are known to use the four bytes differently, so
//!   [`ComponentAddress`] keeps the raw `u32`.
//! * Whether real devices send count > 1 for the types the standard gives
//!   as count 1 (5, 8, 21, 25, 28): accepted here.
//! * Vendor command bytes 128–255 and object types 128–254: commands are
//!   rejected ([`Gb26875Error::BadCommand`]), types come through as
//!   [`Object::Unknown`].
//! * Devices without a clock that send an all-zero time tag: rejected
//!   ([`Gb26875Error::BadTime`]); the transcription's heartbeat example
//!   leaves the time tag as placeholders.
//! * The layouts of types 6, 7 and 26 (configuration) and of the downlink
//!   types 61–91 are documented in the transcription but not decoded.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod bytes;
mod error;
mod flags;
mod frame;
mod objects;
mod time;

pub use error::Gb26875Error;
pub use flags::{ComponentState, DeviceOperation, DeviceState, SystemOperation, SystemState};
pub use frame::{Address, Command, Frame, Header, Version};
pub use objects::{
    ComponentAddress, ComponentId, DESCRIPTION_LEN, Description, Object, Objects, SystemId,
    encode_objects,
};
pub use time::TimeTag;

/// The largest application data unit the standard allows.
pub const MAX_ADU_LEN: usize = 1024;

/// The smallest frame: start, control unit, command, checksum, end, and an
/// empty data unit.
pub const MIN_FRAME_LEN: usize = 30;

/// The largest frame.
pub const MAX_FRAME_LEN: usize = MIN_FRAME_LEN + MAX_ADU_LEN;

/// Where the next frame may start: the index of the first `@@` in `buf`,
/// or `None`.
pub fn find_start(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"@@")
}

/// How many bytes to drop after [`Frame::decode`] failed with an error
/// other than [`Gb26875Error::Incomplete`]: up to the next `@@` after the
/// first byte, or everything but a trailing `@` (which may be the first
/// half of a start). Always at least 1 for a non-empty buffer, so a reader
/// that drops this many always makes progress.
pub fn resync(buf: &[u8]) -> usize {
    let after_first = buf.get(1..).unwrap_or_default();
    match find_start(after_first) {
        Some(i) => i + 1,
        None if buf.len() > 1 && buf.last() == Some(&b'@') => buf.len() - 1,
        None => buf.len(),
    }
}

#[cfg(test)]
mod tests;
