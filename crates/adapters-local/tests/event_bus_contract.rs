//! The event bus contract suite on the in-process bus, plus what only it can show: a
//! run's channel exists exactly while the run has subscribers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod small_buffer {
    use std::sync::Arc;

    use tlao_adapters_local::LocalEventBus;
    use tlao_ports::EventBus;

    // A small buffer, so the lag case lags quickly.
    tlao_ports::event_bus_contract_tests!(|| async {
        (
            Arc::new(LocalEventBus::with_capacity(64)) as Arc<dyn EventBus>,
            Box::new(()) as tlao_ports::testsuite::Guard,
        )
    });
}

mod default_buffer {
    use std::sync::Arc;

    use tlao_adapters_local::LocalEventBus;
    use tlao_ports::EventBus;

    tlao_ports::event_bus_contract_tests!(@cases || async {
        (
            Arc::new(LocalEventBus::new()) as Arc<dyn EventBus>,
            Box::new(()) as tlao_ports::testsuite::Guard,
        )
    };
        a_subscriber_that_does_not_read_never_blocks_the_publisher_and_is_told_it_lagged,
    );
}

mod lifecycle {
    use std::time::Duration;

    use tlao_adapters_local::LocalEventBus;
    use tlao_domain::{EventPayload, LogStream, RunEvent, RunId, Timestamp, Ulid};
    use tlao_ports::{EventBus, RecvError};

    fn run(n: u128) -> RunId {
        RunId::new(Ulid::from_parts(7, n))
    }

    fn event(seq: u64) -> RunEvent {
        RunEvent {
            seq,
            at: Timestamp::from_unix_millis(0),
            payload: EventPayload::Log {
                stream: LogStream::Stdout,
                text: "x".into(),
            },
        }
    }

    #[tokio::test]
    async fn a_runs_channel_is_created_by_its_first_subscriber_and_dropped_with_its_last() {
        let bus = LocalEventBus::new();
        bus.publish(&run(1), &[event(1)]).await.unwrap();
        assert_eq!(bus.channel_count(), 0, "publishing alone creates nothing");

        let first = bus.subscribe(&run(1)).await.unwrap();
        let second = bus.subscribe(&run(1)).await.unwrap();
        let other = bus.subscribe(&run(2)).await.unwrap();
        assert_eq!(bus.channel_count(), 2);

        drop(first);
        assert_eq!(bus.channel_count(), 2, "run 1 still has a subscriber");
        drop(second);
        assert_eq!(bus.channel_count(), 1);
        drop(other);
        assert_eq!(bus.channel_count(), 0);
    }

    #[tokio::test]
    async fn resubscribing_after_the_channel_was_dropped_receives_new_events() {
        let bus = LocalEventBus::new();
        drop(bus.subscribe(&run(3)).await.unwrap());
        let mut again = bus.subscribe(&run(3)).await.unwrap();
        bus.publish(&run(3), &[event(4)]).await.unwrap();
        assert_eq!(again.recv().await, Ok(event(4)));
    }

    #[tokio::test]
    async fn a_lagging_subscriber_does_not_hold_back_a_fast_one() {
        let bus = LocalEventBus::with_capacity(8);
        let mut slow = bus.subscribe(&run(5)).await.unwrap();
        let mut fast = bus.subscribe(&run(5)).await.unwrap();
        for seq in 1..=100 {
            bus.publish(&run(5), &[event(seq)]).await.unwrap();
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(5), fast.recv()).await,
                Ok(Ok(event(seq)))
            );
        }
        assert_eq!(slow.recv().await, Err(RecvError::Lagged { missed: 92 }));
        assert_eq!(slow.recv().await, Ok(event(93)));
    }
}
