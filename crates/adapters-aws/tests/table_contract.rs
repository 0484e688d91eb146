//! The table contract suite on [`DynamoTable`] against moto's DynamoDB, plus what only
//! DynamoDB can get wrong: a missing table and an unreachable endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use tlao_adapters_aws::{AwsConnection, DynamoTable, Provisioned};
use tlao_domain::Key;
use tlao_ports::{Table, TableError};

tlao_ports::table_contract_tests!(|| async {
    (
        Arc::new(common::table().await) as Arc<dyn Table>,
        Box::new(()) as tlao_ports::testsuite::Guard,
    )
});

#[tokio::test]
async fn ensuring_the_table_twice_finds_it_the_second_time() {
    let table = DynamoTable::connect(
        &common::connection(),
        tlao_ports::testsuite::namespace("ensure"),
    )
    .await;
    assert_eq!(table.ensure_table().await.unwrap(), Provisioned::Created);
    assert_eq!(table.ensure_table().await.unwrap(), Provisioned::Existing);
    table.ping().await.unwrap();
}

#[tokio::test]
async fn a_missing_table_is_unexpected_and_says_how_to_create_it() {
    let table = DynamoTable::connect(&common::connection(), "tlao-no-such-table").await;
    let key = Key {
        pk: "P".into(),
        sk: "S".into(),
    };
    match table.get(&key).await {
        Err(TableError::Unexpected(e)) => {
            let message = format!("{e:#}");
            assert!(message.contains("tlao admin init-aws"), "{message}");
            assert!(message.contains("request id"), "{message}");
        }
        other => panic!("expected Unexpected, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    // Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    let table = DynamoTable::connect(
        &AwsConnection::new(Some("http://127.0.0.1:9".into()), Some("us-east-1".into())),
        common::TABLE,
    )
    .await;
    match table.ping().await {
        Err(e @ TableError::Transient(_)) => assert!(e.is_transient()),
        other => panic!("expected Transient, got {other:?}"),
    }
}
