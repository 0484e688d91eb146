//! Shared fixture of the AWS adapter tests: the emulator's endpoint, which
//! `./scripts/test` (or `scripts/moto start`) provides in `TLAO_TEST_AWS_ENDPOINT`.
//! Without it the tests fail, loudly and with instructions: they are never skipped.

#![allow(dead_code)]

pub mod sigv4;

use tlao_adapters_aws::{AwsConnection, DynamoTable, S3BlobStore};

/// The variable holding the emulator's endpoint.
pub const ENDPOINT_VAR: &str = "TLAO_TEST_AWS_ENDPOINT";
/// The table the contract cases share (each writes under a namespace of its own).
pub const TABLE: &str = "tlao-contract";
/// The bucket the contract cases share.
pub const BUCKET: &str = "tlao-contract";

/// How to start the emulator, for the failure messages.
const HOW: &str = "the AWS adapter tests run against moto's server on loopback: run \
./scripts/test (it starts moto), or start it by hand with `eval \"$(scripts/moto start)\"` \
in the repository root and run the tests in that shell";

/// The emulator's endpoint; panics with instructions when it is not set.
pub fn endpoint() -> String {
    let endpoint = std::env::var(ENDPOINT_VAR)
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| panic!("{ENDPOINT_VAR} is not set: {HOW}"));
    for credential in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            std::env::var_os(credential).is_some(),
            "{credential} is not set (use the dummy value `testing`): {HOW}"
        );
    }
    endpoint
}

/// A connection to the emulator.
pub fn connection() -> AwsConnection {
    AwsConnection::new(Some(endpoint()), Some("us-east-1".into()))
}

/// The shared contract table, created when missing.
pub async fn table() -> DynamoTable {
    let table = DynamoTable::connect(&connection(), TABLE).await;
    table
        .ensure_table()
        .await
        .unwrap_or_else(|e| panic!("cannot create table {TABLE} on {}: {e:#}", endpoint()));
    table
}

/// The shared contract bucket, created when missing.
pub async fn store() -> S3BlobStore {
    let store = S3BlobStore::connect(&connection(), BUCKET).await;
    store
        .ensure_bucket()
        .await
        .unwrap_or_else(|e| panic!("cannot create bucket {BUCKET} on {}: {e:#}", endpoint()));
    store
}
