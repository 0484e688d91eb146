//! The table port: one DynamoDB-shaped table that every engine implements.
//!
//! Items are addressed by a partition key and a sort key ([`Key`]) and carry flat,
//! typed attributes. Writes take an optional [`Condition`] on the item's current state;
//! a transaction applies all of its operations or none. Queries read one partition, a
//! sort-key prefix, in either direction, a page at a time.
//!
//! The shape is DynamoDB's on purpose: if an access pattern works here, it works on
//! DynamoDB, so the single-table design is real on every engine.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
pub use tlao_domain::Key;

/// The most operations one [`Table::transact`] call may carry (DynamoDB's limit).
pub const MAX_TRANSACT_OPS: usize = 100;

/// The most items one [`Table::query`] page may ask for.
pub const MAX_QUERY_LIMIT: usize = 1000;

/// One attribute value. Structured data is stored as JSON in a string attribute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AttrValue {
    /// A string.
    S(String),
    /// A signed integer (DynamoDB numbers are decimal; we only store integers).
    N(i64),
    /// A boolean.
    Bool(bool),
}

impl AttrValue {
    /// The string, if this is one.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            AttrValue::S(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_n(&self) -> Option<i64> {
        match self {
            AttrValue::N(n) => Some(*n),
            _ => None,
        }
    }
}

/// An item's attributes, by name. The key is not among them.
pub type Attrs = BTreeMap<String, AttrValue>;

/// A stored item: its key and its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Partition and sort key.
    pub key: Key,
    /// Every other attribute.
    pub attrs: Attrs,
}

impl Item {
    /// An item with no attributes.
    pub fn new(key: Key) -> Self {
        Item {
            key,
            attrs: Attrs::new(),
        }
    }

    /// Adds an attribute (builder style).
    pub fn with(mut self, name: &str, value: AttrValue) -> Self {
        self.attrs.insert(name.to_owned(), value);
        self
    }

    /// The string attribute `name`, if present and a string.
    pub fn s(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(AttrValue::as_s)
    }

    /// The number attribute `name`, if present and a number.
    pub fn n(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(AttrValue::as_n)
    }
}

/// A condition on an item's current state, evaluated atomically with the write.
///
/// Semantics follow DynamoDB's condition expressions: a comparison on an attribute that
/// is absent (or on an item that does not exist) is false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The item exists.
    Exists,
    /// The item does not exist.
    NotExists,
    /// The attribute exists and equals the value.
    Equals(String, AttrValue),
    /// The attribute exists, is a number and is less than the value.
    LessThan(String, i64),
    /// The attribute is absent (or the item does not exist).
    AttrMissing(String),
    /// Every condition holds (an empty list holds).
    And(Vec<Condition>),
    /// At least one condition holds (an empty list does not).
    Or(Vec<Condition>),
}

impl Condition {
    /// Shorthand for [`Condition::Equals`].
    pub fn equals(name: &str, value: AttrValue) -> Self {
        Condition::Equals(name.to_owned(), value)
    }

    /// Whether the condition holds for an item with these attributes (`None`: no item).
    /// Engines that evaluate conditions themselves (memory, SQLite) call this; DynamoDB
    /// translates the condition into an expression instead.
    pub fn holds(&self, current: Option<&Attrs>) -> bool {
        match self {
            Condition::Exists => current.is_some(),
            Condition::NotExists => current.is_none(),
            Condition::Equals(name, value) => {
                current.and_then(|attrs| attrs.get(name)) == Some(value)
            }
            Condition::LessThan(name, limit) => current
                .and_then(|attrs| attrs.get(name))
                .and_then(AttrValue::as_n)
                .is_some_and(|n| n < *limit),
            Condition::AttrMissing(name) => current.is_none_or(|attrs| !attrs.contains_key(name)),
            Condition::And(all) => all.iter().all(|c| c.holds(current)),
            Condition::Or(any) => any.iter().any(|c| c.holds(current)),
        }
    }
}

/// A change to an item's attributes. Updating an item that does not exist creates it
/// (as DynamoDB's `UpdateItem` does); guard with [`Condition::Exists`] when that is wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Attributes to set.
    pub set: Attrs,
    /// Numbers to add to (an absent attribute counts as 0).
    pub add: BTreeMap<String, i64>,
    /// Attributes to remove.
    pub remove: Vec<String>,
}

impl Update {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (builder style).
    pub fn set(mut self, name: &str, value: AttrValue) -> Self {
        self.set.insert(name.to_owned(), value);
        self
    }

    /// Adds `delta` to the number `name` (builder style).
    pub fn add(mut self, name: &str, delta: i64) -> Self {
        *self.add.entry(name.to_owned()).or_insert(0) += delta;
        self
    }

    /// Removes `name` (builder style).
    pub fn remove(mut self, name: &str) -> Self {
        self.remove.push(name.to_owned());
        self
    }

    /// Checks that no attribute is named twice (DynamoDB refuses overlapping paths).
    pub fn validate(&self) -> Result<(), TableError> {
        let mut seen = std::collections::BTreeSet::new();
        let names = self
            .set
            .keys()
            .chain(self.add.keys())
            .chain(self.remove.iter());
        for name in names {
            if !seen.insert(name) {
                return Err(TableError::Invalid(format!(
                    "attribute {name:?} is changed twice in one update"
                )));
            }
        }
        Ok(())
    }

    /// Applies the change to `attrs`. Engines that store attributes themselves call this.
    ///
    /// Fails, as DynamoDB does, when an `add` targets an attribute that is not a number
    /// or when one attribute is named by more than one of `set`, `add` and `remove`.
    pub fn apply(&self, attrs: &mut Attrs) -> Result<(), TableError> {
        self.validate()?;
        for name in &self.remove {
            attrs.remove(name);
        }
        for (name, value) in &self.set {
            attrs.insert(name.clone(), value.clone());
        }
        for (name, delta) in &self.add {
            let current = match attrs.get(name) {
                None => 0,
                Some(AttrValue::N(n)) => *n,
                Some(_) => {
                    return Err(TableError::Invalid(format!(
                        "cannot add to attribute {name:?}: it is not a number"
                    )));
                }
            };
            let sum = current.checked_add(*delta).ok_or_else(|| {
                TableError::Invalid(format!("adding {delta} to {name:?} overflows"))
            })?;
            attrs.insert(name.clone(), AttrValue::N(sum));
        }
        Ok(())
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Writes the whole item, replacing any current one.
    Put {
        /// The item.
        item: Item,
        /// Must hold on the current item.
        condition: Option<Condition>,
    },
    /// Changes some attributes (creating the item when absent).
    Update {
        /// Which item.
        key: Key,
        /// The change.
        update: Update,
        /// Must hold on the current item.
        condition: Option<Condition>,
    },
    /// Removes the item (a no-op when absent).
    Delete {
        /// Which item.
        key: Key,
        /// Must hold on the current item.
        condition: Option<Condition>,
    },
    /// Writes nothing; fails the transaction unless the condition holds.
    Check {
        /// Which item.
        key: Key,
        /// Must hold on the current item.
        condition: Condition,
    },
}

impl WriteOp {
    /// The key this operation touches.
    pub fn key(&self) -> &Key {
        match self {
            WriteOp::Put { item, .. } => &item.key,
            WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. }
            | WriteOp::Check { key, .. } => key,
        }
    }

    /// The operation's condition, if any.
    pub fn condition(&self) -> Option<&Condition> {
        match self {
            WriteOp::Put { condition, .. }
            | WriteOp::Update { condition, .. }
            | WriteOp::Delete { condition, .. } => condition.as_ref(),
            WriteOp::Check { condition, .. } => Some(condition),
        }
    }
}

/// Checks a transaction's shape the way DynamoDB does: 1 to [`MAX_TRANSACT_OPS`]
/// operations, each on a different key. Engines call this before applying anything.
pub fn validate_transaction(ops: &[WriteOp]) -> Result<(), TableError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACT_OPS {
        return Err(TableError::Invalid(format!(
            "a transaction needs 1 to {MAX_TRANSACT_OPS} operations, got {}",
            ops.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for op in ops {
        if !seen.insert(op.key()) {
            return Err(TableError::Invalid(format!(
                "a transaction touches {}/{} twice",
                op.key().pk,
                op.key().sk
            )));
        }
    }
    Ok(())
}

/// Which way a query walks the sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Ascending sort keys (oldest first for time-sorted ids).
    Forward,
    /// Descending sort keys (newest first).
    Backward,
}

/// Where the next page starts: after this sort key, in the query's direction.
///
/// Opaque to callers beyond the table; every engine encodes it the same way (the last
/// sort key returned), so cursors survive switching engines in tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor(pub String);

impl Cursor {
    /// The cursor that continues after `sk`.
    pub fn after(sk: impl Into<String>) -> Self {
        Cursor(sk.into())
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A range query over one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The partition.
    pub pk: String,
    /// Only sort keys starting with this (empty: all).
    pub sk_prefix: String,
    /// Which way to walk.
    pub direction: Direction,
    /// The most items to return, 1 to [`MAX_QUERY_LIMIT`].
    pub limit: usize,
    /// Continue after this position (exclusive).
    pub cursor: Option<Cursor>,
}

impl Query {
    /// The first page of `prefix`, walking `direction`, at most `limit` items.
    pub fn new(prefix: tlao_domain::KeyPrefix, direction: Direction, limit: usize) -> Self {
        Query {
            pk: prefix.pk,
            sk_prefix: prefix.sk_prefix,
            direction,
            limit,
            cursor: None,
        }
    }

    /// The same query continuing after `cursor`.
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Checks the limit. Engines call this first.
    pub fn validate(&self) -> Result<(), TableError> {
        if self.limit == 0 || self.limit > MAX_QUERY_LIMIT {
            return Err(TableError::Invalid(format!(
                "a query limit must be 1 to {MAX_QUERY_LIMIT}, got {}",
                self.limit
            )));
        }
        Ok(())
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The items, in the query's direction.
    pub items: Vec<Item>,
    /// Where the next page starts; `None` when there are no more items.
    pub next_cursor: Option<Cursor>,
}

impl Page {
    /// Builds a page from up to `limit + 1` matching items in order: the extra item, if
    /// present, only proves that a next page exists.
    pub fn from_overfetch(mut items: Vec<Item>, limit: usize) -> Page {
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = more
            .then(|| items.last().map(|item| Cursor::after(item.key.sk.clone())))
            .flatten();
        Page { items, next_cursor }
    }
}

/// Why a table operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A condition did not hold; nothing was written. `op` is the index of the operation
    /// whose condition failed (0 for single-item calls).
    #[error("condition failed on operation {op}")]
    ConditionFailed {
        /// Which operation's condition failed.
        op: usize,
    },
    /// A passing failure (throttling, timeout, busy database, a transaction conflict);
    /// the same call may succeed if retried. Nothing was written.
    #[error("transient table error: {0}")]
    Transient(#[source] anyhow::Error),
    /// The request itself is malformed (too many operations, a key touched twice, adding
    /// to a string). Retrying will not help.
    #[error("invalid table request: {0}")]
    Invalid(String),
    /// Anything else; the cause says what.
    #[error("table error: {0}")]
    Unexpected(#[source] anyhow::Error),
}

impl TableError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, TableError::Transient(_))
    }
}

/// What [`Table::get_then_count`] counts once it has read its item: a query made from
/// the item, or `None` for no count.
pub type CountAfter = Box<dyn FnOnce(&Item) -> Option<Query> + Send>;

/// A single table of items, DynamoDB-shaped.
///
/// Reads are strongly consistent: a read that starts after a write completes sees it.
///
/// Adapters do not retry: each call is one attempt, and a failure a retry may cure is
/// returned as `Transient`. The caller owns the retry budget (the orchestrator's store:
/// three attempts in all, requirement 13.2).
#[async_trait]
pub trait Table: Send + Sync {
    /// Reads one item. Returns `Ok(None)` when it does not exist.
    ///
    /// Errors: `Transient` when a retry may succeed, `Unexpected` otherwise.
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError>;

    /// Writes a whole item, replacing any current one, if `condition` holds.
    ///
    /// Errors: `ConditionFailed { op: 0 }` when the condition does not hold (nothing is
    /// written), `Transient`, `Unexpected`.
    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError>;

    /// Changes some attributes of an item (creating it when absent) if `condition` holds,
    /// and returns the item as it is after the change.
    ///
    /// Errors: `ConditionFailed { op: 0 }`, `Invalid` (adding to a non-number),
    /// `Transient`, `Unexpected`.
    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> Result<Item, TableError>;

    /// Removes an item if `condition` holds. Removing an absent item succeeds.
    ///
    /// Errors: `ConditionFailed { op: 0 }`, `Transient`, `Unexpected`.
    async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), TableError>;

    /// Reads one page of a partition's items whose sort keys start with the prefix, in
    /// the given direction, after the cursor.
    ///
    /// Errors: `Invalid` for a limit outside 1..=1000, `Transient`, `Unexpected`.
    async fn query(&self, query: Query) -> Result<Page, TableError>;

    /// How many items [`query`](Table::query) would walk from the query's cursor in its
    /// direction, counting at most `query.limit` of them (a count equal to the limit
    /// means "at least that many"). Answers a question such as "how far from the head of
    /// the queue is this entry" without reading the items out.
    ///
    /// The default walks the query's pages; an engine that can count in place overrides
    /// it.
    ///
    /// Errors: as [`query`](Table::query).
    async fn count(&self, query: Query) -> Result<usize, TableError> {
        query.validate()?;
        let limit = query.limit;
        let mut counted = 0;
        let mut page_query = query;
        loop {
            let page = self.query(page_query.clone()).await?;
            counted += page.items.len();
            match page.next_cursor {
                Some(next) if counted < limit => {
                    page_query = Query {
                        limit: limit - counted,
                        ..page_query.after(Some(next))
                    };
                }
                _ => return Ok(counted.min(limit)),
            }
        }
    }

    /// Reads one item and then, when `then` makes a query of it, counts that query's
    /// range as [`count`](Table::count) does: e.g. a run and, when it is queued, the
    /// entries ahead of it in its queue. Returns the item (`None` when it does not exist,
    /// and `then` is not called) and the count (`None` when `then` asked for none).
    ///
    /// The default reads, then counts: two requests. An engine that can do both in one
    /// read (one snapshot) overrides it; the SQLite table does, which also makes the
    /// count agree with the item.
    ///
    /// Errors: as [`get`](Table::get) and [`count`](Table::count).
    async fn get_then_count(
        &self,
        key: &Key,
        then: CountAfter,
    ) -> Result<(Option<Item>, Option<usize>), TableError> {
        let Some(item) = self.get(key).await? else {
            return Ok((None, None));
        };
        let count = match then(&item) {
            Some(query) => Some(self.count(query).await?),
            None => None,
        };
        Ok((Some(item), count))
    }

    /// Applies every operation or none. Each operation's condition is evaluated against
    /// the state before the transaction.
    ///
    /// Errors: `ConditionFailed { op }` naming the first failing operation (nothing is
    /// written), `Invalid` for an empty transaction, more than 100 operations or a key
    /// touched twice, `Transient`, `Unexpected`.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), TableError>;

    /// Checks that the table is reachable, for readiness probes.
    ///
    /// Errors: `Transient` or `Unexpected` with the cause.
    async fn ping(&self) -> Result<(), TableError>;
}
