//! Runs handed to workers without HTTP: the local launcher keeps standby workers
//! waiting on a pipe, and gives one its run as a [`Handover`] document — the assignment
//! `GET /worker/runs/{id}/assignment` would answer, and the TaskSpec itself — so the
//! worker starts its agent without a request. The worker authenticates its later calls
//! with the worker token as any other.

use std::sync::Arc;
use std::time::Duration;

use tlao_domain::{LeaseId, RunId};
use tlao_orchestrator::{ServiceError, Services};
use tlao_wire::worker::{Handover, MAX_HANDED_TASK_SPEC_BYTES};

use crate::routes::worker::{announced_heartbeat_ms, assignment_view};

/// Writes [`Handover`] documents for runs the dispatcher leased.
pub struct Handovers {
    services: Arc<Services>,
    heartbeat_interval_ms: u64,
    heartbeat_timeout_ms: u64,
}

impl Handovers {
    /// Handovers over `services`, announcing the heartbeat a server with this
    /// `heartbeat_timeout` announces in its leases.
    pub fn new(services: Arc<Services>, heartbeat_timeout: Duration) -> Self {
        let (heartbeat_interval_ms, heartbeat_timeout_ms) =
            announced_heartbeat_ms(heartbeat_timeout);
        Handovers {
            services,
            heartbeat_interval_ms,
            heartbeat_timeout_ms,
        }
    }

    /// The handover of the run `run_id` under `lease_id`, as one line of JSON (no
    /// newline in it). The TaskSpec is left out when it is larger than
    /// [`MAX_HANDED_TASK_SPEC_BYTES`] or not JSON; the worker then downloads it.
    ///
    /// Errors: as `GET /worker/runs/{id}/assignment` (`NotFound`, a superseded lease,
    /// an unavailable store).
    pub async fn document(
        &self,
        run_id: &RunId,
        lease_id: &LeaseId,
    ) -> Result<String, ServiceError> {
        let (assignment, spec) = self
            .services
            .workers
            .handover(run_id, lease_id, MAX_HANDED_TASK_SPEC_BYTES)
            .await?;
        let handover = Handover {
            assignment: assignment_view(
                assignment,
                self.services.core.now(),
                self.heartbeat_interval_ms,
                self.heartbeat_timeout_ms,
            ),
            task_spec: spec.and_then(|bytes| serde_json::from_slice(&bytes).ok()),
        };
        serde_json::to_string(&handover).map_err(|e| ServiceError::Internal(e.into()))
    }
}
