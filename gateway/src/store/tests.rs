use super::*;

fn cfg(points_max: u64) -> BufferConfig {
    BufferConfig {
        points_max_bytes: points_max,
        ..BufferConfig::default()
    }
}

fn batch(store: &Store, readings: &[&str], alarms: &[&str]) -> Batch {
    Batch {
        readings: readings.join("\n"),
        readings_count: readings.len() as u32,
        alarms: alarms
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
        first_alarm_key: store.next_alarm_key(),
        devices: vec![("d1".into(), vec![1, 2, 3])],
        ..Batch::default()
    }
}

fn data(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect()
}

#[test]
fn fifo_with_delete_on_ack_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let o = Store::open(dir.path(), &cfg(1 << 20), &[Queue::AlarmsHttp]).unwrap();
        assert!(o.was_clean(), "a new file");
        o.commit(&batch(&o, &["p1", "p2"], &["a1"]), 10).unwrap();
        o.commit(&batch(&o, &["p3"], &[]), 20).unwrap();
        assert_eq!(o.len(Queue::Points), 3, "points, not entries");
        assert_eq!(o.len(Queue::AlarmsHttp), 1);
        assert_eq!(o.len(Queue::AlarmsMqtt), 0);
        let e = o.peek_after(Queue::Points, None, 10, 10).unwrap();
        assert_eq!(data(&e), ["p1\np2", "p3"]);
        assert_eq!(
            (e[0].count, e[0].enqueued_ms, e[0].block),
            (2, 10, Block::Readings)
        );
        o.remove(Queue::Points, &[e[0].key]).unwrap();
        assert_eq!(o.len(Queue::Points), 1);
        // A durable commit after the removal makes it stick.
        o.commit(&Batch::default(), 30).unwrap();
    }
    let o = Store::open(dir.path(), &cfg(1 << 20), &[Queue::AlarmsHttp]).unwrap();
    assert!(!o.was_clean(), "the run above never closed cleanly");
    let e = o.peek_after(Queue::Points, None, 10, 10).unwrap();
    assert_eq!(data(&e), ["p3"]);
    assert_eq!(o.len(Queue::Points), 1);
    assert_eq!(o.bytes(Queue::Points), 2 + ENTRY_OVERHEAD);
    assert_eq!(
        o.devices().unwrap(),
        vec![("d1".to_string(), vec![1, 2, 3])]
    );
    // Keys keep growing after a drain: order is preserved.
    o.commit(&batch(&o, &["p4"], &[]), 40).unwrap();
    let e = o.peek_after(Queue::Points, None, 10, 10).unwrap();
    assert!(e[1].key > e[0].key);
    o.close_cleanly().unwrap();
    drop(o);
    let o = Store::open(dir.path(), &cfg(1 << 20), &[Queue::AlarmsHttp]).unwrap();
    assert!(o.was_clean());
}

#[test]
fn alarm_queues_share_keys_assigned_before_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let queues = [Queue::AlarmsHttp, Queue::AlarmsMqtt];
    let o = Store::open(dir.path(), &cfg(1 << 20), &queues).unwrap();
    let first = o.next_alarm_key();
    assert_eq!(o.end(Queue::AlarmsHttp), first);
    o.commit(&batch(&o, &[], &["a", "b"]), 1).unwrap();
    assert_eq!(o.next_alarm_key(), first + 2);
    assert_eq!(o.end(Queue::AlarmsMqtt), first + 2);
    for q in queues {
        let e = o.peek_after(q, None, 10, 10).unwrap();
        assert_eq!(
            e.iter().map(|e| e.key).collect::<Vec<_>>(),
            [first, first + 1]
        );
        assert_eq!(data(&e), ["a", "b"]);
    }
    // Delivered to one destination, still waiting for the other.
    o.remove(Queue::AlarmsHttp, &[first + 1]).unwrap();
    assert_eq!(o.len(Queue::AlarmsHttp), 1);
    assert_eq!(o.len(Queue::AlarmsMqtt), 2);
    drop(o);
    let o = Store::open(dir.path(), &cfg(1 << 20), &queues).unwrap();
    assert_eq!(o.next_alarm_key(), first + 2, "the counter survives");
}

#[test]
fn drops_readings_before_alarm_points_at_the_cap_and_counts_points() {
    let dir = tempfile::tempdir().unwrap();
    let o = Store::open(dir.path(), &cfg(65_536), &[]).unwrap();
    let big = "x".repeat(10_000);
    let mut b = batch(&o, &[big.as_str(), big.as_str()], &[]);
    b.alarm_points = "alarm,site=s value=1 1".into();
    b.alarm_points_count = 1;
    o.commit(&b, 1).unwrap();
    let mut total_dropped = 0;
    for _ in 0..5 {
        total_dropped += o
            .commit(&batch(&o, &[big.as_str(), big.as_str()], &[]), 1)
            .unwrap()
            .per_queue[0];
    }
    assert!(o.bytes(Queue::Points) <= 65_536);
    assert_eq!(total_dropped, 6, "three blocks of two points");
    assert_eq!(o.dropped_total(Queue::Points).unwrap(), 6);
    assert_eq!(o.len(Queue::Points), 7);
    let e = o.peek_after(Queue::Points, None, 100, 100).unwrap();
    assert_eq!(
        e[0].block,
        Block::AlarmPoints,
        "the alarm point outlived older readings"
    );
    assert_eq!(e.len(), 4);
}

#[test]
fn dead_letters_are_kept_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let o = Store::open(dir.path(), &cfg(1 << 20), &[Queue::AlarmsHttp]).unwrap();
    o.commit(&batch(&o, &[], &["a1", "a2"]), 1).unwrap();
    let first = o.first(Queue::AlarmsHttp).unwrap().unwrap().key;
    o.dead_letter(Queue::AlarmsHttp, &[first], "http 422")
        .unwrap();
    assert_eq!(o.len(Queue::AlarmsHttp), 1);
    assert_eq!(o.first(Queue::AlarmsHttp).unwrap().unwrap().data, "a2");
    assert_eq!(
        o.dead_letters().unwrap(),
        vec![b"alarms_http\thttp 422\ta1".to_vec()]
    );
}

#[test]
fn the_first_points_format_is_migrated_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join("buffer.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(POINTS_V1).unwrap();
            let lines = [
                "gas,site=s a=1 1",
                "gas,site=s a=2 2",
                "alarm,site=s value=1 3",
                "gas,site=s a=3 4",
            ];
            for (i, l) in lines.iter().enumerate() {
                let mut v = 7u64.to_le_bytes().to_vec();
                v.extend_from_slice(l.as_bytes());
                t.insert(i as u64, v.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let o = Store::open(dir.path(), &cfg(1 << 20), &[]).unwrap();
    assert_eq!(o.len(Queue::Points), 4);
    let e = o.peek_after(Queue::Points, None, 100, 100).unwrap();
    assert_eq!(
        data(&e),
        [
            "gas,site=s a=1 1\ngas,site=s a=2 2",
            "alarm,site=s value=1 3",
            "gas,site=s a=3 4"
        ]
    );
    assert_eq!(
        e.iter().map(|e| e.block).collect::<Vec<_>>(),
        [Block::Readings, Block::AlarmPoints, Block::Readings]
    );
    assert_eq!(e[0].enqueued_ms, 7);
    drop(o);
    // Once only.
    let o = Store::open(dir.path(), &cfg(1 << 20), &[]).unwrap();
    assert_eq!(o.len(Queue::Points), 4);
}

#[test]
fn peek_stops_at_the_item_budget_but_returns_at_least_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let o = Store::open(dir.path(), &cfg(1 << 20), &[]).unwrap();
    o.commit(&batch(&o, &["a", "b", "c"], &[]), 1).unwrap();
    o.commit(&batch(&o, &["d"], &[]), 1).unwrap();
    assert_eq!(
        data(&o.peek_after(Queue::Points, None, 2, 10).unwrap()),
        ["a\nb\nc"]
    );
    assert_eq!(
        data(&o.peek_after(Queue::Points, None, 4, 10).unwrap()),
        ["a\nb\nc", "d"]
    );
    assert_eq!(
        data(&o.peek_after(Queue::Points, None, 100, 1).unwrap()),
        ["a\nb\nc"]
    );
}
