//! Executors: the agents that do the work, registered as data.
//!
//! An [`ExecutorDescriptor`] is a registry record (`PK=SYS, SK=EXEC#{name}`): a name, the
//! task types it serves and its configuration. Two kinds are built in: `kiro` (the Kiro
//! CLI) and `command` (any CLI from an argv template), so a new agent is a new record,
//! not a code change. The [`Executor`] trait is what a worker runs a TaskSpec with.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::artifact::{ArtifactName, ArtifactType};
use crate::event::EventPayload;
pub use crate::executor_stream::{StreamConfig, StreamFormat};
use crate::id::{RunId, WorkspaceId};
use crate::run::{RunError, Usage};
use crate::sandbox::SandboxGrants;
use crate::task_spec::{TaskSpec, TaskType};
use crate::time::Timestamp;
use crate::validation::{Collector, ValidationErrors, kind};

mod acp;
pub use acp::{AcpConfig, AcpPermission};

/// The placeholders a `command` executor's argv may contain.
pub const PLACEHOLDERS: [&str; 3] = ["{prompt}", "{workdir}", "{outdir}"];

/// An executor's name: 1 to 63 characters of `a-z`, `0-9` and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExecutorName(String);

/// Why an executor name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a valid executor name; use 1 to 63 characters of a-z, 0-9 and '-', starting with a letter"
)]
pub struct ExecutorNameError(pub String);

impl ExecutorName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ExecutorName {
    type Err = ExecutorNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = (1..=63).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(ExecutorName(text.to_owned()))
        } else {
            Err(ExecutorNameError(text.to_owned()))
        }
    }
}

impl TryFrom<String> for ExecutorName {
    type Error = ExecutorNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ExecutorName> for String {
    fn from(name: ExecutorName) -> String {
        name.0
    }
}

impl fmt::Display for ExecutorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a `command` executor receives the prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptVia {
    /// Substituted for `{prompt}` in the argv.
    #[default]
    Arg,
    /// Written to the process's standard input.
    Stdin,
}

/// Configuration of a `kiro` executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KiroConfig {
    /// The kiro-cli binary, a path or a name on `PATH`.
    pub binary: String,
    /// The Kiro agent to use (`--agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Extra arguments passed to `kiro-cli chat`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// Whether to check `kiro-cli whoami` before running.
    #[serde(default)]
    pub preflight: bool,
    /// A run duration limit below the guardrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_seconds: Option<u32>,
    /// The chat harness kiro-cli runs (`--v2` or `--v3`), always passed explicitly.
    #[serde(default)]
    pub harness: KiroHarness,
}

/// The chat harness of headless `kiro-cli chat`. kiro-cli runs V2 unless `--v2` or
/// `--v3` is passed; the executor passes one always, so a kiro-cli upgrade that changes
/// its default does not silently change the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KiroHarness {
    /// `--v2` (the default: what headless kiro-cli runs without a flag, the harness this
    /// executor's transcript handling and credits line were written and tested against).
    #[default]
    V2,
    /// `--v3`.
    V3,
}

impl KiroHarness {
    /// The flag that selects it.
    pub fn flag(self) -> &'static str {
        match self {
            KiroHarness::V2 => "--v2",
            KiroHarness::V3 => "--v3",
        }
    }
}

/// Configuration of a `command` executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandConfig {
    /// The argv template; `{prompt}`, `{workdir}` and `{outdir}` are substituted.
    pub command: Vec<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How the prompt is passed.
    #[serde(default)]
    pub prompt_via: PromptVia,
    /// A run duration limit below the guardrail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_run_seconds: Option<u32>,
}

/// The kind of an executor and its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "config", rename_all = "lowercase")]
pub enum ExecutorConfig {
    /// The Kiro CLI.
    Kiro(KiroConfig),
    /// Any CLI, from an argv template.
    Command(CommandConfig),
    /// Any agent speaking the Agent Client Protocol on its standard input and output.
    Acp(AcpConfig),
    /// An agent CLI whose standard output is a JSON event stream (Claude Code, Codex,
    /// Gemini CLI), read into run events.
    Stream(StreamConfig),
}

impl ExecutorConfig {
    /// The kind's wire name: `kiro` or `command`.
    pub fn kind(&self) -> &'static str {
        match self {
            ExecutorConfig::Kiro(_) => "kiro",
            ExecutorConfig::Command(_) => "command",
            ExecutorConfig::Acp(_) => "acp",
            ExecutorConfig::Stream(_) => "stream",
        }
    }

    /// The executor's own run duration limit, if it sets one.
    pub fn max_run_seconds(&self) -> Option<u32> {
        match self {
            ExecutorConfig::Kiro(config) => config.max_run_seconds,
            ExecutorConfig::Command(config) => config.max_run_seconds,
            ExecutorConfig::Acp(config) => config.max_run_seconds,
            ExecutorConfig::Stream(config) => config.max_run_seconds,
        }
    }
}

/// A registry record: an executor that can serve some task types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorDescriptor {
    /// Its unique name.
    pub name: ExecutorName,
    /// The task types it serves; never empty.
    pub task_types: BTreeSet<TaskType>,
    /// Its kind and configuration.
    #[serde(flatten)]
    pub config: ExecutorConfig,
    /// What its agent may reach beyond its run (records stored before grants existed
    /// grant nothing more).
    #[serde(default, skip_serializing_if = "SandboxGrants::is_default")]
    pub sandbox: SandboxGrants,
}

impl ExecutorDescriptor {
    /// Whether it serves `task_type`.
    pub fn serves(&self, task_type: TaskType) -> bool {
        self.task_types.contains(&task_type)
    }

    /// Parses a registry record (`{"name","kind","taskTypes","config","sandbox"}`),
    /// reporting every bad or missing field.
    pub fn parse(body: &Value) -> Result<ExecutorDescriptor, ValidationErrors> {
        let mut errors = Collector::new();
        let descriptor = errors.object("", body).and_then(|map| {
            errors.reject_unknown("", map, &["name", "kind", "taskTypes", "config", "sandbox"]);
            parse_descriptor(&mut errors, map)
        });
        errors.finish(descriptor)
    }
}

fn parse_descriptor(
    errors: &mut Collector,
    map: &Map<String, Value>,
) -> Option<ExecutorDescriptor> {
    let name = errors
        .string("", map, "name", true)
        .and_then(|text| errors.check("name", text.parse::<ExecutorName>()));
    let task_types = parse_task_types(errors, map.get("taskTypes"));
    let empty = Map::new();
    let config_map = match map.get("config") {
        None | Some(Value::Null) => Some(&empty),
        Some(value) => errors.object("config", value),
    };
    let config = match (errors.string("", map, "kind", true), config_map) {
        (Some("kiro"), Some(config)) => parse_kiro(errors, config).map(ExecutorConfig::Kiro),
        (Some("command"), Some(config)) => {
            parse_command(errors, config).map(ExecutorConfig::Command)
        }
        (Some("acp"), Some(config)) => acp::parse_acp(errors, config).map(ExecutorConfig::Acp),
        (Some("stream"), Some(config)) => {
            crate::executor_stream::parse_stream(errors, config).map(ExecutorConfig::Stream)
        }
        (Some(other), _) if !matches!(other, "kiro" | "command" | "acp" | "stream") => {
            errors.push(
                "kind",
                format!("kind {other:?} is not one of kiro, command, acp, stream"),
            );
            None
        }
        _ => None,
    };
    let sandbox = SandboxGrants::parse_field(errors, map.get("sandbox"));
    Some(ExecutorDescriptor {
        name: name?,
        task_types: task_types?,
        config: config?,
        sandbox: sandbox?,
    })
}

fn parse_task_types(errors: &mut Collector, value: Option<&Value>) -> Option<BTreeSet<TaskType>> {
    let items = match value {
        None | Some(Value::Null) => {
            errors.push("taskTypes", "is required");
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            errors.push(
                "taskTypes",
                format!("must be an array, found {}", kind(other)),
            );
            return None;
        }
    };
    if items.is_empty() {
        errors.push(
            "taskTypes",
            format!("must name at least one of {}", TaskType::allowed()),
        );
        return None;
    }
    let before = errors.len();
    let mut types = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("taskTypes[{i}]");
        match item {
            Value::String(text) => {
                if let Some(t) = errors.check(&field, text.parse::<TaskType>()) {
                    types.insert(t);
                }
            }
            other => errors.push(field, format!("must be a string, found {}", kind(other))),
        }
    }
    (errors.len() == before).then_some(types)
}

pub(crate) fn string_list(
    errors: &mut Collector,
    map: &Map<String, Value>,
    key: &str,
) -> Option<Vec<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let before = errors.len();
            let mut list = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(text) => list.push(text.clone()),
                    other => errors.push(
                        format!("config.{key}[{i}]"),
                        format!("must be a string, found {}", kind(other)),
                    ),
                }
            }
            (errors.len() == before).then_some(list)
        }
        Some(other) => {
            errors.push(
                format!("config.{key}"),
                format!("must be an array of strings, found {}", kind(other)),
            );
            None
        }
    }
}

pub(crate) fn max_run_seconds(
    errors: &mut Collector,
    map: &Map<String, Value>,
) -> Option<Option<u32>> {
    let before = errors.len();
    let value = errors.unsigned("config", map, "maxRunSeconds");
    if errors.len() != before {
        return None;
    }
    match value {
        None => Some(None),
        Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Some(Some(n as u32)),
        Some(_) => {
            errors.push("config.maxRunSeconds", "must be between 1 and 4294967295");
            None
        }
    }
}

/// `config.env`: an object of strings keyed by valid variable names (empty when absent).
pub(crate) fn env_map(
    errors: &mut Collector,
    map: &Map<String, Value>,
) -> Option<BTreeMap<String, String>> {
    match map.get("env") {
        None | Some(Value::Null) => Some(BTreeMap::new()),
        Some(Value::Object(vars)) => {
            let before = errors.len();
            let mut env = BTreeMap::new();
            for (name, value) in vars {
                let valid_name = !name.is_empty()
                    && !name.contains('=')
                    && !name.contains('\0')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid_name {
                    errors.push(format!("config.env.{name}"), "is not a valid variable name");
                }
                match value {
                    Value::String(text) => {
                        env.insert(name.clone(), text.clone());
                    }
                    other => errors.push(
                        format!("config.env.{name}"),
                        format!("must be a string, found {}", kind(other)),
                    ),
                }
            }
            (errors.len() == before).then_some(env)
        }
        Some(other) => {
            errors.push(
                "config.env",
                format!("must be an object of strings, found {}", kind(other)),
            );
            None
        }
    }
}

fn parse_kiro(errors: &mut Collector, map: &Map<String, Value>) -> Option<KiroConfig> {
    errors.reject_unknown(
        "config",
        map,
        &[
            "binary",
            "agent",
            "extraArgs",
            "preflight",
            "maxRunSeconds",
            "harness",
        ],
    );
    let harness = match map.get("harness") {
        None | Some(Value::Null) => Some(KiroHarness::default()),
        Some(Value::String(text)) if text == "v2" => Some(KiroHarness::V2),
        Some(Value::String(text)) if text == "v3" => Some(KiroHarness::V3),
        Some(other) => {
            errors.push(
                "config.harness",
                format!("must be \"v2\" or \"v3\", found {other}"),
            );
            None
        }
    };
    let binary = match errors.string("config", map, "binary", false) {
        None => Some("kiro-cli".to_owned()),
        Some(text) if text.trim().is_empty() => {
            errors.push("config.binary", "must not be blank");
            None
        }
        Some(text) => Some(text.to_owned()),
    };
    let agent = errors
        .string("config", map, "agent", false)
        .map(str::to_owned);
    let extra_args = string_list(errors, map, "extraArgs");
    let preflight = match map.get("preflight") {
        None | Some(Value::Null) => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            errors.push(
                "config.preflight",
                format!("must be a boolean, found {}", kind(other)),
            );
            None
        }
    };
    let max_run_seconds = max_run_seconds(errors, map);
    Some(KiroConfig {
        binary: binary?,
        agent,
        extra_args: extra_args?,
        preflight: preflight?,
        max_run_seconds: max_run_seconds?,
        harness: harness?,
    })
}

fn parse_command(errors: &mut Collector, map: &Map<String, Value>) -> Option<CommandConfig> {
    errors.reject_unknown(
        "config",
        map,
        &["command", "env", "promptVia", "maxRunSeconds"],
    );
    let command = match map.get("command") {
        None | Some(Value::Null) => {
            errors.push(
                "config.command",
                "is required: an argv template such as [\"my-agent\", \"{prompt}\"]",
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
    let env = env_map(errors, map);
    let prompt_via = match errors.string("config", map, "promptVia", false) {
        None => Some(PromptVia::Arg),
        Some("arg") => Some(PromptVia::Arg),
        Some("stdin") => Some(PromptVia::Stdin),
        Some(other) => {
            errors.push(
                "config.promptVia",
                format!("promptVia {other:?} is not one of arg, stdin"),
            );
            None
        }
    };
    let max_run_seconds = max_run_seconds(errors, map);
    Some(CommandConfig {
        command: command?,
        env: env?,
        prompt_via: prompt_via?,
        max_run_seconds: max_run_seconds?,
    })
}

/// Receives a run's events as the executor produces them. Implementations must not
/// block: they buffer and ship events in the background.
pub trait EventSink: Send + Sync {
    /// Records one event (a log line, progress, ...).
    fn emit(&self, event: EventPayload);
}

/// Everything an executor is given besides the TaskSpec.
pub struct ExecutionContext<'a> {
    /// The run being executed.
    pub run_id: &'a RunId,
    /// The run's workspace.
    pub workspace_id: &'a WorkspaceId,
    /// The extracted workspace; the executor's working directory.
    pub workdir: &'a Path,
    /// Where the executor writes files that become artifacts.
    pub outdir: &'a Path,
    /// When the run must be over.
    pub deadline: Timestamp,
    /// Where to send progress.
    pub events: &'a dyn EventSink,
}

/// A file the executor produced that should become an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedArtifact {
    /// Where the file is.
    pub path: PathBuf,
    /// Its artifact name.
    pub name: ArtifactName,
    /// What it is.
    pub artifact_type: ArtifactType,
    /// Its media type.
    pub content_type: String,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// The agent finished its work.
    Completed,
    /// The agent or its set-up failed.
    Failed(RunError),
}

/// What an executor hands back (requirement 4.1: logs, artifacts and status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionOutcome {
    /// How it ended.
    pub status: ExecutionStatus,
    /// The transcript, ANSI-free.
    pub logs: String,
    /// The files to store as artifacts.
    pub artifacts: Vec<ProducedArtifact>,
    /// What it cost, when reported.
    pub usage: Usage,
}

/// An agent implementation that can execute a TaskSpec.
///
/// Cancellation is by dropping the future: an implementation that starts processes must
/// stop them (the whole process group) when its future is dropped, so a worker can
/// enforce deadlines and cancels with a plain `select!`.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Executes `spec` in `context.workdir` and reports logs, artifacts and status.
    /// Failures of the agent are an [`ExecutionStatus::Failed`] outcome, not a panic.
    async fn execute(&self, spec: &TaskSpec, context: ExecutionContext<'_>) -> ExecutionOutcome;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kiro_record_parses_with_defaults() {
        let descriptor = ExecutorDescriptor::parse(&json!({
            "name": "kiro", "kind": "kiro", "taskTypes": ["spec.generate", "code.change"]
        }))
        .unwrap();
        assert!(descriptor.serves(TaskType::CodeChange));
        assert!(!descriptor.serves(TaskType::DeployRun));
        match descriptor.config {
            ExecutorConfig::Kiro(config) => assert_eq!(config.binary, "kiro-cli"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_command_record_serializes_in_the_wire_shape() {
        let body = json!({
            "name": "claude", "kind": "command", "taskTypes": ["code.change"],
            "config": {"command": ["claude", "-p", "{prompt}"], "promptVia": "arg", "env": {"A": "1"}}
        });
        let descriptor = ExecutorDescriptor::parse(&body).unwrap();
        let wire = serde_json::to_value(&descriptor).unwrap();
        assert_eq!(wire["kind"], "command");
        assert_eq!(wire["config"]["command"][2], "{prompt}");
        let back: ExecutorDescriptor = serde_json::from_value(wire).unwrap();
        assert_eq!(back, descriptor);
    }

    #[test]
    fn every_bad_field_of_a_record_is_reported() {
        let errors = ExecutorDescriptor::parse(&json!({
            "name": "Bad Name", "kind": "command", "taskTypes": ["nope"],
            "config": {"command": [], "promptVia": "pipe", "maxRunSeconds": 0}
        }))
        .unwrap_err();
        for field in [
            "name",
            "taskTypes[0]",
            "config.command",
            "config.promptVia",
            "config.maxRunSeconds",
        ] {
            assert!(errors.mentions(field), "{field} missing from {errors}");
        }
    }

    #[test]
    fn an_unknown_kind_and_missing_task_types_are_reported() {
        let errors =
            ExecutorDescriptor::parse(&json!({"name": "x", "kind": "lambda"})).unwrap_err();
        assert!(errors.mentions("kind"));
        assert!(errors.mentions("taskTypes"));
        assert!(
            errors
                .to_string()
                .contains("not one of kiro, command, acp, stream")
        );
    }
}
