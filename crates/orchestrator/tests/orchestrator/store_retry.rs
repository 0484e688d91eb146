//! Requirement 13.2: a write that fails transiently is retried with backoff, at most three
//! attempts in all; other failures are not retried. A `mockall` mock injects the failures
//! no real engine produces on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use mockall::Sequence;
use tlao_domain::{Key, Name, Timestamp, Ulid, UserId, Workspace, WorkspaceId};
use tlao_orchestrator::{RetryPolicy, Store, StoreError};
use tlao_ports::{Condition, Item, Page, Query, Table, TableError, Update, WriteOp};

mockall::mock! {
    pub Table {}

    #[async_trait]
    impl Table for Table {
        async fn get(&self, key: &Key) -> Result<Option<Item>, TableError>;
        async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError>;
        async fn update(&self, key: &Key, update: Update, condition: Option<Condition>) -> Result<Item, TableError>;
        async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), TableError>;
        async fn query(&self, query: Query) -> Result<Page, TableError>;
        async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), TableError>;
        async fn ping(&self) -> Result<(), TableError>;
    }
}

fn workspace() -> Workspace {
    Workspace {
        workspace_id: WorkspaceId::new(Ulid::from_parts(1, 1)),
        name: Name::try_from("demo".to_owned()).unwrap(),
        owner: UserId::new(Ulid::from_parts(1, 2)),
        created_at: Timestamp::from_unix_millis(5),
    }
}

fn throttled() -> TableError {
    TableError::Transient(anyhow::anyhow!("throttled"))
}

fn store(table: MockTable) -> Store {
    Store::new(Arc::new(table), RetryPolicy::default())
}

#[tokio::test(start_paused = true)]
async fn a_write_that_fails_twice_then_succeeds_is_retried_to_success() {
    let mut table = MockTable::new();
    let mut order = Sequence::new();
    table
        .expect_put()
        .times(2)
        .in_sequence(&mut order)
        .returning(|_, _| Err(throttled()));
    table
        .expect_put()
        .times(1)
        .in_sequence(&mut order)
        .withf(|item, condition| {
            item.s("kind") == Some("workspace") && *condition == Some(Condition::NotExists)
        })
        .returning(|_, _| Ok(()));

    store(table).insert(&workspace()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_write_that_fails_three_times_returns_the_error_after_three_attempts() {
    let mut table = MockTable::new();
    table
        .expect_put()
        .times(3)
        .returning(|_, _| Err(throttled()));

    let started = tokio::time::Instant::now();
    let error = store(table).insert(&workspace()).await.unwrap_err();

    assert!(
        matches!(error, StoreError::Unavailable(TableError::Transient(_))),
        "{error:?}"
    );
    // Two backoffs, each at most its ceiling (25 ms, then 50 ms).
    assert!(started.elapsed() <= std::time::Duration::from_millis(75));
}

#[tokio::test(start_paused = true)]
async fn a_failed_condition_is_not_retried() {
    let mut table = MockTable::new();
    table
        .expect_transact()
        .times(1)
        .returning(|_| Err(TableError::ConditionFailed { op: 1 }));

    let error = store(table)
        .transact(vec![WriteOp::Delete {
            key: Key {
                pk: "a".into(),
                sk: "b".into(),
            },
            condition: None,
        }])
        .await
        .unwrap_err();

    assert!(
        matches!(error, StoreError::ConditionFailed { op: 1 }),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unexpected_error_is_not_retried() {
    let mut table = MockTable::new();
    table
        .expect_update()
        .times(1)
        .returning(|_, _, _| Err(TableError::Unexpected(anyhow::anyhow!("access denied"))));

    let error = store(table)
        .update(
            &Key {
                pk: "a".into(),
                sk: "b".into(),
            },
            Update::new().add("n", 1),
            None,
        )
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Unexpected(_)), "{error:?}");
}
