//! Configuration: built-in defaults, then `tlao.toml` (or `--config FILE`), then `TLAO_*`
//! environment variables with `__` for nesting (`TLAO_GUARDRAILS__DAILY_RUN_QUOTA=3`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use tlao_domain::Guardrails;

/// Which table engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Embedded SQLite under the data dir (the default).
    Sqlite,
    /// In memory; everything is lost on exit.
    Memory,
    /// DynamoDB (needs the `aws` build).
    Dynamodb,
}

/// Which blob engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobsKind {
    /// Files under the data dir (the default).
    Fs,
    /// S3 (needs the `aws` build).
    S3,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The URL clients reach the server at, for presigned URLs; derived from `addr` when unset.
    pub public_url: Option<String>,
    /// On SIGTERM/SIGINT, how long the runs this server's workers are running may take
    /// to finish before they are cancelled.
    pub shutdown_grace_seconds: u64,
    /// Whether `tlao serve` runs its background loops (the reaper, the dispatcher, the
    /// metrics). `false` where the process is frozen between requests (AWS Lambda): a
    /// schedule calls `POST /admin/maintenance` instead, and a stop leaves the workers
    /// the server started alone.
    pub background: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            addr: SocketAddr::from(([127, 0, 0, 1], 7411)),
            public_url: None,
            shutdown_grace_seconds: 30,
            background: true,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    /// The engine.
    pub kind: StorageKind,
    /// The SQLite file; `<data_dir>/tlao.db` when unset.
    pub path: Option<PathBuf>,
    /// The DynamoDB table name.
    pub table: String,
    /// An endpoint override (an emulator).
    pub endpoint: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            kind: StorageKind::Sqlite,
            path: None,
            table: "tlao".into(),
            endpoint: None,
            region: None,
        }
    }
}

/// `[blobs]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BlobSettings {
    /// The engine.
    pub kind: BlobsKind,
    /// The root directory; `<data_dir>/blobs` when unset.
    pub root: Option<PathBuf>,
    /// The S3 bucket.
    pub bucket: String,
    /// An endpoint override (an emulator).
    pub endpoint: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
}

impl Default for BlobSettings {
    fn default() -> Self {
        BlobSettings {
            kind: BlobsKind::Fs,
            root: None,
            bucket: "tlao".into(),
            endpoint: None,
            region: None,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// The secret that signs session tokens and local presigned URLs (at least 32 bytes).
    pub secret: Option<String>,
    /// A file holding the secret, when it is not given inline.
    pub secret_file: Option<PathBuf>,
    /// How long a session token lives.
    pub token_ttl_seconds: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            secret: None,
            secret_file: None,
            token_ttl_seconds: 12 * 3600,
        }
    }
}

/// `[worker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WorkerSettings {
    /// A worker silent for this long has its run failed as `worker_lost`.
    pub heartbeat_timeout_seconds: u64,
    /// How many worker processes `tlao dev` runs at once.
    pub max_local_workers: usize,
    /// How many local worker processes are kept started ahead of their runs (0: each
    /// starts when its run is dispatched).
    pub standby: usize,
    /// Where `tlao dev`'s workers unpack runs; `<data_dir>/work` when unset.
    pub work_root: Option<PathBuf>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            heartbeat_timeout_seconds: 30,
            max_local_workers: 4,
            standby: 1,
            work_root: None,
        }
    }
}

/// `sandbox.mode`: how strictly agents are sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxModeSetting {
    /// Sandboxed where the kernel can (Landlock), else unsandboxed, said at start.
    Auto,
    /// Sandboxed, or the worker fails the run.
    Required,
    /// Never sandboxed (the agent's environment is still an allowlist).
    Off,
}

/// `[sandbox]`: what agents run in (see docs/security.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SandboxSettings {
    /// `auto` when unset; `tlao serve` with local agents wants it set to `off`
    /// explicitly where no sandbox is possible.
    pub mode: Option<SandboxModeSetting>,
    /// Paths every agent may read beneath (comma-separated in `TLAO_SANDBOX__READ`).
    pub read: Vec<PathBuf>,
    /// Paths every agent may write beneath (comma-separated in `TLAO_SANDBOX__WRITE`).
    pub write: Vec<PathBuf>,
    /// Variables of the server's environment every agent gets: names, or prefixes
    /// ending in `*` (comma-separated in `TLAO_SANDBOX__PASS_ENV`); never `TLAO_*`.
    pub pass_env: Vec<String>,
}

impl SandboxSettings {
    /// The mode's name, as `tlao worker --sandbox` takes it.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            None | Some(SandboxModeSetting::Auto) => "auto",
            Some(SandboxModeSetting::Required) => "required",
            Some(SandboxModeSetting::Off) => "off",
        }
    }
}

/// What starts a worker for each run the dispatcher leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LauncherKind {
    /// Nothing: workers lease runs themselves (`tlao worker`); `tlao serve`'s default.
    #[default]
    None,
    /// A `tlao worker --run --lease` process on this machine per run (`tlao dev`'s way).
    Process,
    /// A Fargate task per run (needs the `aws` build).
    Ecs,
}

/// `[launcher]`: how `tlao serve` starts workers (`tlao dev` always uses processes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LauncherSettings {
    /// The kind.
    pub kind: LauncherKind,
    /// `[launcher.ecs]`, for `kind = "ecs"`.
    pub ecs: EcsSettings,
}

/// `[launcher.ecs]`: where the Fargate worker tasks run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EcsSettings {
    /// The cluster's name or ARN (required).
    pub cluster: Option<String>,
    /// The worker task definition: `family`, `family:revision` or ARN (required).
    pub task_definition: Option<String>,
    /// The worker container's name in the task definition.
    pub container: String,
    /// Subnets of the tasks (awsvpc); comma-separated in `TLAO_LAUNCHER__ECS__SUBNETS`.
    pub subnets: Vec<String>,
    /// Security groups of the tasks; comma-separated in the environment.
    pub security_groups: Vec<String>,
    /// Whether the tasks get a public IP (public subnets without a NAT gateway).
    pub assign_public_ip: bool,
    /// The most tasks running at once.
    pub max_tasks: usize,
    /// The API URL the tasks reach the server at (their `TLAO_API_URL`); the server's
    /// public URL when unset.
    pub api_url: Option<String>,
    /// `true`: the task definition sets the workers' `TLAO_API_URL` itself and the
    /// launcher adds none (where the server cannot know its own URL, as on a Lambda
    /// function URL, which is created after the function). Not with `api_url`.
    pub api_url_from_task_definition: bool,
    /// An endpoint override (an emulator).
    pub endpoint: Option<String>,
    /// The region; the AWS chain's when unset.
    pub region: Option<String>,
}

impl Default for EcsSettings {
    fn default() -> Self {
        EcsSettings {
            cluster: None,
            task_definition: None,
            container: "worker".into(),
            subnets: Vec::new(),
            security_groups: Vec::new(),
            assign_public_ip: false,
            max_tasks: 4,
            api_url: None,
            api_url_from_task_definition: false,
            endpoint: None,
            region: None,
        }
    }
}

/// Everything the server reads from configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where local state lives; `$XDG_DATA_HOME/tlao` when unset (`TLAO_DATA_DIR`).
    pub data_dir: Option<PathBuf>,
    /// The token workers authenticate with (`TLAO_WORKER_TOKEN`); `tlao dev` makes one.
    pub worker_token: Option<String>,
    /// A static token that may call `POST /admin/maintenance` besides administrators
    /// (`TLAO_MAINTENANCE_TOKEN`, at least 32 bytes); unset: administrators only.
    pub maintenance_token: Option<String>,
    /// `[server]`
    pub server: ServerSettings,
    /// `[storage]`
    pub storage: StorageSettings,
    /// `[blobs]`
    pub blobs: BlobSettings,
    /// `[auth]`
    pub auth: AuthSettings,
    /// `[guardrails]`
    pub guardrails: Guardrails,
    /// `[worker]`
    pub worker: WorkerSettings,
    /// `[launcher]`
    pub launcher: LauncherSettings,
    /// `[sandbox]`
    pub sandbox: SandboxSettings,
    /// `[faults]`
    pub faults: FaultSettings,
    /// `[metrics]`
    pub metrics: MetricsSettings,
}

/// `[metrics]`: the backlog published as CloudWatch embedded-metric-format lines by
/// `tlao serve` (see `crate::metrics`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Seconds between two lines; 0 (the default) publishes nothing.
    pub emf_interval_seconds: u64,
    /// The CloudWatch namespace of the metrics.
    pub namespace: String,
    /// The value of their `Deployment` dimension (the stack's name on AWS).
    pub deployment: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            emf_interval_seconds: 0,
            namespace: "TLAO".into(),
            deployment: "tlao".into(),
        }
    }
}

/// `[faults]`: storage fault injection, for the chaos tests only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FaultSettings {
    /// A directory whose files `table` and `blobs` make that store's writes fail while
    /// they exist (their text names the fault: `full`, `read-only`, `refused`). Never
    /// set in production.
    pub dir: Option<PathBuf>,
}

impl Settings {
    /// Loads defaults, then the config file (`explicit`, else `./tlao.toml` when it
    /// exists), then `TLAO_*` variables.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder();
        match explicit {
            Some(path) => {
                if !path.is_file() {
                    bail!("config file {} does not exist", path.display());
                }
                builder = builder.add_source(config::File::from(path).required(true));
            }
            None => {
                builder = builder.add_source(config::File::with_name("tlao.toml").required(false));
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix("TLAO")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("launcher.ecs.subnets")
                .with_list_parse_key("launcher.ecs.security_groups")
                .with_list_parse_key("sandbox.read")
                .with_list_parse_key("sandbox.write")
                .with_list_parse_key("sandbox.pass_env"),
        );
        let settings: Settings = builder
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("invalid configuration (check tlao.toml and TLAO_* variables)")?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let g = &self.guardrails;
        if g.max_run_seconds == 0 {
            bail!("guardrails.max_run_seconds must be at least 1");
        }
        if g.max_queue_seconds == 0 {
            bail!("guardrails.max_queue_seconds must be at least 1");
        }
        if g.max_concurrent_runs == 0 {
            bail!("guardrails.max_concurrent_runs must be at least 1");
        }
        if g.max_archive_bytes == 0 {
            bail!("guardrails.max_archive_bytes must be at least 1");
        }
        if g.max_archive_entries == 0 {
            bail!("guardrails.max_archive_entries must be at least 1");
        }
        // `tlao dev` creates a workspace for its administrator.
        if g.max_workspaces_per_user == 0 {
            bail!("guardrails.max_workspaces_per_user must be at least 1");
        }
        let metrics = &self.metrics;
        let printable = |text: &str| {
            !text.is_empty()
                && text.len() <= 255
                && text.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        };
        if !printable(&metrics.namespace) || metrics.namespace.starts_with("AWS/") {
            bail!(
                "metrics.namespace must be 1 to 255 printable ASCII characters and not start with AWS/"
            );
        }
        if !printable(&metrics.deployment) {
            bail!("metrics.deployment must be 1 to 255 printable ASCII characters");
        }
        if let Some(token) = self.maintenance_token.as_deref().filter(|t| !t.is_empty())
            && token.len() < crate::secrets::MIN_SECRET_BYTES
        {
            bail!(
                "maintenance_token (TLAO_MAINTENANCE_TOKEN) is {} bytes; at least {} are needed",
                token.len(),
                crate::secrets::MIN_SECRET_BYTES
            );
        }
        if self.worker.max_local_workers == 0 {
            bail!("worker.max_local_workers must be at least 1");
        }
        if self.worker.heartbeat_timeout_seconds == 0 {
            bail!("worker.heartbeat_timeout_seconds must be at least 1");
        }
        if self.launcher.kind == LauncherKind::Ecs {
            let ecs = &self.launcher.ecs;
            if ecs.cluster.as_deref().is_none_or(str::is_empty) {
                bail!(
                    "launcher.kind = \"ecs\" needs launcher.ecs.cluster (TLAO_LAUNCHER__ECS__CLUSTER)"
                );
            }
            if ecs.task_definition.as_deref().is_none_or(str::is_empty) {
                bail!(
                    "launcher.kind = \"ecs\" needs launcher.ecs.task_definition (TLAO_LAUNCHER__ECS__TASK_DEFINITION)"
                );
            }
            if ecs.api_url_from_task_definition && ecs.api_url.is_some() {
                bail!(
                    "launcher.ecs.api_url and launcher.ecs.api_url_from_task_definition exclude each other"
                );
            }
            if ecs.max_tasks == 0 {
                bail!("launcher.ecs.max_tasks must be at least 1");
            }
        }
        Ok(())
    }

    /// The data dir: the setting, else `$XDG_DATA_HOME/tlao`, else `~/.local/share/tlao`.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        xdg_dir("XDG_DATA_HOME", ".local/share").map(|base| base.join("tlao"))
    }
}

/// `$VAR`, else `$HOME/<fallback>`.
pub fn xdg_dir(var: &str, fallback: &str) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither $XDG_* nor $HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(fallback))
}

#[cfg(test)]
mod tests {
    use super::{LauncherKind, Settings};

    fn ecs_settings() -> Settings {
        let mut settings = Settings::default();
        settings.launcher.kind = LauncherKind::Ecs;
        settings.launcher.ecs.cluster = Some("tlao".into());
        settings.launcher.ecs.task_definition = Some("tlao-worker".into());
        settings
    }

    #[test]
    fn the_background_loops_are_on_unless_turned_off() {
        assert!(Settings::default().server.background);
    }

    #[test]
    fn a_maintenance_token_shorter_than_32_bytes_is_refused() {
        let mut settings = Settings {
            maintenance_token: Some("x".repeat(31)),
            ..Settings::default()
        };
        let refusal = settings.validate().unwrap_err().to_string();
        assert!(refusal.contains("maintenance_token"), "{refusal}");

        settings.maintenance_token = Some("x".repeat(32));
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn an_api_url_and_one_from_the_task_definition_exclude_each_other() {
        let mut settings = ecs_settings();
        settings.launcher.ecs.api_url_from_task_definition = true;
        assert!(settings.validate().is_ok());

        settings.launcher.ecs.api_url = Some("https://api.example".into());
        let refusal = settings.validate().unwrap_err().to_string();
        assert!(refusal.contains("exclude each other"), "{refusal}");
    }
}
