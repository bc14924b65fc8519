//! Message quality (`cargo bench --bench messages`): a corpus of
//! journal entries and code changes, each committed (dry run) by the real
//! `ai-commit` binary against whatever model is served, with automatic
//! checks per case. The figures in BENCHMARKS.md come from here.
//!
//! Model: with `BENCH_HOST` set (e.g. `127.0.0.1:11434`), that
//! Ollama and `BENCH_MODEL` (default `gemma3`); otherwise the
//! tests' loopback server answering each case with a scripted answer of the
//! kind a 135M model gave in issue 10 (junk for most journal cases), so CI
//! measures the sanitizer and the fallback, not a model.
//!
//! Per case: the subject, its source (model | fallback), and checks —
//! `ok`: no junk committed — the subject passes the sanitizer's refusals,
//! or is the generic fallback `Update <files>`;
//! `new`: it names a word of the new entry (or the changed code);
//! `!old`: it names no word of the previous entry; the prompt's estimated
//! tokens now and with the old flow's diff-style prompt (and whether that
//! one showed the previous entry); the wall time of the run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use ai_commit::config::{Config, PromptKind};
use ai_commit::git::{diff, stage, Repo};
use ai_commit::message::{self, Shape};
use ai_commit::prompt::{self, estimate_tokens};
use support::ollama::{FakeOllama, Script};
use support::Sandbox;

/// The entry before the new one in every journal case: a test of "does not
/// describe the previous entry" (the user's complaint).
const PREVIOUS: &str = "## 2025-10-06 09:12\nBurnout, self-care and a long weekend away from screens: I slept, walked, and did not open the laptop once.\n\n";
const PREVIOUS_WORDS: &[&str] = &["burnout", "self-care", "weekend", "screens", "laptop"];

struct Case {
    name: &'static str,
    file: &'static str,
    /// Journal: the new entry, inserted below the marker (newest first).
    /// Code: (old, new) contents.
    change: Change,
    /// Words of the new writing; the subject should name at least one.
    new_words: &'static [&'static str],
    /// What the loopback model answers (issue 10's kinds of answers).
    scripted: &'static str,
}

enum Change {
    Entry(String),
    Code(&'static str, &'static str),
}

fn corpus() -> Vec<Case> {
    let paste: String = (1..=2661)
        .map(|i| {
            format!(
                "[{i:04}] INFO builder: step {i} of the nightly rebuild finished in {} ms\n",
                100 + i % 900
            )
        })
        .collect();
    vec![
        Case {
            name: "prose essay",
            file: "journal.md",
            change: Change::Entry("## 2025-10-13 14:28\n\n# Closing the Reproducibility Stack: GitOps at the App Layer\n\nThe infrastructure was already declared in Nix; what drifted was the app. Today I moved its deploy into a post-receive hook, so a push to the bare repo rebuilds and restarts it.\n\n".into()),
            new_words: &["gitops", "reproducib", "deploy", "hook", "app", "stack"],
            scripted: "+## 2025-10-13 14:28",
        },
        Case {
            name: "shell log",
            file: "journal.md",
            change: Change::Entry("## 2025-10-14 08:02\n\n$ nix build .#app\nerror: hash mismatch in fixed-output derivation\n$ nix flake update\n$ nix build .#app\n\nThe old lock pinned a tarball that upstream re-tagged.\n\n".into()),
            new_words: &["nix", "hash", "lock", "tarball", "re-tagged", "build"],
            scripted: "$ nix build .#app",
        },
        Case {
            name: "code paste",
            file: "journal.md",
            change: Change::Entry("## 2025-10-15 21:40\n\n```python\ndef rotate(xs, k):\n    return xs[k:] + xs[:k]\n```\n\nA one-line rotate beats the loop I wrote last year.\n\n".into()),
            new_words: &["rotate", "loop", "python", "one-line"],
            scripted: "1",
        },
        Case {
            name: "2,661-line paste",
            file: "journal.md",
            change: Change::Entry(format!("## 2025-10-16 07:15\n\nNightly rebuild log, kept for the timing regression.\n\n{paste}\n")),
            new_words: &["nightly", "rebuild", "log", "timing", "regression"],
            scripted: "You write a git commit message for your personal journal and notes",
        },
        Case {
            name: "short thought",
            file: "journal.md",
            change: Change::Entry("## 2025-10-17 06:50\n\nFirst frost on the allotment; the dahlias are done.\n\n".into()),
            new_words: &["frost", "allotment", "dahlias"],
            scripted: "Note the first frost on the allotment",
        },
        Case {
            name: "chat transcript",
            file: "journal.md",
            change: Change::Entry("## 2025-10-18 22:10\n\nMikeLev.in:\n\nWhy does the old configuration keep coming back after a rebuild?\n\nGemini:\n\nBecause the service reads a cached copy from the state directory.\n\n".into()),
            new_words: &["configuration", "cached", "rebuild", "state", "service"],
            scripted: "MikeLev.in:",
        },
        Case {
            name: "front matter",
            file: "journal.md",
            change: Change::Entry("---\ntitle: \"The Phantom of the Old Configuration\"\ndate: 2025-10-19\n---\n\nThe cached copy was in ~/.local/state; deleting it fixed the ghost.\n\n".into()),
            new_words: &["phantom", "configuration", "cached", "ghost"],
            scripted: "Add detailed notes about personal struggles with burnout and self-care",
        },
        Case {
            name: "date heading only",
            file: "journal.md",
            change: Change::Entry("## 2025-10-20 14:37\n\nRewired the study lamp to a smart plug and wrote down which breaker it is on.\n\n".into()),
            new_words: &["lamp", "plug", "breaker", "study", "rewired"],
            scripted: "2025-10-06 14:37",
        },
        Case {
            name: "rust function",
            file: "src/cli.rs",
            change: Change::Code(
                "pub fn parse_args(argv: &[String]) -> usize {\n    let n = argv.len();\n    n\n}\n",
                "pub fn parse_args(argv: &[String]) -> usize {\n    let n = argv.len();\n    n.saturating_sub(1)\n}\n",
            ),
            new_words: &["parse_args", "argument", "args", "off-by-one", "count"],
            scripted: "Fix the argument count in parse_args",
        },
        Case {
            name: "python diff copy",
            file: "tools/report.py",
            change: Change::Code(
                "def total(rows):\n    return sum(r.amount for r in rows)\n",
                "def total(rows):\n    return sum(r.amount for r in rows if not r.void)\n",
            ),
            new_words: &["total", "void", "rows"],
            scripted: "+    return sum(r.amount for r in rows if not r.void)",
        },
        Case {
            name: "config one word",
            file: "config/app.toml",
            change: Change::Code("port = 8080\nworkers = 2\n", "port = 8080\nworkers = 4\n"),
            new_words: &["workers", "app.toml", "config"],
            scripted: "Update",
        },
    ]
}

const JOURNAL_HEAD: &str = "# Journal\n\n# Beginning of Notes\n\n";

fn words_in(subject: &str, words: &[&str]) -> bool {
    let s = subject.to_lowercase();
    words.iter().any(|w| s.contains(w))
}

/// The estimated prompt tokens, now and with the old flow's diff-style
/// prompt, and whether each showed the previous entry.
fn prompt_figures(sb: &Sandbox, file: &str) -> (usize, usize, bool, bool) {
    let repo = Repo::discover(&sb.work).unwrap();
    let target = stage::Target::Paths(vec![sb.work.join(file)]);
    let (index, _) = stage::stage(&repo, &target, true).unwrap();
    let files = diff::staged(&repo, &index, Default::default()).unwrap();
    let cfg = Config::default();
    let paths = vec![file.to_string()];
    let now = prompt::build(&cfg, &prompt::template(&cfg, &paths).unwrap(), &files);
    let old_cfg = Config {
        prompt_kind: PromptKind::Code,
        num_predict: 200,
        ..Config::default()
    };
    let old = prompt::build(&old_cfg, prompt::CODE_TEMPLATE, &files);
    (
        estimate_tokens(&now),
        estimate_tokens(&old),
        words_in(&now, PREVIOUS_WORDS),
        words_in(&old, PREVIOUS_WORDS),
    )
}

fn main() {
    let real = std::env::var("BENCH_HOST").ok();
    let model = std::env::var("BENCH_MODEL").unwrap_or_else(|_| "gemma3".into());
    match &real {
        Some(h) => println!("model: {model} at {h}"),
        None => println!(
            "model: the loopback server, scripted answers (set BENCH_HOST for a real Ollama)"
        ),
    }
    println!(
        "\n{:<18} {:<8} {:<3} {:<3} {:<4} {:>6} {:>6} {:<9} {:>6}  subject",
        "case", "source", "ok", "new", "!old", "tokens", "old", "leak/old", "time"
    );
    let (mut n, mut ok_n, mut new_n, mut notold_n, mut model_n) = (0, 0, 0, 0, 0);
    let (mut leaks, mut old_leaks, mut tokens_sum, mut old_tokens_sum) = (0, 0, 0, 0);
    for case in corpus() {
        let fake = real
            .is_none()
            .then(|| FakeOllama::start(Script::text(case.scripted)));
        let host = real.clone().unwrap_or_else(|| fake.as_ref().unwrap().url());
        let sb = Sandbox::new(&host);
        match &case.change {
            Change::Entry(entry) => {
                sb.seed(case.file, &format!("{JOURNAL_HEAD}{PREVIOUS}"));
                sb.write(case.file, format!("{JOURNAL_HEAD}{entry}{PREVIOUS}"));
            }
            Change::Code(old, new) => {
                sb.seed(case.file, old);
                sb.write(case.file, new);
            }
        }
        let (tokens, old_tokens, leak, old_leak) = prompt_figures(&sb, case.file);
        let t = Instant::now();
        let run = sb.ai(&[
            "--json",
            "--dry-run",
            "--model",
            &model,
            "--timeout",
            "120",
            case.file,
        ]);
        let elapsed = t.elapsed();
        run.ok();
        let j = run.json();
        let msg = j["message"].as_str().unwrap_or_default().to_string();
        let subject = msg.lines().next().unwrap_or_default().to_string();
        let source = j["source"].as_str().unwrap_or_default().to_string();
        let generic = source == "fallback" && subject == format!("Update {}", case.file);
        let passes = generic
            || message::sanitize_in(&subject, Shape::default(), &Default::default()).is_ok();
        leaks += usize::from(leak);
        old_leaks += usize::from(old_leak);
        tokens_sum += tokens;
        old_tokens_sum += old_tokens;
        let new = words_in(&subject, case.new_words);
        let not_old = !words_in(&subject, PREVIOUS_WORDS);
        n += 1;
        ok_n += usize::from(passes);
        new_n += usize::from(new);
        notold_n += usize::from(not_old);
        model_n += usize::from(source == "model");
        let mark = |b: bool| if b { "yes" } else { "NO" };
        println!(
            "{:<18} {:<8} {:<3} {:<3} {:<4} {:>6} {:>6} {:<9} {:>4.0}ms  {}",
            case.name,
            source,
            mark(passes),
            mark(new),
            mark(not_old),
            tokens,
            old_tokens,
            format!(
                "{}/{}",
                if leak { "YES" } else { "no" },
                if old_leak { "yes" } else { "no" }
            ),
            elapsed.as_secs_f64() * 1000.0,
            subject
        );
        if source == "fallback" && std::env::var_os("BENCH_REASONS").is_some() {
            println!("    reason: {}", j["reason"].as_str().unwrap_or_default());
        }
    }
    println!(
        "\n{n} cases: {model_n} model answers kept, {} fallbacks; subjects passing the refusals {ok_n}/{n}, naming the new change {new_n}/{n}, free of the previous entry {notold_n}/{n}",
        n - model_n
    );
    println!(
        "prompts: {tokens_sum} estimated tokens in all (old flow: {old_tokens_sum}); showing the previous entry: {leaks}/{n} (old flow: {old_leaks}/{n})"
    );
}
