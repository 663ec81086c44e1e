//! Answering: checks (visibility, staleness, form fields), then the decision to Kafka and
//! the audit entry.

use super::*;

use super::read::{audit_entry, gone_text, spawn_audit};

pub(super) async fn answer(
    State(app): State<Arc<App>>,
    SignedIn(v): SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Response {
    if let Err(why) = app.auth.check_form(&v, &form.form_token, &headers) {
        app.metrics.answer("none", "forbidden");
        return message(&app, Some(&v), StatusCode::FORBIDDEN, "Not sent", why);
    }
    let now = crate::clock::SystemClock::now();
    let first_view = app
        .views
        .lock()
        .expect("not poisoned")
        .get(&(v.name.clone(), id.clone()))
        .copied();
    let checked = app.check_answer(&v, &id, &form, now, Via::Web);
    let (d, mut entry) = match checked {
        Ok(x) => x,
        Err(r) => return app.refusal(&v, &id, r),
    };
    entry.first_viewed_at_ms = first_view;
    match app.send(d, entry).await {
        Ok(kind) => Redirect::to(&format!("/?done={}", kind.as_str())).into_response(),
        Err(e) => message(
            &app,
            Some(&v),
            StatusCode::SERVICE_UNAVAILABLE,
            "Not sent",
            &e,
        ),
    }
}

/// Why an answer is not sent.
pub enum Refused {
    /// Not the viewer's to see.
    NotFound,
    /// Closed or moved on; the audit entry records the refusal.
    Stale(String, Box<AuditEntry>),
    /// A field is wrong.
    Invalid(String),
}

impl App {
    /// Escalations answered from here recently (hidden until the board catches up).
    pub(super) fn recently_sent(&self, now: i64) -> Vec<String> {
        let mut sent = self.sent.lock().expect("not poisoned");
        sent.retain(|_, (_, at)| now - *at < SENT_KEPT_MS);
        sent.keys().cloned().collect()
    }

    /// Checks an answer by `v` to `id` and builds its decision and audit entry.
    pub fn check_answer(
        &self,
        v: &Viewer,
        id: &str,
        form: &AnswerForm,
        now: i64,
        via: Via,
    ) -> Result<(HumanDecision, AuditEntry), Refused> {
        let board = self.board.read().expect("not poisoned");
        let item = match board.get(id) {
            Lookup::Open(i) if v.roles.contains(&i.role) => i,
            Lookup::Gone(g) if v.roles.iter().any(|r| r == g.role()) => {
                let mut e = gone_entry(v, id, g, now, via);
                e.reason = Some(gone_text(g));
                return Err(Refused::Stale(gone_text(g), Box::new(e)));
            }
            _ => return Err(Refused::NotFound),
        };
        let d =
            answer::decision(&self.matrix, item, form, &v.name, now).map_err(Refused::Invalid)?;
        // A final answer claims the escalation here and now, under one lock: of two people
        // answering at once (or a double click), one is sent and the other refused. An
        // approval of an action needing several approvers claims it for its person only:
        // others may still approve (the processor counts each person once).
        if d.decision != DecisionKind::Acknowledge {
            let four_eyes = d.decision == DecisionKind::Approve && item.action.quorum.approvals > 1;
            let claim = if four_eyes {
                format!("{id}\n{}", v.name)
            } else {
                id.to_string()
            };
            let mut sent = self.sent.lock().expect("not poisoned");
            sent.retain(|_, (_, at)| now - *at < SENT_KEPT_MS);
            if let Some((who, at)) = sent.get(&claim).or_else(|| sent.get(id)) {
                let why = format!(
                    "{who} already answered it {}s ago; handoff is acting on that answer.",
                    (now - at) / 1000
                );
                let mut e = audit_entry(AuditKind::Refused, &v.name, item, now, via);
                e.reason = Some(why.clone());
                return Err(Refused::Stale(why, Box::new(e)));
            }
            sent.insert(claim, (v.name.clone(), now));
        }
        let mut e = audit_entry(AuditKind::Answered, &v.name, item, now, via);
        e.decision = Some(d.decision);
        Ok((d, e))
    }

    pub(super) fn refusal(&self, v: &Viewer, id: &str, r: Refused) -> Response {
        match r {
            Refused::NotFound => {
                self.metrics.answer("none", "not_found");
                not_found(self, v, id)
            }
            Refused::Stale(text, entry) => {
                self.metrics.answer("none", "stale");
                spawn_audit(self, *entry);
                message(
                    self,
                    Some(v),
                    StatusCode::CONFLICT,
                    "Not sent: no longer open",
                    &text,
                )
            }
            Refused::Invalid(text) => {
                self.metrics.answer("none", "invalid");
                message(
                    self,
                    Some(v),
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Not sent",
                    &text,
                )
            }
        }
    }

    /// Sends a checked decision, waits for its delivery, then records it.
    /// Delivers an answer and audits it, on a task of its own: a request that ends first (its
    /// answer deadline, a closed connection) does not cut a delivery in half, leaving the
    /// decision sent but the audit entry, the metrics and the claim's release undone.
    pub async fn send(
        self: &Arc<Self>,
        d: HumanDecision,
        entry: AuditEntry,
    ) -> Result<DecisionKind, String> {
        let app = self.clone();
        tokio::spawn(async move { app.deliver(d, entry).await })
            .await
            .unwrap_or_else(|e| Err(format!("delivery failed: {e}")))
    }

    async fn deliver(&self, d: HumanDecision, entry: AuditEntry) -> Result<DecisionKind, String> {
        let started = std::time::Instant::now();
        let kind = d.decision;
        if let Err(e) = self.publish.decision(&d).await {
            self.metrics.answer(kind.as_str(), "failed");
            // Not sent: the claim made by check_answer is released.
            // Only this person's claim: under four-eyes it is keyed by person too.
            let mut sent = self.sent.lock().expect("not poisoned");
            if sent
                .remove(&format!("{}\n{}", d.escalation_id, d.decided_by))
                .is_none()
                && sent
                    .get(&d.escalation_id)
                    .is_some_and(|(who, _)| *who == d.decided_by)
            {
                sent.remove(&d.escalation_id);
            }
            drop(sent);
            return Err(format!("{e}. Try again in a moment."));
        }
        self.metrics
            .answer_seconds
            .observe(started.elapsed().as_secs_f64());
        // A canary's answer counts only in the processor's canary metrics.
        if !entry.canary {
            self.metrics.answer(kind.as_str(), "sent");
            let reminded = self.reminded.lock().expect("not poisoned");
            if reminded.contains(&d.escalation_id) {
                self.metrics.after_reminder(&entry.role).inc();
            }
        }
        if let (Some(tier), false) = (entry.tier, entry.canary) {
            let (who, role) = (&entry.person, &entry.role);
            let opened = entry.first_viewed_at_ms;
            self.guard
                .answered(who, role, tier, kind, opened, entry.at_ms);
        }
        spawn_audit(self, entry);
        Ok(kind)
    }
}

pub(super) fn gone_entry(v: &Viewer, id: &str, g: &Gone, now: i64, via: Via) -> AuditEntry {
    AuditEntry {
        kind: AuditKind::Refused,
        person: v.name.clone(),
        role: g.role().to_string(),
        escalation_id: id.to_string(),
        action_id: String::new(),
        session_id: String::new(),
        at_ms: now,
        decision: None,
        first_viewed_at_ms: None,
        via,
        reason: None,
        rule_version: String::new(),
        tier: None,
        canary: false,
    }
}
