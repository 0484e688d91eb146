//! The pure domain of TLÁO Codex.
//!
//! Ids, the TaskSpec and its validation, the Workspace/Task/Run/Artifact entities, the run
//! state machine, executor records and the [`Executor`] trait, guardrails (and the scan
//! that checks an archive against them as it arrives), and the single-table key layout. No I/O, no async runtime, no clock: callers pass time and
//! randomness in, so every rule here is a plain function that tests can call directly.

pub mod artifact;
pub mod availability;
pub mod event;
pub mod executor;
mod executor_stream;
pub mod guardrails;
pub mod id;
pub mod keys;
pub mod log_text;
pub mod run;
pub mod sandbox;
pub mod tar_scan;
pub mod task;
pub mod task_spec;
pub mod time;
pub mod user;
pub mod validation;
pub mod workspace;

pub use artifact::{Artifact, ArtifactName, ArtifactStatus, ArtifactType};
pub use availability::{ExecutorSeen, program_of};
pub use event::{
    EventPayload, LogStream, PlanEntry, PlanStatus, Reported, RunEvent, ToolCall, ToolKind,
    ToolStatus,
};
pub use executor::{
    AcpConfig, AcpPermission, CommandConfig, EventSink, ExecutionContext, ExecutionOutcome,
    ExecutionStatus, Executor, ExecutorConfig, ExecutorDescriptor, ExecutorName, KiroConfig,
    KiroHarness, ProducedArtifact, PromptVia, StreamConfig, StreamFormat,
};
pub use guardrails::{Guardrails, Limit};
pub use id::{
    ArchiveId, ArtifactId, IdError, KeyId, LeaseId, RunId, TaskId, Ulid, UserId, WorkspaceId,
};
pub use keys::{Key, KeyPrefix};
pub use log_text::LogText;
pub use run::{
    Cost, Fenced, Run, RunError, RunErrorCode, RunStatus, SequenceGap, Transition, TransitionError,
    Usage,
};
pub use sandbox::{EnvGrant, GrantedPath, NetworkPolicy, SandboxGrants};
pub use task::Task;
pub use task_spec::{
    CommitId, Constraints, ExpectedOutput, NewTask, Prompt, SourceRevision, TaskInput, TaskSpec,
    TaskType,
};
pub use time::{Timestamp, UtcDate};
pub use user::{ApiKeyRecord, User};
pub use validation::{FieldError, MAX_API_INTEGER, ValidationErrors};
pub use workspace::{Archive, Membership, Name, Role, Workspace};
