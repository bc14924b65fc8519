//! Journal entries that never conflict (issue 14).
//!
//! Two machines that each write a new entry between two syncs both insert
//! lines at the same place (right under `# Beginning of Notes` in a
//! newest-first journal, at the end in an oldest-first one). A line-based
//! rebase must call that a conflict, although nothing was changed by both:
//! each side only *added*. For such files — and only when **both sides only
//! inserted lines**, neither removing nor changing a single line of the
//! common version — the replay keeps both insertions as whole blocks and
//! goes on. Anything else stays a conflict (refused, nothing changed).
//!
//! Which files: see [`policy`]. The merge itself is git's own (libgit2's
//! xdiff, the code `git merge-file` runs), with union resolution and
//! diff3-level hunks so a block is never split or interleaved with the
//! other (`git merge-file --union --diff3` gives the same bytes; the
//! `journal_merge` tests prove it on generated cases). Its result is then
//! checked here, independently of xdiff, before it is used: both sides'
//! texts must appear in it whole and in order, and no line may appear more
//! often than in the union of both sides' insertions. A result that fails
//! the check is refused like any other conflict.

use std::collections::HashMap;
use std::path::Path;

use git2::{AttrCheckFlags, AttrValue, FileFavor, MergeFileInput, MergeFileOptions, Repository};

/// The `.gitattributes` attribute that turns the merge on or off for a path.
pub const ATTR: &str = "ai-commit-journal";

/// Where new entries go in a journal, and so which of two blocks inserted at
/// the same point comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// New entries on top: the local entry (the one replayed now, which
    /// reaches the shared history last) above the remote's.
    NewestFirst,
    /// New entries at the bottom: the remote's first, then the local one.
    OldestFirst,
    /// `OldestFirst` when both sides only appended at the end of the file,
    /// else `NewestFirst`.
    Auto,
}

/// Why a file's conflict was not merged. The caller reports the conflict
/// as before; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("binary content")]
    Binary,
    #[error("the {0} side removed or changed lines of the common version")]
    NotInsertOnly(&'static str),
    #[error("the merged text did not keep every line exactly once")]
    Unverified,
    #[error("git's merge failed: {0}")]
    Git(String),
}

/// Whether conflicts in `path` (relative to the work tree, `/`-separated)
/// get the insertion merge, and with which layout:
///
/// - `ai-commit-journal` set (or `=newest-first`) in `.gitattributes`: yes,
///   newest first; `ai-commit-journal=oldest-first`: yes, oldest first;
///   `-ai-commit-journal`: never; any other value: auto layout.
/// - Not specified: files the prompt calls journal/prose (`.md`, `.txt`,
///   `.org`, … — [`crate::prompt::template`] under `prompt_kind = "auto"`),
///   auto layout, unless the path has its own `merge` attribute (a merge
///   driver, `-merge`, `merge=union`: the user's choice wins).
pub fn policy(git: &Repository, path: &str) -> Option<Layout> {
    let attr = |name: &str| {
        git.get_attr(Path::new(path), name, AttrCheckFlags::FILE_THEN_INDEX)
            .ok()
            .map(AttrValue::from_string)
    };
    match attr(ATTR) {
        Some(AttrValue::True) | Some(AttrValue::String("newest-first")) => {
            return Some(Layout::NewestFirst)
        }
        Some(AttrValue::String("oldest-first")) => return Some(Layout::OldestFirst),
        Some(AttrValue::False) => return None,
        Some(AttrValue::String(_)) | Some(AttrValue::Bytes(_)) => return Some(Layout::Auto),
        Some(AttrValue::Unspecified) | None => {}
    }
    if !matches!(attr("merge"), Some(AttrValue::Unspecified) | None) {
        return None;
    }
    is_journal(path).then_some(Layout::Auto)
}

/// A journal file as the prompt kinds classify it (one source of truth: the
/// prompt's own choice under `prompt_kind = "auto"`, no user template).
fn is_journal(path: &str) -> bool {
    let cfg = crate::config::Config {
        prompt: None,
        prompt_kind: crate::config::PromptKind::Auto,
        ..Default::default()
    };
    crate::prompt::template(&cfg, &[path.to_string()])
        .is_ok_and(|t| t == crate::prompt::JOURNAL_TEMPLATE)
}

/// Lines with their terminators (a last line without `\n` differs from the
/// same text with one, as it does for git).
fn lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|b| *b == b'\n').collect()
}

/// Whether `small` is a subsequence of `big`: every line of `small`, in
/// order, once each. Greedy matching decides this exactly.
fn is_subsequence(small: &[&[u8]], big: &[&[u8]]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

fn counts<'a>(ls: &[&'a [u8]]) -> HashMap<&'a [u8], usize> {
    let mut m = HashMap::new();
    for l in ls {
        *m.entry(*l).or_insert(0) += 1;
    }
    m
}

/// Merge two versions that each only inserted lines into `base`: `remote`
/// (the branch being replayed onto) and `local` (the commit being replayed).
/// Both insertions are kept as whole blocks; at a point where both inserted,
/// the order follows `layout`. Blocks both sides inserted identically at the
/// same point are kept once (as git does). Refused unless both sides are
/// insert-only and the result passes the line check (module docs).
pub fn merge_insertions(
    base: &[u8],
    remote: &[u8],
    local: &[u8],
    layout: Layout,
) -> Result<Vec<u8>, Refused> {
    if [base, remote, local].iter().any(|t| t.contains(&0)) {
        return Err(Refused::Binary);
    }
    let (b, r, l) = (lines(base), lines(remote), lines(local));
    if !is_subsequence(&b, &r) {
        return Err(Refused::NotInsertOnly("remote"));
    }
    if !is_subsequence(&b, &l) {
        return Err(Refused::NotInsertOnly("local"));
    }
    let layout = match layout {
        Layout::Auto if r.starts_with(&b) && l.starts_with(&b) => Layout::OldestFirst,
        Layout::Auto => Layout::NewestFirst,
        other => other,
    };
    let (top, bottom) = match layout {
        Layout::OldestFirst => (remote, local),
        _ => (local, remote),
    };
    let merged = union_merge(base, top, bottom)?;
    verify(&b, &lines(top), &lines(bottom), &lines(&merged))?;
    Ok(merged)
}

/// git's merge with union resolution: at a point where both sides changed,
/// `top`'s lines then `bottom`'s. diff3 style keeps xdiff at its "eager"
/// level, so conflicting blocks are kept whole rather than refined line by
/// line (which could interleave two entries that share a heading).
fn union_merge(base: &[u8], top: &[u8], bottom: &[u8]) -> Result<Vec<u8>, Refused> {
    let input = |t| {
        let mut i = MergeFileInput::new();
        i.content(t);
        i
    };
    // `git2::merge_file` does not initialise libgit2 itself (most git2
    // calls do): uninitialised, its first call fails with "no error".
    // Creating a buffer runs git2's one-time init.
    drop(git2::Buf::new());
    let mut opts = MergeFileOptions::new();
    opts.favor(FileFavor::Union).style_diff3(true);
    let out = git2::merge_file(&input(base), &input(top), &input(bottom), Some(&mut opts))
        .map_err(|e| Refused::Git(e.message().to_string()))?;
    Ok(out.content().to_vec())
}

/// The guarantee, checked on the result whatever produced it: both sides'
/// texts are in it whole and in order (so is the base, inside each), and
/// no line occurs more often than base + both sides' insertions.
fn verify(
    base: &[&[u8]],
    top: &[&[u8]],
    bottom: &[&[u8]],
    merged: &[&[u8]],
) -> Result<(), Refused> {
    if !is_subsequence(top, merged) || !is_subsequence(bottom, merged) {
        return Err(Refused::Unverified);
    }
    let (cb, ct, cm) = (counts(base), counts(top), counts(bottom));
    let cr = counts(merged);
    let get = |m: &HashMap<&[u8], usize>, k: &[u8]| m.get(k).copied().unwrap_or(0);
    for (line, &n) in &cr {
        let union = get(&ct, line) + get(&cm, line) - get(&cb, line);
        if n > union {
            return Err(Refused::Unverified);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "# Beginning of Notes\n\n## Mon\nold\n";

    #[test]
    fn both_inserted_under_the_marker_keeps_both_newest_first() {
        let remote = "# Beginning of Notes\n\n## Tue\nremote\n\n## Mon\nold\n";
        let local = "# Beginning of Notes\n\n## Wed\nlocal\n\n## Mon\nold\n";
        let m = merge_insertions(
            BASE.as_bytes(),
            remote.as_bytes(),
            local.as_bytes(),
            Layout::Auto,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "# Beginning of Notes\n\n## Wed\nlocal\n\n## Tue\nremote\n\n## Mon\nold\n"
        );
    }

    #[test]
    fn appends_at_the_end_keep_the_oldest_first() {
        let remote = format!("{BASE}remote\n");
        let local = format!("{BASE}local\n");
        let m = merge_insertions(
            BASE.as_bytes(),
            remote.as_bytes(),
            local.as_bytes(),
            Layout::Auto,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(m).unwrap(),
            format!("{BASE}remote\nlocal\n")
        );
    }

    #[test]
    fn a_changed_or_removed_line_is_refused() {
        let remote = "# Beginning of Notes\n\n## Mon\nOLD\n";
        let local = "# Beginning of Notes\n\nnew\n## Mon\nold\n";
        let r = merge_insertions(
            BASE.as_bytes(),
            remote.as_bytes(),
            local.as_bytes(),
            Layout::Auto,
        );
        assert_eq!(r, Err(Refused::NotInsertOnly("remote")));
        let dropped = "# Beginning of Notes\n## Mon\nold\n";
        let r = merge_insertions(
            BASE.as_bytes(),
            local.as_bytes(),
            dropped.as_bytes(),
            Layout::Auto,
        );
        assert_eq!(r, Err(Refused::NotInsertOnly("local")));
        // A last line that gains its newline was changed, as git sees it.
        let r = merge_insertions(b"a", b"a\nb\n", b"c\na", Layout::Auto);
        assert_eq!(r, Err(Refused::NotInsertOnly("remote")));
        assert_eq!(
            merge_insertions(b"a\n", b"a\0\n", b"a\n", Layout::Auto),
            Err(Refused::Binary)
        );
    }

    #[test]
    fn the_check_catches_a_dropped_or_duplicated_line() {
        let l = |s: &'static str| lines(s.as_bytes());
        let (b, t, m) = (l("x\n"), l("a\nx\n"), l("b\nx\n"));
        assert!(verify(&b, &t, &m, &l("a\nb\nx\n")).is_ok());
        assert!(verify(&b, &t, &m, &l("a\nx\n")).is_err(), "b dropped");
        assert!(verify(&b, &t, &m, &l("a\nb\na\nx\n")).is_err(), "a twice");
        assert!(verify(&b, &t, &m, &l("a\nb\nx\nx\n")).is_err(), "x twice");
    }
}
