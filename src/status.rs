//! `ai-commit status`: where the branch stands against its remote, and how
//! the last push and the last sync went.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::push::{last_push, LastPush};
use crate::git::remote::push_target;
use crate::git::sync::{last_sync, LastSync};
use crate::git::Repo;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub workdir: String,
    pub branch: Option<String>,
    pub remote: Option<String>,
    pub url: Option<String>,
    /// Commits here that the remote lacks (as of the last fetch or push).
    pub ahead: usize,
    /// Commits on the remote not here (as of the last fetch).
    pub behind: usize,
    pub last_push: Option<LastPush>,
    /// The last sync (`ai-commit sync`, or the one inside a push).
    pub last_sync: Option<LastSync>,
    /// Why there is no remote to compare with, if there is none.
    pub remote_problem: Option<String>,
    /// The objects' size of each repository the compaction looks after.
    pub objects: Vec<RepoObjects>,
    /// When the last compaction finished (seconds since the epoch), if any.
    pub last_compaction: Option<u64>,
    /// How it went, per repository (empty when there was none).
    pub last_compaction_results: Vec<crate::compact::RepoResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoObjects {
    /// The git directory.
    pub repo: String,
    pub usage: crate::compact::Usage,
    /// False when its objects directory is not there (a bare repository on
    /// a disk that is not mounted): the usage is then unknown, not 0 B.
    pub reachable: bool,
}

/// "not reachable (disk not mounted?)", how status, doctor and `compact
/// --status` show a repository whose objects are not there.
pub const UNREACHABLE: &str = "not reachable (disk not mounted?)";

/// The objects' size of the work repository, its local remote and the
/// backup mirrors (`ai-commit status`, `doctor`).
pub fn objects(repo: &Repo, backup: &crate::config::Backup) -> Vec<RepoObjects> {
    crate::compact::repositories(repo, backup)
        .into_iter()
        .map(|dir| RepoObjects {
            usage: crate::compact::usage(&dir.join("objects"), None),
            reachable: dir.join("objects").is_dir(),
            repo: shown(&dir.display().to_string()),
        })
        .collect()
}

/// A repository's path as people read it: `/home/me/journal/.git`, not
/// `/home/me/journal/.git/` or `/home/me/journal/../journal.git` (git's own
/// spellings, which the compaction's results keep).
pub fn shown(path: &str) -> String {
    let p = std::path::Path::new(path);
    p.canonicalize()
        .unwrap_or_else(|_| p.components().collect())
        .display()
        .to_string()
}

/// "12 min ago", for people (`status`, `doctor`, `:checkhealth`).
pub fn ago(at: u64) -> String {
    ago_from(at, crate::job::now())
}

fn ago_from(at: u64, now: u64) -> String {
    let d = now.saturating_sub(at);
    match d {
        0..=59 => format!("{d} s ago"),
        60..=3599 => format!("{} min ago", d / 60),
        3600..=86_399 => format!("{} h ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

/// "10 min", "1 h", "30 s": a configured interval, for people.
pub fn interval(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The last compaction, in the words `ai-commit status`, `ai-commit doctor`
/// and `:checkhealth ai_commit` all use (after "last compaction: "):
/// "none recorded", "12 min ago, ok (46.0 MB → 2.2 MB)",
/// "3 h ago, FAILED for /x/.git: git repack: …", "1 min ago, skipped: …".
pub fn describe_compaction(finished: u64, results: &[crate::compact::RepoResult]) -> String {
    describe_compaction_at(finished, results, crate::job::now())
}

fn describe_compaction_at(
    finished: u64,
    results: &[crate::compact::RepoResult],
    now: u64,
) -> String {
    use crate::compact::human;
    if finished == 0 {
        return "none recorded".into();
    }
    let when = ago_from(finished, now);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.status == "failed")
        .map(|r| format!("{}: {}", shown(&r.repo), r.detail))
        .collect();
    if !failed.is_empty() {
        return format!("{when}, FAILED for {}", failed.join("; "));
    }
    if let Some(r) = results.iter().find(|r| r.status != "ok") {
        return format!("{when}, {}: {}", r.status, r.detail);
    }
    let before: u64 = results.iter().map(|r| r.before.total()).sum();
    let after: u64 = results.iter().map(|r| r.after.total()).sum();
    format!("{when}, ok ({} → {})", human(before), human(after))
}

pub fn status(repo: &Repo) -> Result<Status> {
    let compaction = crate::compact::load_state(repo);
    let mut s = Status {
        workdir: repo.workdir.display().to_string(),
        branch: repo.branch(),
        remote: None,
        url: None,
        ahead: 0,
        behind: 0,
        last_push: last_push(repo),
        last_sync: last_sync(repo),
        remote_problem: None,
        objects: Vec::new(),
        last_compaction: Some(compaction.finished).filter(|f| *f > 0),
        last_compaction_results: compaction.results,
    };
    // A broken config must not hide the status: fall back to no mirrors.
    let backup = crate::config::Config::load(Some(&repo.workdir), Default::default())
        .map(|c| c.backup)
        .unwrap_or_default();
    s.objects = objects(repo, &backup);
    match push_target(repo) {
        Err(e) => s.remote_problem = Some(e.to_string()),
        Ok(t) => {
            s.remote = Some(t.remote.clone());
            s.url = Some(t.url.clone());
            let local = repo.git.refname_to_id(&t.local_ref).ok();
            let tracking = repo.git.refname_to_id(&t.tracking_ref).ok();
            match (local, tracking) {
                (Some(l), Some(r)) => {
                    let (a, b) = repo
                        .git
                        .graph_ahead_behind(l, r)
                        .map_err(|e| Error::git("cannot compare with the remote", e))?;
                    s.ahead = a;
                    s.behind = b;
                }
                (Some(l), None) => {
                    // Never pushed: everything is pending.
                    let mut walk = repo
                        .git
                        .revwalk()
                        .map_err(|e| Error::git("cannot walk history", e))?;
                    walk.push(l)
                        .map_err(|e| Error::git("cannot walk history", e))?;
                    s.ahead = walk.count();
                }
                _ => {}
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::{RepoResult, Usage};

    fn result(repo: &str, status: &str, detail: &str, before: u64, after: u64) -> RepoResult {
        let usage = |b| Usage {
            loose_bytes: b,
            ..Usage::default()
        };
        RepoResult {
            repo: repo.into(),
            status: status.into(),
            detail: detail.into(),
            ms: 5,
            before: usage(before),
            after: usage(after),
        }
    }

    #[test]
    fn ages_are_said_in_the_largest_whole_unit() {
        let now = 1_800_000_000;
        assert_eq!(ago_from(now, now), "0 s ago");
        assert_eq!(ago_from(now - 59, now), "59 s ago");
        assert_eq!(ago_from(now - 12 * 60 - 30, now), "12 min ago");
        assert_eq!(ago_from(now - 3 * 3600 - 1, now), "3 h ago");
        assert_eq!(ago_from(now - 2 * 86_400, now), "2 days ago");
        // A clock that went back is "0 s ago", not an underflow.
        assert_eq!(ago_from(now + 100, now), "0 s ago");
    }

    #[test]
    fn intervals_are_said_in_whole_units() {
        use std::time::Duration;
        assert_eq!(interval(Duration::from_secs(600)), "10 min");
        assert_eq!(interval(Duration::from_secs(3600)), "1 h");
        assert_eq!(interval(Duration::from_secs(90)), "90 s");
        assert_eq!(interval(Duration::from_secs(2 * 86_400)), "2 d");
        assert_eq!(interval(Duration::ZERO), "0 s");
    }

    #[test]
    fn the_last_compaction_says_when_and_how_it_went() {
        let now = 1_800_000_000;
        let at = now - 12 * 60;
        assert_eq!(describe_compaction_at(0, &[], now), "none recorded");
        let ok = [
            result("/w/.git", "ok", "3 loose object(s)", 40 << 20, 1 << 20),
            result("/r.git", "ok", "3 loose object(s)", 6 << 20, 1 << 20),
        ];
        assert_eq!(
            describe_compaction_at(at, &ok, now),
            "12 min ago, ok (46.0 MB → 2.0 MB)"
        );
        let failed = [
            result("/w/.git", "ok", "", 1, 1),
            result(
                "/r.git",
                "failed",
                "git repack: exit status: 128: fatal: bad",
                9,
                9,
            ),
        ];
        assert_eq!(
            describe_compaction_at(at, &failed, now),
            "12 min ago, FAILED for /r.git: git repack: exit status: 128: fatal: bad"
        );
        let skipped = [result(
            "/w/.git",
            "skipped",
            "git is not installed; loose objects are kept",
            9,
            9,
        )];
        assert_eq!(
            describe_compaction_at(at, &skipped, now),
            "12 min ago, skipped: git is not installed; loose objects are kept"
        );
    }
}
