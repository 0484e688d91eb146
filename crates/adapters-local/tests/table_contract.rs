//! The table contract suite on the memory and SQLite engines, plus what only a file can
//! show: several tables on one file, and data surviving a reopen.

mod memory {
    use std::sync::Arc;

    use tlao_adapters_local::MemoryTable;
    use tlao_ports::Table;

    tlao_ports::table_contract_tests!(|| async {
        (
            Arc::new(MemoryTable::new()) as Arc<dyn Table>,
            Box::new(()) as tlao_ports::testsuite::Guard,
        )
    });
}

mod sqlite {
    use std::sync::Arc;

    use tempfile::TempDir;
    use tlao_adapters_local::SqliteTable;
    use tlao_domain::Key;
    use tlao_ports::{AttrValue, Condition, Item, Table, TableError};

    async fn fresh_table() -> (SqliteTable, TempDir) {
        let dir = TempDir::new().expect("a temporary directory");
        let table = SqliteTable::open(&dir.path().join("nested/dir/table.db"))
            .await
            .expect("a fresh table opens");
        (table, dir)
    }

    tlao_ports::table_contract_tests!(|| async {
        let (table, dir) = fresh_table().await;
        (
            Arc::new(table) as Arc<dyn Table>,
            Box::new(dir) as tlao_ports::testsuite::Guard,
        )
    });

    fn key(sk: &str) -> Key {
        Key {
            pk: "P".into(),
            sk: sk.into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_tables_on_one_file_racing_conditional_puts_have_exactly_one_winner() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("shared.db");
        let first = Arc::new(SqliteTable::open(&path).await.unwrap());
        let second = Arc::new(SqliteTable::open(&path).await.unwrap());

        let mut writers = Vec::new();
        for writer in 0..40 {
            let table = if writer % 2 == 0 { &first } else { &second }.clone();
            let item = Item::new(key("race")).with("writer", AttrValue::N(writer));
            writers.push(tokio::spawn(async move {
                (writer, table.put(item, Some(Condition::NotExists)).await)
            }));
        }
        let mut winners = Vec::new();
        for writer in writers {
            match writer.await.unwrap() {
                (id, Ok(())) => winners.push(id),
                (_, Err(TableError::ConditionFailed { op: 0 })) => {}
                (id, Err(other)) => panic!("writer {id} failed unexpectedly: {other:?}"),
            }
        }

        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        for table in [&first, &second] {
            let stored = table.get(&key("race")).await.unwrap().unwrap();
            assert_eq!(stored.n("writer"), Some(winners[0]));
        }
    }

    #[tokio::test]
    async fn items_survive_closing_and_reopening_the_file() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("table.db");
        let item = Item::new(key("kept")).with("name", AttrValue::S("TLÁO".into()));
        let table = SqliteTable::open(&path).await.unwrap();
        table.put(item.clone(), None).await.unwrap();
        drop(table);

        let reopened = SqliteTable::open(&path).await.unwrap();

        assert_eq!(reopened.get(&item.key).await.unwrap(), Some(item));
    }
}
