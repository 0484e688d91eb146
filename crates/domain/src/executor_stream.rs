//! The `stream` executor kind: an agent CLI that prints its work as a JSON event stream
//! (one JSON object per line on stdout), read into run events by a parser per
//! [`StreamFormat`].
//!
//! The prompt goes to the agent's standard input unless the argv names `{prompt}` (an
//! argument is visible to every local user in `ps`); each format's default argv reads
//! it from standard input.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::executor::{env_map, max_run_seconds, string_list};
use crate::validation::Collector;

/// Which agent's event stream a `stream` executor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamFormat {
    /// Claude Code's `--output-format stream-json --verbose`.
    Claude,
    /// Codex's `codex exec --json`.
    Codex,
    /// Gemini CLI's `--output-format stream-json`.
    Gemini,
}

impl StreamFormat {
    /// Every format, in the order the docs list them.
    pub const ALL: [StreamFormat; 3] = [
        StreamFormat::Claude,
        StreamFormat::Codex,
        StreamFormat::Gemini,
    ];

    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamFormat::Claude => "claude",
            StreamFormat::Codex => "codex",
            StreamFormat::Gemini => "gemini",
        }
    }

    /// The argv used when a record names none: headless, JSON events on stdout, edits
    /// allowed inside the working directory, the prompt on standard input.
    pub fn default_command(self) -> Vec<String> {
        let argv: &[&str] = match self {
            StreamFormat::Claude => &[
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
                "acceptEdits",
            ],
            // `-`: the prompt is read from standard input. Codex's own sandbox
            // (`-s workspace-write`) cannot write inside the run's Landlock sandbox
            // (observed with 0.171.0: "Failed to write file"), which confines it
            // instead: its workspace, output, home and temp directories.
            StreamFormat::Codex => &[
                "codex",
                "exec",
                "--json",
                "--skip-git-repo-check",
                "-s",
                "danger-full-access",
                "-",
            ],
            // `-p` is appended to what standard input holds: empty, the prompt is stdin.
            StreamFormat::Gemini => &[
                "gemini",
                "-p",
                "",
                "--output-format",
                "stream-json",
                "--yolo",
            ],
        };
        argv.iter().map(|arg| (*arg).to_owned()).collect()
    }
}

impl fmt::Display for StreamFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Configuration of a `stream` executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamConfig {
    /// The event stream's format.
    pub format: StreamFormat,
    /// The argv template (`{prompt}`, `{workdir}`, `{outdir}` substituted); the
    /// format's [`StreamFormat::default_command`] when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// A run duration limit below the guardrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_seconds: Option<u32>,
}

impl StreamConfig {
    /// The argv template to run: the record's, else the format's default.
    pub fn argv(&self) -> Vec<String> {
        if self.command.is_empty() {
            self.format.default_command()
        } else {
            self.command.clone()
        }
    }

    /// Whether the prompt is an argument (the argv names `{prompt}`) rather than
    /// standard input.
    pub fn prompt_in_argv(&self) -> bool {
        self.argv().iter().any(|arg| arg.contains("{prompt}"))
    }
}

/// Reads a `stream` record's `config`, naming every bad field.
pub(crate) fn parse_stream(
    errors: &mut Collector,
    map: &Map<String, Value>,
) -> Option<StreamConfig> {
    errors.reject_unknown(
        "config",
        map,
        &["format", "command", "env", "maxRunSeconds"],
    );
    let allowed = || {
        StreamFormat::ALL
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let format = match errors.string("config", map, "format", true) {
        None => None,
        Some(text) => match StreamFormat::ALL.into_iter().find(|f| f.as_str() == text) {
            Some(format) => Some(format),
            None => {
                errors.push(
                    "config.format",
                    format!("format {text:?} is not one of {}", allowed()),
                );
                None
            }
        },
    };
    let command = string_list(errors, map, "command").and_then(|argv| {
        let given = matches!(map.get("command"), Some(Value::Array(_)));
        let blank_program = argv.first().is_none_or(|program| program.trim().is_empty());
        if given && blank_program {
            errors.push(
                "config.command",
                "must start with a non-blank program name (or be left out for the format's default)",
            );
            None
        } else {
            Some(argv)
        }
    });
    let env = env_map(errors, map);
    let max_run_seconds = max_run_seconds(errors, map);
    Some(StreamConfig {
        format: format?,
        command: command?,
        env: env?,
        max_run_seconds: max_run_seconds?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::executor::{ExecutorConfig, ExecutorDescriptor};

    use super::*;

    #[test]
    fn a_stream_record_parses_with_the_formats_default_argv() {
        let descriptor = ExecutorDescriptor::parse(&json!({
            "name": "claude-code", "kind": "stream", "taskTypes": ["code.change"],
            "config": {"format": "claude", "env": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}},
            "sandbox": {"env": ["ANTHROPIC_*"]}
        }))
        .unwrap();
        let ExecutorConfig::Stream(config) = &descriptor.config else {
            panic!("unexpected {:?}", descriptor.config)
        };
        assert_eq!(config.format, StreamFormat::Claude);
        assert_eq!(config.argv()[0], "claude");
        assert!(
            !config.prompt_in_argv(),
            "the default argv reads the prompt from stdin"
        );
        let wire = serde_json::to_value(&descriptor).unwrap();
        assert_eq!(wire["kind"], "stream");
        assert_eq!(wire["config"]["format"], "claude");
        let back: ExecutorDescriptor = serde_json::from_value(wire).unwrap();
        assert_eq!(back, descriptor);
    }

    #[test]
    fn an_argv_naming_the_prompt_passes_it_as_an_argument() {
        let descriptor = ExecutorDescriptor::parse(&json!({
            "name": "g", "kind": "stream", "taskTypes": ["code.change"],
            "config": {"format": "gemini", "command": ["gemini", "-p", "{prompt}", "-o", "stream-json"]}
        }))
        .unwrap();
        let ExecutorConfig::Stream(config) = &descriptor.config else {
            panic!("unexpected {:?}", descriptor.config)
        };
        assert!(config.prompt_in_argv());
    }

    #[test]
    fn every_bad_field_of_a_stream_record_is_named() {
        let errors = ExecutorDescriptor::parse(&json!({
            "name": "s", "kind": "stream", "taskTypes": ["code.change"],
            "config": {"format": "aider", "command": [" ", 3], "env": {"1A": 2},
                       "maxRunSeconds": 0, "extra": true}
        }))
        .unwrap_err();
        for field in [
            "config.format",
            "config.command[1]",
            "config.env.1A",
            "config.maxRunSeconds",
            "config.extra",
        ] {
            assert!(errors.mentions(field), "{field} missing from {errors}");
        }
        assert!(
            errors
                .to_string()
                .contains("not one of claude, codex, gemini")
        );
        let errors = ExecutorDescriptor::parse(&json!({
            "name": "s", "kind": "stream", "taskTypes": ["code.change"],
            "config": {"command": [" "]}
        }))
        .unwrap_err();
        assert!(errors.mentions("config.format"), "{errors}");
        assert!(errors.mentions("config.command"), "{errors}");
        let errors = ExecutorDescriptor::parse(&json!({
            "name": "s", "kind": "stream", "taskTypes": ["code.change"]
        }))
        .unwrap_err();
        assert!(errors.mentions("config.format"), "{errors}");
        let errors = ExecutorDescriptor::parse(&json!({
            "name": "s", "kind": "stream", "taskTypes": ["code.change"],
            "config": {"format": "codex", "command": []}
        }))
        .unwrap_err();
        assert!(errors.mentions("config.command"), "{errors}");
    }
}
