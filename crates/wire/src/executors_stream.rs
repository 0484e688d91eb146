//! The registration of a `stream` executor: an agent CLI whose standard output is a JSON
//! event stream (Claude Code, Codex, Gemini CLI), read into run events by the worker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::TaskTypeName;
use crate::sandbox::SandboxGrantsBody;

/// The `kind` of a `stream` executor record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StreamKind {
    /// An agent CLI printing a JSON event stream.
    #[default]
    #[serde(rename = "stream")]
    Stream,
}

/// Which agent's event stream the worker reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StreamFormatName {
    /// Claude Code: `claude -p --output-format stream-json --verbose`.
    Claude,
    /// Codex: `codex exec --json`.
    Codex,
    /// Gemini CLI: `gemini -p --output-format stream-json`.
    Gemini,
}

/// A `stream` executor: an agent CLI whose JSON event stream becomes tool calls, plans,
/// messages and usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterStreamExecutor {
    /// A unique name: 1 to 63 of `a-z`, `0-9`, `-`, starting with a letter.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z][a-z0-9-]{0,62}$"))]
    pub name: String,
    /// `stream`.
    pub kind: StreamKind,
    /// The task types it serves; at least one (repeats count once).
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub task_types: Vec<TaskTypeName>,
    /// Its configuration: at least the format.
    pub config: StreamConfigBody,
    /// What its agent may reach beyond its run; nothing more by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxGrantsBody>,
}

/// The configuration of a `stream` executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamConfigBody {
    /// The event stream's format.
    pub format: StreamFormatName,
    /// The argv template, program first (not blank); `{prompt}`, `{workdir}` and
    /// `{outdir}` are substituted. Left out: the format's default, which reads the prompt
    /// from standard input. The prompt goes to standard input unless the argv names
    /// `{prompt}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = stream_argv_schema))]
    pub command: Option<Vec<String>>,
    /// Extra environment variables: names not empty, without `=` or NUL, not starting
    /// with a digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::executors::env_schema))]
    pub env: Option<BTreeMap<String, String>>,
    /// A run duration limit below the guardrail, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = Int64, minimum = 1, maximum = 4294967295_u64))]
    pub max_run_seconds: Option<u32>,
}

/// `command`: null (the format's default) or an argv, program first and not blank.
#[cfg(feature = "openapi")]
fn stream_argv_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{SchemaType, Type};
    crate::executors::program_argv(
        "The argv template, program first (not blank); `{prompt}`, `{workdir}` and \
         `{outdir}` are substituted. Null or left out: the format's default argv.",
    )
    .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
    .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use crate::executors::{ExecutorView, RegisterExecutorRequest};

    #[test]
    fn a_stream_registration_is_told_apart_and_reads_back_as_the_domains_record() {
        let body = json!({
            "name": "claude-code", "kind": "stream", "taskTypes": ["code.change"],
            "config": {"format": "claude", "env": {"A": "1"}},
            "sandbox": {"env": ["ANTHROPIC_*"], "readPaths": ["/opt/agents"]}
        });
        let request: RegisterExecutorRequest = serde_json::from_value(body.clone()).unwrap();
        assert!(matches!(request, RegisterExecutorRequest::Stream(_)));
        let descriptor = tlao_domain::ExecutorDescriptor::parse(&body).unwrap();
        let view = ExecutorView::from(&descriptor);
        assert_eq!(view.kind.as_str(), "stream");
        assert_eq!(view.config["format"], "claude");
        assert_eq!(view.descriptor().unwrap(), descriptor);
        let unknown = json!({
            "name": "x", "kind": "stream", "taskTypes": ["code.change"],
            "config": {"format": "claude", "promptVia": "stdin"}
        });
        assert!(serde_json::from_value::<RegisterExecutorRequest>(unknown).is_err());
    }
}
