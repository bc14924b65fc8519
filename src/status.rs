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
    };
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
