//! Filling a laid-out array a chunk at a time, and publishing it once full.
//!
//! An array to be filled is uploaded as `blosc2.uninit(...)`: every chunk is
//! an UNINIT special kept in the frame's offsets index, so the file costs a
//! few hundred bytes whatever the shape. A writer claims a slot by writing
//! it; the second writer to reach a slot gets a conflict. The frame's own
//! index is the only record of which slots are written (clients read it with
//! range requests); the vlmeta keeps what the server itself needs: a
//! `fill_nonce` written with the first chunk and a `fill_state` (`filling`,
//! then `complete`, or `publishing` and `published` where a publish root is
//! configured).
//!
//! # Write strategy
//!
//! Under the frame's exclusive lock ([`crate::storage::Storage::lock`]: on a
//! local state directory, the `.b2lock` sidecar), the frame is copied into a
//! staged object ([`crate::storage::Storage::stage_copy`]: on a local disk,
//! `copy_file_range`, an in-kernel copy, no parsing), C-Blosc2 writes the
//! chunk and the vlmeta into the copy in place (through the storage's
//! random-access writes), the generation counter is bumped, and the copy is
//! committed over the original (synced and renamed). So:
//!
//! * a crash (`kill -9`, power loss after the sync) at any moment leaves the
//!   old frame or the new one under the name, never a torn frame — at worst a
//!   temporary file that the next start sweeps away;
//! * the check that the slot is still UNINIT and the write happen under one
//!   exclusive lock, which is also what the reference server and python-blosc2
//!   take, so two writers racing for a slot — threads of this server, or this
//!   server and another process on the same state directory — leave one 200
//!   and one 409;
//! * readers never lock: a reader holds either the old file or the new one,
//!   and the ETag (generation, size, mtime) moves on every write.
//!
//! The price is a copy of the frame per write, O(file size), so filling an
//! array of N chunks copies about N²/2 chunks in total. Measured on this
//! project's 2-core machine (ext4, debug build; `fill_cost_of_a_200_chunk_array`
//! below), a 200-chunk `int32` array of 1000-item chunks that do not compress
//! (4 KB each, 807 KB at the end) fills in 0.35 s: 1.7 ms a write on
//! average, 2.5 ms for the last ones, which copy the whole 0.8 MB (80 MB
//! copied in all). An append-only scheme (new chunk and index written past
//! the old end, header rewritten last) would cost O(chunk), but it rewrites a
//! live file in place, where readers and crashes can meet a header that does
//! not match the rest; it is worth it only for arrays of many thousands of
//! chunks, or of chunks of many megabytes.
//!
//! Readers need no lock because every frame is read from one version of its
//! object ([`crate::storage::Blob`]): a frame committed over the name while a
//! handle reads is not seen by that handle.

use std::path::PathBuf;
use std::sync::Arc;

use cat2_blosc2::{chunk_sizes, ChunkSlot, Decompressor, SChunk, Special};
use cat2_proto::ChunkWritten;

use super::WritePolicy;
use crate::error::{Error, Result};
use crate::path::{suffix, DsPath, Root};
use crate::storage::local::LocalStorage;
use crate::storage::{Blob, Entry, Key, Lock, LockMode, PutMode, ReadAt, Storage};
use crate::store::{Caller, StateDir};

/// vlmeta: what names this array, written with its first chunk, never again.
pub(crate) const FILL_NONCE: &str = "fill_nonce";
/// vlmeta: where the fill stands (see [`state`]).
pub(crate) const FILL_STATE: &str = "fill_state";
/// vlmeta: where the array was last published to.
pub(crate) const PUBLISHED_URL: &str = "published_url";

/// The values of [`FILL_STATE`].
pub(crate) mod state {
    /// Some slot is still unwritten.
    pub(crate) const FILLING: &str = "filling";
    /// Every slot is written and there is nowhere to publish to.
    pub(crate) const COMPLETE: &str = "complete";
    /// Every slot is written and a publish is (or was) under way.
    pub(crate) const PUBLISHING: &str = "publishing";
    /// Copied to the publish root.
    pub(crate) const PUBLISHED: &str = "published";
}

/// Bytes of an extended (Blosc2) chunk header.
const CHUNK_HEADER: usize = 32;

/// What a chunk write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkWrite {
    /// The answer for the writer.
    pub answer: ChunkWritten,
    /// This write filled the last slot and set the state to `publishing`:
    /// the caller owns starting the publish (exactly one writer gets this).
    pub publish_now: bool,
}

/// Where a server publishes filled arrays to: a local directory, spelled as
/// a path (relative to the server's working directory) or a `file://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRoot {
    spelled: String,
}

impl PublishRoot {
    /// The `publish_root` setting as configured; checked when used, so that
    /// a server with an unusable one still serves everything else.
    pub fn new(spelled: impl Into<String>) -> PublishRoot {
        PublishRoot {
            spelled: spelled.into(),
        }
    }

    /// The local directory, or why this server cannot publish there.
    pub fn local_dir(&self) -> Result<PathBuf> {
        let s = self.spelled.as_str();
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(PathBuf::from(path));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(Error::BadRequest(format!(
                "publish_root is {s}, a {scheme}:// URL, and this server publishes only to a \
                 local directory (a path or a file:// URL); set publish_root to one"
            )));
        }
        if s.is_empty() {
            return Err(Error::BadRequest(
                "this server publishes nowhere: set publish_root in its configuration".into(),
            ));
        }
        Ok(PathBuf::from(s))
    }

    /// The store of the local directory published to.
    pub fn storage(&self) -> Result<LocalStorage> {
        Ok(LocalStorage::open(&self.local_dir()?)?)
    }

    /// The URL a key is published at: `<root>/<key>`, as the reference names it.
    pub fn destination(&self, key: &str) -> String {
        format!("{}/{key}", self.spelled.trim_end_matches('/'))
    }
}

/// The key an array is published under: the logical path, except that
/// `@personal/...` becomes `@personal/<user id>/...` — every user spells
/// their personal root the same way, and two users' arrays of one name must
/// not land on one destination.
pub(crate) fn publish_key(path: &DsPath, caller: Caller<'_>) -> Result<String> {
    if path.root() != Root::Personal {
        return Ok(path.to_string());
    }
    let uid = caller.user_id.ok_or(Error::Unauthorized)?;
    let mut key = format!("{}/{uid}", Root::Personal.name());
    for part in path.parts() {
        key.push('/');
        key.push_str(part);
    }
    Ok(key)
}

/// The geometry a chunk must have to go into an array, read from its frame.
struct Geometry {
    nchunks: i64,
    chunksize: i64,
    blocksize: i64,
    /// What a chunk header stores in byte 3: the typesize, or 1 when the
    /// items are wider than a byte can say.
    header_typesize: u8,
}

fn array_geometry(blob: &Arc<dyn Blob>) -> Result<Geometry> {
    let name = blob.meta().key.name();
    let arr = crate::resolve::data_array(blob)
        .map_err(|e| Error::BadRequest(format!("{name} cannot be opened for writing: {e}")))?
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "{name} is computed from other data, so it has no chunks to write into"
            ))
        })?;
    let sc = arr.schunk();
    Ok(Geometry {
        nchunks: sc.nchunks(),
        chunksize: sc.chunksize(),
        blocksize: sc.blocksize(),
        header_typesize: u8::try_from(sc.typesize()).unwrap_or(1),
    })
}

/// Refuses a chunk the array could not read back as one of its own.
fn check_chunk(chunk: &[u8], geo: &Geometry) -> Result<()> {
    let not_a_chunk = || Error::BadRequest("the body is not a Blosc2 chunk".into());
    if chunk.len() < CHUNK_HEADER {
        return Err(not_a_chunk());
    }
    let (nbytes, cbytes, blocksize) = chunk_sizes(chunk).map_err(|_| not_a_chunk())?;
    if usize::try_from(cbytes).ok() != Some(chunk.len()) {
        return Err(Error::BadRequest(format!(
            "the chunk says it is {cbytes} bytes long, but {} were sent",
            chunk.len()
        )));
    }
    if i64::from(nbytes) != geo.chunksize {
        return Err(Error::BadRequest(format!(
            "the chunk holds {nbytes} bytes where this array's chunks hold {}",
            geo.chunksize
        )));
    }
    if i64::from(blocksize) != geo.blocksize {
        return Err(Error::BadRequest(format!(
            "the chunk is split into blocks of {blocksize} bytes where this array's are {}; \
             compress it against the array's blocks",
            geo.blocksize
        )));
    }
    // The one part of the geometry the sizes do not carry: shuffles run on a
    // stride of it, so a chunk of another typesize decompresses to the right
    // number of bytes, all in the wrong places.
    let typesize = chunk[3];
    if typesize != geo.header_typesize {
        return Err(Error::BadRequest(format!(
            "the chunk was compressed with a typesize of {typesize} where this array's is {}; \
             compress it against the array's dtype",
            geo.header_typesize
        )));
    }
    if Special::of(chunk) == Special::Uninit {
        return Err(Error::BadRequest(
            "the chunk is an uninitialized special chunk, which fills nothing".into(),
        ));
    }
    let mut out = Vec::new();
    Decompressor::new(1)?
        .decompress(chunk, &mut out)
        .map_err(|e| Error::BadRequest(format!("the chunk does not decompress: {e}")))?;
    Ok(())
}

/// The offsets index of the frame `bytes` hold (named `name`).
fn frame_index(bytes: &dyn ReadAt, name: &str) -> Result<Vec<ChunkSlot>> {
    crate::frames::frame_index(bytes).map_err(|e| {
        Error::BadRequest(format!(
            "{name} is not a Blosc2 frame whose chunks can be counted: {e}"
        ))
    })
}

fn written_count(index: &[ChunkSlot]) -> i64 {
    index.iter().filter(|s| !s.is_unwritten()).count() as i64
}

fn vlmeta_str(sc: &SChunk, name: &str) -> Result<Option<String>> {
    Ok(sc
        .vlmeta_raw(name)?
        .and_then(|raw| match cat2_blosc2::decode_msgpack(&raw) {
            rmpv::Value::String(s) => s.into_str(),
            _ => None,
        }))
}

fn set_vlmeta_str(sc: &mut SChunk, name: &str, value: &str) -> Result<()> {
    Ok(sc.set_vlmeta(name, &rmpv::Value::String(value.into()))?)
}

/// Changes the frame at `target` through `edit`, crash-safely (see the
/// module docs): `edit` gets C-Blosc2's handle on a staged copy of the frame
/// and the copy's bytes, and the copy replaces the frame only if `edit`
/// succeeds.
fn rewrite_frame<T>(
    storage: &dyn Storage,
    lock: &dyn Lock,
    target: &Key,
    edit: impl FnOnce(&mut SChunk, &dyn ReadAt) -> Result<T>,
) -> Result<T> {
    let staged = storage.stage_copy(target)?;
    let io = staged.io();
    let out = {
        let mut sc = crate::frames::open_staged_frame(io.clone(), target.name())?;
        edit(&mut sc, io.as_ref())?
    };
    lock.bump_generation()?;
    staged.commit(target, PutMode::Overwrite)?;
    Ok(out)
}

/// Writes one compressed chunk into slot `nchunk` of the laid-out array at
/// `path`, which must be unwritten; answers how far the fill has got.
///
/// `publishes`: whether the server has a publish root, which decides what
/// the last slot turns the state into (`publishing`, else `complete`).
pub fn write_chunk(
    sd: &StateDir,
    path: &DsPath,
    nchunk: i64,
    chunk: &[u8],
    caller: Caller<'_>,
    policy: &WritePolicy,
    publishes: bool,
) -> Result<ChunkWrite> {
    let target = sd.writable_key(path, caller, policy)?;
    if suffix(path.name()) != ".b2nd" {
        return Err(Error::BadRequest(format!(
            "{path} is not a .b2nd array; chunks can only be written to a stored NDArray"
        )));
    }
    if !matches!(sd.entry(&target)?, Some(Entry::Object(_))) {
        return Err(Error::Missing(format!(
            "{path} does not exist; create it before filling it"
        )));
    }
    if chunk.is_empty() {
        return Err(Error::BadRequest("no chunk was sent".into()));
    }
    sd.check_quota(policy, chunk.len() as u64, 0, "Write")?;

    let storage = sd.storage();
    let name = target.name().to_string();
    let lock = storage.lock(&target, LockMode::Exclusive)?;
    // Everything is read under the lock: the file may have been replaced by
    // an upload since the request arrived.
    let blob = storage.open(&target)?;
    let geo = array_geometry(&blob)?;
    if !(0..geo.nchunks).contains(&nchunk) {
        return Err(Error::Missing(format!("{name} has no chunk {nchunk}")));
    }
    check_chunk(chunk, &geo)?;
    let index = frame_index(blob.as_ref(), &name)?;
    let slot = usize::try_from(nchunk)
        .ok()
        .and_then(|n| index.get(n))
        .ok_or_else(|| Error::Missing(format!("{name} has no chunk {nchunk}")))?;
    if !slot.is_unwritten() {
        return Err(Error::Conflict(format!(
            "chunk {nchunk} of {name} was already written"
        )));
    }

    rewrite_frame(storage, lock.as_ref(), &target, |sc, copy| {
        sc.update_chunk(nchunk, chunk)?;
        if sc.vlmeta_raw(FILL_NONCE)?.is_none() {
            set_vlmeta_str(sc, FILL_NONCE, &uuid::Uuid::new_v4().simple().to_string())?;
            set_vlmeta_str(sc, FILL_STATE, state::FILLING)?;
        }
        let index = frame_index(copy, &name)?;
        let (written, nchunks) = (written_count(&index), index.len() as i64);
        let mut state = vlmeta_str(sc, FILL_STATE)?.unwrap_or_else(|| state::FILLING.into());
        let mut publish_now = false;
        if written == nchunks && state == state::FILLING {
            // Under the lock, so exactly one writer makes this move, and
            // that one owns the publishing.
            publish_now = publishes;
            state = if publishes {
                state::PUBLISHING
            } else {
                state::COMPLETE
            }
            .into();
            set_vlmeta_str(sc, FILL_STATE, &state)?;
        }
        Ok(ChunkWrite {
            answer: ChunkWritten {
                nchunk,
                written,
                nchunks,
                state,
            },
            publish_now,
        })
    })
}

/// Copies the completely filled array at `path` to the publish root, under
/// [`publish_key`], and records where it went in the array's vlmeta
/// (`published_url`, `fill_state = published`). Answers the destination.
///
/// The copy is written under a name of its own (`<dest>.<random>.partial`)
/// and renamed into place, so a reader polling for the array never opens
/// half of it, and overlapping publishes of one array (the automatic one and
/// a retry) each write a whole copy and the last rename wins.
pub fn publish(
    sd: &StateDir,
    path: &DsPath,
    caller: Caller<'_>,
    policy: &WritePolicy,
    root: Option<&PublishRoot>,
) -> Result<String> {
    let target = sd.writable_key(path, caller, policy)?;
    if !matches!(sd.entry(&target)?, Some(Entry::Object(_))) {
        return Err(Error::Missing(format!("{path} does not exist")));
    }
    let root = root.ok_or_else(|| {
        Error::BadRequest(
            "this server publishes nowhere: set publish_root in its configuration".into(),
        )
    })?;
    let key = publish_key(path, caller)?;
    let published = root.storage()?;
    let dest = Key::parse(&key)?;
    let storage = sd.storage();

    // The source is read under a shared lock, so no writer that works in
    // place (python-blosc2 with locking) changes it mid-copy; a writer of
    // this server replaces the file instead, and the open handle keeps the
    // version it had.
    let (source, nonce) = {
        let _lock = storage.lock(&target, LockMode::Shared)?;
        let source = storage.open(&target)?;
        let index = frame_index(source.as_ref(), target.name())?;
        let unwritten = index.len() as i64 - written_count(&index);
        if unwritten > 0 {
            return Err(Error::BadRequest(format!(
                "{path} has {unwritten} of its {} chunks still unwritten; \
                 it is published once it is filled",
                index.len()
            )));
        }
        let nonce = fill_nonce(&source)?;
        (source, nonce)
    };
    copy_into_place(source.as_ref(), &published, &dest)?;
    let destination = root.destination(&key);

    record_published(storage, &target, nonce.as_deref(), &destination)?;
    Ok(destination)
}

/// Records in the array at `target` that it was published to `destination`
/// — if it is still the array that was copied, the one whose nonce is
/// `nonce`: by now another may have been uploaded under the name (its nonce
/// differs, or it has none), and that one is not published. Answers whether
/// it recorded.
fn record_published(
    storage: &dyn Storage,
    target: &Key,
    nonce: Option<&str>,
    destination: &str,
) -> Result<bool> {
    let lock = storage.lock(target, LockMode::Exclusive)?;
    let current = match storage.open(target) {
        Ok(blob) => blob,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if fill_nonce(&current)?.as_deref() != nonce {
        return Ok(false);
    }
    rewrite_frame(storage, lock.as_ref(), target, |sc, _| {
        set_vlmeta_str(sc, PUBLISHED_URL, destination)?;
        set_vlmeta_str(sc, FILL_STATE, state::PUBLISHED)
    })?;
    Ok(true)
}

/// The `fill_nonce` of the frame `blob` holds, if it has one.
fn fill_nonce(blob: &Arc<dyn Blob>) -> Result<Option<String>> {
    let sc = crate::frames::open_frame(blob).map_err(|e| {
        Error::BadRequest(format!(
            "{} is not a Blosc2 frame: {e}",
            blob.meta().key.name()
        ))
    })?;
    vlmeta_str(&sc, FILL_NONCE)
}

/// Copies `source` to `dest` in the store published to, staged and
/// committed whole: readers polling for `dest` never see half of it, and
/// the caller records the publish only once this returns, after the commit
/// (which syncs), so a crash before that leaves the array `publishing`, to
/// be published again.
fn copy_into_place(source: &dyn ReadAt, published: &dyn Storage, dest: &Key) -> Result<()> {
    let staged = published.stage(dest)?;
    let io = staged.io();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = source
            .read_at(offset, &mut buf)
            .map_err(|e| Error::io("reading", dest.as_str(), e))?;
        if n == 0 {
            break;
        }
        io.write_at(offset, &buf[..n])
            .map_err(|e| Error::io("writing", dest.as_str(), e))?;
        offset += n as u64;
    }
    staged.commit(dest, PutMode::Overwrite)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::generation;
    use crate::write::PublicWrites;
    use cat2_blosc2::{special_chunk, ArraySpec, CParams, Compressor, NdArray};
    use std::fs;
    use std::path::Path;

    /// The offsets index of the frame file at `file`.
    fn file_index(file: &Path) -> Result<Vec<ChunkSlot>> {
        Ok(cat2_blosc2::read_frame_index(
            &mut fs::File::open(file).unwrap(),
        )?)
    }

    /// The key of the laid-out array.
    fn run_key() -> Key {
        Key::parse(&format!("personal/{UID}/run.b2nd")).unwrap()
    }

    /// The `fill_nonce` of the frame file at `file`.
    fn file_nonce(sd: &StateDir) -> Option<String> {
        fill_nonce(&sd.storage().open(&run_key()).unwrap()).unwrap()
    }

    const UID: &str = "0b5e5a2c-96f3-4a0c-8d53-2f6a4ad7d5a1";
    const NCHUNKS: i64 = 5;

    fn caller() -> Caller<'static> {
        Caller {
            user_id: Some(UID),
            is_superuser: false,
        }
    }

    fn policy() -> WritePolicy {
        WritePolicy {
            public_writes: PublicWrites::Users,
            quota: None,
        }
    }

    fn spec() -> ArraySpec {
        ArraySpec {
            shape: vec![1000 * NCHUNKS],
            chunks: vec![1000],
            blocks: vec![250],
            dtype: "<i4".into(),
            cparams: CParams::zstd_shuffle(4),
            urlpath: None,
        }
    }

    fn cparams() -> CParams {
        let mut cp = CParams::zstd_shuffle(4);
        cp.blocksize = 1000;
        cp
    }

    /// A chunk of the test array's geometry holding `value` everywhere.
    fn chunk_of(value: i32) -> Vec<u8> {
        let data: Vec<u8> = (0..1000).flat_map(|_| value.to_le_bytes()).collect();
        Compressor::new(&cparams())
            .unwrap()
            .compress(&data)
            .unwrap()
    }

    /// A state dir with `@personal/run.b2nd` laid out, uninit.
    fn laid_out() -> (tempfile::TempDir, StateDir, DsPath, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path()).unwrap();
        let path = DsPath::parse("@personal/run.b2nd").unwrap();
        let file = sd.path().join("personal").join(UID).join("run.b2nd");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        NdArray::uninit(&spec()).unwrap().save(&file).unwrap();
        (dir, sd, path, file)
    }

    fn write(sd: &StateDir, path: &DsPath, n: i64, chunk: &[u8]) -> Result<ChunkWrite> {
        write_chunk(sd, path, n, chunk, caller(), &policy(), true)
    }

    fn vlmeta(file: &Path, name: &str) -> Option<String> {
        vlmeta_str(&SChunk::open(file).unwrap(), name).unwrap()
    }

    #[test]
    fn a_chunk_lands_and_the_answer_counts_the_fill() {
        let (_d, sd, path, file) = laid_out();
        let w = write(&sd, &path, 2, &chunk_of(7)).unwrap();
        assert_eq!(
            w.answer,
            ChunkWritten {
                nchunk: 2,
                written: 1,
                nchunks: NCHUNKS,
                state: "filling".into()
            }
        );
        assert!(!w.publish_now);
        let arr = NdArray::open(&file).unwrap();
        let mut out = Vec::new();
        arr.schunk().decompress_chunk(2, &mut out).unwrap();
        assert_eq!(&out[..4], &7i32.to_le_bytes());
        let nonce = vlmeta(&file, FILL_NONCE).unwrap();
        assert_eq!(nonce.len(), 32);
        assert!(nonce.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(vlmeta(&file, FILL_STATE).as_deref(), Some("filling"));
        // The nonce is written once.
        write(&sd, &path, 0, &chunk_of(1)).unwrap();
        assert_eq!(vlmeta(&file, FILL_NONCE).unwrap(), nonce);
    }

    #[test]
    fn a_second_write_to_a_slot_is_a_conflict_and_changes_nothing() {
        let (_d, sd, path, file) = laid_out();
        write(&sd, &path, 1, &chunk_of(11)).unwrap();
        let before = fs::read(&file).unwrap();
        let gen = generation(&file);
        match write(&sd, &path, 1, &chunk_of(22)) {
            Err(Error::Conflict(msg)) => assert_eq!(msg, "chunk 1 of run.b2nd was already written"),
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read(&file).unwrap(), before);
        assert_eq!(generation(&file), gen);
    }

    #[test]
    fn a_chunk_of_zeros_is_written_and_moves_the_generation() {
        let (_d, sd, path, file) = laid_out();
        let zeros = special_chunk(&cparams(), 4000, false).unwrap();
        write(&sd, &path, 4, &zeros).unwrap();
        assert_eq!(generation(&file), Some(1));
        write(&sd, &path, 3, &zeros).unwrap();
        assert_eq!(generation(&file), Some(2));
        let index = file_index(&file).unwrap();
        assert_eq!(index[4], ChunkSlot::Special(Special::Zero));
        assert!(matches!(
            write(&sd, &path, 4, &chunk_of(5)),
            Err(Error::Conflict(_))
        ));
    }

    #[test]
    fn chunks_of_another_geometry_are_refused() {
        let (_d, sd, path, file) = laid_out();
        let before = fs::read(&file).unwrap();
        let bad = |c: &[u8]| match write(&sd, &path, 0, c) {
            Err(Error::BadRequest(msg)) => msg,
            other => panic!("{other:?}"),
        };
        // Half the items.
        let half: Vec<u8> = (0..500).flat_map(|i: i32| i.to_le_bytes()).collect();
        let msg = bad(&Compressor::new(&cparams())
            .unwrap()
            .compress(&half)
            .unwrap());
        assert!(msg.contains("2000 bytes"), "{msg}");
        // Another blocksize.
        let data: Vec<u8> = (0..1000).flat_map(|i: i32| i.to_le_bytes()).collect();
        let whole = Compressor::new(&CParams::zstd_shuffle(4))
            .unwrap()
            .compress(&data)
            .unwrap();
        assert!(bad(&whole).contains("blocks of"));
        // Another typesize.
        let mut cp3 = cparams();
        cp3.typesize = 8;
        let odd = Compressor::new(&cp3).unwrap().compress(&data).unwrap();
        assert!(bad(&odd).contains("typesize of 8"));
        // Not a chunk, a lying length, an UNINIT special.
        assert!(bad(b"x").contains("not a Blosc2 chunk"));
        let mut long = chunk_of(1);
        long.push(0);
        assert!(bad(&long).contains("bytes long"));
        let uninit = special_chunk(&cparams(), 4000, true).unwrap();
        assert!(bad(&uninit).contains("uninitialized"));
        assert_eq!(bad(b""), "no chunk was sent");
        assert_eq!(fs::read(&file).unwrap(), before);
    }

    #[test]
    fn where_and_what_may_be_written() {
        let (_d, sd, path, _file) = laid_out();
        match write(&sd, &path, NCHUNKS + 3, &chunk_of(1)) {
            Err(Error::Missing(msg)) => assert_eq!(msg, "run.b2nd has no chunk 8"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            write(&sd, &path, -1, &chunk_of(1)),
            Err(Error::Missing(_))
        ));
        let never = DsPath::parse("@personal/never-made.b2nd").unwrap();
        match write(&sd, &never, 0, &chunk_of(1)) {
            Err(Error::Missing(msg)) => assert_eq!(
                msg,
                "@personal/never-made.b2nd does not exist; create it before filling it"
            ),
            other => panic!("{other:?}"),
        }
        let notes = DsPath::parse("@personal/notes.txt.b2").unwrap();
        assert!(matches!(
            write(&sd, &notes, 0, &chunk_of(1)),
            Err(Error::BadRequest(_))
        ));
        let anonymous = Caller::default();
        assert!(matches!(
            write_chunk(&sd, &path, 0, &chunk_of(1), anonymous, &policy(), true),
            Err(Error::Unauthorized)
        ));
    }

    #[test]
    fn the_last_slot_completes_the_fill_exactly_once() {
        let (_d, sd, path, file) = laid_out();
        for n in 0..NCHUNKS - 1 {
            assert!(
                !write(&sd, &path, n, &chunk_of(n as i32))
                    .unwrap()
                    .publish_now
            );
        }
        let last = write(&sd, &path, NCHUNKS - 1, &chunk_of(9)).unwrap();
        assert!(last.publish_now);
        assert_eq!(last.answer.written, NCHUNKS);
        assert_eq!(last.answer.state, "publishing");
        assert_eq!(vlmeta(&file, FILL_STATE).as_deref(), Some("publishing"));

        // Without a publish root the last slot makes it `complete`.
        let (_d2, sd2, path2, file2) = laid_out();
        for n in 0..NCHUNKS {
            let w = write_chunk(&sd2, &path2, n, &chunk_of(1), caller(), &policy(), false).unwrap();
            assert!(!w.publish_now);
        }
        assert_eq!(vlmeta(&file2, FILL_STATE).as_deref(), Some("complete"));
    }

    #[test]
    fn racing_writers_leave_one_winner() {
        let (_d, sd, path, file) = laid_out();
        let outcomes: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|v| {
                    let (sd, path) = (&sd, &path);
                    s.spawn(move || match write(sd, path, 2, &chunk_of(v)) {
                        Ok(_) => true,
                        Err(Error::Conflict(_)) => false,
                        Err(e) => panic!("{e}"),
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|w| **w).count(), 1);
        assert_eq!(written_count(&file_index(&file).unwrap()), 1);
    }

    #[test]
    fn a_filled_array_is_published_under_the_users_key() {
        let (d, sd, path, file) = laid_out();
        let root = PublishRoot::new(format!("{}/pub/", d.path().display()));
        let unfinished = publish(&sd, &path, caller(), &policy(), Some(&root));
        match unfinished {
            Err(Error::BadRequest(msg)) => assert_eq!(
                msg,
                "@personal/run.b2nd has 5 of its 5 chunks still unwritten; \
                 it is published once it is filled"
            ),
            other => panic!("{other:?}"),
        }
        for n in 0..NCHUNKS {
            write(&sd, &path, n, &chunk_of(n as i32)).unwrap();
        }
        let dest = publish(&sd, &path, caller(), &policy(), Some(&root)).unwrap();
        assert_eq!(
            dest,
            format!("{}/pub/@personal/{UID}/run.b2nd", d.path().display())
        );
        let copy = NdArray::open(Path::new(&dest)).unwrap();
        let mut out = Vec::new();
        copy.schunk().decompress_chunk(3, &mut out).unwrap();
        assert_eq!(&out[..4], &3i32.to_le_bytes());
        assert_eq!(vlmeta(&file, FILL_STATE).as_deref(), Some("published"));
        assert_eq!(vlmeta(&file, PUBLISHED_URL).as_deref(), Some(dest.as_str()));
        // Again, as a retry would; nothing staged is left behind.
        assert_eq!(
            publish(&sd, &path, caller(), &policy(), Some(&root)).unwrap(),
            dest
        );
        let parent = Path::new(&dest).parent().unwrap();
        let names: Vec<_> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["run.b2nd"]);
    }

    #[test]
    fn a_publish_records_itself_only_on_the_array_it_copied() {
        let (_d, sd, path, file) = laid_out();
        for n in 0..NCHUNKS {
            write(&sd, &path, n, &chunk_of(1)).unwrap();
        }
        let copied = file_nonce(&sd);
        assert!(copied.is_some());
        // Another array is laid out under the name while the copy runs ...
        NdArray::uninit(&spec()).unwrap().save(&file).unwrap();
        assert!(
            !record_published(sd.storage(), &run_key(), copied.as_deref(), "/x/run.b2nd").unwrap()
        );
        assert_eq!(vlmeta(&file, FILL_STATE), None);
        assert_eq!(vlmeta(&file, PUBLISHED_URL), None);
        // ... or one filled by someone else.
        write(&sd, &path, 0, &chunk_of(1)).unwrap();
        assert!(
            !record_published(sd.storage(), &run_key(), copied.as_deref(), "/x/run.b2nd").unwrap()
        );
        assert_eq!(vlmeta(&file, FILL_STATE).as_deref(), Some("filling"));
        // The array that was copied is marked.
        let own = file_nonce(&sd);
        assert!(record_published(sd.storage(), &run_key(), own.as_deref(), "/x/run.b2nd").unwrap());
        assert_eq!(vlmeta(&file, FILL_STATE).as_deref(), Some("published"));
        assert_eq!(vlmeta(&file, PUBLISHED_URL).as_deref(), Some("/x/run.b2nd"));
    }

    #[test]
    fn publishing_needs_a_local_root() {
        let (_d, sd, path, _file) = laid_out();
        match publish(&sd, &path, caller(), &policy(), None) {
            Err(Error::BadRequest(msg)) => assert_eq!(
                msg,
                "this server publishes nowhere: set publish_root in its configuration"
            ),
            other => panic!("{other:?}"),
        }
        let s3 = PublishRoot::new("s3://bucket/published");
        match publish(&sd, &path, caller(), &policy(), Some(&s3)) {
            Err(Error::BadRequest(msg)) => assert!(msg.contains("s3:// URL"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            PublishRoot::new("file:///srv/pub").local_dir().unwrap(),
            PathBuf::from("/srv/pub")
        );
        let missing = DsPath::parse("@personal/nope.b2nd").unwrap();
        assert!(matches!(
            publish(&sd, &missing, caller(), &policy(), Some(&s3)),
            Err(Error::Missing(_))
        ));
    }

    /// Where [`crash_child`] fills an array, when it runs as a child.
    const CRASH_DIR: &str = "CAT2_FILL_CRASH_DIR";
    const CRASH_CHUNKS: i64 = 400;

    fn crash_layout(dir: &Path) -> (StateDir, DsPath, PathBuf) {
        let sd = StateDir::open(dir).unwrap();
        let path = DsPath::parse("@personal/crash.b2nd").unwrap();
        let file = sd.path().join("personal").join(UID).join("crash.b2nd");
        (sd, path, file)
    }

    /// Not a test by itself: the writer that
    /// [`a_killed_writer_leaves_the_old_frame_or_the_new`] runs in a child
    /// process and kills. Fills every unwritten slot, slot `n` with `n`.
    #[test]
    #[ignore]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR) else {
            return;
        };
        let (sd, path, file) = crash_layout(Path::new(&dir));
        let index = file_index(&file).unwrap();
        for (n, slot) in index.iter().enumerate() {
            if slot.is_unwritten() {
                write(&sd, &path, n as i64, &chunk_of(n as i32)).unwrap();
            }
        }
    }

    #[test]
    fn a_killed_writer_leaves_the_old_frame_or_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let (sd, path, file) = crash_layout(dir.path());
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mut s = spec();
        s.shape = vec![1000 * CRASH_CHUNKS];
        NdArray::uninit(&s).unwrap().save(&file).unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut kills = 0;
        for _round in 0..12 {
            let mut child = std::process::Command::new(&exe)
                .args(["--exact", "write::fill::tests::crash_child", "--ignored"])
                .env(CRASH_DIR, dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            std::thread::sleep(std::time::Duration::from_millis(30 + u64::from(seed % 150)));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
            child.wait().unwrap();
            // Whatever the moment, the frame under the name is whole: it
            // opens, and every written slot holds exactly its own chunk.
            let index = file_index(&file).unwrap();
            assert_eq!(index.len() as i64, CRASH_CHUNKS);
            let arr = NdArray::open(&file).unwrap();
            let mut out = Vec::new();
            for (n, slot) in index.iter().enumerate() {
                if !slot.is_unwritten() {
                    arr.schunk().decompress_chunk(n as i64, &mut out).unwrap();
                    assert_eq!(out, fs_chunk_data(n as i32), "slot {n}");
                }
            }
            sd.storage().sweep().unwrap();
        }
        assert!(kills > 0, "no writer was killed mid-fill");
        // ... and it can still be filled to the end.
        for (n, slot) in file_index(&file).unwrap().iter().enumerate() {
            if slot.is_unwritten() {
                write(&sd, &path, n as i64, &chunk_of(n as i32)).unwrap();
            }
        }
        assert_eq!(vlmeta(&file, FILL_STATE).as_deref(), Some("publishing"));
    }

    fn fs_chunk_data(value: i32) -> Vec<u8> {
        (0..1000).flat_map(|_| value.to_le_bytes()).collect()
    }

    /// What a fill costs with this write strategy (see the module docs):
    /// `cargo test -p cat2-core --release fill_cost -- --ignored --nocapture`.
    /// Prints, asserts nothing about time.
    #[test]
    #[ignore]
    fn fill_cost_of_a_200_chunk_array() {
        const N: i64 = 200;
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::open(dir.path()).unwrap();
        let path = DsPath::parse("@personal/big.b2nd").unwrap();
        let file = sd.path().join("personal").join(UID).join("big.b2nd");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let mut s = spec();
        s.shape = vec![1000 * N];
        NdArray::uninit(&s).unwrap().save(&file).unwrap();
        // Noisy data, so chunks stay near their 4000 raw bytes.
        let mut x: u32 = 1;
        let chunks: Vec<Vec<u8>> = (0..N)
            .map(|_| {
                let data: Vec<u8> = (0..1000)
                    .flat_map(|_| {
                        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        x.to_le_bytes()
                    })
                    .collect();
                Compressor::new(&cparams())
                    .unwrap()
                    .compress(&data)
                    .unwrap()
            })
            .collect();
        let start = std::time::Instant::now();
        let mut slowest = std::time::Duration::ZERO;
        for (n, c) in chunks.iter().enumerate() {
            let t = std::time::Instant::now();
            write(&sd, &path, n as i64, c).unwrap();
            slowest = slowest.max(t.elapsed());
        }
        let total = start.elapsed();
        eprintln!(
            "{N} chunks of {} bytes: {:?} in all, {:?} a write on average, slowest {:?}, final file {} bytes",
            chunks[0].len(),
            total,
            total / N as u32,
            slowest,
            fs::metadata(&file).unwrap().len()
        );
    }

    #[test]
    fn shared_paths_keep_their_name_as_key() {
        let p = DsPath::parse("@shared/a/b.b2nd").unwrap();
        assert_eq!(publish_key(&p, caller()).unwrap(), "@shared/a/b.b2nd");
        let p = DsPath::parse("@personal/a/b.b2nd").unwrap();
        assert_eq!(
            publish_key(&p, caller()).unwrap(),
            format!("@personal/{UID}/a/b.b2nd")
        );
    }
}
