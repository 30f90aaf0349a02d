//! SSI (synchronous serial interface) absolute multi-turn encoders, the kind
//! on tower-crane trolley, hoist-drum and slewing gears (Kübler Sendix
//! 5863/5883 SSI, Hengstler AC58 SSI: 25 bits = 12 multi-turn + 13
//! single-turn, Gray code by default), read through an SPI peripheral that
//! clocks 32 bits and samples the data line.
//!
//! Behaviour relied on (SSI as in those datasheets): the first falling clock
//! edge latches the position, which then comes out MSB first, one bit per
//! clock; after the last data bit the encoder holds the line low for its
//! monoflop time. The data line idles high through the receiver's
//! termination, so a broken data pair or an unpowered encoder reads all
//! ones, and a line shorted to ground reads all zeros.
//!
//! Frame as read here (32 clocks): 1 leading bit (the latch edge), then
//! `bits` data bits, then the monoflop's low level.

use anquan_protocol::FaultCode;
use embedded_hal::spi::SpiDevice;
use serde::{Deserialize, Serialize};

/// Frame layout and code of one encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsiConfig {
    /// Data bits (1–30; 25 for 12 + 13). At least one clock after the data
    /// must see the monoflop's low level, so a frame is never all ones.
    pub bits: u8,
    /// Gray-coded output (the factory default of most SSI encoders).
    pub gray: bool,
}

impl SsiConfig {
    /// 25 bits, Gray code.
    pub const MULTI_TURN_25_GRAY: Self = Self {
        bits: 25,
        gray: true,
    };

    /// Checks the width; names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if (1..=30).contains(&self.bits) {
            Ok(())
        } else {
            Err(("bits", "must be between 1 and 30"))
        }
    }

    /// The position in a 32-bit frame; `Err` for a line fault.
    pub fn decode(&self, frame: u32) -> Result<u32, FaultCode> {
        match frame {
            u32::MAX => return Err(FaultCode::OpenCircuit),
            0 => return Err(FaultCode::ShortCircuit),
            _ => {}
        }
        let bits = u32::from(self.bits.clamp(1, 30));
        let value = (frame << 1) >> (32 - bits);
        Ok(if self.gray {
            gray_to_binary(value)
        } else {
            value
        })
    }

    /// The frame an encoder at `position` sends (for models and tests).
    pub fn encode(&self, position: u32) -> u32 {
        let bits = u32::from(self.bits.clamp(1, 30));
        let position = position & ((1u32 << bits) - 1);
        let code = if self.gray {
            position ^ (position >> 1)
        } else {
            position
        };
        // Leading bit high (the line idles high until the latch edge).
        (1 << 31) | (code << (31 - bits))
    }
}

/// Gray code to binary.
pub fn gray_to_binary(mut g: u32) -> u32 {
    let mut shift = 1;
    while shift < 32 {
        g ^= g >> shift;
        shift <<= 1;
    }
    g
}

/// One encoder on its own SPI device (chip select or RS-422 transceiver
/// enable).
#[derive(Debug)]
pub struct SsiEncoder<SPI> {
    spi: SPI,
    config: SsiConfig,
}

impl<SPI: SpiDevice> SsiEncoder<SPI> {
    /// The encoder with its frame layout.
    pub const fn new(spi: SPI, config: SsiConfig) -> Self {
        Self { spi, config }
    }

    /// Reads the position; a bus error is `comm`, a line fault
    /// `open_circuit` / `short_circuit`.
    pub fn read(&mut self) -> Result<u32, FaultCode> {
        let mut buf = [0u8; 4];
        self.spi.read(&mut buf).map_err(|_| FaultCode::Comm)?;
        self.config.decode(u32::from_be_bytes(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::spi::ErrorKind;
    use embedded_hal_mock::eh1::spi::{Mock, Transaction as T};
    use proptest::prelude::*;
    use std::vec;

    fn read(bytes: [u8; 4]) -> [T<u8>; 3] {
        [
            T::transaction_start(),
            T::read_vec(bytes.to_vec()),
            T::transaction_end(),
        ]
    }

    #[test]
    fn reads_gray_frames_and_line_faults() {
        let cfg = SsiConfig::MULTI_TURN_25_GRAY;
        let position = 0x00AB_CDEF & 0x01FF_FFFF;
        let frame = cfg.encode(position);
        let mut ex = vec![];
        ex.extend(read(frame.to_be_bytes()));
        ex.extend(read([0xFF; 4]));
        ex.extend(read([0x00; 4]));
        let mut spi = Mock::new(&ex);
        let mut enc = SsiEncoder::new(spi.clone(), cfg);
        assert_eq!(enc.read(), Ok(position));
        assert_eq!(enc.read(), Err(FaultCode::OpenCircuit));
        assert_eq!(enc.read(), Err(FaultCode::ShortCircuit));
        spi.done();
    }

    /// The mock cannot fail an SPI transfer; this device always does.
    struct Dead;
    impl embedded_hal::spi::ErrorType for Dead {
        type Error = ErrorKind;
    }
    impl SpiDevice for Dead {
        fn transaction(
            &mut self,
            _: &mut [embedded_hal::spi::Operation<'_, u8>],
        ) -> Result<(), ErrorKind> {
            Err(ErrorKind::Other)
        }
    }

    #[test]
    fn bus_error_is_comm() {
        let mut enc = SsiEncoder::new(Dead, SsiConfig::MULTI_TURN_25_GRAY);
        assert_eq!(enc.read(), Err(FaultCode::Comm));
    }

    #[test]
    fn gray_code() {
        assert_eq!(gray_to_binary(0b0000), 0);
        assert_eq!(gray_to_binary(0b0001), 1);
        assert_eq!(gray_to_binary(0b0011), 2);
        assert_eq!(gray_to_binary(0b0010), 3);
        assert_eq!(gray_to_binary(0b0110), 4);
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(bits in 1u8..=30, gray: bool, pos: u32) {
            let cfg = SsiConfig { bits, gray };
            let pos = pos & ((1u32 << bits) - 1);
            prop_assert_eq!(cfg.decode(cfg.encode(pos)), Ok(pos));
        }
    }
}
