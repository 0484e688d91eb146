//! The orchestrator of TLÁO Codex (the seed's "Codex_Orchestrator"): the use cases behind
//! the API and the worker protocol, and the store they share.
//!
//! Each service has one method per use case and speaks domain types; none knows about
//! HTTP. The [`store`] turns entities into single-table items and back (written once,
//! in [`codec`]) and wraps every table call in the retry policy of requirement 13.2.
//! Every multi-item write is a named operation of [`transactions`] (or, for the writes
//! of a run that race, [`run_store`]) with a typed refusal; attribute names are in
//! [`attrs`].

pub mod archives;
pub mod artifacts;
pub mod attrs;
pub mod backlog;
pub mod bundles;
pub mod codec;
pub mod context;
pub mod dispatcher;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod maintenance;
pub mod read_cache;
pub mod reaper;
pub mod registry;
pub mod retry;
pub mod run_store;
pub mod runs;
pub mod sessions;
pub mod start;
pub mod store;
pub mod stream;
pub mod tasks;
pub mod transaction;
pub mod transactions;
pub mod users;
pub mod worker;
pub mod workspaces;

use std::sync::Arc;

use tlao_domain::Guardrails;
use tlao_ports::{BlobStore, Clock, EventBus, Table};

pub use archives::ArchiveService;
pub use artifacts::{ArtifactService, ArtifactView};
pub use backlog::Backlog;
pub use bundles::{BundleService, RunRecord};
pub use codec::{CodecError, Entity, Lookup, Step};
pub use context::{Caller, Core};
pub use dispatcher::{Dispatcher, LaunchedRuns};
pub use error::ServiceError;
pub use events::{EventService, LogPage};
pub use idempotency::Idempotency;
pub use maintenance::{Maintenance, MaintenancePass};
pub use reaper::{Reaper, Sweep};
pub use registry::{ExecutorRegistry, Selection, Sighting};
pub use retry::RetryPolicy;
pub use runs::{CreateRun, RunFilter, RunPage, RunService, RunView};
pub use sessions::{SessionService, StartedSession};
pub use start::{StartService, StartTask, Started};
pub use store::{Store, StoreError};
pub use stream::{RunStream, StreamItem, StreamService};
pub use tasks::TaskService;
pub use users::{IssuedKey, IssuedUser, KeySummary, UserService};
pub use worker::{Assignment, Completion, Lease, NewArtifact, Report, WorkerService};
pub use workspaces::{WorkspacePage, WorkspaceService, WorkspaceSummary};

/// Every service, wired over one set of dependencies.
pub struct Services {
    /// Shared dependencies.
    pub core: Arc<Core>,
    /// Users and API keys.
    pub users: Arc<UserService>,
    /// Workspaces and memberships.
    pub workspaces: Arc<WorkspaceService>,
    /// Tasks.
    pub tasks: Arc<TaskService>,
    /// Runs.
    pub runs: Arc<RunService>,
    /// Starting work: a task, its run, or both, idempotently.
    pub start: Arc<StartService>,
    /// Archive uploads.
    pub archives: Arc<ArchiveService>,
    /// Artifacts.
    pub artifacts: Arc<ArtifactService>,
    /// The executor registry.
    pub executors: Arc<ExecutorRegistry>,
    /// The worker protocol.
    pub workers: Arc<WorkerService>,
    /// Run events.
    pub events: Arc<EventService>,
    /// Run records, for bundles.
    pub bundles: Arc<BundleService>,
    /// Live streams of run events.
    pub streams: Arc<StreamService>,
    /// Console sessions.
    pub sessions: Arc<SessionService>,
}

impl Services {
    /// Wires every service over a table, a blob store, a clock and the event bus that
    /// carries stored run events to live streams.
    pub fn new(
        table: Arc<dyn Table>,
        blobs: Arc<dyn BlobStore>,
        clock: Arc<dyn Clock>,
        guardrails: Guardrails,
        bus: Arc<dyn EventBus>,
    ) -> Self {
        let core = Arc::new(Core {
            store: Store::new(table, RetryPolicy::default()).with_event_bus(bus.clone()),
            blobs,
            clock,
            guardrails,
            last_ulid: std::sync::Mutex::new(tlao_domain::Ulid::from_parts(0, 0)),
            queue_version: tokio::sync::watch::Sender::new(0),
            cache: read_cache::ReadCache::default(),
            leasing: std::sync::atomic::AtomicBool::new(true),
        });
        let workspaces = Arc::new(WorkspaceService::new(core.clone()));
        let tasks = Arc::new(TaskService::new(core.clone()));
        let executors = Arc::new(ExecutorRegistry::new(
            core.clone(),
            registry::DEFAULT_REFRESH,
        ));
        let runs = Arc::new(RunService::new(
            core.clone(),
            tasks.clone(),
            workspaces.clone(),
            executors.clone(),
        ));
        let bundles = Arc::new(BundleService::new(
            core.clone(),
            runs.clone(),
            tasks.clone(),
            executors.clone(),
        ));
        Services {
            users: Arc::new(UserService::new(core.clone())),
            start: Arc::new(StartService::new(
                tasks.clone(),
                runs.clone(),
                executors.clone(),
            )),
            runs,
            archives: Arc::new(ArchiveService::new(core.clone())),
            artifacts: Arc::new(ArtifactService::new(core.clone())),
            workers: Arc::new(WorkerService::new(core.clone(), executors.clone())),
            events: Arc::new(EventService::new(core.clone())),
            bundles,
            streams: Arc::new(StreamService::new(core.clone(), bus)),
            sessions: Arc::new(SessionService::new(core.clone())),
            workspaces,
            tasks,
            executors,
            core,
        }
    }
}
