//! The tool call behind an action, as an agent framework paused it for approval, and a
//! person's revision of its arguments: a JSON object, checked against the tool's argument
//! schema when the action carries one, kept in canonical form (RFC 8785) so the same
//! arguments are the same bytes whoever wrote them.

use serde::{Deserialize, Serialize};

/// A tool call an agent framework paused for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The arguments: a JSON object as text (canonical, RFC 8785, when handoff's gateway or
    /// clients wrote it).
    pub arguments: String,
    /// The framework's id of this call.
    #[serde(default)]
    pub call_id: Option<String>,
    /// The framework (`openai-agents`, `langgraph`, `mcp`, `ai-sdk`, …).
    #[serde(default)]
    pub framework: Option<String>,
    /// The framework's run, thread or interrupt id the call is paused in.
    #[serde(default)]
    pub run_id: Option<String>,
    /// The tool's argument JSON Schema as text, when known.
    #[serde(default)]
    pub arguments_schema: Option<String>,
}

impl ToolCall {
    /// Rewrites `arguments` in canonical form (RFC 8785), so that the same call is the same
    /// text whoever wrote it. Arguments that are not JSON are left as they are (validation
    /// refuses them).
    pub fn canonicalize(&mut self) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&self.arguments) else {
            return;
        };
        if let Ok(text) = serde_json_canonicalizer::to_string(&value) {
            self.arguments = text;
        }
    }

    /// `revised` — a person's edit of the arguments — as the canonical JSON text of an object
    /// the tool accepts, or why it is not one (in words for that person).
    pub fn revise(&self, revised: &str) -> Result<String, String> {
        let value: serde_json::Value = serde_json::from_str(revised)
            .map_err(|e| format!("the revised arguments are not JSON: {e}"))?;
        if !value.is_object() {
            return Err(format!(
                "the revised arguments must be a JSON object ({{\"name\": value, …}}), found {}",
                kind(&value)
            ));
        }
        if let Some(schema) = &self.arguments_schema {
            check_against(schema, &value, &self.name)?;
        }
        serde_json_canonicalizer::to_string(&value)
            .map_err(|e| format!("the revised arguments cannot be written canonically: {e}"))
    }
}

/// Checks `value` against the JSON Schema `schema` (text), naming every place it fails.
fn check_against(schema: &str, value: &serde_json::Value, tool: &str) -> Result<(), String> {
    let schema: serde_json::Value = serde_json::from_str(schema)
        .map_err(|e| format!("the argument schema of {tool} is not JSON: {e}"))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("the argument schema of {tool} is not a JSON Schema: {e}"))?;
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() {
                "the arguments".to_string()
            } else {
                at
            };
            format!("{at}: {e}")
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the revised arguments do not fit the argument schema of {tool}: {}",
        problems.join("; ")
    ))
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(schema: Option<&str>) -> ToolCall {
        ToolCall {
            name: "issue_refund".into(),
            arguments: r#"{"amount":1200,"order_id":"o-7"}"#.into(),
            call_id: None,
            framework: None,
            run_id: None,
            arguments_schema: schema.map(str::to_string),
        }
    }

    const SCHEMA: &str = r#"{"type":"object","properties":{"amount":{"type":"number","maximum":500},
        "order_id":{"type":"string"}},"required":["amount","order_id"],"additionalProperties":false}"#;

    #[test]
    fn a_revision_is_kept_canonical_and_checked_against_the_tools_schema() {
        // Canonical: keys sorted, no spaces, numbers as ECMAScript writes them.
        let c = call(None);
        assert_eq!(
            c.revise("{ \"order_id\": \"o-7\", \"amount\": 250.50 }"),
            Ok(r#"{"amount":250.5,"order_id":"o-7"}"#.to_string())
        );
        let c = call(Some(SCHEMA));
        assert_eq!(
            c.revise(r#"{"order_id":"o-7","amount":250}"#),
            Ok(r#"{"amount":250,"order_id":"o-7"}"#.to_string())
        );
        let over = c.revise(r#"{"order_id":"o-7","amount":900}"#).unwrap_err();
        assert!(over.contains("/amount") && over.contains("500"), "{over}");
        let missing = c.revise(r#"{"amount":100}"#).unwrap_err();
        assert!(missing.contains("order_id"), "{missing}");
        for (bad, said) in [
            ("[1, 2]", "found an array"),
            ("\"refund\"", "found a string"),
            ("{\"amount\": ", "not JSON"),
        ] {
            let e = c.revise(bad).unwrap_err();
            assert!(e.contains(said), "{bad}: {e}");
        }
        let broken = call(Some("{\"type\": 7}")).revise("{}").unwrap_err();
        assert!(broken.contains("not a JSON Schema"), "{broken}");
    }
}
