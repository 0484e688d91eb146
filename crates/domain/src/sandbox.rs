//! What an executor's agent may reach beyond its own run, declared in its record.
//!
//! Every run's agent is sandboxed (see docs/security.md): it reads the system's paths,
//! reads and writes its run's work, output, home and temp directories, and nothing
//! else; its environment is an allowlist. An agent that needs more — its login and
//! configuration under the real HOME, a cache, an API key in the worker's environment,
//! only some network ports — says so in its record's `sandbox` field, as data:
//!
//! ```json
//! "sandbox": {
//!   "readPaths": ["~/.config/some-agent"],
//!   "writePaths": ["~/.local/share/kiro-cli"],
//!   "env": ["ANTHROPIC_API_KEY", "KIRO_*"],
//!   "network": "any" | "none" | {"tcpPorts": [443]}
//! }
//! ```
//!
//! Paths are absolute or start with `~/` (the worker's HOME); a granted path under that
//! HOME also appears at the same place under the run's own HOME. Environment names pass
//! the worker's variable of that name through (a trailing `*` matches a prefix); names
//! starting with `TLAO_` are the system's own and cannot be granted.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::validation::{Collector, kind, whole_u64};

/// The most paths of each kind, and environment names, a record may grant.
pub const MAX_GRANTS: usize = 64;
/// The longest granted path, in characters.
pub const MAX_GRANTED_PATH_CHARS: usize = 4096;
/// The longest environment name or pattern, in bytes.
pub const MAX_ENV_NAME_BYTES: usize = 128;

/// What a record grants its agent on top of the sandbox's defaults. The default grants
/// nothing more and leaves the network open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxGrants {
    /// Paths the agent may read (and execute) beneath.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_paths: Vec<GrantedPath>,
    /// Paths the agent may read and write beneath.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_paths: Vec<GrantedPath>,
    /// Variables of the worker's environment passed to the agent, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvGrant>,
    /// Where the agent may connect.
    #[serde(default)]
    pub network: NetworkPolicy,
}

impl SandboxGrants {
    /// Whether it grants nothing beyond the defaults.
    pub fn is_default(&self) -> bool {
        self == &SandboxGrants::default()
    }

    /// Whether the worker's variable `name` passes through.
    pub fn passes_env(&self, name: &str) -> bool {
        self.env.iter().any(|grant| grant.matches(name))
    }

    /// Reads the record's `sandbox` field (absent or null: the defaults), reporting every
    /// bad entry under `sandbox.*`.
    pub fn parse_field(errors: &mut Collector, value: Option<&Value>) -> Option<SandboxGrants> {
        let map = match value {
            None | Some(Value::Null) => return Some(SandboxGrants::default()),
            Some(value) => errors.object("sandbox", value)?,
        };
        errors.reject_unknown(
            "sandbox",
            map,
            &["readPaths", "writePaths", "env", "network"],
        );
        let read_paths = list(errors, map, "readPaths", |text| text.parse::<GrantedPath>());
        let write_paths = list(errors, map, "writePaths", |text| {
            text.parse::<GrantedPath>()
        });
        let env = list(errors, map, "env", |text| text.parse::<EnvGrant>());
        let network = NetworkPolicy::parse_field(errors, map.get("network"));
        Some(SandboxGrants {
            read_paths: read_paths?,
            write_paths: write_paths?,
            env: env?,
            network: network?,
        })
    }
}

/// `sandbox.<key>`: an array of at most [`MAX_GRANTS`] strings, each parsed by `parse`.
fn list<T, E: fmt::Display>(
    errors: &mut Collector,
    map: &Map<String, Value>,
    key: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Option<Vec<T>> {
    let items = match map.get(key) {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            errors.push(
                format!("sandbox.{key}"),
                format!("must be an array of strings, found {}", kind(other)),
            );
            return None;
        }
    };
    if items.len() > MAX_GRANTS {
        errors.push(
            format!("sandbox.{key}"),
            format!("has {} entries; the limit is {MAX_GRANTS}", items.len()),
        );
        return None;
    }
    let before = errors.len();
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("sandbox.{key}[{i}]");
        match item {
            Value::String(text) => {
                if let Some(value) = errors.check(&field, parse(text)) {
                    parsed.push(value);
                }
            }
            other => errors.push(field, format!("must be a string, found {}", kind(other))),
        }
    }
    (errors.len() == before).then_some(parsed)
}

/// A granted path: absolute (`/opt/models`) or under the worker's HOME (`~/.kiro`);
/// normalized (no empty, `.` or `..` segments, no trailing `/`), without control
/// characters. `/` and `~` themselves are refused: a grant names what the agent needs,
/// not everything.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GrantedPath(String);

/// Why a granted path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a grantable path: {reason}")]
pub struct GrantedPathError {
    /// The path as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl GrantedPath {
    /// The path as written (`~/...` or absolute).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path relative to the HOME, when it is written `~/...`.
    pub fn under_home(&self) -> Option<&str> {
        self.0.strip_prefix("~/")
    }
}

impl std::str::FromStr for GrantedPath {
    type Err = GrantedPathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| {
            Err(GrantedPathError {
                text: text.to_owned(),
                reason,
            })
        };
        if text.chars().count() > MAX_GRANTED_PATH_CHARS {
            return refuse("longer than 4096 characters");
        }
        if text.chars().any(char::is_control) {
            return refuse("contains a control character");
        }
        let rest = if let Some(rest) = text.strip_prefix("~/") {
            rest
        } else if let Some(rest) = text.strip_prefix('/') {
            rest
        } else {
            return refuse("must be absolute or start with ~/");
        };
        if rest.is_empty() {
            return refuse("grants everything; name the directories the agent needs");
        }
        if rest
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return refuse("must not have empty, '.' or '..' segments or a trailing '/'");
        }
        Ok(GrantedPath(text.to_owned()))
    }
}

impl TryFrom<String> for GrantedPath {
    type Error = GrantedPathError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<GrantedPath> for String {
    fn from(path: GrantedPath) -> String {
        path.0
    }
}

impl fmt::Display for GrantedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An environment variable passed through by name: `NAME`, or `PREFIX*` for every
/// variable starting with `PREFIX`. Names are `[A-Za-z_][A-Za-z0-9_]*`; none may start
/// with `TLAO_` (the system's own variables, secrets among them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvGrant(String);

/// Why an environment grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a grantable variable: {reason}")]
pub struct EnvGrantError {
    /// The grant as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl EnvGrant {
    /// The grant as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the variable `name` passes.
    pub fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.0,
        }
    }
}

impl std::str::FromStr for EnvGrant {
    type Err = EnvGrantError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| {
            Err(EnvGrantError {
                text: text.to_owned(),
                reason,
            })
        };
        let name = text.strip_suffix('*').unwrap_or(text);
        let valid = name.len() <= MAX_ENV_NAME_BYTES
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return refuse(
                "use a name of A-Z, a-z, 0-9 and _ (not starting with a digit), optionally ending in *",
            );
        }
        // A prefix such as `TLA*` (or `*`) would match `TLAO_...` too.
        let upper = name.to_ascii_uppercase();
        let is_prefix = text.ends_with('*');
        if upper.starts_with("TLAO_") || (is_prefix && "TLAO_".starts_with(&upper)) {
            return refuse("TLAO_ variables are the system's own");
        }
        Ok(EnvGrant(text.to_owned()))
    }
}

impl TryFrom<String> for EnvGrant {
    type Error = EnvGrantError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<EnvGrant> for String {
    fn from(grant: EnvGrant) -> String {
        grant.0
    }
}

impl fmt::Display for EnvGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an agent may connect: anywhere (the default: agents talk to their model's
/// endpoint), nowhere, or only to the listed TCP ports (binding none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NetworkPolicy {
    /// No restriction.
    #[default]
    Any,
    /// No TCP connections or binds.
    None,
    /// TCP connections to these ports only.
    TcpPorts(BTreeSet<u16>),
}

impl NetworkPolicy {
    /// Reads `sandbox.network`: `"any"`, `"none"` or `{"tcpPorts": [1..65535, ...]}`.
    fn parse_field(errors: &mut Collector, value: Option<&Value>) -> Option<NetworkPolicy> {
        const FIELD: &str = "sandbox.network";
        match value {
            None | Some(Value::Null) => Some(NetworkPolicy::Any),
            Some(Value::String(text)) if text == "any" => Some(NetworkPolicy::Any),
            Some(Value::String(text)) if text == "none" => Some(NetworkPolicy::None),
            Some(Value::Object(map)) => {
                errors.reject_unknown(FIELD, map, &["tcpPorts"]);
                let ports = match map.get("tcpPorts") {
                    Some(Value::Array(items)) if items.len() <= MAX_GRANTS => items,
                    _ => {
                        errors.push(
                            format!("{FIELD}.tcpPorts"),
                            format!("must be an array of at most {MAX_GRANTS} port numbers"),
                        );
                        return None;
                    }
                };
                let before = errors.len();
                let mut set = BTreeSet::new();
                for (i, item) in ports.iter().enumerate() {
                    let port = item
                        .as_number()
                        .and_then(whole_u64)
                        .and_then(|n| u16::try_from(n).ok());
                    match port {
                        Some(port) if port > 0 => {
                            set.insert(port);
                        }
                        _ => errors.push(
                            format!("{FIELD}.tcpPorts[{i}]"),
                            format!("must be a port number from 1 to 65535, found {item}"),
                        ),
                    }
                }
                (errors.len() == before).then_some(NetworkPolicy::TcpPorts(set))
            }
            Some(other) => {
                errors.push(
                    FIELD,
                    format!(
                        "must be \"any\", \"none\" or {{\"tcpPorts\": [...]}}, found {}",
                        match other {
                            Value::String(text) => format!("{text:?}"),
                            other => kind(other).to_owned(),
                        }
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<SandboxGrants, crate::ValidationErrors> {
        let mut errors = Collector::new();
        let grants = SandboxGrants::parse_field(&mut errors, Some(&value));
        errors.finish(grants)
    }

    #[test]
    fn a_record_grants_paths_names_and_ports() {
        let grants = parse(json!({
            "readPaths": ["~/.config/agent", "/opt/models"],
            "writePaths": ["~/.local/share/kiro-cli"],
            "env": ["ANTHROPIC_API_KEY", "KIRO_*"],
            "network": {"tcpPorts": [443, 443, 8080]}
        }))
        .unwrap();
        assert_eq!(grants.read_paths[0].under_home(), Some(".config/agent"));
        assert_eq!(grants.read_paths[1].under_home(), None);
        assert!(grants.passes_env("KIRO_API_KEY"));
        assert!(grants.passes_env("ANTHROPIC_API_KEY"));
        assert!(!grants.passes_env("ANTHROPIC_API_KEY_2"));
        assert!(!grants.passes_env("AWS_SECRET_ACCESS_KEY"));
        assert_eq!(
            grants.network,
            NetworkPolicy::TcpPorts(BTreeSet::from([443, 8080]))
        );
        // It reads back as it was stored.
        let stored = serde_json::to_value(&grants).unwrap();
        assert_eq!(stored["network"], json!({"tcpPorts": [443, 8080]}));
        assert_eq!(
            serde_json::from_value::<SandboxGrants>(stored).unwrap(),
            grants
        );
        assert_eq!(
            parse(json!({"network": "none"})).unwrap().network,
            NetworkPolicy::None
        );
        assert!(parse(json!({})).unwrap().is_default());
        let mut errors = Collector::new();
        let absent = SandboxGrants::parse_field(&mut errors, None);
        assert!(errors.finish(absent).unwrap().is_default());
    }

    #[test]
    fn broad_relative_or_system_grants_are_refused_each_named() {
        let errors = parse(json!({
            "readPaths": ["/", "~", "~/", "relative", "/a/../etc", "/a//b", "/a/", "/tab\there"],
            "writePaths": "~/.kiro",
            "env": ["TLAO_AUTH__SECRET", "tlao_token", "TLA*", "*", "1ABC", "A-B", "OK_*"],
            "network": {"tcpPorts": [0, 65536, "443"]},
            "other": true
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "sandbox.readPaths[0]",
            "sandbox.readPaths[1]",
            "sandbox.readPaths[2]",
            "sandbox.readPaths[3]",
            "sandbox.readPaths[4]",
            "sandbox.readPaths[5]",
            "sandbox.readPaths[6]",
            "sandbox.readPaths[7]",
            "sandbox.writePaths",
            "sandbox.env[0]",
            "sandbox.env[1]",
            "sandbox.env[2]",
            "sandbox.env[3]",
            "sandbox.env[4]",
            "sandbox.env[5]",
            "sandbox.network.tcpPorts[0]",
            "sandbox.network.tcpPorts[1]",
            "sandbox.network.tcpPorts[2]",
            "sandbox.other",
        ] {
            assert!(fields.contains(&expected), "{expected} not in {fields:?}");
        }
        assert!(!fields.contains(&"sandbox.env[6]"), "{fields:?}");
        assert!(parse(json!({"network": "open"})).is_err());
        assert!(parse(json!({"readPaths": vec!["/a"; MAX_GRANTS + 1]})).is_err());
    }
}
