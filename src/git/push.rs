//! Pushing the current branch. Never forced: a remote that moved on is
//! reported, not overwritten, and the local commit always stays.
//!
//! Local (serverless) bare remotes use our own transport rather than
//! libgit2's: libgit2 skips the remote's hooks and packs every push with a
//! delta search (slow on a 10 MB journal). Here, as `git receive-pack` does
//! for small pushes, the new objects land loose in the remote (hard-linked
//! when on the same disk, copied otherwise), then `pre-receive` and `update`
//! may reject, the ref is moved with a compare-and-swap, and `post-receive`
//! and `post-update` run. Objects of a rejected push stay unreferenced in the
//! remote, which is harmless (git gc removes them).
//!
//! Network remotes (ssh, https) are handed to `git push` when git is
//! installed, so the user's ssh agent and credential helpers apply.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{ErrorCode, ObjectType, Oid, Repository};
use serde::Serialize;

use super::remote::{local_path, push_target, PushTarget};
use super::Repo;

pub use super::remote::PushError;

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub remote: String,
    pub url: String,
    pub branch: String,
    pub remote_ref: String,
    /// The remote ref before (None: it was created).
    pub old: Option<String>,
    pub new: String,
    /// Commits that were not on the remote before (pending ones included).
    pub commits: usize,
    pub up_to_date: bool,
    /// What the remote's hooks printed (shown as `remote: …`).
    pub hook_output: String,
    /// Set when the push needed a sync first (the remote had moved on).
    pub synced: Option<String>,
}

/// Push the current branch to its upstream. The outcome is recorded for
/// `ai-commit status` (see [`last_push`]).
pub fn push(repo: &Repo) -> Result<PushReport, PushError> {
    push_to(repo, push_target(repo))
}

/// [`push`] to a target resolved beforehand (reading it costs a config
/// read; a run that shows where it pushes resolves it once).
pub fn push_to(
    repo: &Repo,
    target: Result<PushTarget, PushError>,
) -> Result<PushReport, PushError> {
    let result = target.and_then(|target| match local_path(&target.url, &repo.workdir) {
        Some(path) => push_local(repo, &target, &path),
        None => push_with_git(repo, &target),
    });
    record(repo, result.as_ref().err().map(|e| e.to_string()));
    result
}

/// The last push attempt: a failure as recorded in
/// `.git/ai-commit/last-push.json`, a success as the tracking ref's reflog
/// shows it (git's own pushes count too).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LastPush {
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub ok: bool,
    pub error: Option<String>,
}

fn state_file(repo: &Repo) -> PathBuf {
    repo.git
        .commondir()
        .join("ai-commit")
        .join("last-push.json")
}

/// Keep a failed push's reason for `ai-commit status`, and forget it once a
/// push succeeds. A success writes nothing: its time is already in the
/// tracking ref's reflog, and creating a file costs a commit more than the
/// rest of the bookkeeping (see BENCHMARKS.md).
fn record(repo: &Repo, error: Option<String>) {
    let path = state_file(repo);
    let Some(error) = error else {
        // Best effort, like the rest: status information never fails a push.
        let _ = std::fs::remove_file(&path);
        return;
    };
    let last = LastPush {
        at: now_secs(),
        ok: false,
        error: Some(error),
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = serde_json::to_string(&last) {
        // Concurrent runs each write their own temporary file.
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The newer of the recorded failure and the last successful push (the
/// tracking ref's newest "update by push" reflog entry).
pub fn last_push(repo: &Repo) -> Option<LastPush> {
    let failed: Option<LastPush> = std::fs::read_to_string(state_file(repo))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let pushed = push_target(repo)
        .ok()
        .and_then(|t| repo.git.reflog(&t.tracking_ref).ok())
        .and_then(|log| {
            log.iter()
                .find(|e| {
                    e.message()
                        .ok()
                        .flatten()
                        .is_some_and(|m| m.starts_with("update by push"))
                })
                .map(|e| LastPush {
                    at: u64::try_from(e.committer().when().seconds()).unwrap_or(0),
                    ok: true,
                    error: None,
                })
        });
    match (failed, pushed) {
        (Some(f), Some(p)) => Some(if p.at > f.at { p } else { f }),
        (f, p) => f.or(p),
    }
}

fn open_remote(target: &PushTarget, path: &Path) -> Result<Repository, PushError> {
    if !path.exists() {
        return Err(PushError::Unreachable {
            remote: target.remote.clone(),
            url: target.url.clone(),
            detail: format!("{} does not exist", path.display()),
        });
    }
    let remote = Repository::open(path).map_err(|e| match e.code() {
        ErrorCode::NotFound => PushError::NotARepo {
            remote: target.remote.clone(),
            url: target.url.clone(),
        },
        _ => PushError::Unreachable {
            remote: target.remote.clone(),
            url: target.url.clone(),
            detail: e.message().to_string(),
        },
    })?;
    if !remote.is_bare() {
        return Err(PushError::NotBare {
            remote: target.remote.clone(),
            url: target.url.clone(),
        });
    }
    Ok(remote)
}

fn push_local(repo: &Repo, target: &PushTarget, path: &Path) -> Result<PushReport, PushError> {
    let remote = open_remote(target, path)?;
    let new = repo
        .git
        .refname_to_id(&target.local_ref)
        .map_err(|e| PushError::git(format!("cannot read {}", target.local_ref), e))?;
    let old = match remote.refname_to_id(&target.remote_ref) {
        Ok(id) => Some(id),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => {
            return Err(PushError::git(
                format!("cannot read the remote's {}", target.remote_ref),
                e,
            ))
        }
    };
    let mut report = PushReport {
        remote: target.remote.clone(),
        url: target.url.clone(),
        branch: target.branch.clone(),
        remote_ref: target.remote_ref.clone(),
        old: old.map(|o| o.to_string()),
        new: new.to_string(),
        commits: 0,
        up_to_date: old == Some(new),
        hook_output: String::new(),
        synced: None,
    };
    if let Some(old) = old {
        let known = repo.git.odb().map(|o| o.exists(old)).unwrap_or(false);
        if old != new && (!known || !repo.git.graph_descendant_of(new, old).unwrap_or(false)) {
            return Err(PushError::NonFastForward {
                remote: target.remote.clone(),
                branch: target
                    .remote_ref
                    .trim_start_matches("refs/heads/")
                    .to_string(),
            });
        }
    }
    if !report.up_to_date {
        report.commits = copy_objects(repo, &remote, new, old)?;
        let zero = Oid::ZERO_SHA1.to_string();
        let old_hex = old.map(|o| o.to_string()).unwrap_or_else(|| zero.clone());
        let line = format!("{old_hex} {new} {}\n", target.remote_ref);
        let hooks = HookRunner::new(&remote);
        let (ok, out) = hooks.run("pre-receive", &[], &line);
        report.hook_output.push_str(&out);
        if !ok {
            return Err(PushError::Rejected {
                hook: "pre-receive",
                output: out,
            });
        }
        let new_hex = new.to_string();
        let (ok, out) = hooks.run("update", &[&target.remote_ref, &old_hex, &new_hex], "");
        report.hook_output.push_str(&out);
        if !ok {
            return Err(PushError::Rejected {
                hook: "update",
                output: out,
            });
        }
        let msg = "push";
        let updated = match old {
            None => remote.reference(&target.remote_ref, new, false, msg),
            Some(old) => remote.reference_matching(&target.remote_ref, new, true, old, msg),
        };
        if let Err(e) = updated {
            // Someone else pushed between our read and our write.
            return Err(match e.code() {
                ErrorCode::Exists | ErrorCode::Modified => PushError::NonFastForward {
                    remote: target.remote.clone(),
                    branch: target.branch.clone(),
                },
                // …or is pushing right now (it holds the remote's ref lock).
                ErrorCode::Locked => PushError::Busy {
                    url: target.url.clone(),
                    branch: target.branch.clone(),
                },
                _ => PushError::git(
                    format!("cannot update {} in {}", target.remote_ref, target.url),
                    e,
                ),
            });
        }
        if old.is_none() {
            point_unborn_head(&remote, &target.remote_ref);
        }
        let (_, out) = hooks.run("post-receive", &[], &line);
        report.hook_output.push_str(&out);
        let (_, out) = hooks.run("post-update", &[&target.remote_ref], "");
        report.hook_output.push_str(&out);
    }
    // As git does after a push: the tracking ref records what the remote has.
    update_tracking(repo, &target.tracking_ref, new);
    Ok(report)
}

/// Move the tracking ref to `new` unless another run already moved it past
/// `new`. Best effort: the push itself is done, and a tracking ref that lags
/// is corrected by the next push or fetch; failing here would report "not
/// pushed" for a pushed commit.
fn update_tracking(repo: &Repo, tracking_ref: &str, new: Oid) {
    for attempt in 0..20u64 {
        let updated = match repo.git.refname_to_id(tracking_ref) {
            Ok(cur) if cur == new || repo.git.graph_descendant_of(cur, new).unwrap_or(false) => {
                return
            }
            Ok(cur) => repo
                .git
                .reference_matching(tracking_ref, new, true, cur, "update by push"),
            Err(_) => repo
                .git
                .reference(tracking_ref, new, false, "update by push"),
        };
        if updated.is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5 * (attempt + 1)));
    }
}

/// A new bare repository's HEAD may name a branch that will never exist
/// (`master` when the user writes `main`); once the first branch arrives,
/// point HEAD at it so that `git clone` checks something out, as hosted
/// remotes do. A HEAD that resolves is never touched.
fn point_unborn_head(remote: &Repository, pushed: &str) {
    let resolves = remote.head().is_ok();
    if !resolves {
        let _ = remote.set_head(pushed);
    }
}

/// Copy every object reachable from `new` that the remote lacks. Returns
/// the number of commits copied.
pub(crate) fn copy_objects(
    repo: &Repo,
    remote: &Repository,
    new: Oid,
    old: Option<Oid>,
) -> Result<usize, PushError> {
    let err = |what: &str, e: git2::Error| PushError::git(format!("cannot {what}"), e);
    let copier = Copier {
        local: &repo.git,
        local_dir: repo.git.commondir().join("objects"),
        remote_odb: remote
            .odb()
            .map_err(|e| err("open the remote's objects", e))?,
        remote_dir: remote.path().join("objects"),
    };
    let mut walk = repo.git.revwalk().map_err(|e| err("walk history", e))?;
    walk.push(new).map_err(|e| err("walk history", e))?;
    if let Some(old) = old {
        walk.hide(old).map_err(|e| err("walk history", e))?;
    }
    let mut commits = 0;
    for id in walk {
        let id = id.map_err(|e| err("walk history", e))?;
        if copier.remote_odb.exists(id) {
            continue;
        }
        let commit = repo
            .git
            .find_commit(id)
            .map_err(|e| err("read a commit", e))?;
        copier.tree(commit.tree_id())?;
        copier.object(id)?;
        commits += 1;
    }
    Ok(commits)
}

struct Copier<'a> {
    local: &'a Repository,
    local_dir: PathBuf,
    remote_odb: git2::Odb<'a>,
    remote_dir: PathBuf,
}

impl Copier<'_> {
    /// A tree and everything below it; a tree the remote has is complete there.
    fn tree(&self, id: Oid) -> Result<(), PushError> {
        if self.remote_odb.exists(id) {
            return Ok(());
        }
        let tree = self
            .local
            .find_tree(id)
            .map_err(|e| PushError::git("cannot read a tree", e))?;
        for entry in tree.iter() {
            match entry.kind() {
                Some(ObjectType::Tree) => self.tree(entry.id())?,
                Some(ObjectType::Blob) if !self.remote_odb.exists(entry.id()) => {
                    self.object(entry.id())?
                }
                _ => {} // blobs it has; submodule commits live elsewhere
            }
        }
        self.object(id)
    }

    /// One object: its loose file linked or copied as is (no recompression),
    /// or, when it is packed here, read and written through libgit2.
    fn object(&self, id: Oid) -> Result<(), PushError> {
        let hex = id.to_string();
        let (dir, file) = hex.split_at(2);
        let src = self.local_dir.join(dir).join(file);
        let dst_dir = self.remote_dir.join(dir);
        let dst = dst_dir.join(file);
        if src.is_file() {
            let io = |e: std::io::Error| PushError::Transport {
                url: self.remote_dir.display().to_string(),
                detail: format!("cannot write object {hex}: {e}"),
            };
            if dst.exists() {
                return Ok(());
            }
            let linked = super::fanout::place_in(&dst_dir, || std::fs::hard_link(&src, &dst));
            if linked.is_ok() || dst.exists() {
                return Ok(());
            }
            // Another disk: copy under a temporary name in the remote's
            // `objects/` (a prune can't remove that), then rename, so a
            // reader never sees half an object.
            let tmp = self
                .remote_dir
                .join(format!("tmp_obj_ai-commit-{file}-{}", std::process::id()));
            match std::fs::copy(&src, &tmp) {
                Ok(_) => {
                    let placed = super::fanout::place_in(&dst_dir, || std::fs::rename(&tmp, &dst));
                    if placed.is_err() {
                        let _ = std::fs::remove_file(&tmp);
                    }
                    placed.map_err(io)?;
                    return Ok(());
                }
                // The background compaction packed it meanwhile: read it
                // from the pack below.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let _ = std::fs::remove_file(&tmp);
                }
                Err(e) => return Err(io(e)),
            }
        }
        let odb = self
            .local
            .odb()
            .map_err(|e| PushError::git("cannot open objects", e))?;
        let obj = odb
            .read(id)
            .map_err(|e| PushError::git(format!("cannot read object {hex}"), e))?;
        super::fanout::libgit2_write(|| self.remote_odb.write(obj.kind(), obj.data()))
            .map_err(|e| PushError::git(format!("cannot write object {hex} to the remote"), e))?;
        Ok(())
    }
}

/// Runs a bare repository's server-side hooks the way receive-pack does:
/// in the repository directory with `GIT_DIR=.`.
struct HookRunner {
    dir: PathBuf,
    hooks: PathBuf,
}

impl HookRunner {
    fn new(remote: &Repository) -> HookRunner {
        let dir = remote.path().to_path_buf();
        let hooks = remote
            .config()
            .ok()
            .and_then(|c| c.get_path("core.hooksPath").ok())
            .map(|p| if p.is_absolute() { p } else { dir.join(p) })
            .unwrap_or_else(|| dir.join("hooks"));
        HookRunner { dir, hooks }
    }

    /// Run `name` if it exists and is executable. Returns (succeeded, output).
    fn run(&self, name: &str, args: &[&str], stdin: &str) -> (bool, String) {
        let path = self.hooks.join(name);
        if !super::is_executable(&path) {
            return (true, String::new());
        }
        let child = Command::new(&path)
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_DIR", ".")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .env_remove("GIT_PREFIX")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return (false, format!("cannot run hook {}: {e}", path.display())),
        };
        if let Some(mut input) = child.stdin.take() {
            // A hook that does not read its input closes the pipe: not an error.
            let _ = input.write_all(stdin.as_bytes());
        }
        match child.wait_with_output() {
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                (out.status.success(), text)
            }
            Err(e) => (false, format!("hook {name} failed: {e}")),
        }
    }
}

/// ssh/https: `git push` (never `--force`), if git is installed.
fn push_with_git(repo: &Repo, target: &PushTarget) -> Result<PushReport, PushError> {
    let new = repo
        .git
        .refname_to_id(&target.local_ref)
        .map_err(|e| PushError::git(format!("cannot read {}", target.local_ref), e))?;
    let refspec = format!("{}:{}", target.local_ref, target.remote_ref);
    let out = super::remote::run_git(
        &repo.workdir,
        &["push", "--porcelain", &target.remote, &refspec],
        &target.url,
        "pushed",
    )?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        if text.contains("non-fast-forward") || text.contains("fetch first") {
            return Err(PushError::NonFastForward {
                remote: target.remote.clone(),
                branch: target.branch.clone(),
            });
        }
        let detail = text
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("git push failed")
            .to_string();
        return Err(PushError::Transport {
            url: target.url.clone(),
            detail,
        });
    }
    Ok(PushReport {
        remote: target.remote.clone(),
        url: target.url.clone(),
        branch: target.branch.clone(),
        remote_ref: target.remote_ref.clone(),
        old: None,
        new: new.to_string(),
        commits: 0,
        up_to_date: text.contains("[up to date]"),
        hook_output: String::new(),
        synced: None,
    })
}
