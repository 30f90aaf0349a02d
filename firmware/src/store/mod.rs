//! Store-and-forward on NOR flash: frames survive a power cut, and so does
//! the count of frames the store had to drop.
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
//!   and counted;
//! * **power-cut safe**: items carry CRCs and page states are written in an
//!   order `sequential-storage` recovers from, so a cut at any point of a
//!   write leaves every frame that was stored before it, plus or minus the
//!   one being written, and a frame being removed may come back once (a
//!   duplicate with its `seq`, which the gateway absorbs). The test
//!   `firmware/tests/power_cut.rs` cuts the power at every write position.
//!
//! Frames are acknowledged to the device ([`FrameStore::push`] returns)
//! only after the write completed, and removed only after the transport
//! confirmed them (PUBACK).
//!
//! **Drop counts live on flash too.** A drop must reach the gateway (the
//! `dropped` field of a delivered frame) exactly once, also across a power
//! cut, so the count is stored with the frames rather than in RAM: each
//! record on flash is a tag byte, then
//!
//! | tag | record |
//! |---|---|
//! | 0 | a frame (the compact record) |
//! | 1 | a frame, and a count (u32 LE) of frames dropped before it |
//! | 2 | a count (u32 LE) of frames dropped, with no frame |
//!
//! When a push reclaims the oldest page, the frames on it (and the counts
//! the lost records carried) are counted in a tag-2 record written right
//! after. A frame is delivered with the counts of the tag-2 records before
//! it plus its own, and they leave the flash with it. The one window left:
//! a power cut after a reclaim erased its page and before the count record
//! is written loses that count (the frames were being dropped anyway).
//! The RAM counters ([`FlashOutbox::dropped_total`], [`StoreStats`]) are
//! counters since boot, like the device's other statistics.
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

const TAG_FRAME: u8 = 0;
const TAG_FRAME_COUNTED: u8 = 1;
const TAG_COUNT: u8 = 2;
/// Largest record on flash: tag, count, frame.
const MAX_STORED: usize = 1 + 4 + MAX_RECORD;

/// One record read back from flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored<'a> {
    /// A frame's compact record and the drops counted with it.
    Frame(&'a [u8], u32),
    /// A count of drops.
    Count(u32),
    /// A tag this version does not know (or a short record): passed over,
    /// removed with the next frame.
    Unknown,
}

fn parse(rec: &[u8]) -> Stored<'_> {
    let count = |b: &[u8]| {
        b.get(1..5)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    };
    match rec.first() {
        Some(&TAG_FRAME) => Stored::Frame(&rec[1..], 0),
        Some(&TAG_FRAME_COUNTED) => match count(rec) {
            Some(n) => Stored::Frame(&rec[5..], n),
            None => Stored::Unknown,
        },
        Some(&TAG_COUNT) => count(rec).map_or(Stored::Unknown, Stored::Count),
        _ => Stored::Unknown,
    }
}

/// Writes a record: `frame`'s compact record (if any) after the tag and,
/// if non-zero, `count`; returns its length.
fn encode(frame: Option<&Frame>, count: u32, out: &mut [u8; MAX_STORED]) -> usize {
    let Some(frame) = frame else {
        out[0] = TAG_COUNT;
        out[1..5].copy_from_slice(&count.to_le_bytes());
        return 5;
    };
    let mut rec = [0u8; MAX_RECORD];
    let n = outbox::encode(frame, &mut rec);
    let at = if count == 0 {
        out[0] = TAG_FRAME;
        1
    } else {
        out[0] = TAG_FRAME_COUNTED;
        out[1..5].copy_from_slice(&count.to_le_bytes());
        5
    };
    out[at..at + n].copy_from_slice(&rec[..n]);
    at + n
}

/// What the store holds, counted on flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Census {
    /// Frames.
    frames: usize,
    /// Drops counted in the records.
    counted: u32,
}

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
    /// What the flash holds (kept in step with every write).
    census: Census,
    /// The `dropped` of the frame the last [`FrameStore::peek`] returned.
    head_dropped: u32,
    dropped_total: u32,
    stats: StoreStats,
}

impl<F: NorFlash + MultiwriteNorFlash> core::fmt::Debug for FlashOutbox<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlashOutbox")
            .field("range", &self.queue.flash_range())
            .field("frames", &self.census.frames)
            .field("counted", &self.census.counted)
            .field("dropped_total", &self.dropped_total)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<F: NorFlash + MultiwriteNorFlash> FlashOutbox<F> {
    /// Mounts the store on `range` of `flash` (page-aligned, at least two
    /// erase pages), keeping the frames and drop counts already there:
    /// after a power cut they go out first. Interrupted writes are repaired
    /// here.
    pub fn mount(flash: F, range: Range<u32>) -> Result<Self, StoreError> {
        let config = QueueConfig::try_new(range).map_err(|_| StoreError::BadRange)?;
        let mut s = Self {
            queue: QueueStorage::new(flash, config, Cache::new_uncached()),
            census: Census::default(),
            head_dropped: 0,
            dropped_total: 0,
            stats: StoreStats::default(),
        };
        s.census = s.census().ok_or(StoreError::Flash)?;
        Ok(s)
    }

    /// Frames and counted drops, read from flash.
    fn census(&mut self) -> Option<Census> {
        block_on(async {
            let mut it = self.queue.iter().await.ok()?;
            let mut buf = [0u8; MAX_STORED];
            let mut c = Census::default();
            while let Some(entry) = it.next(&mut buf).await.ok()? {
                match parse(&entry) {
                    Stored::Frame(_, n) => {
                        c.frames += 1;
                        c.counted = c.counted.saturating_add(n);
                    }
                    Stored::Count(n) => c.counted = c.counted.saturating_add(n),
                    Stored::Unknown => {}
                }
            }
            Some(c)
        })
    }

    /// Every frame held, oldest first, into `visit` (inspection, tests).
    pub fn for_each(&mut self, mut visit: impl FnMut(Frame)) -> Result<(), StoreError> {
        block_on(async {
            let mut it = self.queue.iter().await.map_err(|_| StoreError::Flash)?;
            let mut buf = [0u8; MAX_STORED];
            while let Some(entry) = it.next(&mut buf).await.map_err(|_| StoreError::Flash)? {
                if let Stored::Frame(rec, _) = parse(&entry) {
                    visit(outbox::decode(rec));
                }
            }
            Ok(())
        })
    }

    /// Drops counted on flash and not yet delivered (they go out in the
    /// `dropped` fields of the frames held, or of the next ones).
    pub fn undelivered_drops(&self) -> u32 {
        self.census.counted
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

    /// Appends `frame` (or, for `None`, a count record) carrying `count`
    /// drops. When the flash is full the oldest page is reclaimed; what it
    /// held is counted and returned (frames lost, and with the counts
    /// their records carried), for the caller to write down.
    fn append(&mut self, frame: Option<&Frame>, count: u32) -> Result<u32, ()> {
        let mut rec = [0u8; MAX_STORED];
        let n = encode(frame, count, &mut rec);
        let mut added = self.census;
        added.frames += usize::from(frame.is_some());
        added.counted = added.counted.saturating_add(count);
        match block_on(self.queue.push(&rec[..n], false)) {
            Ok(()) => {
                self.census = added;
                return Ok(0);
            }
            Err(sequential_storage::Error::FullStorage) => {}
            Err(_) => {
                self.flash_error();
                return Err(());
            }
        }
        if block_on(self.queue.push(&rec[..n], true)).is_err() {
            self.flash_error();
            self.census = self.census().unwrap_or(self.census);
            return Err(());
        }
        self.stats.reclaimed_pages = self.stats.reclaimed_pages.saturating_add(1);
        let Some(after) = self.census() else {
            self.flash_error();
            self.census = added;
            return Ok(0);
        };
        self.census = after;
        let lost_frames = added.frames.saturating_sub(after.frames) as u32;
        self.dropped_total = self.dropped_total.saturating_add(lost_frames);
        Ok(lost_frames.saturating_add(added.counted.saturating_sub(after.counted)))
    }

    /// Writes down `owed` dropped frames in count records (a record that
    /// itself reclaims a page owes that page's frames: written too).
    fn write_count(&mut self, mut owed: u32) {
        // Each round reclaims a whole page for a 5-byte record: the second
        // finds room.
        for _ in 0..3 {
            if owed == 0 {
                return;
            }
            match self.append(None, owed) {
                Ok(more) => owed = more,
                Err(()) => return,
            }
        }
    }

    /// Walks to the oldest frame: its record, the drops it delivers (its
    /// own and those of the count records before it), and whether to pop
    /// what it passed (`pop`).
    fn head(&mut self, pop: bool) -> Result<Option<(Frame, u32)>, ()> {
        block_on(async {
            let mut it = self.queue.iter().await.map_err(|_| ())?;
            let mut buf = [0u8; MAX_STORED];
            let mut dropped = 0u32;
            while let Some(entry) = it.next(&mut buf).await.map_err(|_| ())? {
                match parse(&entry) {
                    Stored::Frame(rec, n) => {
                        let frame = outbox::decode(rec);
                        let dropped = dropped.saturating_add(n);
                        if pop {
                            entry.pop().await.map_err(|_| ())?;
                        }
                        return Ok(Some((frame, dropped)));
                    }
                    Stored::Count(n) => {
                        dropped = dropped.saturating_add(n);
                        if pop {
                            entry.pop().await.map_err(|_| ())?;
                        }
                    }
                    Stored::Unknown => {
                        if pop {
                            entry.pop().await.map_err(|_| ())?;
                        }
                    }
                }
            }
            Ok(None)
        })
    }

    /// Removes the oldest frame and the count records before it; returns
    /// the drops they carried.
    fn pop_head(&mut self) -> Option<u32> {
        match self.head(true) {
            Ok(Some((_, dropped))) => {
                self.census.frames = self.census.frames.saturating_sub(1);
                self.census.counted = self.census.counted.saturating_sub(dropped);
                Some(dropped)
            }
            Ok(None) => {
                self.census = Census::default();
                None
            }
            Err(()) => {
                self.flash_error();
                self.census = self.census().unwrap_or(self.census);
                None
            }
        }
    }
}

impl<F: NorFlash + MultiwriteNorFlash> FrameStore for FlashOutbox<F> {
    fn push(&mut self, frame: &Frame) -> PushOutcome {
        let mut out = PushOutcome::default();
        let before = self.dropped_total;
        match self.append(Some(frame), 0) {
            Ok(owed) => {
                self.stats.stored = self.stats.stored.saturating_add(1);
                self.write_count(owed);
            }
            Err(()) => {
                out.refused = true;
                self.dropped_total = self.dropped_total.saturating_add(1);
                self.write_count(1);
            }
        }
        let lost = self
            .dropped_total
            .saturating_sub(before)
            .saturating_sub(u32::from(out.refused));
        out.evicted = lost.min(u32::from(u16::MAX)) as u16;
        out
    }

    fn peek(&mut self) -> Option<Frame> {
        if self.census.frames == 0 {
            return None;
        }
        match self.head(false) {
            Ok(Some((frame, dropped))) => {
                self.head_dropped = dropped;
                Some(frame)
            }
            Ok(None) => {
                self.census.frames = 0;
                None
            }
            Err(()) => {
                self.flash_error();
                None
            }
        }
    }

    fn delivered(&mut self) {
        self.pop_head();
        self.head_dropped = 0;
    }

    fn discard_oldest(&mut self) {
        // The frame and the drops it would have delivered go to the next.
        if let Some(dropped) = self.pop_head() {
            self.dropped_total = self.dropped_total.saturating_add(1);
            self.write_count(dropped.saturating_add(1));
        }
        self.head_dropped = 0;
    }

    fn len(&self) -> usize {
        self.census.frames
    }

    fn dropped_since_delivery(&self) -> u32 {
        self.head_dropped
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

    /// Drains the store: (seq, dropped) of every frame delivered.
    fn drain<F: NorFlash + MultiwriteNorFlash>(s: &mut FlashOutbox<F>) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        while let Some(f) = s.peek() {
            out.push((f.seq, s.dropped_since_delivery()));
            s.delivered();
        }
        out
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
        assert_eq!(s.dropped_total(), dropped);
        assert_eq!(s.undelivered_drops(), dropped);
        assert!(s.stats().reclaimed_pages > 0);
        let held = seqs(&mut s);
        assert_eq!(held.len(), s.len());
        assert_eq!(held.len() as u32 + dropped, 200);
        // The newest are kept, in order, and the drops are the oldest.
        assert_eq!(*held.last().unwrap(), 199);
        assert_eq!(held[0], dropped);
        assert!(held.windows(2).all(|w| w[1] == w[0] + 1));
        // Every drop is delivered once, in the `dropped` of a frame.
        let out = drain(&mut s);
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), held);
        assert_eq!(out.iter().map(|o| o.1).sum::<u32>(), dropped);
        assert_eq!(s.undelivered_drops(), 0);
        assert_eq!(s.dropped_total(), dropped);
    }

    #[test]
    fn drop_counts_survive_a_remount() {
        let mut mem = vec![0xFF; 4 * 256];
        let flash = RamFlash::<256>::new(&mut mem);
        let mut s = FlashOutbox::mount(flash, 0..1024).unwrap();
        let mut dropped = 0;
        for i in 0..120 {
            dropped += u32::from(s.push(&frame(i, i % 7 == 0)).evicted);
        }
        assert!(dropped > 0);
        let flash = s.into_flash();
        let mut s = FlashOutbox::mount(flash, 0..1024).unwrap();
        // Since boot: nothing dropped yet; on flash: every drop, to deliver.
        assert_eq!(s.dropped_total(), 0);
        assert_eq!(s.undelivered_drops(), dropped);
        let out = drain(&mut s);
        assert_eq!(out.len() as u32 + dropped, 120);
        assert_eq!(out.iter().map(|o| o.1).sum::<u32>(), dropped);
        // Delivered once: nothing left to report after another remount.
        let flash = s.into_flash();
        let mut s = FlashOutbox::mount(flash, 0..1024).unwrap();
        assert_eq!(s.undelivered_drops(), 0);
        assert!(drain(&mut s).is_empty());
    }

    #[test]
    fn discarded_frames_are_counted_on_the_next() {
        let mut mem = vec![0xFF; 4 * 256];
        let flash = RamFlash::<256>::new(&mut mem);
        let mut s = FlashOutbox::mount(flash, 0..1024).unwrap();
        for i in 0..3 {
            s.push(&frame(i, false));
        }
        assert!(s.peek().is_some());
        s.discard_oldest();
        assert_eq!(s.len(), 2);
        assert_eq!(s.dropped_total(), 1);
        // The count record sits behind the frames held: it goes out with
        // the next frame pushed.
        s.push(&frame(3, false));
        assert_eq!(drain(&mut s), [(1, 0), (2, 0), (3, 1)]);
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
