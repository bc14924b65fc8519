//! Staging: named files (deletions too) or every tracked change (`-a`).

use std::path::Path;

use git2::{ErrorCode, Index};

use super::fastblob::Staged;
use super::Repo;
use crate::error::{Error, Result};

/// What to stage.
#[derive(Debug, Clone)]
pub enum Target {
    /// These paths (files or directories), like `git add PATH…`.
    Paths(Vec<std::path::PathBuf>),
    /// Modifications and deletions of tracked files, like `git add -u`.
    AllTracked,
    /// Stage nothing; commit what is already staged (`ai-commit message`,
    /// or a run after the user staged by hand).
    Index,
}

/// Stage `target` into the repository's index and write it. Returns the
/// index (as written) and the staged paths, relative to the work tree.
///
/// With `write = false` (dry run) the index is changed in memory only; blobs
/// are still written to the object database, which is harmless.
pub fn stage(repo: &Repo, target: &Target, write: bool) -> Result<(Index, Vec<String>)> {
    let mut index = repo
        .git
        .index()
        .map_err(|e| Error::git("cannot read the index", e))?;
    if index.has_conflicts() {
        return Err(Error::Conflicts);
    }
    let staged = stage_into(repo, &mut index, target)?.named;
    if write {
        index.write().map_err(|e| match e.code() {
            ErrorCode::Locked => Error::IndexLocked {
                path: repo.git.path().join("index.lock"),
            },
            _ => Error::git("cannot write the index", e),
        })?;
    }
    Ok((index, staged))
}

/// What [`stage_into`] did.
#[derive(Default)]
pub struct Staging {
    /// The named paths, relative to the work tree (empty for `-a` and the
    /// index).
    pub named: Vec<String>,
    /// The bytes of the files staged by the fast path, by path, with their
    /// blob ids: the diff reads these instead of the object or the file.
    pub contents: std::collections::HashMap<String, Staged>,
}

/// Stage `target` into `index` (in memory).
pub fn stage_into(repo: &Repo, index: &mut Index, target: &Target) -> Result<Staging> {
    let mut staged = Staging::default();
    match target {
        Target::Index => {}
        Target::AllTracked => {
            index
                .update_all(["*"].iter(), None)
                .map_err(|e| Error::git("cannot stage tracked changes", e))?;
        }
        Target::Paths(paths) => {
            let head = repo.git.head().and_then(|h| h.peel_to_tree()).ok();
            for p in paths {
                let rel = repo.relative(p)?;
                if let Some(content) = stage_one(repo, index, head.as_ref(), p, &rel)? {
                    staged.contents.insert(rel.clone(), content);
                }
                staged.named.push(rel);
            }
        }
    }
    Ok(staged)
}

fn stage_one(
    repo: &Repo,
    index: &mut Index,
    head: Option<&git2::Tree<'_>>,
    path: &Path,
    rel: &str,
) -> Result<Option<Staged>> {
    let rel_path = Path::new(rel);
    // git2's get_path panics on an empty path (the work tree's root).
    // Tracked: in the index, or in HEAD (a deletion staged by `git rm` is
    // still a change to commit).
    let tracked = !rel.is_empty()
        && (index.get_path(rel_path, 0).is_some()
            || head.is_some_and(|t| t.get_path(rel_path).is_ok()));
    // A symlink to a directory is a link to stage, not a directory to walk.
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if rel.is_empty() || is_dir {
        // A directory: everything under it, as `git add DIR` does (ignored
        // files are skipped, not errors). Nested repositories are refused.
        if !rel.is_empty() && path.join(".git").exists() {
            return Err(Error::Submodule {
                path: path.to_path_buf(),
            });
        }
        let spec = if rel.is_empty() {
            "*".to_string()
        } else {
            format!("{rel}/*")
        };
        index
            .add_all([spec.as_str()].iter(), git2::IndexAddOption::DEFAULT, None)
            .map_err(|e| Error::git(format!("cannot stage {}", path.display()), e))?;
        index
            .update_all([spec.as_str()].iter(), None)
            .map_err(|e| {
                Error::git(
                    format!("cannot stage deletions under {}", path.display()),
                    e,
                )
            })?;
        return Ok(None);
    }
    if repo.git.find_submodule(rel).is_ok() {
        return Err(Error::Submodule {
            path: path.to_path_buf(),
        });
    }
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            if !tracked && repo.git.status_should_ignore(rel_path).unwrap_or(false) {
                return Err(Error::Ignored {
                    path: path.to_path_buf(),
                });
            }
            // A big plain file: write its blob without deflating it (the
            // background compaction packs it later).
            if let Some(staged) = super::fastblob::try_stage(&repo.git, index, path, rel)? {
                return Ok(Some(staged));
            }
            super::fanout::libgit2_write(|| index.add_path(rel_path))
                .map(|()| None)
                .map_err(|e| Error::git(format!("cannot stage {}", path.display()), e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if tracked {
                index.remove_path(rel_path).map(|()| None).map_err(|e| {
                    Error::git(
                        format!("cannot stage the deletion of {}", path.display()),
                        e,
                    )
                })
            } else {
                Err(Error::NoSuchFile {
                    path: path.to_path_buf(),
                })
            }
        }
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}
