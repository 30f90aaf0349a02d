//! The call ladder (叫应): who is called or told now, and when to look
//! again. Pure: the policy's groups resolved to people at `now`, the
//! ladder's position, what was given so far and what happened in, notices
//! and the next position out. No I/O, time passed in.
//!
//! Positions: step 0 is the first group, called at once and in parallel
//! (with the 抄送 group informed at the same moment); step `k` ≥ 1 is the
//! chain's `k`-th group, called when nobody acknowledged within the SLA of
//! step `k − 1`, or at once when every call of step `k − 1` failed. Past
//! the chain the ladder is exhausted: the `no_response` group is told and
//! nobody else is called. A person is called once per warning (a later
//! step that names them again skips them); an acknowledgement, the
//! clearing at the source and the disposal stop the ladder and tell
//! everyone reached so far (闭环). A rise to a new highest level restarts
//! the ladder at the new level's first group: those not yet called are
//! called, those already reached are told it got worse, the deadline is
//! the sooner of the two.

use std::collections::HashSet;

use anquan_protocol::Level;

/// Why a person hears about a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// 叫应: answer, please.
    Call,
    /// 抄送: for information.
    Inform,
    /// It reached a new highest level.
    Escalated,
    /// Nobody answered the whole chain.
    NoResponse,
    /// Someone acknowledged (闭环).
    Acked,
    /// Cleared at the source (闭环).
    Cleared,
    /// Confirmed real (disposal started) or false (闭环).
    Disposal,
    /// Resolved after disposal (闭环).
    Resolved,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Self; 8] = [
        Self::Call,
        Self::Inform,
        Self::Escalated,
        Self::NoResponse,
        Self::Acked,
        Self::Cleared,
        Self::Disposal,
        Self::Resolved,
    ];

    /// The stored name (`warning_calls.purpose`, `deliveries.purpose`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Inform => "inform",
            Self::Escalated => "escalated",
            Self::NoResponse => "no_response",
            Self::Acked => "acked",
            Self::Cleared => "cleared",
            Self::Disposal => "disposal",
            Self::Resolved => "resolved",
        }
    }

    /// From [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the notice asks for an answer (it carries the ack link and
    /// the reply code).
    pub fn asks_answer(self) -> bool {
        matches!(self, Self::Call | Self::Escalated | Self::NoResponse)
    }

    /// Whether it is a 闭环 notice.
    pub fn is_closure(self) -> bool {
        matches!(
            self,
            Self::Acked | Self::Cleared | Self::Disposal | Self::Resolved
        )
    }

    /// Whether it goes by the policy's `call_via` channels (else
    /// `inform_via`).
    pub fn urgent(self) -> bool {
        self.asks_answer()
    }
}

/// A notice given (a `warning_calls` row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    /// The person.
    pub person: String,
    /// Why.
    pub purpose: Purpose,
    /// The ladder step (for `Escalated`, the level's rank).
    pub step: i64,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// Everything given about one warning so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Oldest first.
    pub given: Vec<Given>,
}

impl History {
    fn has(&self, person: &str, purpose: Purpose, step: Option<i64>) -> bool {
        self.given
            .iter()
            .any(|g| g.person == person && g.purpose == purpose && step.is_none_or(|s| g.step == s))
    }

    /// Whether `person` was ever called (or told it got worse, or that
    /// nobody answered: all asked for an answer).
    pub fn was_asked(&self, person: &str) -> bool {
        self.given
            .iter()
            .any(|g| g.person == person && g.purpose.asks_answer())
    }

    fn reached_by(&self, pred: impl Fn(Purpose) -> bool) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in &self.given {
            if pred(g.purpose) && !out.contains(&g.person) {
                out.push(g.person.clone());
            }
        }
        out
    }

    /// The people called on `step`.
    pub fn called_on(&self, step: i64) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in &self.given {
            if g.purpose == Purpose::Call && g.step == step && !out.contains(&g.person) {
                out.push(g.person.clone());
            }
        }
        out
    }

    /// Records notices (the planner's own output, for the next plan).
    pub fn record(&mut self, notices: &[Notice], at_ms: i64) {
        for n in notices {
            self.given.push(Given {
                person: n.person.clone(),
                purpose: n.purpose,
                step: n.step,
                at_ms,
            });
        }
    }
}

/// The people of each group of a level's policy, resolved now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    /// Called at once.
    pub call: Vec<String>,
    /// Informed at once.
    pub inform: Vec<String>,
    /// The chain's steps.
    pub chain: Vec<Vec<String>>,
    /// Told when the chain is exhausted.
    pub no_response: Vec<String>,
    /// Told of the closure besides those below.
    pub closure: Vec<String>,
    /// Closure also to everyone asked for an answer so far.
    pub closure_called: bool,
    /// Closure also to everyone informed so far.
    pub closure_informed: bool,
}

/// The ladder's position (`warnings.ladder_step`, `warnings.ack_due_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ladder {
    /// −1 before the first calls, then the step reached.
    pub step: i64,
    /// When to look again: the acknowledgement deadline of the current
    /// step; none when stopped or exhausted.
    pub due_ms: Option<i64>,
}

impl Ladder {
    /// Not started.
    pub const NEW: Self = Self {
        step: -1,
        due_ms: None,
    };
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A new warning.
    Start,
    /// The deadline passed (acted on only if it did).
    Due,
    /// Every call of this step failed: move on without waiting.
    StepFailed(i64),
    /// A new highest level (the groups given are that level's).
    LevelUp(Level),
    /// The alarm came back after clearing, before anyone answered.
    Resume,
    /// Stop and tell (闭环); `except` (the acknowledger) is not told.
    Closure {
        /// Acked, Cleared, Disposal or Resolved.
        purpose: Purpose,
        /// Not told (already knows).
        except: Option<String>,
    },
}

/// A notice to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The person.
    pub person: String,
    /// Why.
    pub purpose: Purpose,
    /// The step (for `Escalated`, the level's rank).
    pub step: i64,
}

/// Something worth an audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A step had nobody (left) to call; the ladder moved past it.
    NobodyAt(i64),
    /// Every call of a step failed; the ladder moved on at once.
    AllFailed(i64),
    /// The deadline of a step passed without an answer.
    Missed(i64),
    /// The chain is exhausted.
    Exhausted,
}

/// The planner's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The new position.
    pub ladder: Ladder,
    /// Notices to give now, in order.
    pub notices: Vec<Notice>,
    /// For the audit.
    pub notes: Vec<Note>,
}

fn level_rank(l: Level) -> i64 {
    match l {
        Level::Blue => 0,
        Level::Yellow => 1,
        Level::Orange => 2,
        Level::Red => 3,
    }
}

struct Planner<'a> {
    groups: &'a Groups,
    history: &'a History,
    sla_ms: i64,
    now: i64,
    notices: Vec<Notice>,
    notes: Vec<Note>,
}

impl Planner<'_> {
    fn asked(&self, p: &str) -> bool {
        self.history.was_asked(p)
            || self
                .notices
                .iter()
                .any(|n| n.person == p && n.purpose.asks_answer())
    }

    fn informed(&self, p: &str) -> bool {
        self.history.has(p, Purpose::Inform, None)
            || self
                .notices
                .iter()
                .any(|n| n.person == p && n.purpose == Purpose::Inform)
    }

    fn push(&mut self, person: &str, purpose: Purpose, step: i64) {
        if !self
            .notices
            .iter()
            .any(|n| n.person == person && n.purpose == purpose && n.step == step)
        {
            self.notices.push(Notice {
                person: person.to_string(),
                purpose,
                step,
            });
        }
    }

    /// Calls those of `people` not asked yet at `step`; how many.
    fn call(&mut self, people: &[String], step: i64) -> usize {
        let mut n = 0;
        for p in people {
            if !self.asked(p) {
                self.push(p, Purpose::Call, step);
                n += 1;
            }
        }
        n
    }

    fn inform(&mut self, people: &[String]) {
        for p in people {
            if !self.asked(p) && !self.informed(p) {
                self.push(p, Purpose::Inform, 0);
            }
        }
    }

    /// Moves past `from` to the first step with someone to call, or to the
    /// end of the chain.
    fn advance(&mut self, from: i64) -> Ladder {
        let mut k = from.max(0) + 1;
        loop {
            let Some(group) = usize::try_from(k - 1)
                .ok()
                .and_then(|i| self.groups.chain.get(i))
            else {
                for p in &self.groups.no_response {
                    if !self.history.has(p, Purpose::NoResponse, Some(k)) {
                        self.push(p, Purpose::NoResponse, k);
                    }
                }
                self.notes.push(Note::Exhausted);
                return Ladder {
                    step: k,
                    due_ms: None,
                };
            };
            if self.call(group, k) > 0 {
                return Ladder {
                    step: k,
                    due_ms: Some(self.now + self.sla_ms),
                };
            }
            self.notes.push(Note::NobodyAt(k));
            k += 1;
        }
    }

    fn start(&mut self) -> Ladder {
        let called = self.call(&self.groups.call.clone(), 0);
        self.inform(&self.groups.inform.clone());
        if called > 0 {
            Ladder {
                step: 0,
                due_ms: Some(self.now + self.sla_ms),
            }
        } else {
            self.notes.push(Note::NobodyAt(0));
            self.advance(0)
        }
    }

    fn closure(&mut self, purpose: Purpose, except: Option<&str>) {
        let mut to: Vec<String> = Vec::new();
        if self.groups.closure_called {
            to.extend(self.history.reached_by(Purpose::asks_answer));
        }
        if self.groups.closure_informed {
            to.extend(self.history.reached_by(|p| p == Purpose::Inform));
        }
        to.extend(self.groups.closure.iter().cloned());
        for p in to {
            if Some(p.as_str()) != except && !self.history.has(&p, purpose, Some(0)) {
                self.push(&p, purpose, 0);
            }
        }
    }
}

/// Plans the ladder for `trigger` at `now`. `groups` are the people of the
/// warning's current level's policy (for `LevelUp`, the new level's),
/// `sla_ms` that level's acknowledgement SLA.
pub fn plan(
    ladder: Ladder,
    groups: &Groups,
    history: &History,
    trigger: &Trigger,
    sla_ms: i64,
    now: i64,
) -> Plan {
    let mut p = Planner {
        groups,
        history,
        sla_ms,
        now,
        notices: Vec::new(),
        notes: Vec::new(),
    };
    let next = match trigger {
        Trigger::Start => p.start(),
        Trigger::Due => match ladder.due_ms {
            Some(d) if d <= now => {
                p.notes.push(Note::Missed(ladder.step));
                p.advance(ladder.step)
            }
            _ => ladder,
        },
        Trigger::StepFailed(s) if *s == ladder.step && ladder.due_ms.is_some() => {
            p.notes.push(Note::AllFailed(*s));
            p.advance(ladder.step)
        }
        Trigger::StepFailed(_) => ladder,
        Trigger::LevelUp(level) => {
            let rank = level_rank(*level);
            let reached: Vec<String> = history
                .given
                .iter()
                .filter(|g| {
                    matches!(
                        g.purpose,
                        Purpose::Call | Purpose::Inform | Purpose::NoResponse | Purpose::Escalated
                    )
                })
                .map(|g| g.person.clone())
                .collect::<Vec<_>>();
            // The new level's first group is called (those only informed
            // so far too); everyone else reached is told it got worse.
            let called = p.call(&groups.call.clone(), 0);
            let mut seen = HashSet::new();
            for person in reached {
                let just_called = p
                    .notices
                    .iter()
                    .any(|n| n.person == person && n.purpose == Purpose::Call);
                if seen.insert(person.clone())
                    && !just_called
                    && !history.has(&person, Purpose::Escalated, Some(rank))
                {
                    p.push(&person, Purpose::Escalated, rank);
                }
            }
            p.inform(&groups.inform.clone());
            let due = now + sla_ms;
            if called == 0 && groups.call.iter().all(|x| !history.was_asked(x)) {
                // Nobody of the new level's first group: climb its chain.
                p.notes.push(Note::NobodyAt(0));
                let next = p.advance(0);
                Ladder {
                    step: next.step,
                    due_ms: match (ladder.due_ms, next.due_ms) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => b.or(a),
                    },
                }
            } else {
                Ladder {
                    step: 0,
                    due_ms: Some(ladder.due_ms.map_or(due, |d| d.min(due))),
                }
            }
        }
        Trigger::Resume => Ladder {
            step: ladder.step,
            due_ms: Some(now + sla_ms),
        },
        Trigger::Closure { purpose, except } => {
            p.closure(*purpose, except.as_deref());
            Ladder {
                step: ladder.step,
                due_ms: None,
            }
        }
    };
    Plan {
        ladder: next,
        notices: p.notices,
        notes: p.notes,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    const SLA: i64 = 300_000;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn red() -> Groups {
        Groups {
            call: v(&["safety", "principal", "grid"]),
            inform: v(&["county"]),
            chain: vec![v(&["county", "county-leader"]), v(&["city", "task-force"])],
            no_response: v(&["city-leader"]),
            closure: vec![],
            closure_called: true,
            closure_informed: true,
        }
    }

    fn who(p: &Plan, purpose: Purpose) -> Vec<String> {
        p.notices
            .iter()
            .filter(|n| n.purpose == purpose)
            .map(|n| n.person.clone())
            .collect()
    }

    /// Runs a plan and records its notices in the history.
    fn run(l: Ladder, g: &Groups, h: &mut History, t: Trigger, now: i64) -> Plan {
        let p = plan(l, g, h, &t, SLA, now);
        h.record(&p.notices, now);
        p
    }

    #[test]
    fn red_calls_three_at_once_and_informs_the_county() {
        let mut h = History::default();
        let p = run(Ladder::NEW, &red(), &mut h, Trigger::Start, 0);
        assert_eq!(who(&p, Purpose::Call), ["safety", "principal", "grid"]);
        assert_eq!(who(&p, Purpose::Inform), ["county"]);
        assert_eq!(
            p.ladder,
            Ladder {
                step: 0,
                due_ms: Some(SLA)
            }
        );
    }

    #[test]
    fn no_answer_climbs_the_chain_then_exhausts() {
        let g = red();
        let mut h = History::default();
        let p0 = run(Ladder::NEW, &g, &mut h, Trigger::Start, 0);
        // Not yet due: nothing.
        let early = plan(p0.ladder, &g, &h, &Trigger::Due, SLA, SLA - 1);
        assert_eq!(early.ladder, p0.ladder);
        assert!(early.notices.is_empty());
        let p1 = run(p0.ladder, &g, &mut h, Trigger::Due, SLA);
        // The county duty officer was informed, now called; the leader too.
        assert_eq!(who(&p1, Purpose::Call), ["county", "county-leader"]);
        assert_eq!(
            p1.ladder,
            Ladder {
                step: 1,
                due_ms: Some(2 * SLA)
            }
        );
        let p2 = run(p1.ladder, &g, &mut h, Trigger::Due, 2 * SLA);
        assert_eq!(who(&p2, Purpose::Call), ["city", "task-force"]);
        let p3 = run(p2.ladder, &g, &mut h, Trigger::Due, 3 * SLA);
        assert!(who(&p3, Purpose::Call).is_empty());
        assert_eq!(who(&p3, Purpose::NoResponse), ["city-leader"]);
        assert_eq!(p3.ladder.due_ms, None);
        assert!(p3.notes.contains(&Note::Exhausted));
        // Exhausted: no more.
        let p4 = plan(p3.ladder, &g, &h, &Trigger::Due, SLA, 9 * SLA);
        assert!(p4.notices.is_empty());
    }

    #[test]
    fn a_step_whose_calls_all_failed_moves_on_at_once() {
        let g = red();
        let mut h = History::default();
        let p0 = run(Ladder::NEW, &g, &mut h, Trigger::Start, 0);
        let stale = plan(p0.ladder, &g, &h, &Trigger::StepFailed(5), SLA, 10);
        assert!(
            stale.notices.is_empty(),
            "a failure of another step changes nothing"
        );
        let p1 = run(p0.ladder, &g, &mut h, Trigger::StepFailed(0), 10);
        assert_eq!(
            p1.ladder,
            Ladder {
                step: 1,
                due_ms: Some(10 + SLA)
            }
        );
        assert_eq!(p1.notes, [Note::AllFailed(0)]);
    }

    #[test]
    fn empty_groups_are_skipped() {
        let g = Groups {
            call: vec![],
            chain: vec![vec![], v(&["county"])],
            no_response: v(&["leader"]),
            ..Groups::default()
        };
        let mut h = History::default();
        let p = run(Ladder::NEW, &g, &mut h, Trigger::Start, 0);
        assert_eq!(who(&p, Purpose::Call), ["county"]);
        assert_eq!(p.ladder.step, 2);
        assert_eq!(p.notes, [Note::NobodyAt(0), Note::NobodyAt(1)]);
        let nobody = Groups {
            no_response: v(&["leader"]),
            ..Groups::default()
        };
        let p = plan(
            Ladder::NEW,
            &nobody,
            &History::default(),
            &Trigger::Start,
            SLA,
            0,
        );
        assert_eq!(who(&p, Purpose::NoResponse), ["leader"]);
        assert_eq!(p.ladder.due_ms, None);
    }

    #[test]
    fn ack_tells_everyone_reached_but_the_acknowledger() {
        let g = red();
        let mut h = History::default();
        let p0 = run(Ladder::NEW, &g, &mut h, Trigger::Start, 0);
        let p = run(
            p0.ladder,
            &g,
            &mut h,
            Trigger::Closure {
                purpose: Purpose::Acked,
                except: Some("principal".into()),
            },
            60_000,
        );
        assert_eq!(who(&p, Purpose::Acked), ["safety", "grid", "county"]);
        assert_eq!(p.ladder.due_ms, None, "stopped");
        // Told once.
        let again = plan(
            p.ladder,
            &g,
            &h,
            &Trigger::Closure {
                purpose: Purpose::Acked,
                except: None,
            },
            SLA,
            70_000,
        );
        assert_eq!(who(&again, Purpose::Acked), ["principal"]);
    }

    #[test]
    fn a_rise_calls_the_new_level_and_tells_those_reached() {
        let yellow = Groups {
            call: v(&["safety"]),
            chain: vec![v(&["principal"])],
            closure_called: true,
            ..Groups::default()
        };
        let mut h = History::default();
        let p0 = run(Ladder::NEW, &yellow, &mut h, Trigger::Start, 0);
        assert_eq!(p0.ladder.due_ms, Some(SLA));
        let p = run(
            p0.ladder,
            &red(),
            &mut h,
            Trigger::LevelUp(Level::Red),
            1_000,
        );
        assert_eq!(who(&p, Purpose::Escalated), ["safety"]);
        assert_eq!(who(&p, Purpose::Call), ["principal", "grid"]);
        // Informed before, called now: a call, not an "escalated" notice.
        let informed = Groups {
            call: v(&["safety"]),
            inform: v(&["grid"]),
            closure_called: true,
            ..Groups::default()
        };
        let mut h2 = History::default();
        let q0 = run(Ladder::NEW, &informed, &mut h2, Trigger::Start, 0);
        let q = plan(
            q0.ladder,
            &red(),
            &h2,
            &Trigger::LevelUp(Level::Red),
            SLA,
            1_000,
        );
        assert!(who(&q, Purpose::Call).contains(&"grid".to_string()));
        assert!(!who(&q, Purpose::Escalated).contains(&"grid".to_string()));
        assert_eq!(who(&p, Purpose::Inform), ["county"]);
        assert_eq!(
            p.ladder,
            Ladder {
                step: 0,
                due_ms: Some(SLA)
            },
            "the sooner deadline"
        );
        let same = plan(
            p.ladder,
            &red(),
            &h,
            &Trigger::LevelUp(Level::Red),
            SLA,
            2_000,
        );
        assert!(
            same.notices
                .iter()
                .all(|n| n.purpose != Purpose::Call && n.purpose != Purpose::Inform),
            "nobody called or informed twice"
        );
    }

    proptest! {
        /// Whatever the groups and however often the deadline passes, no
        /// person is called twice, every call is of someone in the
        /// policy, and the ladder ends exhausted within chain + 2 looks.
        #[test]
        fn nobody_is_called_twice_and_the_ladder_ends(
            call in proptest::collection::vec(0u8..6, 0..4),
            chain in proptest::collection::vec(proptest::collection::vec(0u8..6, 0..4), 0..5),
            failures in proptest::collection::vec(any::<bool>(), 0..10),
        ) {
            let name = |i: &u8| format!("p{i}");
            let g = Groups {
                call: call.iter().map(name).collect(),
                inform: vec![],
                chain: chain.iter().map(|s| s.iter().map(name).collect()).collect(),
                no_response: vec!["leader".into()],
                ..Groups::default()
            };
            let everyone: HashSet<String> = g.call.iter().chain(g.chain.iter().flatten()).cloned().collect();
            let mut h = History::default();
            let mut l = run(Ladder::NEW, &g, &mut h, Trigger::Start, 0).ladder;
            let mut now = 0;
            let mut looks = 0;
            let mut f = failures.into_iter();
            while l.due_ms.is_some() {
                looks += 1;
                prop_assert!(looks <= g.chain.len() + 2);
                let t = if f.next().unwrap_or(false) {
                    Trigger::StepFailed(l.step)
                } else {
                    now = l.due_ms.unwrap_or(now);
                    Trigger::Due
                };
                l = run(l, &g, &mut h, t, now).ladder;
            }
            let calls: Vec<&Given> = h.given.iter().filter(|x| x.purpose == Purpose::Call).collect();
            let distinct: HashSet<&str> = calls.iter().map(|x| x.person.as_str()).collect();
            prop_assert_eq!(distinct.len(), calls.len());
            prop_assert!(distinct.iter().all(|p| everyone.contains(*p)));
            prop_assert_eq!(distinct.len(), everyone.len(), "everyone in the policy was called");
            prop_assert_eq!(h.given.iter().filter(|x| x.purpose == Purpose::NoResponse).count(), 1);
        }
    }
}
