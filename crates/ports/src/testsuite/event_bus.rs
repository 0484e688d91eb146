//! The [`EventBus`] contract suite: delivery after subscribing, per-run isolation,
//! fan-out, and the lag contract (a subscriber that does not read never blocks the
//! publisher and is told what it missed).

use std::sync::Arc;
use std::time::Duration;

use tlao_domain::{EventPayload, LogStream, RunEvent, RunId, Timestamp, Ulid};

use crate::event_bus::{EventBus, EventSubscription, RecvError};

/// Generates one `#[tokio::test]` per event bus contract case. `$factory` is an
/// expression evaluating to an async closure `|| async { (Arc<dyn EventBus>, Guard) }`.
#[macro_export]
macro_rules! event_bus_contract_tests {
    ($factory:expr) => {
        $crate::event_bus_contract_tests!(@cases $factory;
            a_subscriber_receives_what_is_published_after_it_subscribed_in_order,
            events_published_before_subscribing_are_not_delivered,
            every_subscriber_of_a_run_receives_every_event,
            events_of_other_runs_are_not_delivered,
            publishing_without_subscribers_succeeds,
            a_dropped_subscription_leaves_the_others_receiving,
            a_subscriber_that_does_not_read_never_blocks_the_publisher_and_is_told_it_lagged,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (bus, _guard) = ($factory)().await;
                $crate::testsuite::event_bus::$case(bus).await;
            }
        )+
    };
}

/// How long a case waits for an event that must come.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a case listens to conclude that nothing more comes.
const QUIET: Duration = Duration::from_millis(100);

/// A run id no other case uses.
fn fresh_run() -> RunId {
    let name = super::namespace("run");
    let random = name.bytes().fold(0u128, |acc, b| {
        acc.wrapping_mul(131).wrapping_add(u128::from(b))
    });
    RunId::new(Ulid::from_parts(1, random >> 1))
}

fn event(seq: u64) -> RunEvent {
    RunEvent {
        seq,
        at: Timestamp::from_unix_millis(1_000),
        payload: EventPayload::Log {
            stream: LogStream::Stdout,
            text: format!("line {seq}"),
        },
    }
}

fn events(seqs: std::ops::RangeInclusive<u64>) -> Vec<RunEvent> {
    seqs.map(event).collect()
}

async fn next(sub: &mut Box<dyn EventSubscription>) -> Result<RunEvent, RecvError> {
    tokio::time::timeout(PATIENCE, sub.recv())
        .await
        .expect("an event arrives")
}

async fn assert_quiet(sub: &mut Box<dyn EventSubscription>) {
    if let Ok(got) = tokio::time::timeout(QUIET, sub.recv()).await {
        panic!("nothing more was expected, got {got:?}");
    }
}

/// Events published after subscribing arrive, in the order given.
pub async fn a_subscriber_receives_what_is_published_after_it_subscribed_in_order(
    bus: Arc<dyn EventBus>,
) {
    let run = fresh_run();
    let mut sub = bus.subscribe(&run).await.unwrap();
    bus.publish(&run, &events(1..=3)).await.unwrap();
    bus.publish(&run, &events(4..=4)).await.unwrap();
    for seq in 1..=4 {
        assert_eq!(next(&mut sub).await, Ok(event(seq)));
    }
    assert_quiet(&mut sub).await;
}

/// A subscription starts empty: earlier events are the table's business.
pub async fn events_published_before_subscribing_are_not_delivered(bus: Arc<dyn EventBus>) {
    let run = fresh_run();
    let mut early = bus.subscribe(&run).await.unwrap();
    bus.publish(&run, &events(1..=2)).await.unwrap();
    assert_eq!(next(&mut early).await, Ok(event(1)));
    let mut late = bus.subscribe(&run).await.unwrap();
    bus.publish(&run, &events(3..=3)).await.unwrap();
    assert_eq!(next(&mut late).await, Ok(event(3)));
    assert_quiet(&mut late).await;
}

/// Fan-out: each subscriber gets its own copy of every event.
pub async fn every_subscriber_of_a_run_receives_every_event(bus: Arc<dyn EventBus>) {
    let run = fresh_run();
    let mut subs = Vec::new();
    for _ in 0..5 {
        subs.push(bus.subscribe(&run).await.unwrap());
    }
    bus.publish(&run, &events(1..=10)).await.unwrap();
    for sub in &mut subs {
        for seq in 1..=10 {
            assert_eq!(next(sub).await, Ok(event(seq)));
        }
    }
}

/// A subscription is for one run only.
pub async fn events_of_other_runs_are_not_delivered(bus: Arc<dyn EventBus>) {
    let (mine, other) = (fresh_run(), fresh_run());
    let mut sub = bus.subscribe(&mine).await.unwrap();
    bus.publish(&other, &events(1..=3)).await.unwrap();
    bus.publish(&mine, &events(7..=7)).await.unwrap();
    assert_eq!(next(&mut sub).await, Ok(event(7)));
    assert_quiet(&mut sub).await;
}

/// Nobody listening is not an error.
pub async fn publishing_without_subscribers_succeeds(bus: Arc<dyn EventBus>) {
    let run = fresh_run();
    bus.publish(&run, &events(1..=3)).await.unwrap();
    let sub = bus.subscribe(&run).await.unwrap();
    drop(sub);
    bus.publish(&run, &events(4..=5)).await.unwrap();
}

/// Unsubscribing one subscriber does not disturb another.
pub async fn a_dropped_subscription_leaves_the_others_receiving(bus: Arc<dyn EventBus>) {
    let run = fresh_run();
    let gone = bus.subscribe(&run).await.unwrap();
    let mut staying = bus.subscribe(&run).await.unwrap();
    drop(gone);
    bus.publish(&run, &events(1..=2)).await.unwrap();
    assert_eq!(next(&mut staying).await, Ok(event(1)));
    assert_eq!(next(&mut staying).await, Ok(event(2)));
}

/// The lag contract: publishing many events to a subscriber that reads nothing finishes
/// promptly; reading afterwards yields an increasing sequence in which every skipped
/// stretch is announced by `Lagged`, ending with the newest event.
pub async fn a_subscriber_that_does_not_read_never_blocks_the_publisher_and_is_told_it_lagged(
    bus: Arc<dyn EventBus>,
) {
    const TOTAL: u64 = 50_000;
    let run = fresh_run();
    let mut sub = bus.subscribe(&run).await.unwrap();
    tokio::time::timeout(PATIENCE, async {
        for seq in 1..=TOTAL {
            bus.publish(&run, &[event(seq)]).await.unwrap();
        }
    })
    .await
    .expect("publishing does not wait for the subscriber");

    let mut last = 0;
    let mut lag_announced = false;
    let mut received = 0u64;
    while last < TOTAL {
        match next(&mut sub).await {
            Ok(event) => {
                assert!(event.seq > last, "{} after {last}", event.seq);
                if event.seq != last + 1 {
                    assert!(
                        lag_announced,
                        "events {}..{} were skipped without a Lagged signal",
                        last + 1,
                        event.seq
                    );
                }
                lag_announced = false;
                last = event.seq;
                received += 1;
            }
            Err(RecvError::Lagged { missed }) => {
                assert!(missed > 0);
                lag_announced = true;
            }
            Err(RecvError::Closed) => panic!("the subscription closed"),
        }
    }
    assert!(received <= TOTAL);
    assert_quiet(&mut sub).await;
}
