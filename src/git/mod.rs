//! Git through libgit2 (git2): no `git` binary on the commit path.

pub mod client_hooks;
pub mod commit;
pub mod diff;
pub(crate) mod fanout;
pub mod fastblob;
pub mod lock;
pub mod merge;
pub mod pieces;
pub mod publish;
pub mod push;
pub mod remote;
pub mod stage;
pub mod sync;

use std::path::{Path, PathBuf};

use git2::{ErrorCode, Repository, RepositoryState, Signature};

use crate::error::{Error, Result};

/// An opened, non-bare repository.
pub struct Repo {
    pub git: Repository,
    /// The work tree, canonicalized (for comparing user paths).
    pub workdir: PathBuf,
}

/// The nearest existing ancestor of `path` (a deleted file's directory may
/// be gone too), canonicalized.
/// Process-wide libgit2 settings, applied once before the first repository
/// is opened.
///
/// Strict hash verification re-hashes every object read with collision-
/// detecting SHA-1: reading the last version of a 10 MB journal for the
/// speculative diff cost 35 ms of the second core, which the staging's own
/// hashing needs. git itself checks ids only in `fsck`, not on reads; we do
/// the same (corruption is still caught by zlib's checksum and by git).
fn libgit2_defaults() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| git2::opts::strict_hash_verification(false));
}

fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    // A symlink belongs to the repository it sits in, wherever it points
    // (git stores the link itself).
    let is_link = path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    let mut cur = if is_link { path.parent() } else { Some(path) };
    while let Some(p) = cur {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        cur = p.parent();
    }
    None
}

impl Repo {
    /// Discover the repository that holds `path` (a file or a directory).
    pub fn discover(path: &Path) -> Result<Repo> {
        libgit2_defaults();
        let abs = absolute(path)?;
        let start = existing_ancestor(&abs).ok_or_else(|| Error::NotARepo { path: abs.clone() })?;
        let git = Repository::discover(&start).map_err(|e| match e.code() {
            ErrorCode::NotFound => Error::NotARepo { path: abs.clone() },
            _ => Error::git(
                format!("cannot open the repository holding {}", abs.display()),
                e,
            ),
        })?;
        let Some(workdir) = git.workdir() else {
            return Err(Error::BareRepo {
                path: git.path().to_path_buf(),
            });
        };
        let workdir = workdir
            .canonicalize()
            .map_err(|e| Error::io(format!("cannot resolve {}", workdir.display()), e))?;
        Ok(Repo { git, workdir })
    }

    /// `path` relative to the work tree, with `/` separators as git stores it.
    pub fn relative(&self, path: &Path) -> Result<String> {
        let abs = absolute(path)?;
        // Canonicalize the directories only: the file itself may be deleted,
        // or a symlink that must be staged as a link, not as its target.
        let (mut dir, name) = match (abs.parent(), abs.file_name()) {
            (Some(d), Some(n)) => (d, Some(n)),
            _ => (abs.as_path(), None),
        };
        let mut missing = Vec::new();
        let canon = loop {
            match dir.canonicalize() {
                Ok(c) => break c,
                Err(_) => match (dir.parent(), dir.file_name()) {
                    (Some(parent), Some(n)) => {
                        missing.push(n);
                        dir = parent;
                    }
                    _ => break dir.to_path_buf(),
                },
            }
        };
        let mut full = canon;
        full.extend(missing.iter().rev());
        full.extend(name);
        let rel = full
            .strip_prefix(&self.workdir)
            .map_err(|_| Error::OutsideRepo {
                path: path.to_path_buf(),
                workdir: self.workdir.clone(),
            })?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.first().is_some_and(|p| p == ".git") {
            return Err(Error::InsideGitDir {
                path: path.to_path_buf(),
            });
        }
        Ok(parts.join("/"))
    }

    /// Refuse states in which a commit would be wrong or could be lost.
    pub fn check_state(&self) -> Result<()> {
        let (operation, command) = match self.git.state() {
            RepositoryState::Clean => ("", ""),
            RepositoryState::Merge => ("merge", "merge"),
            RepositoryState::Revert | RepositoryState::RevertSequence => ("revert", "revert"),
            RepositoryState::CherryPick | RepositoryState::CherryPickSequence => {
                ("cherry-pick", "cherry-pick")
            }
            RepositoryState::Bisect => ("bisect", "bisect"),
            RepositoryState::Rebase
            | RepositoryState::RebaseInteractive
            | RepositoryState::RebaseMerge => ("rebase", "rebase"),
            RepositoryState::ApplyMailbox | RepositoryState::ApplyMailboxOrRebase => {
                ("git am", "am")
            }
        };
        if !operation.is_empty() {
            return Err(Error::OperationInProgress { operation, command });
        }
        if self.git.head_detached().unwrap_or(false) {
            return Err(Error::DetachedHead);
        }
        Ok(())
    }

    /// The repository's configuration as `git` would read it (see [`user_config`]).
    pub fn config(&self) -> Result<git2::Config> {
        if !config_env_overridden() {
            return self
                .git
                .config()
                .map_err(|e| Error::git("cannot read git config", e));
        }
        let mut cfg = user_config()?;
        let local = self.git.path().join("config");
        if local.exists() {
            cfg.add_file(&local, git2::ConfigLevel::Local, false)
                .map_err(|e| Error::git("cannot read git config", e))?;
        }
        Ok(cfg)
    }

    /// The committer identity (see [`identities`]).
    pub fn signature(&self) -> Result<Signature<'static>> {
        identity(&self.config()?)
    }

    /// The author and committer identities (see [`identities`]). Checked
    /// before any model call.
    pub fn identities(&self) -> Result<(Signature<'static>, Signature<'static>)> {
        identities(&self.config()?)
    }
    /// Where git looks for this work tree's hooks: `core.hooksPath`
    /// (relative to the work tree), else `hooks/` of the common git
    /// directory (shared by linked worktrees).
    pub fn hooks_dir(&self) -> PathBuf {
        self.config()
            .ok()
            .and_then(|c| c.get_path("core.hooksPath").ok())
            .map(|p| {
                if p.is_absolute() {
                    p
                } else {
                    self.workdir.join(p)
                }
            })
            .unwrap_or_else(|| self.git.commondir().join("hooks"))
    }

    /// The current branch's short name (`None` on a detached HEAD).
    pub fn branch(&self) -> Option<String> {
        match self.git.head() {
            Ok(h) if h.is_branch() => h.shorthand().ok().map(String::from),
            Ok(_) => None,
            // Unborn branch: HEAD is a symbolic ref to a branch with no commit.
            Err(_) => self
                .git
                .find_reference("HEAD")
                .ok()
                .and_then(|r| r.symbolic_target().ok().flatten().map(String::from))
                .and_then(|t| t.strip_prefix("refs/heads/").map(String::from)),
        }
    }

    /// Commit the tree `tree` on the current branch (creating it on an unborn
    /// HEAD). Returns the new commit's oid.
    pub fn commit(&self, tree: git2::Oid, message: &str, sig: &Signature<'_>) -> Result<git2::Oid> {
        let tree = self
            .git
            .find_tree(tree)
            .map_err(|e| Error::git("cannot read the staged tree", e))?;
        let parent = match self.git.head() {
            Ok(h) => Some(
                h.peel_to_commit()
                    .map_err(|e| Error::git("cannot read HEAD's commit", e))?,
            ),
            Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => {
                None
            }
            Err(e) => return Err(Error::git("cannot read HEAD", e)),
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let oid = fanout::write_commit(&self.git, sig, sig, message, &tree, &parents)
            .map_err(|e| Error::git("cannot create the commit", e))?;
        // HEAD's branch (or a detached HEAD itself), moved only from where
        // it was read, as `git commit` does.
        let head = self
            .git
            .find_reference("HEAD")
            .ok()
            .and_then(|r| r.symbolic_target().ok().flatten().map(String::from))
            .unwrap_or_else(|| "HEAD".to_string());
        let subject = message.lines().next().unwrap_or("");
        let moved = match parent {
            Some(p) => {
                self.git
                    .reference_matching(&head, oid, true, p.id(), &format!("commit: {subject}"))
            }
            None => self
                .git
                .reference(&head, oid, false, &format!("commit (initial): {subject}")),
        };
        moved.map(|_| oid).map_err(|e| {
            Error::git(
                "cannot create the commit (another git may have moved the branch; run again)",
                e,
            )
        })
    }
}

/// A hook git would run: a regular file with an execute bit.
pub(crate) fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

fn config_env_overridden() -> bool {
    std::env::var_os("GIT_CONFIG_GLOBAL").is_some() || nosystem()
}

fn nosystem() -> bool {
    std::env::var_os("GIT_CONFIG_NOSYSTEM")
        .is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The system and global configuration as `git` reads them. libgit2 ignores
/// `GIT_CONFIG_GLOBAL` and `GIT_CONFIG_NOSYSTEM`; users (and test sandboxes,
/// and home-manager setups) rely on them, so the levels are assembled here.
pub fn user_config() -> Result<git2::Config> {
    let err = |e| Error::git("cannot read git config", e);
    if !config_env_overridden() {
        return git2::Config::open_default().map_err(err);
    }
    let mut cfg = git2::Config::new().map_err(err)?;
    if !nosystem() {
        if let Ok(p) = git2::Config::find_system() {
            cfg.add_file(&p, git2::ConfigLevel::System, false)
                .map_err(err)?;
        }
    }
    match std::env::var_os("GIT_CONFIG_GLOBAL") {
        Some(g) if !g.is_empty() => {
            let p = PathBuf::from(g);
            if p.exists() {
                cfg.add_file(&p, git2::ConfigLevel::Global, false)
                    .map_err(err)?;
            }
        }
        Some(_) => {} // GIT_CONFIG_GLOBAL="" means no global config
        None => {
            for p in [git2::Config::find_xdg(), git2::Config::find_global()]
                .into_iter()
                .flatten()
            {
                cfg.add_file(&p, git2::ConfigLevel::Global, false)
                    .map_err(err)?;
            }
        }
    }
    Ok(cfg)
}

/// The committer identity git would use (see [`identities`]).
pub fn identity(cfg: &git2::Config) -> Result<Signature<'static>> {
    identities(cfg).map(|(_, committer)| committer)
}

/// The author and committer identities, as git picks them: the author from
/// `GIT_AUTHOR_NAME` / `GIT_AUTHOR_EMAIL`, the committer from
/// `GIT_COMMITTER_NAME` / `GIT_COMMITTER_EMAIL`, each else `user.name` /
/// `user.email` from `cfg`. Where git would give up, the other role's
/// variables are used (a sandbox that sets only one pair still commits).
pub fn identities(cfg: &git2::Config) -> Result<(Signature<'static>, Signature<'static>)> {
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
    let conf = |k: &str| cfg.get_string(k).ok().filter(|s| !s.trim().is_empty());
    let one = |own: &str, other: &str, key: &'static str| {
        env(own)
            .or_else(|| conf(key))
            .or_else(|| env(other))
            .ok_or(Error::NoIdentity { missing: key })
    };
    let sig = |n: String, e: String| {
        Signature::now(&n, &e).map_err(|e| Error::git("invalid git identity", e))
    };
    let author = sig(
        one("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", "user.name")?,
        one("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "user.email")?,
    )?;
    let committer = sig(
        one("GIT_COMMITTER_NAME", "GIT_AUTHOR_NAME", "user.name")?,
        one("GIT_COMMITTER_EMAIL", "GIT_AUTHOR_EMAIL", "user.email")?,
    )?;
    Ok((author, committer))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Error::io(format!("cannot resolve {}", path.display()), e))
}
