//! The composition root of the server: adapters chosen by configuration, wired into the
//! services and the HTTP API. `tlao serve` and `tlao dev` both start here.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tlao_adapters_local::faults::{self, FaultSwitch, FaultyBlobStore, FaultyTable};
use tlao_adapters_local::{FsBlobStore, LocalEventBus, MemoryTable, SqliteTable};
use tlao_api::{ApiConfig, AppDeps};
use tlao_orchestrator::{Dispatcher, LaunchedRuns, Maintenance, Reaper, Services};
use tlao_ports::{BlobStore, Clock, PresignedGateway, RunLauncher, SystemClock, Table};

use crate::secrets;
use crate::settings::{BlobsKind, LauncherKind, Settings, StorageKind};

/// How long after its deadline the reaper times a run out, leaving the worker time to
/// report the timeout itself with its last logs.
const DEADLINE_GRACE: Duration = Duration::from_secs(5);
/// How often the reaper looks at running runs.
const REAPER_INTERVAL: Duration = Duration::from_secs(1);
/// How often the dispatcher polls the queue besides waking on local changes.
const DISPATCH_POLL: Duration = Duration::from_millis(500);

/// What [`Server::start_background`] started, for a graceful stop.
pub struct Background {
    /// The runs whose workers this server started and that are still running; `None`
    /// without a launcher (workers lease runs themselves).
    pub launched: Option<LaunchedRuns>,
    /// The launcher, to end what is left of its workers at the end of a stop.
    pub launcher: Option<Arc<dyn RunLauncher>>,
}

/// A configured server, ready to run.
pub struct Server {
    /// The services, for bootstrapping before the API starts.
    pub services: Arc<Services>,
    /// The URL clients reach it at.
    pub public_url: String,
    api_config: ApiConfig,
    presigned: Option<Arc<dyn PresignedGateway>>,
    /// The passes of `POST /admin/maintenance`, once the background is started.
    maintenance: Option<Arc<Maintenance>>,
    listener: TcpListener,
}

impl Server {
    /// Binds the listener and opens storage as `settings` say. `create_secret` lets
    /// `tlao dev` generate a secret in the data dir on first start.
    pub async fn open(settings: &Settings, create_secret: bool) -> anyhow::Result<Server> {
        let data_dir = settings.data_dir()?;
        let listener = TcpListener::bind(settings.server.addr)
            .with_context(|| format!("cannot listen on {}", settings.server.addr))?;
        let local = listener.local_addr()?;
        let public_url = settings
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"))
            .trim_end_matches('/')
            .to_owned();
        let secret = resolve_secret(settings, &data_dir, create_secret)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);

        let table: Arc<dyn Table> =
            match settings.storage.kind {
                StorageKind::Sqlite => {
                    let path = settings
                        .storage
                        .path
                        .clone()
                        .unwrap_or_else(|| data_dir.join("tlao.db"));
                    Arc::new(SqliteTable::open(&path).await.with_context(|| {
                        format!("opening the SQLite table at {}", path.display())
                    })?)
                }
                StorageKind::Memory => Arc::new(MemoryTable::new()),
                StorageKind::Dynamodb => crate::aws::open_table(&settings.storage).await?,
            };
        let (blobs, presigned): (Arc<dyn BlobStore>, Option<Arc<dyn PresignedGateway>>) =
            match settings.blobs.kind {
                BlobsKind::Fs => {
                    let root = settings
                        .blobs
                        .root
                        .clone()
                        .unwrap_or_else(|| data_dir.join("blobs"));
                    let store = Arc::new(
                        FsBlobStore::new(
                            root.clone(),
                            public_url.clone(),
                            secret.as_bytes().to_vec(),
                            clock.clone(),
                        )
                        .with_context(|| format!("opening the blob store at {}", root.display()))?,
                    );
                    (store.clone(), Some(store))
                }
                // S3 serves its own presigned URLs: no gateway.
                BlobsKind::S3 => (crate::aws::open_blobs(&settings.blobs).await?, None),
            };
        let (table, blobs) = match &settings.faults.dir {
            Some(dir) => inject_faults(dir, table, blobs),
            None => (table, blobs),
        };
        let services = Arc::new(Services::new(
            table,
            blobs,
            clock,
            settings.guardrails,
            Arc::new(LocalEventBus::new()),
        ));
        services
            .executors
            .reload()
            .await
            .context("loading the executor registry")?;
        let mut api_config = ApiConfig::new(secret.into_bytes());
        api_config.token_ttl = Duration::from_secs(settings.auth.token_ttl_seconds);
        api_config.worker_token = settings.worker_token.clone();
        api_config.maintenance_token = settings.maintenance_token.clone();
        // `tlao dev` (create_secret) and `launcher.kind = "process"` start agents here:
        // the dashboard says whether they are sandboxed.
        if create_secret || settings.launcher.kind == LauncherKind::Process {
            api_config.agents = Some(crate::launcher::agent_sandbox(settings));
        }
        api_config.heartbeat_timeout =
            Duration::from_secs(settings.worker.heartbeat_timeout_seconds);
        Ok(Server {
            services,
            public_url,
            api_config,
            presigned,
            maintenance: None,
            listener,
        })
    }

    /// Starts the background loops: the reaper (always) and, with a launcher, the
    /// dispatcher that starts one worker per queued run. They stop with the process.
    /// Also readies `POST /admin/maintenance`, one pass of the same work on demand.
    ///
    /// With `server.background = false` no loop starts and nothing is swept at start:
    /// the process may be frozen between requests (AWS Lambda), and a schedule calls
    /// the maintenance route instead. The returned [`Background`] then names no runs and
    /// no launcher, so a stop neither waits for nor ends the workers this process
    /// started: they belong to the deployment, and report to any instance.
    pub async fn start_background(
        &mut self,
        settings: &Settings,
        launcher: Option<Arc<dyn RunLauncher>>,
    ) -> anyhow::Result<Background> {
        let core = self.services.core.clone();
        let heartbeat_timeout = Duration::from_secs(settings.worker.heartbeat_timeout_seconds);
        let stopper = launcher.clone();
        let dispatcher = launcher.map(|launcher| {
            Arc::new(
                Dispatcher::new(
                    core.clone(),
                    self.services.workers.clone(),
                    launcher,
                    DISPATCH_POLL,
                )
                .with_stop_grace(heartbeat_timeout),
            )
        });
        self.maintenance = Some(Arc::new(Maintenance::new(
            Reaper::new(core.clone(), heartbeat_timeout, DEADLINE_GRACE),
            dispatcher.clone(),
        )));
        if !settings.server.background {
            // Nothing else would start a new run's worker before the next pass.
            self.api_config.dispatch_on_create = true;
            tracing::info!(
                "background loops off (server.background = false): POST /admin/maintenance reaps and dispatches"
            );
            return Ok(Background {
                launched: None,
                launcher: None,
            });
        }
        let reaper = Reaper::new(core, heartbeat_timeout, DEADLINE_GRACE);
        // Runs a crash left `running` are judged before anything else happens: at once
        // when the launcher knows their worker is gone, else by their heartbeat.
        if let Some(dispatcher) = &dispatcher {
            let failed = dispatcher
                .recover()
                .await
                .context("failing the runs of workers an earlier stop left gone")?;
            if !failed.is_empty() {
                tracing::warn!(
                    lost = failed.len(),
                    "failed the runs whose worker an earlier stop ended"
                );
            }
        }
        let sweep = reaper.sweep().await.context("judging runs left running")?;
        if !sweep.timed_out.is_empty() || !sweep.lost.is_empty() {
            tracing::warn!(
                timed_out = sweep.timed_out.len(),
                lost = sweep.lost.len(),
                "ended runs left running by an earlier stop"
            );
        }
        if !sweep.expired.is_empty() {
            tracing::warn!(
                expired = sweep.expired.len(),
                "failed the runs that waited queued past guardrails.max_queue_seconds"
            );
        }
        tokio::spawn(reaper.run(REAPER_INTERVAL));
        if settings.metrics.emf_interval_seconds > 0 {
            tokio::spawn(crate::metrics::publish(
                self.services.core.clone(),
                settings.metrics.clone(),
            ));
        }
        // The workers of a process launcher exist only while a run does: the server
        // probes its own PATH for them, so selection knows what can run here (R2.2).
        if self.api_config.agents.is_some() {
            tokio::spawn(crate::launcher::probe_locally(
                self.services.executors.clone(),
                LOCAL_PROBE_INTERVAL,
            ));
        }
        let launched = dispatcher.as_ref().map(|d| d.launched());
        if let Some(dispatcher) = dispatcher {
            tokio::spawn(dispatcher.run());
        }
        Ok(Background {
            launched,
            launcher: stopper,
        })
    }

    /// Starts serving; the returned handle resolves when the server stops (Ctrl-C).
    pub fn start(self) -> anyhow::Result<actix_web::dev::Server> {
        let deps = AppDeps {
            services: self.services,
            presigned: self.presigned,
            maintenance: self.maintenance,
        };
        tlao_api::build(self.api_config, deps, self.listener).context("starting the HTTP server")
    }
}

/// How often the server probes its own `PATH` for the executors its local workers run.
const LOCAL_PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// How often the fault directory is looked at.
const FAULT_POLL: Duration = Duration::from_millis(100);

/// Wraps the stores in decorators that fail their writes while `dir` says so (see
/// [`tlao_adapters_local::faults`]); for chaos tests.
fn inject_faults(
    dir: &Path,
    table: Arc<dyn Table>,
    blobs: Arc<dyn BlobStore>,
) -> (Arc<dyn Table>, Arc<dyn BlobStore>) {
    tracing::warn!(
        dir = %dir.display(),
        "storage fault injection is on (faults.dir): never use this in production"
    );
    let (table_switch, blob_switch) = (FaultSwitch::default(), FaultSwitch::default());
    faults::watch_dir(
        dir.to_path_buf(),
        table_switch.clone(),
        blob_switch.clone(),
        FAULT_POLL,
    );
    (
        Arc::new(FaultyTable::new(table, table_switch)),
        Arc::new(FaultyBlobStore::new(blobs, blob_switch)),
    )
}

/// The signing secret: `auth.secret`, else `auth.secret_file`, else (for `tlao dev`)
/// `<data_dir>/secret.key`, created on first start.
fn resolve_secret(settings: &Settings, data_dir: &Path, create: bool) -> anyhow::Result<String> {
    if let Some(secret) = &settings.auth.secret {
        if secret.len() < secrets::MIN_SECRET_BYTES {
            bail!(
                "auth.secret is {} bytes; at least {} are needed",
                secret.len(),
                secrets::MIN_SECRET_BYTES
            );
        }
        return Ok(secret.clone());
    }
    if let Some(path) = &settings.auth.secret_file {
        return secrets::read(path);
    }
    let path = data_dir.join("secret.key");
    if create {
        secrets::load_or_create(&path)
    } else if path.exists() {
        secrets::read(&path)
    } else {
        bail!(
            "no signing secret: set auth.secret or auth.secret_file (TLAO_AUTH__SECRET_FILE), or create {}",
            path.display()
        )
    }
}
