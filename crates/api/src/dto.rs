//! The JSON views the API speaks: camelCase bodies converted from domain types, each a
//! schema of the OpenAPI document. Requests are read as JSON values and parsed by the
//! domain's parsers (so every bad field is reported); the request types here describe
//! them for the document and parse the few bodies the domain has no parser for.

mod artifacts;
mod common;
mod events;
mod executors;
mod health;
mod problem;
mod runs;
mod tasks;
mod users;
mod workspaces;

pub use artifacts::{ArtifactList, ArtifactView};
pub use common::{ArtifactStatusName, ArtifactTypeName, RunStatusName, TaskTypeName};
pub use events::{LogStreamName, RunEventMessage, StreamEndMessage};
pub use executors::{ExecutorKindName, ExecutorList, ExecutorView, RegisterExecutorRequest};
pub use health::{Binary, BlobUploaded, Health};
pub use problem::{FieldErrorView, Problem};
pub use runs::{CreateRunRequest, RunErrorCodeName, RunErrorView, RunList, RunView, UsageView};
pub use tasks::{
    ConstraintsBody, CreateTaskRequest, ExpectedOutputBody, TaskInputBody, TaskSpecView, TaskView,
};
pub use users::{CreateUserRequest, CreatedUser, TokenRequest, TokenResponse};
pub use workspaces::{
    ArchiveView, CreateWorkspaceRequest, WorkspaceLimits, WorkspaceList, WorkspaceView,
};
