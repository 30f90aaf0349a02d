//! Store-and-forward on NOR flash: frames survive a power cut.
//!
//! [`FlashOutbox`] keeps the same compact records as the RAM
//! [`crate::outbox::Outbox`] in a `sequential-storage` queue on any
//! `embedded-storage` NOR flash range the board sets aside (a few sectors
//! of the MCU's own flash, or a SPI NOR chip):
//!
//! * **wear-levelled**: pages are written in turn and erased only when the
//!   queue comes round to them again, so every page wears equally;
//! * **bounded**: the flash range is the capacity; when a frame does not
//!   fit, the oldest page is reclaimed and the frames it held are dropped
//!   and counted (the `dropped` field of the next frame sent, and
//!   [`FlashOutbox::dropped_total`]);
//! * **power-cut safe**: items carry CRCs and page states are written in an
//!   order `sequential-storage` recovers from, so a cut at any point of a
//!   write leaves every frame that was stored before it, plus or minus the
//!   one being written, and a frame being removed may come back once (a
//!   duplicate with its `seq`, which the gateway absorbs). The test
//!   `firmware/tests/power_cut.rs` cuts the power at every write position.
//!
//! Frames are acknowledged to the device ([`FrameStore::push`] returns)
//! only after the write completed, and removed only after the transport
//! confirmed them (PUBACK). The RAM counters (`dropped`) start again at
//! boot; the frames do not.
//!
//! `sequential-storage` is written against the async `embedded-storage`
//! traits; a blocking flash driver is wrapped in [`Blocking`], and the
//! futures complete at once (they never wait), so [`FlashOutbox`] drives
//! them with a plain `block_on`.

mod ram_flash;

pub use ram_flash::{PowerCut, RamFlash};

use core::ops::Range;

use embassy_futures::block_on;
use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::queue::{QueueConfig, QueueStorage};

use crate::frame::Frame;
use crate::outbox::{self, FrameStore, MAX_RECORD, PushOutcome};

/// Why a flash range cannot hold the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The range is not page-aligned, or shorter than two pages.
    BadRange,
    /// The flash failed while the store was mounted.
    Flash,
}

type Queue<F> = QueueStorage<F, Cache<Uncached, Uncached, Uncached>>;

/// Counters of the flash store since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Frames stored.
    pub stored: u32,
    /// Pages reclaimed while full (their frames dropped).
    pub reclaimed_pages: u32,
    /// Flash operations that failed (a frame refused, or read later).
    pub flash_errors: u32,
}

/// The device's frames in a NOR flash range.
pub struct FlashOutbox<F: NorFlash + MultiwriteNorFlash> {
    queue: Queue<F>,
    frames: usize,
    dropped_since_delivery: u32,
    dropped_total: u32,
    stats: StoreStats,
}

impl<F: NorFlash + MultiwriteNorFlash> core::fmt::Debug for FlashOutbox<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlashOutbox")
            .field("range", &self.queue.flash_range())
            .field("frames", &self.frames)
            .field("dropped_total", &self.dropped_total)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<F: NorFlash + MultiwriteNorFlash> FlashOutbox<F> {
    /// Mounts the store on `range` of `flash` (page-aligned, at least two
    /// erase pages), keeping the frames already there: after a power cut
    /// they go out first. Interrupted writes are repaired here.
    pub fn mount(flash: F, range: Range<u32>) -> Result<Self, StoreError> {
        let config = QueueConfig::try_new(range).map_err(|_| StoreError::BadRange)?;
        let mut s = Self {
            queue: QueueStorage::new(flash, config, Cache::new_uncached()),
            frames: 0,
            dropped_since_delivery: 0,
            dropped_total: 0,
            stats: StoreStats::default(),
        };
        s.frames = s.count().ok_or(StoreError::Flash)?;
        Ok(s)
    }

    /// Frames held, counted on flash.
    fn count(&mut self) -> Option<usize> {
        block_on(async {
            let mut it = self.queue.iter().await.ok()?;
            let mut buf = [0u8; MAX_RECORD];
            let mut n = 0;
            while let Some(_entry) = it.next(&mut buf).await.ok()? {
                n += 1;
            }
            Some(n)
        })
    }

    /// Every frame held, oldest first, into `visit` (inspection, tests).
    pub fn for_each(&mut self, mut visit: impl FnMut(Frame)) -> Result<(), StoreError> {
        block_on(async {
            let mut it = self.queue.iter().await.map_err(|_| StoreError::Flash)?;
            let mut buf = [0u8; MAX_RECORD];
            while let Some(entry) = it.next(&mut buf).await.map_err(|_| StoreError::Flash)? {
                visit(outbox::decode(&entry));
            }
            Ok(())
        })
    }

    /// Counters since boot.
    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    /// The flash range.
    pub fn range(&self) -> Range<u32> {
        self.queue.flash_range()
    }

    /// Gives the flash back (e.g. to "power-cycle" it in a test).
    pub fn into_flash(self) -> F {
        self.queue.destroy().0
    }

    fn flash_error(&mut self) {
        self.stats.flash_errors = self.stats.flash_errors.saturating_add(1);
    }

    fn count_drops(&mut self, n: u32) {
        self.dropped_since_delivery = self.dropped_since_delivery.saturating_add(n);
        self.dropped_total = self.dropped_total.saturating_add(n);
    }
}

impl<F: NorFlash + MultiwriteNorFlash> FrameStore for FlashOutbox<F> {
    fn push(&mut self, frame: &Frame) -> PushOutcome {
        let mut rec = [0u8; MAX_RECORD];
        let len = outbox::encode(frame, &mut rec);
        let mut out = PushOutcome::default();
        match block_on(self.queue.push(&rec[..len], false)) {
            Ok(()) => {}
            Err(sequential_storage::Error::FullStorage) => {
                // Reclaim the oldest page: its frames are dropped, counted
                // (held before + the new one − held after).
                match block_on(self.queue.push(&rec[..len], true)) {
                    Ok(()) => {
                        let after = self.count().unwrap_or(self.frames + 1);
                        let lost = (self.frames + 1).saturating_sub(after) as u32;
                        self.stats.reclaimed_pages = self.stats.reclaimed_pages.saturating_add(1);
                        self.frames = after;
                        out.evicted = lost.min(u32::from(u16::MAX)) as u16;
                        self.count_drops(lost);
                        self.stats.stored = self.stats.stored.saturating_add(1);
                        return out;
                    }
                    Err(_) => {
                        self.flash_error();
                        self.frames = self.count().unwrap_or(self.frames);
                        out.refused = true;
                        self.count_drops(1);
                        return out;
                    }
                }
            }
            Err(_) => {
                self.flash_error();
                out.refused = true;
                self.count_drops(1);
                return out;
            }
        }
        self.frames += 1;
        self.stats.stored = self.stats.stored.saturating_add(1);
        out
    }

    fn peek(&mut self) -> Option<Frame> {
        if self.frames == 0 {
            return None;
        }
        let mut buf = [0u8; MAX_RECORD];
        match block_on(self.queue.peek(&mut buf)) {
            Ok(Some(rec)) => Some(outbox::decode(rec)),
            Ok(None) => {
                self.frames = 0;
                None
            }
            Err(_) => {
                self.flash_error();
                None
            }
        }
    }

    fn delivered(&mut self) {
        let mut buf = [0u8; MAX_RECORD];
        match block_on(self.queue.pop(&mut buf)) {
            Ok(Some(_)) => {
                self.frames = self.frames.saturating_sub(1);
                self.dropped_since_delivery = 0;
            }
            Ok(None) => self.frames = 0,
            Err(_) => self.flash_error(),
        }
    }

    fn discard_oldest(&mut self) {
        let mut buf = [0u8; MAX_RECORD];
        if let Ok(Some(_)) = block_on(self.queue.pop(&mut buf)) {
            self.frames = self.frames.saturating_sub(1);
            self.count_drops(1);
        } else {
            self.flash_error();
        }
    }

    fn len(&self) -> usize {
        self.frames
    }

    fn dropped_since_delivery(&self) -> u32 {
        self.dropped_since_delivery
    }

    fn dropped_total(&self) -> u32 {
        self.dropped_total
    }
}

/// A blocking `embedded-storage` NOR flash driver (what most HALs offer)
/// as the async flash `sequential-storage` takes; every call completes at
/// once.
#[derive(Debug)]
pub struct Blocking<F>(pub F);

impl<F: embedded_storage::nor_flash::ErrorType> embedded_storage::nor_flash::ErrorType
    for Blocking<F>
{
    type Error = F::Error;
}

impl<F: embedded_storage::nor_flash::ReadNorFlash> embedded_storage_async::nor_flash::ReadNorFlash
    for Blocking<F>
{
    const READ_SIZE: usize = F::READ_SIZE;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<F: embedded_storage::nor_flash::NorFlash> NorFlash for Blocking<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.erase(from, to)
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, bytes)
    }
}

impl<F: embedded_storage::nor_flash::MultiwriteNorFlash> MultiwriteNorFlash for Blocking<F> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn frame(seq: u32, event: bool) -> Frame {
        let mut f = Frame::new();
        f.seq = seq;
        f.event = event;
        f.values[0] = seq as i16;
        f.values[2] = 7;
        f
    }

    fn seqs<F: NorFlash + MultiwriteNorFlash>(s: &mut FlashOutbox<F>) -> Vec<u32> {
        let mut v = Vec::new();
        s.for_each(|f| v.push(f.seq)).unwrap();
        v
    }

    #[test]
    fn fifo_survives_a_remount() {
        let mut mem = vec![0xFF; 4 * 256];
        let flash = RamFlash::<256>::new(&mut mem);
        let mut s = FlashOutbox::mount(flash, 0..1024).unwrap();
        for i in 0..10 {
            assert_eq!(s.push(&frame(i, i % 3 == 0)), PushOutcome::default());
        }
        assert_eq!(s.peek(), Some(frame(0, true)));
        s.delivered();
        s.delivered();
        assert_eq!(s.len(), 8);
        let flash = s.into_flash();
        let mut s = FlashOutbox::mount(flash, 0..1024).unwrap();
        assert_eq!(s.len(), 8);
        assert_eq!(seqs(&mut s), (2..10).collect::<Vec<_>>());
        assert_eq!(s.peek(), Some(frame(2, false)));
    }

    #[test]
    fn full_flash_drops_the_oldest_page_counted() {
        let mut mem = vec![0xFF; 4 * 256];
        let flash = RamFlash::<256>::new(&mut mem);
        let mut s = FlashOutbox::mount(flash, 0..1024).unwrap();
        let mut dropped = 0;
        for i in 0..200 {
            let out = s.push(&frame(i, false));
            assert!(!out.refused);
            dropped += u32::from(out.evicted);
        }
        assert!(dropped > 0);
        let held = seqs(&mut s);
        assert_eq!(held.len(), s.len());
        assert_eq!(held.len() as u32 + dropped, 200);
        // The newest are kept, in order, and the drops are the oldest.
        assert_eq!(*held.last().unwrap(), 199);
        assert_eq!(held[0], dropped);
        assert!(held.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(s.dropped_since_delivery(), dropped);
        assert_eq!(s.dropped_total(), dropped);
        s.delivered();
        assert_eq!(s.dropped_since_delivery(), 0);
        assert!(s.stats().reclaimed_pages > 0);
    }

    #[test]
    fn bad_range_is_refused() {
        let mut mem = vec![0xFF; 4 * 256];
        assert_eq!(
            FlashOutbox::mount(RamFlash::<256>::new(&mut mem), 0..100).err(),
            Some(StoreError::BadRange)
        );
    }
}
