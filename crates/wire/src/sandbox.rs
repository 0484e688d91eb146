//! An executor record's `sandbox` grants (`tlao_domain::sandbox`): what its agent may
//! reach beyond its own run. The server reads them with the domain's parser, which names
//! every bad entry; this is their shape in requests, answers and the document.

use serde::{Deserialize, Serialize};
use tlao_domain::{NetworkPolicy, SandboxGrants};

/// What an executor's agent may reach beyond its run, as a record shows it: paths
/// under the worker's HOME (`~/...`) or absolute, environment variables passed through
/// by name (a trailing `*` matches a prefix; never `TLAO_*`), and the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SandboxGrantsView {
    /// Paths the agent may read (and execute) beneath.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = path_list_schema, required = true))]
    pub read_paths: Vec<String>,
    /// Paths the agent may read and write beneath.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = path_list_schema, required = true))]
    pub write_paths: Vec<String>,
    /// Variables of the worker's environment passed to the agent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = env_list_schema, required = true))]
    pub env: Vec<String>,
    /// Where the agent may connect.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub network: NetworkPolicyBody,
}

/// The `sandbox` of an executor record being registered: every field may be left out
/// (or null); the default grants nothing more and leaves the network open (`any`).
/// The server reads it with the domain's parser, which names every bad entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SandboxGrantsBody {
    /// Paths the agent may read (and execute) beneath.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = nullable_path_list_schema))]
    pub read_paths: Option<Vec<String>>,
    /// Paths the agent may read and write beneath.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = nullable_path_list_schema))]
    pub write_paths: Option<Vec<String>>,
    /// Variables of the worker's environment passed to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = nullable_env_list_schema))]
    pub env: Option<Vec<String>>,
    /// Where the agent may connect; `any` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkPolicyBody>,
}

/// Where an agent may connect: `"any"` (the default), `"none"`, or `{"tcpPorts": [...]}`
/// (TCP connections to those ports only). Its schema is written out in `schema.rs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum NetworkPolicyBody {
    /// No restriction.
    #[default]
    Any,
    /// No TCP connections or binds.
    None,
    /// TCP connections to these ports only.
    TcpPorts(Vec<u16>),
}

impl From<&SandboxGrants> for SandboxGrantsView {
    fn from(grants: &SandboxGrants) -> Self {
        let strings = |items: &[_]| items.iter().map(ToString::to_string).collect();
        SandboxGrantsView {
            read_paths: strings(&grants.read_paths),
            write_paths: strings(&grants.write_paths),
            env: grants.env.iter().map(ToString::to_string).collect(),
            network: match &grants.network {
                NetworkPolicy::Any => NetworkPolicyBody::Any,
                NetworkPolicy::None => NetworkPolicyBody::None,
                NetworkPolicy::TcpPorts(ports) => {
                    NetworkPolicyBody::TcpPorts(ports.iter().copied().collect())
                }
            },
        }
    }
}

/// The pattern of a granted path: `~/` or `/`, then `/`-separated segments that are not
/// empty, `.` or `..`, without control characters.
#[cfg(feature = "openapi")]
const PATH_PATTERN: &str =
    r"^(~/|/)(?!\.\.?(/|$))[^/\x00-\x1F\x7F-\x9F]+(/(?!\.\.?(/|$))[^/\x00-\x1F\x7F-\x9F]+)*$";

/// The pattern of an environment grant: a variable name, optionally ending in `*`, not
/// starting with `TLAO_` (nor a prefix of it followed by `*`).
#[cfg(feature = "openapi")]
const ENV_PATTERN: &str =
    r"^(?![Tt]([Ll]([Aa]([Oo](_|\*$)|\*$)|\*$)|\*$)|\*$)[A-Za-z_][A-Za-z0-9_]{0,127}\*?$";

#[cfg(feature = "openapi")]
fn string_list_schema(
    pattern: &str,
    max_length: usize,
    description: &str,
) -> utoipa::openapi::schema::ArrayBuilder {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .max_length(Some(max_length)),
        )
        .max_items(Some(tlao_domain::sandbox::MAX_GRANTS))
        .description(Some(description))
}

#[cfg(feature = "openapi")]
const PATHS: &str = "Paths, absolute or under the worker's HOME (`~/...`); not `/` or `~` alone.";
#[cfg(feature = "openapi")]
const NAMES: &str = "Variable names (a trailing `*` matches a prefix); never `TLAO_*`.";

#[cfg(feature = "openapi")]
fn path_list(nullable: bool) -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{SchemaType, Type};
    let list = string_list_schema(
        PATH_PATTERN,
        tlao_domain::sandbox::MAX_GRANTED_PATH_CHARS,
        PATHS,
    );
    match nullable {
        true => list.schema_type(SchemaType::from_iter([Type::Array, Type::Null])),
        false => list,
    }
    .build()
}

#[cfg(feature = "openapi")]
fn env_list(nullable: bool) -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{SchemaType, Type};
    let list = string_list_schema(
        ENV_PATTERN,
        tlao_domain::sandbox::MAX_ENV_NAME_BYTES + 1,
        NAMES,
    );
    match nullable {
        true => list.schema_type(SchemaType::from_iter([Type::Array, Type::Null])),
        false => list,
    }
    .build()
}

#[cfg(feature = "openapi")]
fn path_list_schema() -> utoipa::openapi::Array {
    path_list(false)
}

#[cfg(feature = "openapi")]
fn nullable_path_list_schema() -> utoipa::openapi::Array {
    path_list(true)
}

#[cfg(feature = "openapi")]
fn env_list_schema() -> utoipa::openapi::Array {
    env_list(false)
}

#[cfg(feature = "openapi")]
fn nullable_env_list_schema() -> utoipa::openapi::Array {
    env_list(true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tlao_domain::ExecutorDescriptor;

    use crate::ExecutorView;

    #[test]
    fn a_workers_copy_of_a_record_keeps_its_grants() {
        let record = json!({
            "name": "claude",
            "kind": "command",
            "taskTypes": ["code.change"],
            "config": {"command": ["claude", "-p", "{prompt}"]},
            "sandbox": {
                "readPaths": ["~/.claude"],
                "writePaths": ["/var/cache/claude"],
                "env": ["ANTHROPIC_*"],
                "network": {"tcpPorts": [443, 80]}
            }
        });
        let descriptor = ExecutorDescriptor::parse(&record).unwrap();
        let view = ExecutorView::from(&descriptor);
        let sent = serde_json::to_value(&view).unwrap();
        assert_eq!(sent["sandbox"]["network"], json!({"tcpPorts": [80, 443]}));
        let received: ExecutorView = serde_json::from_value(sent).unwrap();
        assert_eq!(received.descriptor().unwrap(), descriptor);
        // A server from before grants sends none: the defaults.
        let mut old = serde_json::to_value(ExecutorView::from(&descriptor)).unwrap();
        old.as_object_mut().unwrap().remove("sandbox");
        let old: ExecutorView = serde_json::from_value(old).unwrap();
        assert!(old.descriptor().unwrap().sandbox.is_default());
    }
}
