//! Store-and-forward: a fixed-capacity ring of compact frames that holds
//! everything the device produced while its link was down, and hands it out
//! oldest first when the link is back.
//!
//! Frames are stored as variable-length records in one byte array, not as
//! JSON: a gas frame takes 18 bytes instead of ~120, a crane frame 26.
//!
//! | bytes | field |
//! |---|---|
//! | 1 | header: bit 7 = event frame, bits 0–3 = fault count (≤ 8) |
//! | 4 | `seq`, little endian |
//! | 6 | `ts_ms`, little endian (48 bits reach the year 10 889) |
//! | 1 | present mask: bit i = channel i has a reading |
//! | 2 per present channel | fixed-point reading (see [`crate::scale`]), LE |
//! | 2 per fault | fault code, then metric (`0xFF` = device-wide) |
//!
//! When a new frame does not fit, the oldest **telemetry** frame is dropped
//! (events are kept as long as any telemetry frame can go instead, and a new
//! telemetry frame is refused rather than evict an event); every drop is
//! counted and reported in the `dropped` field of the next delivered frame.

use anquan_protocol::{Fault, FaultCode, Faults, MAX_FAULTS, Metric};

use crate::channels::MAX_CHANNELS;
use crate::frame::Frame;
use crate::scale::ABSENT;

const HEADER: usize = 12;
/// Largest record: header, every channel, the most faults.
pub const MAX_RECORD: usize = HEADER + 2 * MAX_CHANNELS + 2 * MAX_FAULTS;
const EVENT_BIT: u8 = 0x80;
const DEVICE_WIDE: u8 = 0xFF;

/// What [`Outbox::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushOutcome {
    /// Older frames dropped to make room.
    pub evicted: u16,
    /// The new frame itself was refused (a telemetry frame when only events
    /// are buffered).
    pub refused: bool,
}

/// Where a device keeps its frames until the transport took them: the RAM
/// [`Outbox`] here, or a flash-backed store that survives a power cut
/// ([`crate::store::FlashOutbox`]). The device pushes every frame it makes,
/// publishes the oldest, and removes it only once the transport said it is
/// safe ([`FrameStore::delivered`]): at-least-once.
pub trait FrameStore {
    /// Appends a frame, making room by the store's drop policy (counted).
    fn push(&mut self, frame: &Frame) -> PushOutcome;
    /// The oldest frame, without removing it.
    fn peek(&mut self) -> Option<Frame>;
    /// Removes the oldest frame after it was delivered, and resets the
    /// `dropped` count it carried.
    fn delivered(&mut self);
    /// Removes the oldest frame undelivered, counting it as dropped.
    fn discard_oldest(&mut self);
    /// Frames held.
    fn len(&self) -> usize;
    /// Whether no frame is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `dropped` field of the frame [`FrameStore::peek`] returned: the
    /// frames dropped that its delivery reports (the RAM ring: every drop
    /// since the last delivery; the flash store: the drops counted on flash
    /// ahead of it, so they survive a power cut).
    fn dropped_since_delivery(&self) -> u32;
    /// Frames dropped since boot.
    fn dropped_total(&self) -> u32;
}

impl<const N: usize> FrameStore for Outbox<N> {
    fn push(&mut self, frame: &Frame) -> PushOutcome {
        Outbox::push(self, frame)
    }
    fn peek(&mut self) -> Option<Frame> {
        Outbox::peek(self)
    }
    fn delivered(&mut self) {
        Outbox::delivered(self);
    }
    fn discard_oldest(&mut self) {
        Outbox::discard_oldest(self);
    }
    fn len(&self) -> usize {
        Outbox::len(self)
    }
    fn dropped_since_delivery(&self) -> u32 {
        Outbox::dropped_since_delivery(self)
    }
    fn dropped_total(&self) -> u32 {
        Outbox::dropped_total(self)
    }
}

/// The ring of compact frames; `N` bytes of storage.
#[derive(Clone)]
pub struct Outbox<const N: usize> {
    buf: [u8; N],
    head: usize,
    used: usize,
    frames: u16,
    events: u16,
    dropped_since_delivery: u32,
    dropped_total: u32,
}

impl<const N: usize> core::fmt::Debug for Outbox<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Outbox")
            .field("capacity", &N)
            .field("used", &self.used)
            .field("frames", &self.frames)
            .field("events", &self.events)
            .field("dropped_since_delivery", &self.dropped_since_delivery)
            .field("dropped_total", &self.dropped_total)
            .finish()
    }
}

impl<const N: usize> Default for Outbox<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The encoded length of `frame`.
pub fn record_len(frame: &Frame) -> usize {
    HEADER + 2 * frame.present().count_ones() as usize + 2 * frame.faults.len().min(MAX_FAULTS)
}

/// Writes the compact record of `frame`; returns its length.
pub fn encode(frame: &Frame, out: &mut [u8; MAX_RECORD]) -> usize {
    let nfaults = frame.faults.len().min(MAX_FAULTS);
    out[0] = if frame.event { EVENT_BIT } else { 0 } | nfaults as u8;
    out[1..5].copy_from_slice(&frame.seq.to_le_bytes());
    out[5..11].copy_from_slice(&frame.ts_ms.to_le_bytes()[..6]);
    out[11] = frame.present();
    let mut at = HEADER;
    for v in frame.values.iter().filter(|v| **v != ABSENT) {
        out[at..at + 2].copy_from_slice(&v.to_le_bytes());
        at += 2;
    }
    for f in frame.faults.iter().take(nfaults) {
        out[at] = f.code as u8;
        out[at + 1] = f.metric.map_or(DEVICE_WIDE, |m| m as u8);
        at += 2;
    }
    at
}

/// Reads a record [`encode`] wrote (missing bytes read as 0, unknown fault
/// codes are skipped: never a panic).
pub fn decode(rec: &[u8]) -> Frame {
    let mut frame = Frame::new();
    let get = |i: usize| rec.get(i).copied().unwrap_or(0);
    let header = get(0);
    frame.event = header & EVENT_BIT != 0;
    frame.seq = u32::from_le_bytes([get(1), get(2), get(3), get(4)]);
    frame.ts_ms = u64::from_le_bytes([get(5), get(6), get(7), get(8), get(9), get(10), 0, 0]);
    let present = get(11);
    let mut at = HEADER;
    for (i, v) in frame.values.iter_mut().enumerate() {
        if present & (1 << i) != 0 {
            *v = i16::from_le_bytes([get(at), get(at + 1)]);
            at += 2;
        }
    }
    let mut faults = Faults::new();
    for _ in 0..usize::from(header & 0x0F).min(MAX_FAULTS) {
        // Only what `encode` wrote is ever read; an unknown value is skipped
        // rather than trusted.
        let code = FaultCode::ALL.get(usize::from(get(at))).copied();
        let metric = match get(at + 1) {
            DEVICE_WIDE => Some(None),
            m => Metric::ALL.get(usize::from(m)).copied().map(Some),
        };
        if let (Some(code), Some(metric)) = (code, metric) {
            let _ = faults.push(Fault { code, metric });
        }
        at += 2;
    }
    frame.faults = faults;
    frame
}

impl<const N: usize> Outbox<N> {
    const ROOM: () = assert!(
        N >= 2 * MAX_RECORD,
        "an outbox must hold at least two frames"
    );

    /// An empty outbox.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::ROOM;
        Self {
            buf: [0; N],
            head: 0,
            used: 0,
            frames: 0,
            events: 0,
            dropped_since_delivery: 0,
            dropped_total: 0,
        }
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        usize::from(self.frames)
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Event frames held.
    pub fn events(&self) -> usize {
        usize::from(self.events)
    }

    /// Bytes in use.
    pub fn bytes_used(&self) -> usize {
        self.used
    }

    /// Capacity in bytes.
    pub const fn capacity_bytes(&self) -> usize {
        N
    }

    /// Frames dropped since the last [`Self::delivered`], for the `dropped`
    /// field of the next frame sent.
    pub fn dropped_since_delivery(&self) -> u32 {
        self.dropped_since_delivery
    }

    /// Frames dropped since boot.
    pub fn dropped_total(&self) -> u32 {
        self.dropped_total
    }

    fn byte(&self, offset: usize) -> u8 {
        self.buf[(self.head + offset) % N]
    }

    /// Length of the record starting `offset` bytes after the head.
    fn len_at(&self, offset: usize) -> usize {
        let header = self.byte(offset);
        let present = self.byte(offset + 11);
        HEADER + 2 * present.count_ones() as usize + 2 * usize::from(header & 0x0F).min(MAX_FAULTS)
    }

    fn read_at(&self, offset: usize) -> Frame {
        let len = self.len_at(offset).min(MAX_RECORD);
        let mut rec = [0u8; MAX_RECORD];
        for (i, b) in rec.iter_mut().enumerate().take(len) {
            *b = self.byte(offset + i);
        }
        decode(&rec[..len])
    }

    /// The oldest frame, without removing it.
    pub fn peek(&self) -> Option<Frame> {
        (self.frames > 0).then(|| self.read_at(0))
    }

    /// Removes the oldest frame after it was delivered, and resets the
    /// `dropped` count it carried.
    pub fn delivered(&mut self) {
        self.pop_oldest();
        self.dropped_since_delivery = 0;
    }

    fn pop_oldest(&mut self) {
        if self.frames == 0 {
            return;
        }
        let len = self.len_at(0);
        if self.byte(0) & EVENT_BIT != 0 {
            self.events -= 1;
        }
        self.head = (self.head + len) % N;
        self.used -= len;
        self.frames -= 1;
    }

    /// Removes the oldest frame undelivered, counting it as dropped.
    pub fn discard_oldest(&mut self) {
        if self.frames > 0 {
            self.pop_oldest();
            self.count_drop();
        }
    }

    /// Removes the oldest telemetry frame; `false` when there is none.
    fn evict_oldest_telemetry(&mut self) -> bool {
        if self.frames == self.events {
            return false;
        }
        // The records before it are all events: walk over them.
        let mut offset = 0;
        while self.byte(offset) & EVENT_BIT != 0 {
            offset += self.len_at(offset);
        }
        let len = self.len_at(offset);
        // Slide the leading events forward over the hole, newest byte first.
        for k in (0..offset).rev() {
            self.buf[(self.head + k + len) % N] = self.buf[(self.head + k) % N];
        }
        self.head = (self.head + len) % N;
        self.used -= len;
        self.frames -= 1;
        true
    }

    fn count_drop(&mut self) {
        self.dropped_since_delivery = self.dropped_since_delivery.saturating_add(1);
        self.dropped_total = self.dropped_total.saturating_add(1);
    }

    /// Appends a frame, dropping the oldest telemetry (or, for an event
    /// when only events are held, the oldest event) until it fits.
    pub fn push(&mut self, frame: &Frame) -> PushOutcome {
        let mut rec = [0u8; MAX_RECORD];
        let len = encode(frame, &mut rec);
        let mut out = PushOutcome::default();
        while N - self.used < len {
            if self.evict_oldest_telemetry() {
                out.evicted += 1;
            } else if frame.event && self.frames > 0 {
                self.pop_oldest();
                out.evicted += 1;
            } else {
                // A telemetry frame never evicts an event.
                out.refused = true;
                self.count_drop();
                return out;
            }
            self.count_drop();
        }
        let tail = self.head + self.used;
        for (i, b) in rec[..len].iter().enumerate() {
            self.buf[(tail + i) % N] = *b;
        }
        self.used += len;
        self.frames += 1;
        if frame.event {
            self.events += 1;
        }
        out
    }

    /// Every frame held, oldest first (for inspection and tests).
    pub fn iter(&self) -> impl Iterator<Item = Frame> + '_ {
        let mut offset = 0;
        (0..self.frames).map(move |_| {
            let f = self.read_at(offset);
            offset += self.len_at(offset);
            f
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    fn frame(seq: u32, event: bool, channels: usize) -> Frame {
        let mut f = Frame::new();
        f.seq = seq;
        f.event = event;
        f.ts_ms = 1_732_300_000_000 + u64::from(seq) * 1000;
        for (i, v) in f.values.iter_mut().enumerate().take(channels) {
            *v = (seq as i16).wrapping_mul(7).wrapping_add(i as i16) & 0x3FFF;
        }
        f
    }

    #[test]
    fn round_trips_every_field() {
        let mut f = frame(0xDEAD_BEEF, true, 7);
        f.values[3] = ABSENT;
        f.values[1] = -10_800;
        f.faults
            .push(Fault::on(FaultCode::Stuck, Metric::HeightM))
            .unwrap();
        f.faults.push(Fault::device(FaultCode::Power)).unwrap();
        let mut rec = [0u8; MAX_RECORD];
        let n = encode(&f, &mut rec);
        assert_eq!(n, record_len(&f));
        assert_eq!(n, HEADER + 2 * 6 + 2 * 2);
        assert_eq!(decode(&rec[..n]), f);
    }

    #[test]
    fn fifo_across_the_wrap() {
        let mut o = Outbox::<200>::new();
        let mut next = 0;
        let mut expect = VecDeque::new();
        for round in 0..50 {
            for _ in 0..(round % 4 + 1) {
                let f = frame(next, next % 3 == 0, (next % 8) as usize);
                next += 1;
                assert_eq!(o.push(&f), PushOutcome::default());
                expect.push_back(f);
            }
            for _ in 0..((round + 2) % 4 + 1) {
                assert_eq!(o.peek(), expect.pop_front());
                o.delivered();
            }
        }
        assert_eq!(o.iter().collect::<Vec<_>>(), Vec::from(expect));
    }

    #[test]
    fn full_buffer_drops_oldest_telemetry_and_keeps_events() {
        let mut o = Outbox::<{ 2 * MAX_RECORD }>::new();
        // 22-byte records (5 channels): 4 fit in 88 bytes.
        o.push(&frame(0, true, 5));
        o.push(&frame(1, false, 5));
        o.push(&frame(2, true, 5));
        o.push(&frame(3, false, 5));
        assert_eq!(o.len(), 4);
        let r = o.push(&frame(4, false, 5));
        assert_eq!(r.evicted, 1);
        let seqs: Vec<u32> = o.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [0, 2, 3, 4]);
        assert_eq!(o.dropped_since_delivery(), 1);
        // Only events left after more pressure: a new telemetry frame is refused…
        o.push(&frame(5, true, 5));
        o.push(&frame(6, true, 5));
        let seqs: Vec<u32> = o.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [0, 2, 5, 6]);
        let r = o.push(&frame(7, false, 5));
        assert!(r.refused);
        // …while a new event evicts the oldest event.
        let r = o.push(&frame(8, true, 5));
        assert_eq!(r.evicted, 1);
        let seqs: Vec<u32> = o.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, [2, 5, 6, 8]);
        assert_eq!(o.dropped_since_delivery(), 5);
        assert_eq!(o.events(), 4);
        o.delivered();
        assert_eq!(o.dropped_since_delivery(), 0);
        assert_eq!(o.dropped_total(), 5);
    }

    /// A model of the drop policy on a plain deque.
    fn model_push(model: &mut VecDeque<Frame>, cap: usize, f: &Frame) -> u32 {
        let used = |m: &VecDeque<Frame>| m.iter().map(record_len).sum::<usize>();
        let mut drops = 0;
        while cap - used(model) < record_len(f) {
            if let Some(i) = model.iter().position(|x| !x.event) {
                model.remove(i);
            } else if f.event && !model.is_empty() {
                model.pop_front();
            } else {
                return drops + 1;
            }
            drops += 1;
        }
        model.push_back(f.clone());
        drops
    }

    proptest! {
        #[test]
        fn behaves_like_the_model(ops in proptest::collection::vec((any::<bool>(), 0usize..=8, 0u8..4), 1..300)) {
            const CAP: usize = 300;
            let mut o = Outbox::<CAP>::new();
            let mut model = VecDeque::new();
            let mut dropped = 0;
            for (seq, (event, channels, deliver)) in ops.into_iter().enumerate() {
                let mut f = frame(seq as u32, event, channels);
                if channels % 3 == 0 {
                    f.faults.push(Fault::on(FaultCode::OutOfRange, Metric::LoadT)).unwrap();
                }
                o.push(&f);
                dropped += model_push(&mut model, CAP, &f);
                prop_assert_eq!(o.dropped_since_delivery(), dropped);
                for _ in 0..deliver {
                    prop_assert_eq!(o.peek(), model.pop_front());
                    if !o.is_empty() {
                        o.delivered();
                        dropped = 0;
                    }
                }
                prop_assert_eq!(o.len(), model.len());
                prop_assert_eq!(o.events(), model.iter().filter(|f| f.event).count());
                prop_assert_eq!(o.bytes_used(), model.iter().map(record_len).sum::<usize>());
            }
            prop_assert_eq!(o.iter().collect::<Vec<_>>(), Vec::from(model));
        }
    }
}
