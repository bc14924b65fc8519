//! The machinery shared by the deferred jobs (backups, compaction): never on
//! the commit path, started detached after a commit, single-flight,
//! debounced, logged, with their last results kept per work tree.
//!
//! A job's trigger records a request ([`Job::request`]) and starts
//! `ai-commit <name> --scheduled` in its own session ([`Job::spawn`]: it
//! survives the editor or terminal exiting). That process runs
//! [`Job::single_flight`]: it takes the work tree's lock file (a second
//! trigger meanwhile finds it held and leaves: coalesced, the running job
//! picks its request up), waits until `min_interval` has passed since the
//! last run (debounce), runs, and runs again if a request arrived meanwhile.
//! Logs go to `$XDG_STATE_HOME/ai-commit/<name>.log`, state to
//! `$XDG_STATE_HOME/ai-commit/<name>/<work tree>-<hash>/state.json`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::Repo;

/// Seconds since the epoch (0 if the clock is before it).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a job keeps between runs: when it last finished, and the latest
/// request (set by a trigger; a run that starts after it satisfies it).
pub trait JobState: Serialize + DeserializeOwned + Default {
    fn finished(&self) -> u64;
    fn requested(&self) -> u64;
    fn set_requested(&mut self, at: u64);
}

/// One kind of deferred job.
pub struct Job {
    /// The CLI subcommand, and the name of its log and state directories.
    pub name: &'static str,
    /// How the log lines call it ("backup", "compaction").
    pub what: &'static str,
}

pub const BACKUP: Job = Job {
    name: "backup",
    what: "backup",
};

pub const COMPACTION: Job = Job {
    name: "compact",
    what: "compaction",
};

/// `$XDG_STATE_HOME/ai-commit` (via `dirs`).
pub(crate) fn state_base() -> PathBuf {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("ai-commit")
}

/// Stable per work tree: its name plus a hash of its path.
fn repo_key(repo: &Repo) -> String {
    let id = git2::Oid::hash_object(
        git2::ObjectType::Blob,
        repo.workdir.as_os_str().as_encoded_bytes(),
    )
    .map(|o| o.to_string()[..10].to_string())
    .unwrap_or_default();
    let name = repo
        .workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}-{id}")
}

impl Job {
    /// Where this job keeps the work tree's state and lock file.
    pub fn state_dir(&self, repo: &Repo) -> PathBuf {
        state_base().join(self.name).join(repo_key(repo))
    }

    pub fn log_file(&self) -> PathBuf {
        state_base().join(format!("{}.log", self.name))
    }

    /// Append a line to the job's log (best effort: a log never fails a job).
    pub fn log(&self, repo: &Repo, line: &str) {
        let path = self.log_file();
        if let Some(d) = path.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = writeln!(f, "{} {} {line}", now(), repo.workdir.display());
        }
    }

    pub fn load<S: JobState>(&self, repo: &Repo) -> S {
        let dir = self.state_dir(repo);
        let mut s: S = std::fs::read_to_string(dir.join("state.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        // Requests live in their own file (see `request`): the job saving
        // its results must not overwrite one that came meanwhile.
        let asked = std::fs::read_to_string(dir.join("requested"))
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if asked > s.requested() {
            s.set_requested(asked);
        }
        s
    }

    pub fn save<S: JobState>(&self, repo: &Repo, f: impl FnOnce(&mut S)) {
        let dir = self.state_dir(repo);
        let _ = std::fs::create_dir_all(&dir);
        let mut s: S = self.load(repo);
        f(&mut s);
        if let Ok(text) = serde_json::to_string_pretty(&s) {
            let tmp = dir.join(format!("state.json.tmp-{}", std::process::id()));
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, dir.join("state.json"));
            }
        }
    }

    /// Record a request, numbered above any before it (seconds since the
    /// epoch, or one more when several come within a second).
    pub fn request<S: JobState>(&self, repo: &Repo) {
        let dir = self.state_dir(repo);
        let _ = std::fs::create_dir_all(&dir);
        let next = now().max(self.load::<S>(repo).requested() + 1);
        let tmp = dir.join(format!("requested.tmp-{}", std::process::id()));
        if std::fs::write(&tmp, next.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join("requested"));
        }
    }

    /// Whether a job holds the lock: it is waiting out the debounce or
    /// running, and will see a request made now before it exits.
    pub fn pending(&self, repo: &Repo) -> bool {
        let Ok(lock) = std::fs::File::open(self.state_dir(repo).join("lock")) else {
            return false;
        };
        match lock.try_lock_shared() {
            Ok(()) => {
                let _ = lock.unlock();
                false
            }
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(_) => false,
        }
    }

    /// Start `exe <name> --scheduled` in the work tree, detached, unless a
    /// job is already pending (it takes the request: starting a process
    /// costs a commit ~1 ms, and the new one would only coalesce).
    pub fn spawn(&self, repo: &Repo, exe: &Path) -> std::io::Result<()> {
        if self.pending(repo) {
            return Ok(());
        }
        let mut cmd = Command::new(exe);
        cmd.args([self.name, "--scheduled"])
            .current_dir(&repo.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: setsid and setpriority are async-signal-safe; a new session detaches the
            // job from the terminal (no SIGHUP when it closes) and from Ctrl-C.
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    // Background work yields the CPU to the editor and to
                    // the next commit (nice 10; git inherits it).
                    libc::setpriority(libc::PRIO_PROCESS, 0, 10);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn()?;
        // Someone must wait for the job, or it stays a zombie once it ends:
        // in a long-lived caller (the Neovim module) nobody else does, as
        // Neovim's libuv waits only for the processes it spawned itself. A
        // thread of ours waits (it sleeps until the job exits, and dies with
        // a short-lived caller, whose job init then reaps). If no thread can
        // be started, the job still runs; it is only left unreaped.
        let _ = std::thread::Builder::new()
            .name(format!("ai-commit-{}-reaper", self.name))
            .spawn(move || {
                let _ = child.wait();
            });
        Ok(())
    }

    /// The detached job's body: single-flight, debounced by `min_interval`,
    /// `run` repeated while requests come. `None` when another job already
    /// holds the lock (the request is coalesced into it).
    pub fn single_flight<S: JobState>(
        &self,
        repo: &Repo,
        min_interval: Duration,
        mut run: impl FnMut() -> S,
    ) -> Result<Option<S>> {
        let dir = self.state_dir(repo);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| Error::io(format!("cannot open the {} lock file", self.what), e))?;
        if lock.try_lock().is_err() {
            self.log(
                repo,
                &format!(
                    "{} already pending or running; request coalesced",
                    self.what
                ),
            );
            return Ok(None);
        }
        loop {
            let state: S = self.load(repo);
            let wait = (state.finished() + min_interval.as_secs()).saturating_sub(now());
            if state.finished() > 0 && wait > 0 {
                self.log(repo, &format!("{} debounced: waiting {wait} s", self.what));
                std::thread::sleep(Duration::from_secs(wait));
            }
            // Requests are numbered upwards: one made after this read has a
            // higher number and gets another run; one made before is served
            // by this run. (Comparing with the start time lost a request
            // made within the same second.)
            let seen = self.load::<S>(repo).requested();
            let done = run();
            if self.load::<S>(repo).requested() <= seen {
                let _ = lock.unlock();
                return Ok(Some(done));
            }
        }
    }
}

/// `name` in a directory of `$PATH`, if there.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
