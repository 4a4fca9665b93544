//! The room: who is in it, the last lines said, and the broadcast that carries
//! each new line to every session.
//!
//! One `tokio::sync::broadcast` channel is the only queue between sessions.
//! It is a ring of `queue` lines shared by all receivers: sending never waits
//! (a full ring overwrites its oldest line), so a session whose client does
//! not read cannot hold up the one that speaks. A receiver that fell more than
//! `queue` lines behind is told how many it missed (`RecvError::Lagged(n)`)
//! and shows `[n messages dropped]`. Memory is bounded by the ring, whatever
//! the number of sessions and however slow they are.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;

use crate::Settings;

/// What happened in the room, as every session receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// A line of chat.
    Message(String),
    /// A `/me` action.
    Action(String),
    /// The user joined.
    Joined,
    /// The user left.
    Left,
}

/// One line of the room: who, from which session, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The session it came from (a session skips its own join notice).
    pub session: u64,
    /// The authenticated user name, unescaped.
    pub name: Arc<str>,
    /// What was said or done.
    pub said: Said,
}

// ANCHOR: room
/// The chat room, shared by every connection through the handler type.
#[derive(Debug)]
pub struct Room {
    state: Mutex<State>,
    /// Cloned into a receiver for each session; `send` never waits.
    lines: broadcast::Sender<Arc<Line>>,
    settings: Settings,
}

/// What changes, behind the room's lock (held for a few map operations, never across an `.await`).
#[derive(Debug, Default)]
struct State {
    /// Session id to user name: a user may be in the room from several sessions.
    members: BTreeMap<u64, Arc<str>>,
    /// The last `settings.history` lines, shown to whoever joins.
    history: VecDeque<Arc<Line>>,
    /// Each present user's message allowance.
    allowance: HashMap<Arc<str>, Allowance>,
    next_session: u64,
}
// ANCHOR_END: room

/// A token bucket: `burst` messages at once, then one more every `refill`.
#[derive(Debug)]
struct Allowance {
    tokens: f64,
    at: Instant,
}

// ANCHOR: membership
/// A session's place in the room: its receiver of new lines, the history it
/// joined with, and a guard that announces its leaving when dropped (when the
/// session ends in any way, a panic included).
#[derive(Debug)]
pub struct Membership {
    room: Arc<Room>,
    /// This session's id.
    pub session: u64,
    /// The user name.
    pub name: Arc<str>,
    /// Lines said after the history.
    pub lines: broadcast::Receiver<Arc<Line>>,
    /// The lines said before this session joined, oldest first.
    pub history: Vec<Arc<Line>>,
}
// ANCHOR_END: membership

impl Room {
    /// An empty room.
    pub fn new(settings: Settings) -> Arc<Room> {
        let (lines, _) = broadcast::channel(settings.queue.max(1));
        Arc::new(Room { state: Mutex::default(), lines, settings })
    }

    /// The settings the room was made with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ANCHOR: join
    /// Enters the room as `name` and tells everyone. The history is copied and
    /// the receiver subscribed under the same lock that orders every line, so
    /// a joiner sees each line exactly once: in the history or from the receiver.
    pub fn join(self: &Arc<Self>, name: &str) -> Membership {
        let mut state = self.state();
        let session = state.next_session;
        state.next_session += 1;
        let name: Arc<str> = state.members.values().find(|n| ***n == *name).cloned().unwrap_or_else(|| name.into());
        state.members.insert(session, name.clone());
        let history = state.history.iter().cloned().collect();
        let lines = self.lines.subscribe();
        self.say_locked(&mut state, Line { session, name: name.clone(), said: Said::Joined });
        tracing::info!(user = %name, members = state.members.len(), "joined the room");
        Membership { room: self.clone(), session, name, lines, history }
    }
    // ANCHOR_END: join

    // ANCHOR: say
    /// Sends a line to every session (and into the history). Never waits: a
    /// receiver that is a full ring behind loses its oldest line, not ours.
    fn say_locked(&self, state: &mut State, line: Line) {
        let line = Arc::new(line);
        if matches!(line.said, Said::Message(_) | Said::Action(_)) && self.settings.history > 0 {
            if state.history.len() == self.settings.history {
                state.history.pop_front();
            }
            state.history.push_back(line.clone());
        }
        // Fails only when nobody is listening, which is no error.
        let _ = self.lines.send(line);
    }
    // ANCHOR_END: say

    // ANCHOR: rate
    /// Says `said` as `membership`'s user if the user's allowance has room:
    /// `settings.burst` lines at once, one more every `settings.refill`,
    /// counted per user over all of the user's sessions.
    pub fn say(&self, membership: &Membership, said: Said) -> Result<(), Slow> {
        let mut state = self.state();
        let (burst, refill) = (f64::from(self.settings.burst), self.settings.refill.as_secs_f64());
        let now = Instant::now();
        let allowance = state.allowance.entry(membership.name.clone()).or_insert(Allowance { tokens: burst, at: now });
        let earned = if refill > 0.0 { now.duration_since(allowance.at).as_secs_f64() / refill } else { burst };
        allowance.tokens = (allowance.tokens + earned).min(burst);
        allowance.at = now;
        if allowance.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - allowance.tokens) * refill);
            tracing::info!(user = %membership.name, "message refused: over the rate limit");
            return Err(Slow { wait });
        }
        allowance.tokens -= 1.0;
        self.say_locked(&mut state, Line { session: membership.session, name: membership.name.clone(), said });
        Ok(())
    }
    // ANCHOR_END: rate

    /// The names in the room, sorted, each with how many sessions it has.
    pub fn who(&self) -> Vec<(Arc<str>, usize)> {
        let state = self.state();
        let mut names: BTreeMap<&Arc<str>, usize> = BTreeMap::new();
        for name in state.members.values() {
            *names.entry(name).or_default() += 1;
        }
        names.into_iter().map(|(name, n)| (name.clone(), n)).collect()
    }

    fn leave(&self, session: u64, name: &Arc<str>) {
        let mut state = self.state();
        state.members.remove(&session);
        if !state.members.values().any(|n| n == name) {
            state.allowance.remove(name);
        }
        self.say_locked(&mut state, Line { session, name: name.clone(), said: Said::Left });
        tracing::info!(user = %name, members = state.members.len(), "left the room");
    }
}

// ANCHOR: leave
/// Leaving is a `Drop`: however the session ends (`/quit`, Ctrl-D, a dropped
/// connection, a panic in the body), the others are told.
impl Drop for Membership {
    fn drop(&mut self) {
        self.room.leave(self.session, &self.name);
    }
}
// ANCHOR_END: leave

/// A line refused by the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slow {
    /// How long until the user may say one more line.
    pub wait: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings { history: 2, queue: 4, burst: 3, refill: Duration::from_secs(3600), ..Settings::default() }
    }

    #[test]
    fn history_keeps_the_last_lines_and_joiners_see_each_line_once() {
        let room = Room::new(settings());
        let alice = room.join("alice");
        for text in ["one", "two", "three"] {
            room.say(&alice, Said::Message(text.into())).unwrap();
        }
        let mut bob = room.join("bob");
        let history: Vec<_> = bob.history.iter().map(|l| l.said.clone()).collect();
        assert_eq!(history, [Said::Message("two".into()), Said::Message("three".into())]);
        // bob's own join notice is the first thing his receiver gets, nothing older.
        assert_eq!(bob.lines.try_recv().unwrap().said, Said::Joined);
        assert!(bob.lines.try_recv().is_err());
        assert_eq!(room.who(), [("alice".into(), 1), ("bob".into(), 1)]);
        drop(alice);
        assert_eq!(bob.lines.try_recv().unwrap().said, Said::Left);
        assert_eq!(room.who(), [("bob".into(), 1)]);
    }

    #[test]
    fn a_receiver_that_never_reads_loses_old_lines_and_the_sender_never_waits() {
        let room = Room::new(Settings { burst: 1000, ..settings() });
        let mut slow = room.join("slow");
        let fast = room.join("fast");
        for i in 0..100 {
            room.say(&fast, Said::Message(format!("{i}"))).unwrap();
        }
        // 102 lines (slow's and fast's join notices, 100 messages), a ring of 4:
        // the slow receiver is told how many it missed, then gets the last 4.
        match slow.lines.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 102 - 4),
            other => panic!("{other:?}"),
        }
        let mut rest = 0;
        while slow.lines.try_recv().is_ok() {
            rest += 1;
        }
        assert_eq!(rest, 4);
    }

    #[test]
    fn the_rate_limit_counts_per_user() {
        let room = Room::new(settings());
        let a = room.join("alice");
        let b = room.join("alice");
        for _ in 0..3 {
            room.say(&a, Said::Message("x".into())).unwrap();
        }
        assert!(room.say(&b, Said::Message("x".into())).is_err());
        let carol = room.join("carol");
        assert!(room.say(&carol, Said::Message("x".into())).is_ok());
    }
}
