//! Issue 11: big files are staged as git's own uncompressed loose objects,
//! and a background job packs them. git's CLI is the oracle throughout:
//! `fsck --strict`, `cat-file`, `hash-object --path`, `log -p`, `gc`.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::Sandbox;

const MARKER: &str = "# Beginning of Notes\n";

/// A newest-first journal of about `bytes`, above the fast path's threshold.
fn journal(bytes: usize) -> String {
    let mut s = format!("# Journal\n\n{MARKER}\n");
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!(
            "2024-01-{:02} Entry {i}: walked, read, wrote.\n",
            i % 28 + 1
        ));
        i += 1;
    }
    s
}

/// Insert an entry under the marker, as the journal layout does.
fn insert_entry(text: &str, n: usize) -> String {
    text.replacen(
        MARKER,
        &format!("{MARKER}\n## Entry {n}\nHerons again by the river.\n"),
        1,
    )
}

fn sandbox() -> Sandbox {
    // `-m` everywhere: no model is asked.
    let sb = Sandbox::new("http://127.0.0.1:9");
    std::fs::create_dir_all(sb.home.join(".config/ai-commit")).unwrap();
    // The job is started by hand in these tests (and once by the trigger).
    std::fs::write(
        sb.home.join(".config/ai-commit/config.toml"),
        "[compaction]\nenabled = false\nmin_interval = \"0\"\nmin_loose_bytes = 0\n",
    )
    .unwrap();
    sb
}

/// Seed, then commit `n` entries with ai-commit; returns every version
/// (oldest first) with its commit.
fn history(sb: &Sandbox, n: usize) -> Vec<(String, String)> {
    let mut text = journal(1 << 20);
    sb.seed("journal.md", &text);
    let mut out = vec![(sb.head(&sb.work), text.clone())];
    for i in 0..n {
        text = insert_entry(&text, i);
        sb.write("journal.md", &text);
        sb.ai(&["-q", "-m", &format!("Add entry {i}"), "journal.md"])
            .ok();
        out.push((sb.head(&sb.work), text.clone()));
    }
    out
}

fn fsck(sb: &Sandbox, dir: &std::path::Path) {
    let out = sb.git(dir, &["fsck", "--strict", "--no-dangling", "--full"]);
    assert!(
        out.status.success(),
        "fsck in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Both repositories are fsck clean and hold every version, byte for byte.
fn intact(sb: &Sandbox, versions: &[(String, String)]) {
    for dir in [&sb.work, &sb.bare] {
        fsck(sb, dir);
        for (commit, text) in versions {
            let got = sb.git_ok(dir, &["cat-file", "blob", &format!("{commit}:journal.md")]);
            assert!(
                got == *text,
                "{commit}:journal.md differs in {}",
                dir.display()
            );
        }
    }
    assert_eq!(sb.head(&sb.work), sb.head(&sb.bare));
}

fn loose_count(dir: &std::path::Path) -> usize {
    let objects = if dir.join(".git").is_dir() {
        dir.join(".git/objects")
    } else {
        dir.join("objects")
    };
    (0..=255u8)
        .filter_map(|i| std::fs::read_dir(objects.join(format!("{i:02x}"))).ok())
        .map(|d| d.count())
        .sum()
}

#[test]
fn a_big_file_is_staged_as_gits_own_object() {
    let sb = sandbox();
    let versions = history(&sb, 3);
    let (_, last) = versions.last().unwrap();
    // The index's id is the one git computes for the file.
    let oracle = sb.git_ok(
        &sb.work,
        &["hash-object", "--path=journal.md", "journal.md"],
    );
    let staged = sb.git_ok(&sb.work, &["rev-parse", ":journal.md"]);
    assert_eq!(oracle.trim(), staged.trim());
    // Written uncompressed (stored deflate blocks): bigger than the text.
    let hex = staged.trim();
    let obj = sb.work.join(".git/objects").join(&hex[..2]).join(&hex[2..]);
    let on_disk = std::fs::metadata(&obj).unwrap().len() as usize;
    assert!(on_disk > last.len(), "{on_disk} vs {}", last.len());
    // The index's stat data is right: git sees a clean tree without re-hashing.
    assert_eq!(sb.git_ok(&sb.work, &["status", "--porcelain"]), "");
    assert_eq!(
        sb.git_ok(&sb.work, &["diff", "--cached", "--name-only"]),
        ""
    );
    // The diff the message was written from is git's diff.
    let patch = sb.git_ok(&sb.work, &["log", "-p", "-1", "--format="]);
    assert!(patch.contains("+## Entry 2"), "{patch}");
    intact(&sb, &versions);
    // git's gc repacks and prunes them like its own.
    sb.git_ok(&sb.work, &["gc", "-q", "--prune=now"]);
    intact(&sb, &versions);
}

/// The diff the message is written from is read from the staged bytes and
/// the previous version wherever that lives: a loose object the fast path
/// wrote, one git deflated, or a pack. Each time the model sees exactly the
/// new entry, and the counts are git's own (`--numstat`).
#[test]
fn the_message_is_written_from_the_exact_diff_whatever_stores_the_last_version() {
    let fake = support::ollama::FakeOllama::start(support::ollama::Script::text(
        "Add an entry about the herons by the river",
    ));
    let sb = Sandbox::new(&fake.url());
    let mut text = journal(1 << 20);
    sb.seed("journal.md", &text);
    let forms = [
        "written by ai-commit",
        "deflated by git",
        "packed by git gc",
    ];
    for (n, form) in forms.iter().enumerate() {
        // Store the last version in the given form.
        text = insert_entry(&text, 100 + n);
        sb.write("journal.md", &text);
        match n {
            0 => {
                sb.ai(&["-q", "-m", "Set up", "journal.md"]).ok();
            }
            _ => {
                sb.git_ok(&sb.work, &["commit", "-q", "-am", "By git"]);
            }
        }
        if n == 2 {
            sb.git_ok(&sb.work, &["gc", "-q", "--prune=now"]);
        }
        text = insert_entry(&text, n);
        sb.write("journal.md", &text);
        let prompts_before = fake.prompts().len();
        let out = sb.ai(&["--format", "json", "journal.md"]);
        let json = out.ok().json();
        let prompts = fake.prompts();
        assert_eq!(prompts.len(), prompts_before + 1, "{form}");
        let prompt = prompts.last().unwrap()["prompt"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            prompt.contains(&format!("## Entry {n}")),
            "{form}: {prompt}"
        );
        assert!(
            !prompt.contains(&format!("## Entry {}", 100 + n)),
            "{form}: the previous entry is not new: {prompt}"
        );
        let numstat = sb.git_ok(&sb.work, &["diff", "--numstat", "HEAD~1", "HEAD"]);
        let git_counts: Vec<&str> = numstat.split_whitespace().take(2).collect();
        assert_eq!(
            git_counts,
            [
                json["stats"]["insertions"].to_string().as_str(),
                json["stats"]["deletions"].to_string().as_str()
            ],
            "{form}: {json}"
        );
    }
    fsck(&sb, &sb.work);
}

/// The last version is read where it lies in its loose object, not through
/// libgit2; a damaged one is still never described: the run stops, names
/// the object and what to do, and changes nothing.
#[test]
fn a_damaged_last_version_is_reported_not_described() {
    let sb = sandbox();
    let mut text = journal(1 << 20);
    sb.seed("journal.md", &text);
    text = insert_entry(&text, 1);
    sb.write("journal.md", &text);
    sb.ai(&["-q", "-m", "Stored by ai-commit", "journal.md"])
        .ok();
    let head = sb.head(&sb.work);
    let blob = sb.git_ok(&sb.work, &["rev-parse", "HEAD:journal.md"]);
    let blob = blob.trim();
    let path = sb
        .work
        .join(".git/objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    // One content byte flipped, mid-file (block headers intact).
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&path, perm).unwrap();
    std::fs::write(&path, &bytes).unwrap();

    text = insert_entry(&text, 2);
    sb.write("journal.md", &text);
    let run = sb.ai(&["-q", "journal.md"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains(blob), "{}", run.stderr);
    assert!(run.stderr.contains("git fsck"), "{}", run.stderr);
    assert_eq!(sb.head(&sb.work), head);
    assert_eq!(
        std::fs::read_to_string(sb.work.join("journal.md")).unwrap(),
        text
    );
}

#[test]
fn filters_still_apply_as_git_applies_them() {
    let sb = sandbox();
    sb.write(".gitattributes", "crlf.md text eol=crlf\nid.md ident\n");
    sb.seed("seed.txt", "seed\n");
    // CRLF content under a text attribute: git stores LF.
    let crlf = journal(400 << 10).replace('\n', "\r\n");
    sb.write("crlf.md", &crlf);
    // ident: git collapses `$Id: …$` to `$Id$` when staging.
    let ident = format!("$Id: deadbeef $\n{}", journal(400 << 10));
    sb.write("id.md", &ident);
    sb.ai(&[
        "-q",
        "-m",
        "Add files",
        ".gitattributes",
        "crlf.md",
        "id.md",
    ])
    .ok();
    for f in ["crlf.md", "id.md"] {
        let oracle = sb.git_ok(&sb.work, &["hash-object", &format!("--path={f}"), f]);
        let staged = sb.git_ok(&sb.work, &["rev-parse", &format!("HEAD:{f}")]);
        assert_eq!(oracle.trim(), staged.trim(), "{f}");
    }
    let stored = sb.git_ok(&sb.work, &["cat-file", "blob", "HEAD:crlf.md"]);
    assert!(!stored.contains('\r'));
    fsck(&sb, &sb.work);
}

#[test]
fn compaction_packs_both_repositories_and_loses_nothing() {
    let sb = sandbox();
    let versions = history(&sb, 8);
    let before = loose_count(&sb.work) + loose_count(&sb.bare);
    assert!(before > 0);
    sb.ai(&["compact"]).ok();
    assert_eq!(loose_count(&sb.work), 0);
    assert_eq!(loose_count(&sb.bare), 0);
    intact(&sb, &versions);
    // Visible: status and the compaction's own status.
    let st = sb.ai(&["compact", "--status"]);
    assert!(st.ok().stdout.contains("last compaction"), "{}", st.stdout);
    let st = sb.ai(&["status"]);
    assert!(st.ok().stdout.contains("compaction"), "{}", st.stdout);
    // And commits go on after it.
    let text = insert_entry(&versions.last().unwrap().1, 99);
    sb.write("journal.md", &text);
    sb.ai(&["-q", "-m", "After compaction", "journal.md"]).ok();
    let mut versions = versions;
    versions.push((sb.head(&sb.work), text));
    intact(&sb, &versions);
}

/// Two work trees push to one bare repository, each with its own job: while
/// one compaction holds the bare repository, another skips it (and says so)
/// but still packs its own; nothing is lost, and the next run packs the rest.
#[test]
fn a_repository_another_job_is_compacting_is_skipped() {
    let sb = sandbox();
    let versions = history(&sb, 3);
    let lock = ai_commit::compact::repo_lock_file(&sb.bare);
    let held = std::fs::File::create(&lock).unwrap();
    held.lock().unwrap();
    bare_skipped_until_released(
        &sb,
        &versions,
        "another compaction of this repository is running",
        || drop(held),
    );
}

/// While something holds the bare repository, `ai-commit compact` skips it
/// with `reason` and packs the work repository; after `release` the next
/// run packs the bare one too, and every version is intact.
fn bare_skipped_until_released(
    sb: &Sandbox,
    versions: &[(String, String)],
    reason: &str,
    release: impl FnOnce(),
) {
    let bare_loose = loose_count(&sb.bare);
    assert!(bare_loose > 0);
    let r = sb.ai(&["compact"]);
    r.ok();
    assert!(
        r.stdout.contains("skipped") && r.stdout.contains(reason),
        "{}",
        r.stdout
    );
    assert_eq!(loose_count(&sb.work), 0, "its own repository is packed");
    assert_eq!(
        loose_count(&sb.bare),
        bare_loose,
        "the held one is left alone"
    );
    release();
    sb.ai(&["compact"]).ok();
    assert_eq!(loose_count(&sb.bare), 0);
    intact(sb, versions);
}

/// git's own packing is respected: while a `git gc` holds the bare
/// repository's `gc.pid` (a live process on this host, as git checks it),
/// the compaction skips that repository and says why, and packs the rest;
/// once the gc is gone, the next run packs it.
#[test]
fn a_repository_git_gc_is_packing_is_skipped() {
    let sb = sandbox();
    let versions = history(&sb, 3);
    let host = String::from_utf8(
        std::process::Command::new("uname")
            .arg("-n")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // This test's own process stands in for the running gc.
    let gc_pid = sb.bare.join("gc.pid");
    std::fs::write(&gc_pid, format!("{} {}", std::process::id(), host.trim())).unwrap();
    bare_skipped_until_released(
        &sb,
        &versions,
        &format!(
            "git gc (pid {}) is running in this repository",
            std::process::id()
        ),
        || std::fs::remove_file(&gc_pid).unwrap(),
    );
}

/// Two machines share one bare repository (a disk that moves between
/// them) and each runs its own compaction of it at the same moment, each
/// with its own home and state directory: only the lock in the repository
/// keeps them apart (without it, one `git repack` failed with "could not
/// find pack" in 3 of 3 runs). Repeated with commits from both in between
/// (each push syncing over the other's): every version stays readable in
/// the bare repository and on the machine that wrote it, and all three
/// repositories stay `fsck --strict` clean.
#[test]
fn two_machines_compacting_one_bare_repository_at_once_lose_nothing() {
    let sb = sandbox();
    let mut desk = history(&sb, 2);
    let root = sb.work.parent().unwrap().to_path_buf();
    let laptop = root.join("laptop");
    let home2 = root.join("home2");
    std::fs::create_dir_all(home2.join(".config/ai-commit")).unwrap();
    for f in [".gitconfig", ".config/ai-commit/config.toml"] {
        std::fs::copy(sb.home.join(f), home2.join(f)).unwrap();
    }
    sb.git_ok(&root, &["clone", "-q", "remote.git", "laptop"]);
    sb.identity(&laptop);
    // The laptop: its own work tree, home and state directory.
    let on_laptop = |args: &[&str]| {
        let mut c = sb.ai_cmd(args);
        c.current_dir(&laptop)
            .env("HOME", &home2)
            .env("XDG_CONFIG_HOME", home2.join(".config"))
            .env("XDG_STATE_HOME", home2.join(".local/state"))
            .env("GIT_CONFIG_GLOBAL", home2.join(".gitconfig"));
        c
    };
    let mut lap: Vec<(String, String)> = Vec::new();
    let mut notes = journal(1 << 20);
    for round in 0..4 {
        // The laptop writes its own big file (the fast path), then the
        // desktop an entry: each push finds the other's commits first.
        notes = insert_entry(&notes, 300 + round);
        std::fs::write(laptop.join("laptop.md"), &notes).unwrap();
        support::Run::from(
            on_laptop(&["-q", "-m", &format!("Laptop {round}"), "laptop.md"])
                .output()
                .unwrap(),
        )
        .ok();
        lap.push((sb.head(&laptop), notes.clone()));
        let text = insert_entry(&desk.last().unwrap().1, 400 + round);
        sb.write("journal.md", &text);
        sb.ai(&["-q", "-m", &format!("Desktop {round}"), "journal.md"])
            .ok();
        desk.push((sb.head(&sb.work), text));

        let desktop_job = sb
            .ai_cmd(&["compact"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let laptop_job = on_laptop(&["compact"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        for job in [desktop_job, laptop_job] {
            let out = job.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {:?}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for dir in [&sb.work, &sb.bare, &laptop] {
            fsck(&sb, dir);
        }
        for (dir, versions, file) in [
            (&sb.work, &desk, "journal.md"),
            (&sb.bare, &desk, "journal.md"),
            (&laptop, &lap, "laptop.md"),
            (&sb.bare, &lap, "laptop.md"),
        ] {
            for (commit, text) in versions.iter() {
                let got = sb.git_ok(dir, &["cat-file", "blob", &format!("{commit}:{file}")]);
                assert!(
                    got == *text,
                    "round {round}: {commit}:{file} differs in {}",
                    dir.display()
                );
            }
        }
    }
    assert_eq!(
        sb.head(&sb.work),
        sb.head(&sb.bare),
        "the desktop pushed last"
    );
}

/// Start the job from `job` and kill it (and its git) ever later, so the
/// kill lands in different phases: before, during and after writing the
/// pack, while pruning. After each kill every version is intact and a commit
/// works; its version is added to `versions`.
#[cfg(unix)]
fn kill_at_delays(
    sb: &Sandbox,
    versions: &mut Vec<(String, String)>,
    job: impl Fn() -> std::process::Command,
) {
    use std::os::unix::process::CommandExt;
    for (round, delay_ms) in [0u64, 5, 20, 50, 100, 200, 400].into_iter().enumerate() {
        let mut child = job()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SAFETY: signalling the process group we just created.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.wait();
        intact(sb, versions);
        // A commit after the kill works too.
        let text = insert_entry(&versions.last().unwrap().1, 100 + round);
        sb.write("journal.md", &text);
        sb.ai(&["-q", "-m", &format!("After kill {round}"), "journal.md"])
            .ok();
        versions.push((sb.head(&sb.work), text));
    }
}

#[cfg(unix)]
#[test]
fn a_compaction_killed_at_any_point_loses_nothing() {
    let sb = sandbox();
    let mut versions = history(&sb, 6);
    kill_at_delays(&sb, &mut versions, || sb.ai_cmd(&["compact"]));
    sb.ai(&["compact"]).ok();
    intact(&sb, &versions);
}

#[test]
fn a_commit_during_compaction_is_not_blocked() {
    let sb = sandbox();
    let mut versions = history(&sb, 8);
    for round in 0..3 {
        let mut job = sb
            .ai_cmd(&["compact"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Commits while the job runs (and, if it is quick, after it).
        for i in 0..3 {
            let text = insert_entry(&versions.last().unwrap().1, 200 + round * 10 + i);
            sb.write("journal.md", &text);
            let run = sb.ai(&["-q", "-m", &format!("During {round}.{i}"), "journal.md"]);
            run.ok();
            versions.push((sb.head(&sb.work), text));
        }
        assert!(job.wait().unwrap().success());
        intact(&sb, &versions);
    }
}

#[test]
fn the_trigger_runs_the_detached_job() {
    let sb = sandbox();
    std::fs::write(
        sb.home.join(".config/ai-commit/config.toml"),
        "[compaction]\nmin_interval = \"0\"\nmin_loose_bytes = 0\n",
    )
    .unwrap();
    let versions = history(&sb, 2);
    // The job is detached; wait for its record (a deadline, not a timing
    // assertion).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = sb.ai(&["compact", "--status"]);
        if st.stdout.contains("last compaction") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job never ran: {}",
            st.stdout
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let a repeated run (requested meanwhile) finish before checking.
    let lock_free = Instant::now() + Duration::from_secs(120);
    while Instant::now() < lock_free && loose_count(&sb.work) > 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    intact(&sb, &versions);
    let log = std::fs::read_to_string(sb.home.join(".local/state/ai-commit/compact.log"))
        .unwrap_or_default();
    assert!(log.contains("compaction of"), "{log}");
}

// ---------------------------------------------------------------------------
// Without git: libgit2 packs (src/compact/pack.rs). The ai-commit process
// gets a PATH with no `git`; the tests still use git as the oracle.

/// `ai-commit ARGS` with a PATH that holds no `git`.
fn ai_without_git(sb: &Sandbox, args: &[&str]) -> std::process::Command {
    let empty = sb.home.join("bin-without-git");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = sb.ai_cmd(args);
    c.env("PATH", &empty);
    c
}

fn compact_without_git(sb: &Sandbox) -> String {
    let out = ai_without_git(sb, &["compact"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn packs(dir: &std::path::Path) -> Vec<String> {
    let objects = if dir.join(".git").is_dir() {
        dir.join(".git/objects/pack")
    } else {
        dir.join("objects/pack")
    };
    let mut v: Vec<String> = std::fs::read_dir(objects)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn loose_path(dir: &std::path::Path, id: &str) -> std::path::PathBuf {
    dir.join(".git/objects").join(&id[..2]).join(&id[2..])
}

#[test]
fn without_git_libgit2_packs_every_repository_and_keeps_what_is_unreachable() {
    let sb = sandbox();
    let mut versions = history(&sb, 8);
    // A backup mirror (made by git, its objects loose; configured only now,
    // so that no backup job runs meanwhile), an annotated tag, a staged but
    // uncommitted file and an unreachable object.
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", "--mirror", "remote.git", "mirror.git"],
    );
    let mirror = sb.dir.path().join("mirror.git");
    let config = sb.home.join(".config/ai-commit/config.toml");
    let plain = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{plain}[backup]\n[[backup.targets]]\nmirror = \"{}\"\n",
            mirror.display()
        ),
    )
    .unwrap();
    sb.git_ok(&sb.work, &["tag", "-a", "v1", "-m", "First", "HEAD~3"]);
    sb.write("staged.txt", "staged, not committed\n");
    sb.git_ok(&sb.work, &["add", "staged.txt"]);
    let staged = sb.git_ok(&sb.work, &["rev-parse", ":staged.txt"]);
    let unreachable = sb.write("u.txt", "unreachable\n");
    let unreachable = sb.git_ok(
        &sb.work,
        &["hash-object", "-w", unreachable.to_str().unwrap()],
    );
    let unreachable = unreachable.trim();
    std::fs::remove_file(sb.work.join("u.txt")).unwrap();
    // And an unreachable object that lives in a pack (made by git).
    let in_pack = sb.write("p.txt", "unreachable, packed\n");
    let in_pack = sb.git_ok(&sb.work, &["hash-object", "-w", in_pack.to_str().unwrap()]);
    let in_pack = in_pack.trim();
    std::fs::remove_file(sb.work.join("p.txt")).unwrap();
    let mut pack_objects = std::process::Command::new("git")
        .current_dir(&sb.work)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["pack-objects", "-q", ".git/objects/pack/pack"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    writeln!(pack_objects.stdin.take().unwrap(), "{in_pack}").unwrap();
    assert!(pack_objects.wait().unwrap().success());
    std::fs::remove_file(loose_path(&sb.work, in_pack)).unwrap();
    let git_pack = packs(&sb.work);
    assert!(!git_pack.is_empty());
    assert!(loose_count(&sb.bare) > 0 && loose_count(&mirror) > 0);

    let out = compact_without_git(&sb);
    assert_eq!(
        out.matches("packed with libgit2 (git not found on PATH)")
            .count(),
        3,
        "{out}"
    );
    intact(&sb, &versions);
    fsck(&sb, &mirror);
    // Only the unreachable object is still loose; one pack per repository.
    assert_eq!(loose_count(&sb.work), 1, "{out}");
    assert!(loose_path(&sb.work, unreachable).is_file());
    assert_eq!(loose_count(&sb.bare), 0, "{out}");
    assert_eq!(loose_count(&mirror), 0, "{out}");
    for dir in [&sb.work, &sb.bare, &mirror] {
        let p = packs(dir);
        assert_eq!(p.len(), 2, "{}: {p:?}", dir.display());
    }
    assert_eq!(
        sb.git_ok(&sb.work, &["cat-file", "blob", unreachable]),
        "unreachable\n"
    );
    assert_eq!(
        sb.git_ok(&sb.work, &["cat-file", "blob", in_pack]),
        "unreachable, packed\n"
    );
    // git's pack is gone: the new one holds all of it.
    assert!(packs(&sb.work).iter().all(|p| !git_pack.contains(p)));
    assert_eq!(
        sb.git_ok(&sb.work, &["cat-file", "blob", staged.trim()]),
        "staged, not committed\n"
    );
    assert_eq!(sb.git_ok(&sb.work, &["cat-file", "-t", "v1"]).trim(), "tag");
    // Recorded and shown like the git path's runs.
    let st = sb.ai(&["compact", "--status"]);
    assert!(
        st.ok().stdout.contains("packed with libgit2"),
        "{}",
        st.stdout
    );
    let json = sb.ai(&["compact", "--status", "--json"]).ok().json();
    assert!(
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "ok"),
        "{json}"
    );
    assert!(sb.ai(&["status"]).ok().stdout.contains("last compaction"));
    let log = std::fs::read_to_string(sb.home.join(".local/state/ai-commit/compact.log"))
        .unwrap_or_default();
    assert!(
        log.contains("packed with libgit2 (git not found on PATH)"),
        "{log}"
    );
    std::fs::write(&config, plain).unwrap();

    // More commits: the next run replaces the pack (still one); a run with
    // nothing new leaves the bare repository alone and writes the work
    // repository's pack again, the same (its one loose object is
    // unreachable).
    let before = packs(&sb.work);
    for i in 0..2 {
        let text = insert_entry(&versions.last().unwrap().1, 50 + i);
        sb.write("journal.md", &text);
        sb.ai(&["-q", "-m", &format!("Later {i}"), "journal.md"])
            .ok();
        versions.push((sb.head(&sb.work), text));
    }
    compact_without_git(&sb);
    intact(&sb, &versions);
    let after = packs(&sb.work);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_ne!(before, after);
    assert_eq!(loose_count(&sb.work), 1);
    assert_eq!(loose_count(&sb.bare), 0);
    let out = compact_without_git(&sb);
    let bare_line = out.lines().find(|l| l.contains("remote.git")).unwrap();
    assert!(bare_line.contains("nothing to pack"), "{out}");
    assert_eq!(packs(&sb.work), after);
    assert_eq!(loose_count(&sb.work), 1);
    intact(&sb, &versions);
}

#[cfg(unix)]
#[test]
fn without_git_a_compaction_killed_at_any_point_loses_nothing() {
    let sb = sandbox();
    let mut versions = history(&sb, 6);
    kill_at_delays(&sb, &mut versions, || ai_without_git(&sb, &["compact"]));
    compact_without_git(&sb);
    intact(&sb, &versions);
    assert_eq!(loose_count(&sb.work), 0);
    assert_eq!(loose_count(&sb.bare), 0);
}

#[test]
fn without_git_a_commit_during_compaction_succeeds_and_its_objects_survive() {
    let sb = sandbox();
    let mut versions = history(&sb, 8);
    for round in 0..3 {
        let mut job = ai_without_git(&sb, &["compact"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for i in 0..3 {
            let text = insert_entry(&versions.last().unwrap().1, 200 + round * 10 + i);
            sb.write("journal.md", &text);
            sb.ai(&["-q", "-m", &format!("During {round}.{i}"), "journal.md"])
                .ok();
            versions.push((sb.head(&sb.work), text));
        }
        assert!(job.wait().unwrap().success());
        intact(&sb, &versions);
    }
    // What was written during the runs is packed by the next one.
    compact_without_git(&sb);
    intact(&sb, &versions);
    assert_eq!(loose_count(&sb.work), 0);
    assert_eq!(loose_count(&sb.bare), 0);
}

/// A killed run can leave libgit2's temporary pack, or an index whose pack
/// never arrived; they are removed once a day old, not before (a live
/// writer's files are young).
#[test]
fn without_git_old_leftovers_of_a_killed_run_are_removed() {
    let sb = sandbox();
    let versions = history(&sb, 2);
    let dir = sb.work.join(".git/objects/pack");
    std::fs::create_dir_all(&dir).unwrap();
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(25 * 3600);
    let mut made = Vec::new();
    for (name, old) in [
        ("pack_git2_0123456789abcdef", true),
        ("pack_git2_0123456789abidx.lock", true),
        ("pack-1111111111111111111111111111111111111111.idx", true),
        ("pack_git2_fedcba9876543210", false),
        ("pack-2222222222222222222222222222222222222222.idx", false),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, "partial").unwrap();
        if old {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(day_ago)
                .unwrap();
        }
        made.push((p, old));
    }
    compact_without_git(&sb);
    for (p, old) in made {
        assert_eq!(p.exists(), !old, "{}", p.display());
    }
    intact(&sb, &versions);
}

/// Stop the no-git job (SIGSTOP) the moment it removes its first file in
/// `dirs`; `None` if it finished without removing any.
#[cfg(target_os = "linux")]
fn stopped_at_first_removal(
    sb: &Sandbox,
    dirs: &[std::path::PathBuf],
) -> Option<std::process::Child> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: plain inotify/poll/kill calls on descriptors and a process
    // group this function owns.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_CLOEXEC);
        assert!(fd >= 0);
        for d in dirs {
            let c = std::ffi::CString::new(d.as_os_str().as_bytes()).unwrap();
            assert!(libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_DELETE) >= 0);
        }
        let mut child = ai_without_git(sb, &["compact"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stopped = loop {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&mut p, 1, 20) > 0 {
                libc::kill(-(child.id() as i32), libc::SIGSTOP);
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
        };
        libc::close(fd);
        stopped.then_some(child)
    }
}

/// The moment a loose object or an old pack is first removed, what holds
/// it is already complete: the job, frozen right there (then killed), leaves
/// both repositories fsck clean with every version. Many small loose objects
/// make the removals take a while, so a wrong order would be caught midway.
#[cfg(target_os = "linux")]
#[test]
fn without_git_nothing_is_removed_before_the_pack_holding_it_is_complete() {
    let sb = sandbox();
    let mut versions = history(&sb, 4);
    let loose_dirs = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let objects = if dir.join(".git").is_dir() {
            dir.join(".git/objects")
        } else {
            dir.join("objects")
        };
        (0..=255u8)
            .map(|i| objects.join(format!("{i:02x}")))
            .filter(|d| d.is_dir())
            .chain([objects.join("pack")])
            .filter(|d| d.is_dir())
            .collect()
    };
    // 300 small notes (staged by git) and a journal entry, committed.
    let add_many = |versions: &mut Vec<(String, String)>, round: usize| {
        for i in 0..300 {
            sb.write(
                &format!("notes/{round}-{i}.md"),
                format!("note {round}-{i}\n"),
            );
        }
        sb.git_ok(&sb.work, &["add", "notes"]);
        let text = insert_entry(&versions.last().unwrap().1, 300 + round);
        sb.write("journal.md", &text);
        sb.ai(&["-q", "-m", &format!("Notes {round}"), "-a"]).ok();
        versions.push((sb.head(&sb.work), text));
    };
    // Round 0 freezes at the first removal in the work repository, round 1
    // at the removal of its old pack, round 2 at the first in the bare one.
    for round in 0..3 {
        add_many(&mut versions, round);
        let dirs = match round {
            0 => loose_dirs(&sb.work),
            1 => vec![sb.work.join(".git/objects/pack")],
            _ => loose_dirs(&sb.bare),
        };
        let Some(mut job) = stopped_at_first_removal(&sb, &dirs) else {
            panic!("round {round}: the job removed nothing");
        };
        let frozen =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| intact(&sb, &versions)));
        // SAFETY: the job's own process group.
        unsafe {
            libc::kill(-(job.id() as i32), libc::SIGKILL);
        }
        let _ = job.wait();
        if let Err(e) = frozen {
            std::panic::resume_unwind(e);
        }
        intact(&sb, &versions);
        if round == 0 {
            // An old pack for round 1.
            compact_without_git(&sb);
        }
    }
    compact_without_git(&sb);
    intact(&sb, &versions);
}

/// Run `work` while git prunes both repositories' object directories as
/// hard as it can. `git prune-packed` (run by `git repack -d`, by `git gc`,
/// by our job) removes every empty `objects/xx` directory it passes,
/// including one a writer has just created for an object it is about to
/// rename into place. One thread runs git's real `repack -d` in a loop on
/// both repositories (so objects leave their directories); a second does
/// what prune-packed does on each pass, `rmdir` of every fan-out directory,
/// very often, so that the writers' short windows are hit.
fn while_pruning<T>(sb: &Sandbox, work: impl FnOnce() -> T) -> T {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let dirs = [sb.work.join(".git/objects"), sb.bare.join("objects")];
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for d in [&sb.work, &sb.bare] {
                    // May fail while a commit holds a lock; that's fine.
                    let _ = sb.git(d, &["repack", "-d", "-q"]);
                }
            }
        });
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for objects in &dirs {
                    for e in std::fs::read_dir(objects).into_iter().flatten().flatten() {
                        let name = e.file_name();
                        let fanout = name.len() == 2
                            && name
                                .to_string_lossy()
                                .bytes()
                                .all(|b| b.is_ascii_hexdigit());
                        if fanout {
                            let _ = std::fs::remove_dir(e.path());
                        }
                    }
                }
                // A sweep every 0.5 ms: hundreds of times as often as
                // back-to-back `git repack` runs would, yet leaving the
                // writers' retries a chance.
                std::thread::sleep(std::time::Duration::from_micros(500));
            }
        });
        // Stops the threads however `work` ends: a failed assertion in it
        // would otherwise leave them running and the test hanging.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        work()
    })
}

/// Commits and pushes made while git prunes (see [`while_pruning`]), over
/// and over, all succeed and lose nothing.
#[test]
fn commits_survive_git_removing_empty_object_directories() {
    let sb = sandbox();
    let mut versions = history(&sb, 1);
    let failures = while_pruning(&sb, || {
        let mut failures = Vec::new();
        for i in 0..40 {
            // A big file (our own loose writer) and a small one (libgit2's).
            let text = insert_entry(&versions.last().unwrap().1, 300 + i);
            sb.write("journal.md", &text);
            sb.write(&format!("notes/{i}.md"), format!("note {i}\n"));
            let run = sb.ai(&[
                "-q",
                "-m",
                &format!("Busy {i}"),
                "journal.md",
                &format!("notes/{i}.md"),
            ]);
            if run.code != 0 {
                failures.push(format!("commit {i}: {}", run.stderr));
                continue;
            }
            versions.push((sb.head(&sb.work), text));
        }
        failures
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    intact(&sb, &versions);
}

/// A sync that replays local commits onto a remote that moved on (another
/// machine wrote at the journal's end, this one at its top: libgit2 merges
/// the file and writes the result) succeeds while git prunes.
#[test]
fn syncs_survive_git_removing_empty_object_directories() {
    let sb = sandbox();
    let mut text = journal(64 << 10);
    sb.seed("journal.md", &text);
    let clone = sb.home.join("clone");
    sb.git_ok(
        &sb.home,
        &[
            "clone",
            "-q",
            sb.bare.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    sb.identity(&clone);
    let mut failures = Vec::new();
    for i in 0..15 {
        // The other machine: an entry at the end, pushed.
        let theirs = format!(
            "{}\nFrom the laptop {i}.\n",
            sb.git_ok(&clone, &["show", "HEAD:journal.md"])
        );
        std::fs::write(clone.join("journal.md"), &theirs).unwrap();
        sb.git_ok(&clone, &["commit", "-qam", &format!("Laptop {i}")]);
        sb.git_ok(&clone, &["push", "-q", "origin", "main"]);
        // This one: an entry at the top, committed by git, not pushed.
        text = insert_entry(&text, 500 + i);
        sb.write("journal.md", &text);
        sb.git_ok(&sb.work, &["commit", "-qam", &format!("Desk {i}")]);
        // Only the sync runs while git prunes: git's own commands are less
        // patient with a prune this hard (`git commit` retries its
        // temporary file once, receive-pack not at all).
        let run = while_pruning(&sb, || sb.ai(&["sync"]));
        if run.code != 0 {
            failures.push(format!("sync {i}: {}{}", run.stdout, run.stderr));
        }
        text = std::fs::read_to_string(sb.work.join("journal.md")).unwrap();
        sb.git_ok(&clone, &["pull", "-q", "--rebase", "origin", "main"]);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let journal = sb.git_ok(&sb.bare, &["show", "main:journal.md"]);
    for i in 0..15 {
        assert!(
            journal.contains(&format!("## Entry {}", 500 + i)),
            "desk {i}"
        );
        assert!(
            journal.contains(&format!("From the laptop {i}.")),
            "laptop {i}"
        );
    }
    fsck(&sb, &sb.work);
    fsck(&sb, &sb.bare);
}
