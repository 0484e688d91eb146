//! The in-memory table: every item in one ordered map behind a mutex, gone when the
//! process ends. It is the reference engine for tests, and it owns the write semantics
//! the SQLite engine shares ([`plan_writes`], [`prefix_end`]) so the two cannot drift.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tlao_domain::Key;
use tlao_ports::table::validate_transaction;
use tlao_ports::{
    Attrs, Condition, Direction, Item, Page, Query, Table, TableError, Update, WriteOp,
};

type Items = BTreeMap<(String, String), Attrs>;

/// The [`Table`] port in memory: strongly consistent, transactions serialized by one
/// lock. Cheap to create; each instance is an empty table of its own.
#[derive(Debug, Default)]
pub struct MemoryTable {
    items: Mutex<Items>,
}

impl MemoryTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Items> {
        // Writes are computed in full before the map is touched, so a panic while the
        // lock is held cannot leave a half-applied write behind: the map stays usable.
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks and applies `ops` under one lock; returns what each op left behind.
    fn write(&self, ops: &[WriteOp]) -> Result<Vec<Outcome>, TableError> {
        let mut items = self.lock();
        let outcomes = {
            let current: Vec<Option<&Attrs>> =
                ops.iter().map(|op| items.get(&map_key(op.key()))).collect();
            plan_writes(ops, &current)?
        };
        for (op, outcome) in ops.iter().zip(&outcomes) {
            match outcome {
                Outcome::Unchanged => {}
                Outcome::Written(attrs) => {
                    items.insert(map_key(op.key()), attrs.clone());
                }
                Outcome::Removed => {
                    items.remove(&map_key(op.key()));
                }
            }
        }
        Ok(outcomes)
    }
}

fn map_key(key: &Key) -> (String, String) {
    (key.pk.clone(), key.sk.clone())
}

#[async_trait]
impl Table for MemoryTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        Ok(self.lock().get(&map_key(key)).map(|attrs| Item {
            key: key.clone(),
            attrs: attrs.clone(),
        }))
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        self.write(&[WriteOp::Put { item, condition }])?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> Result<Item, TableError> {
        let op = WriteOp::Update {
            key: key.clone(),
            update,
            condition,
        };
        updated_item(key, self.write(&[op])?)
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), TableError> {
        self.write(&[WriteOp::Delete {
            key: key.clone(),
            condition,
        }])?;
        Ok(())
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        query.validate()?;
        let items = self.lock();
        let in_range = |((pk, sk), _): &(&(String, String), &Attrs)| {
            *pk == query.pk && sk.starts_with(&query.sk_prefix)
        };
        let to_item = |((pk, sk), attrs): (&(String, String), &Attrs)| Item {
            key: Key {
                pk: pk.clone(),
                sk: sk.clone(),
            },
            attrs: attrs.clone(),
        };
        // Start at the first key the page may hold and stop at the first key outside
        // the prefix: matching keys are contiguous, so nothing is scanned twice.
        let found: Vec<Item> = match query.direction {
            Direction::Forward => {
                let start = match &query.cursor {
                    Some(cursor) if cursor.0 >= query.sk_prefix => {
                        Bound::Excluded((query.pk.clone(), cursor.0.clone()))
                    }
                    _ => Bound::Included((query.pk.clone(), query.sk_prefix.clone())),
                };
                items
                    .range((start, Bound::Unbounded))
                    .take_while(in_range)
                    .take(query.limit + 1)
                    .map(to_item)
                    .collect()
            }
            Direction::Backward => {
                let end = match (&query.cursor, prefix_end(&query.sk_prefix)) {
                    (Some(cursor), Some(end)) if cursor.0 >= end => (query.pk.clone(), end),
                    (Some(cursor), _) => (query.pk.clone(), cursor.0.clone()),
                    (None, Some(end)) => (query.pk.clone(), end),
                    // The first key after the whole partition.
                    (None, None) => (format!("{}\0", query.pk), String::new()),
                };
                items
                    .range((Bound::Unbounded, Bound::Excluded(end)))
                    .rev()
                    .take_while(in_range)
                    .take(query.limit + 1)
                    .map(to_item)
                    .collect()
            }
        };
        Ok(Page::from_overfetch(found, query.limit))
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        validate_transaction(&ops)?;
        self.write(&ops)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), TableError> {
        Ok(())
    }
}

/// What one write operation leaves behind for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing changes (a `Check`).
    Unchanged,
    /// The item now has exactly these attributes.
    Written(Attrs),
    /// The item is gone (or stays absent).
    Removed,
}

/// Decides what `ops` do, given each op's item as it is before the transaction
/// (`current[i]` belongs to `ops[i]`). Nothing is decided unless everything can happen.
///
/// Every condition is checked first, against the state before the transaction, so a
/// failure names the first op whose condition does not hold. Then updates are applied;
/// adding to a non-number fails the whole transaction as `Invalid`.
pub(crate) fn plan_writes(
    ops: &[WriteOp],
    current: &[Option<&Attrs>],
) -> Result<Vec<Outcome>, TableError> {
    for (op, (index, before)) in ops.iter().zip(current.iter().enumerate()) {
        if op
            .condition()
            .is_some_and(|condition| !condition.holds(*before))
        {
            return Err(TableError::ConditionFailed { op: index });
        }
    }
    ops.iter()
        .zip(current)
        .map(|(op, before)| match op {
            WriteOp::Put { item, .. } => Ok(Outcome::Written(item.attrs.clone())),
            WriteOp::Update { update, .. } => {
                let mut attrs = before.cloned().unwrap_or_default();
                update.apply(&mut attrs)?;
                Ok(Outcome::Written(attrs))
            }
            WriteOp::Delete { .. } => Ok(Outcome::Removed),
            WriteOp::Check { .. } => Ok(Outcome::Unchanged),
        })
        .collect()
}

/// The item a single `update` left behind, from its one outcome.
pub(crate) fn updated_item(key: &Key, outcomes: Vec<Outcome>) -> Result<Item, TableError> {
    match outcomes.into_iter().next() {
        Some(Outcome::Written(attrs)) => Ok(Item {
            key: key.clone(),
            attrs,
        }),
        other => Err(TableError::Unexpected(anyhow::anyhow!(
            "an update of {}/{} left {other:?} instead of an item",
            key.pk,
            key.sk
        ))),
    }
}

/// The smallest string greater than every string that starts with `prefix`, or `None`
/// when there is none (an empty prefix, or one made only of `char::MAX`).
///
/// Rust strings and SQLite's BINARY collation both order by UTF-8 bytes, which is code
/// point order, so `prefix <= sk < prefix_end(prefix)` is exactly "sk starts with
/// prefix": the next code point after the last one that can grow, with trailing
/// `char::MAX`s dropped (U+10FFFF cannot be incremented, `TASK#\u{10FFFF}` must match).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut end = prefix.to_owned();
    while let Some(last) = end.pop() {
        let next = match last {
            // Surrogates are not chars; the next code point after them is U+E000.
            '\u{D7FF}' => Some('\u{E000}'),
            _ => char::from_u32(u32::from(last) + 1),
        };
        if let Some(next) = next {
            end.push(next);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_prefix_end_is_the_next_code_point_of_the_last_char_that_can_grow() {
        assert_eq!(prefix_end("TASK#").as_deref(), Some("TASK$"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
    }
}
