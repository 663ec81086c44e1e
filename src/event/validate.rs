//! Checks a decoded [`AgentAction`] before the matrix sees it: out-of-range or missing values
//! are dead letters, never guesses.

use super::AgentAction;
use crate::error::{Classify, ErrorClass};

/// Size limits on one event. Larger events are dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Maximum bytes of one text field (`request`, `summary`, `output`, `user_message`, `error`,
    /// `template_id`, each option and attribute value, each of `tool_call`'s, and the ids).
    pub max_text_bytes: usize,
    /// Maximum number of `options`.
    pub max_options: usize,
    /// Maximum number of `attributes`.
    pub max_attributes: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_text_bytes: 64 * 1024,
            max_options: 32,
            max_attributes: 64,
        }
    }
}

/// An event that decoded but cannot be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}` has value {value}: {reason}")]
pub struct EventError {
    /// The offending field, dotted for nested ones (`customer.id`).
    pub field: &'static str,
    /// The offending value, quoted and shortened for display.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Classify for EventError {
    fn class(&self) -> ErrorClass {
        ErrorClass::DeadLetter
    }
}

/// Quotes a value for an error message, shortened to keep messages and headers small.
pub(crate) fn shown(value: &str) -> String {
    const MAX: usize = 80;
    if value.len() <= MAX {
        format!("{value:?}")
    } else {
        let mut end = MAX;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}… ({} bytes)", &value[..end], value.len())
    }
}

fn invalid(field: &'static str, value: String, reason: &'static str) -> EventError {
    EventError {
        field,
        value,
        reason,
    }
}

fn non_empty(field: &'static str, value: &str) -> Result<(), EventError> {
    if value.trim().is_empty() {
        return Err(invalid(field, shown(value), "must not be empty"));
    }
    Ok(())
}

fn text(field: &'static str, value: &str, limits: &EventLimits) -> Result<(), EventError> {
    if value.len() > limits.max_text_bytes {
        return Err(invalid(
            field,
            shown(value),
            "is longer than the configured maximum text size",
        ));
    }
    Ok(())
}

/// True for `word(.word)*` where a word is `[a-z0-9_]+`.
pub fn is_action_type(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

impl AgentAction {
    /// Checks every field the matrix relies on. The first problem found is returned, naming
    /// the field and its value.
    pub fn validate(&self, limits: &EventLimits) -> Result<(), EventError> {
        self.validate_identity(limits)?;
        self.validate_texts(limits)?;
        self.validate_money()?;
        self.validate_customer(limits)?;
        self.validate_tool_call(limits)
    }

    /// Ids, time, action type and confidence.
    fn validate_identity(&self, limits: &EventLimits) -> Result<(), EventError> {
        for (field, id) in [
            ("action_id", &self.action_id),
            ("session_id", &self.session_id),
            ("agent_id", &self.agent_id),
            ("action_type", &self.action_type),
        ] {
            non_empty(field, id)?;
            text(field, id, limits)?;
        }
        if self.timestamp_ms <= 0 {
            return Err(invalid(
                "timestamp_ms",
                self.timestamp_ms.to_string(),
                "must be a positive Unix time in milliseconds",
            ));
        }
        if !is_action_type(&self.action_type) {
            return Err(invalid(
                "action_type",
                shown(&self.action_type),
                "must be dotted lower-case words, e.g. email.send",
            ));
        }
        if let Some(c) = self.confidence {
            if !(c.is_finite() && (0.0..=1.0).contains(&c)) {
                return Err(invalid(
                    "confidence",
                    c.to_string(),
                    "must be a number between 0 and 1, or null when the agent gives none",
                ));
            }
        }
        Ok(())
    }

    /// The tool call, when given: a name, and arguments that are a JSON object.
    fn validate_tool_call(&self, limits: &EventLimits) -> Result<(), EventError> {
        let Some(call) = &self.tool_call else {
            return Ok(());
        };
        non_empty("tool_call.name", &call.name)?;
        text("tool_call.name", &call.name, limits)?;
        text("tool_call.arguments", &call.arguments, limits)?;
        if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&call.arguments)
            .is_err()
        {
            return Err(invalid(
                "tool_call.arguments",
                shown(&call.arguments),
                "must be a JSON object as text",
            ));
        }
        for (field, value) in [
            ("tool_call.call_id", &call.call_id),
            ("tool_call.framework", &call.framework),
            ("tool_call.run_id", &call.run_id),
            ("tool_call.arguments_schema", &call.arguments_schema),
        ] {
            if let Some(v) = value {
                text(field, v, limits)?;
            }
        }
        if let Some(schema) = &call.arguments_schema {
            let parsed = serde_json::from_str::<serde_json::Value>(schema);
            if !matches!(
                parsed,
                Ok(serde_json::Value::Object(_) | serde_json::Value::Bool(_))
            ) {
                return Err(invalid(
                    "tool_call.arguments_schema",
                    shown(schema),
                    "must be a JSON Schema (an object or a boolean) as text",
                ));
            }
        }
        Ok(())
    }

    /// Text fields, options and attributes against the size limits.
    fn validate_texts(&self, limits: &EventLimits) -> Result<(), EventError> {
        text("request", &self.request, limits)?;
        text("summary", &self.summary, limits)?;
        for (field, value) in [
            ("output", &self.output),
            ("user_message", &self.user_message),
            ("error", &self.error),
            ("template_id", &self.template_id),
        ] {
            if let Some(v) = value {
                text(field, v, limits)?;
            }
        }
        if self.options.len() > limits.max_options {
            return Err(invalid(
                "options",
                format!("{} entries", self.options.len()),
                "has more entries than the configured maximum",
            ));
        }
        for o in &self.options {
            text("options", o, limits)?;
        }
        if self.attributes.len() > limits.max_attributes {
            return Err(invalid(
                "attributes",
                format!("{} entries", self.attributes.len()),
                "has more entries than the configured maximum",
            ));
        }
        for (k, v) in &self.attributes {
            text("attributes", k, limits)?;
            text("attributes", v, limits)?;
        }
        Ok(())
    }

    /// Amount and currency.
    fn validate_money(&self) -> Result<(), EventError> {
        if let Some(amount) = self.amount {
            if !(amount.is_finite() && amount >= 0.0) {
                return Err(invalid(
                    "amount",
                    amount.to_string(),
                    "must be a finite number, zero or more",
                ));
            }
        }
        if let Some(c) = &self.currency {
            if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                return Err(invalid(
                    "currency",
                    shown(c),
                    "must be a three-letter ISO 4217 code such as EUR",
                ));
            }
        }
        Ok(())
    }

    /// The customer, when given.
    fn validate_customer(&self, limits: &EventLimits) -> Result<(), EventError> {
        if let Some(customer) = &self.customer {
            non_empty("customer.id", &customer.id)?;
            text("customer.id", &customer.id, limits)?;
            if customer.prior_complaints < 0 {
                return Err(invalid(
                    "customer.prior_complaints",
                    customer.prior_complaints.to_string(),
                    "must be zero or more",
                ));
            }
        }
        Ok(())
    }
}
