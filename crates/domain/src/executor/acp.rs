//! The `acp` executor kind: any agent that speaks the Agent Client Protocol on its
//! standard input and output (`kiro-cli acp`, `gemini --acp`, `claude-agent-acp`, ...).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{env_map, max_run_seconds, string_list};
use crate::validation::Collector;

/// How an `acp` executor answers the agent's `session/request_permission`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcpPermission {
    /// Allows edits, reads, searches, fetches and thinking; refuses commands
    /// (`execute`) and anything the agent does not classify.
    #[default]
    AllowEdits,
    /// Allows every tool call.
    AllowAll,
    /// Refuses every tool call that asks.
    Deny,
}

impl AcpPermission {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AcpPermission::AllowEdits => "allow-edits",
            AcpPermission::AllowAll => "allow-all",
            AcpPermission::Deny => "deny",
        }
    }
}

impl fmt::Display for AcpPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Configuration of an `acp` executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcpConfig {
    /// The agent's command line, program first (e.g. `["kiro-cli", "acp"]`).
    pub command: Vec<String>,
    /// How permission requests are answered.
    #[serde(default)]
    pub permission: AcpPermission,
    /// A session mode to select (`session/set_mode`), when the agent offers modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A model to select (`session/set_model`), when the agent offers models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// A run duration limit below the guardrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_seconds: Option<u32>,
}

pub(super) fn parse_acp(errors: &mut Collector, map: &Map<String, Value>) -> Option<AcpConfig> {
    errors.reject_unknown(
        "config",
        map,
        &[
            "command",
            "permission",
            "mode",
            "model",
            "env",
            "maxRunSeconds",
        ],
    );
    let command = match map.get("command") {
        None | Some(Value::Null) => {
            errors.push(
                "config.command",
                "is required: the agent's command line, such as [\"kiro-cli\", \"acp\"]",
            );
            None
        }
        Some(_) => string_list(errors, map, "command"),
    };
    let command = command.and_then(|argv| {
        if argv.first().is_none_or(|program| program.trim().is_empty()) {
            errors.push("config.command", "must start with a non-blank program name");
            None
        } else {
            Some(argv)
        }
    });
    let permission = match errors.string("config", map, "permission", false) {
        None => Some(AcpPermission::AllowEdits),
        Some("allow-edits") => Some(AcpPermission::AllowEdits),
        Some("allow-all") => Some(AcpPermission::AllowAll),
        Some("deny") => Some(AcpPermission::Deny),
        Some(other) => {
            errors.push(
                "config.permission",
                format!("permission {other:?} is not one of allow-edits, allow-all, deny"),
            );
            None
        }
    };
    let mode = not_blank(errors, map, "mode");
    let model = not_blank(errors, map, "model");
    let env = env_map(errors, map);
    let max_run_seconds = max_run_seconds(errors, map);
    Some(AcpConfig {
        command: command?,
        permission: permission?,
        mode: mode?,
        model: model?,
        env: env?,
        max_run_seconds: max_run_seconds?,
    })
}

/// An optional string field that, when given, is not blank.
fn not_blank(
    errors: &mut Collector,
    map: &Map<String, Value>,
    key: &str,
) -> Option<Option<String>> {
    let before = errors.len();
    let value = errors.string("config", map, key, false).map(str::to_owned);
    if errors.len() != before {
        return None;
    }
    match value {
        Some(text) if text.trim().is_empty() => {
            errors.push(format!("config.{key}"), "must not be blank");
            None
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{ExecutorConfig, ExecutorDescriptor};

    #[test]
    fn an_acp_record_parses_with_defaults_and_round_trips() {
        let body = json!({
            "name": "kiro-acp", "kind": "acp", "taskTypes": ["code.change"],
            "config": {"command": ["kiro-cli", "acp"]}
        });
        let descriptor = ExecutorDescriptor::parse(&body).unwrap();
        let ExecutorConfig::Acp(config) = &descriptor.config else {
            panic!("unexpected {:?}", descriptor.config);
        };
        assert_eq!(config.permission, AcpPermission::AllowEdits);
        assert_eq!(config.command, ["kiro-cli", "acp"]);
        let wire = serde_json::to_value(&descriptor).unwrap();
        assert_eq!(wire["kind"], "acp");
        assert_eq!(wire["config"]["permission"], "allow-edits");
        let back: ExecutorDescriptor = serde_json::from_value(wire).unwrap();
        assert_eq!(back, descriptor);
    }

    #[test]
    fn every_bad_field_of_an_acp_record_is_reported() {
        let errors = ExecutorDescriptor::parse(&json!({
            "name": "a", "kind": "acp", "taskTypes": ["code.change"],
            "config": {"command": [" "], "permission": "ask", "mode": "", "model": 3,
                       "env": {"1X": "a"}, "maxRunSeconds": 0, "extra": true}
        }))
        .unwrap_err();
        for field in [
            "config.command",
            "config.permission",
            "config.mode",
            "config.model",
            "config.env.1X",
            "config.maxRunSeconds",
            "config.extra",
        ] {
            assert!(errors.mentions(field), "{field} missing from {errors}");
        }
        let missing = ExecutorDescriptor::parse(&json!({
            "name": "a", "kind": "acp", "taskTypes": ["code.change"]
        }))
        .unwrap_err();
        assert!(missing.mentions("config.command"), "{missing}");
    }
}
