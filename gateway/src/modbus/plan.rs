//! The request planner: a device's values merged into as few read requests
//! as the protocol allows (≤ 125 registers or ≤ 2000 bits per read, one
//! function per request), without reading more than `max_gap` unused
//! addresses between two values (a hole in a device's map often answers
//! "illegal data address").

use super::map::{Function, RegisterSpec};

/// One read request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// The table.
    pub function: Function,
    /// First address.
    pub address: u16,
    /// Registers (bits) to read.
    pub count: u16,
}

impl Read {
    /// One past the last address.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.count)
    }
}

/// Where a value is in the reads' results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index of the read.
    pub read: usize,
    /// Offset of the value's first word (bit) in that read.
    pub offset: usize,
}

/// The reads of a map and where each value (in map order) lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The requests, in order.
    pub reads: Vec<Read>,
    /// One slot per value, in the order of the specs.
    pub slots: Vec<Slot>,
}

/// A value's span: function, first address, width.
pub type Span = (Function, u16, u16);

/// Plans the reads for `spans` (each must fit one read: width ≤ the
/// function's maximum, address + width ≤ 65536, as the map check ensures).
///
/// Greedy over the spans sorted by address, per function: a span joins the
/// current read when the gap before it is at most `max_gap` and the read
/// stays within the maximum; otherwise it starts a new read. For intervals
/// that must each lie wholly inside one read of bounded length this is the
/// fewest reads (the classic earliest-deadline argument: the first read
/// can always be pushed to start at the first span).
pub fn plan(spans: &[Span], max_gap: u16) -> Plan {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| (spans[i].0, spans[i].1, spans[i].2));
    let mut reads: Vec<Read> = Vec::new();
    let mut slots = vec![Slot { read: 0, offset: 0 }; spans.len()];
    for i in order {
        let (f, a, w) = spans[i];
        let end = u32::from(a) + u32::from(w);
        let last = reads.len().saturating_sub(1);
        let joined = reads.last_mut().filter(|r| {
            r.function == f
                && u32::from(a) <= r.end() + u32::from(max_gap)
                && end.max(r.end()) - u32::from(r.address) <= u32::from(f.max_per_read())
        });
        match joined {
            Some(r) => {
                let new_end = end.max(r.end());
                r.count = (new_end - u32::from(r.address)) as u16;
                slots[i] = Slot {
                    read: last,
                    offset: usize::from(a - r.address),
                };
            }
            None => {
                reads.push(Read {
                    function: f,
                    address: a,
                    count: w,
                });
                slots[i] = Slot {
                    read: reads.len() - 1,
                    offset: 0,
                };
            }
        }
    }
    Plan { reads, slots }
}

/// The spans of checked specs.
pub fn spans(specs: &[RegisterSpec]) -> Vec<Span> {
    specs
        .iter()
        .map(|s| (s.function, s.address as u16, s.width()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_adjacent_and_splits_at_the_limit() {
        let f = Function::Input;
        let p = plan(&[(f, 10, 1), (f, 9, 1), (f, 11, 2)], 0);
        assert_eq!(
            p.reads,
            vec![Read {
                function: f,
                address: 9,
                count: 4
            }]
        );
        assert_eq!(p.slots[0], Slot { read: 0, offset: 1 });
        assert_eq!(p.slots[2], Slot { read: 0, offset: 2 });
        // A gap: two reads unless the gap is allowed.
        assert_eq!(plan(&[(f, 0, 1), (f, 5, 1)], 0).reads.len(), 2);
        assert_eq!(plan(&[(f, 0, 1), (f, 5, 1)], 4).reads.len(), 1);
        // 125 registers per read.
        let many: Vec<Span> = (0..300).map(|a| (f, a, 1)).collect();
        let p = plan(&many, 0);
        assert_eq!(
            p.reads.iter().map(|r| r.count).collect::<Vec<_>>(),
            vec![125, 125, 50]
        );
        // A 32-bit value never straddles two reads.
        let mut v: Vec<Span> = (0..124).map(|a| (f, a, 1)).collect();
        v.push((f, 124, 2));
        let p = plan(&v, 0);
        assert_eq!(p.reads[1].address, 124);
        // Functions never mix; coils go up to 2000.
        let c: Vec<Span> = (0..2001).map(|a| (Function::Coil, a, 1)).collect();
        let mut all = c.clone();
        all.push((Function::Holding, 0, 1));
        let p = plan(&all, 0);
        assert_eq!(p.reads.len(), 3);
        assert!(p.reads.iter().any(|r| r.count == 2000));
    }

    fn function() -> impl Strategy<Value = Function> {
        prop::sample::select(Function::ALL.to_vec())
    }

    fn span() -> impl Strategy<Value = Span> {
        (function(), 0u16..400, 1u16..=2).prop_map(|(f, a, w)| (f, a, w))
    }

    /// The fewest reads, by dynamic programming over the sorted spans of
    /// one function (a read must start at some span's address).
    fn fewest(spans: &[Span], max_gap: u16) -> usize {
        let mut total = 0;
        for f in Function::ALL {
            let mut v: Vec<(u32, u32)> = spans
                .iter()
                .filter(|s| s.0 == f)
                .map(|s| (u32::from(s.1), u32::from(s.1) + u32::from(s.2)))
                .collect();
            v.sort();
            v.dedup();
            if v.is_empty() {
                continue;
            }
            // best[i] = fewest reads covering v[i..]
            let n = v.len();
            let mut best = vec![usize::MAX; n + 1];
            best[n] = 0;
            for i in (0..n).rev() {
                let start = v[i].0;
                let mut end = v[i].1;
                for j in i..n {
                    if j > i && v[j].0 > end + u32::from(max_gap) {
                        break;
                    }
                    end = end.max(v[j].1);
                    if end - start > u32::from(f.max_per_read()) {
                        break;
                    }
                    best[i] = best[i].min(1 + best[j + 1]);
                }
            }
            total += best[0];
        }
        total
    }

    proptest! {
        #[test]
        fn every_value_lands_inside_one_legal_read(
            spans in prop::collection::vec(span(), 1..80),
            max_gap in 0u16..10,
        ) {
            let p = plan(&spans, max_gap);
            prop_assert_eq!(p.slots.len(), spans.len());
            for r in &p.reads {
                prop_assert!(r.count >= 1 && r.count <= r.function.max_per_read());
                prop_assert!(r.end() <= 65536);
            }
            for (s, slot) in spans.iter().zip(&p.slots) {
                let r = p.reads[slot.read];
                prop_assert_eq!(r.function, s.0);
                prop_assert_eq!(u32::from(r.address) + slot.offset as u32, u32::from(s.1));
                prop_assert!(u32::from(s.1) + u32::from(s.2) <= r.end());
            }
            // Reads of one function never overlap.
            for (i, a) in p.reads.iter().enumerate() {
                for b in &p.reads[i + 1..] {
                    prop_assert!(a.function != b.function || a.end() <= u32::from(b.address) || b.end() <= u32::from(a.address));
                }
            }
            // Nothing read that no value needs, beyond the allowed gaps:
            // every address of a read is within max_gap of a value.
            for (ri, r) in p.reads.iter().enumerate() {
                let mine: Vec<&Span> = spans.iter().zip(&p.slots).filter(|(_, s)| s.read == ri).map(|(s, _)| s).collect();
                prop_assert!(!mine.is_empty());
                prop_assert_eq!(mine.iter().map(|s| s.1).min(), Some(r.address));
                prop_assert_eq!(mine.iter().map(|s| u32::from(s.1) + u32::from(s.2)).max(), Some(r.end()));
            }
            // As few reads as possible.
            prop_assert_eq!(p.reads.len(), fewest(&spans, max_gap));
        }
    }
}
