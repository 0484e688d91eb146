//! The OpenAPI document, generated from the handlers' annotations and the DTOs'
//! schemas. A test in [`crate::routes`] checks it lists exactly the routed operations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::routes::{
    archives, artifacts, blobs, events, executors, health, runs, tasks, tokens, users, worker,
    workspaces,
};

/// The name of the bearer security scheme in the document.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TLÁO Codex API",
        description = "The control plane that hands work to AI coding agents. Every error is \
                       `application/problem+json`; every response carries `x-request-id`."
    ),
    paths(
        health::root,
        health::healthz,
        health::readyz,
        health::openapi_json,
        tokens::create_token,
        users::create_user,
        users::list_keys,
        users::create_key,
        users::revoke_key,
        workspaces::create_workspace,
        workspaces::list_workspaces,
        workspaces::get_workspace,
        archives::upload_archive,
        tasks::create_task,
        tasks::get_task,
        runs::create_run,
        runs::list_runs,
        runs::get_run,
        runs::cancel_run,
        events::stream_run_events,
        artifacts::list_run_artifacts,
        artifacts::get_artifact,
        executors::list_executors,
        executors::register_executor,
        executors::remove_executor,
        worker::lease,
        worker::get_assignment,
        worker::post_events,
        worker::create_artifact,
        worker::finalize_artifact,
        worker::complete,
        blobs::get_blob,
        blobs::put_blob,
    ),
    components(schemas(
        dto::Problem,
        dto::FieldErrorView,
        dto::TaskTypeName,
        dto::RunStatusName,
        dto::ArtifactTypeName,
        dto::ArtifactStatusName,
        dto::RunErrorCodeName,
        dto::LogStreamName,
        dto::RunEventMessage,
        dto::StreamEndMessage,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "meta", description = "Probes and this document"),
        (name = "auth", description = "Bearer tokens"),
        (name = "users", description = "Users and API keys"),
        (name = "workspaces", description = "Workspaces and their archives"),
        (name = "tasks", description = "Tasks: TaskSpecs in a workspace"),
        (name = "runs", description = "Runs of tasks"),
        (name = "artifacts", description = "What runs produced"),
        (name = "executors", description = "The executor registry"),
        (name = "worker", description = "The worker protocol (worker token)"),
        (name = "blobs", description = "Presigned blob URLs of local storage"),
    )
)]
struct ApiDoc;

/// Adds the bearer-JWT security scheme the operations refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A token from `POST /auth/token`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "worker",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The server's worker token (`TLAO_WORKER_TOKEN`)"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the API, as served at `GET /openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(&super::openapi().to_json().unwrap()).unwrap()
    }

    #[test]
    fn the_document_names_both_stream_messages_with_every_event_kind() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let variants = schemas["RunEvent"]["oneOf"]
            .as_array()
            .expect("RunEvent is a oneOf");
        assert_eq!(variants.len(), tlao_wire::EVENT_NAMES.len());
        assert_eq!(
            schemas["StreamEnd"]["properties"]["status"]["$ref"],
            "#/components/schemas/RunStatusName"
        );
    }

    #[test]
    fn workspaces_page_by_cursor_and_api_keys_are_listed_without_the_key() {
        let doc = document();
        let names = |operation: &Value| -> Vec<String> {
            operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            names(&doc["paths"]["/workspaces"]["get"]),
            ["limit", "cursor"]
        );
        assert_eq!(
            names(&doc["paths"]["/users/{userId}/keys/{keyId}"]["delete"]),
            ["userId", "keyId"]
        );
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["WorkspaceList"]["properties"]["nextCursor"].is_object());
        let mut listed: Vec<&String> = schemas["ApiKeyView"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        listed.sort();
        assert_eq!(listed, ["createdAt", "keyId", "lastUsedAt"]);
        for field in ["limit", "max", "maxBytes", "retryAfterSeconds"] {
            assert!(
                schemas["Problem"]["properties"][field].is_object(),
                "{field}"
            );
        }
        let create = &doc["paths"]["/workspaces"]["post"]["responses"];
        assert!(create["429"].is_object());
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_and_ids_carry_their_pattern() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "CreateRunRequest",
            "CreateTaskRequest",
            "CreateWorkspaceRequest",
            "CreateUserRequest",
            "TokenRequest",
            "RegisterExecutorRequest",
            "EventBatch",
            "CompleteRequest",
        ] {
            assert_eq!(
                schemas[name]["additionalProperties"],
                Value::Bool(false),
                "{name} must say additionalProperties: false"
            );
        }
        assert_eq!(
            schemas["CreateRunRequest"]["properties"]["taskId"]["pattern"],
            "^task_[0-7][0-9A-HJKMNP-TV-Z]{25}$"
        );
    }
}
