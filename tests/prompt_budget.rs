//! The prompt stays within the model's context, whatever the diff: a
//! 46,505-line insertion, many files, lockfiles, binaries.

use ai_commit::config::Config;
use ai_commit::git::{diff, stage, Repo};
use ai_commit::prompt::{self, estimate_tokens};

fn repo_with(files: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path()).unwrap();
    for (name, content) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let repo = Repo::discover(dir.path()).unwrap();
    (dir, repo)
}

fn prompt_for(dir: &tempfile::TempDir, repo: &Repo, names: &[&str], cfg: &Config) -> String {
    let target = stage::Target::Paths(names.iter().map(|n| dir.path().join(n)).collect());
    let (index, _) = stage::stage(repo, &target, false).unwrap();
    let files = diff::staged(repo, &index, Default::default()).unwrap();
    let template = prompt::template(
        cfg,
        &names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
    .unwrap();
    prompt::build(cfg, &template, &files)
}

fn within(cfg: &Config, prompt: &str) {
    let limit = (cfg.num_ctx - cfg.num_predict) as usize;
    assert!(
        estimate_tokens(prompt) <= limit,
        "{} tokens > {limit}",
        estimate_tokens(prompt)
    );
}

#[test]
fn a_46505_line_insertion_gives_a_bounded_prompt() {
    let big: String = (1..=46_505)
        .map(|i| format!("Entry {i}: a line of the journal that was pasted in one go.\n"))
        .collect();
    // The same text as code (a diff) and as a journal (the new entry).
    let (dir, repo) = repo_with(&[("entries.csv", big.clone().into_bytes())]);
    let (jdir, jrepo) = repo_with(&[("journal.md", big.into_bytes())]);
    for num_ctx in [2048, 8192, 32768] {
        let cfg = Config {
            num_ctx,
            ..Config::default()
        };
        let p = prompt_for(&dir, &repo, &["entries.csv"], &cfg);
        within(&cfg, &p);
        assert!(
            p.contains("entries.csv (new) | +46505 -0"),
            "per-file stats are always there"
        );
        assert!(
            p.contains("+Entry 1: a line"),
            "the first added lines are shown"
        );
        assert!(
            p.contains("more added and 0 more removed lines of entries.csv not shown"),
            "what was cut is said"
        );
        assert!(
            p.len() > num_ctx as usize,
            "the budget is used, not wasted: {} bytes",
            p.len()
        );

        // A journal is held to `journal_budget` (2048) whatever num_ctx is.
        let p = prompt_for(&jdir, &jrepo, &["journal.md"], &cfg);
        let limit = prompt::token_limit(&cfg, ai_commit::config::PromptKind::Journal);
        assert!(limit <= 2048, "{limit}");
        assert!(
            estimate_tokens(&p) <= limit,
            "{} tokens > {limit}",
            estimate_tokens(&p)
        );
        assert!(p.contains("journal.md (new) | +46505 -0"), "{p}");
        assert!(p.contains("\nEntry 1: a line of the journal"), "{p}");
        assert!(
            p.contains("more lines of the new entry not shown]\nEND NEW ENTRY"),
            "{p}"
        );
        assert!(p.len() > limit * 2, "the budget is used: {} bytes", p.len());
    }
}

#[test]
fn many_files_share_the_budget_and_lockfiles_and_binaries_are_summarised() {
    let mut files: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| {
            (
                format!("notes/{i:02}.md"),
                (0..400)
                    .map(|l| format!("note {i} line {l}\n"))
                    .collect::<String>()
                    .into_bytes(),
            )
        })
        .collect();
    files.push((
        "Cargo.lock".into(),
        "[[package]]\nname = \"lockedcrate\"\n"
            .repeat(500)
            .into_bytes(),
    ));
    files.push(("photo.png".into(), vec![0x89, b'P', b'N', b'G', 0, 0, 1, 2]));
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    let (dir, repo) = repo_with(&refs);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let cfg = Config::default();
    let p = prompt_for(&dir, &repo, &names, &cfg);
    within(&cfg, &p);
    for i in 0..30 {
        assert!(
            p.contains(&format!("+note {i} line 0\n")),
            "every file gets a share (file {i})"
        );
    }
    assert!(p.contains("Cargo.lock (new) | lockfile, +1000 -0"));
    assert!(!p.contains("lockedcrate"), "lockfile content is not pasted");
    assert!(p.contains("photo.png (new) | binary, 0 -> 8 bytes"));
}

#[test]
fn small_diffs_are_shown_whole() {
    let (dir, repo) = repo_with(&[("a.rs", b"one\ntwo\n".to_vec())]);
    let (mdir, mrepo) = repo_with(&[("a.md", b"one\ntwo\n".to_vec())]);
    let cfg = Config::default();
    let p = prompt_for(&dir, &repo, &["a.rs"], &cfg);
    assert!(
        p.contains("--- a/a.rs\n+++ b/a.rs\n@@ -1,0 +1,2 @@\n+one\n+two\n"),
        "{p}"
    );
    assert!(!p.contains("not shown"));
    let p = prompt_for(&mdir, &mrepo, &["a.md"], &cfg);
    assert!(
        p.contains("BEGIN NEW ENTRY\none\ntwo\nEND NEW ENTRY"),
        "{p}"
    );
    assert!(!p.contains("not shown"));
}

/// A newest-first journal (entries below a marker line): the prompt shows
/// the new entry and no text of any older entry, not even the context
/// lines a diff would carry; paragraphs are whole lines or cut at a
/// sentence end; the entry's title is offered as a hint.
#[test]
fn a_newest_first_journal_prompt_shows_only_the_new_entry() {
    let older = "# Journal\n\n# Beginning of Notes\n\n## 2025-10-06 09:12\n\nBurnout and self-care: a long weekend away from screens.\nThe garden needs water.\n\n## 2025-10-01 20:00\n\nOld entry about the allotment.\n";
    let (dir, repo) = repo_with(&[("journal.md", older.as_bytes().to_vec())]);
    let target = stage::Target::Paths(vec![dir.path().join("journal.md")]);
    stage::stage(&repo, &target, false).unwrap();
    let idx = repo.git.index().unwrap();
    let mut index = idx;
    let tree = index.write_tree().unwrap();
    let sig = git2::Signature::now("t", "t@example.org").unwrap();
    let tree = repo.git.find_tree(tree).unwrap();
    repo.git
        .commit(Some("HEAD"), &sig, &sig, "seed", &tree, &[])
        .unwrap();
    let para = "The first time I tried to pin every input, the build still drifted. ".repeat(12);
    let new_entry = format!(
        "## 2025-10-13 14:28\n\n# Closing the Reproducibility Stack: GitOps at the App Layer\n\n{para}\n\n$ nix build .#app\n"
    );
    let text = older.replacen(
        "# Beginning of Notes\n\n",
        &format!("# Beginning of Notes\n\n{new_entry}\n"),
        1,
    );
    std::fs::write(dir.path().join("journal.md"), text).unwrap();
    let p = prompt_for(&dir, &repo, &["journal.md"], &Config::default());
    for old in [
        "Burnout",
        "garden",
        "allotment",
        "2025-10-06",
        "Beginning of Notes",
    ] {
        assert!(!p.contains(old), "older text {old:?} leaked:\n{p}");
    }
    assert!(p.contains("BEGIN NEW ENTRY\n## 2025-10-13 14:28\n"), "{p}");
    assert!(p.contains("$ nix build .#app\nEND NEW ENTRY"), "{p}");
    assert!(
        p.contains("The entry's own heading or first line: Closing the Reproducibility Stack: GitOps at the App Layer\n"),
        "{p}"
    );
    // The 800-character paragraph is cut after a sentence, not mid-word.
    assert!(p.contains("the build still drifted. […]\n"), "{p}");
}

#[test]
fn a_thousand_files_still_fit() {
    let files: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| {
            (
                format!("f/{i:04}.txt"),
                format!("content {i}\n").repeat(20).into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    let (dir, repo) = repo_with(&refs);
    let cfg = Config {
        num_ctx: 2048,
        ..Config::default()
    };
    let p = prompt_for(&dir, &repo, &["f"], &cfg);
    within(&cfg, &p);
    assert!(p.contains("… and 940 more files"), "the list is bounded");
    assert!(p.contains("1000 files changed, 20000 insertions(+), 0 deletions(-)"));
}
