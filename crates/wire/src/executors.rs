//! Executor registry records.
//!
//! A record's `config` is the kind's own object (see [`ExecutorKindName`]); the server
//! validates it with the domain's parser, which names every bad field, and a worker reads
//! an assignment's record back through the same parser ([`ExecutorView::descriptor`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tlao_domain::{ExecutorConfig, ExecutorDescriptor, ValidationErrors};

use crate::names::{ExecutorKindName, TaskTypeName};
use crate::sandbox::{SandboxGrantsBody, SandboxGrantsView};

/// A text with something besides white space (Unicode `White_Space`, what Rust's `trim`
/// removes): the pattern of every "not blank" string of the wire.
#[cfg(feature = "openapi")]
pub(crate) const NOT_BLANK_PATTERN: &str =
    r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// An executor's name, for the document: 1 to 63 of `a-z`, `0-9`, `-`, starting with a
/// letter.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = ExecutorName, pattern = "^[a-z][a-z0-9-]{0,62}$")]
pub struct ExecutorNameText(pub String);

/// The body of `POST /executors`: a `kiro`, `command` or `acp` executor record, told apart by
/// `kind`. The server reads it with the domain's parser, which names every bad field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum RegisterExecutorRequest {
    /// A `kiro` executor.
    Kiro(RegisterKiroExecutor),
    /// A `command` executor.
    Command(RegisterCommandExecutor),
    /// An `acp` executor.
    Acp(RegisterAcpExecutor),
    /// A `stream` executor.
    Stream(crate::executors_stream::RegisterStreamExecutor),
}

/// The `kind` of a `kiro` executor record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum KiroKind {
    /// The Kiro CLI.
    #[default]
    #[serde(rename = "kiro")]
    Kiro,
}

/// The `kind` of a `command` executor record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CommandKind {
    /// Any CLI, from an argv template.
    #[default]
    #[serde(rename = "command")]
    Command,
}

/// A `kiro` executor: the Kiro CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterKiroExecutor {
    /// A unique name: 1 to 63 of `a-z`, `0-9`, `-`, starting with a letter.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z][a-z0-9-]{0,62}$"))]
    pub name: String,
    /// `kiro`.
    pub kind: KiroKind,
    /// The task types it serves; at least one (repeats count once).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub task_types: Vec<TaskTypeName>,
    /// Its configuration; every field has a default, so it may be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<KiroConfigBody>,
    /// What its agent may reach beyond its run; nothing more by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxGrantsBody>,
}

/// The configuration of a `kiro` executor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KiroConfigBody {
    /// The kiro-cli binary, a path or a name on the worker's `PATH`; `kiro-cli` by
    /// default. Not blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        )
    )]
    pub binary: Option<String>,
    /// The Kiro agent to use (`--agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Extra arguments passed to `kiro-cli chat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<Vec<String>>,
    /// Whether to check `kiro-cli whoami` before running; false by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<bool>,
    /// A run duration limit below the guardrail, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 1, maximum = 4294967295_u64))]
    pub max_run_seconds: Option<u32>,
}

/// A `command` executor: any CLI, from an argv template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterCommandExecutor {
    /// A unique name: 1 to 63 of `a-z`, `0-9`, `-`, starting with a letter.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z][a-z0-9-]{0,62}$"))]
    pub name: String,
    /// `command`.
    pub kind: CommandKind,
    /// The task types it serves; at least one (repeats count once).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub task_types: Vec<TaskTypeName>,
    /// Its configuration: at least the argv template.
    pub config: CommandConfigBody,
    /// What its agent may reach beyond its run; nothing more by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxGrantsBody>,
}

/// How a `command` executor receives the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PromptViaName {
    /// Substituted for `{prompt}` in the argv.
    Arg,
    /// Written to the process's standard input.
    Stdin,
}

/// The configuration of a `command` executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandConfigBody {
    /// The argv template, program first (not blank); `{prompt}`, `{workdir}` and
    /// `{outdir}` are substituted.
    #[cfg_attr(feature = "openapi", schema(schema_with = argv_schema))]
    pub command: Vec<String>,
    /// Extra environment variables: names not empty, without `=` or NUL, not starting
    /// with a digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = env_schema))]
    pub env: Option<BTreeMap<String, String>>,
    /// How the prompt is passed; `arg` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_via: Option<PromptViaName>,
    /// A run duration limit below the guardrail, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 1, maximum = 4294967295_u64))]
    pub max_run_seconds: Option<u32>,
}

/// An argv: an array of strings whose first item, the program, is not blank.
#[cfg(feature = "openapi")]
pub(crate) fn program_argv(description: &str) -> utoipa::openapi::schema::ArrayBuilder {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let string = || ObjectBuilder::new().schema_type(Type::String);
    ArrayBuilder::new()
        .prefix_items([string().pattern(Some(NOT_BLANK_PATTERN)).build()])
        .items(string())
        .min_items(Some(1))
        .description(Some(description))
}

/// `command`: an argv template.
#[cfg(feature = "openapi")]
fn argv_schema() -> utoipa::openapi::Array {
    program_argv(
        "The argv template, program first (not blank); `{prompt}`, `{workdir}` and \
         `{outdir}` are substituted.",
    )
    .build()
}

/// `env`: an object of strings (or null), keyed by valid variable names.
#[cfg(feature = "openapi")]
pub(crate) fn env_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .additional_properties(Some(AdditionalProperties::RefOr(
            ObjectBuilder::new().schema_type(Type::String).into(),
        )))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[^0-9=\x00][^=\x00]*$")),
        ))
        .description(Some(
            "Extra environment variables: names not empty, without `=` or NUL, not starting \
             with a digit.",
        ))
        .build()
}

/// The `kind` of an `acp` executor record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AcpKind {
    /// Any agent speaking the Agent Client Protocol on its standard input and output.
    #[default]
    #[serde(rename = "acp")]
    Acp,
}

/// An `acp` executor: an agent speaking the Agent Client Protocol (JSON-RPC over its
/// standard input and output), such as `kiro-cli acp` or `gemini --acp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterAcpExecutor {
    /// A unique name: 1 to 63 of `a-z`, `0-9`, `-`, starting with a letter.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z][a-z0-9-]{0,62}$"))]
    pub name: String,
    /// `acp`.
    pub kind: AcpKind,
    /// The task types it serves; at least one (repeats count once).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub task_types: Vec<TaskTypeName>,
    /// Its configuration: at least the agent's command line.
    pub config: AcpConfigBody,
    /// What its agent may reach beyond its run; nothing more by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxGrantsBody>,
}

/// How an `acp` executor answers the agent's permission requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AcpPermissionName {
    /// Allow edits, reads, searches and fetches; refuse commands and unclassified tools.
    AllowEdits,
    /// Allow every tool call.
    AllowAll,
    /// Refuse every tool call that asks.
    Deny,
}

/// The configuration of an `acp` executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcpConfigBody {
    /// The agent's command line, program first (not blank), e.g. `["kiro-cli", "acp"]`.
    #[cfg_attr(feature = "openapi", schema(schema_with = acp_argv_schema))]
    pub command: Vec<String>,
    /// How permission requests are answered; `allow-edits` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<AcpPermissionName>,
    /// A session mode to select (`session/set_mode`). Not blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        )
    )]
    pub mode: Option<String>,
    /// A model to select (`session/set_model`). Not blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"[^\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
        )
    )]
    pub model: Option<String>,
    /// Extra environment variables: names not empty, without `=` or NUL, not starting
    /// with a digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = env_schema))]
    pub env: Option<BTreeMap<String, String>>,
    /// A run duration limit below the guardrail, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 1, maximum = 4294967295_u64))]
    pub max_run_seconds: Option<u32>,
}

/// An `acp` executor's `command`: an array of strings whose first item, the program, is
/// not blank (no placeholders: the prompt goes over the protocol).
#[cfg(feature = "openapi")]
fn acp_argv_schema() -> utoipa::openapi::Array {
    program_argv(
        "The agent's command line, program first (not blank), e.g. `[\"kiro-cli\", \"acp\"]`.",
    )
    .build()
}

/// A registered executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExecutorView {
    /// Its unique name.
    pub name: String,
    /// Its kind.
    pub kind: ExecutorKindName,
    /// The task types it serves.
    pub task_types: Vec<TaskTypeName>,
    /// Its configuration, with defaults filled in.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object, required = true))]
    pub config: Value,
    /// What its agent may reach beyond its run (records from before grants: nothing).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub sandbox: SandboxGrantsView,
    /// Where its program was last seen runnable (requirement 2.2): absent until a
    /// worker (or `tlao dev`'s launcher) reported it found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityView>,
}

/// When an executor's program was last reported found by a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityView {
    /// The last report that found it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_seen_at: tlao_domain::Timestamp,
    /// How many workers reported it found within the server's availability window
    /// (`guardrails.executor_seen_within_seconds`); 0 when the last report is older.
    pub workers: u32,
    /// The version the latest report gave (`--version`'s first line), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl From<&tlao_domain::ExecutorSeen> for AvailabilityView {
    fn from(seen: &tlao_domain::ExecutorSeen) -> Self {
        AvailabilityView {
            last_seen_at: seen.last_seen_at,
            workers: seen.workers,
            version: seen.version.clone(),
        }
    }
}

impl From<&ExecutorDescriptor> for ExecutorView {
    fn from(descriptor: &ExecutorDescriptor) -> Self {
        // Serializing plain structs of strings, numbers and maps cannot fail.
        let (kind, config) = match &descriptor.config {
            ExecutorConfig::Kiro(config) => (ExecutorKindName::Kiro, serde_json::to_value(config)),
            ExecutorConfig::Command(config) => {
                (ExecutorKindName::Command, serde_json::to_value(config))
            }
            ExecutorConfig::Acp(config) => (ExecutorKindName::Acp, serde_json::to_value(config)),
            ExecutorConfig::Stream(config) => {
                (ExecutorKindName::Stream, serde_json::to_value(config))
            }
        };
        ExecutorView {
            name: descriptor.name.to_string(),
            kind,
            task_types: descriptor.task_types.iter().map(|t| (*t).into()).collect(),
            config: config.unwrap_or(Value::Null),
            sandbox: SandboxGrantsView::from(&descriptor.sandbox),
            availability: None,
        }
    }
}

impl ExecutorView {
    /// The record as the domain's executor, validated like a registration.
    pub fn descriptor(&self) -> Result<ExecutorDescriptor, ValidationErrors> {
        ExecutorDescriptor::parse(&json!({
            "name": self.name,
            "kind": self.kind,
            "taskTypes": self.task_types,
            "config": self.config,
            "sandbox": self.sandbox,
        }))
    }
}

/// Every registered executor, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecutorList {
    /// The executors.
    pub items: Vec<ExecutorView>,
}
