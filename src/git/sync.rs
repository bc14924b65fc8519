//! Sync with the remote for several machines writing to one bare repository:
//! fetch; fast-forward when behind; rebase local commits onto the remote when
//! both moved. Never forced, never a hard reset, never an overwritten local
//! change:
//!
//! - the work tree is updated with a *safe* checkout, which refuses (before
//!   writing anything) when a file it would change has local modifications;
//! - the index, the work tree and the branch are updated in one critical
//!   section under git's `index.lock` and the branch's ref lock (see
//!   [`fast_forward`]), so a sync never overwrites what a commit running at
//!   the same time staged, never checks files out while another run stages
//!   them, and never leaves the work tree updated but the branch not moved;
//! - the rebase runs in memory, so a conflict leaves no half-applied rebase:
//!   the branch simply stays where it was, every commit where it was, and the
//!   message says how to finish by hand.
//!
//! A conflict where both sides only inserted lines into a journal file (two
//! machines' new entries at the same place) is not a conflict: the replay
//! keeps both entries and goes on ([`super::merge`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::build::CheckoutBuilder;
use git2::{DiffOptions, ErrorCode, Oid, RebaseOptions, Repository, Transaction};
use serde::Serialize;

use super::lock::{IndexLock, INDEX_LOCK_WAIT};
use super::merge;
use super::remote::{local_path, push_target, PushError, PushTarget};
use super::Repo;
use crate::error::Error;

/// What a sync did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "sync", rename_all = "snake_case")]
pub enum Synced {
    UpToDate,
    /// Local commits the remote lacks (a push sends them).
    Ahead {
        commits: usize,
    },
    /// Moved the branch forward to the remote's.
    FastForwarded {
        commits: usize,
    },
    /// Replayed `ours` local commits on top of `theirs` new remote commits.
    Rebased {
        ours: usize,
        theirs: usize,
        /// Files where both sides had inserted lines at the same place and
        /// both insertions were kept ([`super::merge`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        merged: Vec<String>,
    },
    /// The remote has no such branch yet (a push creates it).
    NoRemoteBranch,
}

impl std::fmt::Display for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Synced::UpToDate => write!(f, "up to date"),
            Synced::Ahead { commits } => write!(f, "{commits} local commit(s) to push"),
            Synced::FastForwarded { commits } => {
                write!(f, "fast-forwarded {commits} commit(s) from the remote")
            }
            Synced::Rebased {
                ours,
                theirs,
                merged,
            } => {
                write!(
                    f,
                    "replayed {ours} local commit(s) on top of {theirs} from the remote"
                )?;
                if !merged.is_empty() {
                    write!(f, " (kept both sides' new lines in {})", merged.join(", "))?;
                }
                Ok(())
            }
            Synced::NoRemoteBranch => write!(f, "the remote has no such branch yet"),
        }
    }
}

/// Why a sync stopped. Nothing was changed in any of these cases but
/// [`SyncError::Unfinished`] (a failed write that could not be undone).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Remote(#[from] PushError),

    #[error("another git process holds {} (the index is locked); nothing was changed. Wait for it to finish and run `ai-commit sync` again, or delete the lock file if no git is running", .path.display())]
    IndexLocked { path: PathBuf },

    #[error("another git process holds {} (the branch is being updated); nothing was changed. Wait for it to finish and run `ai-commit sync` again, or delete the lock file if no git is running", .path.display())]
    RefLocked { path: PathBuf },

    #[error("{branch} moved while this sync ran ({detail}); nothing was changed. Run `ai-commit sync` again")]
    Moved { branch: String, detail: String },

    #[error("{error}; putting things back failed too ({undo}). Nothing is lost (every commit is in the repository), but {state}")]
    Unfinished {
        error: String,
        undo: String,
        /// Where things stand and what to do.
        state: String,
    },

    /// Reading or writing the index under the lock failed.
    #[error(transparent)]
    Index(Error),

    #[error("your commits and {theirs_ref} both changed {}; nothing was changed: your branch is still at {ours} and the remote's commits are at {theirs_ref} ({theirs}). Resolve by hand: `git rebase {theirs_ref}`, fix the files, `git add` them, `git rebase --continue`, then `ai-commit sync`", .paths.join(", "))]
    Conflict {
        paths: Vec<String>,
        ours: String,
        theirs: String,
        theirs_ref: String,
    },

    #[error("the remote's new commits change files you have modified but not committed ({}); nothing was changed. Commit them (`ai-commit -a`) and run `ai-commit sync` again", .detail)]
    LocalChanges { detail: String },

    #[error("{context}: {}", .source.message())]
    Git {
        context: String,
        #[source]
        source: git2::Error,
    },
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        match e {
            Error::IndexLocked { path } => SyncError::IndexLocked { path },
            other => SyncError::Index(other),
        }
    }
}

impl SyncError {
    /// The remote is not there (a local bare repository whose disk is not
    /// mounted): nothing to worry about, the next sync catches up. A
    /// background sync shows this as a quiet note, not an error.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SyncError::Remote(PushError::Unreachable { .. }))
    }
}

/// The last sync, as recorded in `.git/ai-commit/last-sync.json` (shown by
/// `ai-commit status`; a background sync's caller reads it the same way).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LastSync {
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub ok: bool,
    /// What it did ([`Synced`]'s text), when it worked.
    pub result: Option<String>,
    /// Why it stopped, when it did not.
    pub error: Option<String>,
    /// It stopped only because the remote was not reachable.
    #[serde(default)]
    pub unreachable: bool,
}

fn last_sync_file(repo: &Repo) -> std::path::PathBuf {
    repo.git
        .commondir()
        .join("ai-commit")
        .join("last-sync.json")
}

fn record(repo: &Repo, outcome: &Result<Synced, SyncError>) {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let last = LastSync {
        at,
        ok: outcome.is_ok(),
        result: outcome.as_ref().ok().map(|s| s.to_string()),
        error: outcome.as_ref().err().map(|e| e.to_string()),
        unreachable: outcome.as_ref().err().is_some_and(|e| e.is_unreachable()),
    };
    let path = last_sync_file(repo);
    // Best effort: status information must never fail a sync.
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = serde_json::to_string(&last) {
        // Concurrent runs each write their own file, renamed into place.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

/// The last recorded sync, if any.
pub fn last_sync(repo: &Repo) -> Option<LastSync> {
    std::fs::read_to_string(last_sync_file(repo))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

fn git_err(context: &str) -> impl Fn(git2::Error) -> SyncError + '_ {
    move |source| SyncError::Git {
        context: context.to_string(),
        source,
    }
}

/// Fetch the current branch's upstream into its tracking ref.
pub fn fetch(repo: &Repo, target: &PushTarget) -> Result<(), PushError> {
    let refspec = format!("+{}:{}", target.remote_ref, target.tracking_ref);
    match local_path(&target.url, &repo.workdir) {
        Some(path) => {
            if !path.exists() {
                return Err(PushError::Unreachable {
                    remote: target.remote.clone(),
                    url: target.url.clone(),
                    detail: format!("{} does not exist", path.display()),
                });
            }
            let mut remote = repo
                .git
                .find_remote(&target.remote)
                .map_err(|e| PushError::git(format!("cannot read remote {}", target.remote), e))?;
            // Another fetch into the same tracking ref (a sync and a run's
            // push at once) holds its lock for milliseconds: wait it out.
            let started = Instant::now();
            let fetched = loop {
                match remote.fetch(&[refspec.as_str()], None, None) {
                    Err(e) if ref_locked(&e) && started.elapsed() < INDEX_LOCK_WAIT => {
                        std::thread::sleep(Duration::from_millis(15));
                    }
                    done => break done,
                }
            };
            fetched.map_err(|e| match e.code() {
                // A missing branch on the remote is not an error for sync.
                ErrorCode::NotFound => PushError::Transport {
                    url: target.url.clone(),
                    detail: e.message().to_string(),
                },
                _ => PushError::Transport {
                    url: target.url.clone(),
                    detail: format!("fetch failed: {}", e.message()),
                },
            })
        }
        None => {
            let out = super::remote::run_git(
                &repo.workdir,
                &["fetch", "--quiet", &target.remote, &refspec],
                &target.url,
                "fetched",
            )?;
            if out.status.success() {
                Ok(())
            } else {
                Err(PushError::Transport {
                    url: target.url.clone(),
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                })
            }
        }
    }
}

/// A ref's lock file was held. libgit2 1.9's fetch reports it as a generic
/// OS error ("failed to lock file '….lock' for writing", "failed to create
/// locked file '….lock'"), not as `ErrorCode::Locked`: measured here.
fn ref_locked(e: &git2::Error) -> bool {
    e.code() == ErrorCode::Locked
        || (e.class() == git2::ErrorClass::Os && e.message().contains(".lock'"))
}

/// Fetch, then bring the branch and the remote together (see module docs).
pub fn sync(repo: &Repo) -> Result<Synced, SyncError> {
    sync_mapped(repo).map(|(s, _)| s)
}

/// Commits that a sync replayed: (the local commit, its replayed copy).
pub type Replayed = Vec<(Oid, Oid)>;

/// Times a sync starts over when the branch moved while it ran (a commit
/// made meanwhile by ai-commit or git): an attempt takes milliseconds, and
/// starting over is what the error would tell the user to do.
const MOVED_RETRIES: u64 = 3;

/// [`sync`], also saying which local commits were replaced by replayed
/// copies (so a run can report the commit that is really on the branch).
pub fn sync_mapped(repo: &Repo) -> Result<(Synced, Replayed), SyncError> {
    let mut replayed = Replayed::new();
    let mut attempt = 0;
    let synced = loop {
        replayed.clear();
        match sync_inner(repo, &mut replayed) {
            Err(SyncError::Moved { .. }) if attempt < MOVED_RETRIES => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10 * attempt));
            }
            done => break done,
        }
    };
    record(repo, &synced);
    Ok((synced?, replayed))
}

fn sync_inner(repo: &Repo, replayed: &mut Replayed) -> Result<Synced, SyncError> {
    let target = push_target(repo)?;
    fetch(repo, &target)?;
    let theirs = match repo.git.refname_to_id(&target.tracking_ref) {
        Ok(id) => id,
        Err(_) => return Ok(Synced::NoRemoteBranch),
    };
    let ours = match repo.git.refname_to_id(&target.local_ref) {
        Ok(id) => id,
        // An unborn branch takes the remote's history as it is.
        Err(_) => {
            fast_forward(repo, &target, None, theirs)?;
            let n = count(repo, theirs, None);
            return Ok(Synced::FastForwarded { commits: n });
        }
    };
    if ours == theirs {
        return Ok(Synced::UpToDate);
    }
    let (ahead, behind) = repo
        .git
        .graph_ahead_behind(ours, theirs)
        .map_err(git_err("cannot compare with the remote"))?;
    match (ahead, behind) {
        (_, 0) => Ok(Synced::Ahead { commits: ahead }),
        (0, _) => {
            fast_forward(repo, &target, Some(ours), theirs)?;
            Ok(Synced::FastForwarded { commits: behind })
        }
        _ => {
            let mut merged = Vec::new();
            let tip = replay(repo, &target, ours, theirs, replayed, &mut merged)?;
            fast_forward(repo, &target, Some(ours), tip)?;
            merged.sort();
            merged.dedup();
            Ok(Synced::Rebased {
                ours: ahead,
                theirs: behind,
                merged,
            })
        }
    }
}

fn count(repo: &Repo, tip: Oid, hide: Option<Oid>) -> usize {
    let Ok(mut walk) = repo.git.revwalk() else {
        return 0;
    };
    if walk.push(tip).is_err() {
        return 0;
    }
    if let Some(h) = hide {
        let _ = walk.hide(h);
    }
    walk.count()
}

/// Move the branch from `from` (None: unborn) to `to`, updating the index
/// and the work tree safely.
///
/// One critical section under `index.lock` (as a commit's stage and commit
/// phases, see [`super::commit`]) and under the branch's ref lock (which
/// keeps off what moves the branch without `index.lock`: a plain
/// `git commit` moves HEAD after releasing it). Under both:
///
/// 1. re-check that HEAD still names the branch and the branch is still at
///    `from`, else stop with [`SyncError::Moved`], nothing changed;
/// 2. read the index (a copy, [`IndexLock::read_index`]) and check `to`
///    out through the lock's own repository handle: libgit2's checkout
///    updates the work tree and *that handle's* index, which it writes to
///    the copy, never to `index` (a safe checkout refuses before writing
///    anything when a file it would change has local changes);
/// 3. move the branch (the ref lock's commit, with its reflog line);
/// 4. rename the new index over `index` ([`IndexLock::write_index`]): the
///    one time `index` is replaced.
///
/// A failure after step 2 started writing puts back what was done (see
/// [`undo`]), so the index, the work tree and the branch are all at `from`
/// or all at `to`. The locks are released on every path (their guards'
/// Drop).
fn fast_forward(
    repo: &Repo,
    target: &PushTarget,
    from: Option<Oid>,
    to: Oid,
) -> Result<(), SyncError> {
    let mut lock = IndexLock::acquire(repo, INDEX_LOCK_WAIT)?;
    let mut tx = lock_branch(repo, &target.local_ref)?;
    recheck(repo, target, from)?;
    let mut index = lock.read_index()?;
    match checkout(&mut lock, to) {
        Ok(()) => {}
        // Refused while planning: nothing was written.
        Err(e @ SyncError::LocalChanges { .. }) => return Err(e),
        Err(e) => return Err(undo(&mut lock, repo, target, from, to, false, e)),
    }
    let msg = format!("ai-commit sync: {} → {}", target.tracking_ref, to);
    let moved = tx
        .set_target(&target.local_ref, to, None, &msg)
        .and_then(|()| tx.commit());
    if let Err(e) = moved {
        let error = git_err("cannot move the branch")(e);
        return Err(undo(&mut lock, repo, target, from, to, false, error));
    }
    if let Err(e) = lock.write_index(&mut index) {
        return Err(undo(&mut lock, repo, target, from, to, true, e.into()));
    }
    Ok(())
}

/// Take the branch's ref lock (`refs/heads/<b>.lock`), waiting briefly for
/// whoever holds it: a ref update holds it for milliseconds.
fn lock_branch<'r>(repo: &'r Repo, refname: &str) -> Result<Transaction<'r>, SyncError> {
    let started = Instant::now();
    loop {
        let mut tx = repo
            .git
            .transaction()
            .map_err(git_err("cannot lock the branch"))?;
        match tx.lock_ref(refname) {
            Ok(()) => return Ok(tx),
            Err(e) if e.code() == ErrorCode::Locked => {
                if started.elapsed() >= INDEX_LOCK_WAIT {
                    return Err(SyncError::RefLocked {
                        path: repo.git.path().join(format!("{refname}.lock")),
                    });
                }
                std::thread::sleep(Duration::from_millis(15));
            }
            Err(e) => return Err(git_err("cannot lock the branch")(e)),
        }
    }
}

/// HEAD still names the branch, and the branch is still at `from`.
fn recheck(repo: &Repo, target: &PushTarget, from: Option<Oid>) -> Result<(), SyncError> {
    let branch = target
        .local_ref
        .trim_start_matches("refs/heads/")
        .to_string();
    let head = repo
        .git
        .find_reference("HEAD")
        .map_err(git_err("cannot read HEAD"))?;
    let names = head.symbolic_target().ok().flatten().map(String::from);
    if names.as_deref() != Some(target.local_ref.as_str()) {
        return Err(SyncError::Moved {
            branch,
            detail: format!(
                "HEAD now names {}",
                names.as_deref().unwrap_or("no branch (detached)")
            ),
        });
    }
    let now = match repo.git.refname_to_id(&target.local_ref) {
        Ok(id) => Some(id),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(git_err("cannot read your branch")(e)),
    };
    if now != from {
        let at = |o: Option<Oid>| match o {
            Some(o) => o.to_string()[..7].to_string(),
            None => "no commit".to_string(),
        };
        return Err(SyncError::Moved {
            branch,
            detail: format!(
                "another ai-commit or git committed meanwhile: it is at {}, not at {}",
                at(now),
                at(from)
            ),
        });
    }
    Ok(())
}

/// Check `to` out, safely, through the lock's repository (into the index
/// copy bound to it; see [`fast_forward`]).
fn checkout(lock: &mut IndexLock, to: Oid) -> Result<(), SyncError> {
    let git = lock.repository()?;
    // The tree must belong to the handle that checks it out (libgit2 checks).
    let commit = git
        .find_commit(to)
        .map_err(git_err("cannot read the new commit"))?;
    let mut co = CheckoutBuilder::new();
    co.safe();
    git.checkout_tree(commit.as_object(), Some(&mut co))
        .map_err(|e| match e.code() {
            ErrorCode::Conflict | ErrorCode::MergeConflict => SyncError::LocalChanges {
                detail: e.message().to_string(),
            },
            _ => git_err("cannot update the work tree")(e),
        })
}

/// Put back what a failed [`fast_forward`] did, and return the error to
/// report: `error` itself when everything is back at `from`, else
/// [`SyncError::Unfinished`]. `moved`: the branch was moved to `to` (it is
/// moved back first, with a compare-and-swap under its ref lock). `index`
/// was never replaced on these paths, so it is still `from`'s.
fn undo(
    lock: &mut IndexLock,
    repo: &Repo,
    target: &PushTarget,
    from: Option<Oid>,
    to: Oid,
    moved: bool,
    error: SyncError,
) -> SyncError {
    let short = to.to_string()[..7].to_string();
    if moved {
        if let Err(e) = move_back(repo, target, from, to) {
            return SyncError::Unfinished {
                error: error.to_string(),
                undo: e,
                state: format!(
                    "the branch moved to {short} (or on) while the index did not: check `git status`; `git reset` sets the index to the branch's commit, keeping your files"
                ),
            };
        }
    }
    match restore_work_tree(lock, from, to) {
        Ok(()) => error,
        Err(e) => SyncError::Unfinished {
            error: error.to_string(),
            undo: e.to_string(),
            state: format!(
                "some files may hold {short}'s version while the branch has not moved: run `ai-commit sync` again to finish, or see `git status`"
            ),
        },
    }
}

/// The branch back from `to` to `from`, only if it is still at `to`.
fn move_back(repo: &Repo, target: &PushTarget, from: Option<Oid>, to: Oid) -> Result<(), String> {
    let mut tx = lock_branch(repo, &target.local_ref).map_err(|e| match e {
        SyncError::RefLocked { path } => format!("another git holds {}", path.display()),
        e => e.to_string(),
    })?;
    if repo.git.refname_to_id(&target.local_ref).ok() != Some(to) {
        return Err(format!("{} moved again meanwhile", target.local_ref));
    }
    let msg = format!("ai-commit sync: undo → {}", target.local_ref);
    match from {
        Some(old) => tx.set_target(&target.local_ref, old, None, &msg),
        None => tx.remove(&target.local_ref),
    }
    .and_then(|()| tx.commit())
    .map_err(|e| format!("cannot move the branch back: {}", e.message()))
}

/// Put back `from`'s version of the files a checkout of `to` wrote, and
/// only those: a file `from` and `to` differ in that now holds `to`'s
/// version (or is missing where `to` has none) was written by the
/// checkout, since the safe checkout refused to touch files with local
/// changes; any other file is left as it is. The index copy used here is
/// read afresh and never written to `index`.
fn restore_work_tree(lock: &mut IndexLock, from: Option<Oid>, to: Oid) -> Result<(), SyncError> {
    lock.read_index()?;
    let git = lock.repository()?;
    let tree_of = |oid: Oid| git.find_commit(oid).and_then(|c| c.tree());
    let ctx = "cannot put the work tree back";
    let to_tree = tree_of(to).map_err(git_err(ctx))?;
    let from_tree = match from {
        Some(f) => tree_of(f).map_err(git_err(ctx))?,
        // An unborn branch had no files: put back the empty tree.
        None => empty_tree(git).map_err(git_err(ctx))?,
    };
    let changed = paths(
        &git.diff_tree_to_tree(Some(&from_tree), Some(&to_tree), None)
            .map_err(git_err(ctx))?,
    );
    if changed.is_empty() {
        return Ok(());
    }
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .disable_pathspec_match(true);
    for p in &changed {
        opts.pathspec(p);
    }
    let differ: HashSet<PathBuf> = paths(
        &git.diff_tree_to_workdir(Some(&to_tree), Some(&mut opts))
            .map_err(git_err(ctx))?,
    )
    .into_iter()
    .collect();
    let written: Vec<&PathBuf> = changed.iter().filter(|p| !differ.contains(*p)).collect();
    if written.is_empty() {
        return Ok(());
    }
    // Forced, but only on files that hold `to`'s version (kept in the
    // repository); untracked removal, only for the files `to` added.
    let mut co = CheckoutBuilder::new();
    co.force()
        .remove_untracked(true)
        .disable_pathspec_match(true);
    for p in written {
        co.path(p);
    }
    git.checkout_tree(from_tree.as_object(), Some(&mut co))
        .map_err(git_err(ctx))
}

fn empty_tree(git: &Repository) -> Result<git2::Tree<'_>, git2::Error> {
    let id = super::fanout::libgit2_write(|| git.treebuilder(None)?.write())?;
    git.find_tree(id)
}

/// Every path a diff touches (old and new side).
fn paths(diff: &git2::Diff<'_>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = diff
        .deltas()
        .flat_map(|d| [d.old_file().path(), d.new_file().path()])
        .flatten()
        .map(Path::to_path_buf)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Replay `ours`' commits since the merge base onto `theirs`, in memory.
/// Returns the new tip; on conflict, nothing was written anywhere (but
/// unreferenced objects). Files whose conflicts were only both sides'
/// insertions, kept by [`resolve_insertions`], are added to `merged`.
/// [`rebase_in_memory`], started over when libgit2 fails to write an
/// object because a prune removed its directory (see
/// [`super::fanout`]): libgit2's merge inside `Rebase::next` writes the
/// merged files itself, with no retry. An in-memory rebase leaves nothing
/// behind but objects, so starting over is safe.
fn replay(
    repo: &Repo,
    target: &PushTarget,
    ours: Oid,
    theirs: Oid,
    replayed: &mut Replayed,
    merged: &mut Vec<String>,
) -> Result<Oid, SyncError> {
    let mut attempt = 1;
    loop {
        replayed.clear();
        merged.clear();
        match rebase_in_memory(repo, target, ours, theirs, replayed, merged) {
            Err(SyncError::Git { source, .. })
                if super::fanout::vanished(&source) && attempt < REPLAY_ATTEMPTS =>
            {
                std::thread::sleep(Duration::from_micros(200 * attempt));
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Tries of a replay (see [`replay`]); each is a few milliseconds.
const REPLAY_ATTEMPTS: u64 = 8;

fn rebase_in_memory(
    repo: &Repo,
    target: &PushTarget,
    ours: Oid,
    theirs: Oid,
    replayed: &mut Replayed,
    merged: &mut Vec<String>,
) -> Result<Oid, SyncError> {
    let git = &repo.git;
    let sig = repo.signature().map_err(|e| SyncError::LocalChanges {
        detail: e.to_string(),
    })?;
    let branch = git
        .find_annotated_commit(ours)
        .map_err(git_err("cannot read your branch"))?;
    let upstream = git
        .find_annotated_commit(theirs)
        .map_err(git_err("cannot read the remote branch"))?;
    let mut opts = RebaseOptions::new();
    opts.inmemory(true);
    let mut rebase = git
        .rebase(Some(&branch), Some(&upstream), None, Some(&mut opts))
        .map_err(git_err("cannot start the rebase"))?;
    let mut tip = theirs;
    while let Some(op) = rebase.next() {
        let original = op.map_err(git_err("cannot replay a commit"))?.id();
        let mut index = rebase
            .inmemory_index()
            .map_err(git_err("cannot replay a commit"))?;
        // The in-memory index is the rebase's own (shared, not a copy): what
        // is resolved here is what `rebase.commit` writes.
        if index.has_conflicts() {
            if let Some(paths) = resolve_insertions(repo, &mut index) {
                merged.extend(paths);
            }
        }
        if index.has_conflicts() {
            let mut paths: Vec<String> = index
                .conflicts()
                .map(|c| {
                    c.filter_map(|c| c.ok())
                        .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            paths.sort();
            paths.dedup();
            let _ = rebase.abort();
            return Err(SyncError::Conflict {
                paths,
                ours: ours.to_string(),
                theirs: theirs.to_string(),
                theirs_ref: target
                    .tracking_ref
                    .trim_start_matches("refs/remotes/")
                    .to_string(),
            });
        }
        // None: keep each commit's author and message.
        match super::fanout::libgit2_write(|| rebase.commit(None, &sig, None)) {
            Ok(id) => tip = id,
            // Its change is already there (both sides inserted the very
            // same lines): nothing left to replay, as `git rebase` drops it.
            Err(e) if e.code() == ErrorCode::Applied => {}
            Err(e) => return Err(git_err("cannot write a replayed commit")(e)),
        }
        replayed.push((original, tip));
    }
    rebase
        .finish(Some(&sig))
        .map_err(git_err("cannot finish the rebase"))?;
    Ok(tip)
}

/// Resolve every conflict of one replayed commit with
/// [`merge::merge_insertions`], or none: `None` when any conflicted file
/// does not qualify (not a journal file per [`merge::policy`], not a plain
/// file with the same path and mode on all three sides, or not insert-only
/// on both sides). Returns the merged paths; `index` is changed only when
/// every conflict qualified.
fn resolve_insertions(repo: &Repo, index: &mut git2::Index) -> Option<Vec<String>> {
    let conflicts: Vec<git2::IndexConflict> =
        index.conflicts().ok()?.collect::<Result<_, _>>().ok()?;
    let mut resolved = Vec::new();
    for c in &conflicts {
        let (Some(base), Some(remote), Some(local)) = (&c.ancestor, &c.our, &c.their) else {
            // Added on both sides, or deleted on one: not insertions.
            return None;
        };
        let plain = |m: u32| m == 0o100644 || m == 0o100755;
        if base.path != remote.path
            || base.path != local.path
            || base.mode != remote.mode
            || base.mode != local.mode
            || !plain(base.mode)
        {
            return None;
        }
        let path = String::from_utf8(local.path.clone()).ok()?;
        let layout = merge::policy(&repo.git, &path)?;
        let blob = |e: &git2::IndexEntry| repo.git.find_blob(e.id).ok();
        let (b, r, l) = (blob(base)?, blob(remote)?, blob(local)?);
        let text = merge::merge_insertions(b.content(), r.content(), l.content(), layout).ok()?;
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: local.mode,
            uid: 0,
            gid: 0,
            file_size: u32::try_from(text.len()).unwrap_or(u32::MAX),
            id: super::fanout::libgit2_write(|| repo.git.blob(&text)).ok()?,
            // Stage 0, a resolved entry (`add` sets the path length).
            flags: 0,
            flags_extended: 0,
            path: local.path.clone(),
        };
        resolved.push((path, entry));
    }
    for (path, entry) in &resolved {
        index.conflict_remove(std::path::Path::new(path)).ok()?;
        index.add(entry).ok()?;
    }
    Some(resolved.into_iter().map(|(p, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A repository with `main` at A, and a commit B (not on any branch)
    /// changing mod.txt and user.txt, adding add.txt, deleting del.txt.
    fn repo_with_a_and_b() -> (tempfile::TempDir, Repo, Oid, Oid) {
        let dir = tempfile::tempdir().unwrap();
        let git = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("T", "t@example.org").unwrap();
        let commit = |files: &[(&str, &str)], parent: Option<Oid>, update: Option<&str>| {
            let mut b = git.treebuilder(None).unwrap();
            for (name, text) in files {
                let blob = git.blob(text.as_bytes()).unwrap();
                b.insert(name, blob, 0o100644).unwrap();
            }
            let tree = git.find_tree(b.write().unwrap()).unwrap();
            let parents: Vec<git2::Commit<'_>> = parent
                .map(|p| git.find_commit(p).unwrap())
                .into_iter()
                .collect();
            let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
            git.commit(update, &sig, &sig, "c", &tree, &refs).unwrap()
        };
        let a = commit(
            &[
                ("keep.txt", "k\n"),
                ("mod.txt", "a\n"),
                ("del.txt", "d\n"),
                ("user.txt", "u\n"),
            ],
            None,
            Some("HEAD"),
        );
        let b = commit(
            &[
                ("keep.txt", "k\n"),
                ("mod.txt", "b\n"),
                ("add.txt", "new\n"),
                ("user.txt", "u2\n"),
            ],
            Some(a),
            None,
        );
        let workdir = dir.path().canonicalize().unwrap();
        (dir, Repo { git, workdir }, a, b)
    }

    fn read(repo: &Repo, name: &str) -> Option<String> {
        fs::read_to_string(repo.workdir.join(name)).ok()
    }

    #[test]
    fn restore_puts_back_only_the_files_the_checkout_wrote() {
        let (_dir, repo, a, b) = repo_with_a_and_b();
        repo.git
            .checkout_head(Some(CheckoutBuilder::new().force()))
            .unwrap();
        let index_before = fs::read(repo.git.path().join("index")).unwrap();
        // A checkout of B stopped half-way: mod.txt and add.txt written,
        // del.txt removed; user.txt holds the user's own edit.
        fs::write(repo.workdir.join("mod.txt"), "b\n").unwrap();
        fs::write(repo.workdir.join("add.txt"), "new\n").unwrap();
        fs::remove_file(repo.workdir.join("del.txt")).unwrap();
        fs::write(repo.workdir.join("user.txt"), "mine\n").unwrap();

        let mut lock = IndexLock::acquire(&repo, Duration::from_secs(1)).unwrap();
        restore_work_tree(&mut lock, Some(a), b).unwrap();
        drop(lock);

        assert_eq!(read(&repo, "mod.txt").as_deref(), Some("a\n"));
        assert_eq!(read(&repo, "add.txt"), None);
        assert_eq!(read(&repo, "del.txt").as_deref(), Some("d\n"));
        assert_eq!(read(&repo, "user.txt").as_deref(), Some("mine\n"));
        assert_eq!(read(&repo, "keep.txt").as_deref(), Some("k\n"));
        // The index was never replaced, and the lock and its copy are gone.
        assert_eq!(
            fs::read(repo.git.path().join("index")).unwrap(),
            index_before
        );
        let left: Vec<String> = fs::read_dir(repo.git.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("index") && n != "index")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn restore_on_an_unborn_branch_removes_what_the_checkout_added() {
        let (_dir, repo, _a, b) = repo_with_a_and_b();
        repo.git.set_head("refs/heads/unborn").unwrap();
        fs::write(repo.workdir.join("mod.txt"), "b\n").unwrap();
        fs::write(repo.workdir.join("add.txt"), "something else\n").unwrap();

        let mut lock = IndexLock::acquire(&repo, Duration::from_secs(1)).unwrap();
        restore_work_tree(&mut lock, None, b).unwrap();
        drop(lock);

        assert_eq!(read(&repo, "mod.txt"), None);
        assert_eq!(read(&repo, "add.txt").as_deref(), Some("something else\n"));
    }
}
