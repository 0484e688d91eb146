//! The API's JSON shapes are the wire crate's ([`tlao_wire`]), defined once for the
//! server, the SDKs, the worker and the CLI; this module re-exports the ones the routes
//! use and adds what only the server needs: views built from the orchestrator's answers,
//! the parsers of the bodies the domain has no parser for, and the schema of raw bodies.
//!
//! Requests are read as JSON values and parsed by the domain's parsers (so every bad
//! field is reported); the request types of the wire describe them for the document.

use serde_json::Value;
use tlao_domain::validation::Collector;
use tlao_domain::{ExecutorName, TaskId, Timestamp, ValidationErrors};
use tlao_orchestrator::{CreateRun, IssuedUser, RunPage};
use tlao_ports::BlobMeta;
use utoipa::ToSchema;

pub use tlao_wire::{
    ApiKeyList, ApiKeyView, ArchiveView, ArtifactList, ArtifactStatusName, ArtifactTypeName,
    ArtifactView, BlobUploaded, CreateRunRequest, CreateTaskRequest, CreateUserRequest,
    CreateWorkspaceRequest, CreatedApiKey, CreatedUser, ExecutorList, ExecutorView, FieldErrorView,
    Health, LogStreamName, MaintenanceReport, Problem, RegisterExecutorRequest, RunErrorCodeName,
    RunEventMessage, RunList, RunStatusName, RunView, StreamEndMessage, TaskTypeName, TaskView,
    TokenRequest, TokenResponse, WorkspaceList, WorkspaceView,
};

use crate::params::single_string;

/// Raw bytes in a request or response body (a tar.gz, a blob), documented as a binary
/// string rather than an array of numbers.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(pub Vec<u8>);

/// The view of a run the orchestrator read, as it is at `now`.
pub fn run_view(view: tlao_orchestrator::RunView, now: Timestamp) -> RunView {
    let tlao_orchestrator::RunView {
        run,
        queue_position,
        logs,
    } = view;
    RunView::new(run, queue_position, logs, now)
}

/// The view of a page of runs at `now`.
pub fn run_list(page: RunPage, now: Timestamp) -> RunList {
    RunList {
        items: page
            .items
            .into_iter()
            .map(|view| run_view(view, now))
            .collect(),
        next_cursor: page.next_cursor.map(String::from),
    }
}

/// The view of an artifact the orchestrator read, with its download while available.
pub fn artifact_view(view: tlao_orchestrator::ArtifactView) -> ArtifactView {
    let tlao_orchestrator::ArtifactView { artifact, download } = view;
    ArtifactView::new(artifact, download.map(|url| (url.url, url.expires_at)))
}

/// A new user and its only copy of the API key.
pub fn created_user(issued: IssuedUser) -> CreatedUser {
    CreatedUser {
        user_id: issued.user.user_id,
        api_key: issued.api_key,
        key_id: Some(issued.key_id),
    }
}

/// The view of a user's key as listed.
pub fn api_key_view(summary: tlao_orchestrator::KeySummary) -> ApiKeyView {
    ApiKeyView {
        key_id: summary.record.key_id,
        created_at: summary.record.created_at,
        last_used_at: summary.last_used_at,
    }
}

/// A new key and its only copy.
pub fn created_api_key(issued: tlao_orchestrator::IssuedKey) -> CreatedApiKey {
    CreatedApiKey {
        key_id: issued.record.key_id,
        user_id: issued.record.user_id,
        api_key: issued.api_key,
        created_at: issued.record.created_at,
    }
}

/// What a presigned upload stored.
pub fn blob_uploaded(meta: BlobMeta) -> BlobUploaded {
    BlobUploaded {
        key: meta.key.to_string(),
        size: meta.size,
    }
}

/// Parses a `POST /runs` body, reporting every bad or missing field.
pub(crate) fn parse_create_run(body: &Value) -> Result<CreateRun, ValidationErrors> {
    let mut errors = Collector::new();
    let request = errors.object("", body).and_then(|map| {
        errors.reject_unknown("", map, &["taskId", "executor"]);
        let task_id = errors
            .string("", map, "taskId", true)
            .and_then(|text| errors.check("taskId", text.parse::<TaskId>()));
        let executor = match errors.string("", map, "executor", false) {
            None => Some(None),
            Some(text) => errors
                .check("executor", text.parse::<ExecutorName>())
                .map(Some),
        };
        Some(CreateRun {
            task_id: task_id?,
            executor: executor?,
        })
    });
    errors.finish(request)
}

/// The API key of a `POST /auth/token` body.
pub(crate) fn parse_token_request(body: &Value) -> Result<String, ValidationErrors> {
    single_string(body, "apiKey")
}

/// The name of a `POST /users` or `POST /workspaces` body.
pub(crate) fn parse_name(body: &Value) -> Result<String, ValidationErrors> {
    single_string(body, "name")
}
