//! Staging a big file at the cost of reading it, not of deflating it.
//!
//! libgit2 writes every staged version of a file as a zlib-deflated loose
//! object: for a 10 MB journal that is ~150 ms of a commit, and it buys
//! nothing, because the background compaction (see `crate::compact`) packs
//! those objects with deltas anyway. So for a big regular file that no
//! filter changes, we write the loose object ourselves in git's own format
//! with *stored* deflate blocks — what git writes with
//! `core.looseCompression=0` — hashing (SHA-1 with the CPU's SHA extensions)
//! on one core while the other copies the bytes out, and put the computed id
//! and the file's stat data into the index entry, as `git add` does. The
//! copying core also compares the bytes with the version they replace, so
//! the diff for the message need not read 10 MB again (see [`Compared`]).
//!
//! Anything unusual takes libgit2's ordinary path instead: a file under a
//! `filter`, `ident` or `working-tree-encoding` attribute, content with a CR
//! (line-ending conversion could apply), `core.safecrlf=true`, an object
//! directory moved by the environment, or a file that changed while read.
//!
//! The id is plain SHA-1, not git's collision-detecting variant (git itself
//! can be built that way, `OPENSSL_SHA1`/`BLK_SHA1`); the content is the
//! user's own file, which is not where a crafted collision comes from.

use std::fs::File;
use std::io::{IoSlice, Write as _};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use git2::{Index, IndexEntry, IndexTime, Oid, Repository};
use sha1::{Digest, Sha1};

use super::pieces::{Pieces, Runs};
use crate::error::{Error, Result};

/// Files smaller than this go through libgit2: deflating them costs little,
/// and their loose objects stay small.
pub const FAST_MIN_BYTES: u64 = 256 * 1024;

/// A file staged by [`try_stage`]: its blob id and the bytes it was made of
/// (the diff reads them instead of the file, which may have changed since),
/// mapped from the object just written; `None` when they could not be.
pub struct Staged {
    pub id: Oid,
    pub content: Option<Pieces>,
    /// How the bytes compare with the version the index held before, found
    /// while they were copied; `None` when that version was not a stored
    /// loose object (see [`Compared`]).
    pub compared: Option<Compared>,
}

/// Where a staged file's bytes start and stop equalling an earlier
/// version's: the expensive part of a big file's diff (for a journal with a
/// new entry, a 10 MB comparison), done while the bytes are copied, when
/// this thread would otherwise wait for the hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compared {
    /// The earlier version: valid only for a diff against this blob.
    pub old_id: Oid,
    /// Leading bytes equal in both.
    pub prefix: usize,
    /// Trailing bytes equal in both (prefix and suffix may overlap).
    pub suffix: usize,
}

/// Stage the regular file `path` (work-tree relative `rel`) into `index`
/// with a stored-deflate loose object. `Ok(None)`: the fast path does not
/// apply (see the module docs) and nothing was changed; the caller stages
/// the ordinary way.
pub fn try_stage(
    git: &Repository,
    index: &mut Index,
    path: &Path,
    rel: &str,
) -> Result<Option<Staged>> {
    // stat before reading, as git does: if the file changes afterwards, the
    // index's stat data is older than the file and git re-hashes it.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() || meta.len() < FAST_MIN_BYTES || !plain_attrs(git, rel) {
        return Ok(None);
    }
    if std::env::var_os("GIT_OBJECT_DIRECTORY").is_some() {
        return Ok(None);
    }
    let objects = git.commondir().join("objects");
    // The version being replaced, to compare with while copying: usually
    // the one the diff starts from.
    let old = index.get_path(Path::new(rel), 0).map(|e| e.id);
    let file =
        File::open(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let Some(staged) =
        store(&objects, file, meta.len() as usize, true, old).map_err(|e| e.reading(path))?
    else {
        return Ok(None);
    };
    let mode = file_mode(git, index, rel, &meta);
    let entry = entry_for(rel, staged.id, mode, &meta);
    index
        .add(&entry)
        .map_err(|e| Error::git(format!("cannot stage {}", path.display()), e))?;
    Ok(Some(staged))
}

/// No attribute that makes git's clean filter change bytes, and no
/// `core.safecrlf=true` (which may refuse a file git would check out
/// differently). CRs are checked on the content itself.
fn plain_attrs(git: &Repository, rel: &str) -> bool {
    let flags = git2::AttrCheckFlags::FILE_THEN_INDEX;
    for attr in ["filter", "ident", "working-tree-encoding"] {
        match git.get_attr(Path::new(rel), attr, flags) {
            Ok(None) => {}
            Ok(Some(v)) if git2::AttrValue::from_string(Some(v)) == git2::AttrValue::False => {}
            _ => return false,
        }
    }
    let safecrlf = git
        .config()
        .and_then(|c| c.get_string("core.safecrlf"))
        .unwrap_or_default();
    !matches!(
        safecrlf.to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1"
    )
}

fn file_mode(git: &Repository, index: &Index, rel: &str, meta: &std::fs::Metadata) -> u32 {
    let trust = git
        .config()
        .and_then(|c| c.get_bool("core.filemode"))
        .unwrap_or(cfg!(unix));
    let old = index.get_path(Path::new(rel), 0).map(|e| e.mode);
    if !trust {
        return old.filter(|m| *m == 0o100755).unwrap_or(0o100644);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o100 != 0 {
            return 0o100755;
        }
    }
    let _ = meta;
    0o100644
}

fn entry_for(rel: &str, id: Oid, mode: u32, meta: &std::fs::Metadata) -> IndexEntry {
    #[cfg(unix)]
    let (ctime, mtime, dev, ino, uid, gid) = {
        use std::os::unix::fs::MetadataExt;
        (
            IndexTime::new(meta.ctime() as i32, meta.ctime_nsec() as u32),
            IndexTime::new(meta.mtime() as i32, meta.mtime_nsec() as u32),
            meta.dev() as u32,
            meta.ino() as u32,
            meta.uid(),
            meta.gid(),
        )
    };
    #[cfg(not(unix))]
    let (ctime, mtime, dev, ino, uid, gid) =
        (IndexTime::new(0, 0), IndexTime::new(0, 0), 0, 0, 0, 0);
    IndexEntry {
        ctime,
        mtime,
        dev,
        ino,
        mode,
        uid,
        gid,
        // git stores the size truncated to 32 bits.
        file_size: meta.len() as u32,
        id,
        // The path length is filled in by libgit2; intent-to-add and
        // skip-worktree are cleared, as `git add` clears them.
        flags: 0,
        flags_extended: 0,
        path: rel.as_bytes().to_vec(),
    }
}

/// Write `content` as a loose blob under `objects` (stored deflate blocks)
/// and return its id.
#[cfg(test)]
pub fn write_loose_blob(objects: &Path, content: &[u8]) -> Result<Oid> {
    store(objects, content, content.len(), false, None)
        .map_err(|e| e.reading(Path::new("the content")))?
        .map(|s| s.id)
        .ok_or_else(|| Error::io("cannot store", std::io::Error::other("short content")))
}

/// Why [`store`] failed: reading the source, or writing the object.
enum StoreError {
    Read(std::io::Error),
    Write(Error),
}

impl StoreError {
    fn reading(self, path: &Path) -> Error {
        match self {
            StoreError::Read(e) => Error::io(format!("cannot read {}", path.display()), e),
            StoreError::Write(e) => e,
        }
    }
}

/// Read `len` bytes from `src` and store them as a loose blob under
/// `objects`, returning its id and its bytes, mapped from the object (see
/// [`Staged`]), compared with the blob `old` when that is a stored loose
/// object. `Ok(None)`: `src` did not hold exactly `len` bytes (the file
/// changed while read), or held a CR and `refuse_cr` is set; nothing is
/// stored then.
///
/// One pass over the bytes, in 256 KiB steps through a few buffers used in
/// turn: this thread reads a step and hands it to a second thread that
/// hashes it while this one writes its deflate blocks to a temporary file
/// and compares it with the old version; the buffer comes back once both
/// are done with it. No buffer the size of the file: on a VM that returns
/// freed memory to its host, 10 MB of fresh memory per commit cost up to
/// 30 ms (see BENCHMARKS.md). The file is renamed into place once the id is
/// known, so a reader never sees half an object.
fn store(
    objects: &Path,
    mut src: impl std::io::Read,
    len: usize,
    refuse_cr: bool,
    old: Option<Oid>,
) -> std::result::Result<Option<Staged>, StoreError> {
    let header = format!("blob {len}\0");
    let tmp = tmp_name(objects);
    let mut out = open_new(&tmp)
        .map_err(|e| StoreError::Write(Error::io(format!("cannot create {}", tmp.display()), e)))?;
    let mut sums = Sums::new(header.as_bytes(), refuse_cr);
    let (streamed, hashed) = std::thread::scope(|s| {
        let (full, steps) = std::sync::mpsc::channel::<Arc<Vec<u8>>>();
        let (back, free) = std::sync::mpsc::channel::<Arc<Vec<u8>>>();
        let header = header.as_bytes();
        // SHA-1 (the id) is the one sum that can't go faster than ~2 GB/s,
        // so it gets a core of its own; this thread reads, writes and does
        // the cheap sums (see `Sums`), which takes about as long.
        let hasher = s.spawn(move || {
            let mut h = Sha1::new();
            h.update(header);
            for step in steps {
                h.update(&step[..]);
                let _ = back.send(step);
            }
            h.finalize()
        });
        let mut io = Stream {
            out: &mut out,
            tmp: &tmp,
            src: &mut src,
            header,
            len,
            full,
            free,
            compare: old.map(|id| Compare::Pending(id, objects)),
        };
        let streamed = io.run(&mut sums);
        let compared = io.compare.take().and_then(Compare::finish);
        drop(io);
        (streamed.map(|done| done.then_some(compared)), hasher.join())
    });
    let cleanup = || {
        let _ = std::fs::remove_file(&tmp);
    };
    let compared = match streamed {
        Ok(Some(compared)) => compared,
        Ok(None) => {
            cleanup();
            return Ok(None);
        }
        Err(e) => {
            cleanup();
            return Err(e);
        }
    };
    let Ok(digest) = hashed else {
        cleanup();
        return Err(StoreError::Write(Error::io(
            "cannot hash the staged file",
            std::io::Error::other("hashing thread panicked"),
        )));
    };
    let adler = sums.adler.finish();
    if let Err(e) = out.write_all(&adler.to_be_bytes()) {
        cleanup();
        return Err(StoreError::Write(Error::io(
            format!("cannot write {}", tmp.display()),
            e,
        )));
    }
    let id = Oid::from_bytes(&digest).map_err(|e| {
        cleanup();
        StoreError::Write(Error::git("bad object id", e))
    })?;
    let hex = id.to_string();
    let dir = objects.join(&hex[..2]);
    let dst = dir.join(&hex[2..]);
    if dst.exists() {
        // Already stored (the same version staged before): keep that one.
        drop(out);
        cleanup();
        let content = read_stored(objects, id);
        return Ok(Some(Staged {
            id,
            content,
            compared,
        }));
    }
    let placed = super::fanout::place_in(&dir, || std::fs::rename(&tmp, &dst))
        .map_err(|e| Error::io(format!("cannot write {}", dst.display()), e));
    if let Err(e) = placed {
        drop(out);
        cleanup();
        return Err(StoreError::Write(e));
    }
    // The bytes for the diff: the object just written, mapped where its
    // blocks lie (still in the page cache). Renamed, it is immutable.
    // Not pre-faulted (MAP_POPULATE): the diff's first touches map pages in
    // batches, which measured ~1.5 ms less per commit for 10 MB here.
    // SAFETY: see `read_stored`.
    let content = unsafe { memmap2::Mmap::map(&out) }
        .ok()
        .and_then(|map| Pieces::mapped(map, content_runs(header.len(), len)));
    Ok(Some(Staged {
        id,
        content,
        compared,
    }))
}

/// Where the content bytes lie in a stored-block object of a `len`-byte
/// blob with an `hlen`-byte header, as written by [`Stream`].
fn content_runs(hlen: usize, len: usize) -> Runs {
    let total = hlen + len;
    (0..total)
        .step_by(BLOCK)
        .enumerate()
        .filter_map(|(i, b)| {
            let (start, end) = (b.max(hlen), (b + BLOCK).min(total));
            // The zlib header, then each block's 5-byte header and bytes.
            let data = 2 + i * (BLOCK + 5) + 5;
            (end > start).then(|| (data + start - b, end - start))
        })
        .collect()
}

/// The deflate block size of stored blocks (their length is 16 bits).
const BLOCK: usize = 65_535;
/// Blocks per step of [`Stream`]: 256 KiB. Small steps let the hash start
/// sooner and finish sooner after the last read, and keep the buffers few
/// pages: in a new process (the CLI) each fresh page costs a fault, and
/// three 1 MiB buffers took ~1.2 ms of it here. Measured against 1 MiB
/// steps, the CLI's commit of a 10 MB journal took ~1 ms less.
const STEP_BLOCKS: usize = 4;
/// Step buffers: one being hashed, one being read and written, one spare.
const BUFFERS: usize = 3;

/// The sums [`stream`] keeps on its own thread: the zlib trailer's Adler-32
/// (SIMD) and whether a CR was seen (memchr), both cheap next to SHA-1.
struct Sums {
    adler: simd_adler32::Adler32,
    refuse_cr: bool,
}

impl Sums {
    fn new(header: &[u8], refuse_cr: bool) -> Sums {
        let mut adler = simd_adler32::Adler32::new();
        adler.write(header);
        Sums { adler, refuse_cr }
    }

    /// Add `step`; false when it holds a CR that is refused.
    fn add(&mut self, step: &[u8]) -> bool {
        if self.refuse_cr && memchr::memchr(b'\r', step).is_some() {
            return false;
        }
        self.adler.write(step);
        true
    }
}

/// The comparison of the bytes being stored with the version they replace.
enum Compare<'a> {
    /// Not opened yet: the old blob's id and the objects directory.
    Pending(Oid, &'a Path),
    Open(Comparer),
}

impl Compare<'_> {
    /// Ready to be fed a new version of `new_len` bytes; `None` when the
    /// old version is not a stored loose object (nothing is compared then).
    fn open(self, new_len: usize) -> Option<Comparer> {
        match self {
            Compare::Pending(id, objects) => Some(Comparer {
                old_id: id,
                // Not checksummed: that read all 10 MB once more before the
                // first comparison, while the hasher waited for its next
                // step. Damage only makes the bounds wrong for damaged
                // bytes, and the diff reads the old version checked (a
                // damaged one is an error there).
                old: map_stored(objects, id, false)?,
                new_len,
                prefix: None,
                diff_end: 0,
            }),
            Compare::Open(c) => Some(c),
        }
    }

    /// The result, if every byte was compared.
    fn finish(self) -> Option<Compared> {
        match self {
            Compare::Open(c) => Some(c.finish()),
            Compare::Pending(..) => None,
        }
    }
}

/// Finds where a new version, fed in order, starts and stops equalling
/// `old`: its common prefix, and (the versions aligned at their ends) the
/// end of its last differing byte.
struct Comparer {
    old_id: Oid,
    old: Pieces,
    new_len: usize,
    /// The common prefix, once a difference has been seen.
    prefix: Option<usize>,
    /// Just past the new version's last byte known to differ.
    diff_end: usize,
}

impl Comparer {
    /// The new version's bytes `at..at + bytes.len()`, right after those
    /// before them.
    fn feed(&mut self, at: usize, bytes: &[u8]) {
        if self.prefix.is_none() {
            let n = self.old.prefix_at(at, bytes);
            if n < bytes.len() {
                self.prefix = Some(at + n);
            }
        }
        // Aligned at the ends, new byte i is old byte i + old_len - new_len;
        // the first new_len - old_len bytes (when it grew) have none.
        let end = at + bytes.len();
        let unmatched = self.new_len.saturating_sub(self.old.len()).clamp(at, end);
        if unmatched > at {
            self.diff_end = unmatched;
        }
        let rest = &bytes[unmatched - at..];
        if !rest.is_empty() {
            // end >= new_len - old_len here, so this does not underflow.
            let old_end = end + self.old.len() - self.new_len;
            let same = self.old.suffix_before(old_end, rest);
            if same < rest.len() {
                self.diff_end = end - same;
            }
        }
    }

    fn finish(self) -> Compared {
        Compared {
            old_id: self.old_id,
            prefix: self.prefix.unwrap_or(self.new_len.min(self.old.len())),
            suffix: self.new_len - self.diff_end,
        }
    }
}

/// The body of [`store`]: write the zlib stream of `header` then the `len`
/// bytes of `src` to `out`, all but the trailer, sending each step's buffer
/// to the hasher (`full`) before writing it and taking buffers the hasher is
/// done with back from `free`.
struct Stream<'a, R> {
    out: &'a mut File,
    tmp: &'a Path,
    src: &'a mut R,
    header: &'a [u8],
    len: usize,
    full: std::sync::mpsc::Sender<Arc<Vec<u8>>>,
    free: std::sync::mpsc::Receiver<Arc<Vec<u8>>>,
    /// The comparison with the version replaced, if any.
    compare: Option<Compare<'a>>,
}

impl<R: std::io::Read> Stream<'_, R> {
    /// `Ok(false)`: the source was shorter or longer than `len`, or held a
    /// refused CR (line-ending conversion could apply: libgit2 stages it).
    fn run(&mut self, sums: &mut Sums) -> std::result::Result<bool, StoreError> {
        let write_err = |e: std::io::Error| {
            StoreError::Write(Error::io(format!("cannot write {}", self.tmp.display()), e))
        };
        let (header, hlen) = (self.header, self.header.len());
        let total = hlen + self.len;
        // CMF/FLG: deflate, 32 KiB window, "fastest" level hint; 0x7801 % 31 == 0.
        self.out.write_all(&[0x78, 0x01]).map_err(write_err)?;
        let mut made = 0;
        // Steps start on block boundaries; the header is never empty, so
        // there is always at least one block.
        let mut pos = 0;
        while pos < total {
            let end = (pos + STEP_BLOCKS * BLOCK).min(total);
            let (from, to) = (pos.max(hlen) - hlen, end.max(hlen) - hlen);
            let mut buf = match self.free.try_recv() {
                Ok(b) => b,
                Err(_) if made < BUFFERS => {
                    made += 1;
                    Arc::new(Vec::with_capacity(STEP_BLOCKS * BLOCK))
                }
                // The hasher only stops early if it panicked; that is
                // reported by the caller.
                Err(_) => self.free.recv().unwrap_or_default(),
            };
            // Ours alone again: the hasher sent it back after its last use.
            let step = Arc::make_mut(&mut buf);
            step.resize(to - from, 0);
            match self.src.read_exact(step) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(StoreError::Read(e)),
            }
            if !sums.add(step) {
                return Ok(false);
            }
            // Hashed while written; the buffer comes back (through `free`)
            // only after both are done with it.
            let _ = self.full.send(Arc::clone(&buf));
            let step: &[u8] = &buf;
            let heads: Vec<[u8; 5]> = (pos..end)
                .step_by(BLOCK)
                .map(|b| {
                    let n = BLOCK.min(total - b);
                    let [l0, l1] = (n as u16).to_le_bytes();
                    let [n0, n1] = (!(n as u16)).to_le_bytes();
                    [u8::from(b + n == total), l0, l1, n0, n1]
                })
                .collect();
            let mut slices = Vec::with_capacity(heads.len() * 3);
            for (head, b) in heads.iter().zip((pos..end).step_by(BLOCK)) {
                let e = (b + BLOCK).min(total);
                slices.push(IoSlice::new(head));
                if b < hlen {
                    slices.push(IoSlice::new(&header[b..e.min(hlen)]));
                }
                if e > hlen {
                    let c = b.max(hlen) - hlen;
                    slices.push(IoSlice::new(&step[c - from..e - hlen - from]));
                }
            }
            write_all_vectored(self.out, &mut slices).map_err(write_err)?;
            // While the hasher works on this step: compare it with the old
            // version (opened only now, so the hash starts at once).
            if let Some(c) = self.compare.take() {
                self.compare = c.open(self.len).map(|mut c| {
                    c.feed(from, step);
                    Compare::Open(c)
                });
            }
            pos = end;
        }
        // A file that grew while read is not the size we staged.
        let mut more = [0u8; 1];
        match self.src.read(&mut more) {
            Ok(0) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) => Err(StoreError::Read(e)),
        }
    }
}

/// `Write::write_all_vectored` (not stable yet): write every slice, resuming
/// after short writes.
fn write_all_vectored(f: &mut File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match f.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read the blob `id` if it is a loose object made of stored deflate blocks
/// (what [`try_stage`] writes, and git with `core.looseCompression=0`):
/// the file is mapped and its blocks' bytes are used where they lie, where
/// libgit2 reads the file, inflates it into a second buffer and copies that
/// into a third. `None` for anything else (packed, compressed, damaged):
/// read it with libgit2 then. The zlib checksum is verified.
pub fn read_stored(objects: &Path, id: Oid) -> Option<Pieces> {
    map_stored(objects, id, true)
}

/// [`read_stored`], with the zlib checksum verified or not (`checked`).
fn map_stored(objects: &Path, id: Oid, checked: bool) -> Option<Pieces> {
    let hex = id.to_string();
    let f = File::open(objects.join(&hex[..2]).join(&hex[2..])).ok()?;
    // SAFETY: loose objects are immutable (git and we write them under a
    // temporary name and rename them into place; compaction deletes them,
    // which leaves a mapping intact), as libgit2 and git rely on when they
    // map object files.
    let map = unsafe { memmap2::Mmap::map(&f) }.ok()?;
    let (header, runs) = stored_runs(&map, checked)?;
    let size: usize = std::str::from_utf8(header.strip_prefix(b"blob ")?)
        .ok()?
        .parse()
        .ok()?;
    let pieces = Pieces::mapped(map, runs)?;
    (pieces.len() == size).then_some(pieces)
}

/// The runs of content bytes of a stored-block zlib stream, after the object
/// header (returned without its NUL), with the Adler-32 trailer checked if
/// `checked` (else only the blocks' structure is).
fn stored_runs(z: &[u8], checked: bool) -> Option<(Vec<u8>, Runs)> {
    let zhead = z.get(..2)?;
    // Deflate, no preset dictionary, a valid header check.
    let ok = zhead[0] & 0x0f == 8 && zhead[1] & 0x20 == 0;
    if !ok || u16::from_be_bytes([zhead[0], zhead[1]]) % 31 != 0 {
        return None;
    }
    let mut at = 2;
    let mut header = Vec::new();
    let mut in_header = true;
    let mut runs = Vec::new();
    let mut adler = simd_adler32::Adler32::new();
    loop {
        // Stored block headers: BFINAL and BTYPE=00 in the first byte (the
        // rest is padding up to the byte boundary), then LEN and ~LEN.
        let h = z.get(at..at + 5)?;
        let len = u16::from_le_bytes([h[1], h[2]]);
        if h[0] & 0x06 != 0 || !len != u16::from_le_bytes([h[3], h[4]]) {
            return None;
        }
        let (mut s, e) = (at + 5, at + 5 + usize::from(len));
        let bytes = z.get(s..e)?;
        if checked {
            adler.write(bytes);
        }
        // The object header ("blob N\0") is in the first bytes of the
        // stream, possibly over several (small) blocks.
        if in_header {
            match bytes.iter().position(|&b| b == 0) {
                Some(i) => {
                    header.extend_from_slice(&bytes[..i]);
                    in_header = false;
                    s += i + 1;
                }
                None if header.len() + bytes.len() > 64 => return None,
                None => {
                    header.extend_from_slice(bytes);
                    s = e;
                }
            }
        }
        if !in_header && e > s {
            runs.push((s, e - s));
        }
        at = e;
        if h[0] & 1 == 1 {
            break;
        }
    }
    let trailer = z.get(at..at + 4)?;
    let ok = !in_header
        && at + 4 == z.len()
        && (!checked
            || adler.finish()
                == u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]));
    ok.then_some((header, runs))
}

/// A name git's own `prune` recognises and cleans up if we are killed
/// between writing and renaming.
fn tmp_name(objects: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    objects.join(format!("tmp_obj_ai-commit-{}-{n}", std::process::id()))
}

fn open_new(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    // Readable too: the object is mapped for the diff once written.
    o.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Loose objects are read-only, as git writes them.
        o.mode(0o444);
    }
    o.open(path)
}

#[cfg(test)]
const ADLER_INIT: (u32, u32) = (1, 0);

/// Adler-32's two sums over `data`, continuing from `(a, b)`: the plain
/// definition, the tests' oracle for the SIMD one.
#[cfg(test)]
fn adler32((mut a, mut b): (u32, u32), data: &[u8]) -> (u32, u32) {
    const MOD: u32 = 65_521;
    // 5552 is the largest n with 255n(n+1)/2 + (n+1)(MOD-1) < 2^32.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_s_own_uncompressed_loose_objects_are_read_and_others_are_left_to_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let objects = repo.path().join("objects");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 97) as u8 + 32).collect();
        let file = dir.path().join("f");
        std::fs::write(&file, &content).unwrap();
        // git's level-0 writer (zlib's stored blocks, its own block sizes).
        let hash = |level: &str| {
            let out = std::process::Command::new("git")
                .args(["-c", &format!("core.looseCompression={level}")])
                .args(["hash-object", "-w"])
                .arg(&file)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success());
            Oid::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap()
        };
        let id = hash("0");
        assert_eq!(
            &read_stored(&objects, id).expect("git's level 0").to_vec()[..],
            &content[..]
        );
        // A compressed object is not stored blocks: libgit2 reads it.
        let hex = id.to_string();
        let path = objects.join(&hex[..2]).join(&hex[2..]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(hash("1"), id);
        assert!(read_stored(&objects, id).is_none());
        // A damaged stored object (one byte flipped) fails the checksum.
        std::fs::remove_file(&path).unwrap();
        hash("0");
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        let mut perm = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&path, perm).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_stored(&objects, id).is_none());
        // Unchecked (the comparison while staging), its blocks still parse.
        assert!(map_stored(&objects, id, false).is_some());
    }

    #[test]
    fn the_simd_adler32_agrees_with_the_definition() {
        let data: Vec<u8> = (0..200_003u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 5551, 5552, 5553, 65_535, 65_536, 200_003] {
            let (a, b) = adler32(ADLER_INIT, &data[..len]);
            let mut simd = simd_adler32::Adler32::new();
            simd.write(&data[..len]);
            assert_eq!(simd.finish(), (b << 16) | a, "length {len}");
        }
    }

    #[test]
    fn libgit2_reads_what_we_write() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let objects = repo.path().join("objects");
        for size in [0usize, 1, 65_534, 65_535, 65_536, 300_000] {
            let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let id = write_loose_blob(&objects, &content).unwrap();
            assert_eq!(
                id,
                Oid::hash_object(git2::ObjectType::Blob, &content).unwrap()
            );
            let blob = repo.find_blob(id).unwrap();
            assert_eq!(blob.content(), &content[..], "size {size}");
            let read = read_stored(&objects, id).expect("stored blocks are read back");
            assert_eq!(&read.to_vec()[..], &content[..], "size {size}");
        }
    }

    #[test]
    fn the_comparison_made_while_copying_is_the_diffs_own() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let objects = repo.path().join("objects");
        let step = STEP_BLOCKS * BLOCK;
        // Periodic text (heads and tails overlap when a period is added)
        // and bytes that never repeat nearby.
        let periodic: Vec<u8> = (0..3 * step).map(|i| b"walked, wrote.\n"[i % 15]).collect();
        let mixed: Vec<u8> = (0..3 * step as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for old in [periodic, mixed] {
            let edit = |at: usize, cut: usize, put: &[u8]| {
                let mut v = old.clone();
                v.splice(at..at + cut, put.iter().copied());
                v
            };
            let len = old.len();
            let cases = [
                edit(100, 0, b"## Morning\nSwifts back.\n"),
                edit(step - 10, 0, b"across a step\n"),
                edit(len, 0, b"appended at the end\n"),
                edit(len / 2, 5_000, b""),
                edit(len - 1, 1, b"?"),
                edit(0, 1, b""),
                edit(0, 0, b"walked, wrote.\n"),
                old[..len / 3].to_vec(),
                old.clone(),
                Vec::new(),
            ];
            let old_id = write_loose_blob(&objects, &old).unwrap();
            let old_pieces = read_stored(&objects, old_id).unwrap();
            for (i, new) in cases.iter().enumerate() {
                let staged = store(&objects, &new[..], new.len(), false, Some(old_id))
                    .ok()
                    .flatten()
                    .expect("stored");
                let new_pieces = Pieces::from(new.clone());
                let want = Compared {
                    old_id,
                    prefix: old_pieces.common_prefix(&new_pieces),
                    suffix: old_pieces.common_suffix(&new_pieces, usize::MAX),
                };
                assert_eq!(staged.compared, Some(want), "case {i}");
            }
        }
        // An old version libgit2 wrote (compressed) is not compared.
        let compressed = repo.blob(b"a small compressed blob\n").unwrap();
        let staged = store(&objects, &b"new"[..], 3, false, Some(compressed))
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(staged.compared, None);
    }

    #[test]
    fn the_bytes_handed_to_the_diff_are_the_objects_own() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let objects = repo.path().join("objects");
        // Sizes around the step and block boundaries, with the header's
        // bytes shifting every run.
        for size in [
            1usize,
            65_529,
            65_535,
            16 * 65_535 - 11,
            16 * 65_535 + 7,
            3_000_001,
        ] {
            let content: Vec<u8> = (0..size).map(|i| (i * 13 % 251) as u8).collect();
            let Staged {
                id,
                content: mapped,
                ..
            } = store(&objects, &content[..], size, false, None)
                .ok()
                .flatten()
                .expect("stored");
            let mapped = mapped.expect("the new object is mapped, not read again");
            assert_eq!(mapped.to_vec(), content, "size {size}");
            assert_eq!(repo.find_blob(id).unwrap().content(), &content[..]);
            // The same version again: the existing object is mapped.
            let Staged {
                id: again,
                content: mapped,
                ..
            } = store(&objects, &content[..], size, false, None)
                .ok()
                .flatten()
                .expect("stored");
            assert_eq!(again, id);
            assert_eq!(mapped.expect("mapped").to_vec(), content);
        }
    }
}
