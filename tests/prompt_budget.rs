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
    let (dir, repo) = repo_with(&[("journal.md", big.into_bytes())]);
    for num_ctx in [2048, 8192, 32768] {
        let cfg = Config {
            num_ctx,
            ..Config::default()
        };
        let p = prompt_for(&dir, &repo, &["journal.md"], &cfg);
        within(&cfg, &p);
        assert!(
            p.contains("journal.md (new) | +46505 -0"),
            "per-file stats are always there"
        );
        assert!(
            p.contains("+Entry 1: a line"),
            "the first added lines are shown"
        );
        assert!(
            p.contains("more added and 0 more removed lines of journal.md not shown"),
            "what was cut is said"
        );
        assert!(
            p.len() > num_ctx as usize,
            "the budget is used, not wasted: {} bytes",
            p.len()
        );
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
    let (dir, repo) = repo_with(&[("a.md", b"one\ntwo\n".to_vec())]);
    let cfg = Config::default();
    let p = prompt_for(&dir, &repo, &["a.md"], &cfg);
    assert!(
        p.contains("--- a/a.md\n+++ b/a.md\n@@ -1,0 +1,2 @@\n+one\n+two\n"),
        "{p}"
    );
    assert!(!p.contains("not shown"));
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
