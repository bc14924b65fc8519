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
//! and the file's stat data into the index entry, as `git add` does.
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
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use git2::{Index, IndexEntry, IndexTime, Oid, Repository};
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};

/// Files smaller than this go through libgit2: deflating them costs little,
/// and their loose objects stay small.
pub const FAST_MIN_BYTES: u64 = 256 * 1024;

/// Stage the regular file `path` (work-tree relative `rel`) into `index`
/// with a stored-deflate loose object. `Ok(false)`: the fast path does not
/// apply (see the module docs) and nothing was changed; the caller stages
/// the ordinary way.
pub fn try_stage(git: &Repository, index: &mut Index, path: &Path, rel: &str) -> Result<bool> {
    // stat before reading, as git does: if the file changes afterwards, the
    // index's stat data is older than the file and git re-hashes it.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(false);
    };
    if !meta.is_file() || meta.len() < FAST_MIN_BYTES || !plain_attrs(git, rel) {
        return Ok(false);
    }
    if std::env::var_os("GIT_OBJECT_DIRECTORY").is_some() {
        return Ok(false);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if bytes.len() as u64 != meta.len() || bytes.contains(&b'\r') {
        return Ok(false);
    }
    let objects = git.commondir().join("objects");
    let id = write_loose_blob(&objects, &bytes)?;
    let mode = file_mode(git, index, rel, &meta);
    let entry = entry_for(rel, id, mode, &meta);
    index
        .add(&entry)
        .map_err(|e| Error::git(format!("cannot stage {}", path.display()), e))?;
    Ok(true)
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
/// and return its id. Hashing runs on a second thread while this one writes
/// the temporary file; the file is renamed into place once the id is known,
/// so a reader never sees half an object.
pub fn write_loose_blob(objects: &Path, content: &[u8]) -> Result<Oid> {
    let header = format!("blob {}\0", content.len());
    let tmp = tmp_name(objects);
    let (hashed, written) = std::thread::scope(|s| {
        let hasher = s.spawn(|| {
            let mut h = Sha1::new();
            h.update(header.as_bytes());
            h.update(content);
            h.finalize()
        });
        let written = write_stored(&tmp, header.as_bytes(), content);
        (hasher.join(), written)
    });
    let cleanup = |e: Error| {
        let _ = std::fs::remove_file(&tmp);
        e
    };
    written.map_err(cleanup)?;
    let digest = hashed.map_err(|_| {
        cleanup(Error::io(
            "cannot hash the staged file",
            std::io::Error::other("hashing thread panicked"),
        ))
    })?;
    let id = Oid::from_bytes(&digest).map_err(|e| cleanup(Error::git("bad object id", e)))?;
    let hex = id.to_string();
    let dir = objects.join(&hex[..2]);
    let dst = dir.join(&hex[2..]);
    if dst.exists() {
        // Already stored (the same version staged before): keep that one.
        let _ = std::fs::remove_file(&tmp);
        return Ok(id);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| cleanup(Error::io(format!("cannot create {}", dir.display()), e)))?;
    std::fs::rename(&tmp, &dst)
        .map_err(|e| cleanup(Error::io(format!("cannot write {}", dst.display()), e)))?;
    Ok(id)
}

/// A name git's own `prune` recognises and cleans up if we are killed
/// between writing and renaming.
fn tmp_name(objects: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    objects.join(format!("tmp_obj_ai-commit-{}-{n}", std::process::id()))
}

/// A zlib stream of stored (uncompressed) deflate blocks of `header` then
/// `content`, written to `path` with the mode git gives loose objects.
fn write_stored(path: &Path, header: &[u8], content: &[u8]) -> Result<()> {
    const BLOCK: usize = 65_535;
    let total = header.len() + content.len();
    let blocks = total.div_ceil(BLOCK).max(1);
    let mut out = Vec::with_capacity(2 + total + blocks * 5 + 4);
    // CMF/FLG: deflate, 32 KiB window, "fastest" level hint; 0x7801 % 31 == 0.
    out.extend_from_slice(&[0x78, 0x01]);
    // Blocks may span the header/content boundary; the header is never empty,
    // so there is always at least one block.
    let mut pos = 0;
    while pos < total {
        let len = BLOCK.min(total - pos);
        out.push(u8::from(pos + len == total));
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&(!(len as u16)).to_le_bytes());
        copy_range(&mut out, header, content, pos, len);
        pos += len;
    }
    // zlib's trailer: Adler-32 of the uncompressed stream (SIMD: a byte-wise
    // loop over 10 MB costs more than the copy and the write together).
    let mut adler = simd_adler32::Adler32::new();
    adler.write(header);
    adler.write(content);
    out.extend_from_slice(&adler.finish().to_be_bytes());
    let mut f =
        open_new(path).map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    f.write_all(&out)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn copy_range(out: &mut Vec<u8>, header: &[u8], content: &[u8], pos: usize, len: usize) {
    let end = pos + len;
    if pos < header.len() {
        out.extend_from_slice(&header[pos..end.min(header.len())]);
    }
    if end > header.len() {
        let from = pos.max(header.len()) - header.len();
        out.extend_from_slice(&content[from..end - header.len()]);
    }
}

fn open_new(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
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
        }
    }
}
