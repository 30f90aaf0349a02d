//! The durable store: every point and alarm event is written here, together
//! with the per-device records that make event ids stable, in one
//! transaction per batch, before the batch's MQTT messages are
//! acknowledged. The drains (`drain`) read their queue in order and delete
//! an entry only after the far end acknowledged it.
//!
//! One file (`buffer.redb`), one embedded store: [redb], a copy-on-write
//! B-tree with checksummed, atomic commits (a `kill -9` or power loss leaves
//! the last committed transaction). Queues are tables keyed by `u64`, so
//! order is key order:
//!
//! * `points`: one entry per batch and kind (the batch's readings, its
//!   alarm points), each a block of line protocol with its point count.
//!   One B-tree insert per batch instead of one per frame is most of what
//!   a commit costs at high rates.
//! * `alarms_http`, `alarms_mqtt`: one alarm event (JSON) per entry, under
//!   the same key in both: the alarm's serial number, which the pipeline
//!   assigns when it judges the alarm (so a drain can hold an alarm before
//!   its commit and know where it will be stored).
//!
//! Each queue is bounded in bytes: when a commit would exceed the cap, the
//! oldest entries are dropped in the same transaction (readings before
//! alarm points), counted (persistently and in metrics) and reported to the
//! caller, which raises it as an alarm. See README "Buffering and delivery
//! guarantees" for why redb over a home-made segment log.

pub mod record;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `[buffer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Byte cap of the time-series queue (points and alarm points).
    pub points_max_bytes: u64,
    /// Byte cap of each alarm delivery queue (one per destination).
    pub alarms_max_bytes: u64,
    /// Most frames committed (and then acknowledged) in one transaction.
    pub max_batch: usize,
    /// Longest a frame waits for its batch to be committed, ms (group
    /// commit: many frames per fsync at every rate). Alarms the fast lane
    /// may send do not wait for it; the broker's acknowledgement does.
    pub commit_interval_ms: u64,
    /// Commit at once when no frame arrived for this long, ms (the input
    /// went quiet, e.g. the broker's in-flight window is used up).
    pub commit_idle_ms: u64,
    /// redb page cache, bytes.
    pub cache_bytes: usize,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            points_max_bytes: 1 << 30,
            alarms_max_bytes: 64 << 20,
            max_batch: 2_000,
            commit_interval_ms: 20,
            commit_idle_ms: 5,
            cache_bytes: 32 << 20,
        }
    }
}

impl BufferConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.points_max_bytes < 64 * 1024 {
            return Err(ConfigError::new(
                "buffer.points_max_bytes",
                "must be at least 65536",
            ));
        }
        if self.alarms_max_bytes < 64 * 1024 {
            return Err(ConfigError::new(
                "buffer.alarms_max_bytes",
                "must be at least 65536",
            ));
        }
        if !(1..=MAX_BATCH).contains(&self.max_batch) {
            return Err(ConfigError::new(
                "buffer.max_batch",
                format!("must be between 1 and {MAX_BATCH}"),
            ));
        }
        if !(1..=10_000).contains(&self.commit_interval_ms) {
            return Err(ConfigError::new(
                "buffer.commit_interval_ms",
                "must be between 1 and 10000",
            ));
        }
        if self.commit_idle_ms == 0 || self.commit_idle_ms > self.commit_interval_ms {
            return Err(ConfigError::new(
                "buffer.commit_idle_ms",
                "must be between 1 and buffer.commit_interval_ms",
            ));
        }
        if self.cache_bytes < 1 << 20 {
            return Err(ConfigError::new(
                "buffer.cache_bytes",
                "must be at least 1048576",
            ));
        }
        Ok(())
    }
}

/// Upper bound of `buffer.max_batch`.
pub const MAX_BATCH: usize = 100_000;

/// A durable queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Line-protocol points for the time-series sink.
    Points,
    /// Alarm events for the HTTP forwarder.
    AlarmsHttp,
    /// Alarm events for the MQTT forwarder.
    AlarmsMqtt,
}

impl Queue {
    /// Every queue.
    pub const ALL: [Queue; 3] = [Queue::Points, Queue::AlarmsHttp, Queue::AlarmsMqtt];

    /// The name (metrics label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Points => "points",
            Self::AlarmsHttp => "alarms_http",
            Self::AlarmsMqtt => "alarms_mqtt",
        }
    }

    /// Index into per-queue arrays (`Dropped::per_queue`).
    pub const fn index(self) -> usize {
        match self {
            Self::Points => 0,
            Self::AlarmsHttp => 1,
            Self::AlarmsMqtt => 2,
        }
    }

    /// The table. The points table has its own name since its entries
    /// became blocks (`points` held one line per entry and is migrated).
    const fn table_name(self) -> &'static str {
        match self {
            Self::Points => "points_v2",
            Self::AlarmsHttp => "alarms_http",
            Self::AlarmsMqtt => "alarms_mqtt",
        }
    }

    fn table(self) -> TableDefinition<'static, u64, &'static [u8]> {
        TableDefinition::new(self.table_name())
    }
}

/// What a points entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Readings of devices (dropped first at the cap).
    Readings,
    /// Alarm events as points (measurement `alarm`).
    AlarmPoints,
    /// One alarm event (the alarm queues).
    Alarm,
}

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
const DEAD_LETTER: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letter");
/// The first points table: one line of line protocol per entry.
const POINTS_V1: TableDefinition<u64, &[u8]> = TableDefinition::new("points");
/// Bytes counted per entry beyond its payload (key, header, B-tree).
const ENTRY_OVERHEAD: u64 = 24;
/// Header of a points entry: enqueued ms (u64), points (u32), block kind.
const POINTS_HEADER: usize = 13;
/// Header of an alarm entry: enqueued ms (u64).
const ALARM_HEADER: usize = 8;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the buffer {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: redb::DatabaseError,
    },
    /// A transaction failed.
    #[error("buffer: {0}")]
    Storage(String),
}

fn storage<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Storage(e.to_string())
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in its queue.
    pub key: u64,
    /// Real (wall) time it was written, Unix ms.
    pub enqueued_ms: u64,
    /// Points in it (1 for an alarm event).
    pub count: u32,
    /// What it holds.
    pub block: Block,
    /// The payload: line protocol (lines separated by `\n`) or one alarm
    /// event's JSON.
    pub data: Bytes,
}

/// A read of a queue's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// The entries, in key order.
    pub entries: Vec<Entry>,
    /// No entry of the queue lies above the last one returned (when it was
    /// read).
    pub exhausted: bool,
}

/// What one batch writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// The readings' points, line protocol, one per line.
    pub readings: String,
    /// Points in `readings`.
    pub readings_count: u32,
    /// The alarm events as points, line protocol.
    pub alarm_points: String,
    /// Points in `alarm_points`.
    pub alarm_points_count: u32,
    /// Alarm events (JSON), stored in every alarm queue in use under the
    /// keys `first_alarm_key`, `first_alarm_key + 1`, ...
    pub alarms: Vec<Bytes>,
    /// The key of `alarms[0]` ([`Store::next_alarm_key`] before the first
    /// commit; each commit continues where the previous one ended).
    pub first_alarm_key: u64,
    /// Device records to upsert.
    pub devices: Vec<(String, Vec<u8>)>,
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.readings_count == 0
            && self.alarm_points_count == 0
            && self.alarms.is_empty()
            && self.devices.is_empty()
    }
}

/// What a commit had to drop to stay within the caps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Items (points, alarm events) dropped per queue ([`Queue::index`]).
    pub per_queue: [u64; 3],
}

#[derive(Debug, Default)]
struct Stats {
    /// Points (or alarm events) waiting.
    items: AtomicU64,
    bytes: AtomicU64,
    /// Every key below this was committed.
    end: AtomicU64,
}

/// The durable store.
#[derive(Debug)]
pub struct Store {
    /// `None` after a failed write until it is reopened: redb refuses
    /// every operation after an I/O error (a full disk) until the database
    /// is closed and opened again, which rolls it back to the last durable
    /// commit.
    db: std::sync::RwLock<Option<Database>>,
    path: PathBuf,
    /// Held across every write transaction and the update of `stats` that
    /// follows it, so the in-memory counters never race (redb serialises
    /// the transactions, not our bookkeeping after them).
    write: std::sync::Mutex<()>,
    cfg: BufferConfig,
    alarm_queues: Vec<Queue>,
    stats: [Stats; 3],
    /// Whether the previous run ended with [`Store::close_cleanly`].
    was_clean: bool,
    /// Delivered entries to delete with the next commit (per queue).
    removals: std::sync::Mutex<[Vec<u64>; 3]>,
}

fn meta_key(q: Queue, what: &str) -> String {
    format!("{}.{what}", q.table_name())
}

/// The counter of dropped items keeps its first name (`points.dropped`).
fn dropped_key(q: Queue) -> String {
    format!("{}.dropped", q.as_str())
}

fn points_value(now_ms: u64, count: u32, block: Block, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(POINTS_HEADER + data.len());
    v.extend_from_slice(&now_ms.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    v.push(u8::from(block == Block::AlarmPoints));
    v.extend_from_slice(data);
    v
}

/// Parses a stored value of queue `q`.
fn entry(q: Queue, key: u64, v: &[u8]) -> Entry {
    let u64_at = |b: &[u8]| {
        let mut t = [0u8; 8];
        let n = b.len().min(8);
        t[..n].copy_from_slice(&b[..n]);
        u64::from_le_bytes(t)
    };
    if q == Queue::Points {
        let count = v
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        let block = if v.get(12) == Some(&1) {
            Block::AlarmPoints
        } else {
            Block::Readings
        };
        Entry {
            key,
            enqueued_ms: u64_at(v),
            count,
            block,
            data: Bytes::copy_from_slice(v.get(POINTS_HEADER..).unwrap_or_default()),
        }
    } else {
        Entry {
            key,
            enqueued_ms: u64_at(v),
            count: 1,
            block: Block::Alarm,
            data: Bytes::copy_from_slice(v.get(ALARM_HEADER..).unwrap_or_default()),
        }
    }
}

/// Bytes an entry of `q` counts against the cap, from its stored value.
fn charged(q: Queue, stored_len: usize) -> u64 {
    let header = if q == Queue::Points {
        POINTS_HEADER
    } else {
        ALARM_HEADER
    };
    (stored_len.saturating_sub(header)) as u64 + ENTRY_OVERHEAD
}

impl Store {
    /// Opens (or creates) `dir/buffer.redb`. `alarm_queues` are the alarm
    /// queues that receive every alarm (one per configured destination).
    pub fn open(
        dir: &Path,
        cfg: &BufferConfig,
        alarm_queues: &[Queue],
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("buffer.redb");
        let mut this = Self {
            db: std::sync::RwLock::new(None),
            path,
            write: std::sync::Mutex::new(()),
            cfg: cfg.clone(),
            alarm_queues: alarm_queues.to_vec(),
            stats: Default::default(),
            was_clean: true,
            removals: Default::default(),
        };
        let (db, was_clean) = this.load()?;
        this.was_clean = was_clean;
        *this.db.write().map_err(storage)? = Some(db);
        Ok(this)
    }

    /// Opens the file, creates every table, migrates the first points
    /// format, loads the counters and marks the run as not yet ended
    /// cleanly. Returns whether the previous run ended cleanly.
    fn load(&self) -> Result<(Database, bool), StoreError> {
        let db = Database::builder()
            .set_cache_size(self.cfg.cache_bytes)
            .create(&self.path)
            .map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })?;
        let txn = db.begin_write().map_err(storage)?;
        let was_clean;
        {
            let mut meta = txn.open_table(META).map_err(storage)?;
            txn.open_table(DEVICES).map_err(storage)?;
            txn.open_table(DEAD_LETTER).map_err(storage)?;
            migrate_points_v1(&txn, &mut meta)?;
            let get = |meta: &redb::Table<&str, u64>, k: &str| -> Result<Option<u64>, StoreError> {
                Ok(meta.get(k).map_err(storage)?.map(|v| v.value()))
            };
            was_clean = get(&meta, "clean")?.is_none_or(|v| v == 1);
            meta.insert("clean", 0).map_err(storage)?;
            // The alarm queues share their keys; older files had a counter
            // per queue.
            let mut alarm_next = get(&meta, "alarms.next")?.unwrap_or(0);
            for q in Queue::ALL {
                let t = txn.open_table(q.table()).map_err(storage)?;
                let s = &self.stats[q.index()];
                let last = t.last().map_err(storage)?.map(|(k, _)| k.value() + 1);
                let next = get(&meta, &meta_key(q, "next"))?
                    .unwrap_or(0)
                    .max(last.unwrap_or(0));
                let bytes = get(&meta, &meta_key(q, "bytes"))?.unwrap_or(0);
                let items = if q == Queue::Points {
                    get(&meta, &meta_key(q, "items"))?.unwrap_or(0)
                } else {
                    t.len().map_err(storage)?
                };
                if q == Queue::Points {
                    s.end.store(next, Ordering::Relaxed);
                } else {
                    alarm_next = alarm_next.max(next);
                }
                s.items.store(items, Ordering::Relaxed);
                s.bytes.store(bytes, Ordering::Relaxed);
            }
            for q in [Queue::AlarmsHttp, Queue::AlarmsMqtt] {
                self.stats[q.index()]
                    .end
                    .store(alarm_next, Ordering::Relaxed);
            }
            meta.insert("alarms.next", alarm_next).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok((db, was_clean))
    }

    /// Runs `f` on the open database. After a failure the database is
    /// closed, and the next call opens it again (while the disk is still
    /// full that fails too, and the caller retries).
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.db.read().map_err(storage)?.is_none() {
            let mut guard = self.db.write().map_err(storage)?;
            if guard.is_none() {
                *guard = Some(self.load()?.0);
                tracing::warn!(path = %self.path.display(), "durable buffer reopened after a failed write");
            }
        }
        let result = match self.db.read().map_err(storage)?.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Storage("closed after a failed write".into())),
        };
        if result.is_err() {
            // Every reader has let go once we hold the lock.
            *self.db.write().map_err(storage)? = None;
        }
        result
    }

    /// Whether the previous run ended with [`Store::close_cleanly`] (or
    /// this is the first). After a crash, alarms the fast lane sent may
    /// belong to frames that were never committed.
    pub fn was_clean(&self) -> bool {
        self.was_clean
    }

    /// Records, durably, that this run ended cleanly: everything judged was
    /// committed, nothing was sent that the store does not hold.
    pub fn close_cleanly(&self) -> Result<(), StoreError> {
        let _w = self.write.lock().map_err(storage)?;
        self.with_db(|db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate).map_err(storage)?;
            txn.open_table(META)
                .map_err(storage)?
                .insert("clean", 1)
                .map_err(storage)?;
            txn.commit().map_err(storage)
        })
    }

    /// The alarm queues in use.
    pub fn alarm_queues(&self) -> &[Queue] {
        &self.alarm_queues
    }

    /// The key the next committed alarm event gets.
    pub fn next_alarm_key(&self) -> u64 {
        self.stats[Queue::AlarmsHttp.index()]
            .end
            .load(Ordering::Acquire)
    }

    /// Every key of `q` below this was committed.
    pub fn end(&self, q: Queue) -> u64 {
        self.stats[q.index()].end.load(Ordering::Acquire)
    }

    fn cap(&self, q: Queue) -> u64 {
        match q {
            Queue::Points => self.cfg.points_max_bytes,
            _ => self.cfg.alarms_max_bytes,
        }
    }

    /// Writes a batch durably (fsync) in one transaction. Returns what had
    /// to be dropped to respect the byte caps.
    pub fn commit(&self, batch: &Batch, now_ms: u64) -> Result<Dropped, StoreError> {
        let _w = self.write.lock().map_err(storage)?;
        let removals = std::mem::take(&mut *self.removals.lock().map_err(storage)?);
        let result = self.with_db(|db| {
            let mut dropped = Dropped::default();
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate).map_err(storage)?;
            let mut new_stats = [(0u64, 0u64, 0u64); 3];
            for q in Queue::ALL {
                let s = &self.stats[q.index()];
                new_stats[q.index()] = (
                    s.items.load(Ordering::Relaxed),
                    s.bytes.load(Ordering::Relaxed),
                    s.end.load(Ordering::Relaxed),
                );
            }
            // Deletions of delivered entries ride along (see `remove_later`).
            for q in Queue::ALL {
                let keys = &removals[q.index()];
                if keys.is_empty() {
                    continue;
                }
                let mut table = txn.open_table(q.table()).map_err(storage)?;
                let (_, freed, items) = remove_keys(&mut table, q, keys)?;
                let st = &mut new_stats[q.index()];
                st.0 = st.0.saturating_sub(items);
                st.1 = st.1.saturating_sub(freed);
            }
            {
                let mut meta = txn.open_table(META).map_err(storage)?;
                for q in Queue::ALL {
                    if !removals[q.index()].is_empty() {
                        let (items, bytes, _) = new_stats[q.index()];
                        meta.insert(meta_key(q, "bytes").as_str(), bytes)
                            .map_err(storage)?;
                        if q == Queue::Points {
                            meta.insert(meta_key(q, "items").as_str(), items)
                                .map_err(storage)?;
                        }
                    }
                }
                // Points: at most two entries per batch.
                let blocks = [
                    (Block::Readings, &batch.readings, batch.readings_count),
                    (
                        Block::AlarmPoints,
                        &batch.alarm_points,
                        batch.alarm_points_count,
                    ),
                ];
                if blocks.iter().any(|(_, _, n)| *n > 0) {
                    let q = Queue::Points;
                    let (mut items, mut bytes, mut next) = new_stats[q.index()];
                    let mut table = txn.open_table(q.table()).map_err(storage)?;
                    for (block, text, n) in blocks {
                        if n == 0 {
                            continue;
                        }
                        let v = points_value(now_ms, n, block, text.as_bytes());
                        table.insert(next, v.as_slice()).map_err(storage)?;
                        next += 1;
                        items += u64::from(n);
                        bytes += charged(q, v.len());
                    }
                    if bytes > self.cap(q) {
                        let (n, freed, points) = drop_points(&mut table, bytes - self.cap(q))?;
                        let _ = n;
                        bytes = bytes.saturating_sub(freed);
                        items = items.saturating_sub(points);
                        dropped.per_queue[q.index()] = points;
                    }
                    meta.insert(meta_key(q, "next").as_str(), next)
                        .map_err(storage)?;
                    meta.insert(meta_key(q, "bytes").as_str(), bytes)
                        .map_err(storage)?;
                    meta.insert(meta_key(q, "items").as_str(), items)
                        .map_err(storage)?;
                    new_stats[q.index()] = (items, bytes, next);
                }
                if !batch.alarms.is_empty() {
                    let next_alarm = batch.first_alarm_key + batch.alarms.len() as u64;
                    for q in &self.alarm_queues {
                        let q = *q;
                        let (mut items, mut bytes, _) = new_stats[q.index()];
                        let mut table = txn.open_table(q.table()).map_err(storage)?;
                        let mut buf = Vec::new();
                        for (i, json) in batch.alarms.iter().enumerate() {
                            buf.clear();
                            buf.extend_from_slice(&now_ms.to_le_bytes());
                            buf.extend_from_slice(json);
                            table
                                .insert(batch.first_alarm_key + i as u64, buf.as_slice())
                                .map_err(storage)?;
                            items += 1;
                            bytes += charged(q, buf.len());
                        }
                        // Oldest first, down to the cap.
                        while bytes > self.cap(q) {
                            let Some((_, v)) = table.pop_first().map_err(storage)? else {
                                break;
                            };
                            bytes = bytes.saturating_sub(charged(q, v.value().len()));
                            items = items.saturating_sub(1);
                            dropped.per_queue[q.index()] += 1;
                        }
                        meta.insert(meta_key(q, "bytes").as_str(), bytes)
                            .map_err(storage)?;
                        new_stats[q.index()] = (items, bytes, next_alarm);
                    }
                    meta.insert("alarms.next", next_alarm).map_err(storage)?;
                    // The key space moves on even for a queue not in use.
                    for q in [Queue::AlarmsHttp, Queue::AlarmsMqtt] {
                        new_stats[q.index()].2 = next_alarm;
                    }
                }
                for q in Queue::ALL {
                    let n = dropped.per_queue[q.index()];
                    if n > 0 {
                        let k = dropped_key(q);
                        let total = meta
                            .get(k.as_str())
                            .map_err(storage)?
                            .map_or(0, |v| v.value())
                            + n;
                        meta.insert(k.as_str(), total).map_err(storage)?;
                    }
                }
                if !batch.devices.is_empty() {
                    let mut devices = txn.open_table(DEVICES).map_err(storage)?;
                    for (id, rec) in &batch.devices {
                        devices
                            .insert(id.as_str(), rec.as_slice())
                            .map_err(storage)?;
                    }
                }
            }
            txn.commit().map_err(storage)?;
            Ok((dropped, new_stats))
        });
        let (dropped, new_stats) = match result {
            Ok(r) => r,
            Err(e) => {
                // Rolled back: the deletions are still to do.
                if let Ok(mut r) = self.removals.lock() {
                    for (q, keys) in removals.into_iter().enumerate() {
                        r[q].extend(keys);
                    }
                }
                return Err(e);
            }
        };
        for q in Queue::ALL {
            let (items, bytes, end) = new_stats[q.index()];
            let s = &self.stats[q.index()];
            s.items.store(items, Ordering::Relaxed);
            s.bytes.store(bytes, Ordering::Relaxed);
            s.end.store(end, Ordering::Release);
        }
        Ok(dropped)
    }

    /// Entries of `q` with a key above `after`, in order, until either
    /// `max_items` items (points or alarm events; at least one entry) or
    /// `max_entries` entries.
    pub fn peek_after(
        &self,
        q: Queue,
        after: Option<u64>,
        max_items: usize,
        max_entries: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        Ok(self.peek(q, after, max_items, max_entries)?.entries)
    }

    /// As [`Store::peek_after`], and whether the queue ended there (no
    /// entry above the last one returned).
    pub fn peek(
        &self,
        q: Queue,
        after: Option<u64>,
        max_items: usize,
        max_entries: usize,
    ) -> Result<Peek, StoreError> {
        if after == Some(u64::MAX) {
            return Ok(Peek {
                entries: Vec::new(),
                exhausted: true,
            });
        }
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(q.table()).map_err(storage)?;
            let mut entries = Vec::new();
            let mut items = 0usize;
            let from = after.map_or(0, |k| k + 1);
            for item in table.range(from..).map_err(storage)? {
                if entries.len() >= max_entries || (items >= max_items && !entries.is_empty()) {
                    return Ok(Peek {
                        entries,
                        exhausted: false,
                    });
                }
                let (k, v) = item.map_err(storage)?;
                let e = entry(q, k.value(), v.value());
                if items + e.count as usize > max_items && !entries.is_empty() {
                    return Ok(Peek {
                        entries,
                        exhausted: false,
                    });
                }
                items += e.count as usize;
                entries.push(e);
            }
            Ok(Peek {
                entries,
                exhausted: true,
            })
        })
    }

    /// The oldest entry of `q`, if any.
    pub fn first(&self, q: Queue) -> Result<Option<Entry>, StoreError> {
        Ok(self.peek_after(q, None, 1, 1)?.into_iter().next())
    }

    /// Deletes `keys` of `q` (the far end acknowledged them) with the next
    /// commit: one write transaction fewer per delivery. Until then they
    /// count as waiting. [`Store::flush_removals`] deletes them at once
    /// (for a gateway with nothing to commit).
    pub fn remove_later(&self, q: Queue, keys: Vec<u64>) {
        if let Ok(mut r) = self.removals.lock() {
            r[q.index()].extend(keys);
        }
    }

    /// Whether deletions wait for a commit.
    pub fn has_removals(&self) -> bool {
        self.removals
            .lock()
            .is_ok_and(|r| r.iter().any(|k| !k.is_empty()))
    }

    /// Deletes what [`Store::remove_later`] queued, in a transaction of its
    /// own. Not fsynced on its own: if it is lost in a crash the entries are
    /// delivered again, which the receivers tolerate (idempotent event ids,
    /// same points).
    pub fn flush_removals(&self) -> Result<u64, StoreError> {
        let _w = self.write.lock().map_err(storage)?;
        let removals = std::mem::take(&mut *self.removals.lock().map_err(storage)?);
        if removals.iter().all(Vec::is_empty) {
            return Ok(0);
        }
        let result = self.with_db(|db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::None).map_err(storage)?;
            let mut done = [(0u64, 0u64, 0u64); 3];
            for q in Queue::ALL {
                let keys = &removals[q.index()];
                if keys.is_empty() {
                    continue;
                }
                let mut table = txn.open_table(q.table()).map_err(storage)?;
                done[q.index()] = remove_keys(&mut table, q, keys)?;
                drop(table);
                let s = &self.stats[q.index()];
                let mut meta = txn.open_table(META).map_err(storage)?;
                let (_, freed, items) = done[q.index()];
                meta.insert(
                    meta_key(q, "bytes").as_str(),
                    s.bytes.load(Ordering::Relaxed).saturating_sub(freed),
                )
                .map_err(storage)?;
                if q == Queue::Points {
                    meta.insert(
                        meta_key(q, "items").as_str(),
                        s.items.load(Ordering::Relaxed).saturating_sub(items),
                    )
                    .map_err(storage)?;
                }
            }
            txn.commit().map_err(storage)?;
            Ok(done)
        });
        let done = match result {
            Ok(d) => d,
            Err(e) => {
                if let Ok(mut r) = self.removals.lock() {
                    for (q, keys) in removals.into_iter().enumerate() {
                        r[q].extend(keys);
                    }
                }
                return Err(e);
            }
        };
        let mut total = 0;
        for q in Queue::ALL {
            let (removed, freed, items) = done[q.index()];
            let s = &self.stats[q.index()];
            s.items.store(
                s.items.load(Ordering::Relaxed).saturating_sub(items),
                Ordering::Relaxed,
            );
            s.bytes.store(
                s.bytes.load(Ordering::Relaxed).saturating_sub(freed),
                Ordering::Relaxed,
            );
            total += removed;
        }
        Ok(total)
    }

    /// Deletes `keys` of `q` now (see [`Store::remove_later`]).
    pub fn remove(&self, q: Queue, keys: &[u64]) -> Result<u64, StoreError> {
        self.remove_later(q, keys.to_vec());
        self.flush_removals()
    }

    /// Moves the entries `keys` of `q` to the dead-letter table, with the
    /// reason, durably (a rejected alarm must not come back, nor vanish).
    pub fn dead_letter(&self, q: Queue, keys: &[u64], reason: &str) -> Result<(), StoreError> {
        let _w = self.write.lock().map_err(storage)?;
        let (freed, items) = self.with_db(|db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate).map_err(storage)?;
            let (mut freed, mut items) = (0u64, 0u64);
            {
                let mut table = txn.open_table(q.table()).map_err(storage)?;
                let mut dead = txn.open_table(DEAD_LETTER).map_err(storage)?;
                let mut meta = txn.open_table(META).map_err(storage)?;
                let mut next = meta
                    .get("dead_letter.next")
                    .map_err(storage)?
                    .map_or(0, |v| v.value());
                for key in keys {
                    let Some(v) = table.remove(*key).map_err(storage)? else {
                        continue;
                    };
                    let e = entry(q, *key, v.value());
                    freed += charged(q, v.value().len());
                    items += u64::from(e.count);
                    let mut rec = Vec::with_capacity(e.data.len() + reason.len() + 32);
                    rec.extend_from_slice(format!("{}\t{reason}\t", q.as_str()).as_bytes());
                    rec.extend_from_slice(&e.data);
                    dead.insert(next, rec.as_slice()).map_err(storage)?;
                    next += 1;
                }
                meta.insert("dead_letter.next", next).map_err(storage)?;
                let s = &self.stats[q.index()];
                meta.insert(
                    meta_key(q, "bytes").as_str(),
                    s.bytes.load(Ordering::Relaxed).saturating_sub(freed),
                )
                .map_err(storage)?;
                if q == Queue::Points {
                    meta.insert(
                        meta_key(q, "items").as_str(),
                        s.items.load(Ordering::Relaxed).saturating_sub(items),
                    )
                    .map_err(storage)?;
                }
            }
            txn.commit().map_err(storage)?;
            Ok((freed, items))
        })?;
        let s = &self.stats[q.index()];
        s.bytes.store(
            s.bytes.load(Ordering::Relaxed).saturating_sub(freed),
            Ordering::Relaxed,
        );
        s.items.store(
            s.items.load(Ordering::Relaxed).saturating_sub(items),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// The dead-lettered entries: `queue \t reason \t payload`.
    pub fn dead_letters(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let t = txn.open_table(DEAD_LETTER).map_err(storage)?;
            t.iter()
                .map_err(storage)?
                .map(|r| r.map(|(_, v)| v.value().to_vec()).map_err(storage))
                .collect()
        })
    }

    /// Every device record, for start-up.
    pub fn devices(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let t = txn.open_table(DEVICES).map_err(storage)?;
            t.iter()
                .map_err(storage)?
                .map(|r| {
                    r.map(|(k, v)| (k.value().to_string(), v.value().to_vec()))
                        .map_err(storage)
                })
                .collect()
        })
    }

    /// Items waiting in `q`: points for the points queue, alarm events for
    /// an alarm queue.
    pub fn len(&self, q: Queue) -> u64 {
        self.stats[q.index()].items.load(Ordering::Relaxed)
    }

    /// Bytes waiting in `q` (payload plus a fixed overhead per entry).
    pub fn bytes(&self, q: Queue) -> u64 {
        self.stats[q.index()].bytes.load(Ordering::Relaxed)
    }

    /// Items dropped at the cap since the buffer was created.
    pub fn dropped_total(&self, q: Queue) -> Result<u64, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let meta = txn.open_table(META).map_err(storage)?;
            Ok(meta
                .get(dropped_key(q).as_str())
                .map_err(storage)?
                .map_or(0, |v| v.value()))
        })
    }
}

/// Deletes `keys` from `table`; (entries, bytes, items) removed.
fn remove_keys(
    table: &mut redb::Table<u64, &[u8]>,
    q: Queue,
    keys: &[u64],
) -> Result<(u64, u64, u64), StoreError> {
    let (mut removed, mut freed, mut items) = (0u64, 0u64, 0u64);
    for k in keys {
        if let Some(v) = table.remove(*k).map_err(storage)? {
            let v = v.value();
            freed += charged(q, v.len());
            items += u64::from(entry(q, *k, v).count);
            removed += 1;
        }
    }
    Ok((removed, freed, items))
}

/// Drops the oldest points entries until `excess` bytes are freed:
/// readings first, alarm points only when no readings are left. Returns
/// (entries, bytes, points) dropped.
fn drop_points(
    table: &mut redb::Table<u64, &[u8]>,
    excess: u64,
) -> Result<(u64, u64, u64), StoreError> {
    let (mut entries, mut freed, mut points) = (0u64, 0u64, 0u64);
    for pass in [Block::Readings, Block::AlarmPoints] {
        if freed >= excess {
            break;
        }
        let mut victims = Vec::new();
        let mut planned = freed;
        for item in table.iter().map_err(storage)? {
            if planned >= excess {
                break;
            }
            let (k, v) = item.map_err(storage)?;
            let e = entry(Queue::Points, k.value(), v.value());
            if e.block == pass {
                planned += charged(Queue::Points, v.value().len());
                victims.push(k.value());
            }
        }
        for k in victims {
            if let Some(v) = table.remove(k).map_err(storage)? {
                let v = v.value();
                freed += charged(Queue::Points, v.len());
                points += u64::from(entry(Queue::Points, k, v).count);
                entries += 1;
            }
        }
    }
    Ok((entries, freed, points))
}

/// Moves the first points format (one line per entry, `ts ++ line`) into
/// blocks of the current one, in order, in the opening transaction.
fn migrate_points_v1(
    txn: &redb::WriteTransaction,
    meta: &mut redb::Table<&str, u64>,
) -> Result<(), StoreError> {
    let old = match txn.open_table(POINTS_V1) {
        Ok(t) => t,
        Err(e) => return Err(storage(e)),
    };
    if old.len().map_err(storage)? == 0 {
        drop(old);
        let _ = txn.delete_table(POINTS_V1);
        return Ok(());
    }
    let mut blocks: Vec<(u64, Block, String, u32)> = Vec::new();
    for item in old.iter().map_err(storage)? {
        let (_, v) = item.map_err(storage)?;
        let v = v.value();
        let ts = u64::from_le_bytes(v.get(..8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]));
        let line = String::from_utf8_lossy(v.get(8..).unwrap_or_default());
        let block = if line.starts_with("alarm,") {
            Block::AlarmPoints
        } else {
            Block::Readings
        };
        match blocks.last_mut() {
            Some((_, b, text, n)) if *b == block && *n < 5_000 => {
                text.push('\n');
                text.push_str(&line);
                *n += 1;
            }
            _ => blocks.push((ts, block, line.into_owned(), 1)),
        }
    }
    drop(old);
    let q = Queue::Points;
    let mut table = txn.open_table(q.table()).map_err(storage)?;
    let mut next = meta
        .get(meta_key(q, "next").as_str())
        .map_err(storage)?
        .map_or(0, |v| v.value());
    let (mut items, mut bytes) = (
        meta.get(meta_key(q, "items").as_str())
            .map_err(storage)?
            .map_or(0, |v| v.value()),
        meta.get(meta_key(q, "bytes").as_str())
            .map_err(storage)?
            .map_or(0, |v| v.value()),
    );
    let migrated = blocks.len();
    for (ts, block, text, n) in blocks {
        let v = points_value(ts, n, block, text.as_bytes());
        table.insert(next, v.as_slice()).map_err(storage)?;
        next += 1;
        items += u64::from(n);
        bytes += charged(q, v.len());
    }
    drop(table);
    meta.insert(meta_key(q, "next").as_str(), next)
        .map_err(storage)?;
    meta.insert(meta_key(q, "items").as_str(), items)
        .map_err(storage)?;
    meta.insert(meta_key(q, "bytes").as_str(), bytes)
        .map_err(storage)?;
    txn.delete_table(POINTS_V1).map_err(storage)?;
    tracing::info!(
        blocks = migrated,
        points = items,
        "durable buffer: points moved to the block format"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
