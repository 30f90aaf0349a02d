//! Modbus RTU slave on a UART byte stream (Modbus over Serial Line v1.02,
//! §2.5): frames delimited by 3.5 character times of silence, CRC-16
//! (polynomial 0xA001, low byte first), functions 03 / 04 / 06 / 16 with
//! exception answers, a configurable unit id (1–247, broadcast 0 for
//! writes) and baud rate.
//!
//! The board feeds every received byte with its arrival time
//! ([`RtuSlave::on_byte`], from the UART receive interrupt or a DMA ring)
//! and calls [`RtuSlave::poll`] from its main loop; the slave answers once
//! the line has been silent for t3.5, through any `embedded-io` writer.
//! Registers come from a [`Registers`] implementation: [`Served`] serves a
//! [`crate::Device`]'s maps, plus the board's diagnostic counters at
//! [`DIAGNOSTICS_BASE`].
//!
//! Nothing on the line can crash it: noise, a torn or oversized request, a
//! wrong CRC are discarded silently (a slave never answers a frame it
//! cannot trust) and counted in [`RtuStats`]; a well-formed request it
//! cannot serve gets the exception the spec names.

use embedded_io::Write;

use super::{Exception, RegisterError};

/// The largest RTU frame (§2.5.1.1): unit + PDU (253) + CRC.
pub const MAX_FRAME: usize = 256;
/// First input register of the board's diagnostic counters.
pub const DIAGNOSTICS_BASE: u16 = 0x0100;
/// Most registers one read may ask for (§6.3).
const MAX_READ: usize = 125;
/// Most registers one write may carry (§6.12).
const MAX_WRITE: usize = 123;

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);

/// The CRC-16 of a frame body (append it low byte first).
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC.checksum(bytes)
}

/// Slave settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtuConfig {
    /// Unit id, 1–247.
    pub unit: u8,
    /// Line speed, baud (11 bits per character: 8 data, parity or a second
    /// stop bit, start).
    pub baud: u32,
}

impl RtuConfig {
    /// Whether the unit id and baud rate are usable.
    pub fn is_valid(&self) -> bool {
        (1..=247).contains(&self.unit) && (1200..=1_000_000).contains(&self.baud)
    }

    /// t3.5 in µs: 3.5 characters, fixed at 1 750 µs above 19 200 baud
    /// (§2.5.1.1).
    pub fn t35_us(&self) -> u64 {
        if self.baud > 19_200 {
            1_750
        } else {
            (35 * 11 * 1_000_000 / 10) / u64::from(self.baud.max(1))
        }
    }

    /// t1.5 in µs (750 µs above 19 200 baud).
    pub fn t15_us(&self) -> u64 {
        if self.baud > 19_200 {
            750
        } else {
            (15 * 11 * 1_000_000 / 10) / u64::from(self.baud.max(1))
        }
    }
}

/// What the slave saw since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtuStats {
    /// Requests answered normally.
    pub answered: u32,
    /// Requests answered with an exception.
    pub exceptions: u32,
    /// Broadcast writes applied (never answered).
    pub broadcasts: u32,
    /// Frames with a wrong CRC (noise, a torn frame).
    pub crc_errors: u32,
    /// Frames shorter than unit + function + CRC.
    pub too_short: u32,
    /// Frames longer than 256 bytes (discarded).
    pub oversized: u32,
    /// Frames for another unit.
    pub other_units: u32,
    /// Gaps over t1.5 inside a frame (counted only: the CRC decides;
    /// transparent converters often add such gaps).
    pub char_gaps: u32,
    /// Frames that ended while the board was not polling and were still
    /// unanswered when the next frame began (the master had moved on; a
    /// late answer would collide with its next request): dropped.
    pub unpolled: u32,
}

/// The register banks a slave serves.
pub trait Registers {
    /// Function 04.
    fn read_input(&mut self, address: u16, out: &mut [u16]) -> Result<(), Exception>;
    /// Function 03.
    fn read_holding(&mut self, address: u16, out: &mut [u16]) -> Result<(), Exception>;
    /// Functions 06 and 16.
    fn write_holding(&mut self, address: u16, values: &[u16]) -> Result<(), Exception>;
}

/// A Modbus RTU slave.
#[derive(Debug)]
pub struct RtuSlave {
    config: RtuConfig,
    buf: [u8; MAX_FRAME],
    len: usize,
    overflow: bool,
    last_byte_us: Option<u64>,
    stats: RtuStats,
}

impl RtuSlave {
    /// A slave with `config` (check it with [`RtuConfig::is_valid`]).
    pub const fn new(config: RtuConfig) -> Self {
        Self {
            config,
            buf: [0; MAX_FRAME],
            len: 0,
            overflow: false,
            last_byte_us: None,
            stats: RtuStats {
                answered: 0,
                exceptions: 0,
                broadcasts: 0,
                crc_errors: 0,
                too_short: 0,
                oversized: 0,
                other_units: 0,
                char_gaps: 0,
                unpolled: 0,
            },
        }
    }

    /// Counters since boot.
    pub fn stats(&self) -> RtuStats {
        self.stats
    }

    /// The settings.
    pub fn config(&self) -> RtuConfig {
        self.config
    }

    /// One received byte and when it arrived (µs, monotonic).
    pub fn on_byte(&mut self, byte: u8, at_us: u64) {
        if let Some(last) = self.last_byte_us {
            let gap = at_us.saturating_sub(last);
            if gap >= self.config.t35_us() {
                // The previous frame ended and was never polled.
                self.discard_unpolled();
            } else if gap > self.config.t15_us() && self.len > 0 {
                self.stats.char_gaps = self.stats.char_gaps.saturating_add(1);
            }
        }
        self.last_byte_us = Some(at_us);
        if self.len < MAX_FRAME {
            self.buf[self.len] = byte;
            self.len += 1;
        } else {
            self.overflow = true;
        }
    }

    /// Drops a frame that ended unpolled (counted).
    fn discard_unpolled(&mut self) {
        if self.len > 0 || self.overflow {
            self.stats.unpolled = self.stats.unpolled.saturating_add(1);
        }
        self.len = 0;
        self.overflow = false;
    }

    /// Answers a complete request (the line silent for t3.5 at `now_us`)
    /// through `tx`. Returns whether a frame was handled.
    pub fn poll<R: Registers, W: Write>(
        &mut self,
        now_us: u64,
        registers: &mut R,
        tx: &mut W,
    ) -> Result<bool, W::Error> {
        let Some(last) = self.last_byte_us else {
            return Ok(false);
        };
        if now_us.saturating_sub(last) < self.config.t35_us() || (self.len == 0 && !self.overflow) {
            return Ok(false);
        }
        let len = core::mem::take(&mut self.len);
        let overflow = core::mem::take(&mut self.overflow);
        self.last_byte_us = None;
        if overflow {
            self.stats.oversized = self.stats.oversized.saturating_add(1);
            return Ok(true);
        }
        let mut frame = [0u8; MAX_FRAME];
        frame[..len].copy_from_slice(&self.buf[..len]);
        let mut answer = [0u8; MAX_FRAME];
        let n = self.handle(&frame[..len], registers, &mut answer);
        if n > 0 {
            tx.write_all(&answer[..n])?;
            tx.flush()?;
        }
        Ok(true)
    }

    /// Handles one frame; returns the answer's length (0 = no answer).
    fn handle<R: Registers>(&mut self, frame: &[u8], regs: &mut R, out: &mut [u8]) -> usize {
        let s = &mut self.stats;
        if frame.len() < 4 {
            s.too_short = s.too_short.saturating_add(1);
            return 0;
        }
        let (body, crc) = frame.split_at(frame.len() - 2);
        if crc16(body) != u16::from_le_bytes([crc[0], crc[1]]) {
            s.crc_errors = s.crc_errors.saturating_add(1);
            return 0;
        }
        let (unit, function, data) = (body[0], body[1], &body[2..]);
        let broadcast = unit == 0;
        if !broadcast && unit != self.config.unit {
            s.other_units = s.other_units.saturating_add(1);
            return 0;
        }
        out[0] = unit;
        out[1] = function;
        let result = match function {
            3 | 4 if !broadcast => read(function, data, regs, &mut out[2..]),
            6 => write_single(data, regs, &mut out[2..]),
            16 => write_multiple(data, regs, &mut out[2..]),
            _ => Err(Exception::IllegalFunction),
        };
        let n = match result {
            _ if broadcast => {
                s.broadcasts = s.broadcasts.saturating_add(1);
                return 0;
            }
            Ok(n) => {
                s.answered = s.answered.saturating_add(1);
                2 + n
            }
            Err(e) => {
                s.exceptions = s.exceptions.saturating_add(1);
                out[1] = function | 0x80;
                out[2] = e as u8;
                3
            }
        };
        let crc = crc16(&out[..n]).to_le_bytes();
        out[n..n + 2].copy_from_slice(&crc);
        n + 2
    }
}

fn word(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// 03 / 04: address, quantity → byte count, registers.
fn read<R: Registers>(
    function: u8,
    data: &[u8],
    regs: &mut R,
    out: &mut [u8],
) -> Result<usize, Exception> {
    if data.len() != 4 {
        return Err(Exception::IllegalDataValue);
    }
    let (address, quantity) = (word(data, 0), usize::from(word(data, 2)));
    if !(1..=MAX_READ).contains(&quantity) {
        return Err(Exception::IllegalDataValue);
    }
    if usize::from(address) + quantity > 0x1_0000 {
        return Err(Exception::IllegalDataAddress);
    }
    let mut values = [0u16; MAX_READ];
    let values = &mut values[..quantity];
    if function == 3 {
        regs.read_holding(address, values)?;
    } else {
        regs.read_input(address, values)?;
    }
    out[0] = (2 * quantity) as u8;
    for (i, v) in values.iter().enumerate() {
        out[1 + 2 * i..3 + 2 * i].copy_from_slice(&v.to_be_bytes());
    }
    Ok(1 + 2 * quantity)
}

/// 06: address, value → echo.
fn write_single<R: Registers>(
    data: &[u8],
    regs: &mut R,
    out: &mut [u8],
) -> Result<usize, Exception> {
    if data.len() != 4 {
        return Err(Exception::IllegalDataValue);
    }
    regs.write_holding(word(data, 0), &[word(data, 2)])?;
    out[..4].copy_from_slice(data);
    Ok(4)
}

/// 16: address, quantity, byte count, values → address, quantity.
fn write_multiple<R: Registers>(
    data: &[u8],
    regs: &mut R,
    out: &mut [u8],
) -> Result<usize, Exception> {
    if data.len() < 5 {
        return Err(Exception::IllegalDataValue);
    }
    let (address, quantity, bytes) = (word(data, 0), usize::from(word(data, 2)), data[4]);
    if !(1..=MAX_WRITE).contains(&quantity)
        || usize::from(bytes) != 2 * quantity
        || data.len() != 5 + 2 * quantity
    {
        return Err(Exception::IllegalDataValue);
    }
    if usize::from(address) + quantity > 0x1_0000 {
        return Err(Exception::IllegalDataAddress);
    }
    let mut values = [0u16; MAX_WRITE];
    for (i, v) in values.iter_mut().take(quantity).enumerate() {
        *v = word(data, 5 + 2 * i);
    }
    regs.write_holding(address, &values[..quantity])?;
    out[..4].copy_from_slice(&data[..4]);
    Ok(4)
}

/// A device's register maps (and the board's diagnostic counters at
/// [`DIAGNOSTICS_BASE`]) as a [`Registers`] bank, at time `now_ms`.
#[derive(Debug)]
pub struct Served<'a, D> {
    /// The device.
    pub device: &'a mut D,
    /// Monotonic ms (for writes that clear alarms).
    pub now_ms: u64,
    /// Diagnostic input registers from [`DIAGNOSTICS_BASE`] (may be empty).
    pub diagnostics: &'a [u16],
}

/// What a device offers a register bank.
pub trait RegisterMaps {
    /// See [`crate::Device::read_input_registers`].
    fn read_input_registers(&self, address: u16, out: &mut [u16]) -> Result<(), RegisterError>;
    /// See [`crate::Device::read_holding_registers`].
    fn read_holding_registers(&self, address: u16, out: &mut [u16]) -> Result<(), RegisterError>;
    /// See [`crate::Device::write_holding_registers`].
    fn write_holding_registers(
        &mut self,
        now_ms: u64,
        address: u16,
        values: &[u16],
    ) -> Result<(), RegisterError>;
}

impl<D: RegisterMaps> Registers for Served<'_, D> {
    fn read_input(&mut self, address: u16, out: &mut [u16]) -> Result<(), Exception> {
        if address >= DIAGNOSTICS_BASE {
            let at = usize::from(address - DIAGNOSTICS_BASE);
            let window = self
                .diagnostics
                .get(at..at + out.len())
                .ok_or(Exception::IllegalDataAddress)?;
            out.copy_from_slice(window);
            return Ok(());
        }
        self.device
            .read_input_registers(address, out)
            .map_err(|e| e.exception())
    }

    fn read_holding(&mut self, address: u16, out: &mut [u16]) -> Result<(), Exception> {
        self.device
            .read_holding_registers(address, out)
            .map_err(|e| e.exception())
    }

    fn write_holding(&mut self, address: u16, values: &[u16]) -> Result<(), Exception> {
        self.device
            .write_holding_registers(self.now_ms, address, values)
            .map_err(|e| e.exception())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// 10 holding registers 0..9 = 100+i, 3 input registers; writing 0xFFFF
    /// is refused as a bad value.
    struct Bank {
        holding: [u16; 10],
    }
    impl Registers for Bank {
        fn read_input(&mut self, address: u16, out: &mut [u16]) -> Result<(), Exception> {
            let a = usize::from(address);
            if a + out.len() > 3 {
                return Err(Exception::IllegalDataAddress);
            }
            for (i, v) in out.iter_mut().enumerate() {
                *v = 0x0100 + (a + i) as u16;
            }
            Ok(())
        }
        fn read_holding(&mut self, address: u16, out: &mut [u16]) -> Result<(), Exception> {
            let a = usize::from(address);
            let w = self
                .holding
                .get(a..a + out.len())
                .ok_or(Exception::IllegalDataAddress)?;
            out.copy_from_slice(w);
            Ok(())
        }
        fn write_holding(&mut self, address: u16, values: &[u16]) -> Result<(), Exception> {
            let a = usize::from(address);
            if values.contains(&0xFFFF) {
                return Err(Exception::IllegalDataValue);
            }
            self.holding
                .get_mut(a..a + values.len())
                .ok_or(Exception::IllegalDataAddress)?
                .copy_from_slice(values);
            Ok(())
        }
    }

    fn with_crc(body: &[u8]) -> Vec<u8> {
        let mut v = body.to_vec();
        v.extend_from_slice(&crc16(body).to_le_bytes());
        v
    }

    /// Sends `frame` at 9600 baud byte by byte (1.15 ms apart), then polls
    /// after the silence; returns the answer.
    fn exchange(slave: &mut RtuSlave, bank: &mut Bank, frame: &[u8], t: &mut u64) -> Vec<u8> {
        for b in frame {
            slave.on_byte(*b, *t);
            *t += 1_146;
        }
        let mut out = Vec::new();
        assert!(!slave.poll(*t, bank, &mut out).unwrap());
        *t += 4_000;
        slave.poll(*t, bank, &mut out).unwrap();
        *t += 10_000;
        out
    }

    fn setup() -> (RtuSlave, Bank, u64) {
        let cfg = RtuConfig {
            unit: 7,
            baud: 9_600,
        };
        assert!(cfg.is_valid());
        assert_eq!(cfg.t35_us(), 4_010);
        let holding = core::array::from_fn(|i| 100 + i as u16);
        (RtuSlave::new(cfg), Bank { holding }, 0)
    }

    #[test]
    fn crc_matches_the_spec_example() {
        // Modbus over serial line, §6.2.2 example: 02 07 → CRC 0x1241
        // (sent 41 12).
        assert_eq!(crc16(&[0x02, 0x07]), 0x1241);
    }

    #[test]
    fn serves_the_four_functions() {
        let (mut s, mut bank, mut t) = setup();
        let a = exchange(&mut s, &mut bank, &with_crc(&[7, 3, 0, 2, 0, 3]), &mut t);
        assert_eq!(a, with_crc(&[7, 3, 6, 0, 102, 0, 103, 0, 104]));
        let a = exchange(&mut s, &mut bank, &with_crc(&[7, 4, 0, 1, 0, 2]), &mut t);
        assert_eq!(a, with_crc(&[7, 4, 4, 1, 1, 1, 2]));
        let a = exchange(
            &mut s,
            &mut bank,
            &with_crc(&[7, 6, 0, 9, 0x12, 0x34]),
            &mut t,
        );
        assert_eq!(a, with_crc(&[7, 6, 0, 9, 0x12, 0x34]));
        assert_eq!(bank.holding[9], 0x1234);
        let a = exchange(
            &mut s,
            &mut bank,
            &with_crc(&[7, 16, 0, 0, 0, 2, 4, 0, 1, 0, 2]),
            &mut t,
        );
        assert_eq!(a, with_crc(&[7, 16, 0, 0, 0, 2]));
        assert_eq!(bank.holding[..2], [1, 2]);
        assert_eq!(s.stats().answered, 4);
    }

    #[test]
    fn exceptions_for_what_cannot_be_served() {
        let (mut s, mut bank, mut t) = setup();
        for (req, code) in [
            (&[7, 3, 0, 9, 0, 2][..], 2),              // past the map
            (&[7, 3, 0, 0, 0, 0][..], 3),              // quantity 0
            (&[7, 4, 0, 0, 0, 126][..], 3),            // quantity > 125
            (&[7, 3, 0, 0, 0][..], 3),                 // short PDU
            (&[7, 6, 0, 0, 0xFF, 0xFF][..], 3),        // the bank refuses the value
            (&[7, 16, 0, 0, 0, 2, 3, 0, 1, 0][..], 3), // byte count ≠ 2 × quantity
            (&[7, 5, 0, 0, 0xFF, 0][..], 1),           // write coil: not supported
            (&[7, 0x2B, 0x0E, 1, 0][..], 1),           // device id: not supported
        ] {
            let a = exchange(&mut s, &mut bank, &with_crc(req), &mut t);
            assert_eq!(a, with_crc(&[7, req[1] | 0x80, code]), "{req:?}");
        }
        assert_eq!(s.stats().exceptions, 8);
        assert_eq!(bank.holding[0], 100);
    }

    #[test]
    fn noise_torn_oversized_and_foreign_frames_get_no_answer() {
        let (mut s, mut bank, mut t) = setup();
        let mut bad = with_crc(&[7, 3, 0, 0, 0, 1]);
        bad[3] ^= 0x10;
        assert!(exchange(&mut s, &mut bank, &bad, &mut t).is_empty());
        assert!(exchange(&mut s, &mut bank, &[0x55, 0xAA], &mut t).is_empty());
        assert!(exchange(&mut s, &mut bank, &with_crc(&[8, 3, 0, 0, 0, 1]), &mut t).is_empty());
        assert!(exchange(&mut s, &mut bank, &[0; 300], &mut t).is_empty());
        // Broadcast write: applied, not answered.
        assert!(exchange(&mut s, &mut bank, &with_crc(&[0, 6, 0, 1, 0, 42]), &mut t).is_empty());
        assert_eq!(bank.holding[1], 42);
        // A request torn by a long pause: both halves are discarded.
        let req = with_crc(&[7, 3, 0, 0, 0, 1]);
        assert!(exchange(&mut s, &mut bank, &req[..3], &mut t).is_empty());
        assert!(exchange(&mut s, &mut bank, &req[3..], &mut t).is_empty());
        // A request that ended while the board was busy elsewhere: still
        // unanswered when the next one starts, it is dropped.
        for b in &req {
            s.on_byte(*b, t);
            t += 1_146;
        }
        t += 20_000;
        assert!(exchange(&mut s, &mut bank, &req, &mut t).len() == 7);
        let st = s.stats();
        assert_eq!(
            (
                st.crc_errors,
                st.too_short,
                st.other_units,
                st.oversized,
                st.broadcasts,
                st.unpolled
            ),
            (2, 2, 1, 1, 1, 1)
        );
        assert_eq!(st.answered, 1);
        // And the next good request is answered.
        assert_eq!(
            exchange(&mut s, &mut bank, &with_crc(&[7, 3, 0, 0, 0, 1]), &mut t),
            with_crc(&[7, 3, 2, 0, 100])
        );
    }
}
