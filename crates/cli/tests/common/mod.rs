//! Shared fixture of the end-to-end tests: a real `tlao dev` process on a temporary data
//! dir and a free port, and an HTTP client logged in as its administrator.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// The `tlao` binary under test.
pub fn tlao_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tlao"))
}

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

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
        let mut command = Command::new(tlao_bin());
        command
            .args(["dev", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("TLAO_CONFIG_DIR", config_dir)
            .env("TLAO_LOG", "warn")
            .env_remove("TLAO_API_URL")
            .env_remove("TLAO_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
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

    /// Sends SIGINT (Ctrl-C) and waits for a clean exit; returns the exit status code.
    pub fn interrupt(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait works") {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("tlao dev did not stop within 30 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lines printed after the ready line, so far.
    pub fn printed(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
}
