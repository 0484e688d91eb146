//! The contract suites: the same tests run against every adapter of a port.
//!
//! An adapter's test file invokes [`table_contract_tests!`](crate::table_contract_tests),
//! [`blob_contract_tests!`](crate::blob_contract_tests) or
//! [`event_bus_contract_tests!`](crate::event_bus_contract_tests) with a factory; each case
//! becomes its own `#[tokio::test]`. Cases write only under a namespace of their own, so
//! a factory may hand every case the same table or bucket (as the emulator-backed AWS
//! adapters do) or a fresh one.

// This is test code compiled as a library feature: a failed expectation panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod blob;
pub mod event_bus;
pub mod table;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whatever the fixture must keep alive for the duration of a case (a temp dir, ...).
pub type Guard = Box<dyn Any + Send>;

/// A namespace unique to this process and case, for keys and partitions.
pub fn namespace(case: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{case}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
