//! The [`Table`] contract suite.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::table::{
    AttrValue, Condition, CountAfter, Cursor, Direction, Item, MAX_TRANSACT_OPS, Query, Table,
    TableError, Update, WriteOp,
};
use tlao_domain::{Key, KeyPrefix};

/// Generates one `#[tokio::test]` per table contract case. `$factory` is an expression
/// evaluating to an async closure `|| async { (Arc<dyn Table>, Guard) }`.
#[macro_export]
macro_rules! table_contract_tests {
    ($factory:expr) => {
        $crate::table_contract_tests!(@cases $factory;
            a_missing_item_reads_as_none,
            a_put_item_reads_back_with_every_attribute,
            a_put_conditioned_on_absence_fails_when_the_item_exists,
            fifty_racing_conditional_puts_have_exactly_one_winner,
            conditions_follow_dynamodb_semantics,
            an_update_creates_a_missing_item_and_returns_the_new_state,
            adding_to_a_string_attribute_is_invalid,
            an_update_naming_an_attribute_twice_is_invalid,
            a_conditional_delete_only_deletes_when_the_condition_holds,
            a_transaction_applies_every_operation,
            a_transaction_whose_third_condition_fails_applies_nothing,
            racing_transactions_never_exceed_a_counter_limit,
            malformed_transactions_are_invalid,
            paging_forward_returns_every_item_once_in_order,
            paging_backward_returns_every_item_once_in_reverse_order,
            prefix_queries_do_not_leak_neighbouring_prefixes,
            an_out_of_range_query_limit_is_invalid,
            a_count_follows_the_cursor_and_the_prefix_and_stops_at_the_limit,
            a_get_then_count_reads_the_item_and_counts_what_it_asks_for,
            ping_succeeds,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (table, _guard) = ($factory)().await;
                $crate::testsuite::table::$case(
                    table,
                    &$crate::testsuite::namespace(stringify!($case)),
                )
                .await;
            }
        )+
    };
}

fn key(ns: &str, pk: &str, sk: &str) -> Key {
    Key {
        pk: format!("{ns}#{pk}"),
        sk: sk.to_owned(),
    }
}

fn s(text: &str) -> AttrValue {
    AttrValue::S(text.to_owned())
}

fn condition_failed(result: Result<impl std::fmt::Debug, TableError>) -> usize {
    match result {
        Err(TableError::ConditionFailed { op }) => op,
        other => panic!("expected ConditionFailed, got {other:?}"),
    }
}

fn invalid(result: Result<impl std::fmt::Debug, TableError>) {
    match result {
        Err(TableError::Invalid(_)) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Reading an item that was never written is `Ok(None)`.
pub async fn a_missing_item_reads_as_none(table: Arc<dyn Table>, ns: &str) {
    assert_eq!(table.get(&key(ns, "P", "nothing")).await.unwrap(), None);
}

/// Strings (with any Unicode), numbers (both extremes) and booleans survive a put.
pub async fn a_put_item_reads_back_with_every_attribute(table: Arc<dyn Table>, ns: &str) {
    let item = Item::new(key(ns, "P", "META"))
        .with("name", s("TLÁO \"codex\" ✓\n{json}"))
        .with("empty", s(""))
        .with("min", AttrValue::N(i64::MIN))
        .with("max", AttrValue::N(i64::MAX))
        .with("zero", AttrValue::N(0))
        .with("flag", AttrValue::Bool(true))
        .with("off", AttrValue::Bool(false));
    table.put(item.clone(), None).await.unwrap();
    assert_eq!(table.get(&item.key).await.unwrap(), Some(item.clone()));

    // A second unconditional put replaces the whole item, not just some attributes.
    let replacement = Item::new(item.key.clone()).with("name", s("second"));
    table.put(replacement.clone(), None).await.unwrap();
    assert_eq!(table.get(&item.key).await.unwrap(), Some(replacement));
}

/// `NotExists` protects an existing item; the original stays untouched.
pub async fn a_put_conditioned_on_absence_fails_when_the_item_exists(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let first = Item::new(key(ns, "P", "one")).with("v", AttrValue::N(1));
    table
        .put(first.clone(), Some(Condition::NotExists))
        .await
        .unwrap();
    let second = Item::new(first.key.clone()).with("v", AttrValue::N(2));
    let op = condition_failed(table.put(second, Some(Condition::NotExists)).await);
    assert_eq!(op, 0);
    assert_eq!(table.get(&first.key).await.unwrap(), Some(first));
}

/// 50 concurrent writers put the same key conditioned on absence: exactly one wins and
/// the stored item is the winner's.
pub async fn fifty_racing_conditional_puts_have_exactly_one_winner(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let target = key(ns, "RACE", "item");
    let mut writers = Vec::new();
    for writer in 0..50 {
        let table = table.clone();
        let item = Item::new(target.clone()).with("writer", AttrValue::N(writer));
        writers.push(tokio::spawn(async move {
            (writer, table.put(item, Some(Condition::NotExists)).await)
        }));
    }
    let mut winners = Vec::new();
    for writer in writers {
        let (id, result) = writer.await.unwrap();
        match result {
            Ok(()) => winners.push(id),
            Err(TableError::ConditionFailed { op: 0 }) => {}
            Err(other) => panic!("writer {id} failed unexpectedly: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = table.get(&target).await.unwrap().unwrap();
    assert_eq!(stored.n("writer"), Some(winners[0]));
}

/// Equals, LessThan, AttrMissing, And, Or, Exists behave as DynamoDB's expressions do,
/// including comparisons on absent attributes being false.
pub async fn conditions_follow_dynamodb_semantics(table: Arc<dyn Table>, ns: &str) {
    let k = key(ns, "C", "item");
    let base = Item::new(k.clone())
        .with("status", s("queued"))
        .with("count", AttrValue::N(5));
    table.put(base.clone(), None).await.unwrap();

    let attempts: Vec<(Condition, bool)> = vec![
        (Condition::Exists, true),
        (Condition::NotExists, false),
        (Condition::equals("status", s("queued")), true),
        (Condition::equals("status", s("running")), false),
        (Condition::equals("status", AttrValue::N(1)), false),
        (Condition::equals("absent", s("queued")), false),
        (Condition::LessThan("count".into(), 6), true),
        (Condition::LessThan("count".into(), 5), false),
        (Condition::LessThan("absent".into(), 100), false),
        (Condition::LessThan("status".into(), 100), false),
        (Condition::AttrMissing("absent".into()), true),
        (Condition::AttrMissing("count".into()), false),
        (
            Condition::And(vec![
                Condition::Exists,
                Condition::equals("status", s("queued")),
            ]),
            true,
        ),
        (
            Condition::And(vec![
                Condition::Exists,
                Condition::equals("status", s("done")),
            ]),
            false,
        ),
        (
            Condition::Or(vec![
                Condition::AttrMissing("count".into()),
                Condition::LessThan("count".into(), 10),
            ]),
            true,
        ),
        (
            Condition::Or(vec![
                Condition::AttrMissing("count".into()),
                Condition::LessThan("count".into(), 1),
            ]),
            false,
        ),
    ];
    for (i, (condition, should_hold)) in attempts.into_iter().enumerate() {
        let result = table
            .update(
                &k,
                Update::new().set("touched", AttrValue::N(i as i64)),
                Some(condition.clone()),
            )
            .await;
        match (result, should_hold) {
            (Ok(item), true) => assert_eq!(item.n("touched"), Some(i as i64)),
            (Err(TableError::ConditionFailed { op: 0 }), false) => {}
            (other, _) => panic!("{condition:?} should hold = {should_hold}, got {other:?}"),
        }
    }

    // On an item that does not exist, only NotExists and AttrMissing hold.
    let missing = key(ns, "C", "missing");
    for (condition, should_hold) in [
        (Condition::NotExists, true),
        (Condition::AttrMissing("x".into()), true),
        (Condition::Exists, false),
        (Condition::LessThan("count".into(), 10), false),
    ] {
        let result = table
            .put(Item::new(missing.clone()), Some(condition.clone()))
            .await;
        assert_eq!(
            result.is_ok(),
            should_hold,
            "{condition:?} on a missing item"
        );
        table.delete(&missing, None).await.unwrap();
    }
}

/// `update` upserts, adds to absent numbers from 0, removes and sets, and returns the
/// item after the change.
pub async fn an_update_creates_a_missing_item_and_returns_the_new_state(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let k = key(ns, "U", "counter");
    let after = table
        .update(&k, Update::new().add("n", 3).set("name", s("x")), None)
        .await
        .unwrap();
    assert_eq!(after.key, k);
    assert_eq!(after.n("n"), Some(3));
    let after = table
        .update(&k, Update::new().add("n", -1).remove("name"), None)
        .await
        .unwrap();
    assert_eq!(after.n("n"), Some(2));
    assert_eq!(after.s("name"), None);
    assert_eq!(table.get(&k).await.unwrap(), Some(after));

    // A failed condition leaves the item as it was.
    let op = condition_failed(
        table
            .update(
                &k,
                Update::new().add("n", 1),
                Some(Condition::LessThan("n".into(), 2)),
            )
            .await,
    );
    assert_eq!(op, 0);
    assert_eq!(table.get(&k).await.unwrap().unwrap().n("n"), Some(2));
}

/// Adding to a string attribute is refused as `Invalid`, and changes nothing.
pub async fn adding_to_a_string_attribute_is_invalid(table: Arc<dyn Table>, ns: &str) {
    let k = key(ns, "U", "text");
    table
        .put(Item::new(k.clone()).with("n", s("nope")), None)
        .await
        .unwrap();
    invalid(table.update(&k, Update::new().add("n", 1), None).await);
    assert_eq!(table.get(&k).await.unwrap().unwrap().s("n"), Some("nope"));
}

/// Setting and adding to the same attribute in one update is `Invalid` (DynamoDB refuses
/// overlapping paths), and changes nothing.
pub async fn an_update_naming_an_attribute_twice_is_invalid(table: Arc<dyn Table>, ns: &str) {
    let k = key(ns, "U", "twice");
    table
        .put(Item::new(k.clone()).with("n", AttrValue::N(1)), None)
        .await
        .unwrap();
    invalid(
        table
            .update(
                &k,
                Update::new().set("n", AttrValue::N(5)).add("n", 1),
                None,
            )
            .await,
    );
    invalid(
        table
            .update(&k, Update::new().add("n", 1).remove("n"), None)
            .await,
    );
    assert_eq!(table.get(&k).await.unwrap().unwrap().n("n"), Some(1));
}

/// A delete honours its condition; deleting an absent item succeeds.
pub async fn a_conditional_delete_only_deletes_when_the_condition_holds(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let k = key(ns, "D", "item");
    table
        .put(Item::new(k.clone()).with("status", s("running")), None)
        .await
        .unwrap();
    let op = condition_failed(
        table
            .delete(&k, Some(Condition::equals("status", s("queued"))))
            .await,
    );
    assert_eq!(op, 0);
    assert!(table.get(&k).await.unwrap().is_some());
    table
        .delete(&k, Some(Condition::equals("status", s("running"))))
        .await
        .unwrap();
    assert_eq!(table.get(&k).await.unwrap(), None);
    table.delete(&k, None).await.unwrap();
}

/// Put, update, delete and check in one transaction all take effect together.
pub async fn a_transaction_applies_every_operation(table: Arc<dyn Table>, ns: &str) {
    let doomed = key(ns, "T", "doomed");
    let counter = key(ns, "T", "counter");
    let guard = key(ns, "T", "guard");
    table.put(Item::new(doomed.clone()), None).await.unwrap();
    table
        .put(
            Item::new(guard.clone()).with("open", AttrValue::Bool(true)),
            None,
        )
        .await
        .unwrap();
    let created = Item::new(key(ns, "T", "created")).with("v", s("new"));
    table
        .transact(vec![
            WriteOp::Put {
                item: created.clone(),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Update {
                key: counter.clone(),
                update: Update::new().add("n", 1),
                condition: None,
            },
            WriteOp::Delete {
                key: doomed.clone(),
                condition: Some(Condition::Exists),
            },
            WriteOp::Check {
                key: guard,
                condition: Condition::equals("open", AttrValue::Bool(true)),
            },
        ])
        .await
        .unwrap();
    assert_eq!(table.get(&created.key).await.unwrap(), Some(created));
    assert_eq!(table.get(&counter).await.unwrap().unwrap().n("n"), Some(1));
    assert_eq!(table.get(&doomed).await.unwrap(), None);
}

/// When the third operation's condition fails, the first two are not applied either,
/// and the error names operation 2.
pub async fn a_transaction_whose_third_condition_fails_applies_nothing(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let existing = Item::new(key(ns, "T", "existing")).with("v", AttrValue::N(1));
    table.put(existing.clone(), None).await.unwrap();
    let result = table
        .transact(vec![
            WriteOp::Put {
                item: Item::new(key(ns, "T", "a")).with("v", AttrValue::N(1)),
                condition: Some(Condition::NotExists),
            },
            WriteOp::Update {
                key: existing.key.clone(),
                update: Update::new().add("v", 10),
                condition: Some(Condition::Exists),
            },
            WriteOp::Put {
                item: Item::new(key(ns, "T", "b")),
                condition: Some(Condition::Exists),
            },
        ])
        .await;
    assert_eq!(condition_failed(result), 2);
    assert_eq!(table.get(&key(ns, "T", "a")).await.unwrap(), None);
    assert_eq!(table.get(&key(ns, "T", "b")).await.unwrap(), None);
    assert_eq!(table.get(&existing.key).await.unwrap(), Some(existing));
}

/// The daily-quota pattern: 40 racing transactions each insert an item and increment a
/// counter conditioned on `count < 10`. Exactly 10 succeed and the counter says 10.
///
/// An engine that resolves races optimistically (DynamoDB cancels the loser of a
/// transaction conflict) may fail a racer with `Transient` instead: it then wrote
/// nothing, and the caller's retry budget decides (requirement 13.2; adapters do not
/// retry on their own). Such racers are counted: the winners are then
/// `min(10, 40 - transient)`, never more than 10, and the counter and items agree.
pub async fn racing_transactions_never_exceed_a_counter_limit(table: Arc<dyn Table>, ns: &str) {
    let counter = key(ns, "Q", "QUOTA");
    let mut racers = Vec::new();
    for i in 0..40 {
        let table = table.clone();
        let counter = counter.clone();
        let item = Item::new(key(ns, "Q", &format!("RUN#{i:03}")));
        racers.push(tokio::spawn(async move {
            table
                .transact(vec![
                    WriteOp::Update {
                        key: counter,
                        update: Update::new().add("count", 1),
                        condition: Some(Condition::Or(vec![
                            Condition::AttrMissing("count".into()),
                            Condition::LessThan("count".into(), 10),
                        ])),
                    },
                    WriteOp::Put {
                        item,
                        condition: Some(Condition::NotExists),
                    },
                ])
                .await
        }));
    }
    let (mut won, mut transient) = (0, 0);
    for racer in racers {
        match racer.await.unwrap() {
            Ok(()) => won += 1,
            Err(TableError::ConditionFailed { op: 0 }) => {}
            Err(TableError::Transient(_)) => transient += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    // A refused racer saw the counter at 10, so fewer winners means none was refused.
    assert_eq!(
        won,
        (40 - transient).min(10),
        "{transient} failed transiently"
    );
    assert!(won > 0, "every racer failed transiently");
    assert_eq!(
        table.get(&counter).await.unwrap().unwrap().n("count"),
        Some(won)
    );
    let page = table
        .query(Query::new(
            KeyPrefix {
                pk: counter.pk.clone(),
                sk_prefix: "RUN#".into(),
            },
            Direction::Forward,
            100,
        ))
        .await
        .unwrap();
    assert_eq!(page.items.len(), won as usize);
}

/// Empty transactions, more than 100 operations and a key touched twice are `Invalid`.
pub async fn malformed_transactions_are_invalid(table: Arc<dyn Table>, ns: &str) {
    invalid(table.transact(vec![]).await);
    let too_many = (0..=MAX_TRANSACT_OPS)
        .map(|i| WriteOp::Put {
            item: Item::new(key(ns, "M", &format!("{i:04}"))),
            condition: None,
        })
        .collect();
    invalid(table.transact(too_many).await);
    let twice = key(ns, "M", "twice");
    invalid(
        table
            .transact(vec![
                WriteOp::Put {
                    item: Item::new(twice.clone()),
                    condition: None,
                },
                WriteOp::Delete {
                    key: twice.clone(),
                    condition: None,
                },
            ])
            .await,
    );
    assert_eq!(table.get(&twice).await.unwrap(), None);
}

async fn seed_partition(table: &Arc<dyn Table>, ns: &str, count: usize) -> (String, Vec<String>) {
    let pk = format!("{ns}#PAGE");
    let mut sks: Vec<String> = (0..count).map(|i| format!("ITEM#{i:05}")).collect();
    // Write in a scrambled order so storage order cannot pass for sort order.
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|i| (i * 7919) % count);
    for i in order {
        let item = Item::new(Key {
            pk: pk.clone(),
            sk: sks[i].clone(),
        })
        .with("i", AttrValue::N(i as i64));
        table.put(item, None).await.unwrap();
    }
    sks.sort();
    (pk, sks)
}

async fn walk(table: &Arc<dyn Table>, pk: &str, direction: Direction, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut pages = 0;
    loop {
        let page = table
            .query(Query {
                pk: pk.to_owned(),
                sk_prefix: "ITEM#".into(),
                direction,
                limit,
                cursor: cursor.clone(),
            })
            .await
            .unwrap();
        assert!(page.items.len() <= limit);
        seen.extend(page.items.into_iter().map(|item| item.key.sk));
        pages += 1;
        assert!(pages < 1000, "paging does not terminate");
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    seen
}

/// Forward paging with a cursor returns every item exactly once, ascending, and the last
/// page has no cursor.
pub async fn paging_forward_returns_every_item_once_in_order(table: Arc<dyn Table>, ns: &str) {
    let (pk, sks) = seed_partition(&table, ns, 53).await;
    for limit in [1, 7, 53, 1000] {
        assert_eq!(
            walk(&table, &pk, Direction::Forward, limit).await,
            sks,
            "limit {limit}"
        );
    }
}

/// Backward paging returns every item exactly once, descending.
pub async fn paging_backward_returns_every_item_once_in_reverse_order(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let (pk, mut sks) = seed_partition(&table, ns, 41).await;
    sks.reverse();
    for limit in [1, 10, 41, 100] {
        assert_eq!(
            walk(&table, &pk, Direction::Backward, limit).await,
            sks,
            "limit {limit}"
        );
    }
}

/// `RUN#1` does not see `RUN#10`'s items; an sk prefix sees only its own items, even
/// next to keys that differ by one character or share a longer prefix.
pub async fn prefix_queries_do_not_leak_neighbouring_prefixes(table: Arc<dyn Table>, ns: &str) {
    let put = |pk: String, sk: &str| {
        let table = table.clone();
        let item = Item::new(Key {
            pk,
            sk: sk.to_owned(),
        });
        async move { table.put(item, None).await.unwrap() }
    };
    let run1 = format!("{ns}#RUN#1");
    let run10 = format!("{ns}#RUN#10");
    put(run1.clone(), "STEP#000000000001").await;
    put(run10.clone(), "STEP#000000000001").await;
    put(run10.clone(), "STEP#000000000002").await;
    for sk in [
        "TASK#a",
        "TASK#b",
        "TASK$",
        "TASK",
        "TASKS#x",
        "TASJ#z",
        "TASK#\u{10FFFF}",
    ] {
        put(run1.clone(), sk).await;
    }
    let all = |prefix: &str, direction| {
        let table = table.clone();
        let query = Query {
            pk: run1.clone(),
            sk_prefix: prefix.to_owned(),
            direction,
            limit: 100,
            cursor: None,
        };
        let expected_pk = run1.clone();
        async move {
            let page = table.query(query).await.unwrap();
            page.items
                .into_iter()
                .map(|item| {
                    assert_eq!(item.key.pk, expected_pk);
                    item.key.sk
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        all("STEP#", Direction::Forward).await,
        vec!["STEP#000000000001"]
    );
    assert_eq!(
        all("TASK#", Direction::Forward).await,
        vec!["TASK#a", "TASK#b", "TASK#\u{10FFFF}"]
    );
    assert_eq!(
        all("TASK#", Direction::Backward).await,
        vec!["TASK#\u{10FFFF}", "TASK#b", "TASK#a"]
    );
    let everything: BTreeSet<String> = all("", Direction::Forward).await.into_iter().collect();
    assert_eq!(everything.len(), 8);
}

/// A limit of 0 or above 1000 is `Invalid`.
pub async fn an_out_of_range_query_limit_is_invalid(table: Arc<dyn Table>, ns: &str) {
    for limit in [0, 1001] {
        invalid(
            table
                .query(Query {
                    pk: format!("{ns}#L"),
                    sk_prefix: String::new(),
                    direction: Direction::Forward,
                    limit,
                    cursor: None,
                })
                .await,
        );
    }
}

/// `count` counts what `query` would walk from the cursor in its direction, within the
/// prefix, and stops at the limit.
pub async fn a_count_follows_the_cursor_and_the_prefix_and_stops_at_the_limit(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let (pk, sks) = seed_partition(&table, ns, 53).await;
    let count = |prefix: &str, direction, limit, cursor: Option<&str>| {
        let table = table.clone();
        let query = Query {
            pk: pk.clone(),
            sk_prefix: prefix.to_owned(),
            direction,
            limit,
            cursor: cursor.map(Cursor::after),
        };
        async move { table.count(query).await.unwrap() }
    };
    assert_eq!(count("ITEM#", Direction::Forward, 1000, None).await, 53);
    assert_eq!(count("", Direction::Backward, 1000, None).await, 53);
    assert_eq!(count("ITEM#", Direction::Forward, 10, None).await, 10);
    assert_eq!(count("ITEM#", Direction::Forward, 53, None).await, 53);
    // Before the 21st item (its position in the partition, less one), and after it.
    assert_eq!(
        count("ITEM#", Direction::Backward, 1000, Some(&sks[20])).await,
        20
    );
    assert_eq!(
        count("ITEM#", Direction::Backward, 5, Some(&sks[20])).await,
        5
    );
    assert_eq!(
        count("ITEM#", Direction::Forward, 1000, Some(&sks[20])).await,
        32
    );
    assert_eq!(
        count("ITEM#0004", Direction::Forward, 1000, None).await,
        10,
        "ITEM#00040 to ITEM#00049"
    );
    assert_eq!(count("ITEMS#", Direction::Forward, 1000, None).await, 0);
    for limit in [0, 1001] {
        invalid(
            table
                .count(Query {
                    pk: pk.clone(),
                    sk_prefix: String::new(),
                    direction: Direction::Forward,
                    limit,
                    cursor: None,
                })
                .await,
        );
    }
}

/// `get_then_count` returns the item and counts the query it makes of it; no count when
/// it makes none; nothing, without asking, for a missing item; `Invalid` for a query out
/// of range.
pub async fn a_get_then_count_reads_the_item_and_counts_what_it_asks_for(
    table: Arc<dyn Table>,
    ns: &str,
) {
    let (pk, sks) = seed_partition(&table, ns, 53).await;
    let key_of = |sk: &str| Key {
        pk: pk.clone(),
        sk: sk.to_owned(),
    };
    // The entries before an item, as a queue position is counted.
    let ahead = |limit: usize| -> CountAfter {
        Box::new(move |item: &Item| {
            Some(Query {
                pk: item.key.pk.clone(),
                sk_prefix: "ITEM#".into(),
                direction: Direction::Backward,
                limit,
                cursor: Some(Cursor::after(item.key.sk.clone())),
            })
        })
    };
    let (item, count) = table
        .get_then_count(&key_of(&sks[20]), ahead(1000))
        .await
        .unwrap();
    let item = item.expect("the item");
    assert_eq!(
        (item.key.sk.as_str(), item.n("i")),
        (sks[20].as_str(), Some(20))
    );
    assert_eq!(count, Some(20));
    let (_, count) = table
        .get_then_count(&key_of(&sks[20]), ahead(5))
        .await
        .unwrap();
    assert_eq!(count, Some(5), "at most the limit");
    // The query is made of the item read: its attributes decide.
    let only_odd: CountAfter = Box::new(|item: &Item| {
        (item.n("i")? % 2 == 1).then(|| Query {
            pk: item.key.pk.clone(),
            sk_prefix: "ITEM#".into(),
            direction: Direction::Forward,
            limit: 1000,
            cursor: None,
        })
    });
    let (item, count) = table
        .get_then_count(&key_of(&sks[20]), only_odd)
        .await
        .unwrap();
    assert_eq!((item.is_some(), count), (true, None));
    let (item, count) = table
        .get_then_count(
            &key_of("ITEM#99999"),
            Box::new(|_: &Item| panic!("asked for a count of a missing item")),
        )
        .await
        .unwrap();
    assert_eq!((item, count), (None, None));
    invalid(table.get_then_count(&key_of(&sks[20]), ahead(0)).await);
}

/// A healthy table answers `ping`.
pub async fn ping_succeeds(table: Arc<dyn Table>, _ns: &str) {
    table.ping().await.unwrap();
}
