//! The warning's state machine. Pure: a warning and an input in, the new
//! warning and its effects out; no I/O, no clock (the ladder planner gets
//! the time).
//!
//! ```text
//!                   call delivered              ack                 confirm real
//!   (new) ─▶ RAISED ───────────────▶ NOTIFIED ─────▶ ACKED ──────────────────▶ DISPOSING
//!              │ └───────────── ack ──────────────────▲  │ confirm false alarm      │ resolve
//!              │                                         ▼                          ▼
//!              └── cleared at the source, level needs no ack ──────────────────▶ RESOLVED
//! ```
//!
//! Alarm transitions of an open warning change its level; a new highest
//! level before the acknowledgement restarts the call ladder at that level
//! ([`super::ladder`]). Clearing at the source stops the ladder and tells
//! those reached; at a level whose policy does not require an
//! acknowledgement after clearing, a warning nobody acknowledged resolves
//! itself. An alarm that comes back after clearing, before anyone
//! answered, resumes the ladder. Acknowledgement, confirmation and
//! resolution close the loop (闭环) for everyone reached.

use anquan_protocol::{AlarmState, Level};

use super::ladder::{Purpose, Trigger};

/// The state of a warning (`warnings.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Raised; no call delivered yet.
    Raised,
    /// A call was delivered; nobody acknowledged yet.
    Notified,
    /// Someone acknowledged (叫应 answered).
    Acked,
    /// Confirmed real; the disposal task is open.
    Disposing,
    /// Over.
    Resolved,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Self; 5] = [
        Self::Raised,
        Self::Notified,
        Self::Acked,
        Self::Disposing,
        Self::Resolved,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "RAISED",
            Self::Notified => "NOTIFIED",
            Self::Acked => "ACKED",
            Self::Disposing => "DISPOSING",
            Self::Resolved => "RESOLVED",
        }
    }

    /// From [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Waiting for an acknowledgement.
    pub fn awaits_ack(self) -> bool {
        matches!(self, Self::Raised | Self::Notified)
    }
}

/// What the machine reads of a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning {
    /// The state.
    pub phase: Phase,
    /// The alarm's level now.
    pub level: Level,
    /// The highest level reached.
    pub max_level: Level,
    /// Cleared at the source.
    pub cleared: bool,
}

/// What happened to a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An alarm transition of its alarm (not the one that opened it).
    Alarm {
        /// raised, escalated, downgraded or cleared.
        state: AlarmState,
        /// The level it carries.
        level: Level,
    },
    /// The deadline may have passed.
    Tick,
    /// A call reached someone.
    Delivered,
    /// Every call of this ladder step failed.
    StepFailed(i64),
    /// A person acknowledged.
    Ack {
        /// Who.
        by: String,
    },
    /// A person judged it (after the acknowledgement).
    Confirm {
        /// A false alarm (→ resolved) or real (→ disposing).
        false_alarm: bool,
    },
    /// The disposal is done (the caller checked its tasks).
    Resolve,
}

/// What the machine asks the I/O side to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Move to this phase (audited with the reason).
    Phase(Phase, &'static str),
    /// The level changed.
    Level {
        /// Before.
        from: Level,
        /// After.
        to: Level,
    },
    /// Run the call-ladder planner.
    Ladder(Trigger),
}

/// The input is not allowed in the warning's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the warning is {phase}; it cannot be {what}")]
pub struct Refused {
    /// The state it is in.
    pub phase: &'static str,
    /// What was asked.
    pub what: &'static str,
}

/// Per-level rules the machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// A warning cleared before anyone acknowledged still needs a person.
    pub cleared_needs_ack: bool,
}

/// A new warning at `level`, and what to do: start the ladder.
pub fn open(level: Level) -> (Warning, Vec<Effect>) {
    (
        Warning {
            phase: Phase::Raised,
            level,
            max_level: level,
            cleared: false,
        },
        vec![Effect::Ladder(Trigger::Start)],
    )
}

fn refuse(w: &Warning, what: &'static str) -> Refused {
    Refused {
        phase: w.phase.as_str(),
        what,
    }
}

/// The next state of `w` after `input`, with its effects; `rules` are
/// those of the warning's highest level.
pub fn step(w: &Warning, input: &Input, rules: Rules) -> Result<(Warning, Vec<Effect>), Refused> {
    let mut next = *w;
    let mut fx = Vec::new();
    match input {
        _ if w.phase == Phase::Resolved => return Err(refuse(w, "changed")),
        Input::Alarm {
            state: AlarmState::Cleared,
            ..
        } => {
            if !w.cleared {
                next.cleared = true;
                fx.push(Effect::Ladder(Trigger::Closure {
                    purpose: Purpose::Cleared,
                    except: None,
                }));
                if w.phase.awaits_ack() && !rules.cleared_needs_ack {
                    next.phase = Phase::Resolved;
                    fx.push(Effect::Phase(
                        Phase::Resolved,
                        "cleared at the source before anyone acknowledged; this level needs no acknowledgement then",
                    ));
                }
            }
        }
        Input::Alarm { level, .. } => {
            if *level != w.level {
                next.level = *level;
                fx.push(Effect::Level {
                    from: w.level,
                    to: *level,
                });
            }
            let rise = *level > w.max_level;
            if rise {
                next.max_level = *level;
            }
            if w.phase.awaits_ack() {
                if rise {
                    fx.push(Effect::Ladder(Trigger::LevelUp(*level)));
                } else if w.cleared {
                    fx.push(Effect::Ladder(Trigger::Resume));
                }
            }
            next.cleared = false;
        }
        Input::Tick => {
            if w.phase.awaits_ack() && !w.cleared {
                fx.push(Effect::Ladder(Trigger::Due));
            }
        }
        Input::StepFailed(s) => {
            if w.phase.awaits_ack() && !w.cleared {
                fx.push(Effect::Ladder(Trigger::StepFailed(*s)));
            }
        }
        Input::Delivered => {
            if w.phase == Phase::Raised {
                next.phase = Phase::Notified;
                fx.push(Effect::Phase(Phase::Notified, "a call was delivered"));
            }
        }
        Input::Ack { by } => {
            if !w.phase.awaits_ack() {
                return Err(refuse(w, "acknowledged"));
            }
            next.phase = Phase::Acked;
            fx.push(Effect::Phase(Phase::Acked, "acknowledged"));
            fx.push(Effect::Ladder(Trigger::Closure {
                purpose: Purpose::Acked,
                except: Some(by.clone()),
            }));
        }
        Input::Confirm { false_alarm } => {
            if w.phase != Phase::Acked {
                return Err(refuse(w, "confirmed before it is acknowledged"));
            }
            next.phase = if *false_alarm {
                Phase::Resolved
            } else {
                Phase::Disposing
            };
            fx.push(Effect::Phase(
                next.phase,
                if *false_alarm {
                    "false alarm"
                } else {
                    "confirmed, not a false alarm"
                },
            ));
            fx.push(Effect::Ladder(Trigger::Closure {
                purpose: Purpose::Disposal,
                except: None,
            }));
        }
        Input::Resolve => {
            if w.phase != Phase::Disposing {
                return Err(refuse(w, "resolved before its disposal"));
            }
            next.phase = Phase::Resolved;
            fx.push(Effect::Phase(Phase::Resolved, "disposal done"));
            fx.push(Effect::Ladder(Trigger::Closure {
                purpose: Purpose::Resolved,
                except: None,
            }));
        }
    }
    Ok((next, fx))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    const NEEDS: Rules = Rules {
        cleared_needs_ack: true,
    };
    const SELF: Rules = Rules {
        cleared_needs_ack: false,
    };

    fn alarm(state: AlarmState, level: Level) -> Input {
        Input::Alarm { state, level }
    }

    #[test]
    fn the_happy_path() {
        let (w, fx) = open(Level::Orange);
        assert_eq!(fx, [Effect::Ladder(Trigger::Start)]);
        let (w, fx) = step(&w, &Input::Delivered, NEEDS).unwrap();
        assert_eq!(w.phase, Phase::Notified);
        assert_eq!(fx.len(), 1);
        let (w2, fx) = step(&w, &Input::Delivered, NEEDS).unwrap();
        assert_eq!((w2, fx.len()), (w, 0), "a second delivery changes nothing");
        let (w, fx) = step(&w, &Input::Ack { by: "p".into() }, NEEDS).unwrap();
        assert_eq!(w.phase, Phase::Acked);
        assert!(fx.contains(&Effect::Ladder(Trigger::Closure {
            purpose: Purpose::Acked,
            except: Some("p".into())
        })));
        let e = step(&w, &Input::Ack { by: "q".into() }, NEEDS).unwrap_err();
        assert!(e.to_string().contains("ACKED"), "{e}");
        assert_eq!(step(&w, &Input::Tick, NEEDS).unwrap().1, []);
        let (w, _) = step(&w, &Input::Confirm { false_alarm: false }, NEEDS).unwrap();
        assert_eq!(w.phase, Phase::Disposing);
        let (w, fx) = step(&w, &Input::Resolve, NEEDS).unwrap();
        assert_eq!(w.phase, Phase::Resolved);
        assert_eq!(fx.len(), 2);
        assert!(step(&w, &Input::Tick, NEEDS).is_err());
    }

    #[test]
    fn confirm_needs_an_ack_and_a_false_alarm_resolves() {
        let (w, _) = open(Level::Yellow);
        assert!(step(&w, &Input::Confirm { false_alarm: true }, NEEDS).is_err());
        assert!(step(&w, &Input::Resolve, NEEDS).is_err());
        let (w, _) = step(&w, &Input::Ack { by: "p".into() }, NEEDS).unwrap();
        let (w, _) = step(&w, &Input::Confirm { false_alarm: true }, NEEDS).unwrap();
        assert_eq!(w.phase, Phase::Resolved);
    }

    #[test]
    fn levels_rise_fall_and_restart_the_ladder_only_on_a_new_high() {
        let (w, _) = open(Level::Yellow);
        let (w, fx) = step(&w, &alarm(AlarmState::Escalated, Level::Red), NEEDS).unwrap();
        assert_eq!((w.level, w.max_level), (Level::Red, Level::Red));
        assert!(fx.contains(&Effect::Ladder(Trigger::LevelUp(Level::Red))));
        let (w, fx) = step(&w, &alarm(AlarmState::Downgraded, Level::Orange), NEEDS).unwrap();
        assert_eq!((w.level, w.max_level), (Level::Orange, Level::Red));
        assert!(!fx.iter().any(|f| matches!(f, Effect::Ladder(_))));
        let (_, fx) = step(&w, &alarm(AlarmState::Escalated, Level::Red), NEEDS).unwrap();
        assert!(
            !fx.iter().any(|f| matches!(f, Effect::Ladder(_))),
            "not a new high"
        );
    }

    #[test]
    fn clearing_stops_the_ladder_and_resolves_where_no_ack_is_needed() {
        let (w, _) = open(Level::Red);
        let (c, fx) = step(&w, &alarm(AlarmState::Cleared, Level::Red), NEEDS).unwrap();
        assert!(c.cleared);
        assert_eq!(c.phase, Phase::Raised, "red still waits for a person");
        assert!(fx.contains(&Effect::Ladder(Trigger::Closure {
            purpose: Purpose::Cleared,
            except: None
        })));
        assert_eq!(
            step(&c, &Input::Tick, NEEDS).unwrap().1,
            [],
            "no more climbing"
        );
        assert_eq!(
            step(&c, &alarm(AlarmState::Cleared, Level::Red), NEEDS)
                .unwrap()
                .1,
            [],
            "cleared once"
        );
        let (back, fx) = step(&c, &alarm(AlarmState::Raised, Level::Red), NEEDS).unwrap();
        assert!(!back.cleared);
        assert_eq!(fx, [Effect::Ladder(Trigger::Resume)]);
        let (b, _) = open(Level::Blue);
        let (b, fx) = step(&b, &alarm(AlarmState::Cleared, Level::Blue), SELF).unwrap();
        assert_eq!(b.phase, Phase::Resolved);
        assert!(
            fx.iter()
                .any(|f| matches!(f, Effect::Phase(Phase::Resolved, _)))
        );
        // Acknowledged before clearing: closure only, no auto-resolve.
        let (a, _) = open(Level::Blue);
        let (a, _) = step(&a, &Input::Ack { by: "p".into() }, SELF).unwrap();
        let (a, _) = step(&a, &alarm(AlarmState::Cleared, Level::Blue), SELF).unwrap();
        assert_eq!(a.phase, Phase::Acked);
    }

    fn inputs() -> impl Strategy<Value = Input> {
        let level = prop_oneof![
            Just(Level::Blue),
            Just(Level::Yellow),
            Just(Level::Orange),
            Just(Level::Red)
        ];
        let state = prop_oneof![
            Just(AlarmState::Raised),
            Just(AlarmState::Escalated),
            Just(AlarmState::Downgraded),
            Just(AlarmState::Cleared)
        ];
        prop_oneof![
            (state, level).prop_map(|(state, level)| Input::Alarm { state, level }),
            Just(Input::Tick),
            Just(Input::Delivered),
            (0i64..4).prop_map(Input::StepFailed),
            Just(Input::Ack { by: "p".into() }),
            any::<bool>().prop_map(|false_alarm| Input::Confirm { false_alarm }),
            Just(Input::Resolve),
        ]
    }

    proptest! {
        /// Any sequence of inputs: the phase only moves forward, the
        /// highest level never falls and bounds the level, the ladder is
        /// never asked to climb once someone acknowledged, and nothing
        /// changes a resolved warning.
        #[test]
        fn invariants_hold(seq in proptest::collection::vec(inputs(), 0..40), needs in any::<bool>()) {
            let rules = Rules { cleared_needs_ack: needs };
            let order = |p: Phase| Phase::ALL.iter().position(|x| *x == p).unwrap_or(0);
            let (mut w, _) = open(Level::Yellow);
            for i in &seq {
                // A refused input changes nothing.
                if let Ok((n, fx)) = step(&w, i, rules) {
                    prop_assert!(order(n.phase) >= order(w.phase));
                    prop_assert!(n.max_level >= w.max_level && n.max_level >= n.level);
                    if !w.phase.awaits_ack() {
                        prop_assert!(!fx.iter().any(|f| matches!(
                            f,
                            Effect::Ladder(Trigger::Due | Trigger::StepFailed(_) | Trigger::LevelUp(_) | Trigger::Resume)
                        )));
                    }
                    prop_assert!(w.phase != Phase::Resolved);
                    w = n;
                }
            }
        }
    }
}
