//! Shared fixture of the end-to-end tests: a real `tlao dev` process on a temporary data
//! dir and a free port, and an HTTP client logged in as its administrator.
//!
//! - [`DevServer`]: starts `tlao dev` (optionally with the stand-in `kiro-cli` first on
//!   its `PATH`, [`DevServer::with_standin`]) and, when dropped, kills it together with
//!   every worker and agent process it started.
//! - [`Api`]: a small JSON client, with helpers to start runs and await their outcome.
//! - [`agents`]: the real agent CLIs and their fake model endpoints.
//! - [`archives`]: workspace archives, hostile ones included.
//! - [`processes`]: finding and checking processes through `/proc`.

#![allow(dead_code)]

pub mod agents;
pub mod archives;
pub mod processes;
pub mod proxy;
pub mod serve;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

/// The `tlao` binary under test.
pub fn tlao_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tlao"))
}

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    dir.canonicalize().unwrap_or(dir)
}

/// A `PATH` with `tests/fixtures` first, so the default `kiro` executor (binary
/// `kiro-cli`) finds the stand-in.
pub fn path_with_standin() -> String {
    let inherited = std::env::var("PATH").unwrap_or_default();
    format!("{}:{inherited}", fixtures().display())
}

/// How long the tests wait for something that should take a second or two.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// How often the tests poll the API.
pub const POLL: Duration = Duration::from_millis(50);
/// The statuses a run ends in.
pub const FINAL_STATUSES: [&str; 4] = ["completed", "failed", "timed_out", "cancelled"];

/// A running `tlao dev`.
pub struct DevServer {
    child: Option<Child>,
    /// Its base URL.
    pub url: String,
    /// Its data dir.
    pub data_dir: PathBuf,
    /// The config dir the CLI login was stored in.
    pub config_dir: PathBuf,
    /// Everything it printed on stdout after the ready line.
    lines: mpsc::Receiver<String>,
}

impl DevServer {
    /// Starts `tlao dev` on `data_dir` with extra environment variables, and waits for
    /// its ready line.
    pub fn start(data_dir: &Path, config_dir: &Path, env: &[(&str, &str)]) -> DevServer {
        DevServer::start_on("127.0.0.1:0", data_dir, config_dir, env)
    }

    /// [`DevServer::start`] on the address `addr` (e.g. to restart a server on the
    /// port it had).
    pub fn start_on(
        addr: &str,
        data_dir: &Path,
        config_dir: &Path,
        env: &[(&str, &str)],
    ) -> DevServer {
        let mut command = Command::new(tlao_bin());
        command
            .args(["dev", "--addr", addr, "--data-dir"])
            .arg(data_dir)
            .env("TLAO_CONFIG_DIR", config_dir)
            .env("TLAO_LOG", "warn")
            .env_remove("TLAO_API_URL")
            .env_remove("TLAO_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // The stand-in's agents run sandboxed: they get the `KIRO_STANDIN_*` variables
        // passed through, and may write the files those name (created here, empty, so
        // the sandbox can grant them; nothing else of the test's directory).
        let mut granted: Vec<String> = Vec::new();
        for (name, value) in env {
            if name.starts_with("KIRO_STANDIN_") && name.ends_with("_FILE") {
                let file = Path::new(value);
                if !file.exists() {
                    std::fs::write(file, "").expect("creating a stand-in's report file");
                }
                granted.push((*value).to_owned());
            }
        }
        command.env("TLAO_SANDBOX__PASS_ENV", "KIRO_STANDIN_*");
        if !granted.is_empty() {
            command.env("TLAO_SANDBOX__WRITE", granted.join(","));
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("tlao dev starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let url = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("Ready: ") {
                        break url.trim().to_owned();
                    }
                }
                Err(e) => panic!("tlao dev did not become ready: {e}"),
            }
        };
        DevServer {
            child: Some(child),
            url,
            data_dir: data_dir.to_path_buf(),
            config_dir: config_dir.to_path_buf(),
            lines: rx,
        }
    }

    /// Starts `tlao dev` in `dir` (data in `dir/data`, CLI login in `dir/config`) with
    /// the stand-in `kiro-cli` first on its `PATH` and extra environment variables;
    /// its workers and their agents inherit both.
    pub fn with_standin(dir: &Path, env: &[(&str, &str)]) -> DevServer {
        let path = path_with_standin();
        let mut all: Vec<(&str, &str)> = vec![("PATH", path.as_str())];
        all.extend_from_slice(env);
        DevServer::start(&dir.join("data"), &dir.join("config"), &all)
    }

    /// The process id of `tlao dev`, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where its workers unpack runs (`<data_dir>/work`).
    pub fn work_root(&self) -> PathBuf {
        self.data_dir.join("work")
    }

    /// The administrator's API key, from `admin.key`.
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.key"))
            .expect("admin.key exists")
            .trim()
            .to_owned()
    }

    /// A client with a session token for the administrator.
    pub async fn admin(&self) -> Api {
        Api::login(&self.url, &self.admin_key()).await
    }

    /// Sends SIGINT (Ctrl-C) to `tlao dev` alone and waits for it to exit (a graceful
    /// stop: running runs may finish first); returns the exit status code.
    pub fn interrupt(&mut self) -> Option<i32> {
        self.stop_with(Signal::SIGINT, Duration::from_secs(60)).0
    }

    /// Sends `signal` to `tlao dev` alone, without waiting.
    pub fn send(&self, signal: Signal) {
        if let Some(child) = &self.child {
            processes::signal(child.id(), signal);
        }
    }

    /// Sends `signal` to `tlao dev` and waits for it to exit; returns its exit code and
    /// how long it took. Panics after `deadline` (killing it).
    pub fn stop_with(&mut self, signal: Signal, deadline: Duration) -> (Option<i32>, Duration) {
        self.send(signal);
        self.wait_exit(deadline)
    }

    /// Waits for `tlao dev` (already signalled) to exit; returns its exit code and how
    /// long it took from now. Panics after `deadline` (killing it).
    pub fn wait_exit(&mut self, deadline: Duration) -> (Option<i32>, Duration) {
        let Some(mut child) = self.child.take() else {
            return (None, Duration::ZERO);
        };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait works") {
                return (status.code(), start.elapsed());
            }
            if start.elapsed() > deadline {
                let _ = child.kill();
                panic!("tlao dev did not stop within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines printed after the ready line, so far.
    ///
    /// Once the process has exited, this waits (briefly) for the reader thread to hand
    /// over everything it printed, so a last line such as "Stopped." is never missed.
    pub fn printed(&self) -> Vec<String> {
        if self.child.is_some() {
            return self.lines.try_iter().collect();
        }
        let mut lines = Vec::new();
        // The reader thread ends (and the channel disconnects) at end of stdout.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for DevServer {
    /// Kills `tlao dev` and everything it started (workers, agents, their children), so
    /// no process outlives the test. The server is frozen first so it launches nothing
    /// between the survey of its descendants and the kill.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            processes::signal(child.id(), Signal::SIGSTOP);
            for pid in processes::descendants(child.id()) {
                processes::kill_now(pid);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Workers an interrupted server (this one, or an earlier one on the same data
        // dir) left running.
        processes::kill_workers_under(&self.work_root());
    }
}

/// A tiny JSON client with a bearer token.
pub struct Api {
    /// The base URL.
    pub url: String,
    /// The session token.
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    /// Exchanges an API key for a token.
    pub async fn login(url: &str, api_key: &str) -> Api {
        let http = reqwest::Client::new();
        let response = http
            .post(format!("{url}/auth/token"))
            .json(&json!({"apiKey": api_key}))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200, "login failed");
        let body: Value = response.json().await.expect("json");
        Api {
            url: url.to_owned(),
            token: body["token"].as_str().expect("a token").to_owned(),
            http,
        }
    }

    /// The stored events of a finished run, as `GET /runs/{id}/events` replays them
    /// (the stream ends after its `end` message): each message's event name and data,
    /// `end` included.
    pub async fn events(&self, run_id: &str) -> Vec<(String, Value)> {
        let body = tokio::time::timeout(PATIENCE, async {
            self.http
                .get(format!("{}/runs/{run_id}/events", self.url))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("the server answers")
                .text()
                .await
                .expect("the stream ends after the run's end")
        })
        .await
        .expect("the stream of a finished run ends");
        let mut messages = Vec::new();
        let mut event = String::new();
        for line in body.lines() {
            if let Some(name) = line.strip_prefix("event:") {
                event = name.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:") {
                let data = serde_json::from_str(data.trim()).expect("JSON data");
                messages.push((std::mem::take(&mut event), data));
            }
        }
        messages
    }

    /// GET `path`; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// DELETE `path`; returns status and JSON body (null when empty).
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST `body` to `path`; returns status and JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POST raw `body` bytes of `content_type` to `path`; returns status and JSON body.
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GET a presigned `url` (absolute, or relative to the server) without the token;
    /// returns status and bytes.
    pub async fn download(&self, url: &str) -> (u16, Vec<u8>) {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.url)
        } else {
            url.to_owned()
        };
        let response = self.http.get(url).send().await.expect("the server answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("a body").to_vec();
        (status, bytes)
    }

    /// Creates a workspace and returns its id.
    pub async fn create_workspace(&self, name: &str) -> String {
        let (status, ws) = self.post("/workspaces", json!({"name": name})).await;
        assert_eq!(status, 201, "creating a workspace: {ws}");
        ws["workspaceId"]
            .as_str()
            .expect("a workspace id")
            .to_owned()
    }

    /// Uploads a `tar.gz` to `workspace` and returns its archive id.
    pub async fn upload_archive(&self, workspace: &str, tar_gz: Vec<u8>) -> String {
        let (status, archive) = self
            .post_bytes(
                &format!("/workspaces/{workspace}/archives"),
                "application/gzip",
                tar_gz,
            )
            .await;
        assert_eq!(status, 201, "uploading an archive: {archive}");
        archive["archiveId"]
            .as_str()
            .expect("an archive id")
            .to_owned()
    }

    /// Creates a task and queues a run of it; returns the run id.
    pub async fn start_run(&self, task: Value, executor: Option<&str>) -> String {
        let (status, created) = self.post("/tasks", task).await;
        assert_eq!(status, 201, "creating a task: {created}");
        let mut body = json!({"taskId": created["taskId"]});
        if let Some(executor) = executor {
            body["executor"] = json!(executor);
        }
        let (status, run) = self.post("/runs", body).await;
        assert_eq!(status, 201, "creating a run: {run}");
        run["runId"].as_str().expect("a run id").to_owned()
    }

    /// Queues a run of a new `task_type` task with `prompt` (and `archive_id`) in
    /// `workspace`, on the executor the orchestrator picks; returns the run id.
    pub async fn run_prompt(
        &self,
        workspace: &str,
        task_type: &str,
        prompt: &str,
        archive_id: Option<&str>,
    ) -> String {
        let mut input = json!({"prompt": prompt});
        if let Some(archive_id) = archive_id {
            input["archiveId"] = json!(archive_id);
        }
        self.start_run(
            json!({"workspaceId": workspace, "taskType": task_type, "input": input}),
            None,
        )
        .await
    }

    /// The run, as `GET /runs/{id}` shows it.
    pub async fn run(&self, run_id: &str) -> Value {
        let (status, run) = self.get(&format!("/runs/{run_id}")).await;
        assert_eq!(status, 200, "reading run {run_id}: {run}");
        run
    }

    /// Polls the run until `done` holds, and returns it; panics naming `what` after
    /// `deadline`, with the run as last seen.
    pub async fn await_run(
        &self,
        run_id: &str,
        what: &str,
        deadline: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + deadline;
        loop {
            let run = self.run(run_id).await;
            if done(&run) {
                return run;
            }
            assert!(
                Instant::now() < end,
                "run {run_id} did not {what} within {deadline:?}; last seen: {run:#}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls the run until it reaches a final status, and returns it.
    pub async fn await_final(&self, run_id: &str) -> Value {
        self.await_run(run_id, "reach a final status", PATIENCE, |run| {
            FINAL_STATUSES.contains(&run["status"].as_str().unwrap_or_default())
        })
        .await
    }

    /// The run's artifacts, in order.
    pub async fn artifacts(&self, run_id: &str) -> Vec<Value> {
        let (status, list) = self.get(&format!("/runs/{run_id}/artifacts")).await;
        assert_eq!(status, 200, "listing the artifacts of {run_id}: {list}");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Downloads the run's artifact named `name` (through `GET /artifacts/{id}` and its
    /// `downloadUrl`); panics when there is none.
    pub async fn artifact_bytes(&self, run_id: &str, name: &str) -> (Value, Vec<u8>) {
        let artifacts = self.artifacts(run_id).await;
        let listed = artifacts
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("run {run_id} has no artifact {name}: {artifacts:#?}"));
        let id = listed["artifactId"].as_str().expect("an artifact id");
        let (status, artifact) = self.get(&format!("/artifacts/{id}")).await;
        assert_eq!(status, 200, "reading artifact {id}: {artifact}");
        assert_eq!(artifact["status"], "available", "{artifact}");
        let url = artifact["downloadUrl"].as_str().expect("a download URL");
        let (status, bytes) = self.download(url).await;
        assert_eq!(status, 200, "downloading {name} from {url}");
        (artifact, bytes)
    }
}
