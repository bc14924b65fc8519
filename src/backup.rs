//! Backups: a separate job, never on the commit path.
//!
//! After a commit the faces call [`trigger`]: it records the request and
//! starts `ai-commit backup --scheduled` detached, which runs every target
//! under the deferred-job discipline of [`crate::job`] (single-flight,
//! debounced by `min_interval`, logged to `$XDG_STATE_HOME/ai-commit/
//! backup.log`), and records the results for `ai-commit backup --status` /
//! `:AICommitStatus`. Failures never touch commits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use git2::Repository;
use serde::{Deserialize, Serialize};

use crate::config::{Backup, BackupTarget};
use crate::error::Result;
use crate::git::Repo;

use crate::job::{now, JobState, BACKUP};

/// One target's result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetResult {
    pub target: String,
    /// "ok", "skipped" (a requirement is missing: a warning) or "failed".
    pub status: String,
    pub detail: String,
    pub ms: u128,
}

/// The last run, kept in the state directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub started: u64,
    pub finished: u64,
    pub results: Vec<TargetResult>,
    /// Set by `trigger`; a run that starts after it satisfies it.
    pub requested: u64,
}

impl JobState for State {
    fn finished(&self) -> u64 {
        self.finished
    }
    fn requested(&self) -> u64 {
        self.requested
    }
    fn set_requested(&mut self, at: u64) {
        self.requested = at;
    }
}

/// Where this repository's backup state lives.
pub fn state_dir(repo: &Repo) -> PathBuf {
    BACKUP.state_dir(repo)
}

fn log(repo: &Repo, line: &str) {
    BACKUP.log(repo, line)
}

pub fn load_state(repo: &Repo) -> State {
    BACKUP.load(repo)
}

fn save_state(repo: &Repo, f: impl FnOnce(&mut State)) {
    BACKUP.save(repo, f)
}

/// Ask for a backup and start the detached runner (`exe backup --scheduled`).
/// Returns a line for the user. Without targets, nothing happens.
pub fn trigger(repo: &Repo, cfg: &Backup, exe: Option<&Path>) -> Option<String> {
    if cfg.targets.is_empty() {
        return None;
    }
    BACKUP.request::<State>(repo);
    let exe = match exe.map(Path::to_path_buf).or_else(|| find_on_path("ai-commit")) {
        Some(e) => e,
        None => return Some("backup not scheduled: the ai-commit command is not on PATH (run `ai-commit backup` yourself)".into()),
    };
    match BACKUP.spawn(repo, &exe) {
        Ok(()) => Some(format!(
            "backup scheduled ({} target(s), at most every {} s)",
            cfg.targets.len(),
            cfg.min_interval.as_secs()
        )),
        Err(e) => Some(format!(
            "backup not scheduled: cannot start {}: {e}",
            exe.display()
        )),
    }
}

pub(crate) use crate::job::find_on_path;

/// The detached job: single-flight, debounced, repeated while requests come.
/// Returns `None` when another job already holds the lock (coalesced).
pub fn scheduled(repo: &Repo, cfg: &Backup) -> Result<Option<State>> {
    BACKUP.single_flight(repo, cfg.min_interval, || run_now(repo, cfg))
}

/// Run every target now (no debounce, no lock) and record the results.
pub fn run_now(repo: &Repo, cfg: &Backup) -> State {
    let started = now();
    log(
        repo,
        &format!("backup started ({} target(s))", cfg.targets.len()),
    );
    let results: Vec<TargetResult> = cfg.targets.iter().map(|t| run_target(repo, t)).collect();
    for r in &results {
        log(
            repo,
            &format!("{} {} ({} ms): {}", r.target, r.status, r.ms, r.detail),
        );
    }
    let finished = now().max(started);
    save_state(repo, |s| {
        s.started = started;
        s.finished = finished;
        s.results = results.clone();
    });
    load_state(repo)
}

fn is_mount_point(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (Ok(me), Ok(parent)) = (std::fs::metadata(path), std::fs::metadata(path.join("..")))
        else {
            return false;
        };
        me.dev() != parent.dev() || me.ino() == parent.ino()
    }
    #[cfg(not(unix))]
    {
        path.exists()
    }
}

/// How a target is named in results and in doctor: `mirror PATH` (with
/// `{name}`, the work tree's name, filled in) or `command ARGS`.
pub fn label(t: &BackupTarget, name: &str) -> String {
    match (&t.mirror, &t.command) {
        (Some(m), _) => format!("mirror {}", m.replace("{name}", name)),
        (_, Some(c)) => format!("command {}", c.join(" ")),
        _ => "target".into(),
    }
}

/// Why the target is skipped now (`require` missing, `require_mount` not
/// mounted), if it is.
pub fn skip_reason(t: &BackupTarget) -> Option<String> {
    if let Some(req) = &t.require {
        let p = crate::config::expand_home(req);
        if !p.exists() {
            return Some(format!("{} is missing (disk not mounted?)", p.display()));
        }
    }
    if let Some(m) = &t.require_mount {
        let p = crate::config::expand_home(m);
        if !is_mount_point(&p) {
            return Some(format!("{} is not mounted", p.display()));
        }
    }
    None
}

fn run_target(repo: &Repo, t: &BackupTarget) -> TargetResult {
    let name = repo
        .workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label = label(t, &name);
    let started = Instant::now();
    let result = |status: &str, detail: String| TargetResult {
        target: label.clone(),
        status: status.into(),
        detail,
        ms: started.elapsed().as_millis(),
    };
    if let Some(why) = skip_reason(t) {
        return result("skipped", why);
    }
    match (&t.mirror, &t.command) {
        (Some(m), _) => match mirror(
            repo,
            &crate::config::expand_home(&m.replace("{name}", &name)),
        ) {
            Ok(n) => result("ok", format!("{n} ref(s) updated")),
            Err(e) => result("failed", e),
        },
        (_, Some(c)) => {
            let out = Command::new(&c[0])
                .args(&c[1..])
                .current_dir(&repo.workdir)
                .env("AI_COMMIT_REPO", &repo.workdir)
                .stdin(Stdio::null())
                .output();
            match out {
                Ok(o) if o.status.success() => result("ok", "exit 0".into()),
                Ok(o) => {
                    let tail: String = String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                        .to_string();
                    result("failed", format!("{}: {tail}", o.status))
                }
                Err(e) => result("failed", format!("cannot run {}: {e}", c[0])),
            }
        }
        _ => result("failed", "no mirror or command".into()),
    }
}

/// Mirror every branch and tag into the bare repository at `path` (created
/// if missing). Refs follow the local ones (also after a sync rebase); refs
/// deleted here are kept there; hooks do not run (it is a backup).
fn mirror(repo: &Repo, path: &Path) -> std::result::Result<usize, String> {
    let target = if path.exists() {
        let r = Repository::open(path)
            .map_err(|e| format!("{} is not a repository: {}", path.display(), e.message()))?;
        if !r.is_bare() {
            return Err(format!(
                "{} has a work tree; a mirror must be a bare repository",
                path.display()
            ));
        }
        r
    } else {
        Repository::init_bare(path)
            .map_err(|e| format!("cannot create {}: {}", path.display(), e.message()))?
    };
    let mut updated = 0;
    let refs = repo.git.references().map_err(|e| e.message().to_string())?;
    for r in refs.flatten() {
        let Some(name) = r.name().ok().map(String::from) else {
            continue;
        };
        if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
            continue;
        }
        let Some(new) = r.target() else { continue };
        let old = target.refname_to_id(&name).ok();
        if old == Some(new) {
            continue;
        }
        let known_old = old
            .filter(|o| repo.git.odb().map(|d| d.exists(*o)).unwrap_or(false))
            .filter(|o| repo.git.find_commit(*o).is_ok());
        // An annotated tag: its commit's history first, then the tag object.
        let obj = repo
            .git
            .find_object(new, None)
            .map_err(|e| e.message().to_string())?;
        let commit = obj
            .peel_to_commit()
            .map_err(|e| format!("{name}: {}", e.message()))?;
        crate::git::push::copy_objects(repo, &target, commit.id(), known_old)
            .map_err(|e| e.to_string())?;
        if obj.kind() == Some(git2::ObjectType::Tag) {
            let odb = repo.git.odb().map_err(|e| e.message().to_string())?;
            let raw = odb.read(new).map_err(|e| e.message().to_string())?;
            target
                .odb()
                .and_then(|d| crate::git::fanout::libgit2_write(|| d.write(raw.kind(), raw.data())))
                .map_err(|e| format!("cannot copy tag {name}: {}", e.message()))?;
        }
        target
            .reference(&name, new, true, "ai-commit backup")
            .map_err(|e| format!("cannot update {name}: {}", e.message()))?;
        updated += 1;
    }
    if target.head().is_err() {
        if let Some(b) = repo.branch() {
            let _ = target.set_head(&format!("refs/heads/{b}"));
        }
    }
    Ok(updated)
}
