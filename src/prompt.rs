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

use std::fmt::Write as _;

use crate::config::{Config, PromptKind};
use crate::git::diff::{Body, FileDiff, TextDiff};

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
    let kind = match cfg.prompt_kind {
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
    };
    Ok(match kind {
        PromptKind::Code => CODE_TEMPLATE.to_string(),
        _ => JOURNAL_TEMPLATE.to_string(),
    })
}

/// Bytes available for the diff once the template and stats are in.
fn diff_budget(cfg: &Config, fixed: &str) -> usize {
    let limit = (cfg.num_ctx as usize).saturating_sub(cfg.num_predict as usize + SLACK_TOKENS);
    limit.saturating_sub(estimate_tokens(fixed)) * 3
}

/// Build the prompt for a staged diff.
pub fn build(cfg: &Config, template: &str, files: &[FileDiff]) -> String {
    let stats = render_stats(files);
    // A user template without placeholders still gets the change appended.
    let template = if template.contains("{diff}") {
        template.to_string()
    } else {
        format!(
            "{}\n\nFiles changed:\n{{stats}}\n\nDiff:\n{{diff}}\n",
            template.trim_end()
        )
    };
    let fixed = template.replace("{stats}", &stats).replace("{diff}", "");
    let diff = render_diff(files, diff_budget(cfg, &fixed));
    template.replace("{stats}", &stats).replace("{diff}", &diff)
}

/// Build the prompt for the drop-in mode: instruction text + a diff text from
/// stdin (already in the old script's format), cut to fit on a line boundary.
pub fn build_plain(cfg: &Config, instruction: &str, input: &str) -> String {
    let fixed = format!("{}\n\n", instruction.trim_end());
    let budget = diff_budget(cfg, &fixed);
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
