//! Compaction: packing loose objects into delta-compressed packs, in a
//! separate job, never on the commit path.
//!
//! Staging writes big files' versions as uncompressed loose objects (see
//! `git::fastblob`) and the local push hard-links them into the bare
//! remote, so a journal edited many times a day would cost a full copy per
//! commit. After a commit the pipeline calls [`trigger`]; when the loose
//! objects are worth packing it starts `ai-commit compact --scheduled`
//! detached (its own session), which — like the backup job — takes a lock
//! file (a second trigger meanwhile leaves: coalesced), waits out the
//! debounce interval, compacts, logs to `$XDG_STATE_HOME/ai-commit/
//! compact.log`, records the result for `ai-commit status`/`doctor`, and
//! runs again if a commit asked meanwhile.
//!
//! # Why `git repack`
//!
//! Each repository (the work repository, the local bare remote, local
//! backup mirrors) is compacted with `git repack -a -d -k` when git is
//! installed. git's repack writes the new pack and its index under temporary
//! names, fsyncs them (`core.fsync=pack,pack-metadata`, forced here), renames
//! them into place, and only then deletes the packs it replaced and, through
//! `git prune-packed`, the loose objects that the packs now hold — so a
//! `kill -9` at any point leaves every object in a loose file, an old pack or
//! a complete new one. `-k` keeps unreachable objects (packed, not dropped):
//! compaction never decides what is garbage. Objects written while it runs
//! (a concurrent commit) stay loose until the next run; git and libgit2
//! re-scan the pack directory when an object moved, and our own local push
//! falls back to reading through the object database when a loose file
//! vanished (see `git::push`). git reuses the deltas of existing packs, so a
//! run costs the new versions, not the whole history.
//!
//! # Without git
//!
//! When `git` is not on `PATH`, libgit2's pack builder does it (see
//! [`pack`]): one pack of everything reachable plus the old packs' objects,
//! written and fsynced with its index, checked whole on disk, and only then
//! the loose objects and old packs it provably holds are removed
//! (unreachable loose objects stay loose). It has no delta reuse, so each run
//! recomputes the deltas of the whole history; the log says "packed with
//! libgit2 (git not found on PATH)".

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::Compaction;
use crate::error::Result;
use crate::git::Repo;

use crate::job::{now, JobState, COMPACTION};

mod git_locks;
pub mod pack;

/// The objects of one repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub loose_count: u64,
    pub loose_bytes: u64,
    pub packs: u64,
    pub pack_bytes: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.loose_bytes + self.pack_bytes
    }
}

/// One repository's compaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RepoResult {
    /// The repository's git directory.
    pub repo: String,
    /// "ok", "skipped" or "failed".
    pub status: String,
    pub detail: String,
    pub ms: u128,
    pub before: Usage,
    pub after: Usage,
}

/// The last run, kept in the state directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub started: u64,
    pub finished: u64,
    pub results: Vec<RepoResult>,
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

/// Where this repository's compaction state and lock live (beside the
/// backup job's, one directory per work tree).
pub fn state_dir(repo: &Repo) -> PathBuf {
    COMPACTION.state_dir(repo)
}

fn log(repo: &Repo, line: &str) {
    COMPACTION.log(repo, line)
}

pub fn load_state(repo: &Repo) -> State {
    COMPACTION.load(repo)
}

fn save_state(repo: &Repo, f: impl FnOnce(&mut State)) {
    COMPACTION.save(repo, f)
}

/// The objects' size under `objects` (a git directory's `objects/`).
/// `stop_at`: stop counting loose bytes once they reach it (the trigger's
/// cheap check).
pub fn usage(objects: &Path, stop_at: Option<u64>) -> Usage {
    let mut u = Usage::default();
    for i in 0..=255u8 {
        let Ok(dir) = std::fs::read_dir(objects.join(format!("{i:02x}"))) else {
            continue;
        };
        for e in dir.flatten() {
            if let Ok(m) = e.metadata() {
                u.loose_count += 1;
                u.loose_bytes += m.len();
            }
        }
        if stop_at.is_some_and(|s| u.loose_bytes >= s) {
            return u;
        }
    }
    if let Ok(dir) = std::fs::read_dir(objects.join("pack")) {
        for e in dir.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with("pack-") {
                continue;
            }
            if name.ends_with(".pack") {
                u.packs += 1;
            }
            if let Ok(m) = e.metadata() {
                u.pack_bytes += m.len();
            }
        }
    }
    u
}

/// The git directories to compact: the work repository, its local bare
/// remote, and local backup mirrors that exist.
pub fn repositories(repo: &Repo, backup: &crate::config::Backup) -> Vec<PathBuf> {
    let mut out = vec![repo.git.commondir().to_path_buf()];
    if let Ok(t) = crate::git::remote::push_target(repo) {
        if let Some(p) = crate::git::remote::local_path(&t.url, &repo.workdir) {
            out.push(p);
        }
    }
    let name = repo
        .workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for t in &backup.targets {
        if let Some(m) = &t.mirror {
            let p = crate::config::expand_home(&m.replace("{name}", &name));
            if p.join("objects").is_dir() {
                out.push(p);
            }
        }
    }
    let mut seen = Vec::new();
    out.retain(|p| {
        let key = p.canonicalize().unwrap_or_else(|_| p.clone());
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    out
}

/// After a commit: start the detached job when the loose objects are worth
/// packing. Never blocks on the job; returns a line for the log only.
pub fn trigger(repo: &Repo, cfg: &Compaction, exe: Option<&Path>) -> Option<String> {
    if !cfg.enabled {
        return None;
    }
    let objects = repo.git.commondir().join("objects");
    if usage(&objects, Some(cfg.min_loose_bytes)).loose_bytes < cfg.min_loose_bytes {
        return None;
    }
    COMPACTION.request::<State>(repo);
    let exe = exe
        .map(Path::to_path_buf)
        .or_else(|| crate::job::find_on_path("ai-commit"))?;
    match COMPACTION.spawn(repo, &exe) {
        Ok(()) => Some("compaction scheduled".into()),
        Err(e) => {
            let line = format!(
                "compaction not scheduled: cannot start {}: {e}",
                exe.display()
            );
            log(repo, &line);
            Some(line)
        }
    }
}

/// The detached job: single-flight, debounced, repeated while requests come.
/// Returns `None` when another job already holds the lock (coalesced).
pub fn scheduled(
    repo: &Repo,
    cfg: &Compaction,
    backup: &crate::config::Backup,
) -> Result<Option<State>> {
    COMPACTION.single_flight(repo, cfg.min_interval, || run_now(repo, backup))
}

/// Compact every repository now (no debounce, no lock) and record it.
pub fn run_now(repo: &Repo, backup: &crate::config::Backup) -> State {
    let started = now();
    let results: Vec<RepoResult> = repositories(repo, backup)
        .iter()
        .map(|dir| compact_one(dir))
        .collect();
    for r in &results {
        log(
            repo,
            &format!(
                "compaction of {} {} ({} ms): {}",
                r.repo, r.status, r.ms, r.detail
            ),
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

/// The lock file a compaction of `git_dir` holds, whoever runs it: two work
/// trees pushing to one bare repository (or mirror) each have their own job,
/// and so do two machines sharing it (a network share, a disk that moves),
/// and `git repack` run twice at once on one repository fails ("could not
/// find pack"). So the lock lives in the repository itself, the one place
/// all of them see: `ai-commit-compact.lock` in its git directory, which git
/// ignores (as it ignores its own `gc.pid` there). An advisory lock
/// (`flock`): the kernel releases it when its holder dies, even by kill -9.
pub fn repo_lock_file(git_dir: &Path) -> PathBuf {
    git_dir.join("ai-commit-compact.lock")
}

/// Take `git_dir`'s lock without waiting. `Ok(None)`: another compaction
/// holds it. An error (the lock file cannot be created or opened) is not a
/// reason to skip: the compaction goes on unlocked, as before this lock
/// existed, and a repository git cannot write to fails in `git repack`
/// with git's own words.
fn lock_repository(git_dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    let path = repo_lock_file(git_dir);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        // Another user's lock file: a read-only descriptor locks as well.
        .or_else(|_| std::fs::File::open(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

fn compact_one(git_dir: &Path) -> RepoResult {
    let started = Instant::now();
    let objects = git_dir.join("objects");
    let before = usage(&objects, None);
    let result = |status: &str, detail: String, after: Usage| RepoResult {
        repo: git_dir.display().to_string(),
        status: status.into(),
        detail,
        ms: started.elapsed().as_millis(),
        before: before.clone(),
        after,
    };
    if !objects.is_dir() {
        // A bare repository on a disk that is not mounted: git would fail
        // on it; the next run after the disk is back packs it.
        return result(
            "skipped",
            format!("{}; packed by a later run", crate::status::UNREACHABLE),
            before.clone(),
        );
    }
    // Held until the end of this function (the file's lock goes with it).
    let _lock = match lock_repository(git_dir) {
        Ok(Some(file)) => Some(file),
        Ok(None) => {
            return result(
                "skipped",
                "another compaction of this repository is running (another work tree's or \
                 machine's job); it packs these objects"
                    .into(),
                before.clone(),
            )
        }
        Err(_) => None,
    };
    if let Some(why) = git_locks::packing(git_dir) {
        return result(
            "skipped",
            format!("{why}; it packs these objects"),
            before.clone(),
        );
    }
    // `--cruft` (git 2.37+) packs unreachable objects too (into a cruft
    // pack, never expired by us): a version staged and then replaced before
    // any commit is 10 MB that `-k` left loose. Older git: `-a -d -k`.
    let mut out = repack(git_dir, &["--cruft", "-d"]);
    if matches!(&out, Ok(o) if !o.status.success()
        && String::from_utf8_lossy(&o.stderr).contains("cruft"))
    {
        out = repack(git_dir, &["-a", "-d", "-k"]);
    }
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            const HOW: &str = "packed with libgit2 (git not found on PATH)";
            match pack::compact(git_dir) {
                Ok(p) if !p.wrote => result(
                    "ok",
                    "git not found on PATH; libgit2: nothing to pack (no loose objects \
                     and one pack at most, or nothing reachable)"
                        .into(),
                    usage(&objects, None),
                ),
                Ok(p) => {
                    let after = usage(&objects, None);
                    let detail = format!(
                        "{HOW}: {} object(s) in one pack, {} loose object(s) and {} old \
                         pack(s) removed, {} loose object(s) kept (unreachable or newer), \
                         {} → {}",
                        p.objects,
                        p.loose_removed,
                        p.packs_removed,
                        p.loose_kept,
                        human(before.total()),
                        human(after.total())
                    );
                    result("ok", detail, after)
                }
                Err(e) => result(
                    "failed",
                    format!("libgit2 packing (git not found on PATH): {e}"),
                    usage(&objects, None),
                ),
            }
        }
        Err(e) => result(
            "failed",
            format!("cannot run git repack: {e}"),
            before.clone(),
        ),
        Ok(o) if !o.status.success() => {
            let tail = String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            result(
                "failed",
                format!("git repack: {}: {tail}", o.status),
                usage(&objects, None),
            )
        }
        Ok(_) => {
            let after = usage(&objects, None);
            let detail = format!(
                "{} loose object(s), {} → {}",
                before.loose_count,
                human(before.total()),
                human(after.total())
            );
            result("ok", detail, after)
        }
    }
}

/// `git repack ARGS -q` on `git_dir`, as a background job should run it.
fn repack(git_dir: &Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        // Packs and their indexes reach the disk before anything they
        // replace is deleted, whatever the user's core.fsync says.
        .args([
            "-c",
            "core.fsync=pack,pack-metadata",
            "-c",
            "core.fsyncMethod=fsync",
        ])
        // A background job: one thread and a bounded delta window. Unbounded
        // on both cores, 200 versions of a 10 MB journal peaked at 423 MB
        // and took the core a commit wants.
        .args(["-c", "pack.threads=1", "-c", "pack.windowMemory=64m"])
        .arg("repack")
        .args(args)
        .arg("-q")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .stdin(Stdio::null())
        .output()
}

/// "2.1 MB", for people.
pub fn human(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}
