//! Two runs at the same time on one repository (two Neovims on one journal,
//! `\g` while a terminal runs `ai-commit -a`, ai-commit while `git commit`
//! runs): real processes started together, many trials, git's CLI as the
//! oracle after every trial. The assertions are about what ends up in the
//! repositories, never about timings: every change is in exactly one commit
//! or still in the work tree, no commit is empty or deletes another run's
//! file, the index agrees with HEAD and the work tree, both repositories
//! pass `git fsck --strict`, and no run reports "not pushed" or a commit
//! that is not on the branch.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::ollama::{FakeOllama, Script};
use support::{Run, Sandbox};

const MSG: &str = "Add an entry";
/// Enough to catch a race that shows in 30 % of trials: 0.7^24 < 0.02 %.
const TRIALS: usize = 24;

fn sandbox() -> (FakeOllama, Sandbox) {
    // A short model call, so that the two runs' stage and commit phases
    // interleave in every order across trials.
    let fake = FakeOllama::start(Script::text(MSG).delay(Duration::from_millis(15)));
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.txt", "# Beginning of Notes\n");
    (fake, sb)
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

fn finish(c: Child) -> Run {
    Run::from(c.wait_with_output().expect("finishes"))
}

/// Start all commands at once and wait for all of them.
fn together(cmds: Vec<Command>) -> Vec<Run> {
    let children: Vec<Child> = cmds.into_iter().map(spawn).collect();
    children.into_iter().map(finish).collect()
}

/// `git log --name-status` of the commits after `base`: (oid, [(status, path)]).
fn new_commits(sb: &Sandbox, base: &str) -> Vec<(String, Vec<(String, String)>)> {
    let out = sb.git_ok(
        &sb.work,
        &[
            "log",
            "--format=>%H",
            "--name-status",
            "--no-renames",
            &format!("{base}..main"),
        ],
    );
    let mut commits: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        if let Some(oid) = line.strip_prefix('>') {
            commits.push((oid.to_string(), Vec::new()));
        } else if let Some((st, path)) = line.split_once('\t') {
            commits
                .last_mut()
                .expect("a commit first")
                .1
                .push((st.to_string(), path.to_string()));
        }
    }
    commits
}

/// The checks that hold after every trial, whatever the interleaving.
fn invariants(sb: &Sandbox, base: &str, runs: &[Run], files: &[&str], ctx: &str) {
    let commits = new_commits(sb, base);
    for (oid, changes) in &commits {
        assert!(!changes.is_empty(), "{ctx}: empty commit {oid}");
        for (st, path) in changes {
            assert_ne!(st, "D", "{ctx}: commit {oid} deletes {path}");
        }
    }
    // Each file: committed in exactly one new commit with its work-tree
    // content, or still a visible change in the work tree.
    let status = sb.git_ok(
        &sb.work,
        &["status", "--porcelain", "--untracked-files=all"],
    );
    for f in files {
        let in_commits = commits
            .iter()
            .filter(|(_, ch)| ch.iter().any(|(_, p)| p == f))
            .count();
        let work = std::fs::read(sb.work.join(f)).expect("the file is still there");
        let head = sb.git(&sb.work, &["show", &format!("main:{f}")]).stdout;
        let dirty = status.lines().any(|l| l.ends_with(&format!(" {f}")));
        if in_commits == 1 && head == work {
            assert!(
                !dirty,
                "{ctx}: {f} committed, yet git status shows it:\n{status}"
            );
        } else {
            assert_eq!(in_commits, 0, "{ctx}: {f} in {in_commits} commits");
            assert!(
                dirty,
                "{ctx}: {f} neither committed nor a change:\n{status}"
            );
        }
    }
    // No staged deletion or staged undo left behind for anyone.
    for l in status.lines() {
        assert!(
            !l.starts_with('D') && !l.starts_with("R"),
            "{ctx}: index holds a deletion: {status}"
        );
    }
    for r in runs {
        assert_ne!(r.code, 4, "{ctx}: 'not pushed': {}", r.stderr);
        if r.code == 0 {
            reported_on_main(sb, r, ctx);
        }
    }
    repositories_sound(sb, ctx);
}

/// The commit a run reports is on the branch (a replayed copy, if a sync
/// replayed it before the push).
fn reported_on_main(sb: &Sandbox, run: &Run, ctx: &str) {
    let oid = run.json()["oid"].as_str().expect("an oid").to_string();
    let anc = sb.git(&sb.work, &["merge-base", "--is-ancestor", &oid, "main"]);
    assert!(
        anc.status.success(),
        "{ctx}: reported {oid} is not on main: {}",
        sb.git_ok(&sb.work, &["log", "--oneline", "-5", "main"])
    );
}

/// Both repositories pass `git fsck --strict` and no index.lock is left.
fn repositories_sound(sb: &Sandbox, ctx: &str) {
    for dir in [&sb.work, &sb.bare] {
        let out = sb.git(dir, &["fsck", "--strict", "--no-dangling"]);
        assert!(
            out.status.success(),
            "{ctx}: fsck {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        !sb.work.join(".git/index.lock").exists(),
        "{ctx}: a stale index.lock"
    );
}

/// The bare repository has what was pushed: local main when every ai-commit
/// run committed or found nothing to commit.
fn remote_matches(sb: &Sandbox, ctx: &str) {
    assert_eq!(
        sb.git_ok(&sb.bare, &["rev-parse", "main"]),
        sb.git_ok(&sb.work, &["rev-parse", "main"]),
        "{ctx}: the bare repository's main"
    );
}

/// Commit whatever a refused run left, so the next trial starts clean.
fn settle(sb: &Sandbox) {
    if !sb
        .git_ok(&sb.work, &["status", "--porcelain"])
        .trim()
        .is_empty()
    {
        sb.git_ok(&sb.work, &["add", "-A"]);
        sb.git_ok(&sb.work, &["commit", "-qm", "leftover"]);
    }
    sb.git_ok(&sb.work, &["push", "-q", "origin", "main"]);
}

#[test]
fn two_runs_on_different_files_both_commit_their_own_file() {
    different_files(2);
}

#[test]
fn three_runs_on_different_files_all_commit_their_own_file() {
    different_files(3);
}

fn different_files(n: usize) {
    let (_f, sb) = sandbox();
    for t in 0..TRIALS {
        let base = sb.head(&sb.work);
        let files: Vec<String> = (0..n).map(|i| format!("f{i}-{t}.txt")).collect();
        for f in &files {
            sb.write(f, format!("{f}\n"));
        }
        let runs = together(files.iter().map(|f| sb.ai_cmd(&["--json", f])).collect());
        let ctx = format!("{n} runs, trial {t}");
        for r in &runs {
            r.ok();
        }
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        invariants(&sb, &base, &runs, &names, &ctx);
        // Each run's commit holds its own file, added, and nothing else.
        for (r, f) in runs.iter().zip(&files) {
            let oid = r.json()["oid"].as_str().unwrap().to_string();
            let changes = sb.git_ok(
                &sb.work,
                &["show", "--format=", "--name-status", "--no-renames", &oid],
            );
            assert_eq!(changes.trim(), format!("A\t{f}"), "{ctx}");
        }
        assert_eq!(new_commits(&sb, &base).len(), n, "{ctx}");
        remote_matches(&sb, &ctx);
    }
}

#[test]
fn two_runs_on_the_same_file_make_one_commit_never_an_empty_one() {
    let (_f, sb) = sandbox();
    for t in 0..TRIALS {
        let base = sb.head(&sb.work);
        sb.append("journal.txt", &format!("entry {t}\n"));
        let runs = together(vec![
            sb.ai_cmd(&["--json", "journal.txt"]),
            sb.ai_cmd(&["--json", "journal.txt"]),
        ]);
        let ctx = format!("trial {t}");
        let mut codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
        codes.sort();
        assert_eq!(
            codes,
            vec![0, 3],
            "{ctx}: one commits, the other finds it committed: {:?}",
            runs.iter().map(|r| &r.stderr).collect::<Vec<_>>()
        );
        let loser = runs.iter().find(|r| r.code == 3).unwrap();
        assert!(
            loser.stdout.contains("nothing to commit"),
            "{ctx}: {}",
            loser.stdout
        );
        invariants(&sb, &base, &runs, &["journal.txt"], &ctx);
        assert_eq!(new_commits(&sb, &base).len(), 1, "{ctx}");
        remote_matches(&sb, &ctx);
    }
}

#[test]
fn dash_a_against_a_single_file_never_loses_or_misdescribes() {
    let (_f, sb) = sandbox();
    sb.write("other.txt", "other\n");
    sb.git_ok(&sb.work, &["add", "other.txt"]);
    sb.git_ok(&sb.work, &["commit", "-qm", "other"]);
    sb.git_ok(&sb.work, &["push", "-q"]);
    let mut seen: BTreeMap<(i32, i32), usize> = BTreeMap::new();
    for t in 0..TRIALS {
        let base = sb.head(&sb.work);
        sb.append("journal.txt", &format!("entry {t}\n"));
        sb.append("other.txt", &format!("other {t}\n"));
        let runs = together(vec![
            sb.ai_cmd(&["--json", "-a"]),
            sb.ai_cmd(&["--json", "journal.txt"]),
        ]);
        let ctx = format!("trial {t}");
        let (all, one) = (&runs[0], &runs[1]);
        *seen.entry((all.code, one.code)).or_default() += 1;
        assert!(
            matches!(one.code, 0 | 3),
            "{ctx}: single file: {}",
            one.stderr
        );
        assert!(matches!(all.code, 0 | 1), "{ctx}: -a: {}", all.stderr);
        if all.code == 1 {
            // Refused because the other run committed part of what its
            // message describes: said so, nothing changed.
            assert!(
                all.stdout.contains("not committed"),
                "{ctx}: {}",
                all.stdout
            );
            assert_eq!(one.code, 0, "{ctx}");
        }
        invariants(&sb, &base, &runs, &["journal.txt", "other.txt"], &ctx);
        if all.code == 0 {
            // -a committed other.txt (and journal.txt unless the single run
            // had): every change is described by the commit holding it.
            let oid = all.json()["oid"].as_str().unwrap().to_string();
            let changed = sb.git_ok(&sb.work, &["show", "--format=", "--name-only", &oid]);
            let paths: Vec<String> = all.json()["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
            let mut changed: Vec<String> = changed.lines().map(String::from).collect();
            changed.sort();
            assert_eq!(changed, paths, "{ctx}: the commit is what was described");
        }
        if all.code != 1 {
            remote_matches(&sb, &ctx);
        }
        settle(&sb);
    }
    eprintln!("outcomes (-a, single): {seen:?}");
}

#[test]
fn ai_commit_against_git_commit_keeps_both_changes() {
    let (_f, sb) = sandbox();
    for t in 0..TRIALS {
        let base = sb.head(&sb.work);
        let (a, b) = (format!("a{t}.txt"), format!("b{t}.txt"));
        sb.write(&a, format!("a {t}\n"));
        sb.write(&b, format!("b {t}\n"));
        // `git commit PATH` needs the path known; add it first, in one shell.
        let mut sh = Command::new("sh");
        sh.current_dir(&sb.work)
            .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &sb.home)
            .args([
                "-c",
                &format!("git add -- {b} && git commit -q -m 'by git' -- {b}"),
            ]);
        let runs = together(vec![sb.ai_cmd(&["--json", &a]), sh]);
        let ctx = format!("trial {t}");
        let (ai, git) = (&runs[0], &runs[1]);
        // git commits only its own path, so ai-commit always commits too.
        assert_eq!(ai.code, 0, "{ctx}: ai-commit: {} {}", ai.stdout, ai.stderr);
        if git.code != 0 {
            // git does not wait for a lock: it refuses, and says which.
            assert!(
                git.stderr.contains("index.lock"),
                "{ctx}: git: {}",
                git.stderr
            );
        }
        invariants(&sb, &base, &runs[..1], &[&a, &b], &ctx);
        // What ai-commit pushed is the branch as it was then: never ahead
        // of, nor diverging from, the local branch.
        let pushed = sb.git_ok(&sb.bare, &["rev-parse", "main"]);
        let anc = sb.git(
            &sb.work,
            &["merge-base", "--is-ancestor", pushed.trim(), "main"],
        );
        assert!(anc.status.success(), "{ctx}: the remote diverged");
        settle(&sb);
    }
}

#[test]
fn ai_commit_against_git_commit_with_the_prepare_commit_msg_hook() {
    let (_f, sb) = sandbox();
    sb.ai(&["hook", "install"]).ok();
    let path = format!(
        "{}:{}",
        support::bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    for t in 0..TRIALS / 2 {
        let base = sb.head(&sb.work);
        let (a, b) = (format!("a{t}.txt"), format!("b{t}.txt"));
        sb.write(&a, format!("a {t}\n"));
        sb.write(&b, format!("b {t}\n"));
        // A plain `git commit` whose message the installed hook asks the
        // model for (`ai-commit message`), while ai-commit commits a file.
        let mut sh = Command::new("sh");
        sh.current_dir(&sb.work)
            .env("PATH", &path)
            .env("HOME", &sb.home)
            .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("OLLAMA_HOST", &sb.ollama)
            .env("GIT_EDITOR", "true")
            .args(["-c", &format!("git add -- {b} && git commit -q")]);
        let runs = together(vec![sb.ai_cmd(&["--json", &a]), sh]);
        let ctx = format!("trial {t}");
        let (ai, git) = (&runs[0], &runs[1]);
        // 3: git's whole-index commit took a staged a*.txt along: it is
        // committed once, by git, and ai-commit says so.
        assert!(
            matches!(ai.code, 0 | 3),
            "{ctx}: ai-commit: {} {}",
            ai.stdout,
            ai.stderr
        );
        if git.code != 0 {
            // A plain `git commit` releases index.lock before its hooks and
            // moves HEAD with a compare-and-swap: when ai-commit committed
            // meanwhile, git refuses (its staged change stays staged).
            assert!(
                git.stderr.contains("index.lock") || git.stderr.contains("cannot lock ref 'HEAD'"),
                "{ctx}: git: {}",
                git.stderr
            );
        }
        invariants(&sb, &base, &runs[..1], &[&a, &b], &ctx);
        settle(&sb);
    }
}

/// A shell in `dir` with the sandbox's git configuration (no identity
/// from the developer's machine, no system config).
fn sh_in(sb: &Sandbox, dir: &std::path::Path, script: &str) -> Command {
    let mut sh = Command::new("sh");
    sh.current_dir(dir)
        .env("HOME", &sb.home)
        .env("GIT_CONFIG_GLOBAL", sb.home.join(".gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", script]);
    sh
}

/// Commit one line to remote.txt in the second clone and push it, pulling
/// (rebasing) first when ai-commit pushed meanwhile.
fn remote_push(sb: &Sandbox, clone: &std::path::Path, name: &str) -> Command {
    sh_in(
        sb,
        clone,
        &format!(
            "echo '{name}' >> remote.txt && git add remote.txt && git commit -qm '{name}' && \
             for i in 1 2 3 4 5 6 7 8 9 10; do \
               git push -q origin main 2>/dev/null && exit 0; \
               git pull -q --rebase origin main || exit 1; \
             done; exit 1"
        ),
    )
}

/// No staged or unstaged *undo* of any commit: between HEAD, the index and
/// the work tree only journal.txt may differ, and only by lines added (the
/// entries of a refused run, still to commit); remote.txt, which only the
/// remote changes, is the same everywhere.
fn no_undo(sb: &Sandbox, ctx: &str) {
    let status = sb.git_ok(&sb.work, &["status", "--porcelain"]);
    for l in status.lines() {
        assert!(
            l.ends_with(" journal.txt"),
            "{ctx}: only journal.txt may hold uncommitted lines:\n{status}"
        );
    }
    for (what, args) in [
        ("staged", &["diff", "--cached", "--numstat"][..]),
        ("unstaged", &["diff", "--numstat"][..]),
    ] {
        let numstat = sb.git_ok(&sb.work, args);
        for l in numstat.lines() {
            let removed = l.split('\t').nth(1).unwrap_or("?");
            assert_eq!(
                removed, "0",
                "{ctx}: a {what} change removes committed lines: {numstat}\n{status}"
            );
        }
    }
}

/// What a sync may say when it loses a race: it said which lock or that the
/// branch moved, and that nothing was changed.
fn clear_sync_refusal(text: &str) -> bool {
    text.contains("nothing was changed")
        && (text.contains("index.lock") || text.contains("moved") || text.contains(".lock"))
}

/// Why a push may fail while others push: another push holds the remote's
/// ref, the remote moved again, or the sync before the push lost a race.
fn clear_push_refusal(reason: &serde_json::Value) -> bool {
    let reason = reason.as_str().unwrap_or("");
    reason.contains("another push")
        || reason.contains("has commits this clone does not have")
        || clear_sync_refusal(reason)
}

/// `ai-commit sync` fast-forwarding the work tree while `ai-commit FILE`
/// commits another file in it and a second clone keeps pushing: every
/// commit survives, the index never holds an undo of one, and every run
/// either worked or said clearly why not.
#[test]
fn sync_racing_commits_and_remote_pushes_loses_nothing() {
    const ROUNDS: usize = 24;
    let fake = FakeOllama::start(Script::text(MSG));
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.txt", "# Beginning of Notes\n");
    let root = sb.work.parent().unwrap().to_path_buf();
    sb.git_ok(&root, &["clone", "-q", "remote.git", "clone"]);
    let clone = root.join("clone");
    sb.identity(&clone);
    assert!(remote_push(&sb, &clone, "remote start")
        .status()
        .unwrap()
        .success());
    sb.ai(&["sync", "--no-push"]).ok();

    let mut committed = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for r in 0..ROUNDS {
        let ctx = format!("round {r}");
        // The remote moves before the round, so the sync has a fast-forward
        // to do, and again during it.
        assert!(remote_push(&sb, &clone, &format!("remote {r}a"))
            .status()
            .unwrap()
            .success());
        sb.append("journal.txt", &format!("entry {r}\n"));
        let subject = format!("local {r}");
        let runs = together(vec![
            remote_push(&sb, &clone, &format!("remote {r}b")),
            sb.ai_cmd(&["sync", "--json"]),
            sb.ai_cmd(&["--json", "-m", &subject, "journal.txt"]),
        ]);
        let (push, sync, commit) = (&runs[0], &runs[1], &runs[2]);
        assert_eq!(push.code, 0, "{ctx}: git push: {}", push.stderr);
        for (who, run) in [("sync", sync), ("commit", commit)] {
            assert!(
                !run.stderr.contains("panicked"),
                "{ctx}: {who} panicked: {}",
                run.stderr
            );
        }
        let sync_says = format!("{}{}", sync.stdout, sync.stderr);
        match sync.code {
            0 => *outcomes.entry("sync ok".into()).or_default() += 1,
            // Synced; the push after it lost a race with another push.
            4 if clear_push_refusal(&sync.json()["push"]["reason"]) => {
                *outcomes.entry("sync ok, not pushed".into()).or_default() += 1
            }
            1 if clear_sync_refusal(&sync_says) => {
                *outcomes.entry("sync refused".into()).or_default() += 1
            }
            c => panic!("{ctx}: sync exit {c}: {sync_says}"),
        }
        let commit_says = format!("{}{}", commit.stdout, commit.stderr);
        match commit.code {
            // Committed (a later push sends what was kept locally).
            0 => {
                *outcomes.entry("commit ok".into()).or_default() += 1;
                committed.push(subject);
            }
            4 if clear_push_refusal(&commit.json()["push"]["reason"]) => {
                *outcomes.entry("commit ok, not pushed".into()).or_default() += 1;
                committed.push(subject);
            }
            1 if commit_says.contains("index.lock") || commit_says.contains("not committed") => {
                *outcomes.entry("commit refused".into()).or_default() += 1
            }
            c => panic!("{ctx}: commit exit {c}: {commit_says}"),
        }
        no_undo(&sb, &ctx);
        if commit.code == 0 {
            // Even when the sync replayed it before the push.
            reported_on_main(&sb, commit, &ctx);
        }
        if matches!(commit.code, 0 | 4) {
            // It committed the work tree's journal.txt: nothing is left.
            let status = sb.git_ok(&sb.work, &["status", "--porcelain"]);
            assert_eq!(status, "", "{ctx}: committed, yet");
        }
        repositories_sound(&sb, &ctx);
    }
    eprintln!("outcomes: {outcomes:?}");

    // Settle: what is left is committed and everything is pushed.
    if !sb.git_ok(&sb.work, &["status", "--porcelain"]).is_empty() {
        sb.ai(&["-m", "leftover", "journal.txt"]).ok();
    }
    sb.ai(&["sync"]).ok();
    sb.git_ok(&clone, &["pull", "-q", "--rebase", "origin", "main"]);
    assert_eq!(
        sb.head(&sb.work),
        sb.git_ok(&sb.bare, &["rev-parse", "main"]).trim(),
        "the bare repository has everything"
    );
    let subjects = sb.subjects(&sb.work);
    let mut expected: Vec<String> = committed;
    expected.push("remote start".into());
    for r in 0..ROUNDS {
        expected.push(format!("remote {r}a"));
        expected.push(format!("remote {r}b"));
    }
    for s in &expected {
        assert!(subjects.contains(s), "lost commit {s:?}: {subjects:?}");
    }
    // Every line written on either side is committed, once, in order.
    let journal = sb.git_ok(&sb.work, &["show", "main:journal.txt"]);
    let entries: Vec<String> = (0..ROUNDS).map(|r| format!("entry {r}")).collect();
    assert_eq!(
        journal.lines().skip(1).collect::<Vec<_>>(),
        entries,
        "journal.txt"
    );
    assert_eq!(
        sb.git_ok(&sb.work, &["show", "main:remote.txt"]),
        std::fs::read_to_string(clone.join("remote.txt")).unwrap()
    );
    assert_eq!(sb.git_ok(&sb.work, &["status", "--porcelain"]), "");
    for dir in [&sb.work, &sb.bare, &clone] {
        let out = sb.git(dir, &["fsck", "--strict", "--no-dangling"]);
        assert!(out.status.success(), "fsck {}", dir.display());
    }
}
