//! Writing objects while git prunes their directories.
//!
//! `git prune-packed` (run by `git repack -d`, by `git gc`, and so by our
//! background compaction) calls `rmdir` on every `objects/xx` directory it
//! passes, which removes the empty ones. A writer that has just created
//! `xx/` for a new object, and not yet moved the object into it, then fails
//! with "No such file or directory". git's own writers create the directory
//! again and retry; libgit2's do not, so every object write on the commit
//! and push paths goes through here. Objects are named by their content:
//! writing one twice is harmless.

use std::io;
use std::path::Path;

/// How many times a write is tried. Each failure needs a prune to pass the
/// directory in a window of microseconds, so a second one is already rare;
/// a test prune every 0.2 ms took up to 16 tries without a pause
/// between them (see `back_off`).
const ATTEMPTS: usize = 16;

/// Create `dir` and run `place` (which renames or links a file into it);
/// again, after creating `dir` anew, while `place` fails because `dir` has
/// vanished. Any other failure is returned as is (a missing source, say).
pub(crate) fn place_in(dir: &Path, mut place: impl FnMut() -> io::Result<()>) -> io::Result<()> {
    let mut attempt = 1;
    loop {
        std::fs::create_dir_all(dir)?;
        match place() {
            Err(e)
                if e.kind() == io::ErrorKind::NotFound && attempt < ATTEMPTS && !dir.is_dir() =>
            {
                back_off(&mut attempt);
            }
            done => return done,
        }
    }
}

/// Run a libgit2 call that writes objects, again while it fails with an
/// operating-system error (how libgit2 reports the vanished directory:
/// "failed to rename lockfile to 'objects/xx/…'") or cannot find an object
/// (how `Rebase::commit`, which writes through `git_commit_create` — see
/// [`write_commit`] — reports the commit that write lost). Other failures
/// of these kinds (a full disk) fail the same way each time and are
/// returned after the last try.
pub(crate) fn libgit2_write<T>(
    mut write: impl FnMut() -> Result<T, git2::Error>,
) -> Result<T, git2::Error> {
    let mut attempt = 1;
    loop {
        match write() {
            Err(e) if vanished(&e) && attempt < ATTEMPTS => back_off(&mut attempt),
            done => return done,
        }
    }
}

/// Wait a little longer each time before trying again, so that a retry
/// does not fall into the same prune pass (0.1 ms, then 0.2 ms, …; 12 ms in
/// all at worst).
fn back_off(attempt: &mut usize) {
    std::thread::sleep(std::time::Duration::from_micros(100 * *attempt as u64));
    *attempt += 1;
}

/// Whether a libgit2 failure may be a prune's doing (see [`libgit2_write`]).
pub(crate) fn vanished(e: &git2::Error) -> bool {
    e.class() == git2::ErrorClass::Os
        || (e.class() == git2::ErrorClass::Odb && e.code() == git2::ErrorCode::NotFound)
}

/// Write a commit object and return its id.
///
/// Not `Repository::commit`: libgit2's `git_commit_create` (1.9.7) ignores
/// a failed object write and returns the id of a commit that was never
/// stored (seen here with a prune racing the write). Its buffer, written
/// through the object database, reports the failure, and is retried.
pub(crate) fn write_commit(
    git: &git2::Repository,
    author: &git2::Signature<'_>,
    committer: &git2::Signature<'_>,
    message: &str,
    tree: &git2::Tree<'_>,
    parents: &[&git2::Commit<'_>],
) -> Result<git2::Oid, git2::Error> {
    let buf = git.commit_create_buffer(author, committer, message, tree, parents)?;
    let odb = git.odb()?;
    libgit2_write(|| odb.write(git2::ObjectType::Commit, &buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_removed_before_the_rename_is_created_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ab");
        let src = tmp.path().join("tmp_obj");
        std::fs::write(&src, b"x").unwrap();
        let mut tries = 0;
        place_in(&dir, || {
            tries += 1;
            if tries < 3 {
                // What prune-packed does between our mkdir and rename.
                std::fs::remove_dir(&dir).unwrap();
            }
            std::fs::rename(&src, dir.join("cdef"))
        })
        .unwrap();
        assert_eq!(tries, 3);
        assert_eq!(std::fs::read(dir.join("cdef")).unwrap(), b"x");
    }

    #[test]
    fn a_missing_source_is_not_retried() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ab");
        let mut tries = 0;
        let e = place_in(&dir, || {
            tries += 1;
            std::fs::rename(tmp.path().join("gone"), dir.join("cdef"))
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(tries, 1);
    }

    #[test]
    fn libgit2_writes_are_retried_only_when_an_object_may_have_vanished() {
        let mut tries = 0;
        let r: Result<(), _> = libgit2_write(|| {
            tries += 1;
            Err(git2::Error::new(
                git2::ErrorCode::GenericError,
                git2::ErrorClass::Os,
                "failed to rename lockfile",
            ))
        });
        assert!(r.is_err());
        assert_eq!(tries, ATTEMPTS);
        let mut tries = 0;
        let r: Result<(), _> = libgit2_write(|| {
            tries += 1;
            if tries < 3 {
                Err(git2::Error::new(
                    git2::ErrorCode::NotFound,
                    git2::ErrorClass::Odb,
                    "object not found",
                ))
            } else {
                Ok(())
            }
        });
        assert!(r.is_ok());
        assert_eq!(tries, 3);
        let mut tries = 0;
        let r: Result<(), _> = libgit2_write(|| {
            tries += 1;
            Err(git2::Error::from_str("bad tree"))
        });
        assert!(r.is_err());
        assert_eq!(tries, 1);
    }
}
