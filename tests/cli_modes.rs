//! The CLI's other modes: the ai.py drop-in, `message`, dry runs, `--json`,
//! `--edit`, `--no-push`, the prepare-commit-msg hook, `doctor`, and config.

mod support;

use std::io::Write;
use std::process::Stdio;

use support::ollama::{dead_address, FakeOllama, Script};
use support::{bin, incompressible, Sandbox};

const MSG: &str = "Add river walk entry";

fn seeded(script: Script) -> (FakeOllama, Sandbox) {
    let fake = FakeOllama::start(script);
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "# Beginning of Notes\n\nfirst\n");
    (fake, sb)
}

fn plain(sb: &Sandbox, args: &[&str], stdin: &str) -> support::Run {
    let mut cmd = sb.ai_cmd(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    support::Run::from(child.wait_with_output().unwrap())
}

const OLD_STYLE_INPUT: &str = "COMMIT STATISTICS:\n journal.md | 2 ++\n 1 file changed, 2 insertions(+)\n\nDETAILED CHANGES:\ndiff --git a/journal.md b/journal.md\n+## 2026-11-22\n+Walked along the river.\n";

#[test]
fn drop_in_plain_mode_prints_only_the_message() {
    let (fake, sb) = seeded(Script::tokens(&["Here is the message:\n", MSG]));
    let r = plain(
        &sb,
        &[
            "--format",
            "plain",
            "--prompt",
            "Write a commit message for this diff.",
        ],
        OLD_STYLE_INPUT,
    );
    r.ok();
    assert_eq!(r.stdout, format!("{MSG}\n"));
    let prompt = fake.prompts()[0]["prompt"].as_str().unwrap().to_string();
    assert!(
        prompt.starts_with("Write a commit message for this diff.\n\nCOMMIT STATISTICS:"),
        "{prompt}"
    );
    assert!(prompt.contains("+Walked along the river."));
    assert_eq!(
        sb.subjects(&sb.work),
        vec!["Seed"],
        "plain mode never commits"
    );
}

#[test]
fn drop_in_plain_mode_failure_prints_nothing_on_stdout() {
    // The model unreachable, or answering error text: a failure, never a message.
    let (_down, mut down) = seeded(Script::text(MSG));
    down.ollama = dead_address();
    let (_err, err) = seeded(Script::text("Error: something broke"));
    for (sb, says) in [
        (&down, "cannot reach Ollama"),
        (&err, "is an error, not a commit message"),
    ] {
        let r = plain(
            sb,
            &["--format", "plain", "--prompt", "Describe."],
            OLD_STYLE_INPUT,
        );
        assert_eq!(r.code, 5);
        assert_eq!(r.stdout, "");
        assert!(r.stderr.contains(says), "{}", r.stderr);
    }
    let r = plain(&err, &["--format", "plain"], "");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no diff on stdin"));
}

#[test]
fn plain_mode_bounds_a_huge_stdin() {
    let (fake, sb) = seeded(Script::text(MSG));
    let huge: String = (0..60_000)
        .map(|i| format!("+line {i} of a giant paste\n"))
        .collect();
    plain(&sb, &["--format", "plain", "--prompt", "Describe."], &huge).ok();
    let prompt = fake.prompts()[0]["prompt"].as_str().unwrap().to_string();
    assert!(
        prompt.len() / 3 <= 8192 - 200,
        "prompt of {} bytes fits num_ctx",
        prompt.len()
    );
    assert!(prompt.contains("more lines not shown"));
}

#[test]
fn message_subcommand_describes_the_staged_diff_without_committing() {
    let (_fake, sb) = seeded(Script::text(MSG));
    sb.append("journal.md", "new\n");
    sb.git_ok(&sb.work, &["add", "journal.md"]);
    let r = sb.ai(&["message"]);
    r.ok();
    assert_eq!(r.stdout.trim(), MSG);
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"])
            .trim(),
        "journal.md"
    );
}

#[test]
fn dry_run_stages_nothing_and_commits_nothing() {
    let (_fake, sb) = seeded(Script::text(MSG));
    sb.append("journal.md", "new\n");
    let r = sb.ai(&["--dry-run", "journal.md"]);
    r.ok();
    assert_eq!(r.stdout.trim(), MSG);
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"]),
        "",
        "index untouched"
    );
}

#[test]
fn json_result_has_everything_a_script_needs() {
    let (_fake, sb) = seeded(Script::text(MSG));
    sb.append("journal.md", "new\nlines\n");
    let j = sb.ai(&["--json", "journal.md"]).ok().json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["oid"].as_str().unwrap(), sb.head(&sb.work));
    assert_eq!(j["branch"], "main");
    assert_eq!(j["message"], MSG);
    assert_eq!(j["source"], "model");
    assert_eq!(j["paths"][0], "journal.md");
    assert_eq!(j["stats"]["insertions"], 2);
    assert_eq!(j["push"]["status"], "pushed");
    assert!(j["elapsed_ms"].is_u64());
    // Errors are JSON too.
    let r = sb.ai(&["--json", "journal.md"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.json()["error"]["kind"], "nothing_to_commit");
}

#[test]
fn no_push_commits_locally_only() {
    let (_fake, sb) = seeded(Script::text(MSG));
    sb.append("journal.md", "new\n");
    let r = sb.ai(&["--no-push", "journal.md"]);
    r.ok();
    assert!(r.stdout.contains("not pushed (--no-push)"), "{}", r.stdout);
    assert_eq!(sb.subjects(&sb.work), vec![MSG, "Seed"]);
    assert_eq!(sb.subjects(&sb.bare), vec!["Seed"]);
}

#[test]
fn text_result_line_names_oid_subject_push_and_time() {
    let (_fake, sb) = seeded(Script::text(MSG));
    sb.append("journal.md", "new\n");
    let r = sb.ai(&["journal.md"]);
    r.ok();
    let short = &sb.head(&sb.work)[..7];
    assert!(
        r.stdout.starts_with(&format!(
            "[main {short}] {MSG} (gemma3:latest; pushed to origin; "
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.trim_end().ends_with(" s)"));
    assert_eq!(r.stderr, "", "no progress noise when not on a TTY");
}

#[test]
fn edit_opens_the_editor_and_an_empty_message_aborts() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let editor = sb.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/^Add river walk entry$/Add heron sighting/' \"$1\"\n",
    )
    .unwrap();
    let empty = sb.dir.path().join("empty.sh");
    std::fs::write(&empty, "#!/bin/sh\n: > \"$1\"\n").unwrap();
    for f in [&editor, &empty] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    sb.append("journal.md", "herons\n");
    let r = sb
        .ai_cmd(&["--json", "--edit", "journal.md"])
        .env("GIT_EDITOR", &editor)
        .output()
        .unwrap();
    let r = support::Run::from(r);
    r.ok();
    assert_eq!(r.json()["source"], "user");
    assert_eq!(sb.last_message(&sb.work), "Add heron sighting");

    sb.append("journal.md", "more\n");
    let r = support::Run::from(
        sb.ai_cmd(&["--edit", "journal.md"])
            .env("GIT_EDITOR", &empty)
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("aborted"), "{}", r.stderr);
    assert_eq!(sb.subjects(&sb.work), vec!["Add heron sighting", "Seed"]);
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"])
            .trim(),
        "journal.md",
        "stays staged"
    );
}

#[test]
fn hook_install_fills_in_plain_git_commit_and_never_overwrites_a_foreign_hook() {
    let (_fake, sb) = seeded(Script::text(MSG));
    // Without ai-commit on PATH the hook would step aside: installing it
    // says so.
    let r = sb
        .ai_cmd(&["hook", "install"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(r.status.success());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("ai-commit is not on PATH, so the hook does nothing"),
        "{stderr}"
    );
    let hook = sb.work.join(".git/hooks/prepare-commit-msg");
    assert!(std::fs::read_to_string(&hook)
        .unwrap()
        .contains("installed by ai-commit"));
    // Re-running updates our own hook; with ai-commit on PATH, no warning.
    let on_path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = sb
        .ai_cmd(&["hook", "install"])
        .env("PATH", &on_path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&r.stdout).starts_with("updated"));
    assert!(
        !String::from_utf8_lossy(&r.stderr).contains("not on PATH"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );

    // Plain `git commit` with ai-commit on PATH gets the model's message.
    sb.append("journal.md", "hook\n");
    sb.git_ok(&sb.work, &["add", "journal.md"]);
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let out = std::process::Command::new("git")
        .current_dir(&sb.work)
        .env("PATH", path)
        .env("HOME", &sb.home)
        .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("OLLAMA_HOST", &sb.ollama)
        .env("GIT_EDITOR", "true")
        .args(["commit", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sb.last_message(&sb.work), MSG);

    std::fs::write(&hook, "#!/bin/sh\necho mine\n").unwrap();
    let r = sb.ai(&["hook", "install"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("not written by ai-commit"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
}

/// `ai-commit status | head -1`: a reader that went away ends the run
/// quietly (141, as git), not with a panic and a backtrace.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_quietly() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = sb
        .ai_cmd(&["status"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Backup targets in doctor: a mirror's `{name}` filled in; a command
/// missing from PATH fails, unless the target is skipped anyway (its disk
/// is not mounted), where it is a warning that says both.
#[test]
fn doctor_names_backup_targets_as_they_run() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let cfg = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&cfg).unwrap();
    let mirrors = sb.dir.path().join("mirrors");
    std::fs::create_dir_all(&mirrors).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!(
            "[backup]\n\
             [[backup.targets]]\nmirror = \"{}/{{name}}.git\"\n\
             [[backup.targets]]\ncommand = [\"no-such-backup-tool\"]\nrequire_mount = \"/nonexistent-mount\"\n",
            mirrors.display()
        ),
    )
    .unwrap();
    let r = sb.ai(&["doctor"]);
    let name = sb.work.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.stdout
            .contains(&format!("mirror {}/{name}.git", mirrors.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "command no-such-backup-tool: skipped while /nonexistent-mount is not mounted; \
             no-such-backup-tool is not found on PATH either"
        ),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("FAIL backup"), "{}", r.stdout);
    // Mounted (no requirement), the same missing command is a failure.
    std::fs::write(
        cfg.join("config.toml"),
        "[backup]\n[[backup.targets]]\ncommand = [\"no-such-backup-tool\"]\n",
    )
    .unwrap();
    let r = sb.ai(&["doctor"]);
    assert!(
        r.stdout.contains("FAIL backup")
            && r.stdout
                .contains("no-such-backup-tool is not found on PATH"),
        "{}",
        r.stdout
    );
}

/// Without a remote, status says so and shows no ahead/behind; `backup`
/// without targets names the config file actually read.
#[test]
fn status_without_a_remote_and_backup_without_targets_say_what_is_missing() {
    let (_fake, sb) = seeded(Script::text(MSG));
    sb.git_ok(&sb.work, &["remote", "remove", "origin"]);
    let r = sb.ai(&["status"]);
    r.ok();
    assert!(!r.stdout.contains("ahead 0, behind 0"), "{}", r.stdout);
    let own = sb.dir.path().join("my-config.toml");
    std::fs::write(&own, "model = \"gemma3\"\n").unwrap();
    let r = sb
        .ai_cmd(&["backup"])
        .env("AI_COMMIT_CONFIG", &own)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains(&format!("add [[backup.targets]] to {}", own.display())),
        "{stderr}"
    );
}

/// Options before a command make it a file name: the error says so.
#[test]
fn options_before_a_command_get_a_hint() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let r = sb.ai(&["--json", "status"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("If you meant the `status` command, put options after it, e.g. `ai-commit status --json`"),
        "{msg}"
    );
    // A plain missing file gets no such hint.
    let r = sb.ai(&["-q", "nosuch.md"]);
    assert!(!r.stderr.contains("If you meant"), "{}", r.stderr);
}

/// The first `n` lines of doctor's warning that starts with `head`.
fn warning_lines<'a>(out: &'a str, head: &str, n: usize) -> Vec<&'a str> {
    let at = out
        .find(&format!("WARN {head}"))
        .unwrap_or_else(|| panic!("WARN {head:?} in {out}"));
    out[at..].lines().take(n).collect()
}

#[test]
fn doctor_reports_each_part() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let r = sb.ai(&["doctor"]);
    r.ok();
    for want in [
        "ok   ollama",
        "Ollama 0.12.6",
        "ok   model      gemma3:latest is pulled",
        "ok   identity   Journal Writer",
        "ok   remote",
        "(bare, refs/heads/main)",
    ] {
        assert!(r.stdout.contains(want), "{want:?} in {}", r.stdout);
    }
    // The remote is `../remote.git`: shown where it is, not via the work tree.
    let bare = sb.bare.canonicalize().unwrap();
    assert!(
        r.stdout
            .contains(&format!("main → {} (bare", bare.display())),
        "{}",
        r.stdout
    );
    let r = sb.ai(&["doctor", "--model", "mistral"]);
    assert!(
        r.stdout.contains("WARN model") && r.stdout.contains("ollama pull mistral"),
        "{}",
        r.stdout
    );
    let (_f, mut sb) = seeded(Script::text(MSG));
    sb.ollama = dead_address();
    let r = sb.ai(&["doctor"]);
    assert!(
        r.stdout.contains("WARN ollama") && r.stdout.contains("fallback"),
        "{}",
        r.stdout
    );
}

/// What follows "last compaction: " in `out`.
fn last_compaction(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once("last compaction: "))
        .map(|(_, r)| r.to_string())
        .unwrap_or_else(|| panic!("no \"last compaction: \" in {out}"))
}

/// "12 s ago, ok (…)" → the result after the age, checking the age is a
/// recent, human one.
fn after_recent_age(last: &str) -> String {
    let (secs, result) = last
        .split_once(" s ago, ")
        .unwrap_or_else(|| panic!("not a human age: {last:?}"));
    assert!(
        secs.parse::<u64>().is_ok_and(|s| s < 120),
        "not a recent age in seconds: {last:?}"
    );
    result.to_string()
}

/// Issue 11: `doctor` and `status` show the objects' size and say when the
/// last compaction ran as a human age, with its result, in the same words.
#[test]
fn doctor_and_status_say_the_last_compaction_in_words() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let doctor = sb.ai(&["doctor"]);
    doctor.ok();
    assert!(
        doctor.stdout.contains(
            "ok   compaction on (at most every 10 min, from 4.0 MB loose); last compaction: none recorded"
        ),
        "{}",
        doctor.stdout
    );
    let status = sb.ai(&["status"]);
    assert_eq!(last_compaction(&status.ok().stdout), "none recorded");

    sb.ai(&["compact"]).ok();
    let doctor = sb.ai(&["doctor"]);
    doctor.ok();
    let status = sb.ai(&["status"]);
    status.ok();
    for want in [
        format!("ok   objects    {}: ", sb.work.join(".git").display()),
        format!("ok   objects    {}: ", sb.bare.display()),
        "(0 loose object(s), 0 B; 1 pack(s), ".to_string(),
        "ok   compaction on (at most every 10 min, from 4.0 MB loose); last compaction: ".into(),
    ] {
        assert!(
            doctor.stdout.contains(&want),
            "{want:?} in {}",
            doctor.stdout
        );
    }
    assert!(!doctor.stdout.contains("epoch"), "{}", doctor.stdout);
    let from_doctor = after_recent_age(&last_compaction(&doctor.stdout));
    let from_status = after_recent_age(&last_compaction(&status.stdout));
    assert!(
        from_doctor.starts_with("ok (") && from_doctor.contains(" → "),
        "{from_doctor}"
    );
    assert_eq!(from_doctor, from_status, "the same words in both");
    // --json keeps the time as a number, and the result.
    let j = sb.ai(&["status", "--json"]).json();
    assert!(j["last_compaction"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(j["last_compaction_results"][0]["status"], "ok");
}

/// Loose objects piling up while compaction is off, or while its last run
/// could not pack them, are a warning that says what to do; `doctor` still
/// passes (a warning, not a failure).
#[test]
fn doctor_warns_when_loose_objects_wait_and_says_what_to_do() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let cfg = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        "[compaction]\nenabled = false\nmin_loose_bytes = 4096\n",
    )
    .unwrap();
    sb.write("big.bin", incompressible(1_200_000));
    sb.git_ok(&sb.work, &["add", "big.bin"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "A big file"]);
    let work = format!("objects    {}: ", sb.work.join(".git").display());
    let bare = format!("ok   objects    {}: ", sb.bare.display());

    let doctor = sb.ai(&["doctor"]);
    doctor.ok();
    let out = &doctor.stdout;
    let lines = warning_lines(out, &work, 3);
    assert!(
        lines[0].contains("MB loose wait and compaction is off"),
        "{out}"
    );
    assert_eq!(
        lines[1].trim_start(),
        "- `ai-commit compact` packs them now",
        "{out}"
    );
    assert!(
        lines[2]
            .trim_start()
            .starts_with("- or turn compaction back on: `enabled = true` under [compaction]"),
        "{out}"
    );
    assert!(out.contains(&bare), "nothing waits there: {out}");
    assert!(
        out.contains(
            "ok   compaction off (compaction.enabled = false); last compaction: none recorded"
        ),
        "{out}"
    );
    let j = sb.ai(&["doctor", "--json"]).json();
    let objects = j
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "objects" && c["level"] == "warn")
        .unwrap_or_else(|| panic!("{j}"));
    assert_eq!(objects["advice"].as_array().unwrap().len(), 2, "{objects}");

    // On, but its last run could not pack them: the pack directory is a
    // file (git and libgit2 alike cannot write a pack there).
    std::fs::write(
        cfg.join("config.toml"),
        "[compaction]\nmin_loose_bytes = 4096\n",
    )
    .unwrap();
    let pack_dir = sb.work.join(".git/objects/pack");
    let aside = sb.work.join(".git/objects/pack.aside");
    std::fs::rename(&pack_dir, &aside).unwrap();
    std::fs::write(&pack_dir, "not a directory").unwrap();
    sb.ai(&["compact"]);
    std::fs::remove_file(&pack_dir).unwrap();
    std::fs::rename(&aside, &pack_dir).unwrap();
    let doctor = sb.ai(&["doctor"]);
    doctor.ok();
    let out = &doctor.stdout;
    let lines = warning_lines(out, &work, 2);
    assert!(
        lines[0].contains("loose wait and the last compaction failed here: git repack"),
        "{out}"
    );
    assert!(
        lines[1]
            .trim_start()
            .starts_with("- `ai-commit compact` runs it again and says why it fails (log: "),
        "{out}"
    );
    let compaction = out
        .lines()
        .find(|l| {
            l.starts_with(
                "WARN compaction on (at most every 10 min, from 4.0 KB loose); last compaction: ",
            )
        })
        .unwrap_or_else(|| panic!("{out}"));
    let said = after_recent_age(&last_compaction(compaction));
    assert!(said.starts_with("FAILED for "), "{said}");
    let status = sb.ai(&["status"]);
    assert_eq!(
        after_recent_age(&last_compaction(&status.ok().stdout)),
        said
    );

    // A real compaction packs them: no warning is left.
    sb.ai(&["compact"]).ok();
    let doctor = sb.ai(&["doctor"]);
    assert!(!doctor.ok().stdout.contains("WARN"), "{}", doctor.stdout);
    assert!(
        doctor.stdout.contains(&format!(
            "ok   {work}1.1 MB (0 loose object(s), 0 B; 1 pack(s), 1.1 MB)"
        )),
        "{}",
        doctor.stdout
    );
}

#[test]
fn config_file_env_and_flags_layer_and_typos_are_named() {
    let (fake, sb) = seeded(Script::text(MSG));
    let cfg_dir = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(
        cfg_dir.join("config.toml"),
        "model = \"gemma3\"\nnum_ctx = 4096\nfallback_message = \"journal: {file}\"\n",
    )
    .unwrap();
    sb.append("journal.md", "a\n");
    sb.ai(&["journal.md"]).ok();
    assert_eq!(
        fake.prompts()[0]["options"]["num_ctx"],
        4096,
        "config file read"
    );

    // AI_COMMIT_* beats the file; a flag beats both.
    sb.append("journal.md", "b\n");
    let r = sb
        .ai_cmd(&["--json", "journal.md"])
        .env("AI_COMMIT_HOST", dead_address())
        .output()
        .unwrap();
    let j = support::Run::from(r).ok().json();
    assert_eq!(
        j["message"], "journal: journal.md",
        "fallback template from the file"
    );
    sb.append("journal.md", "c\n");
    let r = sb
        .ai_cmd(&["--host", &fake.url(), "journal.md"])
        .env("AI_COMMIT_HOST", dead_address())
        .output()
        .unwrap();
    support::Run::from(r).ok();
    assert_eq!(sb.last_message(&sb.work), MSG);

    // The repository's own file overrides the user's.
    std::fs::write(sb.work.join(".ai-commit.toml"), "modle = \"x\"\n").unwrap();
    sb.append("journal.md", "d\n");
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("unknown field `modle`") && r.stderr.contains(".ai-commit.toml"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(sb.work.join(".ai-commit.toml")).unwrap();

    let r = sb
        .ai_cmd(&["journal.md"])
        .env("AI_COMMIT_TIMEOUT", "-3")
        .output()
        .unwrap();
    let r = support::Run::from(r);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("`timeout`"), "{}", r.stderr);
    let r = support::Run::from(
        sb.ai_cmd(&["journal.md"])
            .env("AI_COMMIT_MODLE", "x")
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("AI_COMMIT_MODLE"), "{}", r.stderr);
}

#[test]
fn prompt_override_file_and_code_prompt_by_file_type() {
    let (fake, sb) = seeded(Script::text(MSG));
    sb.write("src/main.rs", "fn main() {}\n");
    sb.ai(&["src/main.rs"]).ok();
    let p = fake.prompts()[0]["prompt"].as_str().unwrap().to_string();
    assert!(p.contains("source code"), "code prompt for .rs: {p}");
    sb.append("journal.md", "x\n");
    sb.ai(&["journal.md"]).ok();
    let p = fake.prompts()[1]["prompt"].as_str().unwrap().to_string();
    assert!(p.contains("personal journal"), "journal prompt for .md");
    let mine = sb.dir.path().join("mine.txt");
    std::fs::write(&mine, "MY PROMPT\n{stats}\n{diff}").unwrap();
    sb.append("journal.md", "y\n");
    sb.ai(&["--prompt", mine.to_str().unwrap(), "journal.md"])
        .ok();
    let p = fake.prompts()[2]["prompt"].as_str().unwrap().to_string();
    assert!(p.starts_with("MY PROMPT\njournal.md | +1 -0"), "{p}");
}

#[test]
fn usage_errors() {
    let (_f, sb) = seeded(Script::text(MSG));
    let r = sb.ai(&[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("-a"), "{}", r.stderr);
    let r = sb.ai(&["--timeout", "soon", "journal.md"]);
    assert_eq!(r.code, 2);
    let r = sb.ai(&["--version"]);
    assert!(r.stdout.starts_with("ai-commit "));
}

#[test]
fn hook_install_in_a_linked_worktree_goes_where_git_reads_hooks() {
    let (_fake, sb) = seeded(Script::text(MSG));
    let wt = sb.dir.path().join("wt");
    sb.git_ok(
        &sb.work,
        &["worktree", "add", "-q", "-b", "side", wt.to_str().unwrap()],
    );
    let r = support::Run::from(
        sb.ai_cmd(&["hook", "install"])
            .current_dir(&wt)
            .output()
            .unwrap(),
    );
    r.ok();
    // git's own answer for where this worktree's hooks live.
    let hooks = sb.git_ok(
        &wt,
        &["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
    );
    let installed = std::path::Path::new(hooks.trim()).join("prepare-commit-msg");
    assert!(
        installed.exists(),
        "{} (ai-commit said: {})",
        installed.display(),
        r.stdout
    );
    assert!(
        r.stdout.contains(installed.to_str().unwrap()),
        "{}",
        r.stdout
    );
}
