//! Compaction without git: one pack written by libgit2's pack builder, then
//! the loose objects (and old packs) that it provably holds are removed.
//!
//! What goes in the pack (like `git repack -a -d -k`, except that
//! unreachable *loose* objects stay loose):
//! - every object reachable from a ref, HEAD (and linked work trees'
//!   HEADs), their reflogs, and the blobs of the index(es);
//! - every object of the existing packs (reachable or not: compaction never
//!   decides what is garbage), so each old pack is wholly contained in the
//!   new one and can go.
//!
//! Order, so that a `kill -9` anywhere loses nothing:
//! 1. the pack builder writes the pack under a temporary name; its indexer
//!    checks every object, writes and renames `pack-<hash>.idx`, then renames
//!    the `.pack` into place (both fsynced, `core.fsyncObjectFiles`);
//! 2. we fsync both files and the pack directory again (idempotent, and
//!    independent of libgit2's internals), re-read the `.idx` (its own
//!    SHA-1), and check that the `.pack` on disk is complete (its SHA-1
//!    trailer matches its content and the index's copy, and its object
//!    count the index's);
//! 3. only then a loose object is unlinked, and only if its id is in that
//!    index; an old pack is unlinked only if every id of its index is in it.
//!
//! Anything written meanwhile (a commit during the job) is not in the new
//! index and so is never removed. Readers that had an old pack or loose file
//! open keep reading it; git and libgit2 re-scan the pack directory when an
//! object moved.
//!
//! Memory: libgit2 keeps a delta window of up to 11 objects per thread, each
//! with a delta index about as big as the object; `pack.windowMemory` bounds
//! it (it always keeps two), one thread is used (two were no faster on a
//! journal's history, and each has its own window), and objects above
//! [`BIG_OBJECT`] are stored without deltas. These settings are given to
//! this repository handle only (an application-level config snapshot), never
//! written to the repository's config.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{ConfigLevel, ObjectType, Oid, Repository, RepositoryOpenFlags};
use sha1::{Digest, Sha1};

/// `pack.windowMemory`: the delta window's bytes per thread. Measured on 20
/// versions of a 10 MB journal: peak RSS 342 MB unbounded, 101 MB at 64 MiB,
/// 76 MB at 32 MiB (each version is then tried against the next one only,
/// which is the best base anyway), the same pack size.
pub const WINDOW_MEMORY: u64 = 32 << 20;
/// Objects above this are not deltified (`pack.bigFileThreshold`; libgit2
/// 1.9 reads this limit from `pack.deltaCacheSize`, so both are set).
pub const BIG_OBJECT: u64 = 64 << 20;
/// Leftovers of a killed run (libgit2's temporary pack, an index whose pack
/// never arrived) are removed once this old.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// What one run did.
#[derive(Debug, Default)]
pub struct Packed {
    /// False: nothing to pack (no loose objects and at most one pack, or
    /// nothing reachable).
    pub wrote: bool,
    pub objects: usize,
    pub loose_removed: usize,
    /// Loose objects not in the pack: unreachable, or written meanwhile.
    pub loose_kept: usize,
    pub packs_removed: usize,
}

type Res<T> = std::result::Result<T, String>;

fn git(what: &str) -> impl Fn(git2::Error) -> String + '_ {
    move |e| format!("{what}: {}", e.message())
}

fn io(what: String) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// Pack the repository at `git_dir` with libgit2 and remove what the new
/// pack provably holds.
pub fn compact(git_dir: &Path) -> Res<Packed> {
    let objects = git_dir.join("objects");
    let pack_dir = objects.join("pack");
    tidy(&pack_dir);
    let old = old_packs(&pack_dir);
    if loose(&objects).is_empty() && old.len() <= 1 {
        return Ok(Packed::default());
    }
    let repo = Repository::open_ext(
        git_dir,
        RepositoryOpenFlags::NO_SEARCH | RepositoryOpenFlags::BARE,
        std::iter::empty::<&OsStr>(),
    )
    .map_err(git("cannot open the repository"))?;
    bound_and_fsync(&repo)?;
    let mut pb = repo
        .packbuilder()
        .map_err(git("cannot start libgit2's pack builder"))?;
    pb.set_threads(1);
    insert_reachable(&repo, git_dir, &mut pb)?;
    // Every object of the old packs, so that each is wholly in the new one.
    let mut removable = Vec::new();
    for p in old {
        let Ok(ids) = read_index(&p.idx).map(|i| i.ids) else {
            continue; // unreadable: neither copied nor removed
        };
        for id in &ids {
            pb.insert_object(*id, None)
                .map_err(git(&format!("cannot read object {id}")))?;
        }
        removable.push((p, ids));
    }
    if pb.object_count() == 0 {
        // Only unreachable loose objects: nothing for a pack.
        return Ok(Packed::default());
    }
    std::fs::create_dir_all(&pack_dir)
        .map_err(io(format!("cannot create {}", pack_dir.display())))?;
    pb.write(&pack_dir, 0)
        .map_err(git("libgit2 could not write the pack"))?;
    let name = pb
        .name()
        .ok()
        .flatten()
        .ok_or("libgit2 wrote no pack")?
        .to_string();
    let objects_in_pack = pb.object_count();
    drop(pb);
    drop(repo);

    let idx = pack_dir.join(format!("pack-{name}.idx"));
    let pack = pack_dir.join(format!("pack-{name}.pack"));
    for f in [&pack, &idx] {
        fsync(f).map_err(io(format!("cannot fsync {}", f.display())))?;
    }
    // The directory too, so the new names are on disk (Unix: a directory
    // can be opened and fsynced).
    #[cfg(unix)]
    fsync(&pack_dir).map_err(io(format!("cannot fsync {}", pack_dir.display())))?;
    let packed = verified(&pack, &idx)?;

    let mut out = Packed {
        wrote: true,
        objects: objects_in_pack,
        ..Packed::default()
    };
    for (id, path) in loose(&objects) {
        if packed.contains(id.as_bytes()) {
            match std::fs::remove_file(&path) {
                Ok(()) => out.loose_removed += 1,
                // Removed meanwhile (another compaction): fine.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
            }
        } else {
            out.loose_kept += 1;
        }
    }
    let mut midx_removed = false;
    for (p, ids) in removable {
        if p.idx == idx || !ids.iter().all(|id| packed.contains(id.as_bytes())) {
            continue;
        }
        if !midx_removed {
            // A multi-pack index names the packs it covers; drop it (an
            // acceleration only) before any of them goes.
            remove_midx(&pack_dir)?;
            midx_removed = true;
        }
        p.remove()?;
        out.packs_removed += 1;
    }
    Ok(out)
}

/// The delta window's memory, big objects, and fsync of what the indexer
/// writes: given to this handle only, through an application-level config
/// file read into a snapshot (the file is removed at once).
fn bound_and_fsync(repo: &Repository) -> Res<()> {
    let text = format!(
        "[pack]\n\twindowMemory = {WINDOW_MEMORY}\n\tdeltaCacheSize = {BIG_OBJECT}\n\
         \tbigFileThreshold = {BIG_OBJECT}\n[core]\n\tfsyncObjectFiles = true\n"
    );
    let tmp = std::env::temp_dir().join(format!(
        "ai-commit-pack-{}-{}.config",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::write(&tmp, text).map_err(io(format!("cannot write {}", tmp.display())))?;
    let result = (|| {
        let mut cfg = repo.config()?;
        cfg.add_file(&tmp, ConfigLevel::App, true)?;
        let snapshot = cfg.snapshot()?;
        repo.set_config(&snapshot)
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map_err(git("cannot set the pack builder's limits"))
}

/// Objects reachable from refs, HEADs, reflogs and indexes.
fn insert_reachable(repo: &Repository, git_dir: &Path, pb: &mut git2::PackBuilder<'_>) -> Res<()> {
    let odb = repo.odb().map_err(git("cannot open the objects"))?;
    let mut roots: Vec<Oid> = Vec::new();
    let mut reflogs: Vec<String> = vec!["HEAD".into()];
    if let Ok(head) = repo.head() {
        roots.extend(head.target());
    }
    for r in repo
        .references()
        .map_err(git("cannot list the refs"))?
        .flatten()
    {
        if let Some(id) = r.target() {
            roots.push(id);
        }
        if let Ok(n) = r.name() {
            reflogs.push(n.to_string());
        }
    }
    for name in &reflogs {
        if let Ok(log) = repo.reflog(name) {
            for e in log.iter() {
                roots.extend([e.id_old(), e.id_new()]);
            }
        }
    }
    let mut indexes = Vec::new();
    if git_dir.join("index").is_file() {
        let i = git2::Index::open(&git_dir.join("index")).map_err(git("cannot read the index"))?;
        indexes.push(i);
    }
    // Linked work trees: their HEAD, its reflog and their index.
    if let Ok(names) = repo.worktrees() {
        for name in names.iter().flatten().flatten() {
            let Ok(wt) = repo.find_worktree(name) else {
                continue;
            };
            let Ok(r) = Repository::open_from_worktree(&wt) else {
                continue;
            };
            if let Ok(head) = r.head() {
                roots.extend(head.target());
            }
            if let Ok(log) = r.reflog("HEAD") {
                for e in log.iter() {
                    roots.extend([e.id_old(), e.id_new()]);
                }
            }
            if let Ok(i) = r.index() {
                indexes.push(i);
            }
        }
    }
    roots.retain(|id| !id.is_zero() && odb.exists(*id));
    roots.sort();
    roots.dedup();

    let mut walk = repo.revwalk().map_err(git("cannot walk the history"))?;
    for id in roots {
        let kind = odb
            .read_header(id)
            .map(|(_, k)| k)
            .map_err(git(&format!("cannot read object {id}")))?;
        match kind {
            ObjectType::Commit => walk
                .push(id)
                .map_err(git(&format!("cannot walk from {id}")))?,
            ObjectType::Tag => {
                pb.insert_recursive(id, None)
                    .map_err(git(&format!("cannot read tag {id}")))?;
                // The history behind an annotated tag.
                if let Ok(c) = repo.find_object(id, None).and_then(|o| o.peel_to_commit()) {
                    walk.push(c.id())
                        .map_err(git(&format!("cannot walk from {id}")))?;
                }
            }
            _ => pb
                .insert_recursive(id, None)
                .map_err(git(&format!("cannot read object {id}")))?,
        }
    }
    pb.insert_walk(&mut walk)
        .map_err(git("cannot collect the history's objects"))?;
    for index in &indexes {
        for e in index.iter() {
            // Gitlinks (submodules) are commits of another repository.
            if e.mode == 0o160000 || !odb.exists(e.id) {
                continue;
            }
            let path = String::from_utf8_lossy(&e.path);
            let base = path.rsplit('/').next().map(str::to_string);
            pb.insert_object(e.id, base.as_deref())
                .map_err(git(&format!("cannot read staged object {}", e.id)))?;
        }
    }
    Ok(())
}

/// Loose objects: `objects/xx/<38 hex>` (temporary files are skipped).
fn loose(objects: &Path) -> Vec<(Oid, PathBuf)> {
    let mut out = Vec::new();
    for i in 0..=255u8 {
        let prefix = format!("{i:02x}");
        let Ok(dir) = std::fs::read_dir(objects.join(&prefix)) else {
            continue;
        };
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str() else { continue };
            if rest.len() != 38 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            if let Ok(id) = Oid::from_str(&format!("{prefix}{rest}")) {
                out.push((id, e.path()));
            }
        }
    }
    out
}

/// A pack present before the run.
struct OldPack {
    pack: PathBuf,
    idx: PathBuf,
}

impl OldPack {
    /// The pack first (an index alone names nothing git reads), its
    /// companions, the index last.
    fn remove(&self) -> Res<()> {
        let mut files = vec![self.pack.clone()];
        for ext in ["rev", "bitmap", "mtimes"] {
            files.push(self.pack.with_extension(ext));
        }
        files.push(self.idx.clone());
        for f in files {
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", f.display())),
            }
        }
        Ok(())
    }
}

/// The packs with both files, except kept (`.keep`) and promisor packs.
fn old_packs(pack_dir: &Path) -> Vec<OldPack> {
    let Ok(dir) = std::fs::read_dir(pack_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("pack-") && name.ends_with(".idx")) {
            continue;
        }
        let pack = path.with_extension("pack");
        if pack.is_file()
            && !path.with_extension("keep").exists()
            && !path.with_extension("promisor").exists()
        {
            out.push(OldPack { pack, idx: path });
        }
    }
    out
}

fn remove_midx(pack_dir: &Path) -> Res<()> {
    let Ok(dir) = std::fs::read_dir(pack_dir) else {
        return Ok(());
    };
    for e in dir.flatten() {
        if e.file_name()
            .to_string_lossy()
            .starts_with("multi-pack-index")
        {
            std::fs::remove_file(e.path())
                .map_err(io(format!("cannot remove {}", e.path().display())))?;
        }
    }
    Ok(())
}

/// Leftovers of a killed run, once they are old: libgit2's temporary packs
/// and indexes (`pack_git2_*`), and an index whose pack never arrived
/// (libgit2 renames the index into place before the pack). Neither holds
/// the only copy of anything: nothing is removed before a pack is complete.
fn tidy(pack_dir: &Path) {
    let Ok(dir) = std::fs::read_dir(pack_dir) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = e.path();
        let leftover = name.starts_with("pack_git2_")
            || (name.starts_with("pack-")
                && name.ends_with(".idx")
                && !path.with_extension("pack").exists());
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if leftover && old {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn fsync(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// A pack index's ids and the checksum of the pack it describes.
pub struct PackIndex {
    pub ids: Vec<Oid>,
    pub pack_checksum: [u8; 20],
}

/// Read a `.idx` (version 1 or 2, SHA-1), checking its own checksum and
/// shape.
pub fn read_index(path: &Path) -> Res<PackIndex> {
    let data = std::fs::read(path).map_err(io(format!("cannot read {}", path.display())))?;
    let bad = |why: &str| format!("{}: {why}", path.display());
    if data.len() < 1024 + 40 {
        return Err(bad("too short"));
    }
    let (body, sum) = data.split_at(data.len() - 20);
    if Sha1::digest(body).as_slice() != sum {
        return Err(bad("checksum mismatch"));
    }
    let be32 = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let (fanout, v2) = if data[..4] == [0xff, b't', b'O', b'c'] {
        if be32(4) != 2 {
            return Err(bad("unknown version"));
        }
        (8, true)
    } else {
        (0, false)
    };
    let mut prev = 0;
    for i in 0..256 {
        let n = be32(fanout + 4 * i);
        if n < prev {
            return Err(bad("bad fan-out table"));
        }
        prev = n;
    }
    let n = prev;
    let names = fanout + 1024;
    let (stride, skip, min_len) = if v2 {
        (20, 0, names + n * 28 + 40)
    } else {
        (24, 4, names + n * 24 + 40)
    };
    if data.len() < min_len
        || (v2 && (data.len() - min_len) % 8 != 0)
        || (!v2 && data.len() != min_len)
    {
        return Err(bad("size does not match its object count"));
    }
    let ids = (0..n)
        .map(|i| {
            let at = names + i * stride + skip;
            Oid::from_bytes(&data[at..at + 20]).map_err(|e| bad(e.message()))
        })
        .collect::<Res<Vec<_>>>()?;
    let mut pack_checksum = [0u8; 20];
    pack_checksum.copy_from_slice(&data[data.len() - 40..data.len() - 20]);
    Ok(PackIndex { ids, pack_checksum })
}

/// The ids of a complete pack: its index is sound, and the pack on disk is
/// whole (header, object count, SHA-1 trailer over its content, the same
/// trailer as the index records).
fn verified(pack: &Path, idx: &Path) -> Res<HashSet<[u8; 20]>> {
    let index = read_index(idx)?;
    let bad = |why: &str| format!("{}: {why}", pack.display());
    let mut f = File::open(pack).map_err(io(format!("cannot open {}", pack.display())))?;
    let len = f
        .metadata()
        .map_err(io(format!("cannot stat {}", pack.display())))?
        .len();
    if len < 12 + 20 {
        return Err(bad("too short"));
    }
    let mut header = [0u8; 12];
    f.read_exact(&mut header)
        .map_err(io(format!("cannot read {}", pack.display())))?;
    let count = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    if &header[..4] != b"PACK" || !matches!(header[7], 2 | 3) || header[4..7] != [0, 0, 0] {
        return Err(bad("not a pack"));
    }
    if count != index.ids.len() {
        return Err(bad("object count differs from its index"));
    }
    f.seek(SeekFrom::Start(0))
        .map_err(io(format!("cannot read {}", pack.display())))?;
    let mut h = Sha1::new();
    let mut left = len - 20;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        f.read_exact(&mut buf[..want])
            .map_err(io(format!("cannot read {}", pack.display())))?;
        h.update(&buf[..want]);
        left -= want as u64;
    }
    let mut trailer = [0u8; 20];
    f.read_exact(&mut trailer)
        .map_err(io(format!("cannot read {}", pack.display())))?;
    if h.finalize().as_slice() != trailer {
        return Err(bad("incomplete (checksum mismatch)"));
    }
    if trailer != index.pack_checksum {
        return Err(bad("does not match its index"));
    }
    let mut out = HashSet::with_capacity(index.ids.len());
    for id in index.ids {
        out.insert(id.as_bytes().try_into().unwrap());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack of three blobs written by libgit2 into `dir/objects/pack`.
    fn written(dir: &Path) -> (PathBuf, PathBuf, Vec<Oid>) {
        let repo = Repository::init_bare(dir).unwrap();
        let ids: Vec<Oid> = ["one\n", "two\n", "three\n"]
            .iter()
            .map(|t| repo.blob(t.as_bytes()).unwrap())
            .collect();
        let mut pb = repo.packbuilder().unwrap();
        for id in &ids {
            pb.insert_object(*id, None).unwrap();
        }
        let pack_dir = dir.join("objects/pack");
        pb.write(&pack_dir, 0).unwrap();
        let name = pb.name().unwrap().unwrap().to_string();
        (
            pack_dir.join(format!("pack-{name}.pack")),
            pack_dir.join(format!("pack-{name}.idx")),
            ids,
        )
    }

    #[test]
    fn a_complete_pack_proves_its_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let (pack, idx, ids) = written(tmp.path());
        let set = verified(&pack, &idx).unwrap();
        assert_eq!(set.len(), 3);
        assert!(ids.iter().all(|id| set.contains(id.as_bytes())));
    }

    #[test]
    fn a_truncated_pack_a_damaged_index_or_a_missing_pack_prove_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (pack, idx, _) = written(tmp.path());
        let whole = std::fs::read(&pack).unwrap();
        let index = std::fs::read(&idx).unwrap();
        let write = |p: &Path, b: &[u8]| {
            let _ = std::fs::remove_file(p);
            std::fs::write(p, b).unwrap();
        };
        // The pack cut short (as a write killed midway would leave it).
        write(&pack, &whole[..whole.len() - 1]);
        assert!(verified(&pack, &idx).is_err());
        write(&pack, &whole[..whole.len() / 2]);
        assert!(verified(&pack, &idx).is_err());
        // A byte of the pack's content changed.
        let mut bad = whole.clone();
        bad[14] ^= 1;
        write(&pack, &bad);
        assert!(verified(&pack, &idx).is_err());
        write(&pack, &whole);
        assert!(verified(&pack, &idx).is_ok());
        // The index damaged or cut short.
        let mut bad = index.clone();
        bad[8 + 1024 + 3] ^= 1;
        write(&idx, &bad);
        assert!(verified(&pack, &idx).is_err());
        write(&idx, &index[..index.len() - 20]);
        assert!(verified(&pack, &idx).is_err());
        write(&idx, &index);
        // No pack at all.
        std::fs::remove_file(&pack).unwrap();
        assert!(verified(&pack, &idx).is_err());
    }

    #[test]
    fn an_index_of_another_pack_proves_nothing() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (pack_a, _, _) = written(a.path());
        let repo = Repository::init_bare(b.path()).unwrap();
        let id = repo.blob(b"other\n").unwrap();
        let mut pb = repo.packbuilder().unwrap();
        pb.insert_object(id, None).unwrap();
        pb.write(&b.path().join("objects/pack"), 0).unwrap();
        let name = pb.name().unwrap().unwrap().to_string();
        let idx_b = b.path().join(format!("objects/pack/pack-{name}.idx"));
        assert!(verified(&pack_a, &idx_b).is_err());
    }
}
