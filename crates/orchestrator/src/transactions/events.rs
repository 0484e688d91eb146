//! Appending a batch of a worker's events to its run: the events, numbered after the
//! run's counter, and the run's log accounting, heartbeat and the last worker event
//! number applied, in one run write.
//!
//! The write is fenced ([`crate::run_store::check_fence`]): nothing is appended under a
//! lease whose run has ended. A worker numbers its events; the run keeps the last number
//! applied in the same write that stores them, so a batch sent again (its answer was
//! lost) stores only what the run does not have yet.

use tlao_domain::{LeaseId, Reported, Run, RunEvent, RunId, WorkspaceId};

use crate::context::Core;
use crate::error::ServiceError;
use crate::run_store::{attempt, check_fence, retry_on_race};

/// What [`append_events`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The run as written.
    pub run: Run,
    /// The last sequence number stored.
    pub last_seq: u64,
    /// The events as stored, with their sequence numbers.
    pub events: Vec<RunEvent>,
}

/// Appends up to [`crate::run_store::MAX_EVENTS_PER_WRITE`] items to a running run held
/// by `lease_id` (applying the log cap of `max_log_bytes`) and records the heartbeat.
///
/// With `first_seq` (the worker's number of the first item), items the run already
/// applied are skipped and the last number is recorded; without it (a worker that does
/// not number its events) every item is stored.
///
/// Errors: [`ServiceError::Fenced`] when the lease may not write the run (nothing is
/// stored); `Invalid` (`firstSeq`) when the batch starts past the next number the run
/// expects.
pub async fn append_events(
    core: &Core,
    ws: &WorkspaceId,
    run_id: &RunId,
    lease_id: &LeaseId,
    first_seq: Option<u64>,
    items: Vec<Reported>,
    max_log_bytes: u64,
) -> Result<Appended, ServiceError> {
    Ok(retry_on_race(core, ws, run_id, |stored| {
        check_fence(&stored.run, lease_id)?;
        let now = core.now();
        let mut after = stored.run.clone();
        let seen = match first_seq {
            Some(first) => after
                .accept_worker_events(first, items.len() as u64)
                .map_err(|gap| ServiceError::invalid("firstSeq", gap.to_string()))?,
            None => 0,
        };
        let mut admitted = Vec::with_capacity(items.len());
        for item in items.iter().skip(seen as usize) {
            match item {
                Reported::Event(event) => {
                    admitted.extend(after.admit_events(vec![event.clone()], max_log_bytes));
                }
                Reported::Dropped { lines, bytes } => {
                    admitted.push(after.admit_dropped(*lines, *bytes));
                }
            }
        }
        after.heartbeat_at = Some(now);
        let write = attempt(&stored, &after, admitted, now)?;
        let appended = Appended {
            last_seq: stored.last_seq + write.events.len() as u64,
            events: write.events.clone(),
            run: after,
        };
        Ok((write, appended))
    })
    .await?)
}

#[cfg(test)]
mod tests {
    use tlao_domain::{
        EventPayload, Fenced, Guardrails, LogStream, RunError, RunErrorCode, RunStatus, Transition,
    };

    use super::*;
    use crate::run_store;
    use crate::transactions::testing::World;
    use crate::transactions::{create_run, finish_run, lease};

    fn line(text: &str) -> Reported {
        Reported::Event(EventPayload::Log {
            stream: LogStream::Stdout,
            text: text.into(),
        })
    }

    /// A running run in a new workspace, and its lease.
    async fn running(world: &World) -> (WorkspaceId, RunId, LeaseId) {
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
        let started = world.started(&run);
        lease(&core.store, &stored, &started, 2, core.now())
            .await
            .expect("the run is leased");
        let lease_id = started.lease_id.clone().expect("a lease");
        (ws, run.run_id, lease_id)
    }

    async fn texts(world: &World, ws: &WorkspaceId, run_id: &RunId) -> (u64, Vec<String>) {
        let stored = run_store::load(world.core(), ws, run_id)
            .await
            .expect("a read")
            .expect("the run");
        let page = crate::events::read_after(world.core(), run_id, 0, 1000)
            .await
            .expect("the events");
        let texts = page
            .into_iter()
            .filter_map(|e| match e.payload {
                EventPayload::Log { text, .. } => Some(text),
                _ => None,
            })
            .collect();
        (stored.last_seq, texts)
    }

    #[tokio::test]
    async fn the_same_numbered_batch_applied_twice_is_stored_once() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let (ws, run_id, lease_id) = running(&world).await;
        let batch = vec![line("one"), line("two")];

        append_events(
            core,
            &ws,
            &run_id,
            &lease_id,
            Some(1),
            batch.clone(),
            1 << 20,
        )
        .await
        .expect("the batch is stored");
        let again = append_events(core, &ws, &run_id, &lease_id, Some(1), batch, 1 << 20)
            .await
            .expect("the batch sent again is accepted");
        let more = vec![line("one"), line("two"), line("three")];
        append_events(core, &ws, &run_id, &lease_id, Some(1), more, 1 << 20)
            .await
            .expect("a longer resend is accepted");

        assert!(again.events.is_empty(), "{:?}", again.events);
        let (_, texts) = texts(&world, &ws, &run_id).await;
        assert_eq!(texts, ["one", "two", "three"]);
    }

    #[tokio::test]
    async fn a_batch_starting_past_the_next_number_is_refused_as_invalid() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let (ws, run_id, lease_id) = running(&world).await;

        let refused = append_events(
            core,
            &ws,
            &run_id,
            &lease_id,
            Some(3),
            vec![line("x")],
            1 << 20,
        )
        .await;

        assert!(
            matches!(&refused, Err(ServiceError::Invalid(errors)) if errors.to_string().contains("firstSeq")),
            "{refused:?}"
        );
        let (_, texts) = texts(&world, &ws, &run_id).await;
        assert!(texts.is_empty());
    }

    #[tokio::test]
    async fn events_the_worker_dropped_are_recorded_on_the_run_and_said_in_its_log() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let (ws, run_id, lease_id) = running(&world).await;
        let batch = vec![
            line("before"),
            Reported::Dropped {
                lines: 7,
                bytes: 210,
            },
            line("after"),
        ];

        let appended = append_events(core, &ws, &run_id, &lease_id, Some(1), batch, 1 << 20)
            .await
            .expect("the batch is stored");

        assert!(appended.run.logs_truncated);
        assert_eq!(appended.run.dropped_log_bytes, 210);
        assert_eq!(appended.run.worker_dropped_lines, 7);
        let (_, texts) = texts(&world, &ws, &run_id).await;
        assert_eq!(texts.len(), 3);
        assert_eq!(texts[0], "before");
        assert!(
            texts[1].contains("dropped 7 events (210 log bytes)"),
            "{texts:?}"
        );
        assert_eq!(texts[2], "after");
    }

    #[tokio::test]
    async fn events_after_the_run_ended_are_refused_as_fenced_and_not_stored() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let (ws, run_id, lease_id) = running(&world).await;
        let lost = Transition::Fail(RunError {
            code: RunErrorCode::WorkerLost,
            message: "silent".into(),
            exit_code: None,
        });
        finish_run(core, &ws, &run_id, lost, |_| Ok(()))
            .await
            .expect("the run fails");
        let (seq_before, _) = texts(&world, &ws, &run_id).await;

        let refused = append_events(
            core,
            &ws,
            &run_id,
            &lease_id,
            Some(1),
            vec![line("late")],
            1 << 20,
        )
        .await;
        let heartbeat =
            append_events(core, &ws, &run_id, &lease_id, Some(1), Vec::new(), 1 << 20).await;

        for result in [&refused, &heartbeat] {
            assert!(
                matches!(
                    result,
                    Err(ServiceError::Fenced {
                        fenced: Fenced::RunEnded(RunStatus::Failed),
                        ..
                    })
                ),
                "{result:?}"
            );
        }
        let (seq_after, texts) = texts(&world, &ws, &run_id).await;
        assert_eq!(seq_after, seq_before, "nothing was stored after the end");
        assert!(texts.is_empty());
    }

    #[tokio::test]
    async fn events_under_another_lease_are_refused_as_superseded() {
        let world = World::new(Guardrails::default());
        let core = world.core();
        let (ws, run_id, _) = running(&world).await;
        let other = LeaseId::new(core.new_ulid());

        let refused =
            append_events(core, &ws, &run_id, &other, None, vec![line("x")], 1 << 20).await;

        assert!(
            matches!(
                refused,
                Err(ServiceError::Fenced {
                    fenced: Fenced::LeaseSuperseded,
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}
