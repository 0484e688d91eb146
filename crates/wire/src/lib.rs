//! The wire of TLÁO Codex: every JSON shape that crosses a process boundary, defined once.
//!
//! - the user-facing HTTP API's requests and answers ([`workspaces`], [`tasks`],
//!   [`runs`], [`artifacts`], [`executors`], [`users`], [`health`], [`problem`]);
//! - a run's event stream, `GET /runs/{id}/events` ([`events`]);
//! - the worker protocol, `/worker/*` ([`worker`]).
//!
//! The server (`tlao-api`) writes these shapes and derives its OpenAPI document from them
//! (feature `openapi`); the Rust SDK, the worker and the CLI read and send the same
//! types, and the TypeScript SDK's types are generated from that document. So a field
//! is added in one place and every side follows.
//!
//! These are not the stored documents: the single-table codec keeps its own shape (the
//! domain types' serde form), so a storage change cannot change the API by accident, and
//! the conversions here are the one place where the two meet. Enumerations are the wire's
//! own ([`names`]), converted to and from the domain's. Ids and timestamps are the
//! domain's value types: their text form (`run_01…`, RFC 3339) is the same everywhere,
//! and a value read here is already valid.
//!
//! Answers ignore fields they do not know (a newer server may add some); the server reads
//! requests with the domain's parsers, which refuse unknown fields and name every bad one.

pub mod admin;
pub mod artifacts;
pub mod bundles;
mod de;
pub mod events;
pub mod executors;
pub mod executors_stream;
pub mod health;
pub mod names;
pub mod presets;
pub mod problem;
pub mod runs;
pub mod sandbox;
#[cfg(feature = "openapi")]
mod schema;
pub mod tasks;
pub mod users;
pub mod worker;
pub mod workspaces;

pub use admin::MaintenanceReport;
pub use artifacts::{ArtifactList, ArtifactView};
pub use bundles::{BUNDLE_FORMAT, BUNDLE_MANIFEST, BundleExecutor, BundleFile, BundleManifest};
pub use events::{
    END_EVENT, EVENT_NAMES, PlanEntryView, RunEventMessage, StreamEndMessage, ToolCallView,
};
pub use executors::{
    AcpConfigBody, AcpKind, AcpPermissionName, CommandConfigBody, CommandKind, ExecutorList,
    ExecutorView, KiroConfigBody, KiroKind, PromptViaName, RegisterAcpExecutor,
    RegisterCommandExecutor, RegisterExecutorRequest, RegisterKiroExecutor,
};
pub use executors_stream::{
    RegisterStreamExecutor, StreamConfigBody, StreamFormatName, StreamKind,
};
pub use health::{BlobUploaded, Health};
pub use names::{
    ArtifactStatusName, ArtifactTypeName, ExecutorKindName, LogStreamName, PlanStatusName,
    RunErrorCodeName, RunStatusName, TaskTypeName, ToolKindName, ToolStatusName,
};
pub use problem::{FenceReason, FieldErrorView, Problem};
pub use runs::{CostView, CreateRunRequest, RunErrorView, RunList, RunView, UsageView};
pub use sandbox::{NetworkPolicyBody, SandboxGrantsBody, SandboxGrantsView};
pub use tasks::{
    ConstraintsBody, CreateTaskRequest, ExpectedOutputBody, SourceRevisionBody, TaskInputBody,
    TaskSpecView, TaskView,
};
pub use tlao_domain::LogText;
pub use users::{
    ApiKeyList, ApiKeyView, CreateUserRequest, CreatedApiKey, CreatedUser, TokenRequest,
    TokenResponse,
};
pub use workspaces::{
    ArchiveView, CreateWorkspaceRequest, WorkspaceLimits, WorkspaceList, WorkspaceView,
};
