//! The work tree's own hooks — `pre-commit`, `commit-msg`, `post-commit` —
//! run as `git commit` runs them (libgit2 runs none). The old flow committed
//! with git, so a user's secret scanner or formatter in `pre-commit` must not
//! be silently skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Repo;
use crate::error::{Error, Result};

pub struct ClientHooks {
    dir: PathBuf,
    workdir: PathBuf,
    index: PathBuf,
}

impl ClientHooks {
    /// The hooks directory (`core.hooksPath`, else `.git/hooks`).
    pub fn new(repo: &Repo) -> ClientHooks {
        let dir = repo.hooks_dir();
        ClientHooks {
            dir,
            workdir: repo.workdir.clone(),
            index: repo.git.path().join("index"),
        }
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        let p = self.dir.join(name);
        super::is_executable(&p).then_some(p)
    }

    /// Run `name` with `args` in the work tree, as git does (GIT_INDEX_FILE
    /// set, no terminal input). `Ok(None)` when there is no such hook.
    fn run(&self, name: &'static str, args: &[&Path]) -> Result<Option<(bool, String)>> {
        let Some(path) = self.path(name) else {
            return Ok(None);
        };
        let out = Command::new(&path)
            .args(args)
            .current_dir(&self.workdir)
            .env("GIT_INDEX_FILE", &self.index)
            .env("GIT_EDITOR", ":")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                Error::io(
                    format!("cannot run the {name} hook ({})", path.display()),
                    e,
                )
            })?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(Some((out.status.success(), text.trim().to_string())))
    }

    /// `pre-commit`: may refuse the commit (or re-stage files). Returns
    /// whether a hook ran (so the caller re-reads the index only then).
    pub fn pre_commit(&self) -> Result<bool> {
        match self.run("pre-commit", &[])? {
            Some((false, output)) => Err(Error::HookRejected {
                hook: "pre-commit",
                output,
            }),
            Some((true, _)) => Ok(true),
            None => Ok(false),
        }
    }

    /// `commit-msg`: may edit the message (in a file) or refuse it.
    pub fn commit_msg(&self, message: &str, git_dir: &Path) -> Result<String> {
        if self.path("commit-msg").is_none() {
            return Ok(message.to_string());
        }
        let file = git_dir.join("COMMIT_EDITMSG");
        std::fs::write(&file, format!("{message}\n"))
            .map_err(|e| Error::io(format!("cannot write {}", file.display()), e))?;
        match self.run("commit-msg", &[&file])? {
            Some((false, output)) => Err(Error::HookRejected {
                hook: "commit-msg",
                output,
            }),
            _ => {
                let edited = std::fs::read_to_string(&file)
                    .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
                let kept: Vec<&str> = edited.lines().filter(|l| !l.starts_with('#')).collect();
                let msg = kept.join("\n").trim().to_string();
                if msg.is_empty() {
                    Err(Error::EmptyMessage)
                } else {
                    Ok(msg)
                }
            }
        }
    }

    /// `post-commit`: informational; its exit code is ignored, as by git.
    pub fn post_commit(&self) {
        let _ = self.run("post-commit", &[]);
    }
}
