//! Fault injection: decorators that make any table or blob store fail on demand, for
//! the chaos tests (`tlao dev` with `faults.dir` set, and in-process tests).
//!
//! A [`FaultSwitch`] holds the fault in force, if any; [`FaultyTable`] and
//! [`FaultyBlobStore`] consult it before every write (and their readiness probe) and,
//! while a fault is set, fail exactly as the real engines classify it: `Transient`,
//! with the [`StorageFault`] at the root of the cause. Reads go through, as they do on a
//! full or read-only disk. [`watch_dir`] flips the switches from files in a directory,
//! so a test drives a running server from outside.
//!
//! Never configure `faults.dir` in production: anyone who can write to that directory
//! can make the server refuse every write.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tlao_domain::Key;
use tlao_ports::{
    BlobError, BlobKey, BlobMeta, BlobStore, ByteStream, Condition, CountAfter, FaultyStore, Item,
    Page, PresignedUrl, Query, StorageFault, Table, TableError, Update, WriteOp,
};

/// The fault in force for one store, and how many writes it saw; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<SwitchState>);

#[derive(Debug, Default)]
struct SwitchState {
    /// The fault, and how many more writes it fails (`None`: until cleared).
    fault: Mutex<Option<(StorageFault, Option<usize>)>>,
    /// Writes checked since the last change.
    writes: AtomicUsize,
}

impl FaultSwitch {
    /// Sets (or, with `None`, clears) the fault, failing every write until changed.
    pub fn set(&self, fault: Option<StorageFault>) {
        self.change(fault.map(|fault| (fault, None)));
    }

    /// Fails the next `n` writes with `fault`, then none.
    pub fn fail_next(&self, fault: StorageFault, n: usize) {
        self.change(Some((fault, Some(n))));
    }

    /// The fault in force.
    pub fn get(&self) -> Option<StorageFault> {
        self.state().map(|(fault, _)| fault)
    }

    /// The writes (and probes) checked since the fault last changed, failed or not.
    pub fn writes(&self) -> usize {
        self.0.writes.load(Ordering::SeqCst)
    }

    fn change(&self, fault: Option<(StorageFault, Option<usize>)>) {
        *self.lock() = fault;
        self.0.writes.store(0, Ordering::SeqCst);
    }

    fn state(&self) -> Option<(StorageFault, Option<usize>)> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(StorageFault, Option<usize>)>> {
        self.0.fault.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a write; `Err` with the fault at the root when it is to fail.
    fn check(&self) -> Result<(), anyhow::Error> {
        self.0.writes.fetch_add(1, Ordering::SeqCst);
        let mut state = self.lock();
        let fault = match *state {
            None | Some((_, Some(0))) => return Ok(()),
            Some((fault, None)) => fault,
            Some((fault, Some(left))) => {
                *state = Some((fault, Some(left - 1)));
                fault
            }
        };
        Err(anyhow::Error::new(fault).context("an injected fault"))
    }
}

/// A [`Table`] whose writes fail while its switch holds a fault.
pub struct FaultyTable {
    inner: Arc<dyn Table>,
    switch: FaultSwitch,
}

impl FaultyTable {
    /// `inner`, failing writes while `switch` holds a fault.
    pub fn new(inner: Arc<dyn Table>, switch: FaultSwitch) -> Self {
        FaultyTable { inner, switch }
    }

    fn check(&self) -> Result<(), TableError> {
        self.switch.check().map_err(TableError::Transient)
    }
}

#[async_trait]
impl Table for FaultyTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        self.check()?;
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        self.check()?;
        self.inner.update(key, update, condition).await
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), TableError> {
        self.check()?;
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.inner.query(query).await
    }

    async fn count(&self, query: Query) -> Result<usize, TableError> {
        self.inner.count(query).await
    }

    async fn get_then_count(
        &self,
        key: &Key,
        then: CountAfter,
    ) -> Result<(Option<Item>, Option<usize>), TableError> {
        self.inner.get_then_count(key, then).await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        self.check()?;
        self.inner.transact(ops).await
    }

    async fn ping(&self) -> Result<(), TableError> {
        self.check()?;
        self.inner.ping().await
    }
}

/// A [`BlobStore`] whose writes fail while its switch holds a fault.
pub struct FaultyBlobStore {
    inner: Arc<dyn BlobStore>,
    switch: FaultSwitch,
}

impl FaultyBlobStore {
    /// `inner`, failing writes while `switch` holds a fault.
    pub fn new(inner: Arc<dyn BlobStore>, switch: FaultSwitch) -> Self {
        FaultyBlobStore { inner, switch }
    }

    fn check(&self) -> Result<(), BlobError> {
        self.switch.check().map_err(BlobError::Transient)
    }
}

#[async_trait]
impl BlobStore for FaultyBlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        body: Bytes,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        self.check()?;
        self.inner.put(key, body, content_type).await
    }

    async fn put_stream(
        &self,
        key: &BlobKey,
        body: ByteStream,
        content_type: &str,
    ) -> Result<BlobMeta, BlobError> {
        self.check()?;
        self.inner.put_stream(key, body, content_type).await
    }

    async fn get(&self, key: &BlobKey) -> Result<(BlobMeta, ByteStream), BlobError> {
        self.inner.get(key).await
    }

    async fn head(&self, key: &BlobKey) -> Result<BlobMeta, BlobError> {
        self.inner.head(key).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.check()?;
        self.inner.delete(key).await
    }

    async fn presign_get(&self, key: &BlobKey, ttl: Duration) -> Result<PresignedUrl, BlobError> {
        self.inner.presign_get(key, ttl).await
    }

    async fn presign_put(
        &self,
        key: &BlobKey,
        ttl: Duration,
        sha256: Option<&str>,
    ) -> Result<PresignedUrl, BlobError> {
        self.inner.presign_put(key, ttl, sha256).await
    }

    async fn ping(&self) -> Result<(), BlobError> {
        self.check()?;
        self.inner.ping().await
    }
}

/// The fault a file's text names: `full`, `read-only` or `refused` (anything else,
/// or an empty file, is `full`).
fn parse_fault(store: FaultyStore, text: &str) -> StorageFault {
    match text.trim() {
        "read-only" => StorageFault::ReadOnly(store),
        "refused" => StorageFault::NotPermitted(store),
        _ => StorageFault::Full(store),
    }
}

/// Polls `dir` every `every` and sets `table` from the file `dir/table` and `blobs`
/// from `dir/blobs` (present: the fault its text names; absent: none), until the
/// process ends.
pub fn watch_dir(dir: PathBuf, table: FaultSwitch, blobs: FaultSwitch, every: Duration) {
    tokio::spawn(async move {
        loop {
            for (name, store, switch) in [
                ("table", FaultyStore::Table, &table),
                ("blobs", FaultyStore::Blobs, &blobs),
            ] {
                let fault = std::fs::read_to_string(dir.join(name))
                    .ok()
                    .map(|text| parse_fault(store, &text));
                if fault != switch.get() {
                    tracing::warn!(store = name, ?fault, "injected storage fault changed");
                    switch.set(fault);
                }
            }
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTable;

    #[tokio::test]
    async fn writes_fail_with_the_named_fault_while_it_is_set_and_reads_go_through() {
        let switch = FaultSwitch::default();
        let table = FaultyTable::new(Arc::new(MemoryTable::new()), switch.clone());
        let ws = tlao_domain::WorkspaceId::new(tlao_domain::Ulid::from_parts(1, 1));
        let key = tlao_domain::keys::workspace(&ws);
        table
            .put(Item::new(key.clone()), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        switch.set(Some(StorageFault::ReadOnly(FaultyStore::Table)));
        let error = table.put(Item::new(key.clone()), None).await.err();
        assert!(
            matches!(&error, Some(TableError::Transient(_))),
            "{error:?}"
        );
        let boxed: Box<dyn std::error::Error> = match error {
            Some(TableError::Transient(cause)) => cause.into(),
            _ => unreachable!("checked above"),
        };
        assert_eq!(
            StorageFault::find(boxed.as_ref()),
            Some(StorageFault::ReadOnly(FaultyStore::Table))
        );
        assert!(table.ping().await.is_err());
        assert!(matches!(table.get(&key).await, Ok(Some(_))));

        switch.set(None);
        assert!(table.put(Item::new(key), None).await.is_ok());
    }

    #[test]
    fn a_fault_file_names_its_fault() {
        assert_eq!(
            parse_fault(FaultyStore::Blobs, "read-only\n"),
            StorageFault::ReadOnly(FaultyStore::Blobs)
        );
        assert_eq!(
            parse_fault(FaultyStore::Table, ""),
            StorageFault::Full(FaultyStore::Table)
        );
    }
}
