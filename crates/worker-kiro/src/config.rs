//! The worker's configuration: which API to talk to, where to work, and its limits.

use std::path::PathBuf;
use std::time::Duration;

use tlao_domain::{ExecutorName, Guardrails};

use crate::confine::{AgentGrants, SandboxMode};

/// The default cap on the bytes a workspace archive may extract to: the API's default
/// `guardrails.max_unpacked_bytes` (1 GiB), which uploads are checked against.
pub const DEFAULT_MAX_EXTRACTED_BYTES: u64 = Guardrails::DEFAULT_MAX_UNPACKED_BYTES;
/// The default cap on the entries a workspace archive may hold: the API's default
/// `guardrails.max_archive_entries` (100,000).
pub const DEFAULT_MAX_ENTRIES: u64 = Guardrails::DEFAULT_MAX_ARCHIVE_ENTRIES;
/// The default longest time an event waits to be joined by others while no request is
/// in flight: none. An event is sent at once when the shipper is idle; while a request
/// is in flight, what arrives waits for it and goes in the next batch, so idle latency
/// is one round trip and bursts still coalesce.
pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::ZERO;
/// The default time between heartbeats while the executor is quiet.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// The default longest wait of a line of a run's last steps (after its agent ended) for
/// the others: half a second, so the end, the patch and the stored artifacts leave in
/// one report with the finish.
pub const DEFAULT_WIND_DOWN_LINGER: Duration = Duration::from_millis(500);

/// How a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The API's base URL, e.g. `http://127.0.0.1:7411`.
    pub api_url: String,
    /// The worker token (`TLAO_WORKER_TOKEN`).
    pub token: String,
    /// Where per-run directories are created; each is removed after its run.
    pub work_root: PathBuf,
    /// Only lease runs of these executors; any when `None`.
    pub executors: Option<Vec<ExecutorName>>,
    /// The most bytes a workspace archive may extract to.
    pub max_extracted_bytes: u64,
    /// The most entries a workspace archive may hold.
    pub max_entries: u64,
    /// The longest an event waits before it is sent to the API.
    pub batch_interval: Duration,
    /// How often a heartbeat is sent while there are no events.
    pub heartbeat_interval: Duration,
    /// How long a line of a run's last steps (after its agent ended) may wait to leave
    /// with the others; never past the next heartbeat, and the finish sends what waits
    /// at once (see [`ChannelSink::linger`](crate::events::ChannelSink::linger)).
    pub wind_down_linger: Duration,
    /// The most events kept while the API cannot be reached; more are dropped (and the
    /// run says how many).
    pub max_buffered_events: usize,
    /// The most bytes of event text kept while the API cannot be reached.
    pub max_buffered_bytes: usize,
    /// How strictly agents are sandboxed (`sandbox.mode`).
    pub sandbox: SandboxMode,
    /// What every agent of this worker is given beyond its run's directories (paths,
    /// network, variables passed through); nothing by default.
    pub grants: AgentGrants,
    /// Directories besides the work root that no agent may see through its `PATH`
    /// (the server's data directory).
    pub protected: Vec<PathBuf>,
    /// The id this worker reports its executors' availability under (requirement 2.2):
    /// the host's name and the process id by default.
    pub worker_id: String,
}

impl WorkerConfig {
    /// A configuration with the default limits, creating run directories under
    /// `work_root`.
    pub fn new(
        api_url: impl Into<String>,
        token: impl Into<String>,
        work_root: impl Into<PathBuf>,
    ) -> WorkerConfig {
        WorkerConfig {
            api_url: api_url.into(),
            token: token.into(),
            work_root: work_root.into(),
            executors: None,
            max_extracted_bytes: DEFAULT_MAX_EXTRACTED_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
            batch_interval: DEFAULT_BATCH_INTERVAL,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            wind_down_linger: DEFAULT_WIND_DOWN_LINGER,
            max_buffered_events: crate::events::MAX_BUFFERED_EVENTS,
            max_buffered_bytes: crate::events::MAX_BUFFERED_BYTES,
            sandbox: SandboxMode::default(),
            grants: AgentGrants::default(),
            protected: Vec::new(),
            worker_id: crate::availability::default_worker_id(),
        }
    }
}
