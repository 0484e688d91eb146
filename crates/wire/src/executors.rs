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

/// The body of `POST /executors`: a `kiro` or a `command` executor record, told apart by
/// `kind`. The server reads it with the domain's parser, which names every bad field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum RegisterExecutorRequest {
    /// A `kiro` executor.
    Kiro(RegisterKiroExecutor),
    /// A `command` executor.
    Command(RegisterCommandExecutor),
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

/// `command`: an array of strings whose first item, the program, is not blank.
#[cfg(feature = "openapi")]
fn argv_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let string = || ObjectBuilder::new().schema_type(Type::String);
    ArrayBuilder::new()
        .prefix_items([string().pattern(Some(NOT_BLANK_PATTERN)).build()])
        .items(string())
        .min_items(Some(1))
        .description(Some(
            "The argv template, program first (not blank); `{prompt}`, `{workdir}` and \
             `{outdir}` are substituted.",
        ))
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
}

impl From<&ExecutorDescriptor> for ExecutorView {
    fn from(descriptor: &ExecutorDescriptor) -> Self {
        // Serializing plain structs of strings, numbers and maps cannot fail.
        let (kind, config) = match &descriptor.config {
            ExecutorConfig::Kiro(config) => (ExecutorKindName::Kiro, serde_json::to_value(config)),
            ExecutorConfig::Command(config) => {
                (ExecutorKindName::Command, serde_json::to_value(config))
            }
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
