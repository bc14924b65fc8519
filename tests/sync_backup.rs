//! Several machines, one bare repository; `init`; pending pushes; backups
//! (SPEC §5–§6), through the real binary with git's CLI as the oracle.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::ollama::{FakeOllama, Script};
use support::{Run, Sandbox};

const MSG: &str = "Add journal entry";

fn setup() -> (FakeOllama, Sandbox) {
    let fake = FakeOllama::start(Script::text(MSG));
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", "# Beginning of Notes\n\nfirst\n");
    (fake, sb)
}

/// A second machine: a clone of the bare repository with its own identity.
fn laptop(sb: &Sandbox) -> PathBuf {
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", sb.bare.to_str().unwrap(), "laptop"],
    );
    let dir = sb.dir.path().join("laptop");
    sb.identity(&dir);
    dir
}

fn ai_in(sb: &Sandbox, dir: &Path, args: &[&str]) -> Run {
    Run::from(sb.ai_cmd(args).current_dir(dir).output().unwrap())
}

fn write(dir: &Path, rel: &str, text: &str) {
    std::fs::write(dir.join(rel), text).unwrap();
}

fn append(dir: &Path, rel: &str, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(rel))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn no_rebase_in_progress(dir: &Path) {
    for d in ["rebase-merge", "rebase-apply", "MERGE_HEAD"] {
        assert!(!dir.join(".git").join(d).exists(), "{d} left behind");
    }
}

#[test]
fn interleaved_commits_from_two_machines_all_land_in_a_linear_history() {
    let (_f, sb) = setup();
    let lap = laptop(&sb);
    for round in 0..3 {
        append(&sb.work, "desktop.md", &format!("desktop {round}\n"));
        ai_in(&sb, &sb.work, &["desktop.md"]).ok();
        append(&lap, "laptop.md", &format!("laptop {round}\n"));
        let r = ai_in(&sb, &lap, &["laptop.md"]);
        r.ok();
        // The desktop pushed first each round: the laptop syncs, then pushes.
        assert!(
            r.stderr
                .contains("synced first: replayed 1 local commit(s) on top of"),
            "{}",
            r.stderr
        );
    }
    let bare_log = sb.git_ok(&sb.bare, &["log", "--format=%s", "main"]);
    assert_eq!(
        bare_log.lines().count(),
        7,
        "six commits and the seed: {bare_log}"
    );
    assert_eq!(
        sb.git_ok(&sb.bare, &["rev-list", "--merges", "main"]),
        "",
        "linear history"
    );
    sb.fsck_remote();
    // Each side has the other's work after its own sync.
    assert!(lap.join("desktop.md").exists());
    let content = sb.git_ok(&sb.bare, &["show", "main:laptop.md"]);
    assert_eq!(content, "laptop 0\nlaptop 1\nlaptop 2\n");
    no_rebase_in_progress(&lap);
    assert_eq!(sb.git_ok(&lap, &["status", "--porcelain"]), "");
}

#[test]
fn a_real_conflict_stops_with_nothing_changed_and_both_sides_recoverable() {
    let (_f, sb) = setup();
    let lap = laptop(&sb);
    write(
        &sb.work,
        "journal.md",
        "# Beginning of Notes\n\nfrom the desktop\n",
    );
    ai_in(&sb, &sb.work, &["journal.md"]).ok();
    write(
        &lap,
        "journal.md",
        "# Beginning of Notes\n\nfrom the laptop\n",
    );
    let r = ai_in(&sb, &lap, &["--json", "journal.md"]);
    assert_eq!(r.code, 4, "committed, not pushed: {}", r.stderr);
    let reason = r.json()["push"]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("both changed journal.md") && reason.contains("git rebase origin/main"),
        "{reason}"
    );
    // Ours: the laptop's commit on its branch; theirs: the desktop's on origin/main.
    assert_eq!(
        sb.git_ok(&lap, &["show", "main:journal.md"]),
        "# Beginning of Notes\n\nfrom the laptop\n"
    );
    assert_eq!(
        sb.git_ok(&lap, &["show", "origin/main:journal.md"]),
        "# Beginning of Notes\n\nfrom the desktop\n"
    );
    assert_eq!(
        std::fs::read_to_string(lap.join("journal.md")).unwrap(),
        "# Beginning of Notes\n\nfrom the laptop\n"
    );
    assert_eq!(
        sb.git_ok(&lap, &["status", "--porcelain"]),
        "",
        "nothing half-applied"
    );
    no_rebase_in_progress(&lap);
    assert_eq!(
        sb.git_ok(&sb.bare, &["show", "main:journal.md"]),
        "# Beginning of Notes\n\nfrom the desktop\n"
    );
    // The hint works: git's own rebase resolves it.
    let out = sb.git(&lap, &["rebase", "origin/main"]);
    assert!(!out.status.success(), "a real conflict for git too");
}

#[test]
fn sync_fast_forwards_around_local_edits_and_refuses_to_overwrite_them() {
    let (_f, sb) = setup();
    let lap = laptop(&sb);
    append(&sb.work, "journal.md", "desktop\n");
    ai_in(&sb, &sb.work, &["journal.md"]).ok();
    // An unrelated uncommitted edit on the laptop survives a fast-forward.
    write(&lap, "draft.md", "unsaved thoughts\n");
    let r = ai_in(&sb, &lap, &["sync"]);
    r.ok();
    assert!(r.stdout.contains("fast-forwarded 1 commit"), "{}", r.stdout);
    assert!(std::fs::read_to_string(lap.join("journal.md"))
        .unwrap()
        .ends_with("desktop\n"));
    assert_eq!(
        std::fs::read_to_string(lap.join("draft.md")).unwrap(),
        "unsaved thoughts\n"
    );
    // An uncommitted edit to a file the remote changed is never overwritten.
    append(&sb.work, "journal.md", "desktop again\n");
    ai_in(&sb, &sb.work, &["journal.md"]).ok();
    append(&lap, "journal.md", "laptop, not committed\n");
    let before = sb.head(&lap);
    let r = ai_in(&sb, &lap, &["sync"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("modified but not committed"),
        "{}",
        r.stderr
    );
    assert!(std::fs::read_to_string(lap.join("journal.md"))
        .unwrap()
        .ends_with("laptop, not committed\n"));
    assert_eq!(sb.head(&lap), before);
}

/// The laptop's work tree, index and branch as git sees them.
fn snapshot(sb: &Sandbox, dir: &Path) -> (String, String, String) {
    (
        sb.head(dir),
        sb.git_ok(dir, &["ls-files", "-s"]),
        sb.git_ok(dir, &["status", "--porcelain", "--untracked-files=all"]),
    )
}

/// What [`sync_against_a_held_lock`] returns.
type HeldLockSync = (
    FakeOllama,
    Sandbox,
    PathBuf,
    PathBuf,
    (String, String, String),
    Run,
);

/// The desktop commits; on the laptop another git holds `rel` (a lock
/// file) and `ai-commit sync` runs there and is refused (exit 1). Returns
/// the sandbox, the laptop, the lock, the laptop's state before the sync
/// and the sync's run.
fn sync_against_a_held_lock(rel: &str) -> HeldLockSync {
    let (f, sb) = setup();
    let lap = laptop(&sb);
    append(&sb.work, "journal.md", "desktop\n");
    ai_in(&sb, &sb.work, &["journal.md"]).ok();
    let lock = lap.join(rel);
    write(&lap, rel, "");
    let before = snapshot(&sb, &lap);
    let r = ai_in(&sb, &lap, &["sync", "--no-push"]);
    assert_eq!(r.code, 1, "{} {}", r.stdout, r.stderr);
    (f, sb, lap, lock, before, r)
}

#[test]
fn sync_waits_for_a_held_index_lock_and_reports_one_held_too_long() {
    // Another git holds the laptop's index.lock (a `git commit` in an
    // editor): the sync waits, then says which file and what to do.
    let (_f, sb, lap, lock, before, r) = sync_against_a_held_lock(".git/index.lock");
    assert!(
        r.stderr
            .contains(&format!("another git process holds {}", lock.display()))
            && r.stderr.contains("nothing was changed")
            && r.stderr.contains("run `ai-commit sync` again"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&sb, &lap), before, "nothing changed");
    assert!(lock.exists(), "someone else's lock is left alone");
    // Released while the sync waits: it goes on.
    let child = sb
        .ai_cmd(&["sync", "--no-push"])
        .current_dir(&lap)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&lock).unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    r.ok();
    assert!(r.stdout.contains("fast-forwarded 1 commit"), "{}", r.stdout);
    assert_eq!(sb.git_ok(&lap, &["status", "--porcelain"]), "");
    assert!(!lock.exists());
}

#[test]
fn sync_reports_a_branch_held_by_another_git_and_releases_the_index() {
    // A git moving the branch without index.lock holds its ref lock.
    let (_f, sb, lap, lock, before, r) = sync_against_a_held_lock(".git/refs/heads/main.lock");
    assert!(
        r.stderr
            .contains(&format!("another git process holds {}", lock.display()))
            && r.stderr.contains("the branch is being updated")
            && r.stderr.contains("nothing was changed"),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&sb, &lap), before, "nothing changed");
    assert!(!lap.join(".git/index.lock").exists(), "index.lock released");
    std::fs::remove_file(&lock).unwrap();
    ai_in(&sb, &lap, &["sync", "--no-push"]).ok();
    assert!(std::fs::read_to_string(lap.join("journal.md"))
        .unwrap()
        .ends_with("desktop\n"));
    assert_eq!(sb.git_ok(&lap, &["status", "--porcelain"]), "");
}

#[test]
fn status_shows_ahead_behind_and_the_last_push_error() {
    let (_f, sb) = setup();
    let mnt = sb.dir.path().join("usb/journal.git");
    sb.git_ok(
        &sb.work,
        &["remote", "set-url", "origin", mnt.to_str().unwrap()],
    );
    append(&sb.work, "journal.md", "x\n");
    assert_eq!(ai_in(&sb, &sb.work, &["journal.md"]).code, 4);
    let r = ai_in(&sb, &sb.work, &["status"]);
    r.ok();
    assert!(r.stdout.contains("ahead 1, behind 0"), "{}", r.stdout);
    assert!(
        r.stdout.contains("last push: FAILED") && r.stdout.contains("disk mounted"),
        "{}",
        r.stdout
    );
    // Its objects are unknown, not "0 B": shown as such, and compaction
    // leaves it for later (the work repository is still packed).
    assert!(
        r.stdout
            .contains("journal.git: not reachable (disk not mounted?)"),
        "{}",
        r.stdout
    );
    let c = ai_in(&sb, &sb.work, &["compact"]);
    c.ok();
    assert!(
        c.stdout.contains("skipped")
            && c.stdout
                .contains("not reachable (disk not mounted?); packed by a later run"),
        "{}",
        c.stdout
    );
    let d = ai_in(&sb, &sb.work, &["doctor"]);
    assert!(
        d.stdout.contains("not reachable (disk not mounted?)"),
        "{}",
        d.stdout
    );
    let j = ai_in(&sb, &sb.work, &["status", "--json"]).json();
    assert_eq!(j["ahead"], 1);
    assert_eq!(j["last_push"]["ok"], false);
    // The disk is back: sync pushes the pending commit; status turns clean.
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
    let r = ai_in(&sb, &sb.work, &["sync"]);
    r.ok();
    assert!(r.stdout.contains("pushed 1 commit"), "{}", r.stdout);
    let r = ai_in(&sb, &sb.work, &["status"]);
    assert!(
        r.stdout.contains("ahead 0, behind 0") && r.stdout.contains("last push: ok"),
        "{}",
        r.stdout
    );
    // A success is read from the tracking ref's reflog; the failure's
    // record is gone, so it can't come back as the newer one.
    assert!(!sb.work.join(".git/ai-commit/last-push.json").exists());
    let j = ai_in(&sb, &sb.work, &["status", "--json"]).json();
    assert_eq!(j["last_push"]["ok"], true);
    let age = now_secs() - j["last_push"]["at"].as_u64().unwrap();
    assert!(age < 600, "the push's time, not another: {j}");
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn init_from_a_directory_with_files_to_a_pushed_repository() {
    let (_f, sb) = setup();
    global_identity(&sb);
    let dir = sb.dir.path().join("notes");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    write(&dir, "journal.md", "# Beginning of Notes\n");
    write(&dir, "sub/idea.txt", "idea\n");
    write(&dir, ".gitignore", "*.tmp\n");
    write(&dir, "scratch.tmp", "ignored\n");
    let bare = sb.dir.path().join("disk2/notes.git");
    let r = ai_in(
        &sb,
        sb.dir.path(),
        &[
            "init",
            dir.to_str().unwrap(),
            "--bare",
            bare.to_str().unwrap(),
        ],
    );
    r.ok();
    assert!(
        r.stdout.contains("created the bare repository") && r.stdout.contains("first commit"),
        "{}",
        r.stdout
    );
    let files = sb.git_ok(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(files, ".gitignore\njournal.md\nsub/idea.txt\n");
    assert_eq!(
        sb.git_ok(&dir, &["rev-parse", "--abbrev-ref", "main@{upstream}"])
            .trim(),
        "origin/main"
    );
    assert_eq!(
        sb.git_ok(&bare, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    let fsck = sb.git(&bare, &["fsck", "--strict"]);
    assert!(fsck.status.success());
    // Re-run: it checks and reports, changes nothing.
    let head = sb.git_ok(&dir, &["rev-parse", "HEAD"]);
    let r = ai_in(
        &sb,
        sb.dir.path(),
        &[
            "init",
            dir.to_str().unwrap(),
            "--bare",
            bare.to_str().unwrap(),
        ],
    );
    r.ok();
    assert!(
        r.stdout.contains("already a repository") && r.stdout.contains("up to date"),
        "{}",
        r.stdout
    );
    assert_eq!(sb.git_ok(&dir, &["rev-parse", "HEAD"]), head);
    // …and the journal workflow works at once.
    append(&dir, "journal.md", "entry\n");
    ai_in(&sb, &dir, &["journal.md"]).ok();
    assert_eq!(
        sb.git_ok(&bare, &["log", "-1", "--format=%s", "main"])
            .trim(),
        MSG
    );
}

#[test]
fn init_on_an_empty_directory_and_on_an_existing_repository() {
    let (_f, sb) = setup();
    global_identity(&sb);
    let empty = sb.dir.path().join("empty");
    let bare = sb.dir.path().join("empty.git");
    ai_in(
        &sb,
        sb.dir.path(),
        &[
            "init",
            empty.to_str().unwrap(),
            "--bare",
            bare.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        sb.git_ok(&bare, &["log", "--format=%s", "main"]).trim(),
        "Initial commit"
    );
    // The existing work repo has an origin already: a different --bare is refused.
    let other = sb.dir.path().join("other.git");
    let r = ai_in(
        &sb,
        &sb.work,
        &["init", ".", "--bare", other.to_str().unwrap()],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("origin already points to"),
        "{}",
        r.stderr
    );
    assert!(!other.exists(), "nothing created");
    // A network address is refused, and no `ssh:` directory appears.
    for url in [
        "ssh://127.0.0.1/srv/journal.git",
        "me@127.0.0.1:journal.git",
    ] {
        let r = ai_in(&sb, sb.dir.path(), &["init", "fresh", "--bare", url]);
        assert_eq!(r.code, 1, "{url}: {}", r.stdout);
        assert!(r.stderr.contains("is a network address"), "{}", r.stderr);
        assert!(!sb.dir.path().join("fresh").join(".git").exists());
        assert!(
            !sb.dir.path().join("ssh:").exists()
                && !sb.dir.path().join("me@127.0.0.1:journal.git").exists()
        );
    }
    // A file:// URL is the path it names.
    let via_url = sb.dir.path().join("via-url.git");
    let url = format!("file://{}", via_url.display());
    ai_in(&sb, sb.dir.path(), &["init", "fromurl", "--bare", &url]).ok();
    assert_eq!(
        sb.git_ok(&via_url, &["log", "--format=%s", "main"]).trim(),
        "Initial commit"
    );
    assert!(!sb.dir.path().join("file:").exists());
    // An existing repository without a remote gets one and is pushed.
    let plain = sb.dir.path().join("plain");
    sb.git_ok(sb.dir.path(), &["init", "-q", "plain"]);
    sb.identity(&plain);
    write(&plain, "a.md", "a\n");
    sb.git_ok(&plain, &["add", "a.md"]);
    sb.git_ok(&plain, &["commit", "-qm", "mine"]);
    let pb = sb.dir.path().join("plain.git");
    let r = ai_in(&sb, &plain, &["init", "--bare", pb.to_str().unwrap()]);
    r.ok();
    assert!(r.stdout.contains("added origin"), "{}", r.stdout);
    assert_eq!(
        sb.git_ok(&pb, &["log", "--format=%s", "main"]).trim(),
        "mine",
        "history kept, not rewritten"
    );
}

#[test]
fn init_takes_an_existing_history_into_an_empty_directory_and_refuses_over_files() {
    let (_f, sb) = setup();
    global_identity(&sb);
    let second = sb.dir.path().join("second");
    let r = ai_in(
        &sb,
        sb.dir.path(),
        &[
            "init",
            second.to_str().unwrap(),
            "--bare",
            sb.bare.to_str().unwrap(),
        ],
    );
    r.ok();
    assert!(r.stdout.contains("took the history"), "{}", r.stdout);
    assert_eq!(
        std::fs::read_to_string(second.join("journal.md")).unwrap(),
        "# Beginning of Notes\n\nfirst\n"
    );
    assert_eq!(
        sb.git_ok(&second, &["rev-parse", "HEAD"]),
        sb.git_ok(&sb.bare, &["rev-parse", "main"])
    );
    let busy = sb.dir.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    write(&busy, "mine.md", "precious\n");
    let r = ai_in(
        &sb,
        sb.dir.path(),
        &[
            "init",
            busy.to_str().unwrap(),
            "--bare",
            sb.bare.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("already holds a history") && r.stderr.contains("empty directory"),
        "{}",
        r.stderr
    );
    assert!(!busy.join(".git").exists(), "nothing created");
    assert_eq!(
        std::fs::read_to_string(busy.join("mine.md")).unwrap(),
        "precious\n"
    );
    let file = sb.dir.path().join("afile");
    write(sb.dir.path(), "afile", "x");
    let r = ai_in(
        &sb,
        sb.dir.path(),
        &[
            "init",
            busy.to_str().unwrap(),
            "--bare",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not a git repository"), "{}", r.stderr);
}

/// `init` makes repositories of its own: an identity for them (as a user has
/// in ~/.gitconfig).
fn global_identity(sb: &Sandbox) {
    append(
        &sb.home,
        ".gitconfig",
        "[user]\n\tname = Journal Writer\n\temail = writer@example.org\n",
    );
}

#[test]
fn init_without_an_identity_creates_nothing() {
    let (_f, sb) = setup();
    let dir = sb.dir.path().join("notes");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "a.md", "a\n");
    let bare = sb.dir.path().join("notes.git");
    let r = ai_in(
        &sb,
        sb.dir.path(),
        &[
            "init",
            dir.to_str().unwrap(),
            "--bare",
            bare.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("user.name"), "{}", r.stderr);
    assert!(
        !dir.join(".git").exists() && !bare.exists(),
        "nothing created"
    );
}

fn backup_config(sb: &Sandbox, toml: &str) {
    let dir = sb.home.join(".config/ai-commit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), toml).unwrap();
}

fn wait_for(mut f: impl FnMut() -> bool, secs: u64) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn backup_mirrors_every_ref_skips_unmounted_targets_and_logs_failures() {
    let (_f, sb) = setup();
    let mnt = sb.dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    backup_config(
        &sb,
        &format!(
            "[backup]\nmin_interval = \"0\"\n\
             [[backup.targets]]\nmirror = \"{m}/{{name}}.git\"\nrequire = \"{m}/.mounted\"\n\
             [[backup.targets]]\nmirror = \"{d}/absent/{{name}}.git\"\nrequire = \"{d}/absent/.mounted\"\n\
             [[backup.targets]]\ncommand = [\"sh\", \"-c\", \"echo broken >&2; exit 3\"]\n",
            m = mnt.display(),
            d = sb.dir.path().display()
        ),
    );
    std::fs::write(mnt.join(".mounted"), "").unwrap();
    sb.git_ok(&sb.work, &["branch", "side"]);
    sb.git_ok(&sb.work, &["tag", "-a", "-m", "v1", "v1"]);
    let r = ai_in(&sb, &sb.work, &["backup"]);
    assert_eq!(r.code, 1, "a failed target is reported: {}", r.stdout);
    assert!(
        r.stdout.contains("ok      mirror")
            && r.stdout.contains("skipped mirror")
            && r.stdout.contains("failed  command"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("skipped") && r.stderr.contains("disk not mounted"),
        "a warning: {}",
        r.stderr
    );
    let mirror = mnt.join("work.git");
    let refs = sb.git_ok(&mirror, &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(refs, "refs/heads/main\nrefs/heads/side\nrefs/tags/v1\n");
    assert!(sb.git(&mirror, &["fsck", "--strict"]).status.success());
    let status = ai_in(&sb, &sb.work, &["backup", "--status"]);
    assert!(
        status.stdout.contains("failed  command") && status.stdout.contains("exit status: 3"),
        "{}",
        status.stdout
    );
    let log = std::fs::read_to_string(sb.home.join(".local/state/ai-commit/backup.log")).unwrap();
    assert!(
        log.contains("broken") || log.contains("exit status: 3"),
        "{log}"
    );
}

#[test]
fn a_commit_schedules_a_detached_backup_that_outlives_it_and_never_affects_the_commit() {
    let (_f, sb) = setup();
    let marker = sb.dir.path().join("backup-ran");
    backup_config(
        &sb,
        &format!(
            "[backup]\nmin_interval = \"0\"\n[[backup.targets]]\ncommand = [\"sh\", \"-c\", \"sleep 1; echo $AI_COMMIT_REPO >> '{}'; exit 1\"]\n",
            marker.display()
        ),
    );
    append(&sb.work, "journal.md", "x\n");
    let t = Instant::now();
    let r = ai_in(&sb, &sb.work, &["--json", "journal.md"]);
    r.ok(); // the backup's failure never affects the commit
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "the commit did not wait for the backup"
    );
    assert!(
        r.json()["backup"]
            .as_str()
            .unwrap()
            .starts_with("backup scheduled"),
        "{}",
        r.stdout
    );
    assert!(!marker.exists(), "still running after ai-commit exited");
    assert!(
        wait_for(|| marker.exists(), 15),
        "the detached job finished on its own"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        sb.work.display().to_string()
    );
    assert!(wait_for(
        || ai_in(&sb, &sb.work, &["backup", "--status"])
            .stdout
            .contains("failed  command"),
        10
    ));
}

#[test]
fn two_triggers_at_once_make_one_run_and_the_interval_is_honoured() {
    let (_f, sb) = setup();
    let runs = sb.dir.path().join("runs.log");
    backup_config(
        &sb,
        &format!(
            "[backup]\nmin_interval = \"1h\"\n[[backup.targets]]\ncommand = [\"sh\", \"-c\", \"echo run >> '{}'; sleep 1\"]\n",
            runs.display()
        ),
    );
    let spawn = || sb.ai_cmd(&["backup", "--scheduled"]).spawn().unwrap();
    let (mut a, mut b) = (spawn(), spawn());
    let (ra, rb) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(ra.success() && rb.success());
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        "run\n",
        "one run for two triggers"
    );
    let log = std::fs::read_to_string(sb.home.join(".local/state/ai-commit/backup.log")).unwrap();
    assert!(log.contains("coalesced"), "{log}");
    // A third within the hour waits (debounce) instead of running.
    let mut c = spawn();
    std::thread::sleep(Duration::from_millis(800));
    assert!(c.try_wait().unwrap().is_none(), "it waits for the interval");
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
    let log = std::fs::read_to_string(sb.home.join(".local/state/ai-commit/backup.log")).unwrap();
    assert!(log.contains("debounced: waiting"), "{log}");
    let _ = c.kill();
    let _ = c.wait();
}

fn backup_log(sb: &Sandbox) -> String {
    std::fs::read_to_string(sb.home.join(".local/state/ai-commit/backup.log")).unwrap_or_default()
}

/// A commit made while a job waits out its interval starts no second
/// process (it would only coalesce, and starting it costs the commit): the
/// waiting job holds the request and serves it.
#[test]
fn a_trigger_while_a_job_waits_starts_no_second_process() {
    let (_f, sb) = setup();
    let runs = sb.dir.path().join("runs.log");
    backup_config(
        &sb,
        &format!(
            "[backup]\nmin_interval = \"1h\"\n[[backup.targets]]\ncommand = [\"sh\", \"-c\", \"echo run >> '{}'\"]\n",
            runs.display()
        ),
    );
    assert!(sb
        .ai_cmd(&["backup", "--scheduled"])
        .status()
        .unwrap()
        .success());
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
    // Killed on every way out of the test: it would wait an hour.
    let mut waiting = KillOnDrop(
        sb.ai_cmd(&["backup", "--scheduled"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for(|| backup_log(&sb).contains("debounced: waiting"), 10),
        "{}",
        backup_log(&sb)
    );
    let coalesced = backup_log(&sb).matches("coalesced").count();
    append(&sb.work, "journal.md", "second\n");
    let r = sb.ai(&["--format", "json", "-m", "Add second", "journal.md"]);
    let scheduled = r.ok().json()["backup"].as_str().unwrap_or("").to_string();
    assert!(scheduled.starts_with("backup scheduled"), "{scheduled}");
    // A started job would have logged "coalesced" within moments.
    std::thread::sleep(Duration::from_millis(1500));
    let log = backup_log(&sb);
    assert_eq!(
        log.matches("coalesced").count(),
        coalesced,
        "no second job was started: {log}"
    );
    assert!(
        waiting.0.try_wait().unwrap().is_none(),
        "the waiting job still holds the request"
    );
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A request made while the job runs, in the very second it started, gets
/// a run of its own (requests are numbered, not compared with the clock).
#[test]
fn a_request_during_a_run_gets_another_run() {
    let (_f, sb) = setup();
    let runs = sb.dir.path().join("runs.log");
    let flag = sb.dir.path().join("asked");
    // The first run makes a commit (which requests a backup) while it runs.
    let script = format!(
        "echo run >> '{runs}'; if [ ! -e '{flag}' ]; then touch '{flag}'; echo more >> '{work}/journal.md'; '{bin}' -q -m 'During the backup' '{work}/journal.md'; fi",
        runs = runs.display(),
        flag = flag.display(),
        work = sb.work.display(),
        bin = support::bin().display(),
    );
    // One finished run first: the job that serves the commit's request
    // then waits out the interval, so that request predates the run.
    backup_config(
        &sb,
        "[backup]\nmin_interval = \"2s\"\n[[backup.targets]]\ncommand = [\"true\"]\n",
    );
    assert!(sb
        .ai_cmd(&["backup", "--scheduled"])
        .status()
        .unwrap()
        .success());
    backup_config(
        &sb,
        &format!(
            "[backup]\nmin_interval = \"2s\"\n[[backup.targets]]\ncommand = [\"sh\", \"-c\", {}]\n",
            toml_string(&script)
        ),
    );
    append(&sb.work, "journal.md", "second\n");
    sb.ai(&["-q", "-m", "Add second", "journal.md"]).ok();
    assert!(
        wait_for(
            || std::fs::read_to_string(&runs).unwrap_or_default() == "run\nrun\n",
            20
        ),
        "two runs: {:?}\n{}",
        std::fs::read_to_string(&runs),
        backup_log(&sb)
    );
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
