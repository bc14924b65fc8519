//! Rendering events and results for a terminal or a pipe.
//!
//! Progress (the streamed message) only on a TTY; colour only on a TTY
//! without `NO_COLOR`. Results go to stdout, warnings and errors to stderr.

use std::io::{IsTerminal, Write};

use ai_commit::git::push::PushReport;
use ai_commit::{Event, MessageSource, Outcome, PushStatus};

use super::args::Format;

pub struct Printer {
    pub format: Format,
    pub quiet: bool,
    progress: bool,
    color: bool,
    streaming: bool,
}

impl Printer {
    pub fn new(format: Format, quiet: bool) -> Printer {
        let tty = std::io::stderr().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer {
            format,
            quiet,
            progress: tty && !quiet && format == Format::Text,
            color,
            streaming: false,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn warn(&mut self, text: &str) {
        self.end_stream();
        eprintln!("{} {text}", self.paint("33", "warning:"));
    }

    pub fn error(&mut self, text: &str) {
        self.end_stream();
        eprintln!("{} {text}", self.paint("31", "error:"));
    }

    fn end_stream(&mut self) {
        if self.streaming {
            eprintln!();
            self.streaming = false;
        }
    }

    pub fn event(&mut self, ev: &Event) {
        match ev {
            Event::Generating { model, .. } if self.progress => {
                eprint!("{} ", self.paint("2", &format!("{model} ›")));
                self.streaming = true;
            }
            Event::Token(t) if self.progress => {
                eprint!("{}", t.replace('\n', " "));
                let _ = std::io::stderr().flush();
            }
            Event::Message { source, .. } => {
                self.end_stream();
                if let MessageSource::Fallback { reason } = source {
                    self.warn(&format!("used the fallback message: {reason}"));
                }
            }
            Event::Pushed(report) => self.remote_output(report),
            Event::PushFailed { reason } => {
                self.warn(&format!("not pushed: {reason}"));
            }

            _ => {}
        }
    }

    fn remote_output(&mut self, report: &PushReport) {
        if self.quiet || self.format != Format::Text {
            return;
        }
        if let Some(s) = &report.synced {
            eprintln!("the remote had moved on; synced first: {s}");
        }
        for line in report.hook_output.lines() {
            eprintln!("remote: {line}");
        }
    }

    /// The result of a commit run.
    pub fn outcome(&mut self, o: &Outcome) {
        self.end_stream();
        match self.format {
            Format::Json => println!("{}", json_ok(o)),
            // A dry run's (and `message`'s) output *is* the message, quiet or not.
            Format::Plain => println!("{}", o.message),
            Format::Text if o.oid.is_none() => println!("{}", o.message),
            Format::Text if self.quiet => {}
            Format::Text => {
                let oid = o.oid.as_deref().unwrap_or_default();
                let short = &oid[..oid.len().min(7)];
                let branch = o.branch.as_deref().unwrap_or("HEAD");
                let source = match &o.source {
                    MessageSource::Model { model } => model.clone(),
                    MessageSource::Fallback { .. } => "fallback".into(),
                    MessageSource::User => "your message".into(),
                };
                let push = match &o.push {
                    PushStatus::Pushed(r) if r.up_to_date => format!("{} up to date", r.remote),
                    PushStatus::Pushed(r) => format!("pushed to {}", r.remote),
                    PushStatus::Failed { .. } => "NOT pushed (kept locally)".into(),
                    PushStatus::Skipped => "not pushed (--no-push)".into(),
                };
                println!(
                    "[{branch} {}] {} ({source}; {push}; {:.2} s)",
                    self.paint("33", short),
                    o.subject(),
                    o.elapsed_ms as f64 / 1000.0
                );
            }
        }
    }
}

pub fn json_ok(o: &Outcome) -> String {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("ok".into(), true.into());
    }
    v.to_string()
}

pub fn json_err(kind: &str, message: &str) -> String {
    serde_json::json!({ "ok": false, "error": { "kind": kind, "message": message } }).to_string()
}
