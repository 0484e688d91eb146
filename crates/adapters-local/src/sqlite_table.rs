//! The SQLite table: the embedded default engine, one file in WAL mode.
//!
//! It owns the file's schema (`items(pk, sk, attrs)`, the attributes in the binary
//! form of [`crate::stored_attrs`]; JSON text in rows written before it), its
//! connections and the mapping of SQLite errors onto [`TableError`]. Writes go through
//! one writer connection, each in a `BEGIN IMMEDIATE` transaction that reads the current
//! rows, evaluates conditions in Rust and writes, so they are serialized here and, via
//! the file lock and `busy_timeout`, against every other process using the same file.
//! Reads use read-only connections and, thanks to WAL, never wait for a write. A small
//! read (a point read, a page of at most [`SMALL_QUERY`] items) runs inline on the
//! calling thread's own read connection, opened on its first read and kept for the
//! thread's life ([`LocalReaders`]): no lock, no hand-over. Larger reads and writes run
//! on tokio's blocking pool, on the table's pool of connections. The WAL is checkpointed
//! on a thread of its own ([`crate::wal_checkpoint`]), so no write waits for that.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql, TransactionBehavior};
use tlao_domain::Key;
use tlao_ports::table::validate_transaction;
use tlao_ports::{
    Attrs, Condition, CountAfter, Direction, FaultyStore, Item, Page, Query, StorageFault, Table,
    TableError, Update, WriteOp,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::memory_table::{Outcome, plan_writes, prefix_end, updated_item};
use crate::stored_attrs;
use crate::wal_checkpoint::Checkpointer;

/// How many read connections serve `get`, `query` and `ping` at once.
const READERS: usize = 4;

/// How much of the file a read connection maps into memory (address space, not memory:
/// the pages are the OS file cache's).
///
/// Without it SQLite reads a row's overflow pages (a run's document is larger than what
/// fits in its B-tree page) with `pread` on every read, past its page cache; mapped, a
/// warm point read makes no system call for its data. `GET /runs/{id}`: +30 % requests
/// per second (docs/performance.md). WAL frames are still read through the page cache.
const READER_MMAP_BYTES: i64 = 256 << 20;

/// How long a write waits for another connection (or process) to release the file.
///
/// Waiting is not retrying: SQLite's busy handler only waits for the lock, and the write
/// runs once, when it has it. A write that waited (even the whole timeout, then failing
/// `Transient`) is one attempt of requirement 13.2's three, which the orchestrator's
/// store counts; this adapter never runs a write twice.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID";

/// The page size of a new table file (see [`open_writer`]).
const PAGE_SIZE: i64 = 8192;

/// How many pages the WAL grows to before a commit checkpoints it (see [`open_writer`])
/// when no background checkpoints run.
const WAL_CHECKPOINT_PAGES: i64 = 4 * 1024 * 1024 / PAGE_SIZE;

/// How many pages the WAL grows to before a commit checkpoints it while background
/// checkpoints run ([`crate::wal_checkpoint`]): 32 MiB, a safety net should they fall
/// behind (they keep it to what a second of writes adds).
const WAL_SAFETY_PAGES: i64 = 32 * 1024 * 1024 / PAGE_SIZE;

/// One row [`Table::ping`] rewrites, so readiness fails while the table cannot be
/// written (a full disk, a read-only file), not only while it cannot be read.
const PROBE_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)";

/// The [`Table`] port on a SQLite file in WAL mode.
///
/// Safe to share across tasks; several instances, even in different processes, may
/// open the same file and stay correct (writes take the file's write lock up front).
pub struct SqliteTable {
    writer: Arc<Pool>,
    readers: Arc<Pool>,
    local: LocalReaders,
    /// The WAL's checkpoints, off the writes (none when its connection could not be
    /// opened: the writer then checkpoints as SQLite does by default).
    checkpoints: Option<Checkpointer>,
}

impl Drop for SqliteTable {
    fn drop(&mut self) {
        // Threads close their connections to this table on their next read of any table.
        self.local.alive.store(false, Ordering::Relaxed);
    }
}

impl SqliteTable {
    /// Opens the table stored in `path`, creating the file, its parent directories and
    /// the schema when missing.
    ///
    /// Errors: `Transient` when another process holds the file too long, `Unexpected`
    /// when the file cannot be created or opened, or is not a table of ours.
    pub async fn open(path: &Path) -> Result<SqliteTable, TableError> {
        let path = path.to_owned();
        let opened = path.clone();
        let (writer, readers, checkpoints) = blocking(move || {
            let (writer, readers) = open_connections(&opened)?;
            let checkpoints = start_checkpoints(&opened, &writer);
            Ok((writer, readers, checkpoints))
        })
        .await?;
        Ok(SqliteTable {
            writer: Arc::new(Pool::new(vec![writer])),
            readers: Arc::new(Pool::new(readers)),
            local: LocalReaders::new(path),
            checkpoints,
        })
    }

    /// Runs a small read on this thread's read connection to the table (opened on the
    /// thread's first read), or on the pool when that connection cannot be had (it
    /// cannot be opened, or the thread is already inside a read).
    async fn read_small<T, F>(&self, work: F) -> Result<T, TableError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, TableError> + Send + 'static,
    {
        match self.local.with(work) {
            Ok(done) => done,
            Err(work) => self.readers.run_small(work).await,
        }
    }

    /// Runs `ops` in one immediate transaction; returns what each op left behind.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Outcome>, TableError> {
        self.on_writer(move |conn| write_ops(conn, &ops)).await
    }

    /// Runs `work` on the writer connection, then tells the WAL's checkpoints that it
    /// may have grown: every write goes through here, a health check's included.
    async fn on_writer<T, F>(&self, work: F) -> Result<T, TableError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, TableError> + Send + 'static,
    {
        let outcome = self.writer.run(work).await;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wrote();
        }
        outcome
    }
}

/// Starts the WAL's background checkpoints on a connection of their own and raises the
/// writer's own threshold to [`WAL_SAFETY_PAGES`]; `None` (the writer keeping
/// [`WAL_CHECKPOINT_PAGES`]) when that connection or thread cannot be had.
fn start_checkpoints(path: &Path, writer: &Connection) -> Option<Checkpointer> {
    let started = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| error.to_string())
    .and_then(|conn| Checkpointer::start(conn).map_err(|error| error.to_string()))
    .and_then(|checkpoints| {
        writer
            .pragma_update(None, "wal_autocheckpoint", WAL_SAFETY_PAGES)
            .map(|()| checkpoints)
            .map_err(|error| error.to_string())
    });
    match started {
        Ok(checkpoints) => Some(checkpoints),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "sqlite WAL checkpoints stay in the writes");
            None
        }
    }
}

fn open_connections(path: &Path) -> Result<(Connection, Vec<Connection>), TableError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| {
            TableError::Unexpected(anyhow::Error::new(err).context(format!(
                "cannot create the directory {} for the table",
                dir.display()
            )))
        })?;
    }
    let writer = open_writer(path).map_err(|err| in_file(path, err))?;
    let readers = (0..READERS)
        .map(|_| open_reader(path).map_err(|err| in_file(path, err)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((writer, readers))
}

fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    // No SQLITE_OPEN_URI: the path is a path, even if it starts with "file:".
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // First, so that switching to WAL and creating the schema wait for other processes.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Before anything is created (the pragma only changes a new, empty file): an item
    // is stored in the primary key's b-tree (`WITHOUT ROWID`), where a 4 KiB page keeps
    // at most ~1 KB of a row and spills the rest into an overflow page. A run's item is
    // 1–2 KB (its document, escaped, and its projections), so with 4 KiB pages every
    // read and write of a run also touched an overflow page. Measured: a queued run's
    // `GET /runs/{id}` 35.9k → 40.6k requests/s, creating and finishing 10,000 runs
    // 13.5 → 9.0 s (docs/performance.md). Existing files keep their page size.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still correct, only slower: reads then wait for writes.
        tracing::warn!(path = %path.display(), mode, "sqlite table is not in WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Until background checkpoints start (see `start_checkpoints`, which raises it),
    // the commit that takes the WAL past this many pages copies them into the file
    // (and syncs it) before it returns: 4 MiB, as SQLite's default of 1,000 pages is
    // at 4 KiB pages. At 1,000 of our 8 KiB pages that commit stalled for twice as long
    // and put 12–17 ms outliers into `POST /runs` → agent started.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    conn.execute(SCHEMA, [])?;
    conn.execute(PROBE_SCHEMA, [])?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    Ok(conn)
}

fn in_file(path: &Path, err: rusqlite::Error) -> TableError {
    match classify(err) {
        TableError::Transient(err) => {
            TableError::Transient(err.context(format!("opening {}", path.display())))
        }
        TableError::Unexpected(err) => {
            TableError::Unexpected(err.context(format!("opening {}", path.display())))
        }
        other => other,
    }
}

/// SQLite's "someone else holds the lock" is worth a retry; so are a full disk and a
/// read-only or refused file, which an operator may fix (with the [`StorageFault`] at
/// the root of the cause, for the API to name); anything else is not.
fn classify(err: rusqlite::Error) -> TableError {
    let fault = match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            return TableError::Transient(anyhow::Error::new(err));
        }
        Some(ErrorCode::DiskFull) => StorageFault::Full(FaultyStore::Table),
        Some(ErrorCode::ReadOnly) => StorageFault::ReadOnly(FaultyStore::Table),
        Some(ErrorCode::PermissionDenied) => StorageFault::NotPermitted(FaultyStore::Table),
        _ => return TableError::Unexpected(anyhow::Error::new(err)),
    };
    TableError::Transient(anyhow::Error::new(fault).context(err.to_string()))
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, TableError> {
        let key = key.clone();
        self.read_small(move |conn| {
            let attrs = read_attrs(conn, &key)?;
            Ok(attrs.map(|attrs| Item { key, attrs }))
        })
        .await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> Result<(), TableError> {
        self.write(vec![WriteOp::Put { item, condition }]).await?;
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
        updated_item(key, self.write(vec![op]).await?)
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> Result<(), TableError> {
        self.write(vec![WriteOp::Delete {
            key: key.clone(),
            condition,
        }])
        .await?;
        Ok(())
    }

    async fn query(&self, query: Query) -> Result<Page, TableError> {
        query.validate()?;
        if query.limit <= SMALL_QUERY {
            self.read_small(move |conn| query_page(conn, &query)).await
        } else {
            self.readers.run(move |conn| query_page(conn, &query)).await
        }
    }

    async fn count(&self, query: Query) -> Result<usize, TableError> {
        query.validate()?;
        // An index walk of at most 1,000 keys: microseconds, like a small read.
        self.read_small(move |conn| count_range(conn, &query)).await
    }

    /// One read transaction: the item and its count share a snapshot, and the WAL's
    /// read lock is taken once (a lock and an unlock system call per transaction, the
    /// largest part of a point read).
    async fn get_then_count(
        &self,
        key: &Key,
        then: CountAfter,
    ) -> Result<(Option<Item>, Option<usize>), TableError> {
        let key = key.clone();
        self.read_small(move |conn| {
            // The count runs while the item's statement is still open: SQLite then reads
            // both in one read transaction, without a BEGIN and a COMMIT to parse and run.
            with_attrs(conn, &key, |attrs| {
                let Some(attrs) = attrs else {
                    return Ok((None, None));
                };
                let item = Item {
                    key: key.clone(),
                    attrs,
                };
                let count = match then(&item) {
                    Some(query) => {
                        query.validate()?;
                        Some(count_range(conn, &query)?)
                    }
                    None => None,
                };
                Ok((Some(item), count))
            })
        })
        .await
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), TableError> {
        validate_transaction(&ops)?;
        self.write(ops).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), TableError> {
        self.on_writer(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO probe (id, at) VALUES (1, strftime('%s', 'now'))",
                [],
            )
            .map_err(classify)?;
            Ok(())
        })
        .await
    }
}

/// Checks and applies `ops` in one `BEGIN IMMEDIATE` transaction. Any error drops the
/// transaction, which rolls it back: nothing is written unless everything is.
fn write_ops(conn: &mut Connection, ops: &[WriteOp]) -> Result<Vec<Outcome>, TableError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(classify)?;
    let current = ops
        .iter()
        .map(|op| read_attrs(&tx, op.key()))
        .collect::<Result<Vec<_>, _>>()?;
    let current: Vec<Option<&Attrs>> = current.iter().map(Option::as_ref).collect();
    let outcomes = plan_writes(ops, &current)?;
    for (op, outcome) in ops.iter().zip(&outcomes) {
        let key = op.key();
        match outcome {
            Outcome::Unchanged => {}
            Outcome::Written(attrs) => {
                let stored = stored_attrs::encode(attrs).map_err(|err| {
                    TableError::Unexpected(anyhow::Error::new(err).context(format!(
                        "cannot encode the attributes of {}/{}",
                        key.pk, key.sk
                    )))
                })?;
                tx.prepare_cached(
                    "INSERT INTO items (pk, sk, attrs) VALUES (?1, ?2, ?3)
                     ON CONFLICT (pk, sk) DO UPDATE SET attrs = excluded.attrs",
                )
                .and_then(|mut stmt| stmt.execute((&key.pk, &key.sk, &stored)))
                .map_err(classify)?;
            }
            Outcome::Removed => {
                tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
                    .and_then(|mut stmt| stmt.execute((&key.pk, &key.sk)))
                    .map_err(classify)?;
            }
        }
    }
    tx.commit().map_err(classify)?;
    Ok(outcomes)
}

/// Reads one item's attributes (`?1`, `?2`: its key).
const READ_ITEM: &str = "SELECT attrs FROM items WHERE pk = ?1 AND sk = ?2";

fn read_attrs(conn: &Connection, key: &Key) -> Result<Option<Attrs>, TableError> {
    with_attrs(conn, key, Ok)
}

/// Reads one item's attributes (decoded where SQLite holds them, no copy first) and
/// hands them to `then` while the statement is still open, so that what `then` reads
/// on `conn` shares the item's read transaction.
fn with_attrs<T>(
    conn: &Connection,
    key: &Key,
    then: impl FnOnce(Option<Attrs>) -> Result<T, TableError>,
) -> Result<T, TableError> {
    let mut stmt = conn.prepare_cached(READ_ITEM).map_err(classify)?;
    let mut rows = stmt.query((&key.pk, &key.sk)).map_err(classify)?;
    let attrs = match rows.next().map_err(classify)? {
        Some(row) => Some(stored(row.get_ref(0).map_err(classify)?, &key.pk, &key.sk)?),
        None => None,
    };
    then(attrs)
}

/// Decodes stored attributes: the binary form ([`stored_attrs`], a `BLOB`), or the JSON
/// text of rows written before it.
fn stored(value: ValueRef<'_>, pk: &str, sk: &str) -> Result<Attrs, TableError> {
    match value {
        ValueRef::Blob(bytes) => {
            stored_attrs::decode(bytes).map_err(|err| decode_error(pk, sk, err))
        }
        ValueRef::Text(json) => {
            serde_json::from_slice(json).map_err(|err| decode_error(pk, sk, err))
        }
        other => Err(TableError::Unexpected(anyhow::anyhow!(
            "the stored attributes of {pk}/{sk} are unreadable: a {:?} value",
            other.data_type()
        ))),
    }
}

fn decode_error(
    pk: &str,
    sk: &str,
    err: impl std::error::Error + Send + Sync + 'static,
) -> TableError {
    TableError::Unexpected(
        anyhow::Error::new(err)
            .context(format!("the stored attributes of {pk}/{sk} are unreadable")),
    )
}

/// The SQL range of a query: `sk {op} {start}`, `sk < {upper}` when bounded, and the
/// order it walks in.
///
/// The range `prefix <= sk < prefix_end(prefix)` (see [`prefix_end`]) is exactly the
/// prefix, so the primary key index bounds the scan on both sides; the cursor tightens
/// the bound on the side the query walks from.
struct Range<'q> {
    pk: &'q String,
    op: &'static str,
    start: &'q str,
    upper: Option<String>,
    order: &'static str,
}

impl<'q> Range<'q> {
    fn of(query: &'q Query) -> Range<'q> {
        let prefix = query.sk_prefix.as_str();
        let mut lower = (">=", prefix);
        let mut upper = prefix_end(prefix);
        let order = match (query.direction, &query.cursor) {
            (Direction::Forward, Some(cursor)) => {
                if cursor.0.as_str() >= prefix {
                    lower = (">", cursor.0.as_str());
                }
                "ASC"
            }
            (Direction::Backward, Some(cursor)) => {
                if upper.as_ref().is_none_or(|end| cursor.0 < *end) {
                    upper = Some(cursor.0.clone());
                }
                "DESC"
            }
            (Direction::Forward, None) => "ASC",
            (Direction::Backward, None) => "DESC",
        };
        Range {
            pk: &query.pk,
            op: lower.0,
            start: lower.1,
            upper,
            order,
        }
    }

    /// The `WHERE` clause over `?1` (pk), `?2` (start) and, when bounded, `?4` (`?3` is
    /// the statement's `LIMIT`).
    fn clause(&self) -> String {
        let upper = if self.upper.is_some() {
            "AND sk < ?4"
        } else {
            ""
        };
        format!("pk = ?1 AND sk {} ?2 {upper}", self.op)
    }

    /// The parameters of a statement over [`Range::clause`], with `limit` as `?3`.
    fn params<'a>(&'a self, limit: &'a i64) -> Vec<&'a dyn ToSql> {
        let mut params: Vec<&dyn ToSql> = vec![self.pk, &self.start, limit];
        if let Some(end) = &self.upper {
            params.push(end);
        }
        params
    }
}

/// `limit` as SQL's `LIMIT`.
fn sql_limit(limit: usize) -> Result<i64, TableError> {
    i64::try_from(limit)
        .map_err(|err| TableError::Invalid(format!("a query limit of {limit} is too large: {err}")))
}

/// Reads up to `limit + 1` items of the query's range, in its direction (`LIMIT` applies
/// in SQL).
fn query_page(conn: &Connection, query: &Query) -> Result<Page, TableError> {
    let range = Range::of(query);
    let overfetch = sql_limit(query.limit + 1)?;
    let params = range.params(&overfetch);
    let sql = format!(
        "SELECT sk, attrs FROM items WHERE {} ORDER BY sk {} LIMIT ?3",
        range.clause(),
        range.order
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(classify)?;
    let mut rows = stmt.query(params.as_slice()).map_err(classify)?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().map_err(classify)? {
        let sk: String = row.get(0).map_err(classify)?;
        let attrs = stored(row.get_ref(1).map_err(classify)?, &query.pk, &sk)?;
        items.push(Item {
            key: Key {
                pk: query.pk.clone(),
                sk,
            },
            attrs,
        });
    }
    Ok(Page::from_overfetch(items, query.limit))
}

/// Counts up to `limit` items of the query's range in the index, reading none out.
fn count_range(conn: &Connection, query: &Query) -> Result<usize, TableError> {
    let range = Range::of(query);
    let limit = sql_limit(query.limit)?;
    let params = range.params(&limit);
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM items WHERE {} LIMIT ?3)",
        range.clause()
    );
    let count: i64 = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params.as_slice(), |row| row.get(0)))
        .map_err(classify)?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// Reads of at most this many items run inline (see [`LocalReaders`]).
const SMALL_QUERY: usize = 100;

/// Distinguishes tables in the threads' connection lists.
static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's read connections, one per table it has read from.
    static THREAD_READERS: RefCell<Vec<ThreadReader>> = const { RefCell::new(Vec::new()) };
}

/// One thread's read connection to one table.
struct ThreadReader {
    table: u64,
    alive: Arc<AtomicBool>,
    conn: Connection,
}

/// A read connection per thread (an actix worker, a runtime thread) for small reads.
///
/// Each thread opens its own read-only connection to the file on its first read and
/// keeps it: a read then takes no lock and no permit and is never handed to another
/// thread, and a thread's page cache stays its own. In WAL mode readers never wait for
/// the writer, so a read of microseconds runs inline. A connection closes when its
/// thread ends, or on the thread's next read after its table was dropped.
struct LocalReaders {
    id: u64,
    path: PathBuf,
    alive: Arc<AtomicBool>,
}

impl LocalReaders {
    fn new(path: PathBuf) -> Self {
        LocalReaders {
            id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed),
            path,
            alive: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Runs `work` on this thread's connection, opening it first if needed; gives `work`
    /// back when there is none to be had (opening failed, or this thread is already
    /// reading: the caller then uses the pool, which reports any error).
    fn with<T, F>(&self, work: F) -> Result<Result<T, TableError>, F>
    where
        F: FnOnce(&mut Connection) -> Result<T, TableError>,
    {
        THREAD_READERS.with(|cell| {
            let Ok(mut readers) = cell.try_borrow_mut() else {
                return Err(work);
            };
            readers.retain(|reader| reader.alive.load(Ordering::Relaxed));
            let index = match readers.iter().position(|reader| reader.table == self.id) {
                Some(index) => index,
                None => {
                    let Ok(conn) = open_reader(&self.path) else {
                        return Err(work);
                    };
                    readers.push(ThreadReader {
                        table: self.id,
                        alive: Arc::clone(&self.alive),
                        conn,
                    });
                    readers.len() - 1
                }
            };
            Ok(work(&mut readers[index].conn))
        })
    }
}

/// A fixed set of connections, each used by one blocking task at a time.
///
/// Callers wait for a free connection on a semaphore, asynchronously, so waiting never
/// ties up a blocking thread; the mutex only guards the stack of idle connections.
struct Pool {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    fn new(connections: Vec<Connection>) -> Self {
        Pool {
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Mutex::new(connections),
        }
    }

    /// Runs `work` on an idle connection on tokio's blocking pool.
    ///
    /// The permit travels with the connection into the blocking task: if the caller
    /// stops waiting, the work still finishes, and the permit comes back only with the
    /// connection, so a permit always finds an idle connection.
    async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, TableError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, TableError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|err| {
                TableError::Unexpected(anyhow::Error::new(err).context("the sqlite pool is closed"))
            })?;
        let pool = Arc::clone(self);
        blocking(move || {
            let conn = pool.idle().pop();
            let mut lease = Lease {
                conn,
                pool,
                _permit: permit,
            };
            match lease.conn.as_mut() {
                Some(conn) => work(conn),
                None => Err(TableError::Unexpected(anyhow::anyhow!(
                    "no idle sqlite connection despite a permit"
                ))),
            }
        })
        .await
    }

    /// Runs a small read (a point read, a short page) inline when a connection is idle,
    /// else like [`Pool::run`]. In WAL mode a reader never waits for writers, and a
    /// primary-key read takes microseconds — far less than handing it to the blocking
    /// pool and back, which dominated the latency of `GET /runs/{id}`.
    async fn run_small<T, F>(self: &Arc<Self>, work: F) -> Result<T, TableError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, TableError> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return self.run(work).await;
        };
        let conn = self.idle().pop();
        let mut lease = Lease {
            conn,
            pool: Arc::clone(self),
            _permit: permit,
        };
        match lease.conn.as_mut() {
            Some(conn) => work(conn),
            None => Err(TableError::Unexpected(anyhow::anyhow!(
                "no idle sqlite connection despite a permit"
            ))),
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // Only pushes and pops happen under this lock: a panic cannot corrupt the stack.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection out of its pool with the permit that let it out. Dropping it, even
/// during a panic (an open transaction has rolled back by then), puts the connection
/// back first and only then releases the permit.
struct Lease {
    conn: Option<Connection>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle().push(conn);
        }
    }
}

/// Runs blocking SQLite work off the async runtime.
async fn blocking<T, F>(work: F) -> Result<T, TableError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, TableError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        TableError::Unexpected(anyhow::Error::new(err).context("a sqlite task did not finish"))
    })?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tlao_ports::AttrValue;

    use super::*;

    fn key(sk: &str) -> Key {
        Key {
            pk: "P".into(),
            sk: sk.into(),
        }
    }

    fn thread_tables() -> Vec<u64> {
        THREAD_READERS.with(|cell| cell.borrow().iter().map(|reader| reader.table).collect())
    }

    fn page_size(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap()
    }

    /// Rows written as JSON text (before the binary form) read by every path, and a
    /// write stores the binary form.
    #[tokio::test(flavor = "current_thread")]
    async fn rows_of_json_text_are_read_and_rewritten_in_the_binary_form() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("t.db");
        let table = SqliteTable::open(&path).await.unwrap();
        let type_of = |sk: &str| -> String {
            Connection::open(&path)
                .unwrap()
                .query_row(
                    "SELECT typeof(attrs) FROM items WHERE pk = 'P' AND sk = ?1",
                    [sk],
                    |row| row.get(0),
                )
                .unwrap()
        };
        let old = Attrs::from([
            ("doc".to_owned(), AttrValue::S(r#"{"a":"\"b\""}"#.into())),
            ("n".to_owned(), AttrValue::N(3)),
        ]);
        for sk in ["A", "B"] {
            Connection::open(&path)
                .unwrap()
                .execute(
                    "INSERT INTO items (pk, sk, attrs) VALUES ('P', ?1, ?2)",
                    (sk, serde_json::to_string(&old).unwrap()),
                )
                .unwrap();
        }
        assert_eq!(type_of("A"), "text");
        assert_eq!(table.get(&key("A")).await.unwrap().unwrap().attrs, old);
        let page = table
            .query(Query {
                pk: "P".into(),
                sk_prefix: String::new(),
                direction: Direction::Forward,
                limit: 10,
                cursor: None,
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(page.items.iter().all(|item| item.attrs == old));
        let (item, _) = table
            .get_then_count(&key("B"), Box::new(|_: &Item| None))
            .await
            .unwrap();
        assert_eq!(item.unwrap().attrs, old);

        let updated = table
            .update(&key("A"), Update::new().add("n", 1), None)
            .await
            .unwrap();
        assert_eq!(updated.n("n"), Some(4));
        assert_eq!(type_of("A"), "blob");
        assert_eq!(table.get(&key("A")).await.unwrap().unwrap(), updated);
        assert_eq!(
            type_of("B"),
            "text",
            "rows no write touched stay as they are"
        );

        // A row neither form can read is an error, not a panic.
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO items (pk, sk, attrs) VALUES ('P', 'C', x'02')",
                [],
            )
            .unwrap();
        assert!(matches!(
            table.get(&key("C")).await,
            Err(TableError::Unexpected(_))
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_new_file_has_8_kib_pages_and_an_older_file_keeps_its_own() {
        let dir = tempfile::TempDir::new().unwrap();
        let new = dir.path().join("new.db");
        let table = SqliteTable::open(&new).await.unwrap();
        assert_eq!(page_size(&new), PAGE_SIZE);
        // A run-sized item (2 KB) round-trips.
        let doc = "x".repeat(2048);
        let item = Item::new(key("run")).with("doc", AttrValue::S(doc.clone()));
        table.put(item, None).await.unwrap();
        let read = table.get(&key("run")).await.unwrap().unwrap();
        assert_eq!(read.s("doc"), Some(doc.as_str()));
        drop(table);

        // A file made before (4 KiB pages, the table already there) is opened as it is.
        let old = dir.path().join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.pragma_update(None, "page_size", 4096).unwrap();
            conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get::<_, String>(0))
                .unwrap();
            conn.execute(SCHEMA, []).unwrap();
        }
        let table = SqliteTable::open(&old).await.unwrap();
        let item = Item::new(key("run")).with("doc", AttrValue::S(doc.clone()));
        table.put(item, None).await.unwrap();
        let read = table.get(&key("run")).await.unwrap().unwrap();
        assert_eq!(read.s("doc"), Some(doc.as_str()));
        drop(table);
        assert_eq!(page_size(&old), 4096);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn writes_are_checkpointed_into_the_file_in_the_background() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("table.db");
        let table = SqliteTable::open(&path).await.unwrap();
        let autocheckpoint: i64 = table
            .writer
            .run(|conn| {
                conn.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
                    .map_err(classify)
            })
            .await
            .unwrap();
        assert_eq!(
            autocheckpoint, WAL_SAFETY_PAGES,
            "the writer's own is the safety net"
        );
        let before = std::fs::metadata(&path).unwrap().len();
        // ~50 pages: far below any commit's own checkpoint.
        for n in 0..200 {
            let item =
                Item::new(key(&format!("k{n:03}"))).with("doc", AttrValue::S("x".repeat(2000)));
            table.put(item, None).await.unwrap();
        }
        let checkpoints = table.checkpoints.as_ref().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() <= before + 200 * 2000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writes never reached the file ({} checkpoints)",
                checkpoints.runs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(checkpoints.runs() >= 1);
        // Idle: no more checkpoints run.
        let idle = checkpoints.runs();
        tokio::time::sleep(crate::wal_checkpoint::CHECKPOINT_AFTER + Duration::from_millis(300))
            .await;
        assert_eq!(checkpoints.runs(), idle);
        assert_eq!(
            table
                .query(Query::new(
                    tlao_domain::KeyPrefix {
                        pk: "P".into(),
                        sk_prefix: "k".into()
                    },
                    Direction::Forward,
                    1000,
                ))
                .await
                .unwrap()
                .items
                .len(),
            200
        );
        // Dropping the table stops its thread (the drop joins it).
        drop(table);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_thread_reads_each_table_on_its_own_connection_and_sees_every_write() {
        let dir = tempfile::TempDir::new().unwrap();
        let first = SqliteTable::open(&dir.path().join("first.db"))
            .await
            .unwrap();
        let second = SqliteTable::open(&dir.path().join("second.db"))
            .await
            .unwrap();
        let before = thread_tables();
        assert!(!before.contains(&first.local.id));

        for round in 0..3 {
            let item = Item::new(key("k")).with("round", AttrValue::N(round));
            first.put(item, None).await.unwrap();
            // The thread's connection, kept between reads, holds no old snapshot.
            let read = first.get(&key("k")).await.unwrap().unwrap();
            assert_eq!(read.n("round"), Some(round));
            assert!(second.get(&key("k")).await.unwrap().is_none());
        }
        let query = Query::new(
            tlao_domain::KeyPrefix {
                pk: "P".into(),
                sk_prefix: "k".into(),
            },
            Direction::Forward,
            10,
        );
        assert_eq!(first.query(query).await.unwrap().items.len(), 1);
        let tables = thread_tables();
        let own = |id| tables.iter().filter(|table| **table == id).count();
        assert_eq!((own(first.local.id), own(second.local.id)), (1, 1));

        // A dropped table's connection closes on the thread's next read.
        let gone = first.local.id;
        drop(first);
        second.get(&key("k")).await.unwrap();
        assert!(!thread_tables().contains(&gone));
        assert!(thread_tables().contains(&second.local.id));
    }
}
