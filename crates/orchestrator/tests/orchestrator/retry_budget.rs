//! Requirement 13.2's budget, counted: a table that fails writes transiently (a
//! decorator over the in-memory table that counts every write it is asked for) shows
//! that a logical write through the store, or through a use case, is attempted exactly
//! three times and then surfaces as `Unavailable`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tlao_adapters_local::faults::{FaultSwitch, FaultyTable};
use tlao_adapters_local::{FsBlobStore, LocalEventBus, MemoryTable};
use tlao_domain::{Guardrails, Key, Name};
use tlao_orchestrator::{Caller, RetryPolicy, ServiceError, Services, Store, StoreError};
use tlao_ports::{
    AttrValue, Condition, FaultyStore, Item, ManualClock, StorageFault, TableError, Update, WriteOp,
};

/// The in-memory table behind the fault-injection decorator, which counts every write
/// it is asked for and fails them while told to.
struct FlakyTable {
    table: Arc<FaultyTable>,
    switch: FaultSwitch,
}

impl Default for FlakyTable {
    fn default() -> Self {
        let switch = FaultSwitch::default();
        FlakyTable {
            table: Arc::new(FaultyTable::new(
                Arc::new(MemoryTable::new()),
                switch.clone(),
            )),
            switch,
        }
    }
}

const FAULT: StorageFault = StorageFault::Full(FaultyStore::Table);

impl FlakyTable {
    /// Fails every write from now on.
    fn fail_always(&self) {
        self.switch.set(Some(FAULT));
    }

    /// Fails the next `n` writes.
    fn fail_next(&self, n: usize) {
        self.switch.fail_next(FAULT, n);
    }

    /// The writes asked for since the last `fail_*`.
    fn writes(&self) -> usize {
        self.switch.writes()
    }
}

fn key(sk: &str) -> Key {
    Key {
        pk: "BUDGET".into(),
        sk: sk.into(),
    }
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Unavailable(TableError::Transient(_))) => {}
        other => panic!("expected Unavailable(Transient), got {other:?}"),
    }
}

/// The services over `table`, with an administrator bootstrapped before any failure.
async fn services(table: Arc<FaultyTable>) -> (Services, Caller, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-26T10:00:00Z".parse().unwrap()));
    let blobs = FsBlobStore::new(
        dir.path().to_path_buf(),
        "http://127.0.0.1:1".into(),
        b"k".repeat(32),
        clock.clone(),
    )
    .unwrap();
    let services = Services::new(
        table,
        Arc::new(blobs),
        clock,
        Guardrails::default(),
        Arc::new(LocalEventBus::new()),
    );
    let issued = services
        .users
        .bootstrap_admin(Name::try_from("admin".to_owned()).unwrap())
        .await
        .unwrap()
        .unwrap();
    let admin = Caller {
        user_id: issued.user.user_id,
        admin: true,
    };
    (services, admin, dir)
}

#[tokio::test]
async fn a_write_that_always_fails_transiently_is_attempted_exactly_three_times() {
    let table = FlakyTable::default();
    let (services, admin, _dir) = services(table.table.clone()).await;

    table.fail_always();
    let error = services
        .workspaces
        .create(&admin, "demo")
        .await
        .unwrap_err();

    assert!(matches!(error, ServiceError::Unavailable(_)), "{error:?}");
    assert_eq!(table.writes(), 3);
    table.fail_next(0);
    assert!(services.workspaces.list(&admin).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_kind_of_write_through_the_store_is_attempted_exactly_three_times() {
    let table = FlakyTable::default();
    let store = Store::new(table.table.clone(), RetryPolicy::default());
    let item = Item::new(key("item")).with("n", AttrValue::N(1));

    table.fail_always();
    unavailable(store.put_item(item.clone(), None).await);
    assert_eq!(table.writes(), 3, "put");

    table.fail_always();
    unavailable(
        store
            .update(&item.key, Update::new().add("n", 1), None)
            .await,
    );
    assert_eq!(table.writes(), 3, "update");

    table.fail_always();
    unavailable(store.delete(&item.key, None).await);
    assert_eq!(table.writes(), 3, "delete");

    table.fail_always();
    unavailable(
        store
            .transact(vec![WriteOp::Put {
                item: item.clone(),
                condition: Some(Condition::NotExists),
            }])
            .await,
    );
    assert_eq!(table.writes(), 3, "transact");

    table.fail_next(0);
    assert_eq!(store.get_item(&item.key).await.unwrap(), None);
}

#[tokio::test]
async fn a_write_that_fails_transiently_twice_lands_on_its_third_attempt() {
    let table = FlakyTable::default();
    let store = Store::new(table.table.clone(), RetryPolicy::default());
    let item = Item::new(key("third")).with("n", AttrValue::N(3));

    table.fail_next(2);
    store
        .put_item(item.clone(), Some(Condition::NotExists))
        .await
        .unwrap();

    assert_eq!(table.writes(), 3);
    assert_eq!(store.get_item(&item.key).await.unwrap(), Some(item));
}
