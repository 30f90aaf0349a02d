use proptest::prelude::*;

use super::*;
use crate::drain::AlarmMeta;
use crate::store::Block;

fn alarm(key: u64, chain: u64, level: u8, early: bool) -> Arc<Item> {
    Arc::new(Item {
        key,
        data: bytes::Bytes::from(format!("a{key}")),
        count: 1,
        block: Block::Alarm,
        enqueued_ms: 0,
        alarm: Some(AlarmMeta {
            chain,
            level,
            topic: "alarms/s/d".into(),
        }),
        early,
    })
}

fn points(key: u64, count: u32, at: u64) -> Arc<Item> {
    Arc::new(Item {
        key,
        data: bytes::Bytes::from("p"),
        count,
        block: Block::Readings,
        enqueued_ms: at,
        alarm: None,
        early: false,
    })
}

fn keys(batches: &[Vec<Arc<Item>>]) -> Vec<Vec<u64>> {
    batches
        .iter()
        .map(|b| b.iter().map(|i| i.key).collect())
        .collect()
}

const HTTP: Policy = Policy::Alarms {
    window: 64,
    per_chain: 1,
};

#[test]
fn the_window_stays_contiguous_whichever_way_items_come() {
    let mut w = Window::new(HTTP, 100);
    // Keys 0..3 were committed before we started: read from the store.
    assert!(w.wants_load(3));
    w.loaded(vec![alarm(1, 1, 0, false), alarm(2, 1, 0, false)], 3, true);
    assert_eq!(w.next(), 3, "key 0 was delivered before the restart");
    // An announcement out of turn (one got lost) is left to the store.
    assert!(!w.announce(alarm(4, 2, 0, true), 3));
    assert!(w.announce(alarm(3, 2, 0, true), 3));
    assert!(w.announce(alarm(4, 2, 0, true), 3));
    assert_eq!((w.next(), w.len()), (5, 4));
    // A full window takes nothing and the store keeps the rest.
    let mut small = Window::new(HTTP, 1);
    small.loaded(vec![alarm(0, 1, 0, false), alarm(1, 1, 0, false)], 2, true);
    assert_eq!((small.len(), small.next()), (1, 1));
    assert!(!small.wants_load(2), "full: the store keeps the rest");
}

#[test]
fn one_request_per_chain_in_order_and_red_first() {
    let mut w = Window::new(HTTP, 100);
    // Chain 1: blue raised, then cleared. Chain 2: red raised. Chain 3:
    // blue raised, then escalated to red: the chain is as urgent as red.
    w.loaded(
        vec![
            alarm(0, 1, 0, false),
            alarm(1, 1, 0, false),
            alarm(2, 2, 3, false),
            alarm(3, 3, 0, false),
            alarm(4, 3, 3, false),
        ],
        5,
        true,
    );
    let first = w.launch(5, 10);
    assert_eq!(
        keys(&first),
        [vec![2], vec![3], vec![0]],
        "red chains first, oldest first; one per chain"
    );
    assert!(w.launch(5, 10).is_empty());
    w.done(&[3], &Outcome::Delivered, 5);
    assert_eq!(keys(&w.launch(5, 10)), [vec![4]]);
    // A failure puts the item back at the head of its chain.
    w.done(&[0], &Outcome::Retry, 5);
    assert_eq!(keys(&w.launch(5, 10)), [vec![0]]);
    w.done(&[0], &Outcome::Rejected("422".into()), 5);
    assert_eq!(keys(&w.launch(5, 10)), [vec![1]]);
    w.done(&[1], &Outcome::Delivered, 5);
    let (delete, dead) = w.settle(5);
    assert_eq!(delete, [1, 3]);
    assert_eq!(dead, [(0, "422".to_string())]);
}

#[test]
fn early_items_go_before_their_commit_and_the_rest_wait_for_it() {
    let mut w = Window::new(HTTP, 100);
    assert!(w.announce(alarm(0, 1, 3, true), 0));
    assert!(w.announce(alarm(1, 2, 3, false), 0));
    assert!(w.announce(alarm(2, 2, 3, true), 0));
    // Key 0 is early; key 1 is not (its chain waits, key 2 behind it too).
    assert_eq!(keys(&w.launch(0, 10)), [vec![0]]);
    w.done(&[0], &Outcome::Delivered, 0);
    assert_eq!(
        w.settle(0),
        (vec![], vec![]),
        "delivered, but not deleted before its commit"
    );
    assert!(w.launch(0, 10).is_empty());
    let (delete, _) = w.settle(3);
    assert_eq!(delete, [0]);
    assert_eq!(keys(&w.launch(3, 10)), [vec![1]]);
}

#[test]
fn mqtt_keeps_a_chain_in_flight_together() {
    let mut w = Window::new(
        Policy::Alarms {
            window: 3,
            per_chain: 3,
        },
        100,
    );
    w.loaded((0..5).map(|k| alarm(k, 7, 1, false)).collect(), 5, true);
    assert_eq!(keys(&w.launch(5, 10)), [vec![0], vec![1], vec![2]]);
    w.done(&[0], &Outcome::Delivered, 5);
    assert_eq!(keys(&w.launch(5, 10)), [vec![3]]);
}

#[test]
fn points_go_one_write_at_a_time_in_order() {
    let mut w = Window::new(Policy::Batches { max_points: 10 }, 100);
    w.loaded(
        vec![points(0, 4, 1), points(1, 4, 2), points(2, 4, 3)],
        3,
        true,
    );
    assert_eq!(w.waiting(3), (12, Some(1)));
    assert_eq!(keys(&w.launch(3, 1)), [vec![0, 1]]);
    assert!(w.launch(3, 1).is_empty(), "one write at a time");
    w.done(&[0, 1], &Outcome::Retry, 3);
    assert_eq!(keys(&w.launch(3, 1)), [vec![0, 1]]);
    w.done(&[0, 1], &Outcome::Delivered, 3);
    assert_eq!(w.settle(3).0, [0, 1]);
    assert_eq!(keys(&w.launch(3, 1)), [vec![2]]);
}

proptest! {
    /// Under any mix of arrivals, commits and outcomes, HTTP delivery never
    /// has two of a chain in flight, never sends an item before an earlier
    /// one of its chain has finished, and never sends an uncommitted item
    /// that is not early.
    #[test]
    fn chain_order_holds(ops in proptest::collection::vec((0u8..5, 0u64..4, 0u8..4, any::<bool>()), 1..200)) {
        let mut w = Window::new(HTTP, 50);
        let mut next = 0u64;
        let mut end = 0u64;
        let mut flying: Vec<u64> = Vec::new();
        let mut finished: std::collections::BTreeSet<u64> = Default::default();
        let mut chain_of: BTreeMap<u64, u64> = BTreeMap::new();
        let mut early_of: BTreeMap<u64, bool> = BTreeMap::new();
        for (op, chain, level, flag) in ops {
            match op {
                0 | 1 => {
                    if w.announce(alarm(next, chain, level, flag), end) {
                        chain_of.insert(next, chain);
                        early_of.insert(next, flag);
                        next += 1;
                    }
                }
                2 => {
                    end = next;
                    let _ = w.settle(end);
                }
                3 => {
                    if let Some(k) = flying.pop() {
                        let outcome = if flag { Outcome::Delivered } else { Outcome::Retry };
                        if outcome == Outcome::Delivered {
                            finished.insert(k);
                        }
                        w.done(&[k], &outcome, end);
                    }
                }
                _ => {
                    for b in w.launch(end, 8) {
                        let k = b[0].key;
                        let c = chain_of[&k];
                        prop_assert!(k < end || early_of[&k], "{k} sent uncommitted");
                        for (other, oc) in &chain_of {
                            if *oc == c && *other < k {
                                prop_assert!(finished.contains(other), "{k} before {other}");
                            }
                        }
                        prop_assert!(!flying.iter().any(|f| chain_of[f] == c));
                        flying.push(k);
                    }
                }
            }
        }
    }
}

#[test]
fn points_are_read_again_after_a_failed_write() {
    let mut w = Window::new(Policy::Batches { max_points: 4 }, 100);
    w.loaded(
        vec![points(3, 4, 1), points(4, 4, 2), points(5, 4, 3)],
        6,
        true,
    );
    assert_eq!(w.len(), 2, "two writes' worth in memory");
    assert_eq!(w.next(), 5);
    assert_eq!(keys(&w.launch(6, 1)), [vec![3]]);
    w.done(&[3], &Outcome::Retry, 6);
    w.forget_waiting();
    assert_eq!((w.len(), w.next()), (0, 3));
    // Meanwhile the store dropped key 3 at its cap.
    w.loaded(vec![points(4, 4, 2), points(5, 4, 3)], 6, true);
    assert_eq!(keys(&w.launch(6, 1)), [vec![4]]);
}

#[test]
fn a_read_cut_short_by_its_budget_leaves_the_rest_to_the_next_read() {
    // The store held keys 0..10 but the read stopped after two (its item
    // budget), with the window still having room: the keys after them
    // must be read next, not skipped.
    let mut w = Window::new(Policy::Batches { max_points: 100 }, 100);
    w.loaded(vec![points(0, 4, 1), points(1, 4, 1)], 10, false);
    assert_eq!(w.next(), 2);
    assert!(w.wants_load(10));
    w.loaded(vec![points(2, 4, 1)], 10, true);
    assert_eq!(w.next(), 10, "the rest was delivered or dropped");
}
