//! Every model scenario of SPEC §4/§9 through the real binary, against the
//! loopback Ollama server: the exact final message, and the commit both in
//! the work repo and in the bare remote.

mod support;

use std::time::{Duration, Instant};

use support::ollama::{dead_address, FakeOllama, Script};
use support::{Run, Sandbox};

/// The fallback for the journal below: the new entry's own first line
/// (issue 10; it was "Update journal.md").
const FALLBACK: &str = "Walked along the river; saw herons";

struct Case {
    sb: Sandbox,
    fake: Option<FakeOllama>,
    run: Run,
}

/// A journal with history, a new entry appended, then `ai-commit journal.md`.
fn run_journal(fake: Option<FakeOllama>, host: &str, extra: &[&str]) -> Case {
    let sb = Sandbox::new(host);
    sb.seed(
        "journal.md",
        "# Beginning of Notes\n\nOld entry about nothing.\n",
    );
    sb.append(
        "journal.md",
        "\n## 2026-11-22\nWalked along the river; saw herons.\n",
    );
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    args.push("journal.md");
    let run = sb.ai(&args);
    Case { sb, fake, run }
}

fn with_script(script: Script, extra: &[&str]) -> Case {
    let fake = FakeOllama::start(script);
    let url = fake.url();
    run_journal(Some(fake), &url, extra)
}

/// The run committed `expected` (from the model or the fallback), and pushed it.
fn assert_committed(c: &Case, expected: &str, source: &str) -> serde_json::Value {
    c.run.ok();
    let j = c.run.json();
    assert_eq!(j["message"], expected, "stderr: {}", c.run.stderr);
    assert_eq!(j["source"], source, "{j}");
    assert_eq!(c.sb.last_message(&c.sb.work), expected);
    assert_eq!(
        c.sb.last_message(&c.sb.bare),
        expected,
        "pushed to the bare repo"
    );
    assert_eq!(c.sb.head(&c.sb.work), c.sb.head(&c.sb.bare));
    assert_eq!(j["push"]["status"], "pushed");
    c.sb.fsck_remote();
    j
}

fn assert_fallback(c: &Case, reason_has: &str) {
    let j = assert_committed(c, FALLBACK, "fallback");
    let reason = j["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(reason_has),
        "reason {reason:?} lacks {reason_has:?}"
    );
    assert!(
        c.run.stderr.contains("fallback"),
        "the reason is shown: {}",
        c.run.stderr
    );
}

#[test]
fn clean_stream_becomes_the_message() {
    let c = with_script(
        Script::tokens(&["Add ", "notes on ", "the river ", "walk"]),
        &[],
    );
    let j = assert_committed(&c, "Add notes on the river walk", "model");
    assert_eq!(
        j["model"], "gemma3:latest",
        "gemma3 resolved against /api/tags"
    );
    // The prompt carries the new entry, not the whole file, plus the wire
    // options.
    let fake = c.fake.as_ref().unwrap();
    let prompts = fake.prompts();
    assert_eq!(prompts.len(), 1);
    let p = &prompts[0];
    let text = p["prompt"].as_str().unwrap();
    assert!(
        text.contains(
            "BEGIN NEW ENTRY\n## 2026-11-22\nWalked along the river; saw herons.\nEND NEW ENTRY"
        ),
        "{text}"
    );
    assert!(!text.contains("Old entry about nothing"), "{text}");
    assert!(text.contains("journal.md | +3 -0"), "{text}");
    assert_eq!(p["stream"], true);
    assert_eq!(p["model"], "gemma3:latest");
    assert_eq!(p["options"]["num_ctx"], 8192);
    assert_eq!(p["options"]["num_predict"], 120);
    assert!(
        p["options"]["stop"]
            .as_array()
            .is_some_and(|s| s.contains(&serde_json::json!("\n+++ b/"))),
        "{p}"
    );
    assert!(p["keep_alive"].is_string());
}

#[test]
fn think_blocks_are_dropped() {
    let c = with_script(
        Script::tokens(&[
            "<think>",
            "The user wrote about herons",
            "</think>\n\n",
            "Note herons on the river walk",
        ]),
        &[],
    );
    assert_committed(&c, "Note herons on the river walk", "model");
}

#[test]
fn thinking_fields_are_ignored() {
    let c = with_script(
        Script::thinking(&["Let me see", " the diff"], &["Add river walk entry"]),
        &[],
    );
    assert_committed(&c, "Add river walk entry", "model");
}

#[test]
fn preamble_is_dropped() {
    let c = with_script(
        Script::tokens(&["Here is a commit message", ":\n\n", "Add river walk entry"]),
        &[],
    );
    assert_committed(&c, "Add river walk entry", "model");
}

#[test]
fn fences_and_quotes_are_dropped() {
    let c = with_script(Script::text("```\n\"Add river walk entry\"\n```"), &[]);
    assert_committed(&c, "Add river walk entry", "model");
}

#[test]
fn error_text_from_the_model_is_never_a_message() {
    let c = with_script(
        Script::text("Error: model requires more system memory (5.6 GiB) than is available"),
        &[],
    );
    assert_fallback(&c, "is an error, not a commit message");
}

#[test]
fn traceback_text_is_never_a_message() {
    let tb = "Traceback (most recent call last):\n  File \"ai.py\", line 12, in <module>\nrequests.exceptions.ConnectionError: refused";
    let c = with_script(Script::text(tb), &[]);
    assert_fallback(&c, "is an error, not a commit message");
}

#[test]
fn empty_output_uses_the_fallback() {
    let c = with_script(Script::tokens(&[]), &[]);
    assert_fallback(&c, "empty message");
}

#[test]
fn unknown_model_names_ollama_pull() {
    let c = with_script(Script::text("unused"), &["--model", "llama9"]);
    assert_fallback(&c, "ollama pull llama9");
    assert!(
        c.fake.as_ref().unwrap().prompts().is_empty(),
        "no generate call for a model that is not pulled"
    );
}

#[test]
fn http_404_from_generate_names_ollama_pull() {
    // /api/tags lists the model but generate says it is gone (deleted meanwhile).
    let c = with_script(
        Script::error(
            404,
            "model \"gemma3:latest\" not found, try pulling it first",
        ),
        &[],
    );
    assert_fallback(&c, "ollama pull gemma3");
}

#[test]
fn http_500_uses_the_fallback_with_the_servers_words() {
    let c = with_script(
        Script::error(500, "llama runner process has terminated: signal: killed"),
        &[],
    );
    assert_fallback(&c, "HTTP 500: llama runner process has terminated");
}

#[test]
fn mid_stream_error_line_is_not_lost() {
    let c = with_script(
        Script::tokens(&["Add ", "river"]).mid_stream_error("out of memory"),
        &[],
    );
    assert_fallback(&c, "mid-stream: out of memory");
}

#[test]
fn garbage_lines_are_a_protocol_error() {
    let c = with_script(
        Script::tokens(&["Add ", "entry"]).garbage("<html>502 Bad Gateway</html>"),
        &[],
    );
    assert_fallback(&c, "does not speak Ollama's protocol");
}

#[test]
fn lines_split_across_chunks_are_reassembled() {
    let script = Script::tokens(&["Add ", "notes ", "on the ", "river ", "walk"])
        .split_every(7)
        .delay(Duration::from_millis(2));
    let c = with_script(script, &[]);
    assert_committed(&c, "Add notes on the river walk", "model");
}

#[test]
fn utf8_split_across_chunks_is_kept_intact() {
    let msg = "Füge Notizen über Reiher hinzu ✓ — 日本語 😀";
    let pieces: Vec<&str> = vec!["Füge ", "Notizen über ", "Reiher hinzu ✓ — ", "日本語 😀"];
    // 3-byte chunks cut through nearly every multi-byte character.
    let c = with_script(
        Script::tokens(&pieces)
            .split_every(3)
            .delay(Duration::from_millis(1)),
        &[],
    );
    assert_committed(&c, msg, "model");
}

#[test]
fn slow_stream_completes() {
    let script =
        Script::tokens(&["Add ", "river ", "walk ", "entry"]).delay(Duration::from_millis(250));
    let c = with_script(script, &["--timeout", "20"]);
    assert_committed(&c, "Add river walk entry", "model");
}

#[test]
fn hanging_stream_hits_the_total_timeout_and_still_commits() {
    let started = Instant::now();
    let c = with_script(
        Script::tokens(&["Add ", "river"]).then_hang(),
        &["--timeout", "1.5"],
    );
    assert_fallback(&c, "did not answer in time");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout fired ({:?})",
        started.elapsed()
    );
}

#[test]
fn endless_stream_is_capped() {
    let c = with_script(Script::endless("word "), &["--timeout", "30"]);
    // Output capped client-side (else the 30 s timeout would be the
    // reason), and "word word …" is then refused as a non-message.
    assert_fallback(&c, "fewer than 3 different words");
}

#[test]
fn cut_stream_before_done_uses_the_fallback() {
    let c = with_script(Script::tokens(&["Add ", "river ", "walk"]).cut(), &[]);
    assert_fallback(&c, "ended before it was done");
}

#[test]
fn server_down_uses_the_fallback_and_says_so() {
    let c = run_journal(None, &dead_address(), &[]);
    assert_fallback(&c, "cannot reach Ollama");
    assert!(
        c.run.stderr.contains("ollama serve"),
        "says what to do: {}",
        c.run.stderr
    );
}

#[test]
fn ollama_host_without_scheme_works() {
    let fake = FakeOllama::start(Script::text("Add river walk entry"));
    let host = fake.addr.to_string(); // "127.0.0.1:PORT", as OLLAMA_HOST is often written
    let c = run_journal(Some(fake), &host, &[]);
    assert_committed(&c, "Add river walk entry", "model");
}

#[test]
fn prompt_holds_the_diff_not_the_whole_file() {
    // Code keeps its diff context (journals do not: see tests/messages.rs).
    let fake = FakeOllama::start(Script::text("Add river walk entry"));
    let sb = Sandbox::new(&fake.url());
    let old: String = (1..=300).map(|i| format!("old line {i}\n")).collect();
    sb.seed("notes.rs", &old);
    sb.append("notes.rs", "new entry about herons\n");
    sb.ai(&["notes.rs"]).ok();
    let prompts = fake.prompts();
    let text = prompts[0]["prompt"].as_str().unwrap();
    assert!(text.contains("+new entry about herons"), "{text}");
    assert!(
        text.contains(" old line 300"),
        "context around the change is kept"
    );
    assert!(
        !text.contains("old line 5\n"),
        "far-away lines are not sent"
    );
}

#[test]
fn first_token_timeout_is_separate_from_the_total() {
    let fake = FakeOllama::start(Script::tokens(&[]).then_hang());
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "a\n");
    sb.append("journal.md", "b\n");
    let r = sb
        .ai_cmd(&["--json", "--timeout", "60", "journal.md"])
        .env("AI_COMMIT_FIRST_TOKEN_TIMEOUT", "1")
        .output()
        .unwrap();
    let r = support::Run::from(r);
    r.ok();
    let j = r.json();
    assert_eq!(j["source"], "fallback");
    let reason = j["reason"].as_str().unwrap();
    assert!(
        reason.contains("the first token") && reason.contains("first_token_timeout"),
        "{reason}"
    );
}

#[test]
fn ctrl_c_cancels_the_model_call_and_commits_nothing() {
    let fake = FakeOllama::start(Script::tokens(&["Add "]).then_hang());
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "a\n");
    sb.append("journal.md", "b\n");
    let child = sb
        .ai_cmd(&["--timeout", "60", "journal.md"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the generate request is in flight, then interrupt.
    let started = Instant::now();
    while fake.prompts().is_empty() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let r = support::Run::from(child.wait_with_output().unwrap());
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        r.stderr.contains("cancelled") && r.stderr.contains("stay staged"),
        "{}",
        r.stderr
    );
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"])
            .trim(),
        "journal.md"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Run ai-commit under a pseudo-terminal (util-linux `script`), returning what the terminal showed.
fn on_tty(sb: &Sandbox, args: &str, no_color: bool) -> String {
    let cmd = format!("{} {args}", support::bin().display());
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .current_dir(&sb.work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &sb.home)
        .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("XDG_CONFIG_HOME", sb.home.join(".config"))
        .env("OLLAMA_HOST", &sb.ollama)
        .env("TERM", "xterm");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tokens_stream_on_a_tty_only_and_no_color_is_honoured() {
    let fake = FakeOllama::start(
        Script::tokens(&["Add ", "river ", "walk"]).delay(Duration::from_millis(5)),
    );
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "a\n");
    sb.append("journal.md", "b\n");
    let screen = on_tty(&sb, "journal.md", false);
    assert!(
        screen.contains("gemma3:latest ›") && screen.contains("Add river walk"),
        "{screen}"
    );
    assert!(screen.contains("\x1b["), "colour on a TTY: {screen:?}");
    sb.append("journal.md", "c\n");
    let screen = on_tty(&sb, "journal.md", true);
    assert!(screen.contains("gemma3:latest ›"), "{screen}");
    assert!(!screen.contains("\x1b["), "NO_COLOR: {screen:?}");
}

#[test]
fn loopback_ollama_is_never_sent_through_a_proxy() {
    let fake = FakeOllama::start(Script::text("Add river walk entry"));
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "a\n");
    sb.append("journal.md", "b\n");
    let dead = dead_address();
    let r = sb
        .ai_cmd(&["--json", "journal.md"])
        .env("http_proxy", &dead)
        .env("HTTP_PROXY", &dead)
        .env("all_proxy", &dead)
        .env("ALL_PROXY", &dead)
        .output()
        .unwrap();
    let j = support::Run::from(r).ok().json();
    assert_eq!(j["source"], "model", "{j}");
    assert_eq!(fake.prompts().len(), 1);
}

#[test]
fn https_ollama_works_with_the_systems_trust_and_says_so_when_untrusted() {
    let (fake, ca) = FakeOllama::start_tls(Script::text("Add river walk entry"));
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "a\n");
    let ca_file = sb.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    // Trusted (a private CA, as SSL_CERT_FILE names it): the model answers over TLS.
    sb.append("journal.md", "b\n");
    let r = sb
        .ai_cmd(&["--json", "journal.md"])
        .env("SSL_CERT_FILE", &ca_file)
        .output()
        .unwrap();
    let j = support::Run::from(r).ok().json();
    assert_eq!(j["source"], "model", "{j}");
    assert_eq!(fake.prompts().len(), 1);
    // Untrusted: the fallback, with a reason about certificates, not "start Ollama".
    sb.append("journal.md", "c\n");
    let empty = sb.dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let r = sb
        .ai_cmd(&["--json", "journal.md"])
        .env("SSL_CERT_FILE", &empty)
        .output()
        .unwrap();
    let j = support::Run::from(r).ok().json();
    assert_eq!(j["source"], "fallback");
    let reason = j["reason"].as_str().unwrap();
    assert!(
        reason.contains("TLS connection") && reason.contains("SSL_CERT_FILE"),
        "{reason}"
    );
    assert_eq!(
        fake.prompts().len(),
        1,
        "no prompt went to an untrusted server"
    );
}

/// Something accepts connections but never answers (a stuck server, or not
/// Ollama at all): the listing of models times out, the commit happens with
/// the fallback, and the reason says what is wrong there — not "use a
/// smaller model".
#[test]
fn a_server_that_accepts_but_never_answers_is_named_as_such() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("http://{}", listener.local_addr().unwrap());
    // Hold every connection open, say nothing (ends with the test process).
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let sb = Sandbox::new(&host);
    sb.seed(
        "journal.md",
        "# Beginning of Notes\n\nOld entry about nothing.\n",
    );
    sb.append(
        "journal.md",
        "\n## 2026-11-22\nWalked along the river; saw herons.\n",
    );
    let run = support::Run::from(
        sb.ai_cmd(&["--json", "journal.md"])
            .env("AI_COMMIT_CONNECT_TIMEOUT", "1")
            .output()
            .expect("ai-commit runs"),
    );
    run.ok();
    let j = run.json();
    assert_eq!(j["source"], "fallback", "{j}");
    let reason = j["reason"].as_str().unwrap();
    assert!(
        reason.contains("listing models")
            && reason.contains("does not answer")
            && !reason.contains("smaller model"),
        "{reason}"
    );
    assert_eq!(sb.last_message(&sb.bare), FALLBACK);
}
