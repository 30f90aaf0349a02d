//! Murata SCL3300-D01: 3-axis MEMS inclinometer with angle outputs, on SPI
//! (mode 0). Used on the tower's mast to measure tilt from vertical.
//!
//! Datasheet behaviour relied on (SCL3300-D01 datasheet, "SPI interface",
//! "Start-up sequence", command table):
//! * 32-bit frames: MOSI = `[op(8) | data(16) | CRC(8)]`; MISO =
//!   `[op echo(6) | RS(2) | data(16) | CRC(8)]`. Off-frame protocol: the
//!   answer to a command arrives in the *next* frame.
//! * CRC-8 over the first 24 bits: polynomial 0x1D, initial 0xFF, result
//!   inverted. A frame failing it must be discarded.
//! * Return status RS: `01` normal operation, `00` start-up in progress,
//!   `11` error (the status summary names it), `10` reserved.
//! * Start-up: software reset, wait 1 ms, select the mode, enable the angle
//!   outputs, wait 100 ms (modes 3 and 4), read the status summary twice to
//!   clear start-up flags; RS must then read `01`. `WHOAMI` answers 0xC1.
//! * Mode 4 (inclination mode, 10 Hz low-pass, lowest noise) suits a tower
//!   that moves slowly. Angle outputs: `angle = raw / 2^14 × 90°`.

use embedded_hal::delay::DelayNs;
use embedded_hal::spi::SpiDevice;

/// Command frames, CRC included.
pub mod cmd {
    /// Read ANG_X.
    pub const READ_ANG_X: u32 = 0x2400_00C7;
    /// Read ANG_Y.
    pub const READ_ANG_Y: u32 = 0x2800_00CD;
    /// Read the status summary.
    pub const READ_STATUS: u32 = 0x1800_00E5;
    /// Read WHOAMI.
    pub const READ_WHOAMI: u32 = 0x4000_0091;
    /// Software reset.
    pub const SW_RESET: u32 = 0xB400_2098;
    /// Change to mode 4 (inclination, 10 Hz, low noise).
    pub const MODE_4: u32 = 0xB400_0338;
    /// Enable the angle outputs.
    pub const ENABLE_ANGLES: u32 = 0xB000_1F6F;
}

/// The `WHOAMI` answer.
pub const WHOAMI: u8 = 0xC1;
/// Return status: normal operation.
pub const RS_NORMAL: u8 = 0b01;
/// Return status: error.
pub const RS_ERROR: u8 = 0b11;

/// CRC-8 of the datasheet (poly 0x1D, init 0xFF, inverted).
pub fn crc8(bytes: &[u8]) -> u8 {
    let mut crc: u8 = 0xFF;
    for &b in bytes {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x1D
            } else {
                crc << 1
            };
        }
    }
    !crc
}

/// Builds a MISO frame (for models and tests).
pub fn response(op: u8, rs: u8, data: u16) -> u32 {
    let [dh, dl] = data.to_be_bytes();
    let b0 = (op & 0xFC) | (rs & 0x03);
    u32::from_be_bytes([b0, dh, dl, crc8(&[b0, dh, dl])])
}

/// A checked MISO frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Return status bits.
    pub rs: u8,
    /// Data.
    pub data: u16,
}

/// Driver errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error<E> {
    /// The SPI transfer failed.
    Bus(E),
    /// A frame failed its CRC.
    Crc,
    /// RS = 11: the part reports an internal error.
    Status,
    /// RS = 00 or 10 after start-up.
    NotReady,
    /// `WHOAMI` is not 0xC1: the wrong part, or none.
    WhoAmI(u8),
}

/// Checks a MISO frame's CRC.
pub fn parse<E>(frame: u32) -> Result<Response, Error<E>> {
    let [b0, dh, dl, crc] = frame.to_be_bytes();
    if crc8(&[b0, dh, dl]) != crc {
        return Err(Error::Crc);
    }
    Ok(Response {
        rs: b0 & 0x03,
        data: u16::from_be_bytes([dh, dl]),
    })
}

fn normal<E>(r: Response) -> Result<Response, Error<E>> {
    match r.rs {
        RS_NORMAL => Ok(r),
        RS_ERROR => Err(Error::Status),
        _ => Err(Error::NotReady),
    }
}

/// Degrees of an angle output.
pub fn degrees(raw: u16) -> f32 {
    f32::from(raw as i16) * 90.0 / 16_384.0
}

/// One SCL3300 behind its chip select.
#[derive(Debug)]
pub struct Scl3300<SPI> {
    spi: SPI,
}

impl<SPI: SpiDevice> Scl3300<SPI> {
    /// The inclinometer.
    pub const fn new(spi: SPI) -> Self {
        Self { spi }
    }

    fn frame(&mut self, command: u32) -> Result<u32, Error<SPI::Error>> {
        let mut rx = [0u8; 4];
        self.spi
            .transfer(&mut rx, &command.to_be_bytes())
            .map_err(Error::Bus)?;
        Ok(u32::from_be_bytes(rx))
    }

    /// Runs the start-up sequence and checks status and identity.
    pub fn start(&mut self, delay: &mut impl DelayNs) -> Result<(), Error<SPI::Error>> {
        self.frame(cmd::SW_RESET)?;
        delay.delay_ms(1);
        self.frame(cmd::MODE_4)?;
        self.frame(cmd::ENABLE_ANGLES)?;
        delay.delay_ms(100);
        // Answers: ENABLE_ANGLES, status (clears start-up flags), status,
        // WHOAMI.
        self.frame(cmd::READ_STATUS)?;
        self.frame(cmd::READ_STATUS)?;
        parse(self.frame(cmd::READ_WHOAMI)?).and_then(normal)?;
        let who = parse(self.frame(cmd::READ_WHOAMI)?).and_then(normal)?;
        let id = who.data as u8;
        if id != WHOAMI {
            return Err(Error::WhoAmI(id));
        }
        Ok(())
    }

    /// Reads the X and Y angles, degrees.
    pub fn read_angles(&mut self) -> Result<(f32, f32), Error<SPI::Error>> {
        // The first answer belongs to the previous command.
        self.frame(cmd::READ_ANG_X)?;
        let x = parse(self.frame(cmd::READ_ANG_Y)?).and_then(normal)?;
        let y = parse(self.frame(cmd::READ_STATUS)?).and_then(normal)?;
        Ok((degrees(x.data), degrees(y.data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::NoopDelay;
    use embedded_hal_mock::eh1::spi::{Mock, Transaction as T};
    use std::vec;
    use std::vec::Vec;

    fn frame(cmd: u32, answer: u32) -> [T<u8>; 3] {
        [
            T::transaction_start(),
            T::transfer(cmd.to_be_bytes().to_vec(), answer.to_be_bytes().to_vec()),
            T::transaction_end(),
        ]
    }

    #[test]
    fn command_table_crcs() {
        for c in [
            cmd::READ_ANG_X,
            cmd::READ_ANG_Y,
            cmd::READ_STATUS,
            cmd::READ_WHOAMI,
            cmd::SW_RESET,
            cmd::MODE_4,
            cmd::ENABLE_ANGLES,
        ] {
            let [a, b, c3, crc] = c.to_be_bytes();
            assert_eq!(crc8(&[a, b, c3]), crc, "{c:#010x}");
        }
    }

    fn start_script(status_rs: u8, who: u16) -> Vec<T<u8>> {
        let mut ex = vec![];
        ex.extend(frame(cmd::SW_RESET, 0xFFFF_FFFF));
        ex.extend(frame(cmd::MODE_4, response(0xB4, 0, 0)));
        ex.extend(frame(cmd::ENABLE_ANGLES, response(0xB4, 0, 3)));
        ex.extend(frame(cmd::READ_STATUS, response(0xB0, 0, 0x1F)));
        ex.extend(frame(cmd::READ_STATUS, response(0x18, 0, 0x12)));
        ex.extend(frame(cmd::READ_WHOAMI, response(0x18, status_rs, 0)));
        ex.extend(frame(cmd::READ_WHOAMI, response(0x40, RS_NORMAL, who)));
        ex
    }

    #[test]
    fn start_up_sequence() {
        let mut spi = Mock::new(&start_script(RS_NORMAL, 0x00C1));
        assert_eq!(Scl3300::new(spi.clone()).start(&mut NoopDelay), Ok(()));
        spi.done();
        let mut spi = Mock::new(&start_script(RS_NORMAL, 0x0012));
        assert_eq!(
            Scl3300::new(spi.clone()).start(&mut NoopDelay),
            Err(Error::WhoAmI(0x12))
        );
        spi.done();
        let mut spi = Mock::new(&start_script(RS_ERROR, 0x00C1)[..18]);
        assert_eq!(
            Scl3300::new(spi.clone()).start(&mut NoopDelay),
            Err(Error::Status)
        );
        spi.done();
    }

    #[test]
    fn reads_angles_off_frame() {
        // 0.5° = 0.5 × 16384 / 90 ≈ 91 counts; −0.25° ≈ −46.
        let mut ex = vec![];
        ex.extend(frame(cmd::READ_ANG_X, response(0x40, RS_NORMAL, 0xC1)));
        ex.extend(frame(cmd::READ_ANG_Y, response(0x24, RS_NORMAL, 91)));
        ex.extend(frame(
            cmd::READ_STATUS,
            response(0x28, RS_NORMAL, (-46i16) as u16),
        ));
        // A corrupted frame, then an error status.
        ex.extend(frame(cmd::READ_ANG_X, response(0x18, RS_NORMAL, 0)));
        ex.extend(frame(
            cmd::READ_ANG_Y,
            response(0x24, RS_NORMAL, 91) ^ 0x0000_0100,
        ));
        ex.extend(frame(cmd::READ_ANG_X, response(0x18, RS_NORMAL, 0)));
        ex.extend(frame(cmd::READ_ANG_Y, response(0x24, RS_ERROR, 91)));
        let mut spi = Mock::new(&ex);
        let mut s = Scl3300::new(spi.clone());
        let (x, y) = s.read_angles().unwrap();
        assert!(
            (x - 0.5).abs() < 0.006 && (y + 0.25).abs() < 0.006,
            "{x} {y}"
        );
        assert_eq!(s.read_angles(), Err(Error::Crc));
        assert_eq!(s.read_angles(), Err(Error::Status));
        spi.done();
    }
}
