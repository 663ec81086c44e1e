//! The verdicts the gateway answers from: for each of the most recent actions, its first and its
//! final verdict (a bounded window, oldest actions forgotten first), rebuilt from
//! `agent.verdicts` by every replica; and who waits for what — long polls by action, event
//! streams by session. Plain data behind one mutex: every operation is short and never waits.

use super::keys::Caller;
use crate::event::Verdict;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Verdicts an event stream may fall behind by before it is ended (the agent reconnects).
pub const STREAM_BUFFER: usize = 256;

/// What is known of one action.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its first verdict (the level's own answer).
    pub first: Option<Arc<Verdict>>,
    /// Its final verdict, when there is one (for `execute`/`execute_log`, the first).
    pub last: Option<Arc<Verdict>>,
}

impl Seen {
    /// True once the final verdict is known.
    pub fn is_final(&self) -> bool {
        self.last.is_some()
    }
}

#[derive(Debug)]
struct Entry {
    agent_id: Arc<str>,
    session_id: Arc<str>,
    /// When this replica acknowledged its submission (time to final verdict).
    submitted: Option<Instant>,
    seen: Seen,
}

/// What applying a verdict changed.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Applied {
    /// From this replica's submission to this final verdict.
    pub to_final: Option<Duration>,
    /// False for a verdict delivered again (already known).
    pub new: bool,
}

/// The window and its waiters.
#[derive(Debug)]
pub struct Window {
    capacity: usize,
    actions: HashMap<Arc<str>, Entry>,
    order: VecDeque<Arc<str>>,
    sessions: HashMap<Arc<str>, Vec<Arc<str>>>,
    waiters: HashMap<Arc<str>, Vec<oneshot::Sender<()>>>,
    streams: HashMap<Arc<str>, Vec<mpsc::Sender<Arc<Verdict>>>>,
}

impl Window {
    /// An empty window keeping the verdicts of at most `capacity` actions.
    pub fn new(capacity: usize) -> Window {
        Window {
            capacity: capacity.max(1),
            actions: HashMap::new(),
            order: VecDeque::new(),
            sessions: HashMap::new(),
            waiters: HashMap::new(),
            streams: HashMap::new(),
        }
    }

    /// Actions in the window.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// True when no action is in the window.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Notes an action this replica has just had acknowledged: a poll for it is answered
    /// "pending" (not 404) until its first verdict, and its time to final verdict is measured.
    pub fn submitted(&mut self, action_id: &str, session_id: &str, agent_id: &str, at: Instant) {
        let entry = self.entry(action_id, session_id, agent_id);
        entry.submitted.get_or_insert(at);
    }

    /// Takes one verdict read from `agent.verdicts`; wakes whoever waits for its action or
    /// follows its session. Drill verdicts are not agents' and are left out.
    pub fn apply(&mut self, verdict: Verdict) -> Applied {
        if verdict.drill {
            return Applied::default();
        }
        let v = Arc::new(verdict);
        let entry = self.entry(&v.action_id, &v.session_id, &v.agent_id);
        let seen = &mut entry.seen;
        let mut new = false;
        if v.outcome.is_first() && seen.first.is_none() {
            seen.first = Some(v.clone());
            new = true;
        }
        if v.is_final && seen.last.is_none() {
            seen.last = Some(v.clone());
            new = true;
        }
        let between = !v.outcome.is_first() && !v.is_final;
        let to_final = (new && v.is_final)
            .then(|| entry.submitted.map(|at| at.elapsed()))
            .flatten();
        if !(new || between) {
            return Applied::default();
        }
        if let Some(waiting) = self.waiters.remove(v.action_id.as_str()) {
            for w in waiting {
                let _ = w.send(());
            }
        }
        if let Some(streams) = self.streams.get_mut(v.session_id.as_str()) {
            streams.retain(|s| s.try_send(v.clone()).is_ok());
            if streams.is_empty() {
                self.streams.remove(v.session_id.as_str());
            }
        }
        Applied { to_final, new }
    }

    /// What `caller` may know of `action_id`: `None` when unknown, forgotten, or another
    /// agent's (the same answer, so that ids cannot be probed).
    pub fn seen(&self, action_id: &str, caller: &Caller) -> Option<Seen> {
        let e = self.actions.get(action_id)?;
        caller.may_act_as(&e.agent_id).then(|| e.seen.clone())
    }

    /// A receiver woken by the next verdict of `action_id`.
    pub fn wait(&mut self, action_id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let waiting = self.waiters.entry(action_id.into()).or_default();
        waiting.retain(|w| !w.is_closed());
        waiting.push(tx);
        rx
    }

    /// Forgets the waits on `action_id` that were given up.
    pub fn given_up(&mut self, action_id: &str) {
        if let Some(waiting) = self.waiters.get_mut(action_id) {
            waiting.retain(|w| !w.is_closed());
            if waiting.is_empty() {
                self.waiters.remove(action_id);
            }
        }
    }

    /// Follows `session_id` for `caller`: the verdicts of the window so far (each action's
    /// first, then final), and a receiver of those that follow, in one step so that none falls
    /// between. The receiver also gets other agents' verdicts of the session; the caller
    /// filters them (see [`Caller::may_act_as`]).
    pub fn follow(
        &mut self,
        session_id: &str,
        caller: &Caller,
    ) -> (Vec<Arc<Verdict>>, mpsc::Receiver<Arc<Verdict>>) {
        let mut so_far = Vec::new();
        for id in self.sessions.get(session_id).into_iter().flatten() {
            let Some(e) = self.actions.get(id) else {
                continue;
            };
            if !caller.may_act_as(&e.agent_id) {
                continue;
            }
            so_far.extend(e.seen.first.iter().cloned());
            let same = |a: &Arc<Verdict>, b: &Arc<Verdict>| Arc::ptr_eq(a, b);
            if let Some(last) = &e.seen.last {
                if !e.seen.first.as_ref().is_some_and(|f| same(f, last)) {
                    so_far.push(last.clone());
                }
            }
        }
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let streams = self.streams.entry(session_id.into()).or_default();
        streams.retain(|s| !s.is_closed());
        streams.push(tx);
        (so_far, rx)
    }

    /// The entry of `action_id`, made (and the oldest forgotten) when new.
    fn entry(&mut self, action_id: &str, session_id: &str, agent_id: &str) -> &mut Entry {
        if !self.actions.contains_key(action_id) {
            while self.actions.len() >= self.capacity {
                self.forget_oldest();
            }
            let id: Arc<str> = action_id.into();
            let session: Arc<str> = session_id.into();
            self.order.push_back(id.clone());
            self.sessions
                .entry(session.clone())
                .or_default()
                .push(id.clone());
            let entry = Entry {
                agent_id: agent_id.into(),
                session_id: session,
                submitted: None,
                seen: Seen {
                    first: None,
                    last: None,
                },
            };
            self.actions.insert(id, entry);
        }
        self.actions.get_mut(action_id).expect("just made")
    }

    fn forget_oldest(&mut self) {
        let Some(id) = self.order.pop_front() else {
            return;
        };
        let Some(e) = self.actions.remove(&id) else {
            return;
        };
        if let Some(ids) = self.sessions.get_mut(&e.session_id) {
            ids.retain(|a| *a != id);
            if ids.is_empty() {
                self.sessions.remove(&e.session_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GatewayAgent;
    use crate::event::{Level, VerdictOutcome};

    fn verdict(action: &str, agent: &str, outcome: VerdictOutcome, is_final: bool) -> Verdict {
        Verdict {
            action_id: action.into(),
            session_id: format!("s-{action}"),
            agent_id: agent.into(),
            action_type: "refund.issue".into(),
            level: Level::AskFirst,
            outcome,
            is_final,
            triggers: vec![],
            roles: vec!["support".into()],
            escalation_ids: vec![],
            rule_version: "rv".into(),
            decided_at_ms: 1,
            decided_by: None,
            comment: None,
            revised_output: None,
            redirect_role: None,
            drill: false,
            chosen_option: None,
            revised_arguments: None,
            receipt: None,
        }
    }

    fn caller(agent: &str) -> Caller {
        let key = crate::inbox::auth::token_sha256(agent);
        let keys = super::super::keys::Keys::new(&[GatewayAgent {
            name: agent.into(),
            key_sha256: key,
            agent_ids: vec![agent.into()],
        }]);
        let mut h = axum::http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {agent}").parse().unwrap());
        keys.caller(&h).unwrap()
    }

    #[test]
    fn first_and_final_are_kept_and_a_repeat_is_not_news() {
        let mut w = Window::new(10);
        let a = caller("agent-a");
        let first = verdict("x", "agent-a", VerdictOutcome::AwaitHuman, false);
        assert!(w.apply(first.clone()).new);
        assert!(!w.apply(first).new, "delivered again");
        let seen = w.seen("x", &a).unwrap();
        assert!(seen.first.is_some() && !seen.is_final());
        let done = verdict("x", "agent-a", VerdictOutcome::Approved, true);
        assert!(w.apply(done).new);
        let seen = w.seen("x", &a).unwrap();
        assert_eq!(seen.last.unwrap().outcome, VerdictOutcome::Approved);
        assert_eq!(seen.first.unwrap().outcome, VerdictOutcome::AwaitHuman);
    }

    #[test]
    fn another_agents_action_is_unknown_to_a_caller() {
        let mut w = Window::new(10);
        w.apply(verdict("x", "agent-a", VerdictOutcome::Proceed, true));
        assert!(w.seen("x", &caller("agent-a")).is_some());
        assert!(w.seen("x", &caller("agent-b")).is_none());
        let (so_far, _) = w.follow("s-x", &caller("agent-b"));
        assert!(so_far.is_empty());
        let (so_far, _) = w.follow("s-x", &caller("agent-a"));
        assert_eq!(
            so_far.len(),
            1,
            "a first verdict that is final is sent once"
        );
    }

    #[test]
    fn the_oldest_actions_are_forgotten_first() {
        let mut w = Window::new(3);
        for i in 0..5 {
            w.apply(verdict(
                &i.to_string(),
                "agent-a",
                VerdictOutcome::Proceed,
                true,
            ));
        }
        assert_eq!(w.len(), 3);
        let a = caller("agent-a");
        assert!(w.seen("0", &a).is_none() && w.seen("1", &a).is_none());
        assert!(w.seen("4", &a).is_some());
        assert!(!w.sessions.contains_key("s-0"), "the session index follows");
    }

    #[test]
    fn waiters_and_streams_are_woken_by_their_actions_verdicts_only() {
        let mut w = Window::new(10);
        let mut x = w.wait("x");
        let mut y = w.wait("y");
        let (_, mut stream) = w.follow("s-x", &caller("agent-a"));
        w.apply(verdict("x", "agent-a", VerdictOutcome::AwaitHuman, false));
        assert!(x.try_recv().is_ok());
        assert!(y.try_recv().is_err());
        assert_eq!(stream.try_recv().unwrap().action_id, "x");
        w.apply(verdict("x", "agent-a", VerdictOutcome::Redirected, false));
        assert_eq!(
            stream.try_recv().unwrap().outcome,
            VerdictOutcome::Redirected,
            "a verdict between the first and the final one is streamed"
        );
        drop(y);
        w.given_up("y");
        assert!(w.waiters.is_empty());
    }

    #[test]
    fn a_submission_is_pending_and_timed_to_its_final_verdict() {
        let mut w = Window::new(10);
        w.submitted("x", "s-x", "agent-a", Instant::now());
        let seen = w.seen("x", &caller("agent-a")).unwrap();
        assert!(seen.first.is_none() && seen.last.is_none());
        assert!(w.seen("x", &caller("agent-b")).is_none());
        let applied = w.apply(verdict("x", "agent-a", VerdictOutcome::Proceed, true));
        assert!(applied.to_final.is_some());
    }

    #[test]
    fn drill_verdicts_are_left_out() {
        let mut w = Window::new(10);
        let mut v = verdict("x", "agent-a", VerdictOutcome::Proceed, true);
        v.drill = true;
        w.apply(v);
        assert!(w.is_empty());
    }
}
