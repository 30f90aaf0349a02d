//! What can be wrong with a GB/T 26875.3 frame, named so that the gateway
//! can log it, count it (`reason` label) and decide between waiting for more
//! bytes, answering 否认 (deny) and dropping garbage.

use core::fmt;

/// Why a frame or an information object was rejected, or could not be
/// encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gb26875Error {
    /// Not an error in the bytes: the frame is not complete yet. At least
    /// `need` more bytes are required before decoding can go on, so a TCP
    /// stream reader keeps what it has and reads again.
    Incomplete {
        /// How many more bytes at least.
        need: usize,
    },
    /// The frame does not begin with the start characters `@@`.
    BadStart,
    /// The end characters `##` are not where the declared length puts them.
    BadEnd,
    /// The declared application data length is over the 1024 the standard
    /// allows (or, when encoding, the data unit would be).
    TooLong(usize),
    /// The checksum byte does not match the sum of the control unit and the
    /// application data.
    Checksum {
        /// What the bytes sum to.
        expected: u8,
        /// What the frame carries.
        got: u8,
    },
    /// A command byte other than 1–6 (0 and 7–127 are reserved, 128–255 are
    /// vendor-defined and not understood here).
    BadCommand(u8),
    /// A main protocol version other than 1, the only one the standard
    /// defines.
    BadVersion(u8),
    /// A time tag with a field out of range (second, minute, hour, day of
    /// the month, month, year 0–99).
    BadTime,
    /// The application data unit ends inside an information object of this
    /// type (or inside its two-byte identifier).
    TruncatedObject {
        /// The data unit's type flag.
        type_code: u8,
    },
    /// Bytes are left over after the declared number of objects.
    TrailingData {
        /// The data unit's type flag.
        type_code: u8,
    },
    /// Encoding: objects of different types in one data unit, which carries
    /// a single type flag.
    MixedObjects,
    /// Encoding: more than 255 objects, more than the count byte holds.
    TooManyObjects,
    /// Encoding: the output buffer is too small.
    BufferFull,
}

impl Gb26875Error {
    /// True for [`Gb26875Error::Incomplete`]: wait for more bytes rather
    /// than resynchronise.
    pub const fn is_incomplete(&self) -> bool {
        matches!(self, Self::Incomplete { .. })
    }

    /// A short, stable name, for metric labels (`reason="checksum"`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } => "incomplete",
            Self::BadStart => "bad_start",
            Self::BadEnd => "bad_end",
            Self::TooLong(_) => "too_long",
            Self::Checksum { .. } => "checksum",
            Self::BadCommand(_) => "bad_command",
            Self::BadVersion(_) => "bad_version",
            Self::BadTime => "bad_time",
            Self::TruncatedObject { .. } => "truncated_object",
            Self::TrailingData { .. } => "trailing_data",
            Self::MixedObjects => "mixed_objects",
            Self::TooManyObjects => "too_many_objects",
            Self::BufferFull => "buffer_full",
        }
    }
}

impl fmt::Display for Gb26875Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Incomplete { need } => write!(f, "incomplete frame: {need} more bytes needed"),
            Self::BadStart => f.write_str("no start characters \"@@\""),
            Self::BadEnd => f.write_str("no end characters \"##\" where the length puts them"),
            Self::TooLong(n) => write!(
                f,
                "application data length {n} is over the maximum {}",
                super::MAX_ADU_LEN
            ),
            Self::Checksum { expected, got } => {
                write!(f, "checksum 0x{got:02X}, the bytes sum to 0x{expected:02X}")
            }
            Self::BadCommand(c) => write!(f, "command byte {c} is not one of 1-6"),
            Self::BadVersion(v) => write!(f, "main protocol version {v}, expected 1"),
            Self::BadTime => f.write_str("time tag out of range"),
            Self::TruncatedObject { type_code } => {
                write!(f, "data unit of type {type_code} ends inside an object")
            }
            Self::TrailingData { type_code } => write!(
                f,
                "data unit of type {type_code} has bytes after its declared objects"
            ),
            Self::MixedObjects => f.write_str("objects of different types in one data unit"),
            Self::TooManyObjects => f.write_str("more than 255 objects in one data unit"),
            Self::BufferFull => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for Gb26875Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn display_names_the_problem() {
        let e = Gb26875Error::Checksum {
            expected: 0x46,
            got: 0x47,
        };
        assert_eq!(e.to_string(), "checksum 0x47, the bytes sum to 0x46");
        assert_eq!(e.as_str(), "checksum");
        assert!(Gb26875Error::Incomplete { need: 3 }.is_incomplete());
        assert!(!Gb26875Error::BadEnd.is_incomplete());
        assert_eq!(
            Gb26875Error::TooLong(2000).to_string(),
            "application data length 2000 is over the maximum 1024"
        );
    }
}
