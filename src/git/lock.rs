//! git's own `index.lock`, taken and released the way git takes it.
//!
//! git (and libgit2) make every index update a read-modify-write under
//! `index.lock`: create it with `O_EXCL` (whoever creates it owns the
//! index), write the new index, rename it over `index`. libgit2's
//! `Index::write` takes the lock only for the write, after an unlocked read,
//! so two writers can each read the same index and the second write loses
//! the first one's staging. [`IndexLock`] holds the lock across the read
//! *and* the write, so a concurrent `git add`, `git commit` or ai-commit run
//! either waits for us or we wait for it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use git2::{Index, Repository};

use super::Repo;
use crate::error::{Error, Result};

/// How long to wait for another process's `index.lock`. ai-commit's own
/// critical sections last milliseconds, so a second run waits for the first
/// one; a `git commit` waiting in an editor (or in the prepare-commit-msg
/// hook's model call) holds it far longer, and is reported rather than
/// waited for.
pub const INDEX_LOCK_WAIT: Duration = Duration::from_secs(3);

/// The held `index.lock` of one work tree. Dropping it releases the lock
/// (deletes the file); a new index is renamed into place before that.
pub struct IndexLock {
    lock: PathBuf,
    index: PathBuf,
    /// A handle of our own that owns the in-memory index: libgit2 needs an
    /// index bound to a repository to stage files (filters, ignores), and
    /// binding it to the caller's handle would replace that handle's index.
    /// Opened on first use ([`read_index`](Self::read_index),
    /// [`repository`](Self::repository)): a commit that only checks the
    /// index needs none.
    git: Option<Repository>,
    workdir: PathBuf,
    /// The temporary copy of the index being edited, if any.
    tmp: Option<PathBuf>,
}

impl IndexLock {
    /// Take `index.lock`, waiting up to `wait` for whoever holds it.
    pub fn acquire(repo: &Repo, wait: Duration) -> Result<IndexLock> {
        let dir = repo.git.path();
        let lock = dir.join("index.lock");
        let started = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if started.elapsed() >= wait {
                        return Err(Error::IndexLocked { path: lock });
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
                Err(e) => return Err(Error::io(format!("cannot create {}", lock.display()), e)),
            }
        }
        // From here on the guard's Drop removes the lock on every error path.
        Ok(IndexLock {
            index: dir.join("index"),
            git: None,
            workdir: repo.workdir.clone(),
            lock,
            tmp: None,
        })
    }

    /// The index as it is on disk now (the lock guarantees nobody else
    /// changes it until we release), bound to a repository so files can be
    /// staged into it.
    ///
    /// Called again, it starts over from the index on disk (the earlier
    /// copy is dropped: nothing but [`write_index`](Self::write_index)
    /// reaches `index`).
    pub fn read_index(&mut self) -> Result<Index> {
        if let Some(old) = self.tmp.take() {
            let _ = std::fs::remove_file(old);
        }
        self.tmp = Some(tmp_for(&self.index));
        let tmp = self.tmp_path();
        // Work on a second name: `Index::write` writes `<path>.lock` then
        // renames it over `<path>`, and `index.lock` is ours already. A hard
        // link is that name without copying the file (or creating one, which
        // is the slow part on some disks), and it keeps the index's mtime,
        // which git's racy-clean check compares entries with.
        match std::fs::hard_link(&self.index, &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // A file system without hard links: copy, keeping the mtime.
            Err(_) => copy_keeping_mtime(&self.index, &tmp).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::io(format!("cannot read {}", self.index.display()), e)
            })?,
        }
        let opened = Index::open(&tmp);
        let mut index = opened.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::git("cannot read the index", e)
        })?;
        let bound = self.repository().and_then(|git| {
            git.set_index(&mut index)
                .map_err(|e| Error::git("cannot read the index", e))
        });
        bound.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(index)
    }

    /// Our own repository handle, the one [`read_index`](Self::read_index)
    /// binds the index copy to: what libgit2 does through it after that (a
    /// checkout) reads, updates and writes that copy, never `index` nor the
    /// caller's handle's index. Call `read_index` first: before it, the
    /// handle would load `index` itself (and fail to write it, as
    /// `index.lock` is ours). Opened on first use.
    pub fn repository(&mut self) -> Result<&Repository> {
        let git = match self.git.take() {
            Some(git) => git,
            None => Repository::open(&self.workdir)
                .map_err(|e| Error::git("cannot open the repository", e))?,
        };
        Ok(self.git.insert(git))
    }

    /// The repository's index file (what [`write_index`](Self::write_index)
    /// replaces).
    pub fn index_path(&self) -> &Path {
        &self.index
    }

    /// Write `index` (read through [`read_index`](Self::read_index)) as the
    /// repository's index: written in full to a temporary file, then renamed
    /// over `index` while we still hold `index.lock`, so readers see the old
    /// or the new index, never half of one.
    pub fn write_index(&self, index: &mut Index) -> Result<()> {
        let tmp = self.tmp_path();
        let written = index
            .write()
            .map_err(|e| Error::git("cannot write the index", e))
            .and_then(|()| {
                std::fs::rename(&tmp, &self.index)
                    .map_err(|e| Error::io(format!("cannot replace {}", self.index.display()), e))
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    fn tmp_path(&self) -> PathBuf {
        self.tmp.clone().unwrap_or_else(|| tmp_for(&self.index))
    }
}

/// Copy `from` to `to` with `from`'s mtime (a fresh mtime on the copy
/// would make a file changed in the same second as the last index write
/// look clean to git).
fn copy_keeping_mtime(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    let mtime = std::fs::metadata(from)?.modified()?;
    OpenOptions::new().write(true).open(to)?.set_modified(mtime)
}

/// A temporary index name unique to this process and call (the Neovim module
/// runs several repositories' runs in one process).
fn tmp_for(index: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    index.with_file_name(format!("index.ai-commit-{}-{n}", std::process::id()))
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_file(tmp);
        }
        let _ = std::fs::remove_file(&self.lock);
    }
}
