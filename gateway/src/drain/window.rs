//! What a drain holds in memory and what it sends next: pure, no I/O, no
//! clock.
//!
//! The window is the head of a durable queue (plus, for alarms, the items
//! the pipeline announced before their commit). Invariant: every key below
//! [`Window::next`] is known: in the window, or already delivered. An
//! announced item is taken only when its key is exactly `next`; otherwise
//! (the drain is behind, or an announcement was lost) it is left to be
//! read from the store after its commit. So the window is always a
//! contiguous, ordered view of the queue, whichever way items came in.
//!
//! Scheduling:
//!
//! * points ([`Policy::Batches`]): one delivery at a time, of consecutive
//!   committed items from the front, up to a number of points;
//! * alarms ([`Policy::Alarms`]): each item is one delivery, up to
//!   `window` in flight at once; items of one chain (site, device, rule)
//!   go in key order, at most `per_chain` of a chain in flight (1 for
//!   HTTP, where concurrent requests may arrive in any order; many for
//!   MQTT, whose one connection keeps order). Among the chains that may
//!   send, the one with the most urgent waiting item goes first (red
//!   before blue after a backlog), then the oldest. An item not yet
//!   committed may go only if it is early (the fast lane); its chain waits
//!   behind it otherwise.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::Item;

/// How a queue is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Time series: one write at a time, of up to `max_points` points.
    Batches {
        /// Most points per write.
        max_points: usize,
    },
    /// Alarm events: one per delivery.
    Alarms {
        /// Most deliveries in flight.
        window: usize,
        /// Most deliveries of one chain in flight.
        per_chain: usize,
    },
}

/// Where an item is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    Delivered,
    Rejected(String),
}

#[derive(Debug)]
struct Slot {
    item: Arc<Item>,
    state: State,
}

/// The alarms of one (site, device, rule) in the window.
#[derive(Debug, Default)]
struct Chain {
    /// Waiting items, in key order.
    waiting: VecDeque<u64>,
    /// Waiting items per level (blue … red), for the chain's urgency.
    levels: [u32; 4],
    in_flight: usize,
    /// Its entry in the candidates, if any.
    queued: Option<(Reverse<u8>, u64)>,
}

impl Chain {
    fn urgency(&self) -> u8 {
        self.levels
            .iter()
            .rposition(|n| *n > 0)
            .map_or(0, |i| i as u8)
    }
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The far end has it.
    Delivered,
    /// Try again later.
    Retry,
    /// The far end will never take it: dead-letter it.
    Rejected(String),
}

/// The window.
#[derive(Debug)]
pub struct Window {
    policy: Policy,
    cap: usize,
    slots: BTreeMap<u64, Slot>,
    next: u64,
    in_flight: usize,
    chains: HashMap<u64, Chain>,
    /// Chains that may send now, most urgent first, then oldest key.
    candidates: BTreeSet<(Reverse<u8>, u64, u64)>,
    /// Chains whose next item waits for its commit: its key → chain.
    blocked: BTreeMap<u64, u64>,
    /// Delivered or rejected items not yet committed.
    finished: BTreeSet<u64>,
    /// Points (items' counts) held.
    points: usize,
}

impl Window {
    /// An empty window of at most `cap` items; `next` is where the queue's
    /// unknown keys begin (0 at start: read everything from the store).
    pub fn new(policy: Policy, cap: usize) -> Self {
        Self {
            policy,
            cap: cap.max(1),
            slots: BTreeMap::new(),
            next: 0,
            in_flight: 0,
            chains: HashMap::new(),
            candidates: BTreeSet::new(),
            blocked: BTreeMap::new(),
            finished: BTreeSet::new(),
            points: 0,
        }
    }

    /// Every key below this is known.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Points (items' counts) held.
    pub fn points(&self) -> usize {
        self.points
    }

    /// Deliveries in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Room for more items. Points are held for one write and the next
    /// (the store is the buffer, not memory).
    pub fn has_room(&self) -> bool {
        match self.policy {
            Policy::Batches { max_points } => {
                self.slots.len() < self.cap && self.points < 2 * max_points.max(1)
            }
            Policy::Alarms { .. } => self.slots.len() < self.cap,
        }
    }

    /// Whether committed items (below `end`) remain to be read from the
    /// store and there is room for them.
    pub fn wants_load(&self, end: u64) -> bool {
        self.next < end && self.has_room()
    }

    /// An item announced before its commit: taken if it is the next key
    /// and there is room; `false` when it is left to the store.
    pub fn announce(&mut self, item: Arc<Item>, end: u64) -> bool {
        if item.key != self.next || !self.has_room() {
            return false;
        }
        self.next = item.key + 1;
        self.insert(item, end);
        true
    }

    /// Items read from the store after [`Window::next`], in key order;
    /// `end` was read before them (every key below it is committed);
    /// `exhausted`: the store had nothing after the last of them.
    pub fn loaded(&mut self, items: Vec<Arc<Item>>, end: u64, exhausted: bool) {
        for item in items {
            if item.key < self.next {
                continue;
            }
            if !self.has_room() {
                return;
            }
            self.next = item.key + 1;
            self.insert(item, end);
        }
        if exhausted {
            // Everything committed was read: the rest of the keys below
            // `end` were delivered (deleted) or dropped at the cap.
            self.next = self.next.max(end);
        }
    }

    fn insert(&mut self, item: Arc<Item>, end: u64) {
        let key = item.key;
        if let (Policy::Alarms { .. }, Some(meta)) = (self.policy, item.alarm.as_ref()) {
            let chain = self.chains.entry(meta.chain).or_default();
            chain.waiting.push_back(key);
            chain.levels[usize::from(meta.level.min(3))] += 1;
        }
        let chain = item.alarm.as_ref().map(|m| m.chain);
        self.points += item.count as usize;
        self.slots.insert(
            key,
            Slot {
                item,
                state: State::Waiting,
            },
        );
        if let Some(c) = chain {
            self.requeue(c, end);
        }
    }

    /// Recomputes whether chain `c` may send, and how urgently.
    fn requeue(&mut self, c: u64, end: u64) {
        let Policy::Alarms { per_chain, .. } = self.policy else {
            return;
        };
        let Some(chain) = self.chains.get_mut(&c) else {
            return;
        };
        if let Some((u, k)) = chain.queued.take() {
            self.candidates.remove(&(u, k, c));
        }
        let Some(&front) = chain.waiting.front() else {
            if chain.in_flight == 0 {
                self.chains.remove(&c);
            }
            return;
        };
        if chain.in_flight >= per_chain {
            return;
        }
        let early = self.slots.get(&front).is_some_and(|s| s.item.early);
        if front >= end && !early {
            self.blocked.insert(front, c);
            return;
        }
        let entry = (Reverse(chain.urgency()), front);
        chain.queued = Some(entry);
        self.candidates.insert((entry.0, entry.1, c));
    }

    /// The deliveries to start now (at most `room` of them for alarms; one
    /// for points, if none is in flight), marked in flight. `end`: keys
    /// below it are committed.
    pub fn launch(&mut self, end: u64, room: usize) -> Vec<Vec<Arc<Item>>> {
        let mut out = Vec::new();
        match self.policy {
            Policy::Batches { max_points } => {
                if self.in_flight > 0 || room == 0 {
                    return out;
                }
                let mut batch = Vec::new();
                let mut points = 0usize;
                for (key, slot) in self.slots.iter_mut() {
                    if *key >= end || slot.state != State::Waiting {
                        break;
                    }
                    if points + slot.item.count as usize > max_points && !batch.is_empty() {
                        break;
                    }
                    points += slot.item.count as usize;
                    slot.state = State::InFlight;
                    batch.push(slot.item.clone());
                }
                if !batch.is_empty() {
                    self.in_flight = 1;
                    out.push(batch);
                }
            }
            Policy::Alarms { window, .. } => {
                while self.in_flight < window && out.len() < room {
                    let Some((u, key, c)) = self.candidates.pop_first() else {
                        break;
                    };
                    let Some(chain) = self.chains.get_mut(&c) else {
                        continue;
                    };
                    chain.queued = None;
                    if chain.waiting.front() != Some(&key) {
                        let _ = u;
                        self.requeue(c, end);
                        continue;
                    }
                    chain.waiting.pop_front();
                    chain.in_flight += 1;
                    let Some(slot) = self.slots.get_mut(&key) else {
                        continue;
                    };
                    if let Some(m) = &slot.item.alarm {
                        let l = &mut chain.levels[usize::from(m.level.min(3))];
                        *l = l.saturating_sub(1);
                    }
                    slot.state = State::InFlight;
                    self.in_flight += 1;
                    out.push(vec![slot.item.clone()]);
                    self.requeue(c, end);
                }
            }
        }
        out
    }

    /// A delivery of `keys` ended.
    pub fn done(&mut self, keys: &[u64], outcome: &Outcome, end: u64) {
        match self.policy {
            Policy::Batches { .. } => self.in_flight = 0,
            Policy::Alarms { .. } => self.in_flight = self.in_flight.saturating_sub(keys.len()),
        }
        for key in keys {
            let Some(slot) = self.slots.get_mut(key) else {
                continue;
            };
            if slot.state != State::InFlight {
                continue;
            }
            slot.state = match outcome {
                Outcome::Delivered => State::Delivered,
                Outcome::Retry => State::Waiting,
                Outcome::Rejected(why) => State::Rejected(why.clone()),
            };
            if *outcome != Outcome::Retry {
                self.finished.insert(*key);
            }
            let Some(meta) = slot.item.alarm.as_ref() else {
                continue;
            };
            let (c, level) = (meta.chain, meta.level);
            if let Some(chain) = self.chains.get_mut(&c) {
                chain.in_flight = chain.in_flight.saturating_sub(1);
                if *outcome == Outcome::Retry {
                    let at = chain.waiting.partition_point(|k| k < key);
                    chain.waiting.insert(at, *key);
                    chain.levels[usize::from(level.min(3))] += 1;
                }
            }
            self.requeue(c, end);
        }
    }

    /// Takes out what is finished and committed (below `end`): the keys to
    /// delete, and those to dead-letter with the reason. Also lets chains
    /// whose next item was waiting for this commit go.
    pub fn settle(&mut self, end: u64) -> (Vec<u64>, Vec<(u64, String)>) {
        let mut delete = Vec::new();
        let mut dead = Vec::new();
        let done: Vec<u64> = self.finished.range(..end).copied().collect();
        for key in done {
            self.finished.remove(&key);
            if let Some(slot) = self.slots.remove(&key) {
                self.points = self.points.saturating_sub(slot.item.count as usize);
                match slot.state {
                    State::Rejected(why) => dead.push((key, why)),
                    _ => delete.push(key),
                }
            }
        }
        let unblocked: Vec<(u64, u64)> = self.blocked.range(..end).map(|(k, c)| (*k, *c)).collect();
        for (key, c) in unblocked {
            self.blocked.remove(&key);
            self.requeue(c, end);
        }
        (delete, dead)
    }

    /// Lets go of every waiting item, to read them again from the store
    /// (points, after a failed write: while the far end is away the store
    /// may drop the oldest at its cap, and what it dropped must not be
    /// written from memory).
    pub fn forget_waiting(&mut self) {
        let waiting: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.state == State::Waiting)
            .map(|(k, _)| *k)
            .collect();
        if let Some(first) = waiting.first() {
            self.next = self.next.min(*first);
        }
        for k in waiting {
            if let Some(slot) = self.slots.remove(&k) {
                self.points = self.points.saturating_sub(slot.item.count as usize);
            }
        }
    }

    /// Points (items) waiting to be sent that are committed, and the
    /// enqueue time of the oldest of them.
    pub fn waiting(&self, end: u64) -> (usize, Option<u64>) {
        let mut n = 0usize;
        let mut oldest = None;
        for (key, slot) in self.slots.range(..end) {
            let _ = key;
            if slot.state == State::Waiting {
                n += slot.item.count as usize;
                oldest = Some(
                    oldest.map_or(slot.item.enqueued_ms, |o: u64| o.min(slot.item.enqueued_ms)),
                );
            }
        }
        (n, oldest)
    }
}

#[cfg(test)]
mod tests;
