//! Errors are logged once each, inside the request's span: 4xx at info with the
//! request id and operation, 5xx at error with the whole cause chain, which the client
//! never sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use common::{Options, TestApp, problem};
use reqwest::StatusCode;
use tlao_adapters_local::MemoryTable;
use tlao_domain::Key;
use tlao_ports::{Condition, Item, Page, Query, Table, TableError, Update, WriteOp};

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The capture every test of this process shares: one global subscriber writing
    /// here, installed on first use (tests tell their lines apart by request id).
    fn install() -> Captured {
        static CAPTURED: OnceLock<Captured> = OnceLock::new();
        CAPTURED
            .get_or_init(|| {
                let captured = Captured::default();
                let writer = captured.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_max_level(tracing::Level::INFO)
                    .with_writer(move || writer.clone())
                    .finish();
                tracing::subscriber::set_global_default(subscriber).unwrap();
                captured
            })
            .clone()
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// A memory table whose readiness probe fails, with a cause only the log may show.
struct UnreachableTable(MemoryTable);

#[async_trait]
impl Table for UnreachableTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        self.0.get(key).await
    }
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        self.0.put(item, condition).await
    }
    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        self.0.update(key, update, condition).await
    }
    async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), TableError> {
        self.0.delete(key, condition).await
    }
    async fn query(&self, query: Query) -> Result<Page, TableError> {
        self.0.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        self.0.transact(ops).await
    }
    async fn ping(&self) -> Result<(), TableError> {
        Err(TableError::Transient(anyhow::anyhow!(
            "connection refused by db-7.internal:5432"
        )))
    }
}

#[tokio::test]
async fn a_refused_request_is_logged_once_at_info_with_its_request_id_and_operation() {
    let captured = Captured::install();
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;

    let response = app
        .get("/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV", &alice.token)
        .header("x-request-id", "log-me-404")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::NOT_FOUND).await;

    let lines = captured.lines_with("log-me-404");
    let refusals: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("request refused"))
        .collect();
    assert_eq!(refusals.len(), 1, "{lines:#?}");
    let line = refusals[0];
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("get_run"), "{line}");
    assert!(line.contains("status=404"), "{line}");
    assert!(
        line.contains("runId=run_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        "{line}"
    );
    assert!(line.contains(&alice.user_id), "{line}");
}

#[tokio::test]
async fn a_failing_dependency_is_a_503_whose_cause_is_logged_but_not_shown() {
    let captured = Captured::install();
    let app = TestApp::spawn_with(Options {
        table: Some(Arc::new(UnreachableTable(MemoryTable::new()))),
        ..Options::default()
    })
    .await;

    let response = app
        .client
        .get(app.url("/readyz"))
        .header("x-request-id", "log-me-503")
        .send()
        .await
        .unwrap();

    let body = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["detail"], "the table is not reachable");
    assert!(!body.to_string().contains("db-7.internal"), "{body}");
    let failures: Vec<String> = captured
        .lines_with("request failed")
        .into_iter()
        .filter(|line| line.contains("log-me-503"))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    let line = &failures[0];
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("readyz"), "{line}");
    assert!(
        line.contains("connection refused by db-7.internal:5432"),
        "{line}"
    );
}
