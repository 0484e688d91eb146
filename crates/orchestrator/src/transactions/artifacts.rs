//! Registering a run's artifact and settling it once its upload ended. Both are run
//! writes ([`crate::run_store`]): the artifact joins the run's document, and an
//! artifact that became available is announced by an event on the run.

use tlao_domain::{Artifact, ArtifactStatus, EventPayload, LeaseId, RunId, WorkspaceId, keys};
use tlao_ports::{AttrValue, Condition, Update, WriteOp};

use crate::attrs;
use crate::codec::{self, Lookup, LookupOf};
use crate::context::Core;
use crate::error::ServiceError;
use crate::run_store::{self, RunWriteError, WriteFailure, check_lease};
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
/// and lists it on the run. `Conflict` when the lease does not hold the run.
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
        check_lease(&stored.run, lease_id)?;
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
/// `upload_failed`) on the condition that it is still pending. An available artifact
/// is announced by an `artifact` event on the run and counted in its workspace's
/// storage.
pub async fn settle_artifact(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    settled: &Artifact,
) -> Result<(), SettleArtifactError> {
    let available = settled.status == ArtifactStatus::Available;
    let key = keys::artifact(ws, &settled.artifact_id);
    let written = run_store::retry_on_race(core, ws, run_id, |stored| {
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
        settle_artifact(core, &ws, &run.run_id, &artifact)
            .await
            .expect("the first finalize settles it");

        let refused = settle_artifact(core, &ws, &run.run_id, &artifact).await;

        assert!(
            matches!(refused, Err(SettleArtifactError::AlreadySettled)),
            "{refused:?}"
        );
    }
}
