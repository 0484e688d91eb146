//! The test harness: each test boots its own API on `127.0.0.1:0` over a fresh
//! `MemoryTable` and an `FsBlobStore` in a temporary directory, with a bootstrapped
//! administrator and (unless told otherwise) a `kiro` executor serving every task type.
//! The clock is a `ManualClock` set to the wall clock at start, so tests can move time
//! (token expiry) and the UTC day never changes under a test.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod streams;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tlao_adapters_local::{FsBlobStore, LocalEventBus, MemoryTable};
use tlao_api::{ApiConfig, AppDeps};
use tlao_domain::{ExecutorDescriptor, Guardrails, Name, Timestamp};
use tlao_orchestrator::{Dispatcher, Maintenance, Reaper, Services};
use tlao_ports::{ManualClock, PresignedGateway, RunLauncher, Table};

/// The secret test servers sign tokens with.
pub const JWT_SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";

/// The token test workers authenticate with.
pub const WORKER_TOKEN: &str = "test-worker-token";

/// How a test app differs from the default.
pub struct Options {
    /// The limits in force.
    pub guardrails: Guardrails,
    /// Whether to register the `kiro` executor serving every task type.
    pub kiro: bool,
    /// Whether `/blobs/*` is served (local presigned URLs).
    pub presigned: bool,
    /// The table; a fresh `MemoryTable` when absent.
    pub table: Option<Arc<dyn Table>>,
    /// What the dashboard says of local agents' sandbox (none: no local agents).
    pub agents: Option<tlao_api::AgentSandbox>,
    /// What `POST /admin/maintenance` dispatches through (none: it only reaps).
    pub launcher: Option<Arc<dyn RunLauncher>>,
    /// The maintenance token, besides administrators.
    pub maintenance_token: Option<String>,
    /// Whether creating a run dispatches before answering (a server with its loops off).
    pub dispatch_on_create: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            guardrails: Guardrails::default(),
            kiro: true,
            presigned: true,
            table: None,
            agents: None,
            launcher: None,
            maintenance_token: None,
            dispatch_on_create: false,
        }
    }
}

/// A user of the test app with a token and a workspace of their own.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub user_id: String,
    pub api_key: String,
    pub token: String,
    pub workspace_id: String,
}

/// A running API and everything behind it.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    pub client: reqwest::Client,
    pub services: Arc<Services>,
    pub blobs: Arc<FsBlobStore>,
    pub clock: Arc<ManualClock>,
    /// The bootstrapped administrator (no workspace of their own: empty id).
    pub admin: TestUser,
    _dir: TempDir,
}

impl TestApp {
    /// An app with the default options.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// An app with `guardrails`, otherwise the defaults.
    pub async fn with_guardrails(guardrails: Guardrails) -> TestApp {
        TestApp::spawn_with(Options {
            guardrails,
            ..Options::default()
        })
        .await
    }

    /// An app with `options`.
    pub async fn spawn_with(options: Options) -> TestApp {
        let dir = TempDir::new().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(now)));
        let blobs = Arc::new(
            FsBlobStore::new(
                dir.path().join("blobs"),
                address.clone(),
                b"presign-secret".to_vec(),
                clock.clone(),
            )
            .unwrap(),
        );
        let services = Arc::new(Services::new(
            options
                .table
                .unwrap_or_else(|| Arc::new(MemoryTable::new())),
            blobs.clone(),
            clock.clone(),
            options.guardrails,
            Arc::new(LocalEventBus::new()),
        ));
        let issued = services
            .users
            .bootstrap_admin(Name::try_from("admin".to_owned()).unwrap())
            .await
            .unwrap()
            .expect("a fresh table has no administrator");
        if options.kiro {
            services
                .executors
                .ensure(
                    ExecutorDescriptor::parse(&json!({
                        "name": "kiro",
                        "kind": "kiro",
                        "taskTypes": ["spec.generate", "code.change", "doc.write", "deploy.run"],
                        "config": {"binary": "kiro-cli"}
                    }))
                    .unwrap(),
                )
                .await
                .unwrap();
        }
        let presigned: Option<Arc<dyn PresignedGateway>> = if options.presigned {
            Some(blobs.clone())
        } else {
            None
        };
        let mut config = ApiConfig::new(JWT_SECRET);
        config.worker_token = Some(WORKER_TOKEN.into());
        config.agents = options.agents;
        config.maintenance_token = options.maintenance_token;
        config.dispatch_on_create = options.dispatch_on_create;
        let heartbeat_timeout = std::time::Duration::from_secs(30);
        let dispatcher = options.launcher.map(|launcher| {
            Arc::new(Dispatcher::new(
                services.core.clone(),
                services.workers.clone(),
                launcher,
                std::time::Duration::from_millis(500),
            ))
        });
        let maintenance = Arc::new(Maintenance::new(
            Reaper::new(
                services.core.clone(),
                heartbeat_timeout,
                std::time::Duration::from_secs(5),
            ),
            dispatcher,
        ));
        let server = tlao_api::build(
            config,
            AppDeps {
                services: services.clone(),
                presigned,
                maintenance: Some(maintenance),
            },
            listener,
        )
        .unwrap();
        tokio::spawn(server);

        let mut app = TestApp {
            address,
            client: reqwest::Client::new(),
            services,
            blobs,
            clock,
            admin: TestUser {
                user_id: issued.user.user_id.to_string(),
                api_key: issued.api_key.clone(),
                token: String::new(),
                workspace_id: String::new(),
            },
            _dir: dir,
        };
        app.admin.token = app.token_for(&issued.api_key).await;
        app
    }

    /// The directory the app's blobs are stored in.
    pub fn blobs_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("blobs")
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A GET of `path` with `token`.
    pub fn get(&self, path: &str, token: &str) -> RequestBuilder {
        self.client
            .get(self.url(path))
            .header(AUTHORIZATION, format!("Bearer {token}"))
    }

    /// The JSON body of a GET of `path` with `token`.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A POST of `body` as JSON to `path` with `token`.
    pub fn post(&self, path: &str, token: &str, body: &Value) -> RequestBuilder {
        self.client
            .post(self.url(path))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(body)
    }

    /// A POST of `body` as JSON to a worker route, with the worker token.
    pub async fn worker_post(&self, path: &str, body: &Value) -> Response {
        self.post(path, WORKER_TOKEN, body).send().await.unwrap()
    }

    /// Leases the oldest queued run through `POST /worker/lease`, as a worker would:
    /// its run id and lease id. Panics when no run is queued.
    pub async fn lease(&self) -> (String, String) {
        let response = self
            .worker_post("/worker/lease", &json!({"waitSeconds": 0}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "no run to lease");
        let assignment: Value = response.json().await.unwrap();
        (
            assignment["run"]["runId"].as_str().unwrap().to_owned(),
            assignment["leaseId"].as_str().unwrap().to_owned(),
        )
    }

    /// Exchanges an API key for a token.
    pub async fn token_for(&self, api_key: &str) -> String {
        let response = self
            .client
            .post(self.url("/auth/token"))
            .json(&json!({"apiKey": api_key}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// A new user, with a token and a workspace they own, made through the API.
    pub async fn user(&self, name: &str) -> TestUser {
        let created = self
            .post("/users", &self.admin.token, &json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let api_key = created["apiKey"].as_str().unwrap().to_owned();
        let token = self.token_for(&api_key).await;
        let workspace = self
            .post(
                "/workspaces",
                &token,
                &json!({"name": format!("{name}'s workspace")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(workspace.status(), StatusCode::CREATED);
        let workspace: Value = workspace.json().await.unwrap();
        TestUser {
            user_id: created["userId"].as_str().unwrap().to_owned(),
            api_key,
            token,
            workspace_id: workspace["workspaceId"].as_str().unwrap().to_owned(),
        }
    }

    /// A `spec.generate` task in the user's workspace; its id.
    pub async fn task(&self, user: &TestUser) -> String {
        self.task_of_type(user, "spec.generate").await
    }

    /// A task of `task_type` in the user's workspace; its id.
    pub async fn task_of_type(&self, user: &TestUser, task_type: &str) -> String {
        let response = self
            .post(
                "/tasks",
                &user.token,
                &json!({
                    "workspaceId": user.workspace_id,
                    "taskType": task_type,
                    "input": {"prompt": "plan the work"}
                }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["taskId"].as_str().unwrap().to_owned()
    }

    /// `POST /runs` of a task, as the user.
    pub async fn create_run(&self, user: &TestUser, task_id: &str) -> Response {
        self.post("/runs", &user.token, &json!({"taskId": task_id}))
            .send()
            .await
            .unwrap()
    }

    /// A queued run of a new task; its id.
    pub async fn run(&self, user: &TestUser) -> String {
        let task_id = self.task(user).await;
        let response = self.create_run(user, &task_id).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["runId"].as_str().unwrap().to_owned()
    }

    /// Signs `claims` with `secret` as an HS256 token.
    pub fn sign(claims: &Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    /// Now, by the app's clock, in seconds since the epoch.
    pub fn now_seconds(&self) -> i64 {
        self.services.core.now().unix_millis() / 1000
    }
}

/// Asserts `response` is a problem with `status` and returns its body, checking the
/// fields every problem has (and that `requestId` matches the header).
pub async fn problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .expect("a problem has a content type")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let header_id = response
        .headers()
        .get("x-request-id")
        .expect("every response has a request id")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:tlao:problem:"),
        "{body}"
    );
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(body["requestId"], header_id.as_str(), "{body}");
    body
}

/// The fields named in a 400 problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("a 400 problem lists its errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// A valid tar.gz of exactly `len` bytes (at least about 30): an empty archive, padded
/// to the length with a gzip header comment, so the upload's scan reads it whole and
/// any length is possible.
pub fn gzip_like(len: usize) -> Vec<u8> {
    use std::io::Write;
    let build = |padding: usize| {
        let mut encoder = flate2::GzBuilder::new()
            .comment(vec![b'x'; padding])
            .write(Vec::new(), flate2::Compression::best());
        encoder.write_all(&[0u8; 1024]).unwrap();
        encoder.finish().unwrap()
    };
    let shortest = build(0).len();
    assert!(len >= shortest, "a tar.gz needs at least {shortest} bytes");
    let bytes = build(len - shortest);
    assert_eq!(bytes.len(), len);
    bytes
}

/// A tar.gz of `files` (path, content), as `tar` and `gzip` would write it.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *content).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&tar).unwrap();
    encoder.finish().unwrap()
}
