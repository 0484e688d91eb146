//! [`DynamoTable`]: the table port on DynamoDB.
//!
//! Items are stored as they are in every engine: string attributes `PK` and `SK`, then
//! the port's attributes (`S` as S, `N` as N, `Bool` as BOOL). Conditions become condition
//! expressions (see `dynamo_expr`), transactions `TransactWriteItems`, and every read is
//! strongly consistent, because the port promises read-your-writes.
//!
//! Every port call is one HTTP request: the SDK's own retry is off for them (see
//! `connection`), and a transaction cancelled by a conflict (DynamoDB resolves
//! concurrent transactions on one item optimistically: the loser is cancelled with
//! `TransactionConflict` and nothing is written) is reported `Transient` at once, like
//! throttling. The orchestrator's store retries `Transient` calls, so a logical write is
//! at most three requests in all, conflicts included (requirement 13.2). Provisioning
//! ([`DynamoTable::ensure_table`]), which nothing else retries, keeps the SDK's retry.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete,
    KeySchemaElement, KeyType, Put, ReturnValue, ScalarAttributeType, Select, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update as DynamoUpdate,
};
use tlao_domain::Key;
use tlao_ports::table::validate_transaction;
use tlao_ports::{
    AttrValue, Attrs, Condition, Direction, Item, Page, Query, Table, TableError, Update, WriteOp,
};

use crate::Provisioned;
use crate::connection::{AwsConnection, standard_retries, table_retries};
use crate::dynamo_expr::{PK, Placeholders, SK, to_dynamo};
use crate::sdk_error::{Failure, ServiceFailure, classify};

/// The attribute DynamoDB's time-to-live deletes expired items by (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";

/// How long `ensure_table` waits for a new table to become active.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// The table port on one DynamoDB table (`PK`/`SK` strings, on-demand billing).
#[derive(Debug, Clone)]
pub struct DynamoTable {
    /// For the port's calls: one request each, no SDK retry.
    client: Client,
    /// For provisioning: the SDK's standard retry.
    admin: Client,
    table: String,
}

impl DynamoTable {
    /// A strongly consistent `Query` request for one page of `query`: its partition and
    /// sort-key prefix, its direction, at most `limit` items evaluated, from `start`.
    fn query_request(
        &self,
        query: &Query,
        limit: i32,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> QueryFluentBuilder {
        let mut p = Placeholders::default();
        let pk_name = p.name(PK);
        let pk_value = p.value(AttributeValue::S(query.pk.clone()));
        let mut condition = format!("{pk_name} = {pk_value}");
        if !query.sk_prefix.is_empty() {
            let sk_name = p.name(SK);
            let prefix = p.value(AttributeValue::S(query.sk_prefix.clone()));
            condition.push_str(&format!(" AND begins_with({sk_name}, {prefix})"));
        }
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .scan_index_forward(query.direction == Direction::Forward)
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
    }

    /// A table adapter for `table` over `connection`. Connects lazily: the first call
    /// (or [`Table::ping`]) finds out whether the table is reachable.
    pub async fn connect(connection: &AwsConnection, table: impl Into<String>) -> DynamoTable {
        DynamoTable::with_config(&connection.sdk_config().await, table)
    }

    /// A table adapter for `table` with the shared SDK configuration `shared`.
    pub(crate) fn with_config(shared: &SdkConfig, table: impl Into<String>) -> DynamoTable {
        let client = |retries| {
            Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(shared)
                    .retry_config(retries)
                    .build(),
            )
        };
        DynamoTable {
            client: client(table_retries()),
            admin: client(standard_retries()),
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// Creates the table when it is missing (on-demand billing, `PK` hash and `SK` range
    /// keys, strings), waits until it is active, and turns on time-to-live on
    /// [`TTL_ATTRIBUTE`]. Idempotent: an existing table is left as it is, but for a TTL
    /// that was not on.
    ///
    /// Errors: `Transient` when a retry may succeed, `Unexpected` otherwise (no
    /// permission, a table with another key schema...).
    pub async fn ensure_table(&self) -> Result<Provisioned, TableError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| TableError::Unexpected(e.into()))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| TableError::Unexpected(e.into()))
        };
        let created = self
            .admin
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(PK)?)
            .attribute_definitions(attribute(SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .send()
            .await;
        let provisioned = match created {
            Ok(_) => Provisioned::Created,
            Err(e) => match classify("CreateTable", e) {
                Failure::Service(f) if f.code.as_deref() == Some("ResourceInUseException") => {
                    Provisioned::Existing
                }
                other => return Err(table_failure(other)),
            },
        };
        self.await_active().await?;

        let ttl = self
            .admin
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| table_error("DescribeTimeToLive", e))?;
        let on = ttl.time_to_live_description().is_some_and(|d| {
            d.attribute_name() == Some(TTL_ATTRIBUTE)
                && matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
        });
        if !on {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(|e| TableError::Unexpected(e.into()))?;
            self.admin
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| table_error("UpdateTimeToLive", e))?;
        }
        Ok(provisioned)
    }

    async fn await_active(&self) -> Result<(), TableError> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
        loop {
            let described = self
                .admin
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| table_error("DescribeTable", e))?;
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(TableError::Transient(anyhow::anyhow!(
                    "table {} is still {status:?} after {TABLE_ACTIVE_TIMEOUT:?}",
                    self.table
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn transact_item(&self, op: &WriteOp) -> Result<TransactWriteItem, TableError> {
        let mut p = Placeholders::default();
        let built = match op {
            WriteOp::Put { item, condition } => {
                let expression = condition.as_ref().map(|c| p.condition(c));
                TransactWriteItem::builder().put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(encode(item)?))
                        .set_condition_expression(expression)
                        .set_expression_attribute_names(p.take_names())
                        .set_expression_attribute_values(p.take_values())
                        .build()
                        .map_err(|e| TableError::Unexpected(e.into()))?,
                )
            }
            WriteOp::Update {
                key,
                update,
                condition,
            } => {
                update.validate()?;
                let update_expression = p.update(update);
                let expression = condition.as_ref().map(|c| p.condition(c));
                TransactWriteItem::builder().update(
                    DynamoUpdate::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_map(key)))
                        .update_expression(update_expression)
                        .set_condition_expression(expression)
                        .set_expression_attribute_names(p.take_names())
                        .set_expression_attribute_values(p.take_values())
                        .build()
                        .map_err(|e| TableError::Unexpected(e.into()))?,
                )
            }
            WriteOp::Delete { key, condition } => {
                let expression = condition.as_ref().map(|c| p.condition(c));
                TransactWriteItem::builder().delete(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_map(key)))
                        .set_condition_expression(expression)
                        .set_expression_attribute_names(p.take_names())
                        .set_expression_attribute_values(p.take_values())
                        .build()
                        .map_err(|e| TableError::Unexpected(e.into()))?,
                )
            }
            WriteOp::Check { key, condition } => {
                let expression = p.condition(condition);
                TransactWriteItem::builder().condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_map(key)))
                        .condition_expression(expression)
                        .set_expression_attribute_names(p.take_names())
                        .set_expression_attribute_values(p.take_values())
                        .build()
                        .map_err(|e| TableError::Unexpected(e.into()))?,
                )
            }
        };
        Ok(built.build())
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error("GetItem", e))?;
        output.item.map(decode).transpose()
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        let mut p = Placeholders::default();
        let expression = condition.as_ref().map(|c| p.condition(c));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(&item)?))
            .set_condition_expression(expression)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .send()
            .await
            .map_err(|e| table_error("PutItem", e))?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        update.validate()?;
        let mut p = Placeholders::default();
        let update_expression = p.update(&update);
        let condition_expression = condition.as_ref().map(|c| p.condition(c));
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .update_expression(update_expression)
            .set_condition_expression(condition_expression)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| table_error("UpdateItem", e))?;
        match output.attributes {
            Some(attributes) => decode(attributes),
            // ALL_NEW always returns the item; an engine that does not is answered by a read.
            None => Ok(Item::new(key.clone())),
        }
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), TableError> {
        let mut p = Placeholders::default();
        let expression = condition.as_ref().map(|c| p.condition(c));
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .set_condition_expression(expression)
            .set_expression_attribute_names(p.take_names())
            .set_expression_attribute_values(p.take_values())
            .send()
            .await
            .map_err(|e| table_error("DeleteItem", e))?;
        Ok(())
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        query.validate()?;
        // One more than asked proves whether a next page exists. DynamoDB's `Limit`
        // counts items evaluated per request (and a response stops at 1 MB), so pages
        // are read until enough items came back or the partition ends.
        let wanted = query.limit + 1;
        let mut items = Vec::with_capacity(wanted);
        let mut start = query.cursor.as_ref().map(|cursor| {
            key_map(&Key {
                pk: query.pk.clone(),
                sk: cursor.0.clone(),
            })
        });
        loop {
            let remaining = i32::try_from(wanted - items.len()).unwrap_or(i32::MAX);
            let output = self
                .query_request(&query, remaining, start.take())
                .send()
                .await
                .map_err(|e| table_error("Query", e))?;
            for raw in output.items.unwrap_or_default() {
                items.push(decode(raw)?);
            }
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() && items.len() < wanted => start = Some(last),
                _ => break,
            }
        }
        items.truncate(wanted);
        Ok(Page::from_overfetch(items, query.limit))
    }

    /// A `Select=COUNT` query: DynamoDB counts the items and returns none (it still reads
    /// them, at the same capacity cost as the query).
    async fn count(&self, query: Query) -> Result<usize, TableError> {
        query.validate()?;
        let mut counted = 0usize;
        let mut start = query.cursor.as_ref().map(|cursor| {
            key_map(&Key {
                pk: query.pk.clone(),
                sk: cursor.0.clone(),
            })
        });
        loop {
            let remaining = i32::try_from(query.limit - counted).unwrap_or(i32::MAX);
            let output = self
                .query_request(&query, remaining, start.take())
                .select(Select::Count)
                .send()
                .await
                .map_err(|e| table_error("Query", e))?;
            counted += usize::try_from(output.count).unwrap_or(0);
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() && counted < query.limit => start = Some(last),
                _ => break,
            }
        }
        Ok(counted.min(query.limit))
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        validate_transaction(&ops)?;
        let items = ops
            .iter()
            .map(|op| self.transact_item(op))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match classify("TransactWriteItems", e) {
                Failure::Service(f) => match &f.error {
                    TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                        Err(cancellation(cancelled.cancellation_reasons(), &f))
                    }
                    _ => Err(service_failure(f)),
                },
                other => Err(table_failure(other)),
            },
        }
    }

    async fn ping(&self) -> Result<(), TableError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| table_error("DescribeTable", e))?;
        Ok(())
    }
}

/// The key as DynamoDB's key attributes.
fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// The item as DynamoDB attributes. The port's attributes may not be named like the keys.
fn encode(item: &Item) -> Result<HashMap<String, AttributeValue>, TableError> {
    let mut map = key_map(&item.key);
    for (name, value) in &item.attrs {
        if name == PK || name == SK {
            return Err(TableError::Invalid(format!(
                "attribute {name:?} is reserved for the item's key"
            )));
        }
        map.insert(name.clone(), to_dynamo(value));
    }
    Ok(map)
}

/// A DynamoDB item as the port's item.
fn decode(mut map: HashMap<String, AttributeValue>) -> Result<Item, TableError> {
    let mut key_part = |name: &str| match map.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        other => Err(TableError::Unexpected(anyhow::anyhow!(
            "an item has no string {name}: {other:?}"
        ))),
    };
    let key = Key {
        pk: key_part(PK)?,
        sk: key_part(SK)?,
    };
    let mut attrs = Attrs::new();
    for (name, value) in map {
        let value = match value {
            AttributeValue::S(s) => AttrValue::S(s),
            AttributeValue::Bool(b) => AttrValue::Bool(b),
            AttributeValue::N(n) => AttrValue::N(n.parse().map_err(|_| {
                TableError::Unexpected(anyhow::anyhow!(
                    "attribute {name:?} of {}/{} is the number {n}, not a 64-bit integer",
                    key.pk,
                    key.sk
                ))
            })?),
            other => {
                return Err(TableError::Unexpected(anyhow::anyhow!(
                    "attribute {name:?} of {}/{} has a type this table never writes: {other:?}",
                    key.pk,
                    key.sk
                )));
            }
        };
        attrs.insert(name, value);
    }
    Ok(Item { key, attrs })
}

/// Maps an SDK failure of a table call into the port's error.
fn table_error<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    table_failure(classify(operation, error))
}

fn table_failure<E: ProvideErrorMetadata>(failure: Failure<E>) -> TableError {
    match failure {
        Failure::Transient(e) => TableError::Transient(e),
        Failure::Unexpected(e) => TableError::Unexpected(e),
        Failure::Service(f) => service_failure(f),
    }
}

fn service_failure<E: ProvideErrorMetadata>(f: ServiceFailure<E>) -> TableError {
    match f.code.as_deref() {
        Some("ConditionalCheckFailedException") => TableError::ConditionFailed { op: 0 },
        Some("TransactionConflictException") => TableError::Transient(f.describe()),
        Some("ValidationException") => TableError::Invalid(format!(
            "{} (request id {})",
            f.message(),
            f.request_id.as_deref().unwrap_or("none")
        )),
        Some("ResourceNotFoundException") => TableError::Unexpected(anyhow::anyhow!(
            "{f}; create the table with `tlao admin init-aws`"
        )),
        _ => TableError::Unexpected(f.describe()),
    }
}

/// A cancelled transaction's error: the first operation whose condition failed, else a
/// conflict or throttling (transient), else a validation error (invalid), else unexpected.
/// The reasons come from the response; when an engine sends none, from the message
/// (`... [None, ConditionalCheckFailed]`).
fn cancellation<E: ProvideErrorMetadata>(
    reasons: &[CancellationReason],
    f: &ServiceFailure<E>,
) -> TableError {
    let mut codes: Vec<String> = reasons
        .iter()
        .map(|r| r.code().unwrap_or("None").to_owned())
        .collect();
    if codes.is_empty() {
        codes = reasons_in_message(f.message());
    }
    if let Some(op) = codes.iter().position(|c| c == "ConditionalCheckFailed") {
        return TableError::ConditionFailed { op };
    }
    let any = |wanted: &[&str]| codes.iter().any(|c| wanted.contains(&c.as_str()));
    if any(&[
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ]) {
        TableError::Transient(f.describe())
    } else if any(&["ValidationError"]) {
        let detail = reasons
            .iter()
            .find(|r| r.code() == Some("ValidationError"))
            .and_then(CancellationReason::message)
            .unwrap_or_else(|| f.message());
        TableError::Invalid(format!(
            "{detail} (request id {})",
            f.request_id.as_deref().unwrap_or("none")
        ))
    } else {
        TableError::Unexpected(anyhow::anyhow!("{f}; reasons: {codes:?}"))
    }
}

/// The reason codes listed at the end of a cancellation message.
fn reasons_in_message(message: &str) -> Vec<String> {
    let Some(list) = message
        .rfind('[')
        .and_then(|start| message[start + 1..].split_once(']').map(|(list, _)| list))
    else {
        return Vec::new();
    };
    list.split(',').map(|code| code.trim().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn an_item_round_trips_through_dynamodb_attributes() {
        let item = Item::new(Key {
            pk: "WS#1".into(),
            sk: "META".into(),
        })
        .with("doc", AttrValue::S("{}".into()))
        .with("min", AttrValue::N(i64::MIN))
        .with("flag", AttrValue::Bool(false));
        let encoded = encode(&item).unwrap();
        assert_eq!(encoded["PK"], AttributeValue::S("WS#1".into()));
        assert_eq!(encoded["min"], AttributeValue::N(i64::MIN.to_string()));
        assert_eq!(decode(encoded).unwrap(), item);
    }

    #[test]
    fn an_attribute_named_like_a_key_is_invalid() {
        let item = Item::new(Key {
            pk: "P".into(),
            sk: "S".into(),
        })
        .with("SK", AttrValue::S("x".into()));
        assert!(matches!(encode(&item), Err(TableError::Invalid(_))));
    }

    fn cancelled(codes: &[&str]) -> TableError {
        use aws_sdk_dynamodb::error::ErrorMetadata;
        let reasons: Vec<CancellationReason> = codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect();
        let failure = ServiceFailure {
            error: TransactWriteItemsError::generic(
                ErrorMetadata::builder()
                    .code("TransactionCanceledException")
                    .message("Transaction cancelled")
                    .build(),
            ),
            code: Some("TransactionCanceledException".into()),
            status: 400,
            request_id: Some("REQ".into()),
            operation: "TransactWriteItems",
        };
        cancellation(&reasons, &failure)
    }

    #[test]
    fn a_cancelled_transaction_names_the_first_failed_condition() {
        assert!(matches!(
            cancelled(&["None", "ConditionalCheckFailed", "ConditionalCheckFailed"]),
            TableError::ConditionFailed { op: 1 }
        ));
        assert!(matches!(
            cancelled(&["TransactionConflict", "ConditionalCheckFailed"]),
            TableError::ConditionFailed { op: 1 }
        ));
    }

    #[test]
    fn conflicts_and_throttling_are_transient() {
        for codes in [
            &["None", "TransactionConflict"][..],
            &["ThrottlingError", "None"][..],
        ] {
            assert!(
                matches!(cancelled(codes), TableError::Transient(_)),
                "{codes:?}"
            );
        }
        assert!(matches!(
            cancelled(&["ValidationError"]),
            TableError::Invalid(_)
        ));
        assert!(matches!(
            cancelled(&["ItemCollectionSizeLimitExceeded"]),
            TableError::Unexpected(_)
        ));
    }

    #[test]
    fn reason_codes_are_read_from_a_message_when_the_list_is_missing() {
        assert_eq!(
            reasons_in_message(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, ConditionalCheckFailed]"
            ),
            vec!["None", "None", "ConditionalCheckFailed"]
        );
        assert!(reasons_in_message("no list").is_empty());
    }
}
