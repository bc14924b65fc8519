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
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoObjects {
    /// The git directory.
    pub repo: String,
    pub usage: crate::compact::Usage,
}

/// The objects' size of the work repository, its local remote and the
/// backup mirrors (`ai-commit status`, `doctor`).
pub fn objects(repo: &Repo, backup: &crate::config::Backup) -> Vec<RepoObjects> {
    crate::compact::repositories(repo, backup)
        .into_iter()
        .map(|dir| RepoObjects {
            usage: crate::compact::usage(&dir.join("objects"), None),
            repo: dir.display().to_string(),
        })
        .collect()
}

pub fn status(repo: &Repo) -> Result<Status> {
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
        last_compaction: Some(crate::compact::load_state(repo).finished).filter(|f| *f > 0),
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
