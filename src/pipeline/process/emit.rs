//! The one output path: effects → fatigue control (send or fold) → encode → headers → count,
//! then the state writes. Every message a role receives — first hand-over, move along a chain,
//! redirect — passes the role's rate limit here; what the limit folds goes into a digest.

use super::lane::Lane;
use super::stage::{Input, StageError};
use super::writing::{Writes, EXPIRY_EVERY_MS, RECORD_OVERHEAD};
use crate::event::canary::CANARY_HEADER;
use crate::event::wire::{dlq_headers, KIND_HEADER};
use crate::event::{DigestItem, Escalation, SchemaKind};
use crate::fatigue::{Folded, REVIEW};
use crate::output::{Output, Topic};
use crate::state::Effect;

impl Lane {
    /// Turns effects into outputs (and counts them), then appends the state writes of the
    /// sessions changed, sent as `writes` says.
    pub(super) fn emit(
        &mut self,
        partition: i32,
        effects: &mut Vec<Effect>,
        out: &mut Vec<Output>,
        writes: Writes,
        now_ms: i64,
    ) -> Result<(), StageError> {
        let mut result = Ok(());
        // What the receipts of the verdicts that follow bind.
        let mut approval = None;
        for e in effects.drain(..) {
            if let Some(stats) = &self.stats {
                stats.effect(&e);
            }
            let r = match e {
                Effect::Approval(facts) => {
                    approval = Some(facts);
                    Ok(())
                }
                Effect::Verdict(mut v) => {
                    if let Some(issuer) = &self.write.receipts {
                        issuer.stamp(&mut v, approval.as_deref());
                    }
                    self.write
                        .encoded(
                            Topic::Verdicts,
                            &v.action_id,
                            SchemaKind::Verdict,
                            &*v,
                            "verdict",
                        )
                        .map(|o| out.push(o))
                }
                Effect::Escalation(role, x) | Effect::CanaryEscalation(role, x) => {
                    self.route(partition, role, *x, out, now_ms)
                }
                Effect::CanaryVerdict(v, expect) => self
                    .write
                    .encoded(
                        Topic::Canaries,
                        &v.action_id,
                        SchemaKind::Verdict,
                        &*v,
                        "verdict",
                    )
                    .map(|o| out.push(o.with_header(CANARY_HEADER, expect.as_str()))),
                Effect::Review(item) => {
                    let drill = self.write.drill;
                    self.fold(partition, REVIEW, *item, drill, now_ms);
                    Ok(())
                }
                _ => Ok(()),
            };
            if result.is_ok() {
                result = r;
            }
        }
        result?;
        self.state_writes(partition, out, writes, now_ms)
    }

    /// Sends an escalation to its role's topic, or folds it into the role's next digest when
    /// the role's rate limit is reached.
    fn route(
        &mut self,
        partition: i32,
        role: usize,
        x: Escalation,
        out: &mut Vec<Output>,
        now_ms: i64,
    ) -> Result<(), StageError> {
        let admitted = self
            .write
            .digests
            .lock()
            .expect("digests lock")
            .admit(&x.role, now_ms);
        if admitted {
            let topic = Topic::Role(role);
            let o = self.write.encoded(
                topic,
                &x.session_id,
                SchemaKind::Escalation,
                &x,
                "escalation",
            )?;
            out.push(o.with_header(KIND_HEADER, "escalation"));
            return Ok(());
        }
        if let Some(stats) = &self.stats {
            stats.folded(&x.role);
        }
        let item = crate::fatigue::rate_limited(&x, now_ms);
        self.fold(partition, &x.role, item, x.drill, now_ms);
        Ok(())
    }

    /// Queues an item in its session's durable state and folds it into `target`'s digest.
    fn fold(&mut self, partition: i32, target: &str, item: DigestItem, drill: bool, now_ms: i64) {
        self.states
            .entry(partition)
            .or_default()
            .queue(&item.session_id, target, item.clone());
        let folded = Folded {
            partition,
            item,
            drill,
        };
        self.write
            .digests
            .lock()
            .expect("digests lock")
            .fold(target, folded, now_ms);
    }

    /// The changelog records of the sessions changed (an empty value is a tombstone).
    fn state_writes(
        &mut self,
        partition: i32,
        out: &mut Vec<Output>,
        writes: Writes,
        now_ms: i64,
    ) -> Result<(), StageError> {
        let Some(state) = self.states.get_mut(&partition) else {
            return Ok(());
        };
        for (session, record) in state.take_dirty(now_ms) {
            if !self.write.persist_state {
                continue;
            }
            let mut payload = Vec::new();
            if let Some(r) = record {
                payload.reserve(4096);
                r.encode(self.write.changelog_format, &mut payload)
                    .map_err(|e| StageError::encode("state record", &session, e))?;
            }
            let mut o = Output::new(Topic::Changelog, Some(session.into_bytes()), payload);
            o.partition = Some(partition);
            o.deferred = writes == Writes::AfterEffects;
            out.push(o);
        }
        Ok(())
    }

    /// Fires the acknowledgement deadlines due at `now_ms`, in every partition held; sends the
    /// digests due; drops delivered digest items from the sessions' queues; forgets sessions
    /// quiet for the retention time.
    pub(super) fn tick(&mut self, now_ms: i64, out: &mut Vec<Output>) -> Result<(), StageError> {
        let mut parts: Vec<i32> = self.states.keys().copied().collect();
        parts.sort_unstable();
        if now_ms - self.write.last_expiry_ms >= EXPIRY_EVERY_MS {
            self.write.last_expiry_ms = now_ms;
            for &p in &parts {
                let state = self.states.get_mut(&p).expect("listed");
                let n = state.expire(now_ms, self.write.retention_ms);
                if n > 0 {
                    tracing::debug!(partition = p, sessions = n, "idle sessions expired");
                    self.state_writes(p, out, Writes::AtOnce, now_ms)?;
                }
            }
        }
        for &p in &parts {
            let done = self
                .write
                .digests
                .lock()
                .expect("digests lock")
                .take_done(p);
            if done.is_empty() {
                continue;
            }
            let state = self.states.get_mut(&p).expect("listed");
            for (session, key) in done {
                state.unqueue(&session, &key);
            }
            self.state_writes(p, out, Writes::AtOnce, now_ms)?;
        }
        self.send_due_digests(now_ms, out)?;
        for p in parts {
            let state = self.states.get_mut(&p).expect("listed");
            if state.next_deadline().is_none_or(|d| d > now_ms) {
                continue;
            }
            let mut effects = Vec::new();
            state.fire_due(&self.decide.matrix, now_ms, &mut effects);
            self.emit(p, &mut effects, out, Writes::AfterEffects, now_ms)?;
        }
        Ok(())
    }

    /// The digests due at `now_ms`, each one message to its role (or the review queue).
    fn send_due_digests(&mut self, now_ms: i64, out: &mut Vec<Output>) -> Result<(), StageError> {
        let due = self
            .write
            .digests
            .lock()
            .expect("digests lock")
            .take_due(now_ms);
        for d in due {
            let topic = if d.target == REVIEW {
                Topic::Review
            } else if let Some(i) = self.decide.matrix.role_index(&d.target) {
                Topic::Role(i)
            } else {
                // Its role was removed by a rule change: the items still reach people.
                tracing::warn!(target_role = %d.target, items = d.items.len(), "digest for a role the rules no longer have: sent to the review queue");
                Topic::Review
            };
            let digest = crate::event::Digest {
                digest_id: crate::fatigue::digest_id(&d.target, &d.items),
                target: d.target.clone(),
                first_at_ms: d.first_at_ms,
                sent_at_ms: now_ms,
                rule_version: self.decide.matrix.version().to_string(),
                drill: d.items.iter().any(|f| f.drill),
                items: d.items.iter().map(|f| f.item.clone()).collect(),
            };
            let o = self
                .write
                .encoded(topic, &d.target, SchemaKind::Digest, &digest, "digest")?;
            out.push(o.with_header(KIND_HEADER, "digest"));
            if let Some(stats) = &self.stats {
                stats.digest_sent(&d.target);
            }
            tracing::info!(target_role = %d.target, items = d.items.len(), "digest sent");
            self.write.unconfirmed.extend(d.items);
        }
        Ok(())
    }

    /// The dead letter of `input`: its key, value and headers, plus the Kafka Connect error
    /// headers. A value too large for the producer is left out (null), marked so in
    /// `handoff.value: omitted`, with its size in `handoff.original.bytes`: the dead letter is
    /// still written and the stream goes on.
    pub(super) fn dead_letter(
        &self,
        input: Input<'_>,
        reason: &'static str,
        message: &str,
    ) -> Output {
        let value = input.payload.unwrap_or(&[]);
        let mut headers: Vec<(String, Vec<u8>)> = input.headers.to_vec();
        let mut add = |k: &str, v: &[u8]| headers.push((k.to_string(), v.to_vec()));
        add(dlq_headers::TOPIC, input.topic.as_bytes());
        add(
            dlq_headers::PARTITION,
            input.partition.to_string().as_bytes(),
        );
        add(dlq_headers::OFFSET, input.offset.to_string().as_bytes());
        add(dlq_headers::CLASS, reason.as_bytes());
        add(dlq_headers::MESSAGE, message.as_bytes());
        add(
            dlq_headers::ERROR_CLASS,
            crate::error::ErrorClass::DeadLetter.as_str().as_bytes(),
        );
        add(
            dlq_headers::ORIGINAL_BYTES,
            value.len().to_string().as_bytes(),
        );
        let key = input.key.map(<[u8]>::to_vec);
        let overhead: usize = headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum::<usize>()
            + key.as_ref().map_or(0, Vec::len)
            + RECORD_OVERHEAD;
        let fits = value.len() + overhead <= self.write.max_output_bytes;
        if !fits {
            headers.push((dlq_headers::VALUE.to_string(), b"omitted".to_vec()));
        }
        let payload = if fits { value.to_vec() } else { Vec::new() };
        let mut o = Output::new(Topic::DeadLetters, key, payload);
        // An empty value stays empty (not null) when it fits: its bytes as they were.
        o.null = input.payload.is_none() || !fits;
        o.headers = headers;
        o
    }
}
