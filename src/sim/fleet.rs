//! The synthetic agent fleet: a realistic, seeded stream of agent actions. Sessions run for
//! several turns; a small share of events needs a human (about 5% with the default mix and the
//! default matrix); a configurable share of records can be malformed on purpose.

use crate::event::{ActionStatus, AgentAction, Customer, CustomerTier};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// How the fleet behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetConfig {
    /// Seed: the same seed gives the same events.
    pub seed: u64,
    /// Multiplies the probability of every trigger-inducing situation (1.0 = production-like
    /// mix, about 5% needing a human; higher for samples rich in triggers).
    pub trigger_boost: f64,
    /// Share of records to corrupt (see [`Fleet::next_record_json`]).
    pub malformed_share: f64,
    /// Concurrent sessions.
    pub sessions: usize,
    /// Timestamp of the first event.
    pub start_ms: i64,
    /// Milliseconds between events.
    pub step_ms: i64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            seed: 7,
            trigger_boost: 1.0,
            malformed_share: 0.0,
            sessions: 64,
            start_ms: 1_798_761_600_000, // 2027-01-01T00:00:00Z
            step_ms: 250,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    id: String,
    agent: usize,
    customer: Option<Customer>,
    turns_left: u32,
    /// A struggling session keeps low confidence turn after turn.
    struggling: bool,
}

/// An agent of the fleet and the action types it uses, with weights.
struct AgentKind {
    name: &'static str,
    actions: &'static [(&'static str, u32)],
    customer_facing: bool,
}

const AGENTS: &[AgentKind] = &[
    AgentKind {
        name: "support-bot",
        actions: &[
            ("chat.reply", 30),
            ("email.send", 30),
            ("faq.answer", 20),
            ("crm.update", 14),
            ("refund.issue", 1),
            ("loan.quote", 1),
        ],
        customer_facing: true,
    },
    AgentKind {
        name: "research-assistant",
        actions: &[
            ("research.search", 50),
            ("research.summarize", 25),
            ("notes.write", 20),
            ("blog.draft", 4),
            ("blog.publish", 1),
        ],
        customer_facing: false,
    },
    AgentKind {
        name: "trading-agent",
        actions: &[
            ("monitor.market", 40),
            ("trade.execute", 45),
            ("risk.alert", 14),
            ("payment.transfer", 1),
        ],
        customer_facing: false,
    },
    AgentKind {
        name: "ops-agent",
        actions: &[
            ("monitor.health", 45),
            ("backup.run", 20),
            ("deploy.staging", 25),
            ("deploy.production", 2),
            ("config.change", 1),
            ("data.delete", 1),
            ("file.delete", 1),
            ("cache.flush", 1),
        ],
        customer_facing: false,
    },
];

const AGENT_WEIGHTS: &[u32] = &[40, 25, 20, 15];

const FIRST_NAMES: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Goran", "Hana",
];
const PRODUCTS: &[&str] = &[
    "savings account",
    "travel card",
    "home loan",
    "broadband plan",
    "premium subscription",
];
const SYMBOLS: &[&str] = &["ACME", "GLOBX", "INITECH", "UMBRL", "STARK"];
const SYSTEMS: &[&str] = &["payments-api", "ledger", "search", "auth", "billing-db"];

const POLICY_SNIPPETS: &[&str] = &[
    "If this is not fixed today I will take legal action.",
    "My lawyer says this could be fraud.",
    "I have had chest pain since the delivery arrived, what should I do?",
    "Please stop or I'm going to sue you.",
];
const HUMAN_SNIPPETS: &[&str] = &[
    "Can I speak to a person please?",
    "I want to talk to a human, not a bot.",
    "Get me a real agent.",
];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn weighted(rng: &mut ChaCha8Rng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().sum();
    let mut x = rng.random_range(0..total);
    for (i, w) in weights.enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    0
}

/// The fleet: call [`Fleet::next_event`] for each new event.
pub struct Fleet {
    cfg: FleetConfig,
    rng: ChaCha8Rng,
    sessions: Vec<Session>,
    next_session: u64,
    next_action: u64,
    now_ms: i64,
}

impl Fleet {
    /// A new fleet.
    pub fn new(cfg: FleetConfig) -> Self {
        Fleet {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            sessions: Vec::new(),
            next_session: 0,
            next_action: 0,
            now_ms: cfg.start_ms,
            cfg,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng
            .random_bool((p * self.cfg.trigger_boost).clamp(0.0, 1.0))
    }

    fn new_session(&mut self) -> Session {
        let agent = weighted(&mut self.rng, AGENT_WEIGHTS.iter().copied());
        let kind = &AGENTS[agent];
        let customer = if kind.customer_facing {
            let tier = if self.chance(0.015) {
                CustomerTier::Vip
            } else if self.chance(0.02) {
                CustomerTier::Premium
            } else {
                CustomerTier::Standard
            };
            let complaints = if self.rng.random_bool(0.1) {
                self.rng.random_range(1..6)
            } else {
                0
            };
            Some(Customer {
                id: format!("cust-{:06}", self.rng.random_range(0..1_000_000)),
                tier,
                prior_complaints: complaints,
            })
        } else {
            None
        };
        let struggling = self.chance(0.003);
        self.next_session += 1;
        Session {
            id: format!("sess-{:08x}-{}", self.cfg.seed as u32, self.next_session),
            agent,
            customer,
            turns_left: self.rng.random_range(2..9),
            struggling,
        }
    }

    /// The next event of the fleet, valid against the schema.
    pub fn next_event(&mut self) -> AgentAction {
        while self.sessions.len() < self.cfg.sessions.max(1) {
            let s = self.new_session();
            self.sessions.push(s);
        }
        let si = self.rng.random_range(0..self.sessions.len());
        let session = self.sessions[si].clone();
        if self.sessions[si].turns_left <= 1 {
            self.sessions.swap_remove(si);
        } else {
            self.sessions[si].turns_left -= 1;
        }
        self.now_ms += self.cfg.step_ms;
        self.next_action += 1;
        let kind = &AGENTS[session.agent];
        let ai = weighted(&mut self.rng, kind.actions.iter().map(|(_, w)| *w));
        let action_type = kind.actions[ai].0.to_string();
        self.build(session, kind, action_type)
    }

    fn build(&mut self, session: Session, kind: &AgentKind, action_type: String) -> AgentAction {
        let name = *pick(&mut self.rng, FIRST_NAMES);
        let product = *pick(&mut self.rng, PRODUCTS);
        let order = self.rng.random_range(10_000..99_999);
        let mut attributes = BTreeMap::new();
        let mut amount = None;
        let mut currency = None;
        let mut options = Vec::new();
        let mut template_id = None;
        let mut reversible = true;
        let mut affects_others = false;
        let mut user_message = None;
        let family = action_type.split('.').next().unwrap_or("");

        let (request, summary, output) = match family {
            "chat" | "email" | "faq" | "crm" | "refund" | "loan" => {
                attributes.insert(
                    "channel".into(),
                    if family == "email" { "email" } else { "chat" }.into(),
                );
                attributes.insert("order_id".into(), order.to_string());
                attributes.insert("product".into(), product.into());
                if family == "loan" {
                    attributes.insert("loan_type".into(), "mortgage".into());
                }
                let msg = format!(
                    "Hi, this is {name}. My order {order} for the {product} still has not arrived and \
                     nobody has answered my last two messages. Could you tell me where it is and when \
                     I can expect it? I was promised delivery within five business days."
                );
                user_message = Some(msg.clone());
                if family == "email" || family == "faq" {
                    if self.rng.random_bool(0.9) {
                        template_id =
                            Some(format!("tpl-{}-{}", family, self.rng.random_range(1..12)));
                    }
                    affects_others = false;
                }
                if family == "refund" {
                    amount = Some(self.rng.random_range(20.0..900.0_f64).round());
                    currency = Some("EUR".into());
                }
                if family == "loan" {
                    amount = Some(self.rng.random_range(50_000.0..400_000.0_f64).round());
                    currency = Some("EUR".into());
                }
                (
                    format!(
                        "Customer {name} asks about order {order} ({product}): delivery is late and \
                         previous messages went unanswered. Answer the customer and update the case."
                    ),
                    format!("Looked up order {order}, found the shipment delayed at the carrier, drafted a reply with the new delivery date and logged the contact in the CRM."),
                    Some(format!(
                        "Dear {name}, thank you for your patience. Your order {order} for the {product} \
                         is delayed at our carrier and will now arrive within three business days. We are \
                         sorry for the wait and have added a note to your account so this is followed up."
                    )),
                )
            }
            "trade" | "monitor" | "risk" | "payment" if kind.name == "trading-agent" => {
                let sym = *pick(&mut self.rng, SYMBOLS);
                let price: f64 = self.rng.random_range(20.0..400.0);
                let qty: u32 = self.rng.random_range(1..25);
                attributes.insert("symbol".into(), sym.into());
                attributes.insert("venue".into(), "XNAS".into());
                attributes.insert("price".into(), format!("{price:.2}"));
                attributes.insert(
                    "price_change_pct".into(),
                    format!("{:.2}", self.rng.random_range(-1.5..1.5)),
                );
                attributes.insert(
                    "volume".into(),
                    self.rng.random_range(10_000..2_000_000).to_string(),
                );
                if family == "trade" || family == "payment" {
                    amount = Some((price * qty as f64).round());
                    currency = Some("USD".into());
                    reversible = false;
                }
                (
                    format!("Rebalance the portfolio towards target weights: {sym} is under target by {qty} shares at a last price of {price:.2}. Keep the order within the daily risk limit and report the fill."),
                    format!("Computed the drift for {sym}, checked the risk limit and market depth, and prepared a limit order for {qty} shares at {price:.2} on XNAS."),
                    Some(format!("BUY {qty} {sym} LIMIT {price:.2} DAY on XNAS; expected slippage under 5 bps; risk usage after fill 42% of the daily limit.")),
                )
            }
            "monitor" | "backup" | "deploy" | "config" | "data" | "file" | "cache" => {
                let sys = *pick(&mut self.rng, SYSTEMS);
                attributes.insert("system".into(), sys.into());
                attributes.insert("service".into(), sys.into());
                attributes.insert("region".into(), "eu-west-1".into());
                attributes.insert(
                    "host".into(),
                    format!("{sys}-{}", self.rng.random_range(1..9)),
                );
                if matches!(family, "deploy" | "config") {
                    attributes.insert(
                        "deploy_id".into(),
                        format!("d-{}", self.rng.random_range(1000..9999)),
                    );
                    affects_others = family == "deploy" && action_type.ends_with("production");
                }
                if matches!(family, "data" | "file") {
                    reversible = false;
                }
                (
                    format!("Routine operations for {sys}: check health, run the scheduled job and roll out the approved change if the checks pass. Page nobody unless the service degrades."),
                    format!("Checked {sys} health (p99 latency 180 ms, error rate 0.02%), ran the scheduled task and prepared the change set for rollout."),
                    Some(format!("Plan: drain one node of {sys} at a time, apply the change, wait for health checks to pass, continue; abort and roll back on any error budget burn above 2%.")),
                )
            }
            _ => {
                let topic = *pick(&mut self.rng, PRODUCTS);
                if action_type == "blog.publish" {
                    affects_others = true;
                }
                (
                    format!("Research the market for {topic} products in Europe: main competitors, price ranges and what customers complain about most. Summarise in a short internal note with sources."),
                    format!("Searched 14 sources on {topic}, extracted prices and common complaints, and wrote a two-paragraph internal note with links."),
                    Some(format!("Internal note: the {topic} market has four main competitors; prices range widely; the most common complaints are slow support and hidden fees. Sources attached.")),
                )
            }
        };

        let mut status = ActionStatus::Proposed;
        let mut error = None;
        let mut confidence: f64 = self.rng.random_range(0.84..0.995);
        let mut request = request;

        if session.struggling || self.chance(0.004) {
            confidence = self.rng.random_range(0.35..0.66);
        }
        if self.chance(0.003) {
            status = ActionStatus::Failed;
            error = Some(
                "upstream timeout after 3 retries: 504 Gateway Timeout from payments-api".into(),
            );
        } else if family == "research" || family == "notes" {
            status = ActionStatus::Completed;
        }
        if self.chance(0.003) {
            options = vec![
                "Option A: full refund now".into(),
                "Option B: replacement with express shipping".into(),
                "Option C: store credit plus 10%".into(),
            ];
            options.truncate(self.rng.random_range(2..4));
        }
        if user_message.is_some() && self.chance(0.002) {
            let s = *pick(&mut self.rng, POLICY_SNIPPETS);
            user_message = Some(format!("{} {s}", user_message.unwrap_or_default()));
        } else if family == "research" && self.chance(0.002) {
            request.push_str(" Include any money laundering cases reported in the press.");
        }
        if user_message.is_some() && self.chance(0.003) {
            let s = *pick(&mut self.rng, HUMAN_SNIPPETS);
            user_message = Some(format!("{} {s}", user_message.unwrap_or_default()));
        }
        if family == "trade" && self.chance(0.003) {
            amount = Some(self.rng.random_range(12_000.0..80_000.0_f64).round());
        }
        if kind.name == "trading-agent" && self.chance(0.001) {
            attributes.insert("anomaly".into(), "flash_crash".into());
            attributes.insert(
                "price_change_pct".into(),
                format!("{:.2}", self.rng.random_range(-12.0..-6.0)),
            );
        }

        AgentAction {
            action_id: format!("act-{:08x}-{}", self.cfg.seed as u32, self.next_action),
            session_id: session.id,
            agent_id: kind.name.to_string(),
            timestamp_ms: self.now_ms,
            action_type,
            confidence: Some((confidence * 1000.0).round() / 1000.0),
            request,
            summary,
            output,
            template_id,
            options,
            status,
            error,
            amount,
            currency,
            customer: session.customer,
            reversible,
            affects_others,
            user_message,
            attributes,
            tool_call: None,
        }
    }

    /// The next record as a plain Avro datum (and its key, the session id), stamped with
    /// `now_ms`; with probability `malformed_share` it is corrupted: truncated, a value out of
    /// range, or bytes that are not Avro at all.
    pub fn next_record_avro(
        &mut self,
        codec: &crate::event::Codec,
        now_ms: i64,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut event = self.next_event();
        event.timestamp_ms = now_ms;
        let key = event.session_id.clone().into_bytes();
        let corrupt = self.cfg.malformed_share > 0.0
            && self.rng.random_bool(self.cfg.malformed_share.min(1.0));
        let kind = if corrupt {
            self.rng.random_range(0..3)
        } else {
            3
        };
        if kind == 1 {
            event.confidence = Some(7.5);
        }
        let mut bytes = codec
            .encode(crate::event::SchemaKind::AgentAction, &event)
            .expect("events encode");
        match kind {
            0 => bytes.truncate(bytes.len() / 2),
            2 => bytes = b"\xff\xfe not an avro datum".to_vec(),
            _ => {}
        }
        (key, bytes)
    }

    /// The next record as a JSON line; with probability `malformed_share` it is corrupted in
    /// one of several ways (truncated JSON, confidence out of range, a required field missing).
    pub fn next_record_json(&mut self) -> String {
        let event = self.next_event();
        let line = serde_json::to_string(&event).expect("events serialize");
        if self.cfg.malformed_share > 0.0 && self.rng.random_bool(self.cfg.malformed_share.min(1.0))
        {
            return match self.rng.random_range(0..3) {
                0 => line[..line.len() / 2].to_string(),
                1 => line.replacen("\"confidence\":", "\"confidence\":1", 1),
                _ => {
                    let mut v: serde_json::Value = serde_json::from_str(&line).expect("valid");
                    v.as_object_mut().expect("object").remove("session_id");
                    v.to_string()
                }
            };
        }
        line
    }
}
