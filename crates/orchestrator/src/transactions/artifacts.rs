//! Registering a run's artifact and settling it once its upload ended. Both are run
//! writes ([`crate::run_store`]): the artifact joins the run's document, and an
//! artifact that became available is announced by an event on the run.
//!
//! Both are fenced: only the run's lease, while the run runs, registers or settles its
//! artifacts. So an artifact of an ended run never becomes available, whatever happened
//! to its bytes (an S3 presigned PUT cannot be revoked; this is where it stops counting).
//! The run's end settles what is still pending ([`settle_pending_ops`]).

use tlao_domain::{
    Artifact, ArtifactStatus, EventPayload, LeaseId, Run, RunId, RunStatus, WorkspaceId, keys,
};
use tlao_ports::{AttrValue, Condition, Update, WriteOp};

use crate::attrs;
use crate::codec::{self, Lookup, LookupOf};
use crate::context::Core;
use crate::error::ServiceError;
use crate::run_store::{self, RunWriteError, WriteFailure, check_fence};
use crate::transactions::workspaces::count_artifact;

/// Why [`settle_artifact`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum SettleArtifactError {
    /// The artifact is no longer pending: another finalize settled it first.
    #[error("the artifact was already settled")]
    AlreadySettled,
    /// The run is gone, kept changing, or storage failed.
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// Stores a new pending `artifact` of a run held by `lease_id`, with its lookup item,
/// and lists it on the run. [`ServiceError::Fenced`] when the lease may not write the
/// run (nothing is stored).
pub async fn register_artifact(
    core: &Core,
    lease_id: &LeaseId,
    artifact: &Artifact,
) -> Result<(), ServiceError> {
    let lookup = Lookup {
        of: LookupOf::Artifact(artifact.artifact_id.clone()),
        workspace_id: artifact.workspace_id.clone(),
    };
    run_store::retry_on_race(core, &artifact.workspace_id, &artifact.run_id, |stored| {
        check_fence(&stored.run, lease_id)?;
        let mut after = stored.run.clone();
        after.artifact_ids.push(artifact.artifact_id.clone());
        let mut write = run_store::attempt(&stored, &after, Vec::new(), core.now())?;
        write.tx.insert(artifact)?.insert(&lookup)?;
        Ok((write, ()))
    })
    .await?;
    Ok(())
}

/// Writes `settled` (a pending artifact of `run_id` that became `available` or
/// `upload_failed`) on the condition that it is still pending and that `lease_id` may
/// still write the run. An available artifact is announced by an `artifact` event on
/// the run and counted in its workspace's storage.
///
/// Errors: `AlreadySettled`; `Failed` with [`ServiceError::Fenced`] when the lease may
/// not write the run (the run ended: its end settled the artifact).
pub async fn settle_artifact(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    lease_id: &LeaseId,
    settled: &Artifact,
) -> Result<(), SettleArtifactError> {
    let available = settled.status == ArtifactStatus::Available;
    let key = keys::artifact(ws, &settled.artifact_id);
    let written = run_store::retry_on_race(core, ws, run_id, |stored| {
        check_fence(&stored.run, lease_id)?;
        let events = if available {
            vec![EventPayload::Artifact {
                artifact_id: settled.artifact_id.clone(),
                name: settled.name.as_str().to_owned(),
                artifact_type: settled.artifact_type,
            }]
        } else {
            Vec::new()
        };
        let mut write = run_store::attempt(&stored, &stored.run, events, core.now())?;
        write.tx.guarded(
            WriteOp::Update {
                key: key.clone(),
                update: Update {
                    set: codec::document_attrs(settled)?,
                    ..Update::default()
                },
                condition: Some(Condition::equals(
                    attrs::STATUS,
                    AttrValue::S(ArtifactStatus::Pending.as_str().into()),
                )),
            },
            WriteFailure::Refused(SettleArtifactError::AlreadySettled),
        );
        if available {
            write.tx.push(count_artifact(ws, settled.size));
        }
        Ok((write, ()))
    })
    .await;
    match written {
        Ok(()) => Ok(()),
        Err(RunWriteError::Refused(refusal)) => Err(refusal),
        Err(RunWriteError::Failed(error)) => Err(error.into()),
    }
}

/// The most pending artifacts a run's end settles in its own transaction (DynamoDB
/// allows 100 operations; the end itself takes a few). A worker uploads one artifact at
/// a time, so more is a worker that registered many and finalized none; the rest stay
/// pending, and being fenced, never become available.
pub const MAX_SETTLED_AT_END: usize = 64;

/// The artifacts of `run` still pending, read one by one, at most
/// [`MAX_SETTLED_AT_END`].
pub async fn pending_artifacts(core: &Core, run: &Run) -> Result<Vec<Artifact>, ServiceError> {
    let mut pending = Vec::new();
    for artifact_id in &run.artifact_ids {
        if pending.len() == MAX_SETTLED_AT_END {
            tracing::warn!(
                workspace_id = %run.workspace_id, run_id = %run.run_id,
                operation = "settle_pending_artifacts", artifacts = run.artifact_ids.len(),
                "more pending artifacts than one transaction settles; the rest stay pending"
            );
            break;
        }
        let artifact = core
            .store
            .get::<Artifact>(&keys::artifact(&run.workspace_id, artifact_id))
            .await?;
        if let Some(artifact) = artifact.filter(|a| a.status == ArtifactStatus::Pending) {
            pending.push(artifact);
        }
    }
    Ok(pending)
}

/// The updates that settle `pending` artifacts of a run that is ending as `upload_failed`,
/// saying why, each on the condition that it is still pending (a failure of that
/// condition is the run having changed: its artifacts only change through run writes).
pub fn settle_pending_ops<E>(
    pending: &[Artifact],
    ending: RunStatus,
    run_changed: impl Fn() -> E,
) -> Result<Vec<(WriteOp, E)>, ServiceError> {
    let mut ops = Vec::with_capacity(pending.len());
    for artifact in pending {
        let mut settled = artifact.clone();
        settled
            .mark_upload_failed(format!(
                "the run ended ({ending}) before this artifact's upload was finalized"
            ))
            .map_err(|e| ServiceError::Internal(e.into()))?;
        ops.push((
            WriteOp::Update {
                key: keys::artifact(&artifact.workspace_id, &artifact.artifact_id),
                update: Update {
                    set: codec::document_attrs(&settled)?,
                    ..Update::default()
                },
                condition: Some(Condition::equals(
                    attrs::STATUS,
                    AttrValue::S(ArtifactStatus::Pending.as_str().into()),
                )),
            },
            run_changed(),
        ));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use tlao_domain::{ArtifactId, ArtifactName, ArtifactType, Guardrails};

    use super::*;
    use crate::transactions::testing::World;
    use crate::transactions::{create_run, lease};

    #[tokio::test]
    async fn settling_an_artifact_another_finalize_settled_is_refused_as_already_settled() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let ws = world.workspace().await;
        let run = world.run(&ws);
        create_run(&core.store, &run, 10, None)
            .await
            .expect("the run is queued");
        let stored = run_store::load(core, &ws, &run.run_id)
            .await
            .expect("a read")
            .expect("the run is stored");
        let running = world.started(&run);
        lease(&core.store, &stored, &running, 2, core.now())
            .await
            .expect("the run is leased");
        let artifact_id = ArtifactId::new(core.new_ulid());
        let name = ArtifactName::try_from("plan.json".to_owned()).expect("a name");
        let mut artifact = Artifact {
            key: keys::blob::artifact(&ws, &run.run_id, &artifact_id, &name),
            artifact_id,
            run_id: run.run_id.clone(),
            workspace_id: ws.clone(),
            artifact_type: ArtifactType::Plan,
            name,
            size: 2,
            content_type: "application/json".into(),
            sha256: "0".repeat(64),
            status: ArtifactStatus::Pending,
            created_at: core.now(),
            error: None,
        };
        let lease_id = running.lease_id.clone().expect("a running run has a lease");
        register_artifact(core, &lease_id, &artifact)
            .await
            .expect("the artifact is registered");
        artifact
            .mark_available()
            .expect("a pending artifact settles");
        settle_artifact(core, &ws, &run.run_id, &lease_id, &artifact)
            .await
            .expect("the first finalize settles it");

        let refused = settle_artifact(core, &ws, &run.run_id, &lease_id, &artifact).await;

        assert!(
            matches!(refused, Err(SettleArtifactError::AlreadySettled)),
            "{refused:?}"
        );
    }
}
