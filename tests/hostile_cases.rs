//! Findings 3–9 of the "hostile user" review (issue 9), each reproduced
//! through the real binary, with git's CLI as the oracle.

mod support;

use support::ollama::{FakeOllama, Script};
use support::Sandbox;

const MSG: &str = "Add river walk entry";

fn seeded() -> (FakeOllama, Sandbox) {
    let fake = FakeOllama::start(Script::text(MSG));
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "# Beginning of Notes\n\nfirst\n");
    (fake, sb)
}

/// Finding 3: A registered submodule, named from the superproject, is refused:
/// nothing is committed in it and its remote is not pushed.
#[test]
fn a_submodule_named_from_the_superproject_is_refused() {
    let (fake, sb) = seeded();
    let root = sb.dir.path();
    sb.git_ok(root, &["init", "-q", "--bare", "sub-remote.git"]);
    sb.git_ok(root, &["init", "-q", "sub-src"]);
    let src = root.join("sub-src");
    sb.identity(&src);
    std::fs::write(src.join("s.md"), "s\n").unwrap();
    sb.git_ok(&src, &["add", "s.md"]);
    sb.git_ok(&src, &["commit", "-qm", "sub seed"]);
    sb.git_ok(&src, &["push", "-q", "../sub-remote.git", "main"]);
    sb.git_ok(
        &sb.work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            "../sub-remote.git",
            "sub",
        ],
    );
    sb.git_ok(&sb.work, &["commit", "-qm", "add sub"]);
    let sub = sb.work.join("sub");
    sb.identity(&sub);
    let sub_head = sb.git_ok(&sub, &["rev-parse", "HEAD"]);
    let sub_remote = sb.git_ok(&root.join("sub-remote.git"), &["rev-parse", "main"]);

    // Unchanged: refused as a submodule (it used to say "nothing to commit:"
    // with no name).
    for args in [["sub"], ["sub/s.md"]] {
        let r = sb.ai(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("submodule"), "{}", r.stderr);
    }
    // Changed: still refused, nothing committed anywhere.
    std::fs::write(sub.join("s.md"), "changed\n").unwrap();
    for args in [["sub"], ["sub/s.md"]] {
        let r = sb.ai(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("sub"), "names it: {}", r.stderr);
        assert!(r.stderr.contains("inside the submodule"), "{}", r.stderr);
    }
    assert_eq!(sb.git_ok(&sub, &["rev-parse", "HEAD"]), sub_head);
    assert_eq!(
        sb.git_ok(&root.join("sub-remote.git"), &["rev-parse", "main"]),
        sub_remote
    );
    assert_eq!(sb.subjects(&sb.work), vec!["add sub", "Seed"]);
    assert!(fake.prompts().is_empty());
    // From inside the submodule it is an ordinary repository.
    let mut c = sb.ai_cmd(&["s.md"]);
    c.current_dir(&sub);
    let r = support::Run::from(c.output().unwrap());
    r.ok();
    assert_eq!(sb.git_ok(&sub, &["log", "-1", "--format=%s"]).trim(), MSG);
}

/// …and "nothing to commit" names what is unchanged.
#[test]
fn nothing_to_commit_names_the_path() {
    let (_f, sb) = seeded();
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("journal.md unchanged"), "{}", r.stderr);
    let r = sb.ai(&["."]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("the work tree unchanged"), "{}", r.stderr);
}

/// Finding 4: A deletion staged with `git rm` is committed, as `git commit PATH` does.
#[test]
fn a_deletion_staged_by_git_rm_is_committed() {
    let (_f, sb) = seeded();
    sb.write("gone.txt", "bye\n");
    sb.git_ok(&sb.work, &["add", "gone.txt"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "add gone"]);
    sb.git_ok(&sb.work, &["rm", "-q", "gone.txt"]);
    sb.ai(&["gone.txt"]).ok();
    assert_eq!(
        sb.git_ok(&sb.bare, &["show", "--format=", "--name-status", "main"])
            .trim(),
        "D\tgone.txt"
    );
    assert_eq!(sb.git_ok(&sb.work, &["status", "--porcelain"]), "");
    sb.fsck_remote();
}

/// Named files are committed alone (as `git commit PATH`): what the user
/// staged for other files stays staged, undescribed and uncommitted.
#[test]
fn other_staged_files_stay_staged() {
    let (_f, sb) = seeded();
    sb.write("later.md", "for another commit\n");
    sb.git_ok(&sb.work, &["add", "later.md"]);
    sb.append("journal.md", "today\n");
    let j = sb.ai(&["--json", "journal.md"]).ok().json();
    assert_eq!(j["paths"], serde_json::json!(["journal.md"]));
    assert_eq!(
        sb.git_ok(&sb.work, &["show", "--format=", "--name-only", "main"])
            .trim(),
        "journal.md"
    );
    assert_eq!(
        sb.git_ok(&sb.work, &["status", "--porcelain"]).trim(),
        "A  later.md"
    );
}

/// Finding 5: A prompt that looks like a path but does not exist is an error naming
/// the key and where it came from; the model is never asked.
#[test]
fn a_missing_prompt_file_is_an_error_naming_its_source() {
    let (fake, sb) = seeded();
    sb.append("journal.md", "x\n");
    let r = sb.ai(&["--prompt", "/no/such/file.md", "journal.md"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("prompt") && r.stderr.contains("/no/such/file.md"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("command-line"),
        "says where: {}",
        r.stderr
    );
    let cfg = sb.home.join(".config/ai-commit/config.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(&cfg, "prompt = \"~/prompts/nope.md\"\n").unwrap();
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("nope.md") && r.stderr.contains(&cfg.display().to_string()),
        "names the file it came from: {}",
        r.stderr
    );
    assert!(fake.prompts().is_empty());
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    // Prompt text (not a path) is still the prompt itself.
    std::fs::remove_file(&cfg).unwrap();
    sb.ai(&["--prompt", "Write one short line.", "journal.md"])
        .ok();
    let prompt = fake.prompts()[0]["prompt"].as_str().unwrap().to_string();
    assert!(prompt.starts_with("Write one short line."), "{prompt}");
}

/// Finding 6: A bad OLLAMA_HOST names OLLAMA_HOST; AI_COMMIT_CONFIG naming a missing
/// file is an error, not silently no configuration.
#[test]
fn environment_errors_name_the_variable() {
    let (_f, sb) = seeded();
    sb.append("journal.md", "x\n");
    let mut c = sb.ai_cmd(&["journal.md"]);
    c.env("OLLAMA_HOST", "garbage value!");
    let r = support::Run::from(c.output().unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("OLLAMA_HOST") && r.stderr.contains("host"),
        "{}",
        r.stderr
    );
    let missing = sb.dir.path().join("no-such-config.toml");
    let mut c = sb.ai_cmd(&["journal.md"]);
    c.env("AI_COMMIT_CONFIG", &missing);
    let r = support::Run::from(c.output().unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("AI_COMMIT_CONFIG") && r.stderr.contains(&missing.display().to_string()),
        "{}",
        r.stderr
    );
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    // A bad value in an AI_COMMIT_* variable names that variable.
    let mut c = sb.ai_cmd(&["journal.md"]);
    c.env("AI_COMMIT_TEMPERATURE", "9");
    let r = support::Run::from(c.output().unwrap());
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("AI_COMMIT_TEMPERATURE"), "{}", r.stderr);
}

/// Minor: `--timeout 0` says what is allowed, without a contradiction.
#[test]
fn timeout_zero_says_what_is_allowed() {
    let (_f, sb) = seeded();
    sb.append("journal.md", "x\n");
    let r = sb.ai(&["--timeout", "0", "journal.md"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("timeout"), "{}", r.stderr);
    assert!(r.stderr.contains("more than 0"), "{}", r.stderr);
    assert!(!r.stderr.contains("between 0 and"), "{}", r.stderr);
}

/// Finding 7: A symlink in the repository pointing outside it is committed as a
/// link (git stores the link itself).
#[test]
fn a_symlink_pointing_outside_is_committed_as_a_link() {
    let (_f, sb) = seeded();
    let outside = sb.dir.path().join("outside.txt");
    std::fs::write(&outside, "outside\n").unwrap();
    std::os::unix::fs::symlink(&outside, sb.work.join("out.lnk")).unwrap();
    // …and one pointing at a directory outside: still a link, not a walk.
    std::os::unix::fs::symlink(sb.dir.path().join("home"), sb.work.join("dir.lnk")).unwrap();
    sb.ai(&["out.lnk", "dir.lnk"]).ok();
    let tree = sb.git_ok(&sb.bare, &["ls-tree", "main"]);
    assert!(tree.contains("120000 blob"), "{tree}");
    assert_eq!(
        sb.git_ok(&sb.bare, &["cat-file", "-p", "main:out.lnk"]),
        outside.display().to_string()
    );
    assert!(tree.contains("\tdir.lnk"), "{tree}");
    assert_eq!(sb.git_ok(&sb.work, &["status", "--porcelain"]), "");
}

/// Finding 8: Without `user.*`, GIT_AUTHOR_* makes the author and GIT_COMMITTER_*
/// the committer, as in git.
#[test]
fn author_and_committer_come_from_their_own_variables() {
    let (_f, sb) = seeded();
    sb.git_ok(&sb.work, &["config", "--unset", "user.name"]);
    sb.git_ok(&sb.work, &["config", "--unset", "user.email"]);
    sb.append("journal.md", "x\n");
    let mut c = sb.ai_cmd(&["journal.md"]);
    c.env("GIT_AUTHOR_NAME", "Ann Author")
        .env("GIT_AUTHOR_EMAIL", "ann@example.org")
        .env("GIT_COMMITTER_NAME", "Cid Committer")
        .env("GIT_COMMITTER_EMAIL", "cid@example.org");
    support::Run::from(c.output().unwrap()).ok();
    assert_eq!(
        sb.git_ok(&sb.work, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"])
            .trim(),
        "Ann Author <ann@example.org>|Cid Committer <cid@example.org>"
    );
}

/// Finding 9: After a sync replays the commit, the result names the replayed commit:
/// the one in HEAD and on the remote.
#[test]
fn after_a_replay_the_result_names_the_commit_on_the_remote() {
    let (_f, sb) = seeded();
    let other = sb.dir.path().join("other");
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", sb.bare.to_str().unwrap(), "other"],
    );
    sb.identity(&other);
    std::fs::write(other.join("laptop.md"), "from the laptop\n").unwrap();
    sb.git_ok(&other, &["add", "laptop.md"]);
    sb.git_ok(&other, &["commit", "-qm", "From the laptop"]);
    sb.git_ok(&other, &["push", "-q"]);

    sb.append("journal.md", "from the desktop\n");
    let j = sb.ai(&["--json", "journal.md"]).ok().json();
    let head = sb.head(&sb.work);
    assert_eq!(j["oid"].as_str().unwrap(), head);
    assert_eq!(sb.head(&sb.bare), head);
    assert!(j["push"]["synced"].is_string(), "{j}");
    // The text result line too.
    sb.append("journal.md", "more\n");
    sb.git_ok(&other, &["pull", "-q", "--rebase"]);
    std::fs::write(other.join("laptop.md"), "second\n").unwrap();
    sb.git_ok(&other, &["commit", "-qam", "Laptop again"]);
    sb.git_ok(&other, &["push", "-q"]);
    let r = sb.ai(&["journal.md"]);
    r.ok();
    let head = sb.head(&sb.work);
    assert!(r.stdout.contains(&head[..7]), "{} vs {head}", r.stdout);
    assert_eq!(sb.head(&sb.bare), head);
}
