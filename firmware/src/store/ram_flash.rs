//! A NOR flash in a RAM buffer, with NOR semantics and power cuts on
//! demand: for the power-cut tests, and as the flash of boards (and
//! emulators) that have none.
//!
//! NOR rules it enforces: erase sets a whole page to `0xFF`; a write can
//! only clear bits (it ANDs into what is there), in aligned 4-byte words.
//! A power cut is a count of program operations (one per word written, one
//! per page erased): the operation it lands on is torn (a word half
//! programmed, or a page half erased, as a real part leaves it) and every
//! later operation fails until [`RamFlash::power_on`].

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashErrorKind, ReadNorFlash,
};

/// Where the power goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut {
    /// Operations that complete before the cut (0 = the first is torn).
    pub after_ops: u32,
}

/// A NOR flash of `PAGE`-byte erase pages over `mem` (its length a
/// multiple of `PAGE`).
#[derive(Debug)]
pub struct RamFlash<'a, const PAGE: usize> {
    mem: &'a mut [u8],
    ops: u32,
    cut: Option<PowerCut>,
    off: bool,
}

impl<'a, const PAGE: usize> RamFlash<'a, PAGE> {
    /// The flash over `mem` (contents kept: what was there is "on flash").
    pub fn new(mem: &'a mut [u8]) -> Self {
        Self {
            mem,
            ops: 0,
            cut: None,
            off: false,
        }
    }

    /// Cuts the power at `cut` (counted from now).
    pub fn cut_power(&mut self, cut: PowerCut) {
        self.ops = 0;
        self.cut = Some(cut);
    }

    /// Power back: operations work again; nothing is cut any more.
    pub fn power_on(&mut self) {
        self.off = false;
        self.cut = None;
    }

    /// Whether the power was cut.
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Program operations since the last [`Self::cut_power`] (or creation).
    pub fn ops(&self) -> u32 {
        self.ops
    }

    /// Counts one operation; `Ok(false)` = this one is torn.
    fn operate(&mut self) -> Result<bool, NorFlashErrorKind> {
        if self.off {
            return Err(NorFlashErrorKind::Other);
        }
        let n = self.ops;
        self.ops = self.ops.saturating_add(1);
        if self.cut.is_some_and(|c| c.after_ops == n) {
            self.off = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, NorFlashErrorKind> {
        let at = offset as usize;
        if !at.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(NorFlashErrorKind::NotAligned);
        }
        if at.checked_add(len).is_none_or(|end| end > self.mem.len()) {
            return Err(NorFlashErrorKind::OutOfBounds);
        }
        Ok(at)
    }
}

impl<const PAGE: usize> ErrorType for RamFlash<'_, PAGE> {
    type Error = NorFlashErrorKind;
}

impl<const PAGE: usize> ReadNorFlash for RamFlash<'_, PAGE> {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        if self.off {
            return Err(NorFlashErrorKind::Other);
        }
        let at = self.check(offset, bytes.len(), 1)?;
        bytes.copy_from_slice(&self.mem[at..at + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const PAGE: usize> NorFlash for RamFlash<'_, PAGE> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        if to < from {
            return Err(NorFlashErrorKind::OutOfBounds);
        }
        let start = self.check(from, (to - from) as usize, PAGE)?;
        for page in (start..to as usize).step_by(PAGE) {
            if self.operate()? {
                self.mem[page..page + PAGE].fill(0xFF);
            } else {
                // Torn: the first half erased, the rest as it was.
                self.mem[page..page + PAGE / 2].fill(0xFF);
                return Err(NorFlashErrorKind::Other);
            }
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let start = self.check(offset, bytes.len(), Self::WRITE_SIZE)?;
        for (i, word) in bytes.chunks(Self::WRITE_SIZE).enumerate() {
            let at = start + i * Self::WRITE_SIZE;
            let whole = self.operate()?;
            for (j, b) in word.iter().enumerate() {
                // Torn: the first two bytes programmed, the third only in
                // its high nibble.
                let b = match (whole, j) {
                    (true, _) | (false, 0 | 1) => *b,
                    (false, 2) => *b | 0x0F,
                    (false, _) => 0xFF,
                };
                self.mem[at + j] &= b;
            }
            if !whole {
                return Err(NorFlashErrorKind::Other);
            }
        }
        Ok(())
    }
}

/// Writing a word again only clears more bits, as NOR allows.
impl<const PAGE: usize> MultiwriteNorFlash for RamFlash<'_, PAGE> {}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_futures::block_on;

    #[test]
    fn nor_semantics_and_torn_operations() {
        let mut mem = [0xFFu8; 64];
        let mut f = RamFlash::<32>::new(&mut mem);
        block_on(f.write(0, &[0x0F, 0xF0, 0xAA, 0x55])).unwrap();
        // Writes only clear bits.
        block_on(f.write(0, &[0xF0, 0xFF, 0xFF, 0xFF])).unwrap();
        let mut b = [0u8; 4];
        block_on(f.read(0, &mut b)).unwrap();
        assert_eq!(b, [0x00, 0xF0, 0xAA, 0x55]);
        assert_eq!(
            block_on(f.write(2, &[0; 4])),
            Err(NorFlashErrorKind::NotAligned)
        );
        assert_eq!(
            block_on(f.write(64, &[0; 4])),
            Err(NorFlashErrorKind::OutOfBounds)
        );
        // Power cut on the second word of a write.
        f.cut_power(PowerCut { after_ops: 1 });
        assert!(block_on(f.write(32, &[0; 8])).is_err());
        assert!(f.is_off());
        assert!(block_on(f.read(0, &mut b)).is_err());
        f.power_on();
        let mut w = [0u8; 8];
        block_on(f.read(32, &mut w)).unwrap();
        assert_eq!(w, [0, 0, 0, 0, 0, 0, 0x0F, 0xFF]);
        // A torn erase leaves the page half erased.
        block_on(f.write(56, &[0; 4])).unwrap();
        f.cut_power(PowerCut { after_ops: 0 });
        assert!(block_on(f.erase(32, 64)).is_err());
        f.power_on();
        block_on(f.read(32, &mut w)).unwrap();
        assert_eq!(w, [0xFF; 8]);
        block_on(f.read(56, &mut b)).unwrap();
        assert_eq!(b, [0; 4]);
    }
}
