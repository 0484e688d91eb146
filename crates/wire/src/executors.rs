//! Executor registry records.
//!
//! A record's `config` is the kind's own object (see [`ExecutorKindName`]); the server
//! validates it with the domain's parser, which names every bad field, and a worker reads
//! an assignment's record back through the same parser ([`ExecutorView::descriptor`]).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tlao_domain::{ExecutorConfig, ExecutorDescriptor, ValidationErrors};

use crate::names::{ExecutorKindName, TaskTypeName};

/// The body of `POST /executors`; every bad field is reported at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterExecutorRequest {
    /// A unique name: 1 to 63 of `a-z`, `0-9`, `-`, starting with a letter.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z][a-z0-9-]{0,62}$"))]
    pub name: String,
    /// The kind.
    pub kind: ExecutorKindName,
    /// The task types it serves; at least one.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub task_types: Vec<TaskTypeName>,
    /// The kind's configuration.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: Value,
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
}

impl From<&ExecutorDescriptor> for ExecutorView {
    fn from(descriptor: &ExecutorDescriptor) -> Self {
        // Serializing plain structs of strings, numbers and maps cannot fail.
        let (kind, config) = match &descriptor.config {
            ExecutorConfig::Kiro(config) => (ExecutorKindName::Kiro, serde_json::to_value(config)),
            ExecutorConfig::Command(config) => {
                (ExecutorKindName::Command, serde_json::to_value(config))
            }
        };
        ExecutorView {
            name: descriptor.name.to_string(),
            kind,
            task_types: descriptor.task_types.iter().map(|t| (*t).into()).collect(),
            config: config.unwrap_or(Value::Null),
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
