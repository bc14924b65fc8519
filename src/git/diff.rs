//! The staged change (index vs HEAD, or vs the empty tree on an unborn
//! branch), as line diffs ready for a prompt.
//!
//! git2 finds *which* files changed; `similar` computes the line diff of each
//! text file from the two blobs. Doing the line diff ourselves lets the prompt
//! budget render hunks selectively (added lines first) instead of cutting a
//! finished patch text, and decode non-UTF-8 content lossily for the model.

use std::time::{Duration, Instant};

use git2::{Delta, DiffOptions, ErrorCode, FileMode, Index, Oid};
use similar::{Algorithm, DiffOp, DiffTag};

use super::Repo;
use crate::error::{Error, Result};
use crate::event::DiffStats;

/// Files that are summarised, never pasted: they are long, machine-written and
/// tell the model little.
const LOCKFILES: &[&str] = &[
    "Cargo.lock",
    "flake.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "Gemfile.lock",
    "composer.lock",
    "go.sum",
    "mix.lock",
    "pubspec.lock",
    "Package.resolved",
];

/// Lines of context around each change (as `git diff`).
const CONTEXT: usize = 3;
/// Past this, similar returns a coarser (still correct) diff.
const DIFF_DEADLINE: Duration = Duration::from_millis(300);

/// One changed file.
#[derive(Debug)]
pub struct FileDiff {
    pub path: String,
    /// `A`dded, `D`eleted, `M`odified, `T`ype change.
    pub status: char,
    pub insertions: usize,
    pub deletions: usize,
    pub body: Body,
}

#[derive(Debug)]
pub enum Body {
    Text(TextDiff),
    Binary {
        old_size: usize,
        new_size: usize,
    },
    /// Shown as statistics only, with the reason.
    Summary(&'static str),
}

/// A text file's line diff: both sides and the grouped hunks (indices into
/// the line vectors, computed once, rendered as often as the budget needs).
#[derive(Debug)]
pub struct TextDiff {
    old: String,
    new: String,
    pub hunks: Vec<Vec<DiffOp>>,
}

impl TextDiff {
    fn compute(old: String, new: String) -> (TextDiff, usize, usize) {
        let (ins, del, hunks) = {
            let ol = split_lines(&old);
            let nl = split_lines(&new);
            let ops = similar::capture_diff_slices_deadline(
                Algorithm::Myers,
                &ol,
                &nl,
                Some(Instant::now() + DIFF_DEADLINE),
            );
            let (mut ins, mut del) = (0, 0);
            for op in &ops {
                match op.tag() {
                    DiffTag::Insert => ins += op.new_range().len(),
                    DiffTag::Delete => del += op.old_range().len(),
                    DiffTag::Replace => {
                        ins += op.new_range().len();
                        del += op.old_range().len();
                    }
                    DiffTag::Equal => {}
                }
            }
            (ins, del, similar::group_diff_ops(ops, CONTEXT))
        };
        (TextDiff { old, new, hunks }, ins, del)
    }

    /// The lines of both sides (each without its line ending).
    pub fn lines(&self) -> (Vec<&str>, Vec<&str>) {
        (split_lines(&self.old), split_lines(&self.new))
    }
}

/// Lines without their endings (`\n` or `\r\n`).
fn split_lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// Read the staged change.
pub fn staged(repo: &Repo, index: &Index) -> Result<Vec<FileDiff>> {
    let head_tree = match repo.git.head() {
        Ok(h) => Some(
            h.peel_to_tree()
                .map_err(|e| Error::git("cannot read HEAD's tree", e))?,
        ),
        Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(Error::git("cannot read HEAD", e)),
    };
    let mut opts = DiffOptions::new();
    opts.include_typechange(true);
    let diff = repo
        .git
        .diff_tree_to_index(head_tree.as_ref(), Some(index), Some(&mut opts))
        .map_err(|e| Error::git("cannot diff the index against HEAD", e))?;

    let mut files = Vec::new();
    for delta in diff.deltas() {
        let (old, new) = (delta.old_file(), delta.new_file());
        let path = new
            .path()
            .or_else(|| old.path())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let status = match delta.status() {
            Delta::Added => 'A',
            Delta::Deleted => 'D',
            Delta::Typechange => 'T',
            _ => 'M',
        };
        if old.mode() == FileMode::Commit || new.mode() == FileMode::Commit {
            files.push(summary(path, status, "submodule pointer"));
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(&path);
        let old_bytes = read_blob(repo, old.id())?;
        let new_bytes = read_blob(repo, new.id())?;
        let is_binary = |b: &[u8]| b[..b.len().min(8000)].contains(&0);
        if is_binary(&old_bytes) || is_binary(&new_bytes) {
            files.push(FileDiff {
                path,
                status,
                insertions: 0,
                deletions: 0,
                body: Body::Binary {
                    old_size: old_bytes.len(),
                    new_size: new_bytes.len(),
                },
            });
            continue;
        }
        let (text, insertions, deletions) = TextDiff::compute(
            String::from_utf8_lossy(&old_bytes).into_owned(),
            String::from_utf8_lossy(&new_bytes).into_owned(),
        );
        let body = if LOCKFILES.contains(&name) || name.ends_with(".lock") {
            Body::Summary("lockfile")
        } else {
            Body::Text(text)
        };
        files.push(FileDiff {
            path,
            status,
            insertions,
            deletions,
            body,
        });
    }
    Ok(files)
}

fn summary(path: String, status: char, why: &'static str) -> FileDiff {
    FileDiff {
        path,
        status,
        insertions: 0,
        deletions: 0,
        body: Body::Summary(why),
    }
}

fn read_blob(repo: &Repo, id: Oid) -> Result<Vec<u8>> {
    if id.is_zero() {
        return Ok(Vec::new());
    }
    let blob = repo
        .git
        .find_blob(id)
        .map_err(|e| Error::git(format!("cannot read blob {id}"), e))?;
    Ok(blob.content().to_vec())
}

pub fn stats(files: &[FileDiff]) -> DiffStats {
    DiffStats {
        files: files.len(),
        insertions: files.iter().map(|f| f.insertions).sum(),
        deletions: files.iter().map(|f| f.deletions).sum(),
    }
}
