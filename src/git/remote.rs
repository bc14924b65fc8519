//! Which remote and ref the current branch pushes to, and whether its URL is
//! a local (serverless) repository, and why a push or fetch failed
//! ([`PushError`]): the transports' level, below pushing and syncing.

use std::path::{Path, PathBuf};

use super::Repo;

/// Why a push did not happen. The commit is kept in every case.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("HEAD is detached; there is no branch to push")]
    Detached,

    #[error("branch {branch} has no upstream and there is no remote named origin; add one with `git remote add origin PATH` (or `ai-commit init --bare PATH`)")]
    NoRemote { branch: String },

    #[error("remote {remote} ({url}) is not reachable: {detail}. Is its disk mounted? The commit is kept and will be pushed by the next run")]
    Unreachable {
        remote: String,
        url: String,
        detail: String,
    },

    #[error("remote {remote} ({url}) has a work tree; pushing into a checked-out repository could overwrite its files. Point the remote at a bare repository (`git init --bare`)")]
    NotBare { remote: String, url: String },

    #[error("remote {remote} ({url}) is not a git repository")]
    NotARepo { remote: String, url: String },

    #[error("{remote}/{branch} has commits this clone does not have; bring them in with `ai-commit sync` (or `git pull --rebase`) and push again. Nothing was overwritten")]
    NonFastForward { remote: String, branch: String },

    #[error("the remote's {hook} hook rejected the push{}", hook_tail(.output))]
    Rejected { hook: &'static str, output: String },

    #[error("another push to {url} is updating {branch} right now; the commit is kept and the next run pushes it")]
    Busy { url: String, branch: String },

    #[error("cannot push to {url}: {detail}")]
    Transport { url: String, detail: String },

    #[error("{context}: {}", .source.message())]
    Git {
        context: String,
        #[source]
        source: git2::Error,
    },
}

fn hook_tail(output: &str) -> String {
    let t = output.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

impl PushError {
    pub(crate) fn git(context: impl Into<String>, source: git2::Error) -> Self {
        PushError::Git {
            context: context.into(),
            source,
        }
    }
}

/// Where the current branch goes.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub remote: String,
    pub url: String,
    pub branch: String,
    /// `refs/heads/<branch>` here.
    pub local_ref: String,
    /// The ref updated on the remote (the upstream's, else the same name).
    pub remote_ref: String,
    /// `refs/remotes/<remote>/<name>`, updated after a push as git does.
    pub tracking_ref: String,
}

/// The upstream of the current branch (`branch.<b>.pushRemote`,
/// `remote.pushDefault`, `branch.<b>.remote`, else `origin`).
pub fn push_target(repo: &Repo) -> Result<PushTarget, PushError> {
    let branch = repo.branch().ok_or(PushError::Detached)?;
    let cfg = repo.config().map_err(|e| PushError::Transport {
        url: String::new(),
        detail: e.to_string(),
    })?;
    let get = |k: String| cfg.get_string(&k).ok().filter(|v| !v.is_empty());
    let remote = get(format!("branch.{branch}.pushRemote"))
        .or_else(|| get("remote.pushDefault".into()))
        .or_else(|| get(format!("branch.{branch}.remote")))
        .unwrap_or_else(|| "origin".into());
    if remote == "." {
        return Err(PushError::NoRemote { branch });
    }
    let remote_ref = get(format!("branch.{branch}.merge"))
        .filter(|m| m.starts_with("refs/heads/"))
        .unwrap_or_else(|| format!("refs/heads/{branch}"));
    let found = match repo.git.find_remote(&remote) {
        Ok(r) => r,
        Err(e)
            if e.code() == git2::ErrorCode::NotFound
                || e.code() == git2::ErrorCode::InvalidSpec =>
        {
            return Err(PushError::NoRemote { branch })
        }
        Err(e) => return Err(PushError::git(format!("cannot read remote {remote}"), e)),
    };
    let url = match (found.pushurl(), found.url()) {
        (Ok(Some(push)), _) => push.to_string(),
        (_, Ok(url)) if !url.is_empty() => url.to_string(),
        _ => return Err(PushError::NoRemote { branch }),
    };
    let short = remote_ref.trim_start_matches("refs/heads/");
    Ok(PushTarget {
        tracking_ref: format!("refs/remotes/{remote}/{short}"),
        local_ref: format!("refs/heads/{branch}"),
        remote,
        url,
        branch,
        remote_ref,
    })
}

/// Run `git ARGS` in the work tree for a network remote (ssh, https), where
/// git's own transport brings the user's ssh agent and credential helpers.
/// Never prompts on a terminal. `what` names the operation in errors.
pub fn run_git(
    workdir: &Path,
    args: &[&str],
    url: &str,
    what: &str,
) -> Result<std::process::Output, PushError> {
    std::process::Command::new("git")
        .arg("-C")
        .arg(workdir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| PushError::Transport {
            url: url.to_string(),
            detail: format!(
                "network remotes are {what} with git's own transport, and running `git` failed ({e}); install git, or use a local bare repository"
            ),
        })
}

/// The path of a local remote (`/srv/x.git`, `../x.git`, `file:///srv/x.git`),
/// or `None` for network URLs (`ssh://`, `https://`, `user@host:path`).
pub fn local_path(url: &str, workdir: &Path) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .or_else(|| Some(PathBuf::from(rest)));
    }
    if url.contains("://") {
        return None;
    }
    // scp-like `host:path` has a colon before any slash.
    if let Some(colon) = url.find(':') {
        if !url[..colon].contains('/') {
            return None;
        }
    }
    let expanded = crate::config::expand_home(url);
    Some(if expanded.is_absolute() {
        expanded
    } else {
        workdir.join(expanded)
    })
}

#[cfg(test)]
mod tests {
    use super::local_path;
    use std::path::{Path, PathBuf};

    #[test]
    fn local_and_network_urls() {
        let wd = Path::new("/w");
        assert_eq!(
            local_path("/srv/j.git", wd),
            Some(PathBuf::from("/srv/j.git"))
        );
        assert_eq!(
            local_path("../j.git", wd),
            Some(PathBuf::from("/w/../j.git"))
        );
        assert_eq!(
            local_path("file:///srv/my%20j.git", wd),
            Some(PathBuf::from("/srv/my j.git"))
        );
        assert_eq!(local_path("git@github.com:me/j.git", wd), None);
        assert_eq!(local_path("ssh://host/j.git", wd), None);
        assert_eq!(local_path("https://host/j.git", wd), None);
    }
}
