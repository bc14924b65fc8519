//! The staged change (index vs HEAD, or vs the empty tree on an unborn
//! branch), as line diffs ready for a prompt.
//!
//! git2 finds *which* files changed; `similar` computes the line diff of each
//! text file from the two blobs. Doing the line diff ourselves lets the prompt
//! budget render hunks selectively (added lines first) instead of cutting a
//! finished patch text, and decode non-UTF-8 content lossily for the model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::{Delta, FileMode, Index, Oid};
use similar::{Algorithm, DiffOp, DiffTag};

use super::fastblob::{self, Staged};
use super::pieces::Pieces;
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

/// A text file's line diff, as hunks with their lines (owned, so the large
/// file contents can be dropped once the diff is computed).
#[derive(Debug)]
pub struct TextDiff {
    pub hunks: Vec<Hunk>,
}

#[derive(Debug)]
pub struct Hunk {
    /// 0-based first line and line count on each side.
    pub old_start: usize,
    pub old_len: usize,
    pub new_start: usize,
    pub new_len: usize,
    /// `' '` context, `'-'` removed, `'+'` added, in display order.
    pub lines: Vec<(char, String)>,
}

impl TextDiff {
    /// Diff two texts by lines. Identical leading and trailing lines (all of
    /// a 10 MB journal but the new entry) are skipped by a byte comparison
    /// before anything is decoded or split, keeping `CONTEXT` lines of them.
    /// `known`: that comparison's result, the common prefix and suffix in
    /// bytes, when staging already made it (see [`fastblob::Compared`]).
    fn compute(
        old: &Pieces,
        new: &Pieces,
        known: Option<(usize, usize)>,
    ) -> (TextDiff, usize, usize) {
        let (start, lines_before) = common_head(old, new, known.map(|k| k.0));
        let (old_end, new_end) = common_tail(old, new, start, known.map(|k| k.1));
        let old_mid = old.range(start, start + old_end);
        let old_mid = String::from_utf8_lossy(&old_mid);
        let new_mid = new.range(start, start + new_end);
        let new_mid = String::from_utf8_lossy(&new_mid);
        let ol = split_lines(&old_mid);
        let nl = split_lines(&new_mid);
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
        let hunks = similar::group_diff_ops(ops, CONTEXT)
            .into_iter()
            .filter_map(|group| hunk(&group, &ol, &nl, lines_before))
            .collect();
        (TextDiff { hunks }, ins, del)
    }
}

/// Where the two sides start to differ, backed up to a line start and then
/// `CONTEXT` lines more: (byte offset, lines before it). Everything before
/// the difference is the same on both sides, so it is read from `new`.
fn common_head(old: &Pieces, new: &Pieces, prefix: Option<usize>) -> (usize, usize) {
    // A given prefix never reaches past either version (it can't, unless
    // the bytes it was found in were not these).
    let p = prefix.map_or_else(
        || old.common_prefix(new),
        |p| p.min(old.len()).min(new.len()),
    );
    if p == old.len() && old.len() == new.len() {
        return (0, 0); // identical (a mode change): nothing to trim into
    }
    let line_start = |end: usize| new.rposition(b'\n', end).map_or(0, |i| i + 1);
    let mut cut = line_start(p);
    for _ in 0..CONTEXT {
        if cut == 0 {
            break;
        }
        cut = line_start(cut - 1);
    }
    (cut, new.count(b'\n', cut))
}

/// Lengths of `old` and `new` from `start` on without their common tail, cut
/// just after a newline inside that tail and `CONTEXT` lines further on.
fn common_tail(old: &Pieces, new: &Pieces, start: usize, suffix: Option<usize>) -> (usize, usize) {
    let (old_len, new_len) = (old.len() - start, new.len() - start);
    let max = old_len.min(new_len);
    let s = suffix.map_or_else(|| old.common_suffix(new, max), |s| s.min(max));
    // Keep whole lines: skip to just after the first newline of the tail
    // (the same bytes on both sides).
    let tail = new.len() - s;
    let mut keep = tail;
    for _ in 0..=CONTEXT {
        match new.position(b'\n', keep) {
            Some(i) => keep = i + 1,
            None => return (old_len, new_len),
        }
    }
    let trim = s - (keep - tail);
    (old_len - trim, new_len - trim)
}

/// One hunk; `offset` is the number of lines trimmed before the diffed part.
fn hunk(group: &[DiffOp], ol: &[&str], nl: &[&str], offset: usize) -> Option<Hunk> {
    let (first, last) = (group.first()?, group.last()?);
    let (o, n) = (first.old_range().start, first.new_range().start);
    let mut lines = Vec::new();
    for op in group {
        let mut push =
            |tag: char, src: &[&str]| lines.extend(src.iter().map(|l| (tag, (*l).to_string())));
        match op.tag() {
            DiffTag::Equal => push(' ', &ol[op.old_range()]),
            DiffTag::Delete => push('-', &ol[op.old_range()]),
            DiffTag::Insert => push('+', &nl[op.new_range()]),
            DiffTag::Replace => {
                push('-', &ol[op.old_range()]);
                push('+', &nl[op.new_range()]);
            }
        }
    }
    Some(Hunk {
        old_start: offset + o,
        old_len: last.old_range().end - o,
        new_start: offset + n,
        new_len: last.new_range().end - n,
        lines,
    })
}

/// Lines without their endings (`\n` or `\r\n`).
fn split_lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// Work done ahead of time for one path, while the caller stages.
#[derive(Debug)]
pub struct Prepared {
    /// The HEAD blob that was read (the diff is valid only against it).
    old_id: Oid,
    old_bytes: Pieces,
    /// `old_bytes` are the checked loose object that staging compared the
    /// new version with (see [`fastblob::Compared`]), not another copy.
    stored: bool,
    /// The diff of HEAD against the work-tree file, with the file's size and
    /// mtime when it was read; `None` when it could differ from the staged
    /// blob (see [`verbatim`]).
    work: Option<(u64, i64, FileDiff)>,
}

/// Prepared work by path (see [`prefetch`]).
pub type Prefetched = HashMap<String, Prepared>;

/// Read the HEAD versions of `paths` on another thread while the caller
/// stages: reading (inflating) a large blob is a slow part of the diff. For
/// a small file the thread also diffs it against the work tree, which
/// [`staged_from`] uses only after git's stat check confirms the index holds
/// what was read; a big file is diffed against the bytes its staging read
/// (see [`Staging::contents`](super::stage::Staging)), which are exact and
/// spare reading it twice. Any failure just means "not prepared".
pub fn prefetch(git_dir: PathBuf, paths: Vec<String>) -> std::thread::JoinHandle<Prefetched> {
    std::thread::spawn(move || {
        let mut out = Prefetched::new();
        let Ok(git) = git2::Repository::open(&git_dir) else {
            return out;
        };
        let Ok(tree) = git.head().and_then(|h| h.peel_to_tree()) else {
            return out;
        };
        let Some(workdir) = git.workdir().map(Path::to_path_buf) else {
            return out;
        };
        let objects = git.commondir().join("objects");
        for p in paths {
            let Ok(entry) = tree.get_path(Path::new(&p)) else {
                continue;
            };
            let (old_bytes, stored) = match fastblob::read_stored(&objects, entry.id()) {
                Some(bytes) => (bytes, true),
                None => match git.find_blob(entry.id()) {
                    Ok(blob) => (Pieces::from(blob.content().to_vec()), false),
                    Err(_) => continue,
                },
            };
            let small = std::fs::symlink_metadata(workdir.join(&p))
                .is_ok_and(|m| m.len() < fastblob::FAST_MIN_BYTES);
            let work = small.then(|| verbatim(&git, &workdir, &p)).flatten().map(
                |(size, mtime, new_bytes)| {
                    (
                        size,
                        mtime,
                        file_diff(p.clone(), 'M', &old_bytes, &Pieces::from(new_bytes), None),
                    )
                },
            );
            out.insert(
                p,
                Prepared {
                    old_id: entry.id(),
                    old_bytes,
                    stored,
                    work,
                },
            );
        }
        out
    })
}

/// Read the staged change: HEAD (the empty tree on an unborn branch)
/// against `index`, every path.
pub fn staged(repo: &Repo, index: &Index, prefetched: Prefetched) -> Result<Vec<FileDiff>> {
    let head = match repo.git.head() {
        Ok(h) => Some(
            h.peel_to_commit()
                .map_err(|e| Error::git("cannot read HEAD's commit", e))?
                .id(),
        ),
        Err(e)
            if e.code() == git2::ErrorCode::UnbornBranch
                || e.code() == git2::ErrorCode::NotFound =>
        {
            None
        }
        Err(e) => return Err(Error::git("cannot read HEAD", e)),
    };
    staged_from(repo, head, index, None, prefetched, &Default::default())
}

/// Read the staged change: `base` (a commit; None: the empty tree) against
/// `index`, limited to `pathspec` (see [`super::commit::diff`]).
pub fn staged_from(
    repo: &Repo,
    base: Option<Oid>,
    index: &Index,
    pathspec: Option<&[String]>,
    prefetched: Prefetched,
    contents: &HashMap<String, Staged>,
) -> Result<Vec<FileDiff>> {
    let mut prefetched = prefetched;
    let head_tree = base
        .map(|b| {
            repo.git
                .find_commit(b)
                .and_then(|c| c.tree())
                .map_err(|e| Error::git("cannot read HEAD's tree", e))
        })
        .transpose()?;
    let diff = super::commit::diff(&repo.git, head_tree.as_ref(), index, pathspec)?;

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
        let prepared = prefetched.remove(&path).filter(|p| p.old_id == old.id());
        let staged_stat = index
            .get_path(Path::new(&path), 0)
            .map(|e| (u64::from(e.file_size), i64::from(e.mtime.seconds())));
        let (old_bytes, old_stored) = match prepared {
            Some(Prepared {
                work: Some((size, mtime, mut diff)),
                ..
            }) if new.mode() != FileMode::Link
                && staged_stat == Some((size & 0xFFFF_FFFF, mtime)) =>
            {
                diff.status = status;
                files.push(diff);
                continue;
            }
            Some(p) => (p.old_bytes, p.stored),
            None => (Pieces::from(read_blob(repo, old.id())?), false),
        };
        if let Some((content, compared)) = contents
            .get(&path)
            .filter(|s| s.id == new.id())
            .and_then(|s| Some((s.content.as_ref()?, s.compared)))
        {
            // Staging compared these bytes with the version it replaced
            // (its loose object, mapped unchecked); that holds for this diff
            // if it starts from the same blob read from that same file,
            // checked — not from another copy (a pack) of a damaged one.
            let known = compared
                .filter(|c| old_stored && c.old_id == old.id())
                .map(|c| (c.prefix, c.suffix));
            files.push(file_diff(path, status, &old_bytes, content, known));
            continue;
        }
        let new_bytes = match (new.mode(), verbatim(&repo.git, &repo.workdir, &path)) {
            (FileMode::Blob | FileMode::BlobExecutable, Some((size, mtime, bytes)))
                if staged_stat == Some((size & 0xFFFF_FFFF, mtime)) =>
            {
                bytes
            }
            _ => read_blob(repo, new.id())?,
        };
        files.push(file_diff(
            path,
            status,
            &old_bytes,
            &Pieces::from(new_bytes),
            None,
        ));
    }
    Ok(files)
}

/// Classify and diff one file's two versions (`known`: see
/// [`TextDiff::compute`]).
fn file_diff(
    path: String,
    status: char,
    old: &Pieces,
    new: &Pieces,
    known: Option<(usize, usize)>,
) -> FileDiff {
    let is_binary = |b: &Pieces| b.range(0, 8000).contains(&0);
    if is_binary(old) || is_binary(new) {
        return FileDiff {
            path,
            status,
            insertions: 0,
            deletions: 0,
            body: Body::Binary {
                old_size: old.len(),
                new_size: new.len(),
            },
        };
    }
    let (text, insertions, deletions) = TextDiff::compute(old, new, known);
    let name = path.rsplit('/').next().unwrap_or(&path);
    let body = if LOCKFILES.contains(&name) || name.ends_with(".lock") {
        Body::Summary("lockfile")
    } else {
        Body::Text(text)
    };
    FileDiff {
        path,
        status,
        insertions,
        deletions,
        body,
    }
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

/// A work-tree file's bytes with its size and mtime, when staging it stores
/// exactly these bytes: a regular file, no `filter`, `ident` or
/// `working-tree-encoding` attribute, and no CR (so no line-ending
/// conversion applies). Paired with git's stat check against the index entry
/// (size and mtime recorded by staging), this lets the diff skip inflating
/// the blob just written. The diff only feeds the prompt; the commit always
/// uses the index.
fn verbatim(git: &git2::Repository, workdir: &Path, path: &str) -> Option<(u64, i64, Vec<u8>)> {
    let file = workdir.join(path);
    let meta = std::fs::symlink_metadata(&file).ok()?;
    if !meta.is_file() {
        return None;
    }
    let flags = git2::AttrCheckFlags::FILE_THEN_INDEX;
    for attr in ["filter", "ident", "working-tree-encoding"] {
        match git.get_attr(Path::new(path), attr, flags) {
            Ok(None) => {}
            Ok(Some(v)) if git2::AttrValue::from_string(Some(v)) == git2::AttrValue::False => {}
            _ => return None,
        }
    }
    #[cfg(unix)]
    let mtime = {
        use std::os::unix::fs::MetadataExt;
        meta.mtime()
    };
    #[cfg(not(unix))]
    let mtime = 0;
    let bytes = std::fs::read(&file).ok()?;
    if bytes.contains(&b'\r') || bytes.len() as u64 != meta.len() {
        return None;
    }
    Some((meta.len(), mtime, bytes))
}

fn read_blob(repo: &Repo, id: Oid) -> Result<Vec<u8>> {
    if id.is_zero() {
        return Ok(Vec::new());
    }
    let blob = repo.git.find_blob(id).map_err(|e| {
        Error::git(
            format!("cannot read blob {id} (run `git fsck` to check the repository)"),
            e,
        )
    })?;
    Ok(blob.content().to_vec())
}

pub fn stats(files: &[FileDiff]) -> DiffStats {
    DiffStats {
        files: files.len(),
        insertions: files.iter().map(|f| f.insertions).sum(),
        deletions: files.iter().map(|f| f.deletions).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Flat = Vec<(usize, usize, usize, usize, Vec<(char, String)>)>;

    /// The trimmed diff must equal the diff of the whole texts.
    fn reference(old: &str, new: &str) -> Flat {
        let (ol, nl) = (split_lines(old), split_lines(new));
        let ops = similar::capture_diff_slices(Algorithm::Myers, &ol, &nl);
        similar::group_diff_ops(ops, CONTEXT)
            .into_iter()
            .filter_map(|g| hunk(&g, &ol, &nl, 0))
            .map(|h| (h.old_start, h.old_len, h.new_start, h.new_len, h.lines))
            .collect()
    }

    /// `known`: hand the byte comparison in, as staging does.
    fn trimmed(old: &str, new: &str, known: bool) -> Flat {
        let (old, new) = (
            Pieces::from(old.as_bytes().to_vec()),
            Pieces::from(new.as_bytes().to_vec()),
        );
        let known = known.then(|| (old.common_prefix(&new), old.common_suffix(&new, usize::MAX)));
        TextDiff::compute(&old, &new, known)
            .0
            .hunks
            .into_iter()
            .map(|h| (h.old_start, h.old_len, h.new_start, h.new_len, h.lines))
            .collect()
    }

    #[test]
    fn trimming_common_head_and_tail_changes_nothing() {
        let base: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let cases: Vec<(String, String)> = vec![
            (base.clone(), format!("{base}appended\n")),
            (base.clone(), format!("prepended\n{base}")),
            (
                base.clone(),
                base.replace("line 100\n", "line one hundred\n"),
            ),
            (
                base.clone(),
                base.replace("line 5\n", "").replace("line 190\n", "x\n"),
            ),
            (base.clone(), base.trim_end().to_string()),
            (base.clone(), format!("{}no newline", base)),
            (String::new(), base.clone()),
            (base.clone(), String::new()),
            ("a\nb\n".into(), "a\nb\n".into()),
            // The common head and tail overlap.
            ("x\nx\nx\n".into(), "x\nx\nx\nx\n".into()),
            ("ab\nab\nab\n".into(), "ab\n".into()),
            ("same prefix x\n".into(), "same prefix y\n".into()),
            ("l1\r\nl2\r\n".into(), "l1\r\nl2 changed\r\n".into()),
        ];
        for (old, new) in cases {
            for known in [false, true] {
                assert_eq!(
                    trimmed(&old, &new, known),
                    reference(&old, &new),
                    "{old:?} -> {new:?} (comparison known: {known})"
                );
            }
        }
    }
}
