//! Several machines, one journal: new entries never conflict (issue 14,
//! points 2 and 3). Real clones of a real bare repository, the real binary
//! (`-m` messages, no model), git's CLI as the oracle; and the merge itself
//! against `git merge-file` on generated inputs.

mod support;

use std::path::{Path, PathBuf};

use ai_commit::git::merge::{merge_insertions, Layout, Refused};
use support::ollama::{FakeOllama, Script};
use support::{Run, Sandbox};

const MARKER: &str = "# Beginning of Notes\n\n";
const SEED: &str = "## seed\nfirst\n";

fn setup() -> (FakeOllama, Sandbox) {
    let fake = FakeOllama::start(Script::text("unused"));
    let sb = Sandbox::new(&fake.url());
    sb.seed("journal.md", &format!("{MARKER}{SEED}"));
    (fake, sb)
}

/// Another machine: a clone of the bare repository.
fn machine(sb: &Sandbox, name: &str) -> PathBuf {
    sb.git_ok(
        sb.dir.path(),
        &["clone", "-q", sb.bare.to_str().unwrap(), name],
    );
    let dir = sb.dir.path().join(name);
    sb.identity(&dir);
    dir
}

fn ai_in(sb: &Sandbox, dir: &Path, args: &[&str]) -> Run {
    Run::from(sb.ai_cmd(args).current_dir(dir).output().unwrap())
}

/// A new entry right below the marker, as a newest-first journal gets it.
fn entry(text: &str) -> String {
    format!("## {text}\nwritten on {text}\n\n")
}

fn write_entry(dir: &Path, text: &str) {
    let path = dir.join("journal.md");
    let old = std::fs::read_to_string(&path).unwrap();
    let rest = old.strip_prefix(MARKER).expect("the marker on top");
    std::fs::write(&path, format!("{MARKER}{}{rest}", entry(text))).unwrap();
}

/// The journal as it must be: every entry once, the last to arrive on top.
fn expected(arrived: &[String]) -> String {
    let mut s = MARKER.to_string();
    for e in arrived.iter().rev() {
        s.push_str(&entry(e));
    }
    s + SEED
}

fn assert_linear_and_clean(sb: &Sandbox, commits: usize) {
    let bare = &sb.bare;
    assert_eq!(
        sb.git_ok(bare, &["rev-list", "--merges", "main"]),
        "",
        "no merge commits"
    );
    let n = sb.git_ok(bare, &["rev-list", "--count", "main"]);
    assert_eq!(n.trim(), commits.to_string(), "every commit once");
    sb.fsck_remote();
}

/// Each machine writes one entry into its copy of the journal (stale: it
/// has not seen the others' entries of this round) and commits; the later
/// ones sync on push. Nothing to resolve by hand, ever.
fn rounds(machines: usize, rounds: usize) {
    let (_f, sb) = setup();
    let mut dirs = vec![sb.work.clone()];
    for i in 1..machines {
        dirs.push(machine(&sb, &format!("m{i}")));
    }
    let mut arrived: Vec<String> = Vec::new();
    for round in 0..rounds {
        // Alternate who goes first.
        let order: Vec<usize> = (0..machines).map(|i| (i + round) % machines).collect();
        for (k, &m) in order.iter().enumerate() {
            let text = format!("machine {m} round {round}");
            write_entry(&dirs[m], &text);
            let r = ai_in(&sb, &dirs[m], &["--json", "-m", &text, "journal.md"]);
            let j = r.json();
            assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
            assert_eq!(j["push"]["status"], "pushed", "{}", r.stdout);
            if k > 0 {
                assert!(
                    r.stdout
                        .contains("kept both sides' new lines in journal.md"),
                    "a stale machine merges: {}",
                    r.stdout
                );
            }
            arrived.push(text);
            // The pushing machine holds exactly the shared journal.
            assert_eq!(
                std::fs::read_to_string(dirs[m].join("journal.md")).unwrap(),
                expected(&arrived)
            );
            assert_eq!(sb.git_ok(&dirs[m], &["status", "--porcelain"]), "");
        }
    }
    assert_eq!(
        sb.git_ok(&sb.bare, &["show", "main:journal.md"]),
        expected(&arrived)
    );
    assert_linear_and_clean(&sb, 1 + arrived.len());
    // Every machine catches up by a plain sync (a fast-forward).
    for d in &dirs {
        ai_in(&sb, d, &["sync"]).ok();
        assert_eq!(
            std::fs::read_to_string(d.join("journal.md")).unwrap(),
            expected(&arrived)
        );
    }
}

#[test]
fn two_machines_entries_for_several_rounds_all_land_once_newest_first() {
    rounds(2, 4);
}

#[test]
fn three_machines_entries_all_land_once_newest_first() {
    rounds(3, 2);
}

/// Everything a refused sync must leave alone.
fn snapshot(sb: &Sandbox, dir: &Path) -> (String, Vec<u8>, String, String) {
    (
        sb.head(dir),
        std::fs::read(dir.join(".git/index")).unwrap(),
        std::fs::read_to_string(dir.join("journal.md")).unwrap(),
        sb.git_ok(dir, &["status", "--porcelain"]),
    )
}

#[test]
fn both_edit_the_same_line_refused_with_nothing_changed() {
    let (_f, sb) = setup();
    let lap = machine(&sb, "laptop");
    std::fs::write(
        sb.work.join("journal.md"),
        format!("{MARKER}## seed\nfirst, says the desktop\n"),
    )
    .unwrap();
    ai_in(&sb, &sb.work, &["-m", "desktop", "journal.md"]).ok();
    // The laptop also inserts an entry, and changes the same line.
    std::fs::write(
        lap.join("journal.md"),
        format!(
            "{MARKER}{}## seed\nfirst, says the laptop\n",
            entry("laptop")
        ),
    )
    .unwrap();
    sb.git_ok(&lap, &["commit", "-qam", "laptop"]);
    sb.git_ok(&lap, &["fetch", "-q"]);
    let before = snapshot(&sb, &lap);
    for args in [&["sync"][..], &["sync", "--json", "--no-push"][..]] {
        let r = ai_in(&sb, &lap, args);
        assert_eq!(r.code, 1, "{} {}", r.stdout, r.stderr);
        assert!(
            (r.stdout.clone() + &r.stderr).contains("both changed journal.md"),
            "{} {}",
            r.stdout,
            r.stderr
        );
        assert_eq!(
            snapshot(&sb, &lap),
            before,
            "HEAD, index, work tree unchanged"
        );
        for d in ["rebase-merge", "rebase-apply", "MERGE_HEAD"] {
            assert!(!lap.join(".git").join(d).exists(), "{d} left behind");
        }
    }
    // git agrees it is a conflict.
    assert!(!sb.git(&lap, &["rebase", "origin/main"]).status.success());
}

#[test]
fn sync_merges_entries_and_only_in_journal_files() {
    let (_f, sb) = setup();
    std::fs::write(sb.work.join("code.rs"), "fn a() {}\n").unwrap();
    std::fs::write(sb.work.join("log.rs"), "fn a() {}\n").unwrap();
    std::fs::write(sb.work.join("notes.md"), "x\n").unwrap();
    std::fs::write(
        sb.work.join(".gitattributes"),
        "log.rs ai-commit-journal\nnotes.md -ai-commit-journal\n",
    )
    .unwrap();
    sb.git_ok(&sb.work, &["add", "."]);
    sb.git_ok(&sb.work, &["commit", "-qm", "files"]);
    sb.git_ok(&sb.work, &["push", "-q"]);
    let lap = machine(&sb, "laptop");
    // Insertions at the same place in one file per round, by git itself.
    for (file, merges) in [
        ("journal.md", true),
        ("log.rs", true),
        ("code.rs", false),
        ("notes.md", false),
    ] {
        for (dir, who) in [(&sb.work, "desktop"), (&lap, "laptop")] {
            let old = std::fs::read_to_string(dir.join(file)).unwrap();
            std::fs::write(dir.join(file), format!("// {who}\n{old}")).unwrap();
            sb.git_ok(dir, &["commit", "-qam", who]);
        }
        sb.git_ok(&sb.work, &["push", "-q"]);
        let r = ai_in(&sb, &lap, &["sync", "--json"]);
        if merges {
            assert_eq!(r.code, 0, "{file}: {} {}", r.stdout, r.stderr);
            let j = r.json();
            assert_eq!(j["sync"]["sync"], "rebased");
            assert_eq!(j["sync"]["merged"], serde_json::json!([file]));
            assert_eq!(j["push"]["status"], "pushed");
            let text = sb.git_ok(&sb.bare, &["show", &format!("main:{file}")]);
            assert!(
                text.starts_with("// laptop\n// desktop\n"),
                "{file}: {text}"
            );
            sb.git_ok(&sb.work, &["pull", "-q", "--ff-only"]);
        } else {
            assert_eq!(r.code, 1, "{file} is not merged: {}", r.stdout);
            assert!(
                r.stdout.contains(&format!("both changed {file}")),
                "{}",
                r.stdout
            );
            // Finish by hand as the message says, so the next file starts clean.
            sb.git_ok(&lap, &["reset", "-q", "--hard", "origin/main"]);
        }
    }
    assert_eq!(sb.git_ok(&sb.bare, &["rev-list", "--merges", "main"]), "");
    sb.fsck_remote();
}

// ---------------------------------------------------------------------
// The merge against git's own, on generated inputs.

/// A small deterministic generator (xorshift64*): reproducible cases.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Few distinct lines, so that blocks repeat, share headings and blank
/// lines, and alignments are ambiguous — where a merge would slip.
const LINES: &[&str] = &[
    "\n",
    "## Mon\n",
    "## Tue\n",
    "a\n",
    "b\n",
    "# Beginning of Notes\n",
];

fn block(rng: &mut Rng) -> Vec<String> {
    (0..1 + rng.below(3))
        .map(|_| LINES[rng.below(LINES.len())].to_string())
        .collect()
}

/// `base` with blocks inserted at random points (sometimes the point and
/// block `shared` the other side used too).
fn insert(rng: &mut Rng, base: &[String], shared: &(usize, Vec<String>)) -> Vec<String> {
    let mut gaps: Vec<Vec<String>> = vec![Vec::new(); base.len() + 1];
    for _ in 0..1 + rng.below(2) {
        let at = rng.below(gaps.len());
        let b = block(rng);
        gaps[at].extend(b);
    }
    if rng.below(3) == 0 {
        gaps[shared.0].extend(shared.1.clone());
    }
    let mut out = Vec::new();
    for (i, g) in gaps.into_iter().enumerate() {
        out.extend(g);
        if i < base.len() {
            out.push(base[i].clone());
        }
    }
    out
}

fn git_union(dir: &Path, base: &str, top: &str, bottom: &str) -> String {
    let (b, t, m) = (dir.join("base"), dir.join("top"), dir.join("bottom"));
    std::fs::write(&b, base).unwrap();
    std::fs::write(&t, top).unwrap();
    std::fs::write(&m, bottom).unwrap();
    let out = std::process::Command::new("git")
        .args(["merge-file", "-p", "--union", "--diff3"])
        .args([&t, &b, &m])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c >= 0),
        "git merge-file ran"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn insert_only_merges_equal_git_union_and_everything_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut merged, mut refused, mut both_at_one_point) = (0, 0, 0);
    for case in 0..600 {
        let base: Vec<String> = (0..rng.below(6))
            .map(|_| LINES[rng.below(LINES.len())].to_string())
            .collect();
        let shared = (rng.below(base.len() + 1), block(&mut rng));
        let mut remote = insert(&mut rng, &base, &shared);
        let mut local = insert(&mut rng, &base, &shared);
        // A third of the cases: one side also removes or changes a base line.
        let breaks = !base.is_empty() && rng.below(3) == 0;
        if breaks {
            let side = if rng.below(2) == 0 {
                &mut remote
            } else {
                &mut local
            };
            // Find a base line in the side (the last one, by the insertion
            // construction it is that base line or an equal one) and drop
            // or change it.
            let victim = base[rng.below(base.len())].clone();
            let pos = side.iter().rposition(|l| *l == victim).unwrap();
            if rng.below(2) == 0 {
                side.remove(pos);
            } else {
                side[pos] = "changed\n".to_string();
            }
        }
        let (b, r, l) = (base.concat(), remote.concat(), local.concat());
        let is_sub = |small: &[String], big: &[String]| {
            let mut it = big.iter();
            small.iter().all(|s| it.any(|x| x == s))
        };
        let insert_only = is_sub(&base, &remote) && is_sub(&base, &local);
        for layout in [Layout::NewestFirst, Layout::OldestFirst, Layout::Auto] {
            let ours = merge_insertions(b.as_bytes(), r.as_bytes(), l.as_bytes(), layout);
            if !insert_only {
                assert!(
                    matches!(ours, Err(Refused::NotInsertOnly(_))),
                    "case {case}: refused, base {b:?} remote {r:?} local {l:?}: {ours:?}"
                );
                refused += 1;
                continue;
            }
            let appended = remote.starts_with(&base) && local.starts_with(&base);
            let local_on_top = match layout {
                Layout::NewestFirst => true,
                Layout::OldestFirst => false,
                Layout::Auto => !appended,
            };
            let (top, bottom) = if local_on_top { (&l, &r) } else { (&r, &l) };
            let git = git_union(dir.path(), &b, top, bottom);
            let ours = ours.unwrap_or_else(|e| {
                panic!("case {case}: base {b:?} remote {r:?} local {l:?}: {e}")
            });
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                git,
                "case {case} ({layout:?}): base {b:?} remote {r:?} local {l:?}"
            );
            // And independently of git: both sides whole, in order.
            let lines: Vec<String> = git.split_inclusive('\n').map(String::from).collect();
            assert!(
                is_sub(&remote, &lines) && is_sub(&local, &lines),
                "case {case}"
            );
            if lines.len() < remote.len() + local.len() - base.len() {
                // Only identical insertions at one point are kept once.
                both_at_one_point += 1;
            }
            merged += 1;
        }
    }
    eprintln!("merged {merged}, refused {refused}, identical blocks kept once {both_at_one_point}");
    assert!(merged > 600 && refused > 300, "both kinds generated");
}

#[test]
fn an_unmounted_remote_is_a_quiet_note_and_status_shows_the_last_sync() {
    let (_f, sb) = setup();
    let lap = machine(&sb, "laptop");
    write_entry(&lap, "laptop");
    sb.git_ok(&lap, &["commit", "-qam", "laptop"]);
    // The disk is unmounted: the bare path is gone.
    let away = sb.dir.path().join("unmounted.git");
    std::fs::rename(&sb.bare, &away).unwrap();
    let r = ai_in(&sb, &lap, &["sync"]);
    assert_eq!(r.code, 4, "not synced, nothing lost: {}", r.stderr);
    assert!(r.stderr.starts_with("note: not synced: "), "{}", r.stderr);
    assert!(!r.stderr.contains("error"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
    let r = ai_in(&sb, &lap, &["sync", "--json"]);
    assert_eq!(r.code, 4);
    assert_eq!(r.json()["sync"]["sync"], "unreachable", "{}", r.stdout);
    let st = ai_in(&sb, &lap, &["status"]);
    assert!(
        st.stdout.contains("last sync: remote not reachable"),
        "{}",
        st.stdout
    );
    let j = ai_in(&sb, &lap, &["status", "--json"]).json();
    assert_eq!(j["last_sync"]["unreachable"], true);
    // Mounted again, with an entry from the desktop meanwhile.
    std::fs::rename(&away, &sb.bare).unwrap();
    write_entry(&sb.work, "desktop");
    ai_in(&sb, &sb.work, &["-m", "desktop", "journal.md"]).ok();
    ai_in(&sb, &lap, &["sync"]).ok();
    let st = ai_in(&sb, &lap, &["status"]);
    assert!(
        st.stdout.contains("last sync: ok")
            && st
                .stdout
                .contains("kept both sides' new lines in journal.md"),
        "{}",
        st.stdout
    );
    assert_eq!(
        sb.git_ok(&sb.bare, &["show", "main:journal.md"]),
        expected(&["desktop".into(), "laptop".into()])
    );
}
