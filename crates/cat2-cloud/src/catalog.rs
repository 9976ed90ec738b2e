//! The catalog: what every path holds, in PostgreSQL.
//!
//! One row per path (`cat2_entries`): a directory, or an object pointing at
//! its immutable data object ([`crate::objects`]) with its size, time and a
//! generation counter. Listings, heads, usage, copies and moves are queries
//! and updates of these rows, never S3 listings or copies: a move of a whole
//! tree is one `UPDATE`, atomic for every reader.
//!
//! # Consistency
//! Every change is one transaction that first takes transaction-scoped
//! advisory locks: exclusive on the paths it changes, shared on their
//! ancestors (so that a tree is not moved or removed while something is
//! committed into it), always in the order of the lock ids (so two changes
//! cannot deadlock). Data objects are uploaded *before* the transaction and
//! made visible by it: a replica that dies at any moment leaves either the
//! old row or the new one, plus at worst an unreferenced upload, which the
//! collector removes: an upload is recorded as garbage *before* it starts
//! ([`reserve`]), and the commit that makes it visible takes it off that
//! list. A commit whose reservation is gone (its upload outlasted the grace
//! period, and the collector took it) fails rather than point at a deleted
//! object. No replica ever lists the bucket. Readers take no lock; PostgreSQL's snapshot gives them the
//! row as it was at their query. Nothing here relies on conditional writes
//! of the object store (Garage ignores them).
//!
//! # Garbage
//! An object a row stops pointing at (overwritten, deleted) is recorded in
//! `cat2_garbage` and deleted from S3 once it has been garbage for a grace
//! period *and* no row points at it (a copy shares its source's object).
//! The grace period is what lets a reader that opened the old version a
//! moment ago finish reading it, and what makes a copy racing a deletion
//! safe: the copy's row exists long before the collector looks.
//!
//! Lock ids are a 32-bit hash of the path in one of the classes below (the
//! two-key form of PostgreSQL's advisory locks, a key space of its own): a
//! hash collision only makes two paths wait for each other.

use std::time::{Duration, SystemTime};

use tokio_postgres::types::Type;
use tokio_postgres::{Client, GenericClient, Transaction};

use crate::pg::PoolError;

/// Lock class of catalog changes (transaction-scoped).
const COMMIT_LOCKS: i32 = 0x6332_0001;
/// Lock class of the storage trait's writer locks (session-scoped).
pub(crate) const WRITER_LOCKS: i32 = 0x6332_0002;
/// Lock class of schema creation.
const SCHEMA_LOCK: i32 = 0x6332_0000;

/// The catalog's tables; made if missing, by one replica at a time.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS cat2_entries (
    path       text COLLATE "C" PRIMARY KEY,
    parent     text COLLATE "C" NOT NULL,
    is_dir     boolean NOT NULL,
    object     text,
    size       bigint NOT NULL DEFAULT 0,
    modified   timestamptz NOT NULL DEFAULT now(),
    generation bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cat2_entries_parent ON cat2_entries (parent, path);
CREATE INDEX IF NOT EXISTS cat2_entries_object ON cat2_entries (object);
CREATE TABLE IF NOT EXISTS cat2_garbage (
    object text PRIMARY KEY,
    since  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cat2_origins (
    dir text COLLATE "C" PRIMARY KEY
);
"#;

/// What a path holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub path: String,
    pub is_dir: bool,
    /// The data object (objects only).
    pub object: Option<String>,
    pub size: u64,
    pub modified: SystemTime,
    pub generation: i64,
}

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} {1}")]
    Conflict(String, String),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The object store failed in the middle of a catalog operation (the
    /// collector's deletes, say).
    #[error("the object store: {0}")]
    Objects(String),
}

pub(crate) type CatalogResult<T> = Result<T, CatalogError>;

const COLUMNS: &str = "path, is_dir, object, size, modified, generation";

fn row(r: &tokio_postgres::Row) -> Row {
    Row {
        path: r.get(0),
        is_dir: r.get(1),
        object: r.get(2),
        size: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
        modified: r.get(4),
        generation: r.get(5),
    }
}

/// The parent of a non-root path (`""` for top-level paths).
fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The proper ancestors of `path`, top first (`a`, `a/b` for `a/b/c`).
fn ancestors(path: &str) -> Vec<String> {
    path.match_indices('/')
        .map(|(i, _)| path[..i].to_string())
        .collect()
}

/// A path's lock id in its class (FNV-1a, folded to 32 bits).
fn lock_id(path: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in path.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// The session lock id of a path for writers (see [`WRITER_LOCKS`]).
pub(crate) fn writer_lock_id(path: &str) -> i32 {
    lock_id(path)
}

/// Takes the commit locks of a change: exclusive on `exclusive`, shared on
/// the others, in id order.
async fn lock_paths(
    tx: &Transaction<'_>,
    exclusive: &[&str],
    shared: &[String],
) -> CatalogResult<()> {
    let mut ids: Vec<(i32, bool)> = exclusive
        .iter()
        .map(|p| (lock_id(p), true))
        .chain(shared.iter().map(|p| (lock_id(p), false)))
        .collect();
    // Exclusive first for equal ids, then keep one of each id.
    ids.sort_by_key(|&(id, excl)| (id, !excl));
    ids.dedup_by_key(|&mut (id, _)| id);
    for (id, excl) in ids {
        let sql = if excl {
            "SELECT pg_advisory_xact_lock($1, $2)"
        } else {
            "SELECT pg_advisory_xact_lock_shared($1, $2)"
        };
        tx.execute(sql, &[&COMMIT_LOCKS, &id]).await?;
    }
    Ok(())
}

/// The rows at and below `path` (everything for the root, `""`), as a
/// condition on `path` with its parameters from `$first` on.
fn subtree(path: &str, first: usize) -> (String, Vec<String>) {
    if path.is_empty() {
        return ("TRUE".into(), vec![]);
    }
    // Bytewise ('C' collation): `a/...` sorts between `a/` and `a0`.
    (
        format!(
            "(path = ${a} OR (path >= ${b} AND path < ${c}))",
            a = first,
            b = first + 1,
            c = first + 2
        ),
        vec![path.to_string(), format!("{path}/"), format!("{path}0")],
    )
}

/// Makes the tables if they are missing.
pub(crate) async fn ensure_schema(client: &mut Client) -> CatalogResult<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await?;
    Ok(())
}

// The reads every request makes are sent typed and unnamed (one round trip,
// no statement prepared and closed around each).

pub(crate) async fn head(client: &impl GenericClient, path: &str) -> CatalogResult<Option<Row>> {
    let sql = format!("SELECT {COLUMNS} FROM cat2_entries WHERE path = $1");
    Ok(client
        .query_typed_opt(&sql, &[(&path, Type::TEXT)])
        .await?
        .as_ref()
        .map(row))
}

/// The rows of those of `paths` that are in the catalog, in any order.
pub(crate) async fn head_each(
    client: &impl GenericClient,
    paths: &[String],
) -> CatalogResult<Vec<Row>> {
    let sql = format!("SELECT {COLUMNS} FROM cat2_entries WHERE path = ANY($1)");
    Ok(client
        .query_typed(&sql, &[(&paths, Type::TEXT_ARRAY)])
        .await?
        .iter()
        .map(row)
        .collect())
}

/// The state directories the catalog's contents were imported from.
pub(crate) async fn origins(client: &impl GenericClient) -> CatalogResult<Vec<String>> {
    Ok(client
        .query_typed("SELECT dir FROM cat2_origins ORDER BY dir", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Records `dir` among the origins (once).
pub(crate) async fn add_origin(client: &impl GenericClient, dir: &str) -> CatalogResult<()> {
    client
        .execute(
            "INSERT INTO cat2_origins (dir) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&dir],
        )
        .await?;
    Ok(())
}

/// The rows directly below the directory `path`, sorted by path.
pub(crate) async fn children(client: &impl GenericClient, path: &str) -> CatalogResult<Vec<Row>> {
    let sql = format!("SELECT {COLUMNS} FROM cat2_entries WHERE parent = $1 ORDER BY path");
    Ok(client
        .query_typed(&sql, &[(&path, Type::TEXT)])
        .await?
        .iter()
        .map(row)
        .collect())
}

/// Bytes of the objects at and below `path`.
pub(crate) async fn usage(client: &impl GenericClient, path: &str) -> CatalogResult<u64> {
    let (cond, params) = subtree(path, 1);
    let sql = format!(
        "SELECT COALESCE(SUM(size), 0)::bigint FROM cat2_entries WHERE NOT is_dir AND {cond}"
    );
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p as _).collect();
    let total: i64 = client.query_one(&sql, &params).await?.get(0);
    Ok(u64::try_from(total).unwrap_or(0))
}

/// Fails if an ancestor of `path` (or `path` itself, with `itself`) is an
/// object.
async fn check_no_object_above(
    tx: &Transaction<'_>,
    path: &str,
    itself: bool,
) -> CatalogResult<()> {
    let mut above = ancestors(path);
    if itself {
        above.push(path.to_string());
    }
    let hit = tx
        .query_opt(
            "SELECT path FROM cat2_entries WHERE path = ANY($1) AND NOT is_dir ORDER BY path LIMIT 1",
            &[&above],
        )
        .await?;
    match hit {
        Some(r) => {
            // The object in the way is the key of the conflict: its text
            // is then shown as the logical path it stands for.
            let p: String = r.get(0);
            Err(CatalogError::Conflict(
                p,
                "is an object, not a directory".into(),
            ))
        }
        None => Ok(()),
    }
}

/// Records the directories `paths` (which must not be objects).
async fn insert_dirs(tx: &Transaction<'_>, paths: &[String]) -> CatalogResult<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let parents: Vec<&str> = paths.iter().map(|p| parent(p)).collect();
    tx.execute(
        "INSERT INTO cat2_entries (path, parent, is_dir) \
         SELECT p, q, TRUE FROM unnest($1::text[], $2::text[]) AS t(p, q) \
         ON CONFLICT (path) DO NOTHING",
        &[&paths, &parents],
    )
    .await?;
    Ok(())
}

async fn to_garbage(tx: &Transaction<'_>, objects: &[String]) -> CatalogResult<()> {
    if !objects.is_empty() {
        tx.execute(
            "INSERT INTO cat2_garbage (object) SELECT DISTINCT unnest($1::text[]) \
             ON CONFLICT (object) DO NOTHING",
            &[&objects],
        )
        .await?;
    }
    Ok(())
}

/// One object to commit: `path` now holds data object `object` of `size`
/// bytes.
pub(crate) struct NewObject {
    pub path: String,
    pub object: String,
    pub size: u64,
}

/// Records the data object `object`, about to be uploaded, as garbage
/// until a commit claims it: if its replica dies first, the collector
/// removes it after the grace period.
pub(crate) async fn reserve(client: &impl GenericClient, object: &str) -> CatalogResult<()> {
    client
        .execute(
            "INSERT INTO cat2_garbage (object, since) VALUES ($1, now()) ON CONFLICT DO NOTHING",
            &[&object],
        )
        .await?;
    Ok(())
}

/// Makes each of `items` the object at its path, in one transaction;
/// with `create`, fails if any path holds something already. Each item's
/// object must be reserved ([`reserve`]) and still be.
pub(crate) async fn commit(
    client: &mut Client,
    items: &[NewObject],
    create: bool,
) -> CatalogResult<Vec<Row>> {
    let tx = client.transaction().await?;
    let exclusive: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
    let mut shared: Vec<String> = items.iter().flat_map(|i| ancestors(&i.path)).collect();
    shared.sort();
    shared.dedup();
    lock_paths(&tx, &exclusive, &shared).await?;
    // Claimed under the collector's row locks: it either deleted the upload
    // already (the reservation is gone) or never will.
    let objects: Vec<&str> = items.iter().map(|i| i.object.as_str()).collect();
    let claimed = tx
        .execute(
            "DELETE FROM cat2_garbage WHERE object = ANY($1)",
            &[&objects],
        )
        .await?;
    if claimed < items.len() as u64 {
        return Err(CatalogError::Conflict(
            exclusive
                .first()
                .map_or_else(String::new, |p| p.to_string()),
            "was uploaded for longer than the grace period of superseded objects (gc_grace), \
             and the upload was collected: write it again, or raise gc_grace"
                .into(),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut superseded = Vec::new();
    for item in items {
        check_no_object_above(&tx, &item.path, false).await?;
        if let Some(old) = head(&tx, &item.path).await? {
            if old.is_dir {
                return Err(CatalogError::Conflict(
                    item.path.clone(),
                    "is a directory, not an object".into(),
                ));
            }
            if create {
                return Err(CatalogError::AlreadyExists(item.path.clone()));
            }
            superseded.extend(old.object);
        }
        insert_dirs(&tx, &ancestors(&item.path)).await?;
        let size = i64::try_from(item.size).unwrap_or(i64::MAX);
        let sql = format!(
            "INSERT INTO cat2_entries (path, parent, is_dir, object, size, modified, generation) \
             VALUES ($1, $2, FALSE, $3, $4, now(), 0) \
             ON CONFLICT (path) DO UPDATE SET object = EXCLUDED.object, size = EXCLUDED.size, \
             modified = now(), generation = cat2_entries.generation + 1 \
             RETURNING {COLUMNS}"
        );
        let r = tx
            .query_one(
                &sql,
                &[&item.path, &parent(&item.path), &item.object, &size],
            )
            .await?;
        out.push(row(&r));
    }
    to_garbage(&tx, &superseded).await?;
    tx.commit().await?;
    Ok(out)
}

/// Removes the object at `path`.
pub(crate) async fn delete_object(client: &mut Client, path: &str) -> CatalogResult<()> {
    let tx = client.transaction().await?;
    lock_paths(&tx, &[path], &ancestors(path)).await?;
    match head(&tx, path).await? {
        None => return Err(CatalogError::NotFound(path.into())),
        Some(r) if r.is_dir => {
            return Err(CatalogError::Conflict(
                path.into(),
                "is a directory, not an object".into(),
            ))
        }
        Some(r) => {
            tx.execute("DELETE FROM cat2_entries WHERE path = $1", &[&path])
                .await?;
            to_garbage(&tx, &r.object.into_iter().collect::<Vec<_>>()).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Removes rows of the subtree at `path` inside `tx`, recording their
/// objects as garbage.
async fn remove_subtree(tx: &Transaction<'_>, path: &str) -> CatalogResult<u64> {
    let (cond, params) = subtree(path, 1);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        params.iter().map(|p| p as _).collect();
    let sql = format!(
        "WITH gone AS (DELETE FROM cat2_entries WHERE {cond} RETURNING object) \
         INSERT INTO cat2_garbage (object) SELECT DISTINCT object FROM gone \
         WHERE object IS NOT NULL ON CONFLICT (object) DO NOTHING"
    );
    Ok(tx.execute(&sql, &params).await?)
}

/// Removes the directory `path` and everything below it.
pub(crate) async fn delete_tree(client: &mut Client, path: &str) -> CatalogResult<()> {
    let tx = client.transaction().await?;
    lock_paths(&tx, &[path], &ancestors(path)).await?;
    match head(&tx, path).await? {
        None => return Err(CatalogError::NotFound(path.into())),
        Some(r) if !r.is_dir => {
            return Err(CatalogError::Conflict(
                path.into(),
                "is an object, not a directory".into(),
            ))
        }
        Some(_) => {
            remove_subtree(&tx, path).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Makes `path` and its ancestors directories.
pub(crate) async fn create_dir(client: &mut Client, path: &str) -> CatalogResult<()> {
    let tx = client.transaction().await?;
    lock_paths(&tx, &[path], &ancestors(path)).await?;
    check_no_object_above(&tx, path, true).await?;
    let mut dirs = ancestors(path);
    dirs.push(path.to_string());
    insert_dirs(&tx, &dirs).await?;
    tx.commit().await?;
    Ok(())
}

/// Copies (`keep_source`) or moves the object or tree at `from` to `to`,
/// replacing what `to` held. Data objects are shared, not copied.
pub(crate) async fn transfer(
    client: &mut Client,
    from: &str,
    to: &str,
    keep_source: bool,
) -> CatalogResult<()> {
    let tx = client.transaction().await?;
    let mut shared: Vec<String> = ancestors(from).into_iter().chain(ancestors(to)).collect();
    shared.sort();
    shared.dedup();
    let exclusive: Vec<&str> = if keep_source {
        vec![to]
    } else {
        vec![from, to]
    };
    if keep_source {
        shared.push(from.to_string());
    }
    lock_paths(&tx, &exclusive, &shared).await?;
    if head(&tx, from).await?.is_none() {
        return Err(CatalogError::NotFound(from.into()));
    }
    if from == to {
        tx.commit().await?;
        return Ok(());
    }
    let inside = |a: &str, b: &str| a.starts_with(b) && a.as_bytes().get(b.len()) == Some(&b'/');
    if inside(to, from) || inside(from, to) {
        return Err(CatalogError::Conflict(
            to.into(),
            format!("cannot take the place of {from}: one holds the other"),
        ));
    }
    check_no_object_above(&tx, to, false).await?;
    remove_subtree(&tx, to).await?;
    let (cond, mut params) = subtree(from, 4);
    let len = i32::try_from(from.chars().count()).unwrap_or(i32::MAX);
    // $1 to, $2 the parent of to, $3 the length of from; then the subtree's.
    let new_path = "$1 || substr(path, $3 + 1)";
    let new_parent = "CASE WHEN path = $4 THEN $2 ELSE $1 || substr(parent, $3 + 1) END";
    let sql = if keep_source {
        format!(
            "INSERT INTO cat2_entries (path, parent, is_dir, object, size, modified, generation) \
             SELECT {new_path}, {new_parent}, is_dir, object, size, now(), 0 \
             FROM cat2_entries WHERE {cond}"
        )
    } else {
        format!("UPDATE cat2_entries SET path = {new_path}, parent = {new_parent} WHERE {cond}")
    };
    let head_params = vec![to.to_string(), parent(to).to_string()];
    params.splice(0..0, head_params);
    let mut values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    values.push(&params[0]);
    values.push(&params[1]);
    values.push(&len);
    for p in &params[2..] {
        values.push(p);
    }
    tx.execute(&sql, &values).await?;
    insert_dirs(&tx, &ancestors(to)).await?;
    tx.commit().await?;
    Ok(())
}

/// Counts one more change of the object at `path` (its version moves);
/// answers the new generation, 0 if there is no object there.
pub(crate) async fn bump(client: &impl GenericClient, path: &str) -> CatalogResult<u64> {
    let r = client
        .query_opt(
            "UPDATE cat2_entries SET generation = generation + 1 \
             WHERE path = $1 AND NOT is_dir RETURNING generation",
            &[&path],
        )
        .await?;
    Ok(r.map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
}

/// Sets the modification time of the object at `path`.
pub(crate) async fn set_modified(
    client: &impl GenericClient,
    path: &str,
    when: SystemTime,
) -> CatalogResult<()> {
    let n = client
        .execute(
            "UPDATE cat2_entries SET modified = $2 WHERE path = $1 AND NOT is_dir",
            &[&path, &when],
        )
        .await?;
    if n == 0 {
        return Err(CatalogError::NotFound(path.into()));
    }
    Ok(())
}

/// Garbage older than `grace` that no row points at any more, taken out of
/// the garbage list by `tx` (other collectors skip it); the caller deletes
/// the objects from S3 and then commits.
pub(crate) async fn take_garbage(
    tx: &Transaction<'_>,
    grace: Duration,
    limit: i64,
) -> CatalogResult<Vec<String>> {
    let secs = grace.as_secs_f64();
    let rows = tx
        .query(
            "SELECT object FROM cat2_garbage \
             WHERE since < now() - make_interval(secs => $1) \
             ORDER BY since LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&secs, &limit],
        )
        .await?;
    let candidates: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let live: std::collections::HashSet<String> = tx
        .query(
            "SELECT DISTINCT object FROM cat2_entries WHERE object = ANY($1)",
            &[&candidates],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.execute(
        "DELETE FROM cat2_garbage WHERE object = ANY($1)",
        &[&candidates],
    )
    .await?;
    Ok(candidates
        .into_iter()
        .filter(|o| !live.contains(o))
        .collect())
}

/// Which of `objects` the catalog knows (pointed at, or waiting as garbage).
pub(crate) async fn known_objects(
    client: &impl GenericClient,
    objects: &[String],
) -> CatalogResult<std::collections::HashSet<String>> {
    Ok(client
        .query(
            "SELECT object FROM cat2_entries WHERE object = ANY($1) \
             UNION SELECT object FROM cat2_garbage WHERE object = ANY($1)",
            &[&objects],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_their_relatives() {
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(ancestors("a/b/c"), ["a", "a/b"]);
        assert!(ancestors("a").is_empty());
        let (cond, params) = subtree("a/b", 1);
        assert_eq!(cond, "(path = $1 OR (path >= $2 AND path < $3))");
        assert_eq!(params, ["a/b", "a/b/", "a/b0"]);
        assert_eq!(subtree("", 1).0, "TRUE");
        assert_ne!(lock_id("a"), lock_id("b"));
    }
}
