//! Executor availability (requirement 2.2): which program an executor record starts,
//! and what the server knows of where it was last seen runnable.
//!
//! The program is read from the record's configuration as data — `config.binary`, else
//! the first word of `config.command` — so every kind that names its program either
//! way (`kiro`, `command`, and the argv-based kinds) is covered without a list of kinds.

use serde_json::Value;

use crate::executor::ExecutorDescriptor;
use crate::time::Timestamp;

/// The program `descriptor` starts (a path, or a name looked up on `PATH`); `None` when
/// its configuration names none.
pub fn program_of(descriptor: &ExecutorDescriptor) -> Option<String> {
    // A `stream` record may leave its argv to its format's default.
    if let crate::executor::ExecutorConfig::Stream(config) = &descriptor.config {
        return config.argv().into_iter().next().filter(|p| !p.is_empty());
    }
    let value = serde_json::to_value(&descriptor.config).ok()?;
    let config = value.get("config")?;
    if let Some(binary) = config.get("binary").and_then(Value::as_str) {
        return Some(binary.to_owned()).filter(|b| !b.is_empty());
    }
    config
        .get("command")
        .and_then(Value::as_array)
        .and_then(|argv| argv.first())
        .and_then(Value::as_str)
        .filter(|program| !program.is_empty())
        .map(str::to_owned)
}

/// What the server knows of an executor's availability: when a worker last reported its
/// program found, how many workers did within the window, and the newest version seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorSeen {
    /// The last report that found its program.
    pub last_seen_at: Timestamp,
    /// How many workers reported it found within the availability window.
    pub workers: u32,
    /// The version the most recent report gave (`--version`'s first line), if any.
    pub version: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(body: Value) -> ExecutorDescriptor {
        ExecutorDescriptor::parse(&body).expect("a valid record")
    }

    #[test]
    fn program_is_the_binary_or_the_first_word_of_the_command() {
        let kiro = record(
            json!({"name": "k", "kind": "kiro", "taskTypes": ["code.change"],
            "config": {"binary": "/opt/kiro/kiro-cli"}}),
        );
        assert_eq!(program_of(&kiro).as_deref(), Some("/opt/kiro/kiro-cli"));
        let command = record(
            json!({"name": "c", "kind": "command", "taskTypes": ["code.change"],
            "config": {"command": ["claude", "-p", "{prompt}"]}}),
        );
        assert_eq!(program_of(&command).as_deref(), Some("claude"));
    }
}

#[cfg(test)]
mod harness_tests {
    use serde_json::json;

    use crate::executor::{ExecutorConfig, ExecutorDescriptor, KiroHarness};

    #[test]
    fn the_kiro_harness_defaults_to_v2_and_takes_only_v2_or_v3() {
        let parse = |harness: serde_json::Value| {
            ExecutorDescriptor::parse(&json!({"name": "k", "kind": "kiro",
                "taskTypes": ["code.change"], "config": {"harness": harness}}))
        };
        let harness_of = |descriptor: ExecutorDescriptor| match descriptor.config {
            ExecutorConfig::Kiro(config) => config.harness,
            other => panic!("{other:?}"),
        };
        assert_eq!(harness_of(parse(json!(null)).unwrap()), KiroHarness::V2);
        assert_eq!(harness_of(parse(json!("v3")).unwrap()), KiroHarness::V3);
        let errors = parse(json!("v4")).unwrap_err();
        assert!(errors.mentions("config.harness"), "{errors}");
        assert_eq!(KiroHarness::V3.flag(), "--v3");
    }
}
