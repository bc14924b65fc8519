//! Stage → (model) → commit → ref update, safe against another ai-commit, a
//! plain `git` or an editor's git integration running at the same time.
//!
//! # Design
//!
//! A run has two short critical sections under git's own locks, and the
//! model call (seconds) between them holds no lock at all:
//!
//! 1. **Stage** ([`stage`]), under `index.lock` (see [`IndexLock`]): read
//!    the index *after* taking the lock, stage the target into it, write it
//!    back, and record the *base*: the branch HEAD names and the commit it
//!    points to. Staging is a read-modify-write of the whole index, so
//!    without the lock a second run (or `git add`) that read the index
//!    before our write silently dropped our staging — the root of the lost
//!    files, the staged deletions and the "D a.txt" commits.
//! 2. The change set ([`changes`]) is the diff *base → staged index*, and
//!    it is what the model describes. Named paths are committed alone, as
//!    `git commit PATH…` does (plus whatever a `pre-commit` hook stages);
//!    `-a` and `ai-commit message` take the whole index.
//! 3. **Commit** ([`commit`]), under `index.lock` again, re-checks
//!    everything: the repository state, that HEAD still names the same
//!    branch, and, path by path, what the branch's tip holds *now*. The new
//!    commit is the current tip plus exactly the described changes, so a
//!    commit made meanwhile by someone else is never undone. For each path:
//!    unchanged since the base → applied; already holding our version
//!    (another run committed the same change) → nothing to do; holding a
//!    third version → refused. If every path was already committed the run
//!    ends with "nothing to commit" (never an empty commit); if only some
//!    were, or any conflicts, it refuses with the reason and changes
//!    nothing, because the message would describe a different commit. The
//!    branch is then moved with a compare-and-swap under git's ref lock
//!    (`refs/heads/<b>.lock`): if something moved it without taking
//!    `index.lock` (`git update-ref`, a fetch into the branch), the section
//!    is retried from the re-check. Finally the index entries of the
//!    committed paths are set to the committed versions where another
//!    writer had put the old ones back, so the index never holds a staged
//!    undo of our commit.
//!
//! Waiting: `index.lock` is waited for briefly ([`INDEX_LOCK_WAIT`]): two
//! ai-commit runs serialise on it; a `git commit` holding it (an editor, or
//! the `prepare-commit-msg` hook asking the model) is reported as a held
//! lock, with nothing changed.
//!
//! Several Neovims: each plugin's busy guard only sees its own process, so
//! two Neovims (or Neovim and a terminal) can run at once on one
//! repository; this module is what makes that safe — the faces need no
//! cross-process coordination of their own.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use git2::{Delta, DiffOptions, ErrorCode, Index, IndexEntry, Oid, Repository, Signature, Tree};

use super::lock::{IndexLock, INDEX_LOCK_WAIT};
use super::stage::{stage_into, Staging, Target};
use super::Repo;
use crate::error::{Error, Result};

/// What stage recorded; the input of [`changes`] and [`commit`].
pub struct Prepared {
    /// The staged index (in memory; on disk too unless a dry run).
    pub index: Index,
    /// The commit HEAD's branch pointed to when staging (None: unborn).
    pub base: Option<Oid>,
    /// `refs/heads/<branch>` that HEAD named when staging.
    pub branch_ref: Option<String>,
    /// Paths the commit is limited to (None: the whole index).
    pub pathspec: Option<Vec<String>>,
    /// The bytes staged by the fast path (see [`Staging::contents`]).
    pub contents: std::collections::HashMap<String, super::fastblob::Staged>,
    /// The named paths as given (relative to the work tree).
    pub named: Vec<String>,
}

/// One path of the change set: its version in the base and the staged one.
pub struct Change {
    pub path: String,
    /// (mode, blob) in the base commit; None: added.
    pub old: Option<(u32, Oid)>,
    /// The staged entry; None: deleted.
    pub new: Option<IndexEntry>,
}

impl Change {
    fn new_key(&self) -> Option<(u32, Oid)> {
        self.new.as_ref().map(|e| (e.mode, e.id))
    }
}

/// The branch HEAD names and the commit it points to.
fn head_state(git: &Repository) -> Result<(Option<String>, Option<Oid>)> {
    let head = git
        .find_reference("HEAD")
        .map_err(|e| Error::git("cannot read HEAD", e))?;
    let Some(target) = head.symbolic_target().ok().flatten().map(String::from) else {
        return Err(Error::DetachedHead);
    };
    let oid = match git.refname_to_id(&target) {
        Ok(id) => Some(id),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(Error::git(format!("cannot read {target}"), e)),
    };
    Ok((Some(target), oid))
}

fn tree_of(git: &Repository, commit: Option<Oid>) -> Result<Option<Tree<'_>>> {
    commit
        .map(|c| {
            git.find_commit(c)
                .and_then(|c| c.tree())
                .map_err(|e| Error::git("cannot read HEAD's tree", e))
        })
        .transpose()
}

/// Phase 1: stage `target` under `index.lock` and record the base. A dry
/// run stages in memory only and takes no lock.
pub fn stage(repo: &Repo, target: &Target, dry_run: bool) -> Result<Prepared> {
    if dry_run {
        let (branch_ref, base) = head_state(&repo.git)?;
        let (index, named) = super::stage::stage(repo, target, false)?;
        let staging = Staging {
            named,
            ..Staging::default()
        };
        return Ok(prepared(index, base, branch_ref, target, staging));
    }
    let mut lock = IndexLock::acquire(repo, INDEX_LOCK_WAIT)?;
    let (branch_ref, base) = head_state(&repo.git)?;
    let mut index = lock.read_index()?;
    if index.has_conflicts() {
        return Err(Error::Conflicts);
    }
    let staging = stage_into(repo, &mut index, target)?;
    lock.write_index(&mut index)?;
    Ok(prepared(index, base, branch_ref, target, staging))
}

fn prepared(
    index: Index,
    base: Option<Oid>,
    branch_ref: Option<String>,
    target: &Target,
    staging: Staging,
) -> Prepared {
    let Staging { named, contents } = staging;
    let pathspec = match target {
        Target::Paths(_) if !named.iter().any(String::is_empty) => Some(named.clone()),
        _ => None,
    };
    Prepared {
        index,
        base,
        branch_ref,
        pathspec,
        contents,
        named,
    }
}

/// After a `pre-commit` hook ran: read the index it left, and add the paths
/// it staged (a formatter) to the commit, as `git commit` would.
pub fn after_pre_commit(repo: &Repo, p: &mut Prepared) -> Result<()> {
    let before = entries(&p.index);
    let index = Index::open(&repo.git.path().join("index"))
        .map_err(|e| Error::git("cannot re-read the index after pre-commit", e))?;
    let after = entries(&index);
    if let Some(spec) = &mut p.pathspec {
        for path in before.keys().chain(after.keys()) {
            if before.get(path) != after.get(path) && !spec.contains(path) {
                spec.push(path.clone());
            }
        }
    }
    p.index = index;
    Ok(())
}

fn entries(index: &Index) -> BTreeMap<String, (u32, Oid)> {
    index
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.path).into_owned(),
                (e.mode, e.id),
            )
        })
        .collect()
}

/// The diff of the base's tree against `index`, limited to `pathspec`
/// (literal paths; a directory stands for everything under it).
pub fn diff<'r>(
    git: &'r Repository,
    base: Option<&Tree<'_>>,
    index: &Index,
    pathspec: Option<&[String]>,
) -> Result<git2::Diff<'r>> {
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    if let Some(spec) = pathspec {
        opts.disable_pathspec_match(true);
        for p in spec {
            opts.pathspec(p.as_str());
        }
    }
    git.diff_tree_to_index(base, Some(index), Some(&mut opts))
        .map_err(|e| Error::git("cannot diff the index against HEAD", e))
}

/// The change set the message describes and the commit applies.
pub fn changes(repo: &Repo, p: &Prepared) -> Result<Vec<Change>> {
    let base = tree_of(&repo.git, p.base)?;
    let diff = diff(&repo.git, base.as_ref(), &p.index, p.pathspec.as_deref())?;
    let mut out = Vec::new();
    for delta in diff.deltas() {
        let (old, new) = (delta.old_file(), delta.new_file());
        let Some(path) = new.path().or_else(|| old.path()) else {
            continue;
        };
        let old_key = (delta.status() != Delta::Added).then(|| (u32::from(old.mode()), old.id()));
        let new_entry = match delta.status() {
            Delta::Deleted => None,
            _ => Some(p.index.get_path(path, 0).ok_or_else(|| {
                Error::git(
                    format!("{} vanished from the staged index", path.display()),
                    git2::Error::from_str("missing entry"),
                )
            })?),
        };
        out.push(Change {
            path: path.to_string_lossy().into_owned(),
            old: old_key,
            new: new_entry,
        });
    }
    Ok(out)
}

/// How many times the re-check is redone when the branch moved under us
/// without `index.lock` (each time is milliseconds).
const REF_RETRIES: usize = 20;

/// Phase 3: commit exactly `changes` on top of the branch's current tip,
/// under `index.lock` and the ref lock (see the module docs).
pub fn commit(
    repo: &Repo,
    p: &Prepared,
    changes: &[Change],
    message: &str,
    author: &Signature<'_>,
    committer: &Signature<'_>,
) -> Result<Oid> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let mut lock = IndexLock::acquire(repo, INDEX_LOCK_WAIT)?;
        repo.check_state()?;
        let (branch_ref, tip) = head_state(&repo.git)?;
        if branch_ref != p.branch_ref {
            return Err(Error::Overtaken {
                detail: format!(
                    "HEAD moved from {} to {} while the message was being written",
                    short_ref(p.branch_ref.as_deref()),
                    short_ref(branch_ref.as_deref())
                ),
            });
        }
        let Some(branch_ref) = branch_ref else {
            return Err(Error::DetachedHead);
        };
        let tip_tree = tree_of(&repo.git, tip)?;
        let mut apply = Vec::new();
        let mut already = Vec::new();
        let mut conflicting = Vec::new();
        for c in changes {
            let now = match &tip_tree {
                Some(t) => t
                    .get_path(Path::new(&c.path))
                    .ok()
                    .map(|e| (e.filemode() as u32, e.id())),
                None => None,
            };
            if tip == p.base || now == c.old {
                apply.push(c);
            } else if now == c.new_key() {
                already.push(c.path.as_str());
            } else {
                conflicting.push(c.path.as_str());
            }
        }
        let by = || {
            tip.map(|t| describe_commit(&repo.git, t))
                .unwrap_or_default()
        };
        if !conflicting.is_empty() {
            return Err(Error::Overtaken {
                detail: format!(
                    "{} changed in {} (committed meanwhile by another ai-commit or git) to a version other than this run's",
                    conflicting.join(", "),
                    by()
                ),
            });
        }
        if apply.is_empty() {
            return Err(Error::NothingToCommit {
                detail: format!(
                    "{} already committed meanwhile, with the same content, in {}",
                    already.join(", "),
                    by()
                ),
            });
        }
        if !already.is_empty() {
            return Err(Error::Overtaken {
                detail: format!(
                    "{} were committed meanwhile in {}, but this run's message describes them too",
                    already.join(", "),
                    by()
                ),
            });
        }

        // The commit's tree: the tip's tree with the changes applied.
        let mut tree_index =
            Index::new().map_err(|e| Error::git("cannot build the commit's tree", e))?;
        if let Some(t) = &tip_tree {
            tree_index
                .read_tree(t)
                .map_err(|e| Error::git("cannot build the commit's tree", e))?;
        }
        for c in &apply {
            let r = match &c.new {
                Some(entry) => tree_index.add(entry),
                None => tree_index.remove_path(Path::new(&c.path)),
            };
            r.map_err(|e| Error::git(format!("cannot build the commit's tree ({})", c.path), e))?;
        }
        let tree_id = super::fanout::libgit2_write(|| tree_index.write_tree_to(&repo.git))
            .map_err(|e| Error::git("cannot write the commit's tree", e))?;
        let tree = repo
            .git
            .find_tree(tree_id)
            .map_err(|e| Error::git("cannot read the commit's tree", e))?;
        let parent = tip
            .map(|t| repo.git.find_commit(t))
            .transpose()
            .map_err(|e| Error::git("cannot read HEAD's commit", e))?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid =
            super::fanout::write_commit(&repo.git, author, committer, message, &tree, &parents)
                .map_err(|e| Error::git("cannot create the commit", e))?;

        // Move the branch only if it is still where we read it (git's ref
        // lock makes this a compare-and-swap).
        let subject = message.lines().next().unwrap_or("");
        let moved = match tip {
            Some(t) => repo.git.reference_matching(
                &branch_ref,
                oid,
                true,
                t,
                &format!("commit: {subject}"),
            ),
            None => repo.git.reference(
                &branch_ref,
                oid,
                false,
                &format!("commit (initial): {subject}"),
            ),
        };
        match moved {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
                ) && attempt < REF_RETRIES
                    && started.elapsed() < INDEX_LOCK_WAIT * 2 =>
            {
                // Moved or locked by a git that does not take index.lock:
                // release, let it finish, re-check from the start.
                drop(lock);
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10 * attempt as u64));
                continue;
            }
            Err(e) if e.code() == ErrorCode::Locked => {
                return Err(Error::RefLocked {
                    path: repo.git.path().join(format!("{branch_ref}.lock")),
                })
            }
            Err(e) => {
                return Err(Error::git(
                    format!("cannot move {branch_ref} to the new commit"),
                    e,
                ))
            }
        }
        fix_index(&mut lock, &apply)?;
        return Ok(oid);
    }
}

/// Where a writer that read the index before our staging put an old entry
/// of a committed path back, set it to the committed one: otherwise the
/// index holds a staged undo of the commit (a "deleted" file), and the
/// user's next `git commit` would record it. Entries anyone staged *after*
/// us (a newer version) are left alone.
fn fix_index(lock: &mut IndexLock, applied: &[&Change]) -> Result<()> {
    let current =
        Index::open(lock.index_path()).map_err(|e| Error::git("cannot read the index", e))?;
    let stale: Vec<&&Change> = applied
        .iter()
        .filter(|c| {
            let now = current
                .get_path(Path::new(&c.path), 0)
                .map(|e| (e.mode, e.id));
            now != c.new_key() && now == c.old
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let mut index = lock.read_index()?;
    for c in stale {
        let r = match &c.new {
            Some(entry) => index.add(entry),
            None => index.remove_path(Path::new(&c.path)),
        };
        r.map_err(|e| Error::git(format!("cannot update the index for {}", c.path), e))?;
    }
    lock.write_index(&mut index)
}

fn short_ref(r: Option<&str>) -> String {
    r.map(|r| r.trim_start_matches("refs/heads/").to_string())
        .unwrap_or_else(|| "a detached HEAD".into())
}

/// `1a2b3c4 ("Subject")`, for messages about a commit made meanwhile.
fn describe_commit(git: &Repository, oid: Oid) -> String {
    let short = oid.to_string()[..7].to_string();
    match git.find_commit(oid) {
        Ok(c) => format!("{short} (\"{}\")", c.summary().ok().flatten().unwrap_or("")),
        Err(_) => short,
    }
}
