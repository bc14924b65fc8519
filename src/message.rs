//! From raw model output to a commit message, or the fallback.
//!
//! The old flow committed "Error: …" and Python tracebacks as messages for
//! weeks; so output that *is* an error is refused here, and what remains is
//! cleaned to a subject line (≤ `max_subject`, cut at a word) and an optional
//! wrapped body. The result is never empty.
//!
//! Small local models also answer with text that is not a message at all: a
//! diff line (`+`, `+## 2025-10-13 14:28`), a number, a date, a speaker label
//! (`MikeLev.in:`), the prompt's own first sentence, or a summary of the
//! *previous* journal entry (issue 10: 10 of 11 answers of a 135M model).
//! [`sanitize_in`] refuses those with [`ModelError::NotAMessage`], naming
//! why, and the run takes the fallback, which [`describe`] makes say what
//! changed: the new journal entry's own title, or the files and functions.

use std::collections::HashSet;

use crate::config::PromptKind;
use crate::git::diff::{Body, FileDiff};
use crate::model::ModelError;

/// Shape of the message.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub max_subject: usize,
    pub body: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            max_subject: 72,
            body: true,
        }
    }
}

const BODY_WIDTH: usize = 72;
const MAX_BODY_LINES: usize = 20;

/// What the model was shown, for telling a message from a copy of the
/// prompt. Built by `prompt::build_full`; empty fields check nothing.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The prompt's instructions: the template without the change.
    pub instructions: String,
    /// Every line of the change the prompt showed, without diff marks.
    pub diff_lines: Vec<String>,
    /// The new writing (added lines), for journals.
    pub added: Vec<String>,
    /// Text of older entries next to the change (the diff's context lines),
    /// for journals: a subject about them describes the wrong entry.
    pub previous: Vec<String>,
}

impl Context {
    /// For a prompt whose parts are unknown (the drop-in `--format plain`
    /// mode): its `+`/`-` lines are the diff.
    pub fn from_plain(prompt: &str) -> Context {
        Context {
            diff_lines: prompt
                .lines()
                .filter(|l| {
                    (l.starts_with('+') && !l.starts_with("+++"))
                        || (l.starts_with('-') && !l.starts_with("---"))
                })
                .map(|l| l[1..].to_string())
                .collect(),
            ..Context::default()
        }
    }
}

/// Clean model output into a commit message; `Err` when nothing usable is left
/// or the output is an error text. No knowledge of the prompt: see
/// [`sanitize_in`].
pub fn sanitize(raw: &str, shape: Shape) -> Result<String, ModelError> {
    sanitize_in(raw, shape, &Context::default())
}

/// [`sanitize`], also refusing answers that are not messages (see the
/// module docs), judged against what the prompt showed.
pub fn sanitize_in(raw: &str, shape: Shape, ctx: &Context) -> Result<String, ModelError> {
    let text = strip_think(raw);
    let text = strip_controls(&text);
    if let Some(excerpt) = looks_like_error(&text) {
        return Err(ModelError::ErrorText { excerpt });
    }
    let text = unfence(&text);
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    // Leading blank lines and a preamble ("Here is a commit message:").
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    if let Some(first) = lines.first().cloned() {
        match strip_preamble(&first) {
            Preamble::WholeLine => {
                lines.remove(0);
            }
            Preamble::Prefix(rest) => lines[0] = rest,
            Preamble::None => {}
        }
    }
    while lines.first().is_some_and(|l| l.trim().is_empty()) {
        lines.remove(0);
    }
    let Some(subject_line) = lines.first() else {
        return Err(ModelError::Empty);
    };
    let subject = clean_subject(subject_line);
    if subject.is_empty() {
        return Err(ModelError::Empty);
    }
    if let Some(why) = refusal(subject_line, &subject, ctx) {
        return Err(ModelError::NotAMessage {
            why,
            excerpt: subject_line.trim().chars().take(80).collect(),
        });
    }
    let subject = cut_at_word(&subject, shape.max_subject);

    let mut message = subject;
    if shape.body {
        let body = clean_body(&lines[1..]);
        // A body that copies the diff (up to 20 lines of it, issue 10) says
        // nothing the commit does not: the subject alone is better.
        let copied = body
            .lines()
            .any(|l| starts_like_diff(l) || is_diff_copy(&norm(l), ctx));
        if !body.is_empty() && !copied {
            message.push_str("\n\n");
            message.push_str(&body);
        }
    }
    Ok(message)
}

/// Fewer words than this is not a message ("+", "1", "MikeLev.in:").
const MIN_WORDS: usize = 3;

/// Why `subject` (cleaned from `raw_line`) is not a commit message, if it
/// is not one.
fn refusal(raw_line: &str, subject: &str, ctx: &Context) -> Option<String> {
    if starts_like_diff(raw_line.trim_start()) {
        return Some("it starts with a diff marker".into());
    }
    if is_date_only(subject) {
        return Some("it is only a date or time".into());
    }
    if !subject.chars().any(char::is_alphabetic) {
        return Some("it has no words".into());
    }
    if subject.ends_with(':') {
        return Some("it ends in a colon: a label, not a message".into());
    }
    // Distinct words: "word word word …" (a model stuck in a loop) is one.
    let distinct: HashSet<String> = subject
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .collect();
    if distinct.len() < MIN_WORDS {
        return Some(format!("fewer than {MIN_WORDS} different words"));
    }
    let n = norm(subject);
    if is_echo(&n, &ctx.instructions) {
        return Some("it repeats the prompt's instructions".into());
    }
    if is_diff_copy(&n, ctx) {
        return Some("it copies a line of the diff".into());
    }
    if about_previous(&n, ctx) {
        return Some("it describes the previous entry, not the new one".into());
    }
    None
}

/// `+x`, `-x` (not a `- ` bullet), `@@`, `+++`/`---` headers.
fn starts_like_diff(line: &str) -> bool {
    line.starts_with('+')
        || line.starts_with("@@")
        || line.starts_with("---")
        || (line.starts_with('-') && !line.starts_with("- "))
}

const MONTHS: &[&str] = &[
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: &[&str] = &[
    "mon",
    "tue",
    "tues",
    "wed",
    "thu",
    "thur",
    "thurs",
    "fri",
    "sat",
    "sun",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// "2025-10-06 14:37", "Monday, 6 October 2025", "2025-10-13T14:28Z": every
/// word a number, a month, a weekday or a time mark.
pub fn is_date_only(s: &str) -> bool {
    let words: Vec<String> = s
        .split(|c: char| c.is_whitespace() || ",;|/()[]".contains(c))
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_ascii_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    // A bare number ("1") is not a date.
    (words.len() >= 2 || s.contains(['-', ':', '/', '.']))
        && words.iter().any(|w| w.chars().any(|c| c.is_ascii_digit()))
        && words.iter().all(|w| {
            let letters: String = w.chars().filter(|c| c.is_alphabetic()).collect();
            letters.is_empty()
                || MONTHS.contains(&letters.as_str())
                || DAYS.contains(&letters.as_str())
                || [
                    "t", "z", "tz", "am", "pm", "utc", "st", "nd", "rd", "th", "h",
                ]
                .contains(&letters.as_str())
        })
}

/// Lowercase words, punctuation dropped: the form lines are compared in.
fn norm(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words that say nothing about a topic; left out of overlap measures.
const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "into", "about", "your", "you", "are",
    "was", "were", "has", "have", "had", "not", "but", "its", "our", "their", "then", "than",
    "what", "when", "which", "who", "will", "would", "can", "all", "any", "more", "some", "one",
    "add", "adds", "added", "update", "updated", "new", "note", "notes", "entry", "entries",
];

/// Topic words: 4+ letters, not a stop word, a plural `s` dropped.
fn content_words(normed: &str) -> Vec<String> {
    normed
        .split(' ')
        .filter(|w| w.chars().count() >= 4 && !STOP_WORDS.contains(w))
        .map(|w| w.strip_suffix('s').unwrap_or(w).to_string())
        .collect()
}

/// Most of the subject's topic words (at least 3 of them) come from the
/// prompt's instructions: "You write a git commit message for your personal
/// journal and notes".
fn is_echo(normed: &str, instructions: &str) -> bool {
    if instructions.is_empty() {
        return false;
    }
    let words = content_words(normed);
    if words.len() < 3 {
        return false;
    }
    let pool: HashSet<String> = content_words(&norm(instructions)).into_iter().collect();
    let hits = words.iter().filter(|w| pool.contains(*w)).count();
    hits * 5 >= words.len() * 4
}

/// The subject is one of the prompt's diff lines, word for word.
fn is_diff_copy(normed: &str, ctx: &Context) -> bool {
    !normed.is_empty() && ctx.diff_lines.iter().any(|l| norm(l) == normed)
}

/// Most of the subject's topic words (at least 2) appear in the older
/// entries next to the change and nowhere in the new writing.
fn about_previous(normed: &str, ctx: &Context) -> bool {
    if ctx.previous.is_empty() {
        return false;
    }
    let words = content_words(normed);
    let old: HashSet<String> = ctx
        .previous
        .iter()
        .flat_map(|l| content_words(&norm(l)))
        .collect();
    let new: HashSet<String> = ctx
        .added
        .iter()
        .flat_map(|l| content_words(&norm(l)))
        .collect();
    let only_old = words
        .iter()
        .filter(|w| old.contains(*w) && !new.contains(*w))
        .count();
    only_old >= 2 && only_old * 2 >= words.len()
}

/// Drop `<think>…</think>` blocks; an unclosed `<think>` swallows the rest
/// (the model was cut off while still reasoning).
fn strip_think(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let Some(open) = find_ci(rest, "<think>").or_else(|| find_ci(rest, "<thinking>")) else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        match find_ci(after, "</think>")
            .map(|i| i + "</think>".len())
            .or_else(|| find_ci(after, "</thinking>").map(|i| i + "</thinking>".len()))
        {
            Some(close) => rest = &after[close..],
            None => break,
        }
    }
    out
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(needle)
}

/// Control characters other than newline and tab, and `\r`, are removed;
/// tabs become spaces.
fn strip_controls(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() => None,
            // Bidi overrides and zero-width characters hide text in `git log`.
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}' => None,
            c => Some(c),
        })
        .collect()
}

/// Output that is an error report rather than a message: returns an excerpt.
fn looks_like_error(s: &str) -> Option<String> {
    let t = s.trim_start();
    let lower = t.to_ascii_lowercase();
    let first_line = t.lines().next().unwrap_or("");
    let is_error = lower.starts_with("error:")
        || lower.starts_with("error ")
        || lower.starts_with("{\"error\"")
        || lower.starts_with("fatal:")
        || lower.starts_with("exception:")
        || lower.starts_with("http error")
        || lower.contains("traceback (most recent call last)")
        || lower.contains("thread 'main' panicked at")
        || first_line.contains("Exception:")
        || first_line.contains("Error: ")
            && first_line
                .split(':')
                .next()
                .is_some_and(|w| !w.contains(' '));
    is_error.then(|| t.chars().take(120).collect())
}

/// If the output holds a fenced block, the message is its content.
fn unfence(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let fences: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("```") || l.trim_start().starts_with("~~~"))
        .map(|(i, _)| i)
        .collect();
    match fences.as_slice() {
        [] => s.to_string(),
        [open, close, ..] => lines[open + 1..*close].join("\n"),
        [only] => {
            // An unclosed fence: keep what follows it (or precedes, if it closes).
            let after = lines[only + 1..].join("\n");
            if after.trim().is_empty() {
                lines[..*only].join("\n")
            } else {
                after
            }
        }
    }
}

enum Preamble {
    None,
    WholeLine,
    Prefix(String),
}

/// "Here is a commit message:", "Sure! Here's …:", "Commit message: Add x".
fn strip_preamble(line: &str) -> Preamble {
    let plain = line
        .trim()
        .trim_matches(|c| c == '*' || c == '#' || c == '_')
        .trim();
    let lower = plain.to_ascii_lowercase();
    let chatty = [
        "here is",
        "here's",
        "sure",
        "certainly",
        "okay",
        "ok,",
        "ok!",
        "below is",
        "this commit message",
    ];
    if chatty.iter().any(|p| lower.starts_with(p))
        && (lower.ends_with(':') || lower.ends_with("message") || lower.ends_with('!'))
    {
        return Preamble::WholeLine;
    }
    for label in [
        "commit message:",
        "commit:",
        "subject:",
        "message:",
        "summary:",
        "title:",
    ] {
        if lower.starts_with(label) {
            let rest = plain[label.len()..]
                .trim()
                .trim_start_matches(['*', '_'])
                .trim();
            return if rest.is_empty() {
                Preamble::WholeLine
            } else {
                Preamble::Prefix(rest.to_string())
            };
        }
    }
    Preamble::None
}

/// Subject: markdown/heading/bullet marks and wrapping quotes removed.
fn clean_subject(line: &str) -> String {
    let mut s = line.trim();
    s = s.trim_start_matches('#').trim_start();
    if let Some(rest) = s.strip_prefix("- ").or_else(|| s.strip_prefix("* ")) {
        s = rest;
    }
    let mut s = s.to_string();
    loop {
        let before = s.len();
        for (open, close) in [
            ("**", "**"),
            ("\"", "\""),
            ("'", "'"),
            ("`", "`"),
            ("“", "”"),
            ("‘", "’"),
            ("«", "»"),
        ] {
            if s.len() >= open.len() + close.len() && s.starts_with(open) && s.ends_with(close) {
                s = s[open.len()..s.len() - close.len()].trim().to_string();
            }
        }
        if s.len() == before {
            break;
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cut to at most `max` characters, at a word boundary when there is one.
pub fn cut_at_word(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let hard: String = s.chars().take(max).collect();
    let cut = match hard.rfind(' ') {
        Some(i) if i >= max / 2 => hard[..i].to_string(),
        _ => hard,
    };
    cut.trim_end_matches([' ', ',', ';', ':', '-', '('])
        .to_string()
}

/// Body: paragraphs kept, each wrapped at 72 columns, bounded in length.
fn clean_body(lines: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let l = line.trim_end();
        if l.trim().is_empty() {
            if out.last().is_some_and(|p| !p.is_empty()) {
                out.push(String::new());
            }
            continue;
        }
        for w in wrap(l, BODY_WIDTH) {
            out.push(w);
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.truncate(MAX_BODY_LINES);
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

fn wrap(line: &str, width: usize) -> Vec<String> {
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    let cont = if line.trim_start().starts_with("- ") || line.trim_start().starts_with("* ") {
        format!("{indent}  ")
    } else {
        indent.clone()
    };
    let mut out = Vec::new();
    let mut cur = indent.clone();
    for word in line.split_whitespace() {
        if cur.trim().is_empty() {
            cur.push_str(word);
        } else if cur.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::replace(&mut cur, format!("{cont}{word}")));
        } else {
            cur.push(' ');
            cur.push_str(word);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

/// Fill the fallback template. `{file}` is the only changed file, or the
/// first one and how many more; `{count}` the number of files.
pub fn fallback(template: &str, paths: &[String], max_subject: usize) -> String {
    fill(template, paths, None, max_subject)
}

/// The fallback message for a change: the user's `fallback_message`
/// template when there is one (`{title}` in it is the description below),
/// else a description of the change ([`describe`]), else "Update {file}".
pub fn fallback_for(
    template: Option<&str>,
    kind: PromptKind,
    files: &[FileDiff],
    max_subject: usize,
) -> String {
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let described = describe(kind, files, max_subject);
    match template {
        Some(t) => fill(t, &paths, described.as_deref(), max_subject),
        None => described
            .unwrap_or_else(|| fill(crate::config::DEFAULT_FALLBACK, &paths, None, max_subject)),
    }
}

fn fill(template: &str, paths: &[String], title: Option<&str>, max_subject: usize) -> String {
    let file = files_phrase(paths);
    let generic = format!("Update {file}");
    let msg = template
        .replace("{file}", &file)
        .replace("{count}", &paths.len().to_string())
        // Last, so a title's own text is never taken for a placeholder.
        .replace("{title}", title.unwrap_or(&generic));
    let msg = strip_controls(&msg);
    let mut lines = msg.lines();
    let subject = cut_at_word(lines.next().unwrap_or("").trim(), max_subject);
    let subject = if subject.is_empty() { generic } else { subject };
    let body: Vec<&str> = lines.collect();
    let body = body.join("\n");
    if body.trim().is_empty() {
        subject
    } else {
        format!("{subject}\n\n{}", body.trim())
    }
}

fn files_phrase(paths: &[String]) -> String {
    match paths {
        [] => "files".to_string(),
        [one] => one.clone(),
        [first, rest @ ..] => format!(
            "{first} and {} more file{}",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}

/// A subject that says what changed, without a model: for a journal, the
/// new entry's own title ([`entry_title`]); for code, the functions or types
/// touched and the files. `None` when nothing better than the file names is
/// known.
pub fn describe(kind: PromptKind, files: &[FileDiff], max_subject: usize) -> Option<String> {
    let texts = files.iter().filter_map(|f| match &f.body {
        Body::Text(t) => Some((f, t)),
        _ => None,
    });
    if kind == PromptKind::Journal {
        let added = texts
            .flat_map(|(_, t)| t.hunks.iter())
            .flat_map(|h| h.lines.iter())
            .filter(|(tag, _)| *tag == '+')
            .map(|(_, l)| l.as_str());
        return entry_title(added, max_subject);
    }
    let mut names: Vec<String> = Vec::new();
    for (_, t) in texts {
        for h in &t.hunks {
            // The definition a change is in: on the changed line itself, or
            // the last one seen above it in the hunk (cheap, no parsing).
            let mut current: Option<String> = None;
            for (tag, line) in &h.lines {
                if let Some(n) = definition_name(line) {
                    current = Some(n);
                }
                if *tag != ' ' {
                    if let Some(n) = &current {
                        if !names.contains(n) {
                            names.push(n.clone());
                        }
                    }
                }
            }
        }
    }
    if names.is_empty() {
        return None;
    }
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    names.truncate(3);
    let subject = format!("Update {} in {}", names.join(", "), files_phrase(&paths));
    Some(cut_at_word(&subject, max_subject))
}

/// The name a line of code defines, if it is a definition: `fn parse(`,
/// `pub async fn run`, `def main(`, `class Foo:`, `func (r *T) Name(`,
/// `local function M.setup(`, `struct Config {`.
pub fn definition_name(line: &str) -> Option<String> {
    const MODIFIERS: &[&str] = &[
        "pub",
        "async",
        "unsafe",
        "const",
        "static",
        "export",
        "default",
        "private",
        "public",
        "protected",
        "extern",
        "local",
        "inline",
        "override",
        "virtual",
        "abstract",
        "final",
    ];
    const KEYWORDS: &[&str] = &[
        "fn",
        "def",
        "function",
        "func",
        "class",
        "struct",
        "enum",
        "trait",
        "interface",
        "impl",
        "mod",
        "module",
    ];
    let mut words = line.split_whitespace();
    let mut w = words.next()?;
    while MODIFIERS.contains(&w) || w.starts_with("pub(") {
        w = words.next()?;
    }
    if !KEYWORDS.contains(&w) {
        return None;
    }
    let mut name = words.next()?;
    if name.starts_with('(') {
        // Go's method receiver: `func (r *T) Name(`.
        while !name.contains(')') {
            name = words.next()?;
        }
        name = words.next()?;
    }
    let name: String = name
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | ':'))
        .collect();
    let name = name.trim_end_matches([':', '.']);
    (!name.is_empty() && name.chars().any(char::is_alphabetic)).then(|| name.to_string())
}

/// The title of a new journal entry: its first meaningful line (date
/// headings, shell prompts and output, `Name:` labels, front-matter keys,
/// fences and rules skipped; a front-matter `title:` taken), cleaned to a
/// subject. `None` when no line makes a message of at least three words.
pub fn entry_title<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    max_subject: usize,
) -> Option<String> {
    let lines: Vec<&str> = lines.into_iter().map(str::trim).collect();
    let mut in_fence = false;
    for (i, &t) in lines.iter().enumerate() {
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || t.is_empty() {
            continue;
        }
        // A heading with nothing under it but another heading is a section
        // of the file ("# Journal", "# Beginning of Notes" in a new file),
        // not the entry's title.
        if t.starts_with('#')
            && lines[i + 1..]
                .iter()
                .find(|l| !l.is_empty())
                .is_some_and(|next| next.starts_with('#'))
        {
            continue;
        }
        let Some(candidate) = title_candidate(t) else {
            continue;
        };
        let title = first_sentence(&candidate, max_subject);
        if refusal(&title, &title, &Context::default()).is_none() {
            return Some(title);
        }
    }
    None
}

/// A line cleaned to a possible title, or `None` for lines that never are.
fn title_candidate(t: &str) -> Option<String> {
    let lower = t.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("title:") {
        let v = t[t.len() - rest.len()..].trim().trim_matches(['"', '\'']);
        return Some(clean_title(v));
    }
    let first = t.split_whitespace().next().unwrap_or("");
    let shell = ["$", "%", "❯", "»", ">>>", "λ", "PS"].contains(&first)
        || (first.len() > 1
            && !first.chars().all(|c| c == '#')
            && (first.ends_with('$') || first.ends_with('#')))
        || (first.contains('@') && first.contains(':'))
        || t.starts_with("In [");
    let label = first.ends_with(':') && !first.starts_with('#');
    let rule = t.chars().all(|c| "-*_=~#".contains(c) || c.is_whitespace());
    if shell
        || label
        || rule
        || t.starts_with("<!--")
        || t.starts_with('|')
        || lower.starts_with("http://")
        || lower.starts_with("https://")
        || looks_like_error(t).is_some()
    {
        return None;
    }
    Some(clean_title(t))
}

/// Markdown marks, leading dates and times, and a final full stop removed.
fn clean_title(t: &str) -> String {
    let mut s = t.trim().trim_start_matches(['#', '>']).trim();
    for bullet in ["- [ ] ", "- [x] ", "- ", "* ", "+ "] {
        if let Some(rest) = s.strip_prefix(bullet) {
            s = rest;
        }
    }
    if let Some((n, rest)) = s.split_once(". ").or_else(|| s.split_once(") ")) {
        if !n.is_empty() && n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()) {
            s = rest;
        }
    }
    let s = s.replace("**", "").replace("__", "").replace('`', "");
    // "2025-10-13 14:28 — Closing the stack" → "Closing the stack".
    let words: Vec<&str> = s.split_whitespace().collect();
    let skip = words
        .iter()
        .take_while(|w| {
            is_date_only(w) || w.chars().all(|c| "-–—|:·,".contains(c)) || {
                let l = w
                    .trim_matches(|c: char| !c.is_alphabetic())
                    .to_ascii_lowercase();
                MONTHS.contains(&l.as_str()) || DAYS.contains(&l.as_str())
            }
        })
        .count();
    let rest = words[skip..].join(" ");
    clean_subject(rest.trim_end_matches(['.', ':', ';', ',']))
}

/// The first sentence when it makes a subject; else the text cut at a word.
fn first_sentence(s: &str, max: usize) -> String {
    for (i, c) in s.char_indices() {
        if matches!(c, '.' | '!' | '?') && s[i + c.len_utf8()..].starts_with(' ') {
            let head = &s[..i];
            if head.split_whitespace().count() >= MIN_WORDS {
                return cut_at_word(head, max);
            }
        }
    }
    cut_at_word(s, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(raw: &str) -> Result<String, ModelError> {
        sanitize(raw, Shape::default())
    }

    #[test]
    fn clean_output_is_kept() {
        assert_eq!(
            s("Add notes on the Rust meetup").unwrap(),
            "Add notes on the Rust meetup"
        );
        assert_eq!(
            s("Add river notes\n\nMore detail here.").unwrap(),
            "Add river notes\n\nMore detail here."
        );
    }

    #[test]
    fn think_blocks_and_preambles_go() {
        assert_eq!(
            s("<think>hmm, journal</think>\nAdd journal entry").unwrap(),
            "Add journal entry"
        );
        assert_eq!(s("<think>never closed").unwrap_err(), ModelError::Empty);
        assert_eq!(
            s("Here is a commit message:\n\nFix typo in intro").unwrap(),
            "Fix typo in intro"
        );
        assert_eq!(
            s("Sure! Here's a concise commit message:\nFix typo in intro").unwrap(),
            "Fix typo in intro"
        );
        assert_eq!(
            s("Commit message: Fix typo in intro").unwrap(),
            "Fix typo in intro"
        );
        assert_eq!(
            s("**Commit message:**\n\"Fix typo in intro\"").unwrap(),
            "Fix typo in intro"
        );
    }

    #[test]
    fn fences_quotes_and_controls_go() {
        assert_eq!(
            s("```\nAdd entry about walking\n```").unwrap(),
            "Add entry about walking"
        );
        assert_eq!(
            s("```text\n\"Add walk entry\"\n```\nThis message says...").unwrap(),
            "Add walk entry"
        );
        assert_eq!(s("`Add walk entry`").unwrap(), "Add walk entry");
        assert_eq!(s("“Add walk entry”  ").unwrap(), "Add walk entry");
        assert_eq!(
            s("Add\u{1b}[31m walk entry\u{7}\r").unwrap(),
            "Add[31m walk entry"
        );
        assert_eq!(s("# Add walk entry").unwrap(), "Add walk entry");
    }

    #[test]
    fn error_texts_are_refused() {
        for raw in [
            "Error: model not found",
            "Traceback (most recent call last):\n  File \"ai.py\", line 3",
            "{\"error\":\"boom\"}",
            "requests.exceptions.ConnectionError: Max retries exceeded",
        ] {
            assert!(matches!(s(raw), Err(ModelError::ErrorText { .. })), "{raw}");
        }
        // A message *about* errors is fine.
        assert_eq!(
            s("Fix error handling in parser").unwrap(),
            "Fix error handling in parser"
        );
    }

    #[test]
    fn empty_is_refused() {
        assert_eq!(s("").unwrap_err(), ModelError::Empty);
        assert_eq!(s("  \n\n ").unwrap_err(), ModelError::Empty);
        assert_eq!(s("```\n```").unwrap_err(), ModelError::Empty);
        assert_eq!(s("\"\"").unwrap_err(), ModelError::Empty);
    }

    #[test]
    fn subject_is_cut_at_a_word() {
        let long = "Add a very long journal entry about the walk along the river and the birds we saw there";
        let out = s(long).unwrap();
        assert!(out.chars().count() <= 72, "{out}");
        assert_eq!(
            out,
            "Add a very long journal entry about the walk along the river and the"
        );
        let word = format!("Add {} here", "x".repeat(100));
        assert_eq!(s(&word).unwrap().chars().count(), 72);
    }

    #[test]
    fn body_is_wrapped_and_optional() {
        let raw = format!("Add the subject\n\n{}", "word ".repeat(40));
        let out = s(&raw).unwrap();
        assert!(out.lines().all(|l| l.chars().count() <= 72), "{out}");
        let no_body = sanitize(
            &raw,
            Shape {
                max_subject: 72,
                body: false,
            },
        )
        .unwrap();
        assert_eq!(no_body, "Add the subject");
    }

    #[test]
    fn fallback_names_the_files() {
        assert_eq!(
            fallback("Update {file}", &["journal.md".into()], 72),
            "Update journal.md"
        );
        assert_eq!(
            fallback(
                "Update {file}",
                &["a.md".into(), "b.md".into(), "c.md".into()],
                72
            ),
            "Update a.md and 2 more files"
        );
        assert_eq!(
            fallback("{count} changed", &["a".into(), "b".into()], 72),
            "2 changed"
        );
    }

    fn journal_ctx() -> Context {
        Context {
            instructions: crate::prompt::JOURNAL_TEMPLATE
                .replace("{stats}", "")
                .replace("{diff}", "")
                .replace("{hint}", ""),
            diff_lines: vec![
                "## 2025-10-13 14:28".into(),
                "Closing the Reproducibility Stack: GitOps at the App Layer".into(),
                "$ nix build .#app".into(),
                "## 2025-10-06 09:12".into(),
                "Burnout, self-care and a long weekend away from screens.".into(),
            ],
            added: vec![
                "## 2025-10-13 14:28".into(),
                "Closing the Reproducibility Stack: GitOps at the App Layer".into(),
                "$ nix build .#app".into(),
            ],
            previous: vec![
                "## 2025-10-06 09:12".into(),
                "Burnout, self-care and a long weekend away from screens.".into(),
            ],
        }
    }

    /// Every junk subject of issue 10 is refused, each with its reason.
    #[test]
    fn non_messages_are_refused_with_the_reason() {
        let ctx = journal_ctx();
        for (raw, why) in [
            ("+", "diff marker"),
            ("1", "no words"),
            ("2025-10-06 14:37", "date or time"),
            ("Monday, 6 October 2025", "date or time"),
            ("+## 2025-10-13 14:28", "diff marker"),
            ("@@ -1,3 +1,9 @@", "diff marker"),
            ("-old line of text here", "diff marker"),
            ("MikeLev.in:", "colon"),
            ("Here are my thoughts on this:", "colon"),
            ("Fix typo", "fewer than 3 different words"),
            ("word word word word", "fewer than 3 different words"),
            (
                "You write a git commit message for your personal journal and notes",
                "instructions",
            ),
            ("$ nix build .#app", "copies a line of the diff"),
            (
                "Add notes about burnout and self-care weekend",
                "previous entry",
            ),
        ] {
            match sanitize_in(raw, Shape::default(), &ctx) {
                Err(ModelError::NotAMessage { why: w, .. }) => {
                    assert!(w.contains(why), "{raw:?}: {w:?} lacks {why:?}")
                }
                other => panic!("{raw:?} was not refused: {other:?}"),
            }
        }
        // The reason reaches the user.
        let e = sanitize_in("1", Shape::default(), &ctx).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a commit message (it has no words)"),
            "{e}"
        );
    }

    #[test]
    fn real_messages_pass_the_same_checks() {
        let ctx = journal_ctx();
        for raw in [
            "Note closing the reproducibility gap with GitOps",
            "Reflect on GitOps at the app layer",
            "- Record the GitOps stack for the app",
            "Fix error handling in parser",
            "Add 3 tests for the 2025 schedule",
        ] {
            assert!(sanitize_in(raw, Shape::default(), &ctx).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn a_body_that_copies_the_diff_is_dropped() {
        let ctx = journal_ctx();
        let raw =
            "Note the GitOps stack\n\n+## 2025-10-13 14:28\n+Closing the Reproducibility Stack";
        assert_eq!(
            sanitize_in(raw, Shape::default(), &ctx).unwrap(),
            "Note the GitOps stack"
        );
        let raw = "Note the GitOps stack\n\nCloses the reproducibility gap.";
        assert_eq!(
            sanitize_in(raw, Shape::default(), &ctx).unwrap(),
            "Note the GitOps stack\n\nCloses the reproducibility gap."
        );
    }

    #[test]
    fn a_new_journal_file_is_titled_by_its_entry_not_its_section_headings() {
        let file = [
            "# Journal",
            "",
            "# Beginning of Notes",
            "",
            "## 2026-11-29",
            "Walked along the river after work; the herons are back.",
        ];
        assert_eq!(
            entry_title(file, 72).as_deref(),
            Some("Walked along the river after work; the herons are back")
        );
        // A dated heading that carries a title is the title.
        let entry = [
            "## 2025-10-13 14:28 — Closing the stack",
            "",
            "Some text here.",
        ];
        assert_eq!(entry_title(entry, 72).as_deref(), Some("Closing the stack"));
    }

    #[test]
    fn entry_titles_skip_dates_prompts_and_labels() {
        let t = |lines: &[&str]| entry_title(lines.iter().copied(), 72);
        assert_eq!(
            t(&[
                "",
                "## 2025-10-13 14:28",
                "MikeLev.in:",
                "$ git status",
                "user@box:~/repo$ nix build",
                "# Closing the Reproducibility Stack: GitOps at the App Layer",
                "More text.",
            ])
            .as_deref(),
            Some("Closing the Reproducibility Stack: GitOps at the App Layer")
        );
        assert_eq!(
            t(&[
                "---",
                "title: \"The Phantom of the Old Configuration\"",
                "date: 2025-10-06",
                "---"
            ])
            .as_deref(),
            Some("The Phantom of the Old Configuration")
        );
        assert_eq!(
            t(&["2026-11-22 — Walked along the river; saw herons. Then home."]).as_deref(),
            Some("Walked along the river; saw herons")
        );
        assert_eq!(
            t(&[
                "```",
                "fn main() {}",
                "```",
                "**Rust meetup** notes from Tuesday"
            ])
            .as_deref(),
            Some("Rust meetup notes from Tuesday")
        );
        let long = "I spent the morning reading about how memory allocators trade fragmentation for speed and whether any of it matters for a text editor";
        let got = t(&[long]).unwrap();
        assert!(got.chars().count() <= 72 && long.starts_with(&got), "{got}");
        assert_eq!(t(&["entry 2", "## 2026-11-22", "+"]), None);
    }

    #[test]
    fn definitions_are_named() {
        for (line, name) in [
            (
                "pub fn render_diff(files: &[FileDiff]) -> String {",
                "render_diff",
            ),
            ("    pub(crate) async fn run(&self) {", "run"),
            ("def parse_args(argv):", "parse_args"),
            ("class Journal:", "Journal"),
            (
                "func (c *Client) Generate(ctx context.Context) error {",
                "Generate",
            ),
            ("local function M.setup(opts)", "M.setup"),
            ("struct Config {", "Config"),
        ] {
            assert_eq!(definition_name(line).as_deref(), Some(name), "{line}");
        }
        assert_eq!(definition_name("let x = fn_call();"), None);
        assert_eq!(definition_name("    x += 1;"), None);
    }
}
