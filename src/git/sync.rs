//! Sync with the remote for several machines writing to one bare repository:
//! fetch; fast-forward when behind; rebase local commits onto the remote when
//! both moved. Never forced, never a hard reset, never an overwritten local
//! change:
//!
//! - the work tree is updated with a *safe* checkout, which refuses (before
//!   writing anything) when a file it would change has local modifications;
//! - the rebase runs in memory, so a conflict leaves no half-applied rebase:
//!   the branch simply stays where it was, every commit where it was, and the
//!   message says how to finish by hand.
//!
//! A conflict where both sides only inserted lines into a journal file (two
//! machines' new entries at the same place) is not a conflict: the replay
//! keeps both entries and goes on ([`super::merge`]).

use git2::build::CheckoutBuilder;
use git2::{ErrorCode, Oid, RebaseOptions};
use serde::Serialize;

use super::merge;
use super::remote::{local_path, push_target, PushError, PushTarget};
use super::Repo;

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

/// Why a sync stopped. Nothing was changed in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Remote(#[from] PushError),

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
            remote
                .fetch(&[refspec.as_str()], None, None)
                .map_err(|e| match e.code() {
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

/// Fetch, then bring the branch and the remote together (see module docs).
pub fn sync(repo: &Repo) -> Result<Synced, SyncError> {
    sync_mapped(repo).map(|(s, _)| s)
}

/// Commits that a sync replayed: (the local commit, its replayed copy).
pub type Replayed = Vec<(Oid, Oid)>;

/// [`sync`], also saying which local commits were replaced by replayed
/// copies (so a run can report the commit that is really on the branch).
pub fn sync_mapped(repo: &Repo) -> Result<(Synced, Replayed), SyncError> {
    let mut replayed = Replayed::new();
    let synced = sync_inner(repo, &mut replayed);
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
            let tip = rebase_in_memory(repo, &target, ours, theirs, replayed, &mut merged)?;
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

/// Move the branch from `from` to `to`, updating index and work tree safely.
fn fast_forward(
    repo: &Repo,
    target: &PushTarget,
    from: Option<Oid>,
    to: Oid,
) -> Result<(), SyncError> {
    let commit = repo
        .git
        .find_commit(to)
        .map_err(git_err("cannot read the new commit"))?;
    let mut co = CheckoutBuilder::new();
    co.safe();
    repo.git
        .checkout_tree(commit.as_object(), Some(&mut co))
        .map_err(|e| match e.code() {
            ErrorCode::Conflict | ErrorCode::MergeConflict => SyncError::LocalChanges {
                detail: e.message().to_string(),
            },
            _ => SyncError::Git {
                context: "cannot update the work tree".into(),
                source: e,
            },
        })?;
    let msg = format!("ai-commit sync: {} → {}", target.tracking_ref, to);
    let moved = match from {
        Some(old) => repo
            .git
            .reference_matching(&target.local_ref, to, true, old, &msg),
        None => repo.git.reference(&target.local_ref, to, false, &msg),
    };
    moved.map_err(git_err(
        "cannot move the branch (did another git move it meanwhile?)",
    ))?;
    Ok(())
}

/// Replay `ours`' commits since the merge base onto `theirs`, in memory.
/// Returns the new tip; on conflict, nothing was written anywhere (but
/// unreferenced objects). Files whose conflicts were only both sides'
/// insertions, kept by [`resolve_insertions`], are added to `merged`.
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
        match rebase.commit(None, &sig, None) {
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
            id: repo.git.blob(&text).ok()?,
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
