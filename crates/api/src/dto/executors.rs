//! Executor registry records.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tlao_domain::{ExecutorConfig, ExecutorDescriptor};
use utoipa::ToSchema;

use super::TaskTypeName;

/// The kinds of executor built into the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKindName {
    /// The Kiro CLI: `config = {"binary", "agent"?, "extraArgs"?, "preflight"?, "maxRunSeconds"?}`.
    Kiro,
    /// Any CLI from an argv template: `config = {"command", "env"?, "promptVia"?, "maxRunSeconds"?}`.
    Command,
}

/// The body of `POST /executors`; every bad field is reported at once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterExecutorRequest {
    /// A unique name: 1 to 63 of `a-z`, `0-9`, `-`, starting with a letter.
    pub name: String,
    /// The kind.
    pub kind: ExecutorKindName,
    /// The task types it serves; at least one.
    pub task_types: Vec<TaskTypeName>,
    /// The kind's configuration.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// A registered executor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorView {
    /// Its unique name.
    pub name: String,
    /// Its kind.
    pub kind: ExecutorKindName,
    /// The task types it serves.
    pub task_types: Vec<TaskTypeName>,
    /// Its configuration, with defaults filled in.
    #[schema(value_type = Object)]
    pub config: Value,
}

impl TryFrom<&ExecutorDescriptor> for ExecutorView {
    type Error = serde_json::Error;

    fn try_from(descriptor: &ExecutorDescriptor) -> Result<Self, Self::Error> {
        let (kind, config) = match &descriptor.config {
            ExecutorConfig::Kiro(config) => (ExecutorKindName::Kiro, serde_json::to_value(config)?),
            ExecutorConfig::Command(config) => {
                (ExecutorKindName::Command, serde_json::to_value(config)?)
            }
        };
        Ok(ExecutorView {
            name: descriptor.name.to_string(),
            kind,
            task_types: descriptor.task_types.iter().map(|t| (*t).into()).collect(),
            config,
        })
    }
}

/// Every registered executor, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutorList {
    /// The executors.
    pub items: Vec<ExecutorView>,
}
