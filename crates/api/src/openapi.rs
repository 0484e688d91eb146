//! The OpenAPI document, generated from the handlers' annotations and the DTOs'
//! schemas. A test in [`crate::routes`] checks it lists exactly the routed operations.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::dto;
use crate::routes::{
    admin, archives, artifacts, blobs, bundles, events, executors, health, runs, tasks, tokens,
    users, worker, workspaces,
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
        bundles::get_run_bundle,
        executors::list_executors,
        executors::register_executor,
        executors::list_presets,
        executors::remove_executor,
        worker::lease,
        worker::get_assignment,
        worker::post_events,
        worker::create_artifact,
        worker::finalize_artifact,
        worker::complete,
        blobs::get_blob,
        blobs::put_blob,
        admin::run_maintenance,
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
        tlao_wire::BundleManifest,
        tlao_wire::BundleExecutor,
    )),
    modifiers(&BearerScheme, &JsonBodyAnswers),
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
        (name = "admin", description = "Operator routes (an administrator, or the maintenance token)"),
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
        components.add_security_scheme(
            "maintenance",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The server's maintenance token (`TLAO_MAINTENANCE_TOKEN`), for a scheduler",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the answers of the JSON body extractor to every operation that reads a JSON body
/// (one place, so no route can leave them out): `413` over the size limit and `415` when
/// the body is not declared `application/json` (a missing `Content-Type` included; the
/// body is not guessed at). Bad JSON is a `400`, which each route documents with its own
/// field errors.
struct JsonBodyAnswers;

impl JsonBodyAnswers {
    const ANSWERS: [(&'static str, &'static str); 2] = [
        (
            "413",
            "The body is larger than the server's JSON limit (`maxBytes`)",
        ),
        (
            "415",
            "The body is not declared JSON: send `Content-Type: application/json`",
        ),
    ];

    fn reads_json(operation: &Operation) -> bool {
        operation
            .request_body
            .as_ref()
            .is_some_and(|body| match body {
                RefOr::T(body) => body.content.contains_key("application/json"),
                RefOr::Ref(_) => false,
            })
    }
}

impl Modify for JsonBodyAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                if !Self::reads_json(operation) {
                    continue;
                }
                for (status, description) in Self::ANSWERS {
                    let problem = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(dto::Problem::name())))
                        .build();
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content("application/problem+json", problem)
                        .build();
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| response.into());
                }
            }
        }
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

    /// The schema `$ref` points at, or `schema` itself.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// Every operation of the document: (method, path, operation).
    fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((method.to_uppercase(), path.clone(), operation));
            }
        }
        all
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
    fn every_id_in_the_document_carries_the_pattern_of_its_kind() {
        use tlao_domain::{
            ArchiveId, ArtifactId, KeyId, LeaseId, RunId, TaskId, UserId, WorkspaceId,
        };

        // Cursors are the last id of a page: of runs or of workspaces.
        let prefixes = [
            ("runId", RunId::PREFIX),
            ("taskId", TaskId::PREFIX),
            ("workspaceId", WorkspaceId::PREFIX),
            ("artifactId", ArtifactId::PREFIX),
            ("archiveId", ArchiveId::PREFIX),
            ("userId", UserId::PREFIX),
            ("leaseId", LeaseId::PREFIX),
            ("keyId", KeyId::PREFIX),
            ("cursor", RunId::PREFIX),
            ("nextCursor", RunId::PREFIX),
            ("cursor", WorkspaceId::PREFIX),
            ("nextCursor", WorkspaceId::PREFIX),
        ];
        // Not an entity id: a client may send its own (1 to 128 visible characters).
        let not_entity_ids = ["requestId"];
        let expected = |name: &str| -> Vec<Value> {
            prefixes
                .iter()
                .filter(|(field, _)| *field == name)
                .map(|(_, prefix)| format!("^{prefix}[0-7][0-9A-HJKMNP-TV-Z]{{25}}$").into())
                .collect()
        };
        let mut checked = 0;
        let mut check = |name: &str, schema: &Value, at: &str| {
            if !(name.ends_with("Id") || name.contains("ursor")) || not_entity_ids.contains(&name) {
                return;
            }
            let patterns = expected(name);
            assert!(
                !patterns.is_empty(),
                "{at}: {name} is an id of an unknown kind"
            );
            assert!(
                patterns.contains(&schema["pattern"]),
                "{at}: {} is not one of {patterns:?}",
                schema["pattern"]
            );
            checked += 1;
        };

        let doc = document();
        for (method, path, operation) in operations(&doc) {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                check(
                    name,
                    &parameter["schema"],
                    &format!("{method} {path} {name}"),
                );
            }
        }
        fn properties<'a>(schema: &'a Value, out: &mut Vec<(String, &'a Value)>) {
            if let Some(map) = schema["properties"].as_object() {
                for (name, property) in map {
                    out.push((name.clone(), property));
                    properties(property, out);
                }
            }
            for keyword in ["oneOf", "allOf", "anyOf"] {
                for branch in schema[keyword].as_array().into_iter().flatten() {
                    properties(branch, out);
                }
            }
            if schema["items"].is_object() {
                properties(&schema["items"], out);
            }
        }
        for (component, schema) in doc["components"]["schemas"].as_object().unwrap() {
            let mut found = Vec::new();
            properties(schema, &mut found);
            for (name, property) in found {
                let property = match property["items"].is_object() {
                    true => resolve(&doc, &property["items"]),
                    false => property,
                };
                check(&name, property, &format!("{component}.{name}"));
            }
        }
        assert!(checked > 30, "only {checked} ids were found");
    }

    #[test]
    fn every_operation_that_reads_json_documents_400_413_and_415() {
        let doc = document();
        let mut reading = 0;
        for (method, path, operation) in operations(&doc) {
            if operation["requestBody"]["content"]["application/json"].is_null() {
                continue;
            }
            reading += 1;
            for status in ["400", "413", "415"] {
                assert_eq!(
                    operation["responses"][status]["content"]["application/problem+json"]["schema"]
                        ["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} does not document {status}"
                );
            }
        }
        assert_eq!(reading, 11);
    }

    /// Objects of request bodies that take unknown fields on purpose: shapes the server
    /// also sends, which clients read ignoring fields they do not know.
    const OPEN_REQUEST_OBJECTS: [&str; 2] = ["RunErrorView", "UsageView"];

    /// Asserts that every object in `schema` refuses properties it does not list.
    fn assert_closed(doc: &Value, schema: &Value, at: &str, seen: &mut Vec<String>) {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            if OPEN_REQUEST_OBJECTS.contains(&name) || seen.iter().any(|s| s == name) {
                return;
            }
            seen.push(name.to_owned());
            return assert_closed(doc, resolve(doc, schema), name, seen);
        }
        for keyword in ["oneOf", "allOf", "anyOf"] {
            for (i, branch) in schema[keyword].as_array().into_iter().flatten().enumerate() {
                assert_closed(doc, branch, &format!("{at}/{keyword}/{i}"), seen);
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            assert_eq!(
                schema["additionalProperties"],
                Value::Bool(false),
                "{at} takes unknown properties"
            );
            for (name, property) in properties {
                assert_closed(doc, property, &format!("{at}.{name}"), seen);
            }
        }
        if schema["items"].is_object() {
            assert_closed(doc, &schema["items"], &format!("{at}[]"), seen);
        }
    }

    #[test]
    fn every_object_of_a_json_request_body_refuses_unknown_fields() {
        let doc = document();
        for (method, path, operation) in operations(&doc) {
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            if !body.is_null() {
                assert_closed(&doc, body, &format!("{method} {path}"), &mut Vec::new());
            }
        }
    }

    #[test]
    fn the_event_stream_describes_each_message_and_its_data() {
        let doc = document();
        let ok = &doc["paths"]["/runs/{runId}/events"]["get"]["responses"]["200"]["content"];
        let message = resolve(&doc, &ok["text/event-stream"]["schema"]);
        let variants = message["oneOf"]
            .as_array()
            .expect("one shape per kind of message");
        let events: Vec<&Value> = variants
            .iter()
            .map(|v| &v["properties"]["event"]["enum"])
            .collect();
        assert_eq!(
            events,
            [
                &serde_json::json!(tlao_wire::EVENT_NAMES),
                &serde_json::json!([tlao_wire::END_EVENT])
            ]
        );
        for (variant, data) in variants.iter().zip(["RunEvent", "StreamEnd"]) {
            let property = &variant["properties"]["data"];
            assert_eq!(property["type"], "string");
            assert_eq!(property["contentMediaType"], "application/json");
            assert_eq!(
                property["contentSchema"]["$ref"],
                format!("#/components/schemas/{data}")
            );
            assert_eq!(
                variant["required"],
                serde_json::json!(["event", "id", "data"])
            );
        }
    }
}
