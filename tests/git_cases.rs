//! Repository states and remotes (SPEC §5) through the real binary, with git's
//! CLI as the oracle. The model is a loopback server answering a fixed text.

mod support;

use std::path::Path;

use support::ollama::{FakeOllama, Script};
use support::Sandbox;

const MSG: &str = "Add river walk entry";

fn setup() -> (FakeOllama, Sandbox) {
    let fake = FakeOllama::start(Script::text(MSG));
    let sb = Sandbox::new(&fake.url());
    (fake, sb)
}

fn seeded() -> (FakeOllama, Sandbox) {
    let (fake, sb) = setup();
    sb.seed("journal.md", "# Beginning of Notes\n\nfirst\n");
    (fake, sb)
}

fn staged_files(sb: &Sandbox) -> String {
    sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"])
}

#[test]
fn first_commit_on_an_unborn_branch() {
    let (_f, sb) = setup();
    // A bare repository whose HEAD names another default branch.
    std::fs::remove_dir_all(&sb.bare).unwrap();
    sb.git_ok(
        sb.dir.path(),
        &[
            "init",
            "-q",
            "--bare",
            "--initial-branch=trunk",
            "remote.git",
        ],
    );
    sb.write("journal.md", "# Beginning of Notes\n\nday one\n");
    sb.ai(&["journal.md"]).ok();
    assert_eq!(sb.subjects(&sb.work), vec![MSG]);
    assert_eq!(sb.subjects(&sb.bare), vec![MSG]);
    // Tracking ref and upstream-less push to origin/main, as git would.
    assert_eq!(
        sb.git_ok(&sb.work, &["rev-parse", "origin/main"]).trim(),
        sb.head(&sb.work)
    );
    sb.fsck_remote();
    // Its HEAD now follows the first branch, so a clone checks it out.
    assert_eq!(
        sb.git_ok(&sb.bare, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", sb.bare.to_str().unwrap(), "clone"],
    );
    assert!(sb.dir.path().join("clone/journal.md").exists());
}

#[test]
fn nothing_to_commit_makes_no_empty_commit() {
    let (fake, sb) = seeded();
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nothing to commit"), "{}", r.stderr);
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    assert!(fake.prompts().is_empty(), "no model call for nothing");
}

#[test]
fn detached_head_is_refused_and_nothing_changes() {
    let (fake, sb) = seeded();
    let head = sb.head(&sb.work);
    sb.git_ok(&sb.work, &["checkout", "-q", "--detach"]);
    sb.append("journal.md", "more\n");
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("detached"), "{}", r.stderr);
    assert!(
        r.stderr.contains("git switch"),
        "says what to do: {}",
        r.stderr
    );
    assert_eq!(sb.git_ok(&sb.work, &["rev-parse", "HEAD"]).trim(), head);
    assert_eq!(staged_files(&sb), "", "nothing staged");
    assert!(fake.prompts().is_empty());
}

#[test]
fn merge_in_progress_is_refused_and_the_conflict_is_untouched() {
    let (_f, sb) = seeded();
    sb.git_ok(&sb.work, &["checkout", "-q", "-b", "other"]);
    sb.write("journal.md", "# Beginning of Notes\n\nother side\n");
    sb.git_ok(&sb.work, &["commit", "-q", "-am", "other"]);
    sb.git_ok(&sb.work, &["checkout", "-q", "main"]);
    sb.write("journal.md", "# Beginning of Notes\n\nmain side\n");
    sb.git_ok(&sb.work, &["commit", "-q", "-am", "main"]);
    let merge = sb.git(&sb.work, &["merge", "other"]);
    assert!(!merge.status.success(), "a real conflict");
    let conflicted = std::fs::read_to_string(sb.work.join("journal.md")).unwrap();
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("merge is in progress"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(sb.work.join("journal.md")).unwrap(),
        conflicted
    );
    assert!(
        sb.work.join(".git/MERGE_HEAD").exists(),
        "the merge is left as it was"
    );
}

#[test]
fn index_lock_held_by_another_git_is_reported() {
    let (fake, sb) = seeded();
    sb.append("journal.md", "second\n");
    std::fs::write(sb.work.join(".git/index.lock"), "").unwrap();
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("index.lock"), "{}", r.stderr);
    assert!(r.stderr.contains("another git process"), "{}", r.stderr);
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    assert!(std::fs::read_to_string(sb.work.join("journal.md"))
        .unwrap()
        .ends_with("second\n"));
    assert!(fake.prompts().is_empty());
    // Once the other git is done, the same command works.
    std::fs::remove_file(sb.work.join(".git/index.lock")).unwrap();
    sb.ai(&["journal.md"]).ok();
    assert_eq!(sb.subjects(&sb.bare), vec![MSG, "Seed"]);
}

#[test]
fn ignored_file_is_refused() {
    let (_f, sb) = seeded();
    sb.write(".gitignore", "*.secret\n");
    sb.write("keys.secret", "hunter2\n");
    let r = sb.ai(&["keys.secret"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ignored"), "{}", r.stderr);
    assert!(r.stderr.contains("git add -f"), "{}", r.stderr);
    assert_eq!(staged_files(&sb), "");
}

#[test]
fn file_outside_the_work_tree_is_refused() {
    let (_f, sb) = seeded();
    let outside = sb.dir.path().join("outside.md");
    std::fs::write(&outside, "x\n").unwrap();
    // Inside another repository's tree: not ours.
    let r = sb.ai(&["journal.md", outside.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("not inside a git repository") || r.stderr.contains("outside"),
        "{}",
        r.stderr
    );
    // A path that climbs out of the work tree.
    let r = sb.ai(&["../outside.md"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
}

#[test]
fn not_a_repository_names_init() {
    let (_f, sb) = setup();
    let plain = sb.dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("notes.md"), "x\n").unwrap();
    let r = sb.ai(&[plain.join("notes.md").to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("ai-commit init"), "{}", r.stderr);
}

#[test]
fn deletion_is_staged_and_committed() {
    let (_f, sb) = seeded();
    sb.write("old.md", "to be removed\n");
    sb.git_ok(&sb.work, &["add", "old.md"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "add old"]);
    std::fs::remove_file(sb.work.join("old.md")).unwrap();
    sb.ai(&["old.md"]).ok();
    let tree = sb.git_ok(&sb.bare, &["ls-tree", "--name-only", "main"]);
    assert!(!tree.contains("old.md"), "{tree}");
    assert!(tree.contains("journal.md"));
}

#[test]
fn odd_file_names_are_staged_exactly() {
    let (_f, sb) = seeded();
    for name in ["my notes ü.md", "-dash.md", "dir with space/ñ.txt"] {
        sb.write(name, "content\n");
    }
    sb.ai(&["--", "my notes ü.md", "-dash.md", "dir with space/ñ.txt"])
        .ok();
    let files = sb.git_ok(
        &sb.bare,
        &[
            "-c",
            "core.quotepath=off",
            "ls-tree",
            "-r",
            "--name-only",
            "main",
        ],
    );
    for name in ["my notes ü.md", "-dash.md", "dir with space/ñ.txt"] {
        assert!(files.lines().any(|l| l == name), "{name} in {files}");
    }
    assert_eq!(staged_files(&sb), "");
}

#[test]
fn crlf_follows_git_own_filters() {
    let (_f, sb) = seeded();
    sb.git_ok(&sb.work, &["config", "core.autocrlf", "input"]);
    let p = sb.write("win.txt", "line one\r\nline two\r\n");
    sb.ai(&["win.txt"]).ok();
    let ours = sb.git_ok(&sb.work, &["rev-parse", "main:win.txt"]);
    let gits = sb.git_ok(
        &sb.work,
        &["hash-object", "--path=win.txt", p.to_str().unwrap()],
    );
    assert_eq!(ours, gits, "the same blob git add would store");
    assert_eq!(
        sb.git_ok(&sb.work, &["show", "main:win.txt"]),
        "line one\nline two\n"
    );
    // Without autocrlf the bytes are kept as they are.
    sb.git_ok(&sb.work, &["config", "core.autocrlf", "false"]);
    sb.write("raw.txt", "a\r\nb\r\n");
    sb.ai(&["raw.txt"]).ok();
    assert_eq!(sb.git_ok(&sb.work, &["show", "main:raw.txt"]), "a\r\nb\r\n");
}

#[test]
fn non_utf8_and_binary_content_are_committed_byte_for_byte() {
    let (fake, sb) = seeded();
    let latin1: &[u8] = b"caf\xe9 cr\xe8me br\xfbl\xe9e\n";
    let binary: Vec<u8> = (0u8..=255).chain([0, 0, 0, 137, 80, 78, 71]).collect();
    sb.write("latin1.txt", latin1);
    sb.write("image.bin", &binary);
    sb.ai(&["latin1.txt", "image.bin"]).ok();
    let show = |spec: &str| sb.git(&sb.work, &["show", spec]).stdout;
    assert_eq!(show("main:latin1.txt"), latin1);
    assert_eq!(show("main:image.bin"), binary);
    let prompt = fake.prompts()[0]["prompt"].as_str().unwrap().to_string();
    assert!(
        prompt.contains("image.bin (new) | binary, 0 -> 263 bytes"),
        "{prompt}"
    );
    assert!(
        prompt.contains("+caf\u{FFFD} cr"),
        "non-UTF-8 shown lossily: {prompt}"
    );
    sb.fsck_remote();
}

#[test]
fn no_identity_is_refused_before_any_model_call() {
    let (fake, sb) = seeded();
    sb.git_ok(&sb.work, &["config", "--unset", "user.email"]);
    sb.append("journal.md", "x\n");
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("user.email"), "{}", r.stderr);
    assert!(r.stderr.contains("git config --global"), "{}", r.stderr);
    assert!(fake.requests().is_empty(), "Ollama was not asked");
    assert_eq!(staged_files(&sb), "", "nothing staged either");
}

#[test]
fn a_remote_that_moved_on_is_synced_never_overwritten() {
    let (_f, sb) = seeded();
    // Another machine pushes first.
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
    let theirs = sb.head(&sb.bare);

    sb.append("journal.md", "from the desktop\n");
    let r = sb.ai(&["journal.md"]);
    r.ok();
    assert!(r.stderr.contains("synced first"), "{}", r.stderr);
    // Their commit is kept (an ancestor of the new tip), ours is on top.
    assert_eq!(sb.subjects(&sb.bare), vec![MSG, "From the laptop", "Seed"]);
    let ok = sb
        .git(&sb.bare, &["merge-base", "--is-ancestor", &theirs, "main"])
        .status
        .success();
    assert!(ok, "the remote's commit was not overwritten");
    assert!(
        sb.work.join("laptop.md").exists(),
        "the work tree has their file"
    );
    sb.fsck_remote();
}

#[test]
fn missing_remote_keeps_commits_and_the_next_run_pushes_them_all() {
    let (_f, sb) = seeded();
    let mnt = sb.dir.path().join("mnt/usb/journal.git");
    sb.git_ok(
        &sb.work,
        &["remote", "set-url", "origin", mnt.to_str().unwrap()],
    );
    sb.append("journal.md", "one\n");
    let r = sb.ai(&["--json", "journal.md"]);
    assert_eq!(r.code, 4);
    let j = r.json();
    assert_eq!(j["push"]["status"], "failed");
    assert!(
        j["push"]["reason"]
            .as_str()
            .unwrap()
            .contains("disk mounted"),
        "{j}"
    );
    assert_eq!(sb.subjects(&sb.work), vec![MSG, "Seed"]);

    // The disk comes back (a fresh bare repo with the old history), then one more entry.
    std::fs::create_dir_all(mnt.parent().unwrap()).unwrap();
    sb.git_ok(
        sb.dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            sb.bare.to_str().unwrap(),
            mnt.to_str().unwrap(),
        ],
    );
    sb.append("journal.md", "two\n");
    let j = sb.ai(&["--json", "journal.md"]).ok().json();
    assert_eq!(j["push"]["commits"], 2, "the pending commit goes too: {j}");
    let subjects = sb.git_ok(&mnt, &["log", "--format=%s", "main"]);
    assert_eq!(subjects.lines().collect::<Vec<_>>(), vec![MSG, MSG, "Seed"]);
    let fsck = sb.git(&mnt, &["fsck", "--strict", "--no-dangling"]);
    assert!(fsck.status.success());
}

#[test]
fn remote_with_a_work_tree_or_a_file_is_refused() {
    let (_f, sb) = seeded();
    sb.git_ok(sb.dir.path(), &["init", "-q", "nonbare"]);
    std::fs::write(sb.dir.path().join("afile"), "not a repo").unwrap();
    for (target, says) in [("nonbare", "work tree"), ("afile", "not a git repository")] {
        let url = sb.dir.path().join(target);
        sb.git_ok(
            &sb.work,
            &["remote", "set-url", "origin", url.to_str().unwrap()],
        );
        sb.append("journal.md", "x\n");
        let r = sb.ai(&["journal.md"]);
        assert_eq!(r.code, 4);
        assert!(r.stderr.contains(says), "{target}: {}", r.stderr);
    }
    assert_eq!(sb.subjects(&sb.work).len(), 3, "both commits kept");
}

#[test]
fn file_url_remote_works() {
    let (_f, sb) = seeded();
    let url = format!("file://{}", sb.bare.display());
    sb.git_ok(&sb.work, &["remote", "set-url", "origin", &url]);
    sb.append("journal.md", "x\n");
    sb.ai(&["journal.md"]).ok();
    assert_eq!(sb.subjects(&sb.bare), vec![MSG, "Seed"]);
}

fn hook(bare: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = bare.join("hooks").join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn pre_receive_hook_can_reject_and_the_commit_stays() {
    let (_f, sb) = seeded();
    let before = sb.head(&sb.bare);
    hook(
        &sb.bare,
        "pre-receive",
        "cat > /dev/null\necho 'journal is frozen today' >&2\nexit 1",
    );
    sb.append("journal.md", "x\n");
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("pre-receive hook rejected"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("journal is frozen today"), "{}", r.stderr);
    assert_eq!(sb.head(&sb.bare), before);
    assert_eq!(sb.subjects(&sb.work), vec![MSG, "Seed"]);
}

#[test]
fn post_receive_hook_runs_like_under_git_push() {
    let (_f, sb) = seeded();
    let old = sb.head(&sb.bare);
    let log = sb.dir.path().join("deploy.log");
    hook(
        &sb.bare,
        "post-receive",
        &format!("read old new ref\necho \"$old $new $ref GIT_DIR=$GIT_DIR pwd=$(pwd)\" > '{}'\necho deployed", log.display()),
    );
    sb.append("journal.md", "x\n");
    let r = sb.ai(&["journal.md"]);
    r.ok();
    let new = sb.head(&sb.work);
    let line = std::fs::read_to_string(&log).expect("post-receive ran");
    assert_eq!(
        line.trim(),
        format!(
            "{old} {new} refs/heads/main GIT_DIR=. pwd={}",
            sb.bare.display()
        )
    );
    assert!(
        r.stderr.contains("remote: deployed"),
        "hook output shown: {}",
        r.stderr
    );
}

#[test]
fn all_tracked_changes_with_dash_a() {
    let (_f, sb) = seeded();
    sb.write("b.md", "b\n");
    sb.git_ok(&sb.work, &["add", "b.md"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "b"]);
    sb.append("journal.md", "changed\n");
    std::fs::remove_file(sb.work.join("b.md")).unwrap();
    sb.write("untracked.md", "not mine\n");
    sb.ai(&["-a"]).ok();
    let tree = sb.git_ok(&sb.work, &["ls-tree", "--name-only", "main"]);
    assert_eq!(tree.trim(), "journal.md");
    assert!(sb
        .git_ok(&sb.work, &["status", "--porcelain"])
        .contains("?? untracked.md"));
}

#[test]
fn a_file_in_a_nested_repository_belongs_to_that_repository() {
    let (_f, sb) = seeded();
    let inner = sb.work.join("inner");
    sb.git_ok(&sb.work, &["init", "-q", "inner"]);
    sb.identity(&inner);
    std::fs::write(inner.join("x.md"), "x\n").unwrap();
    let r = sb.ai(&["inner/x.md"]);
    // Committed in the inner repository, which has no remote to push to.
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("no remote named origin"), "{}", r.stderr);
    assert!(
        r.stderr.contains("git remote add origin"),
        "says what to do: {}",
        r.stderr
    );
    assert_eq!(sb.subjects(&inner), vec![MSG]);
    assert_eq!(
        sb.subjects(&sb.work),
        vec!["Seed"],
        "the outer repository is untouched"
    );
    assert_eq!(staged_files(&sb), "");
}

#[test]
fn network_remotes_fail_clearly_and_keep_the_commit() {
    let (_f, sb) = seeded();
    for url in [
        "ssh://127.0.0.1:1/journal.git",
        "http://127.0.0.1:1/journal.git",
    ] {
        sb.git_ok(&sb.work, &["remote", "set-url", "origin", url]);
        sb.append("journal.md", "x\n");
        let r = sb.ai(&["journal.md"]);
        assert_eq!(r.code, 4, "{url}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("cannot push to {url}")),
            "{}",
            r.stderr
        );
    }
    assert_eq!(sb.subjects(&sb.work).len(), 3, "both commits kept");
}

#[test]
fn the_work_tree_root_as_a_path_stages_everything_like_git_add_dot() {
    let (_f, sb) = seeded();
    sb.write("new/a.md", "a\n");
    sb.append("journal.md", "more\n");
    sb.ai(&["."]).ok();
    assert_eq!(sb.git_ok(&sb.work, &["status", "--porcelain"]), "");
    let files = sb.git_ok(&sb.bare, &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(files, "journal.md\nnew/a.md\n");
}

fn client_hook(work: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = work.join(".git/hooks").join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn pre_commit_can_refuse_and_no_verify_skips_it() {
    let (_f, sb) = seeded();
    client_hook(
        &sb.work,
        "pre-commit",
        "echo 'secret found in journal.md' >&2; exit 1",
    );
    sb.append("journal.md", "password: hunter2\n");
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("pre-commit hook refused") && r.stderr.contains("secret found"),
        "{}",
        r.stderr
    );
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"])
            .trim(),
        "journal.md",
        "stays staged"
    );
    sb.ai(&["--no-verify", "journal.md"]).ok();
    assert_eq!(sb.subjects(&sb.bare), vec![MSG, "Seed"]);
}

#[test]
fn hooks_run_like_under_git_commit() {
    let (_f, sb) = seeded();
    let marker = sb.dir.path().join("post-commit-ran");
    // A formatter that re-stages a file, a trailer, and a notification.
    client_hook(
        &sb.work,
        "pre-commit",
        "echo formatted > fmt.md && git add fmt.md",
    );
    client_hook(
        &sb.work,
        "commit-msg",
        "printf '\\nSigned-off-by: Journal Writer <writer@example.org>\\n' >> \"$1\"",
    );
    client_hook(
        &sb.work,
        "post-commit",
        &format!("git rev-parse HEAD > '{}'", marker.display()),
    );
    sb.append("journal.md", "x\n");
    let j = sb.ai(&["--json", "journal.md"]).ok().json();
    assert_eq!(j["source"], "model", "a trailer keeps the source");
    let files = sb.git_ok(&sb.bare, &["ls-tree", "--name-only", "main"]);
    assert!(
        files.contains("fmt.md"),
        "what pre-commit staged is committed: {files}"
    );
    let paths: Vec<&str> = j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(paths.contains(&"fmt.md"), "…and described: {paths:?}");
    assert_eq!(
        sb.last_message(&sb.bare),
        format!("{MSG}\n\nSigned-off-by: Journal Writer <writer@example.org>")
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        sb.head(&sb.work)
    );
}

#[test]
fn commit_msg_can_refuse() {
    let (_f, sb) = seeded();
    client_hook(
        &sb.work,
        "commit-msg",
        "grep -q JIRA- \"$1\" || { echo 'message needs a ticket' >&2; exit 1; }",
    );
    sb.append("journal.md", "x\n");
    let r = sb.ai(&["journal.md"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("commit-msg hook refused") && r.stderr.contains("needs a ticket"),
        "{}",
        r.stderr
    );
    assert_eq!(sb.subjects(&sb.work), vec!["Seed"]);
}
