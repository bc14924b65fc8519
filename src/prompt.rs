//! The prompt: a template from `prompts/` (or the user's own) filled with the
//! per-file statistics and a diff that fits the model's context.
//!
//! Budget: the prompt's token estimate must stay within
//! `num_ctx - num_predict`. Tokens are estimated as bytes / 3, deliberately
//! pessimistic (English prose runs ~4 bytes a token; code and non-Latin
//! scripts fewer), so the real count stays under the estimate. When the diff
//! does not fit, each file gets a fair share; inside a file, context lines go
//! first, then removed lines are capped, and added lines (the new writing —
//! what the message is about) fill the rest. Lockfiles and binaries appear as
//! statistics only.
//!
//! Journal/prose changes get another rendering (issue 10): the added blocks
//! only, labelled as the new entry, whole lines (a long paragraph shortened
//! at a sentence end), and the entry's heading offered as a hint. Context
//! lines are left out on purpose: in a newest-first journal the lines after
//! the new entry are the *previous* entry, and small models described that
//! one. The prompt is also held to `journal_budget` tokens: a local model on
//! a CPU needs minutes for the first token of a 7,000-token prompt.

use std::fmt::Write as _;

use crate::config::{Config, PromptKind};
use crate::git::diff::{Body, FileDiff, TextDiff};
use crate::message::{self, Context};

pub const JOURNAL_TEMPLATE: &str = include_str!("../prompts/journal.md");
pub const CODE_TEMPLATE: &str = include_str!("../prompts/code.md");

/// Estimated tokens of `text` (see the module docs).
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(3)
}

/// Longest line pasted into a prompt; minified files must not eat the budget.
const MAX_LINE: usize = 400;
/// Most files listed one per line in the statistics.
const MAX_STAT_FILES: usize = 60;
/// Tokens kept free for the template's own words and the model's framing.
const SLACK_TOKENS: usize = 64;
/// Bytes a file's "[… not shown]" line may take, reserved inside its share.
const TRAILER: usize = 120;
/// A file whose share is smaller than this is listed in the stats only.
const MIN_SHARE: usize = 200;

/// File extensions that get the journal/prose prompt under `prompt_kind = "auto"`.
const PROSE_EXT: &[&str] = &[
    "md", "markdown", "txt", "text", "org", "norg", "rst", "adoc", "asciidoc", "tex", "wiki",
    "journal", "log", "",
];

/// Journal (prose) or code, for these files: `prompt_kind`, or under
/// `auto` journal when every file is a text/prose file.
pub fn kind(cfg: &Config, paths: &[String]) -> PromptKind {
    match cfg.prompt_kind {
        PromptKind::Auto => {
            let prose = !paths.is_empty()
                && paths.iter().all(|p| {
                    let name = p.rsplit('/').next().unwrap_or(p);
                    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
                    PROSE_EXT.contains(&ext.to_ascii_lowercase().as_str())
                });
            if prose {
                PromptKind::Journal
            } else {
                PromptKind::Code
            }
        }
        k => k,
    }
}

/// Pick the template: the user's (`prompt` is a file path or the text
/// itself), else journal or code by the files' types.
pub fn template(cfg: &Config, paths: &[String]) -> Result<String, std::io::Error> {
    if let Some(p) = &cfg.prompt {
        let path = crate::config::expand_home(p);
        if path.is_file() {
            return std::fs::read_to_string(path);
        }
        return Ok(p.clone());
    }
    Ok(match kind(cfg, paths) {
        PromptKind::Code => CODE_TEMPLATE.to_string(),
        _ => JOURNAL_TEMPLATE.to_string(),
    })
}

/// Most estimated tokens a prompt of `kind` may take: what the context
/// leaves once the answer has room, and for journals `journal_budget`.
pub fn token_limit(cfg: &Config, kind: PromptKind) -> usize {
    let ctx = (cfg.num_ctx as usize).saturating_sub(cfg.num_predict as usize + SLACK_TOKENS);
    match kind {
        PromptKind::Journal => ctx.min(cfg.journal_budget as usize),
        _ => ctx,
    }
}

/// Bytes available for the diff once the template and stats are in.
fn diff_budget(cfg: &Config, kind: PromptKind, fixed: &str) -> usize {
    token_limit(cfg, kind).saturating_sub(estimate_tokens(fixed)) * 3
}

/// A prompt and what the sanitizer needs to know about it.
#[derive(Debug, Clone)]
pub struct Built {
    pub text: String,
    /// Journal or code (never `Auto`).
    pub kind: PromptKind,
    pub context: Context,
}

/// Build the prompt for a staged diff.
pub fn build(cfg: &Config, template: &str, files: &[FileDiff]) -> String {
    build_full(cfg, template, files).text
}

/// [`build`], with the kind and the sanitizer's [`Context`].
pub fn build_full(cfg: &Config, template: &str, files: &[FileDiff]) -> Built {
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let kind = kind(cfg, &paths);
    let stats = render_stats(files);
    // A user template without placeholders still gets the change appended.
    let template = if template.contains("{diff}") {
        template.to_string()
    } else if kind == PromptKind::Journal {
        format!(
            "{}\n\nFiles changed:\n{{stats}}\n\nThe new entry:\n{{diff}}\n",
            template.trim_end()
        )
    } else {
        format!(
            "{}\n\nFiles changed:\n{{stats}}\n\nDiff:\n{{diff}}\n",
            template.trim_end()
        )
    };
    let hint = match kind {
        PromptKind::Journal => message::describe(kind, files, cfg.max_subject)
            .map(|t| format!("The entry's own heading or first line: {t}\n"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let instructions = template
        .replace("{stats}", "")
        .replace("{diff}", "")
        .replace("{hint}", "");
    let fixed = template
        .replace("{stats}", &stats)
        .replace("{hint}", &hint)
        .replace("{diff}", "");
    let budget = diff_budget(cfg, kind, &fixed);
    let diff = match kind {
        PromptKind::Journal => render_entry(files, budget),
        _ => render_diff(files, budget),
    };
    let text = template
        .replace("{stats}", &stats)
        .replace("{hint}", &hint)
        .replace("{diff}", &diff);
    Built {
        text,
        kind,
        context: context(files, instructions, kind),
    }
}

/// The sanitizer's view of the change: every diff line, the new writing,
/// and for journals the older text next to it.
fn context(files: &[FileDiff], instructions: String, kind: PromptKind) -> Context {
    let mut ctx = Context {
        instructions,
        ..Context::default()
    };
    for f in files {
        let Body::Text(t) = &f.body else { continue };
        for (tag, line) in t.hunks.iter().flat_map(|h| h.lines.iter()) {
            if line.trim().is_empty() {
                continue;
            }
            ctx.diff_lines.push(line.clone());
            match tag {
                '+' => ctx.added.push(line.clone()),
                ' ' if kind == PromptKind::Journal => ctx.previous.push(line.clone()),
                _ => {}
            }
        }
    }
    ctx
}

/// Longest journal line shown whole; a longer paragraph is shortened at the
/// last sentence end before this.
const MAX_PARAGRAPH: usize = 600;

/// The new writing of a journal change: the added blocks only (blank lines
/// between two added lines kept), whole lines, within `budget` bytes.
pub fn render_entry(files: &[FileDiff], budget: usize) -> String {
    let texts: Vec<(&FileDiff, &TextDiff)> = files
        .iter()
        .filter_map(|f| match &f.body {
            Body::Text(t) => Some((f, t)),
            _ => None,
        })
        .collect();
    let mut lines: Vec<String> = Vec::new();
    for (f, t) in &texts {
        if texts.len() > 1 {
            lines.push(format!("(in {})", f.path));
        }
        let mut blocks = 0;
        for h in &t.hunks {
            let mut in_block = false;
            let mut blanks = 0usize;
            for (tag, line) in &h.lines {
                match tag {
                    '+' => {
                        if !in_block && blocks > 0 {
                            lines.push("[…]".into());
                        }
                        if in_block {
                            lines.extend(std::iter::repeat_n(String::new(), blanks));
                        }
                        blanks = 0;
                        in_block = true;
                        blocks += 1;
                        lines.push(shorten(line));
                    }
                    ' ' if in_block && line.trim().is_empty() => blanks += 1,
                    _ => {
                        in_block = false;
                        blanks = 0;
                    }
                }
            }
        }
    }
    // Leading and trailing blank lines say nothing.
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return "(no new text; lines were only removed; see the file list)".into();
    }
    let mut out = String::new();
    let room = budget.saturating_sub(TRAILER);
    let mut shown = 0;
    for l in &lines {
        if out.len() + l.len() + 1 > room {
            break;
        }
        out.push_str(l);
        out.push('\n');
        shown += 1;
    }
    if shown < lines.len() {
        let _ = writeln!(
            out,
            "[… {} more lines of the new entry not shown]",
            lines.len() - shown
        );
    }
    out.trim_end().to_string()
}

/// A paragraph longer than [`MAX_PARAGRAPH`] cut after its last sentence
/// that fits (else at a word), marked with "[…]".
fn shorten(line: &str) -> String {
    if line.len() <= MAX_PARAGRAPH {
        return line.to_string();
    }
    let mut end = MAX_PARAGRAPH;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let head = &line[..end];
    let sentence = head
        .rmatch_indices(['.', '!', '?'])
        .map(|(i, _)| i + 1)
        .find(|&i| i >= MAX_PARAGRAPH / 3 && head[i..].starts_with(' '));
    let cut = sentence.unwrap_or_else(|| head.rfind(' ').unwrap_or(end));
    format!("{} […]", head[..cut].trim_end())
}

/// Build the prompt for the drop-in mode: instruction text + a diff text from
/// stdin (already in the old script's format), cut to fit on a line boundary.
pub fn build_plain(cfg: &Config, instruction: &str, input: &str) -> String {
    let fixed = format!("{}\n\n", instruction.trim_end());
    let budget = diff_budget(cfg, PromptKind::Code, &fixed);
    let mut out = fixed;
    if input.len() <= budget {
        out.push_str(input);
        return out;
    }
    let mut used = 0;
    let mut omitted = 0usize;
    for line in input.lines() {
        let line = clip(line);
        if omitted == 0 && used + line.len() < budget.saturating_sub(80) {
            out.push_str(&line);
            out.push('\n');
            used += line.len() + 1;
        } else {
            omitted += 1;
        }
    }
    let _ = writeln!(out, "[… {omitted} more lines not shown]");
    out
}

/// `path | +12 -3` lines, bounded.
pub fn render_stats(files: &[FileDiff]) -> String {
    let mut out = String::new();
    for f in files.iter().take(MAX_STAT_FILES) {
        let what = match &f.body {
            Body::Text(_) => format!("+{} -{}", f.insertions, f.deletions),
            Body::Binary { old_size, new_size } => {
                format!("binary, {old_size} -> {new_size} bytes")
            }
            Body::Summary(why) => format!("{why}, +{} -{}", f.insertions, f.deletions),
        };
        let status = match f.status {
            'A' => " (new)",
            'D' => " (deleted)",
            'T' => " (type changed)",
            _ => "",
        };
        let _ = writeln!(out, "{}{status} | {what}", f.path);
    }
    if files.len() > MAX_STAT_FILES {
        let _ = writeln!(out, "… and {} more files", files.len() - MAX_STAT_FILES);
    }
    let ins: usize = files.iter().map(|f| f.insertions).sum();
    let del: usize = files.iter().map(|f| f.deletions).sum();
    let _ = write!(
        out,
        "{} files changed, {ins} insertions(+), {del} deletions(-)",
        files.len()
    );
    out
}

/// The diff of every text file within `budget` bytes.
pub fn render_diff(files: &[FileDiff], budget: usize) -> String {
    let texts: Vec<(&FileDiff, &TextDiff)> = files
        .iter()
        .filter_map(|f| match &f.body {
            Body::Text(t) => Some((f, t)),
            _ => None,
        })
        .collect();
    // Water-filling: small files get all they need, the rest share what is left.
    let needs: Vec<usize> = texts.iter().map(|(f, t)| full_size(f, t)).collect();
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| needs[i]);
    let mut shares = vec![0usize; texts.len()];
    // Room for the "diffs of N more files not shown" line.
    let mut left = budget.saturating_sub(TRAILER);
    for (n, &i) in order.iter().enumerate() {
        let fair = left / (order.len() - n);
        shares[i] = needs[i].min(fair);
        left -= shares[i];
    }
    let mut out = String::new();
    let mut skipped = 0;
    for (i, (f, t)) in texts.iter().enumerate() {
        if needs[i] <= shares[i] {
            render_file(&mut out, f, t, usize::MAX);
        } else if shares[i] >= MIN_SHARE {
            render_file(&mut out, f, t, shares[i] - TRAILER);
        } else {
            skipped += 1;
        }
    }
    if skipped > 0 {
        let _ = writeln!(
            out,
            "[… diffs of {skipped} more files not shown; see the file list]"
        );
    }
    if out.is_empty() {
        out.push_str("(no text changes to show; see the file list)\n");
    }
    out
}

fn clip(line: &str) -> std::borrow::Cow<'_, str> {
    if line.len() <= MAX_LINE {
        return line.into();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} […]", &line[..end]).into()
}

fn header(f: &FileDiff) -> String {
    format!("--- a/{0}\n+++ b/{0}\n", f.path)
}

/// Bytes of the complete rendering (without building it).
fn full_size(f: &FileDiff, t: &TextDiff) -> usize {
    header(f).len()
        + t.hunks
            .iter()
            .map(|h| {
                32 + h
                    .lines
                    .iter()
                    .map(|(_, l)| clip(l).len() + 2)
                    .sum::<usize>()
            })
            .sum::<usize>()
}

/// Render one file; with a finite `budget`, in compact form: no context lines,
/// removed lines capped at a quarter, added lines in the rest, then a count
/// of what was left out.
fn render_file(out: &mut String, f: &FileDiff, t: &TextDiff, budget: usize) {
    let compact = budget != usize::MAX;
    let start = out.len();
    out.push_str(&header(f));
    let removed_cap = budget / 4;
    let (mut removed_used, mut omitted_add, mut omitted_del) = (0usize, 0usize, 0usize);
    for h in &t.hunks {
        let hunk_header = format!(
            "@@ -{},{} +{},{} @@\n",
            h.old_start + 1,
            h.old_len,
            h.new_start + 1,
            h.new_len
        );
        if compact && out.len() - start + hunk_header.len() > budget {
            omitted_add += h.lines.iter().filter(|(t, _)| *t == '+').count();
            omitted_del += h.lines.iter().filter(|(t, _)| *t == '-').count();
            continue;
        }
        out.push_str(&hunk_header);
        for (tag, line) in &h.lines {
            let tag = *tag;
            if compact && tag == ' ' {
                continue;
            }
            let line = clip(line);
            let cost = line.len() + 2;
            let fits = !compact
                || (out.len() - start + cost <= budget
                    && (tag != '-' || removed_used + cost <= removed_cap));
            if fits {
                out.push(tag);
                out.push_str(&line);
                out.push('\n');
                if tag == '-' {
                    removed_used += cost;
                }
            } else if tag == '+' {
                omitted_add += 1;
            } else if tag == '-' {
                omitted_del += 1;
            }
        }
    }
    if omitted_add + omitted_del > 0 {
        let _ = writeln!(
            out,
            "[… {omitted_add} more added and {omitted_del} more removed lines of {} not shown]",
            f.path
        );
    }
}
