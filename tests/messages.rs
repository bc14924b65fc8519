//! Messages worth reading from a small local model (issue 10), through the
//! real binary and the loopback Ollama: junk answers are refused and the
//! new entry's own title is committed instead; the journal prompt of a
//! newest-first journal holds no older entry; code falls back to the
//! functions it changed; the user's fallback template still wins; and the
//! pre-warm asks for exactly the model instance that generate uses.

mod support;

use ai_commit::model::Client;
use ai_commit::{Cancel, Config, Settings};
use serde_json::Value;
use support::ollama::{dead_address, FakeOllama, Script};
use support::{Run, Sandbox};

/// The older entry's first lines are within the diff's 3 context lines:
/// that is all of it the sanitizer sees (and the prompt never shows).
const OLDER: &str = "# Journal\n\n# Beginning of Notes\n\n## 2025-10-06 09:12\nBurnout and self-care: a long weekend away from screens.\n";
const NEW_ENTRY: &str = "## 2025-10-13 14:28\n\nMikeLev.in:\n\n# Closing the Reproducibility Stack: GitOps at the App Layer\n\nThe last piece was the app itself.\n\n";
const TITLE: &str = "Closing the Reproducibility Stack: GitOps at the App Layer";

/// A newest-first journal with one older entry; the new one is inserted
/// below the marker line, as `:AICommitJournal` does.
fn journal_run(host: &str, extra: &[&str]) -> (Sandbox, Run) {
    let sb = Sandbox::new(host);
    sb.seed("journal.md", OLDER);
    let text = OLDER.replacen(
        "# Beginning of Notes\n\n",
        &format!("# Beginning of Notes\n\n{NEW_ENTRY}"),
        1,
    );
    sb.write("journal.md", text);
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    args.push("journal.md");
    let run = sb.ai(&args);
    (sb, run)
}

#[test]
fn junk_answers_are_refused_and_the_entry_title_is_committed() {
    // The answers a 135M model gave in issue 10, committed as "model" then.
    for junk in [
        "+",
        "1",
        "2025-10-06 14:37",
        "+## 2025-10-13 14:28",
        "MikeLev.in:",
        "You write a git commit message for your personal journal and notes",
        "The last piece was the app itself.",
        "Add notes about burnout and self-care weekend",
    ] {
        let fake = FakeOllama::start(Script::text(junk));
        let (sb, run) = journal_run(&fake.url(), &[]);
        run.ok();
        let j = run.json();
        assert_eq!(j["source"], "fallback", "{junk:?} was committed: {j}");
        assert_eq!(j["message"], TITLE, "{junk:?}");
        assert_eq!(sb.last_message(&sb.bare), TITLE, "{junk:?}: pushed");
        let reason = j["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("not a commit message"),
            "{junk:?}: {reason}"
        );
        assert!(run.stderr.contains("fallback"), "{}", run.stderr);
    }
}

#[test]
fn a_good_answer_is_kept_and_a_copied_diff_body_is_dropped() {
    let fake = FakeOllama::start(Script::text(
        "Note how GitOps closes the reproducibility gap\n\n+## 2025-10-13 14:28\n+MikeLev.in:\n+The last piece was the app itself.",
    ));
    let (sb, run) = journal_run(&fake.url(), &[]);
    run.ok();
    let j = run.json();
    assert_eq!(j["source"], "model", "{j}");
    assert_eq!(
        sb.last_message(&sb.work),
        "Note how GitOps closes the reproducibility gap"
    );
}

#[test]
fn the_journal_prompt_holds_the_new_entry_and_no_older_one() {
    let fake = FakeOllama::start(Script::text("Note how GitOps closes the gap"));
    let (_sb, run) = journal_run(&fake.url(), &[]);
    run.ok();
    let prompts = fake.prompts();
    let p = prompts[0]["prompt"].as_str().unwrap();
    for old in ["Burnout", "self-care", "2025-10-06", "Beginning of Notes"] {
        assert!(!p.contains(old), "older text {old:?} in the prompt:\n{p}");
    }
    assert!(
        p.contains("BEGIN NEW ENTRY\n## 2025-10-13 14:28\n\nMikeLev.in:\n\n# Closing the Reproducibility Stack: GitOps at the App Layer\n\nThe last piece was the app itself.\nEND NEW ENTRY"),
        "{p}"
    );
    assert!(
        p.contains(&format!("heading or first line: {TITLE}\n")),
        "{p}"
    );
}

#[test]
fn with_ollama_down_the_fallback_is_the_entry_title_and_the_users_template_wins() {
    let (sb, run) = journal_run(&dead_address(), &[]);
    run.ok();
    assert_eq!(run.json()["source"], "fallback");
    assert_eq!(sb.last_message(&sb.work), TITLE);

    // `fallback_message` stays the user's: {title} is the description.
    let sb = Sandbox::new(&dead_address());
    sb.seed("journal.md", OLDER);
    sb.write("journal.md", format!("{OLDER}\n{NEW_ENTRY}"));
    let run = Run::from(
        sb.ai_cmd(&["--json", "journal.md"])
            .env("AI_COMMIT_FALLBACK_MESSAGE", "journal: {title} ({file})")
            .output()
            .unwrap(),
    );
    run.ok();
    assert_eq!(
        sb.last_message(&sb.work),
        "journal: Closing the Reproducibility Stack: GitOps at the App Layer"
    );
    let sb2 = Sandbox::new(&dead_address());
    sb2.seed("journal.md", OLDER);
    sb2.append("journal.md", "one more line of text\n");
    let run = Run::from(
        sb2.ai_cmd(&["--json", "journal.md"])
            .env("AI_COMMIT_FALLBACK_MESSAGE", "Update {file}")
            .output()
            .unwrap(),
    );
    run.ok();
    assert_eq!(sb2.last_message(&sb2.work), "Update journal.md");
}

#[test]
fn a_code_fallback_names_the_changed_functions() {
    let sb = Sandbox::new(&dead_address());
    let code = "use std::env;\n\npub fn parse_args(argv: &[String]) -> usize {\n    let n = argv.len();\n    n\n}\n\nfn helper() {}\n";
    sb.seed("src/cli.rs", code);
    sb.write("src/cli.rs", code.replace("    n\n", "    n + 1\n"));
    let run = sb.ai(&["--json", "src/cli.rs"]);
    run.ok();
    assert_eq!(run.json()["source"], "fallback");
    assert_eq!(sb.last_message(&sb.work), "Update parse_args in src/cli.rs");
    // Nothing to name: the files.
    sb.write("README", "readme text\n");
    sb.git_ok(&sb.work, &["add", "README"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "readme"]);
    sb.write("data.bin", [0u8, 1, 2, 3]);
    let run = sb.ai(&["--json", "data.bin"]);
    run.ok();
    assert_eq!(sb.last_message(&sb.work), "Update data.bin");
}

fn generate_bodies(fake: &FakeOllama) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|(p, _)| p == "/api/generate")
        .map(|(_, b)| b)
        .collect()
}

/// The pre-warm (`Client::preload`, what the plugin calls when a buffer is
/// entered) and the generate call send the same `options` and `keep_alive`:
/// Ollama reloads a model whenever `num_ctx` (or another load option)
/// differs, so any difference makes the first `\g` pay the load again.
#[test]
fn prewarm_sends_exactly_the_generate_requests_options() {
    let fake = FakeOllama::start(Script::text("Note the river walk entry"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for settings in [
        Settings::default(),
        Settings {
            num_ctx: Some(4096),
            num_predict: Some(64),
            temperature: Some(0.7),
            keep_alive: Some("2h".into()),
            stop: Some(vec!["\n\n".into()]),
            ..Settings::default()
        },
    ] {
        let cfg = Config::resolve(Settings {
            host: Some(fake.url()),
            ..settings
        })
        .unwrap();
        let client = Client::new(&cfg).unwrap();
        let before = generate_bodies(&fake).len();
        rt.block_on(async {
            client.preload("gemma3:latest").await.unwrap();
            client
                .generate("gemma3:latest", "a prompt", &Cancel::new(), &mut |_| {})
                .await
                .unwrap();
        });
        let bodies = generate_bodies(&fake);
        let [warm, real] = &bodies[before..] else {
            panic!("two generate calls expected: {bodies:?}");
        };
        assert_eq!(warm["prompt"], "", "the first is the load-only call");
        assert_eq!(real["prompt"], "a prompt");
        assert!(
            warm["options"].is_object(),
            "pre-warm sends options: {warm}"
        );
        assert_eq!(warm["options"], real["options"]);
        assert_eq!(warm["keep_alive"], real["keep_alive"]);
        assert_eq!(real["options"]["num_ctx"], u64::from(cfg.num_ctx), "{real}");
    }
}
