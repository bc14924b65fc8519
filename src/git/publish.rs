//! Publishing a commit: push; when the remote moved on, sync (fetch,
//! fast-forward or replay) and push again. This sits one level above the
//! transports ([`super::push`], [`super::remote`]) and [`super::sync`],
//! which no longer call each other.

use std::time::Duration;

use git2::Oid;

use super::push::{push_to, PushError, PushReport};
use super::remote::{push_target, PushTarget};
use super::sync::sync_mapped;
use super::Repo;

/// Attempts when the remote keeps moving (several runs pushing at once).
const ATTEMPTS: u64 = 6;

/// Push the current branch, syncing when needed. Several machines (or runs)
/// writing to one journal end up with every commit in a linear history, or
/// with a clear conflict and nothing changed.
pub fn push_syncing(repo: &Repo) -> Result<PushReport, String> {
    publish(repo, None).map(|(r, _)| r)
}

/// [`push_syncing`] for a run that made commit `ours`: also returns the oid
/// that commit has on the branch now (a replayed copy after a sync).
pub fn publish(repo: &Repo, ours: Option<Oid>) -> Result<(PushReport, Option<Oid>), String> {
    publish_to(repo, push_target(repo), ours)
}

/// [`publish`] to a target resolved beforehand (see [`push_to`]).
pub fn publish_to(
    repo: &Repo,
    target: Result<PushTarget, PushError>,
    ours: Option<Oid>,
) -> Result<(PushReport, Option<Oid>), String> {
    let target = match target {
        Ok(t) => t,
        // Through push_to all the same, which records the failure for
        // `ai-commit status`.
        Err(e) => {
            return push_to(repo, Err(e))
                .map(|r| (r, ours))
                .map_err(|e| e.to_string())
        }
    };
    let mut current = ours;
    let mut synced = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match push_to(repo, Ok(target.clone())) {
            Ok(mut r) => {
                r.synced = synced.map(|s: super::sync::Synced| s.to_string());
                let pushed = Oid::from_str(&r.new).ok();
                let current = match (current, pushed) {
                    (Some(c), Some(tip)) => Some(on_branch(repo, c, tip)),
                    _ => current,
                };
                return Ok((r, current));
            }
            Err(PushError::NonFastForward { .. }) if attempt < ATTEMPTS => {
                let (s, replayed) = sync_mapped(repo).map_err(|e| e.to_string())?;
                if let Some(c) = current {
                    if let Some((_, new)) = replayed.iter().find(|(old, _)| *old == c) {
                        current = Some(*new);
                    }
                }
                // The first sync is the one worth reporting (a later one
                // only catches up with a concurrent push).
                synced.get_or_insert(s);
            }
            // Another push holds the remote's ref lock: let it finish.
            Err(PushError::Busy { .. }) if attempt < ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(50 * attempt));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// How far back from the pushed tip a replayed copy is looked for.
const REPLAYED_WITHIN: usize = 200;

/// The commit `ours` as it is in the history pushed (`tip`): itself, or
/// the copy another process's sync made of it meanwhile (a replay onto the
/// remote's commits between this run's commit and its push), which keeps
/// its author, author date and message. `ours` when there is no such copy.
fn on_branch(repo: &Repo, ours: Oid, tip: Oid) -> Oid {
    let git = &repo.git;
    if tip == ours || git.graph_descendant_of(tip, ours).unwrap_or(false) {
        return ours;
    }
    let Ok(commit) = git.find_commit(ours) else {
        return ours;
    };
    let same = |c: &git2::Commit<'_>| {
        let (a, b) = (c.author(), commit.author());
        a.name_bytes() == b.name_bytes()
            && a.email_bytes() == b.email_bytes()
            && a.when() == b.when()
            && c.message_raw_bytes() == commit.message_raw_bytes()
    };
    let Ok(mut walk) = git.revwalk() else {
        return ours;
    };
    if walk.push(tip).is_err() {
        return ours;
    }
    walk.flatten()
        .take(REPLAYED_WITHIN)
        .find(|id| git.find_commit(*id).is_ok_and(|c| same(&c)))
        .unwrap_or(ours)
}
