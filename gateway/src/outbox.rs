//! The durable disk buffer: every point and alarm event is written here,
//! together with the per-device state that makes event ids stable, in one
//! transaction per ingest batch, before the batch's MQTT messages are
//! acknowledged. The sink and the forwarders read their queue in order and
//! delete an entry only after the far end acknowledged it.
//!
//! One file (`buffer.redb`), one embedded store: [redb], a copy-on-write
//! B-tree with checksummed, atomic commits (a `kill -9` or power loss leaves
//! the last committed transaction). Queues are tables keyed by a per-queue
//! `u64` counter, so order is key order. Each queue is bounded in bytes:
//! when a commit would exceed the cap, the oldest entries are dropped in the
//! same transaction, counted (persistently and in metrics) and reported to
//! the caller, which raises it as an alarm. See README "Buffering and
//! delivery guarantees" for why redb over a home-made segment log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[buffer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Byte cap of the time-series queue (points and alarm points).
    pub points_max_bytes: u64,
    /// Byte cap of each alarm delivery queue (one per destination).
    pub alarms_max_bytes: u64,
    /// Most frames committed (and then acknowledged) in one transaction.
    /// Batches form by themselves under load (group commit); this bounds
    /// them.
    pub max_batch: usize,
    /// redb page cache, bytes.
    pub cache_bytes: usize,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            points_max_bytes: 1 << 30,
            alarms_max_bytes: 64 << 20,
            max_batch: 2_000,
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
        if !(1..=100_000).contains(&self.max_batch) {
            return Err(ConfigError::new(
                "buffer.max_batch",
                "must be between 1 and 100000",
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

    /// The name (table name and metrics label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Points => "points",
            Self::AlarmsHttp => "alarms_http",
            Self::AlarmsMqtt => "alarms_mqtt",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Points => 0,
            Self::AlarmsHttp => 1,
            Self::AlarmsMqtt => 2,
        }
    }

    fn table(self) -> TableDefinition<'static, u64, &'static [u8]> {
        TableDefinition::new(self.as_str())
    }
}

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const DEVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("devices");
const DEAD_LETTER: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letter");
/// Bytes counted per entry beyond its payload (key, time stamp, B-tree).
const ENTRY_OVERHEAD: u64 = 24;

/// Errors of the buffer.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
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

fn storage<E: std::fmt::Display>(e: E) -> OutboxError {
    OutboxError::Storage(e.to_string())
}

/// One buffered entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in its queue.
    pub key: u64,
    /// Real (wall) time it was written, Unix ms.
    pub enqueued_ms: u64,
    /// The payload.
    pub data: Vec<u8>,
}

/// What one ingest batch writes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Line-protocol points.
    pub points: Vec<Vec<u8>>,
    /// Alarm events (JSON), for every alarm queue that is enabled.
    pub alarms: Vec<Vec<u8>>,
    /// Device records to upsert.
    pub devices: Vec<(String, Vec<u8>)>,
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.alarms.is_empty() && self.devices.is_empty()
    }
}

/// What a commit had to drop to stay within the caps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Entries dropped per queue (indexed like [`Queue::ALL`]).
    pub per_queue: [u64; 3],
}

#[derive(Debug, Default)]
struct Stats {
    len: AtomicU64,
    bytes: AtomicU64,
}

/// The durable buffer.
#[derive(Debug)]
pub struct Outbox {
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
}

fn counter_key(q: Queue, what: &str) -> String {
    format!("{}.{what}", q.as_str())
}

impl Outbox {
    /// Opens (or creates) `dir/buffer.redb`. `alarm_queues` are the alarm
    /// queues that receive every alarm (one per configured destination).
    pub fn open(
        dir: &Path,
        cfg: &BufferConfig,
        alarm_queues: &[Queue],
    ) -> Result<Self, OutboxError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| OutboxError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("buffer.redb");
        let this = Self {
            db: std::sync::RwLock::new(None),
            path,
            write: std::sync::Mutex::new(()),
            cfg: cfg.clone(),
            alarm_queues: alarm_queues.to_vec(),
            stats: Default::default(),
        };
        let db = this.load()?;
        *this.db.write().map_err(storage)? = Some(db);
        Ok(this)
    }

    /// Opens the file, creates every table and loads the counters.
    fn load(&self) -> Result<Database, OutboxError> {
        let db = Database::builder()
            .set_cache_size(self.cfg.cache_bytes)
            .create(&self.path)
            .map_err(|source| OutboxError::Open {
                path: self.path.clone(),
                source,
            })?;
        let txn = db.begin_write().map_err(storage)?;
        {
            let meta = txn.open_table(META).map_err(storage)?;
            txn.open_table(DEVICES).map_err(storage)?;
            txn.open_table(DEAD_LETTER).map_err(storage)?;
            for q in Queue::ALL {
                let t = txn.open_table(q.table()).map_err(storage)?;
                let s = &self.stats[q.index()];
                s.len.store(t.len().map_err(storage)?, Ordering::Relaxed);
                let bytes = meta
                    .get(counter_key(q, "bytes").as_str())
                    .map_err(storage)?
                    .map_or(0, |v| v.value());
                s.bytes.store(bytes, Ordering::Relaxed);
            }
        }
        txn.commit().map_err(storage)?;
        Ok(db)
    }

    /// Runs `f` on the open database. After a failure the database is
    /// closed, and the next call opens it again (while the disk is still
    /// full that fails too, and the caller retries).
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, OutboxError>,
    ) -> Result<T, OutboxError> {
        if self.db.read().map_err(storage)?.is_none() {
            let mut guard = self.db.write().map_err(storage)?;
            if guard.is_none() {
                *guard = Some(self.load()?);
                tracing::warn!(path = %self.path.display(), "durable buffer reopened after a failed write");
            }
        }
        let result = match self.db.read().map_err(storage)?.as_ref() {
            Some(db) => f(db),
            None => Err(OutboxError::Storage("closed after a failed write".into())),
        };
        if result.is_err() {
            // Every reader has let go once we hold the lock.
            *self.db.write().map_err(storage)? = None;
        }
        result
    }

    /// The alarm queues in use.
    pub fn alarm_queues(&self) -> &[Queue] {
        &self.alarm_queues
    }

    fn cap(&self, q: Queue) -> u64 {
        match q {
            Queue::Points => self.cfg.points_max_bytes,
            _ => self.cfg.alarms_max_bytes,
        }
    }

    /// Writes a batch durably (fsync) in one transaction. Returns what had
    /// to be dropped to respect the byte caps.
    pub fn commit(&self, batch: &Batch, now_ms: u64) -> Result<Dropped, OutboxError> {
        let _w = self.write.lock().map_err(storage)?;
        let (dropped, new_stats) = self.with_db(|db| {
            let mut dropped = Dropped::default();
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate).map_err(storage)?;
            let mut new_stats = [(0u64, 0u64); 3];
            {
                let mut meta = txn.open_table(META).map_err(storage)?;
                let mut targets: Vec<(Queue, &[Vec<u8>])> = vec![(Queue::Points, &batch.points)];
                for q in &self.alarm_queues {
                    targets.push((*q, &batch.alarms));
                }
                for (q, items) in targets {
                    let s = &self.stats[q.index()];
                    let (mut len, mut bytes) = (
                        s.len.load(Ordering::Relaxed),
                        s.bytes.load(Ordering::Relaxed),
                    );
                    if items.is_empty() {
                        new_stats[q.index()] = (len, bytes);
                        continue;
                    }
                    let mut table = txn.open_table(q.table()).map_err(storage)?;
                    let next_key = counter_key(q, "next");
                    let mut next = meta
                        .get(next_key.as_str())
                        .map_err(storage)?
                        .map_or(0, |v| v.value());
                    let mut buf = Vec::new();
                    for item in items {
                        buf.clear();
                        buf.extend_from_slice(&now_ms.to_le_bytes());
                        buf.extend_from_slice(item);
                        table.insert(next, buf.as_slice()).map_err(storage)?;
                        next += 1;
                        len += 1;
                        bytes += item.len() as u64 + ENTRY_OVERHEAD;
                    }
                    // Oldest first, down to the cap.
                    let mut n_dropped = 0;
                    while bytes > self.cap(q) {
                        let Some((_, v)) = table.pop_first().map_err(storage)? else {
                            break;
                        };
                        bytes = bytes.saturating_sub(
                            (v.value().len() as u64).saturating_sub(8) + ENTRY_OVERHEAD,
                        );
                        len = len.saturating_sub(1);
                        n_dropped += 1;
                    }
                    if n_dropped > 0 {
                        let k = counter_key(q, "dropped");
                        let total = meta
                            .get(k.as_str())
                            .map_err(storage)?
                            .map_or(0, |v| v.value())
                            + n_dropped;
                        meta.insert(k.as_str(), total).map_err(storage)?;
                        dropped.per_queue[q.index()] = n_dropped;
                    }
                    meta.insert(next_key.as_str(), next).map_err(storage)?;
                    meta.insert(counter_key(q, "bytes").as_str(), bytes)
                        .map_err(storage)?;
                    new_stats[q.index()] = (len, bytes);
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
        })?;
        for q in Queue::ALL {
            if q == Queue::Points || self.alarm_queues.contains(&q) {
                let (len, bytes) = new_stats[q.index()];
                self.stats[q.index()].len.store(len, Ordering::Relaxed);
                self.stats[q.index()].bytes.store(bytes, Ordering::Relaxed);
            }
        }
        Ok(dropped)
    }

    /// The oldest `max` entries of `q`, in order, without removing them.
    pub fn peek(&self, q: Queue, max: usize) -> Result<Vec<Entry>, OutboxError> {
        self.peek_after(q, None, max)
    }

    /// The oldest `max` entries of `q` with a key above `after` (entries
    /// already delivered but not yet deleted are skipped).
    pub fn peek_after(
        &self,
        q: Queue,
        after: Option<u64>,
        max: usize,
    ) -> Result<Vec<Entry>, OutboxError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(q.table()).map_err(storage)?;
            let mut out = Vec::with_capacity(max.min(4096));
            let from = after.map_or(0, |k| k.saturating_add(1));
            if after == Some(u64::MAX) {
                return Ok(out);
            }
            for item in table.range(from..).map_err(storage)?.take(max) {
                let (k, v) = item.map_err(storage)?;
                let v = v.value();
                let (ts, data) = v.split_at(8.min(v.len()));
                let mut t = [0u8; 8];
                t[..ts.len()].copy_from_slice(ts);
                out.push(Entry {
                    key: k.value(),
                    enqueued_ms: u64::from_le_bytes(t),
                    data: data.to_vec(),
                });
            }
            Ok(out)
        })
    }

    /// Real time the oldest entry of `q` was written, if any.
    pub fn oldest_ms(&self, q: Queue) -> Result<Option<u64>, OutboxError> {
        Ok(self.peek(q, 1)?.first().map(|e| e.enqueued_ms))
    }

    /// Real time the oldest entry above `after` was written, if any.
    pub fn oldest_after_ms(
        &self,
        q: Queue,
        after: Option<u64>,
    ) -> Result<Option<u64>, OutboxError> {
        Ok(self.peek_after(q, after, 1)?.first().map(|e| e.enqueued_ms))
    }

    /// Deletes every entry of `q` with a key up to and including `through`
    /// (the far end acknowledged them). Not fsynced on its own: if it is
    /// lost in a crash the entries are delivered again, which the
    /// receivers tolerate (idempotent event ids, same points).
    pub fn remove_through(&self, q: Queue, through: u64) -> Result<u64, OutboxError> {
        let _w = self.write.lock().map_err(storage)?;
        let (removed, freed) = self.with_db(|db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::None).map_err(storage)?;
            let mut removed = 0u64;
            let mut freed = 0u64;
            {
                let mut table = txn.open_table(q.table()).map_err(storage)?;
                let mut meta = txn.open_table(META).map_err(storage)?;
                loop {
                    let first = table.first().map_err(storage)?.map(|(k, _)| k.value());
                    match first {
                        Some(k) if k <= through => {
                            if let Some(v) = table.remove(k).map_err(storage)? {
                                freed +=
                                    (v.value().len() as u64).saturating_sub(8) + ENTRY_OVERHEAD;
                            }
                            removed += 1;
                        }
                        _ => break,
                    }
                }
                let s = &self.stats[q.index()];
                let bytes = s.bytes.load(Ordering::Relaxed).saturating_sub(freed);
                meta.insert(counter_key(q, "bytes").as_str(), bytes)
                    .map_err(storage)?;
            }
            txn.commit().map_err(storage)?;
            Ok((removed, freed))
        })?;
        let s = &self.stats[q.index()];
        s.len.fetch_sub(
            removed.min(s.len.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        let b = s.bytes.load(Ordering::Relaxed);
        s.bytes.store(b.saturating_sub(freed), Ordering::Relaxed);
        Ok(removed)
    }

    /// Moves entry `key` of `q` to the dead-letter table, with the reason,
    /// durably (a rejected alarm must not come back, nor vanish).
    pub fn dead_letter(&self, q: Queue, key: u64, reason: &str) -> Result<(), OutboxError> {
        let _w = self.write.lock().map_err(storage)?;
        self.with_db(|db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate).map_err(storage)?;
            {
                let mut table = txn.open_table(q.table()).map_err(storage)?;
                let mut dead = txn.open_table(DEAD_LETTER).map_err(storage)?;
                let mut meta = txn.open_table(META).map_err(storage)?;
                if let Some(v) = table.remove(key).map_err(storage)? {
                    let v = v.value().to_vec();
                    let next = meta
                        .get("dead_letter.next")
                        .map_err(storage)?
                        .map_or(0, |v| v.value());
                    let mut rec = Vec::with_capacity(v.len() + reason.len() + 32);
                    rec.extend_from_slice(format!("{}\t{reason}\t", q.as_str()).as_bytes());
                    rec.extend_from_slice(v.get(8..).unwrap_or_default());
                    dead.insert(next, rec.as_slice()).map_err(storage)?;
                    meta.insert("dead_letter.next", next + 1).map_err(storage)?;
                    let s = &self.stats[q.index()];
                    let freed = (v.len() as u64).saturating_sub(8) + ENTRY_OVERHEAD;
                    let bytes = s.bytes.load(Ordering::Relaxed).saturating_sub(freed);
                    meta.insert(counter_key(q, "bytes").as_str(), bytes)
                        .map_err(storage)?;
                    s.bytes.store(bytes, Ordering::Relaxed);
                    s.len
                        .fetch_sub(1.min(s.len.load(Ordering::Relaxed)), Ordering::Relaxed);
                }
            }
            txn.commit().map_err(storage)?;
            Ok(())
        })
    }

    /// The dead-lettered entries: `queue \t reason \t payload`.
    pub fn dead_letters(&self) -> Result<Vec<Vec<u8>>, OutboxError> {
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
    pub fn devices(&self) -> Result<Vec<(String, Vec<u8>)>, OutboxError> {
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

    /// Entries waiting in `q`.
    pub fn len(&self, q: Queue) -> u64 {
        self.stats[q.index()].len.load(Ordering::Relaxed)
    }

    /// Bytes waiting in `q` (payload plus a fixed overhead per entry).
    pub fn bytes(&self, q: Queue) -> u64 {
        self.stats[q.index()].bytes.load(Ordering::Relaxed)
    }

    /// Entries dropped at the cap since the buffer was created.
    pub fn dropped_total(&self, q: Queue) -> Result<u64, OutboxError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let meta = txn.open_table(META).map_err(storage)?;
            Ok(meta
                .get(counter_key(q, "dropped").as_str())
                .map_err(storage)?
                .map_or(0, |v| v.value()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(points_max: u64) -> BufferConfig {
        BufferConfig {
            points_max_bytes: points_max,
            ..BufferConfig::default()
        }
    }

    fn batch(points: &[&str], alarms: &[&str]) -> Batch {
        Batch {
            points: points.iter().map(|s| s.as_bytes().to_vec()).collect(),
            alarms: alarms.iter().map(|s| s.as_bytes().to_vec()).collect(),
            devices: vec![("d1".into(), vec![1, 2, 3])],
        }
    }

    #[test]
    fn fifo_with_delete_on_ack_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let o = Outbox::open(dir.path(), &cfg(1 << 20), &[Queue::AlarmsHttp]).unwrap();
            o.commit(&batch(&["p1", "p2"], &["a1"]), 10).unwrap();
            o.commit(&batch(&["p3"], &[]), 20).unwrap();
            assert_eq!(o.len(Queue::Points), 3);
            assert_eq!(o.len(Queue::AlarmsHttp), 1);
            assert_eq!(o.len(Queue::AlarmsMqtt), 0);
            let e = o.peek(Queue::Points, 2).unwrap();
            assert_eq!(
                e.iter().map(|e| e.data.as_slice()).collect::<Vec<_>>(),
                [b"p1", b"p2"]
            );
            assert_eq!(e[0].enqueued_ms, 10);
            o.remove_through(Queue::Points, e[1].key).unwrap();
            assert_eq!(o.len(Queue::Points), 1);
            // A durable commit after the removal makes it stick.
            o.commit(&Batch::default(), 30).unwrap();
        }
        let o = Outbox::open(dir.path(), &cfg(1 << 20), &[Queue::AlarmsHttp]).unwrap();
        let e = o.peek(Queue::Points, 10).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].data, b"p3");
        assert_eq!(o.len(Queue::Points), 1);
        assert_eq!(o.bytes(Queue::Points), 2 + ENTRY_OVERHEAD);
        assert_eq!(
            o.devices().unwrap(),
            vec![("d1".to_string(), vec![1, 2, 3])]
        );
        // Keys keep growing after a drain: order is preserved.
        o.commit(&batch(&["p4"], &[]), 40).unwrap();
        let e = o.peek(Queue::Points, 10).unwrap();
        assert!(e[1].key > e[0].key);
    }

    #[test]
    fn drops_oldest_first_at_the_cap_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path(), &cfg(65_536), &[]).unwrap();
        let big = "x".repeat(10_000);
        let mut total_dropped = 0;
        for _ in 0..10 {
            total_dropped += o
                .commit(&batch(&[big.as_str()], &["ignored"]), 1)
                .unwrap()
                .per_queue[0];
        }
        assert!(o.bytes(Queue::Points) <= 65_536);
        assert_eq!(o.len(Queue::Points), 6);
        assert_eq!(total_dropped, 4);
        assert_eq!(o.dropped_total(Queue::Points).unwrap(), 4);
        // The survivors are the newest.
        let keys: Vec<u64> = o
            .peek(Queue::Points, 10)
            .unwrap()
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, (4..10).collect::<Vec<_>>());
    }

    #[test]
    fn dead_letters_are_kept_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path(), &cfg(1 << 20), &[Queue::AlarmsHttp]).unwrap();
        o.commit(&batch(&[], &["a1", "a2"]), 1).unwrap();
        let first = o.peek(Queue::AlarmsHttp, 1).unwrap()[0].key;
        o.dead_letter(Queue::AlarmsHttp, first, "http 422").unwrap();
        assert_eq!(o.len(Queue::AlarmsHttp), 1);
        assert_eq!(o.peek(Queue::AlarmsHttp, 5).unwrap()[0].data, b"a2");
        assert_eq!(
            o.dead_letters().unwrap(),
            vec![b"alarms_http\thttp 422\ta1".to_vec()]
        );
    }
}

/// Deletes delivered entries in the background, one transaction at a
/// time, coalescing: the sender keeps sending while the previous deletion
/// commits. Entries delivered but not yet deleted are skipped by reading
/// after [`Acker::cursor`]; if the process dies before they are deleted
/// they are delivered again (at least once).
#[derive(Debug)]
pub struct Acker {
    q: Queue,
    outbox: std::sync::Arc<Outbox>,
    task: Option<tokio::task::JoinHandle<()>>,
    cursor: Option<u64>,
    removing_through: Option<u64>,
    unremoved: std::sync::Arc<AtomicU64>,
    pending: u64,
}

impl Acker {
    /// An acker for `q`.
    pub fn new(q: Queue, outbox: std::sync::Arc<Outbox>) -> Self {
        Self {
            q,
            outbox,
            task: None,
            cursor: None,
            removing_through: None,
            unremoved: Default::default(),
            pending: 0,
        }
    }

    /// The last delivered key.
    pub fn cursor(&self) -> Option<u64> {
        self.cursor
    }

    /// Entries delivered and not yet deleted.
    pub fn unremoved(&self) -> u64 {
        self.unremoved.load(Ordering::Relaxed) + self.pending
    }

    /// Entries of the queue not yet delivered.
    pub fn waiting(&self) -> u64 {
        self.outbox.len(self.q).saturating_sub(self.unremoved())
    }

    /// Records that everything up to `through` (`n` entries) was delivered,
    /// and starts deleting if no deletion is running.
    pub fn delivered(&mut self, through: u64, n: u64) {
        self.cursor = Some(through);
        self.pending += n;
        self.kick();
    }

    /// Starts a deletion of what is pending, if none is running.
    pub fn kick(&mut self) {
        if self.task.as_ref().is_some_and(|t| !t.is_finished()) || self.pending == 0 {
            return;
        }
        let Some(through) = self.cursor else { return };
        if self.removing_through == Some(through) {
            return;
        }
        self.removing_through = Some(through);
        let n = std::mem::take(&mut self.pending);
        self.unremoved.fetch_add(n, Ordering::Relaxed);
        let (ob, q, un) = (self.outbox.clone(), self.q, self.unremoved.clone());
        self.task = Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = ob.remove_through(q, through) {
                tracing::error!(queue = q.as_str(), error = %e, "cannot delete delivered entries (they will be delivered again)");
            }
            un.fetch_sub(n, Ordering::Relaxed);
        }));
    }

    /// Waits for the running deletion and deletes the rest.
    pub async fn finish(&mut self) {
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.kick();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}
