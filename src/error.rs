//! Errors of the core library.
//!
//! Every variant says what went wrong *and* what to do about it, because the
//! faces (CLI, Neovim) show these texts to the user as they are. Errors here
//! stop a run before a commit is made; problems after the commit (a failed
//! push) are not errors but part of [`crate::Outcome`], because the commit
//! itself is safe.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::model::ModelError;

/// Why a run stopped without making a commit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} is not inside a git repository; create one with `ai-commit init` (or `git init`) there", .path.display())]
    NotARepo { path: PathBuf },

    #[error("the repository at {} is bare (it has no work tree to commit from); run ai-commit in a clone of it", .path.display())]
    BareRepo { path: PathBuf },

    #[error("{} is outside the repository's work tree ({}); ai-commit only stages files inside it", .path.display(), .workdir.display())]
    OutsideRepo { path: PathBuf, workdir: PathBuf },

    #[error("{} and {} are in different repositories; run ai-commit once per repository", .first.display(), .second.display())]
    MixedRepos { first: PathBuf, second: PathBuf },

    #[error("{} does not exist and git does not track it, so there is nothing to stage", .path.display())]
    NoSuchFile { path: PathBuf },

    #[error("{} is ignored by git (.gitignore or info/exclude); stage it yourself with `git add -f` if you mean to track it", .path.display())]
    Ignored { path: PathBuf },

    #[error("{} is a submodule or inside one; ai-commit does not commit across repositories: run it inside the submodule instead", .path.display())]
    Submodule { path: PathBuf },

    #[error("{} is inside the .git directory; ai-commit does not stage git's own files", .path.display())]
    InsideGitDir { path: PathBuf },

    #[error("HEAD is detached; a commit here would belong to no branch and could be lost. Switch to a branch first (e.g. `git switch main`)")]
    DetachedHead,

    #[error("a {operation} is in progress; finish it or abort it with git first (`git {command} --continue` or `git {command} --abort`)")]
    OperationInProgress {
        operation: &'static str,
        command: &'static str,
    },

    #[error(
        "the index has unresolved conflicts; resolve them and stage the result with git first"
    )]
    Conflicts,

    #[error("another git process holds {} (the index is locked); wait for it to finish, or delete the lock file if no git is running", .path.display())]
    IndexLocked { path: PathBuf },

    #[error("another git process holds {} (the branch is being updated); wait for it to finish, or delete the lock file if no git is running. Nothing was committed; your changes stay staged", .path.display())]
    RefLocked { path: PathBuf },

    #[error("not committed: {detail}. Nothing was changed: your changes are still in the work tree and staged; run ai-commit again to commit what is left")]
    Overtaken { detail: String },

    #[error("no git identity ({missing} is not set); set it with `git config --global user.name \"Your Name\"` and `git config --global user.email you@example.com`")]
    NoIdentity { missing: &'static str },

    #[error("nothing to commit: {detail}")]
    NothingToCommit { detail: String },

    #[error("cancelled before the commit; your changes stay staged in the index")]
    Cancelled,

    #[error("commit aborted: the message was left empty; your changes stay staged in the index")]
    EmptyMessage,

    #[error("the {hook} hook refused the commit; your changes stay staged (skip it with --no-verify){}", hook_tail(.output))]
    HookRejected { hook: &'static str, output: String },

    #[error("the editor failed: {detail}; nothing was committed and your changes stay staged")]
    Editor { detail: String },

    #[error("the model could not write a message: {0}")]
    Model(#[from] ModelError),

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {}", .source.message())]
    Git {
        context: String,
        #[source]
        source: git2::Error,
    },
}

impl Error {
    pub(crate) fn git(context: impl Into<String>, source: git2::Error) -> Self {
        Error::Git {
            context: context.into(),
            source,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A stable, machine-readable name for the kind of error (used by `--json`
    /// and by the Neovim face to choose how to show it).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotARepo { .. } => "not_a_repo",
            Error::BareRepo { .. } => "bare_repo",
            Error::OutsideRepo { .. } => "outside_repo",
            Error::MixedRepos { .. } => "mixed_repos",
            Error::NoSuchFile { .. } => "no_such_file",
            Error::Ignored { .. } => "ignored",
            Error::Submodule { .. } => "submodule",
            Error::InsideGitDir { .. } => "inside_git_dir",
            Error::DetachedHead => "detached_head",
            Error::OperationInProgress { .. } => "operation_in_progress",
            Error::Conflicts => "conflicts",
            Error::IndexLocked { .. } => "index_locked",
            Error::RefLocked { .. } => "ref_locked",
            Error::Overtaken { .. } => "overtaken",
            Error::NoIdentity { .. } => "no_identity",
            Error::NothingToCommit { .. } => "nothing_to_commit",
            Error::Cancelled => "cancelled",
            Error::EmptyMessage => "empty_message",
            Error::HookRejected { .. } => "hook_rejected",
            Error::Editor { .. } => "editor",
            Error::Model(_) => "model",
            Error::Config(_) => "config",
            Error::Io { .. } => "io",
            Error::Git { .. } => "git",
        }
    }
}

fn hook_tail(output: &str) -> String {
    if output.trim().is_empty() {
        String::new()
    } else {
        format!(":\n{}", output.trim())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
