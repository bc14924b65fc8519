//! From raw model output to a commit message, or the fallback.
//!
//! The old flow committed "Error: …" and Python tracebacks as messages for
//! weeks; so output that *is* an error is refused here, and what remains is
//! cleaned to a subject line (≤ `max_subject`, cut at a word) and an optional
//! wrapped body. The result is never empty.

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

/// Clean model output into a commit message; `Err` when nothing usable is left
/// or the output is an error text.
pub fn sanitize(raw: &str, shape: Shape) -> Result<String, ModelError> {
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
    let subject = cut_at_word(&subject, shape.max_subject);

    let mut message = subject;
    if shape.body {
        let body = clean_body(&lines[1..]);
        if !body.is_empty() {
            message.push_str("\n\n");
            message.push_str(&body);
        }
    }
    Ok(message)
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
/// first one and how many more.
pub fn fallback(template: &str, paths: &[String], max_subject: usize) -> String {
    let file = match paths {
        [] => "files".to_string(),
        [one] => one.clone(),
        [first, rest @ ..] => format!(
            "{first} and {} more file{}",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    };
    let msg = template
        .replace("{file}", &file)
        .replace("{count}", &paths.len().to_string());
    let msg = strip_controls(&msg);
    let mut lines = msg.lines();
    let subject = cut_at_word(lines.next().unwrap_or("").trim(), max_subject);
    let subject = if subject.is_empty() {
        format!("Update {file}")
    } else {
        subject
    };
    let body: Vec<&str> = lines.collect();
    let body = body.join("\n");
    if body.trim().is_empty() {
        subject
    } else {
        format!("{subject}\n\n{}", body.trim())
    }
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
            s("Add notes\n\nMore detail here.").unwrap(),
            "Add notes\n\nMore detail here."
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
            s("Sure! Here's a concise commit message:\nFix typo").unwrap(),
            "Fix typo"
        );
        assert_eq!(s("Commit message: Fix typo").unwrap(), "Fix typo");
        assert_eq!(s("**Commit message:**\n\"Fix typo\"").unwrap(), "Fix typo");
    }

    #[test]
    fn fences_quotes_and_controls_go() {
        assert_eq!(
            s("```\nAdd entry about walking\n```").unwrap(),
            "Add entry about walking"
        );
        assert_eq!(
            s("```text\n\"Add entry\"\n```\nThis message says...").unwrap(),
            "Add entry"
        );
        assert_eq!(s("`Add entry`").unwrap(), "Add entry");
        assert_eq!(s("“Add entry”  ").unwrap(), "Add entry");
        assert_eq!(s("Add\u{1b}[31m entry\u{7}\r").unwrap(), "Add[31m entry");
        assert_eq!(s("# Add entry").unwrap(), "Add entry");
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
        let word = "x".repeat(100);
        assert_eq!(s(&word).unwrap().chars().count(), 72);
    }

    #[test]
    fn body_is_wrapped_and_optional() {
        let raw = format!("Subject\n\n{}", "word ".repeat(40));
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
        assert_eq!(no_body, "Subject");
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
}
