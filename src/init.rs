//! `ai-commit init [DIR] [--bare PATH]`: from a plain directory to a
//! repository with a serverless bare remote, first commit, upstream set,
//! pushed — in one command, idempotently.
//!
//! It never overwrites or deletes a file or an existing history: a case it
//! cannot do safely (files in DIR while PATH already holds another history,
//! an `origin` that points elsewhere) is refused with what to do instead.

use std::path::{Path, PathBuf};

use git2::{Repository, RepositoryInitOptions};

use crate::error::{Error, Result};
use crate::git::push::PushReport;
use crate::git::Repo;

/// What `init` did or found, step by step (for the user).
#[derive(Debug, Default, serde::Serialize)]
pub struct InitReport {
    pub workdir: PathBuf,
    pub steps: Vec<String>,
    pub pushed: Option<PushReport>,
}

fn refuse(msg: String) -> Error {
    Error::io(msg, std::io::Error::other("nothing was changed"))
}

/// The user's `init.defaultBranch`, as `git init` uses it; else `main`.
fn default_branch(cfg: &git2::Config) -> String {
    cfg.get_string("init.defaultBranch")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".into())
}

/// Open or create the bare repository at `path`. Returns it and whether it
/// already had branches.
fn bare_repo(path: &Path, branch: &str, steps: &mut Vec<String>) -> Result<(Repository, bool)> {
    if path.exists() {
        let r = Repository::open(path).map_err(|_| {
            refuse(format!(
                "{} exists and is not a git repository; choose another --bare path",
                path.display()
            ))
        })?;
        if !r.is_bare() {
            return Err(refuse(format!(
                "{} is a repository with a work tree, not a bare repository; choose another --bare path",
                path.display()
            )));
        }
        let has_history = r
            .references_glob("refs/heads/*")
            .map(|mut i| i.next().is_some())
            .unwrap_or(false);
        steps.push(format!(
            "bare repository {} exists{}",
            path.display(),
            if has_history {
                " (with history)"
            } else {
                " (empty)"
            }
        ));
        Ok((r, has_history))
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
        }
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).initial_head(branch).mkpath(true);
        let r = Repository::init_opts(path, &opts).map_err(|e| {
            Error::git(
                format!("cannot create the bare repository {}", path.display()),
                e,
            )
        })?;
        steps.push(format!("created the bare repository {}", path.display()));
        Ok((r, false))
    }
}

fn same_place(a: &str, b: &Path, workdir: &Path) -> bool {
    let resolved = crate::git::remote::local_path(a, workdir);
    match (
        resolved.and_then(|p| p.canonicalize().ok()),
        b.canonicalize().ok(),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn set_upstream(repo: &Repository, branch: &str) -> Result<()> {
    let mut cfg = repo
        .config()
        .and_then(|c| c.open_level(git2::ConfigLevel::Local))
        .map_err(|e| Error::git("cannot open the repository's config", e))?;
    cfg.set_str(&format!("branch.{branch}.remote"), "origin")
        .and_then(|_| {
            cfg.set_str(
                &format!("branch.{branch}.merge"),
                &format!("refs/heads/{branch}"),
            )
        })
        .map_err(|e| Error::git("cannot set the upstream", e))
}

/// Run `init` for `dir` (created if missing) with an optional bare remote.
pub fn init(dir: &Path, bare: Option<&Path>) -> Result<InitReport> {
    let dir = std::path::absolute(dir)
        .map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;
    let bare = match bare {
        Some(b) => {
            let given = b.to_string_lossy();
            // A URL or `host:path` names no directory here: created as
            // given, it became `./ssh:/host/…` (and a `file://` URL
            // `./file:/…` beside the real repository).
            let local =
                crate::git::remote::local_path(&given, Path::new(".")).ok_or_else(|| {
                    refuse(format!(
                    "{given} is a network address; --bare takes a path on this machine (a mounted \
                     disk): mount it and give its path, or `git clone {given}` and run \
                     `ai-commit init` in the clone"
                ))
                })?;
            Some(
                std::path::absolute(&local)
                    .map_err(|e| Error::io(format!("cannot resolve {}", local.display()), e))?,
            )
        }
        None => None,
    };
    let mut report = InitReport {
        workdir: dir.clone(),
        ..Default::default()
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let canon = dir
        .canonicalize()
        .map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;

    // An existing repository: check it and add only what is missing.
    if let Ok(existing) = Repo::discover(&canon) {
        if existing.workdir != canon {
            return Err(refuse(format!(
                "{} is inside the repository {}; run `ai-commit init` there, or choose a directory outside it",
                canon.display(),
                existing.workdir.display()
            )));
        }
        return init_existing(existing, bare.as_deref(), report);
    }

    // Everything that can refuse comes before anything is created.
    let user = crate::git::user_config()?;
    crate::git::identity(&user)?;
    let branch = default_branch(&user);
    let (bare_repo, bare_has_history) = match &bare {
        Some(b) => {
            let (r, h) = bare_repo(b, &branch, &mut report.steps)?;
            (Some(r), h)
        }
        None => (None, false),
    };
    let has_files = std::fs::read_dir(&canon)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if bare_has_history && has_files {
        return Err(refuse(format!(
            "{} already holds a history and {} has files; to work on that history here, run `ai-commit init EMPTY_DIR --bare {}` in an empty directory (or `git clone`)",
            bare.as_ref().map(|b| b.display().to_string()).unwrap_or_default(),
            canon.display(),
            bare.as_ref().map(|b| b.display().to_string()).unwrap_or_default()
        )));
    }

    let branch = if bare_has_history {
        bare_repo
            .as_ref()
            .and_then(|r| r.find_reference("HEAD").ok())
            .and_then(|h| h.symbolic_target().ok().flatten().map(String::from))
            .and_then(|t| t.strip_prefix("refs/heads/").map(String::from))
            .unwrap_or(branch)
    } else {
        branch
    };
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head(&branch).no_reinit(true);
    Repository::init_opts(&canon, &opts).map_err(|e| {
        Error::git(
            format!("cannot create a repository in {}", canon.display()),
            e,
        )
    })?;
    report.steps.push(format!(
        "created a repository in {} (branch {branch})",
        canon.display()
    ));
    let repo = Repo::discover(&canon)?;
    if let Some(b) = &bare {
        repo.git
            .remote("origin", &b.to_string_lossy())
            .map_err(|e| Error::git("cannot add the remote origin", e))?;
        set_upstream(&repo.git, &branch)?;
        report
            .steps
            .push(format!("origin → {} (upstream of {branch})", b.display()));
    }

    if bare_has_history {
        // A second machine: take the remote's history into the empty directory.
        let synced = crate::git::sync::sync(&repo).map_err(|e| refuse(e.to_string()))?;
        report.steps.push(format!(
            "took the history of {}: {synced}",
            bare.as_ref()
                .map(|b| b.display().to_string())
                .unwrap_or_default()
        ));
        return Ok(report);
    }

    let sig = repo.signature()?;
    first_commit(&repo, &sig, &mut report)?;
    if bare.is_some() {
        push_and_report(&repo, &mut report);
    }
    Ok(report)
}

fn init_existing(repo: Repo, bare: Option<&Path>, mut report: InitReport) -> Result<InitReport> {
    if repo.git.head().is_err() {
        repo.signature()?; // a first commit is needed: refuse before changing anything
    }
    report.steps.push(format!(
        "{} is already a repository",
        repo.workdir.display()
    ));
    let branch = repo.branch().unwrap_or_else(|| "main".into());
    let origin = repo
        .git
        .find_remote("origin")
        .ok()
        .and_then(|r| r.url().ok().map(String::from));
    match (origin, bare) {
        (Some(url), Some(b)) if !same_place(&url, b, &repo.workdir) => {
            return Err(refuse(format!(
                "origin already points to {url}, not {}; change it yourself (`git remote set-url origin {}`) if that is what you want",
                b.display(),
                b.display()
            )));
        }
        (Some(url), _) => report.steps.push(format!("origin → {url}")),
        (None, Some(b)) => {
            let (_, _) = bare_repo(b, &branch, &mut report.steps)?;
            repo.git
                .remote("origin", &b.to_string_lossy())
                .map_err(|e| Error::git("cannot add the remote origin", e))?;
            report.steps.push(format!("added origin → {}", b.display()));
        }
        (None, None) => report
            .steps
            .push("no remote: pass --bare PATH to add one".into()),
    }
    if repo.git.find_remote("origin").is_ok() {
        let cfg = repo.config()?;
        if cfg.get_string(&format!("branch.{branch}.remote")).is_err() {
            set_upstream(&repo.git, &branch)?;
            report
                .steps
                .push(format!("set origin/{branch} as the upstream of {branch}"));
        }
    }
    if repo.git.head().is_err() {
        let sig = repo.signature()?;
        first_commit(&repo, &sig, &mut report)?;
    }
    if repo.git.find_remote("origin").is_ok() {
        push_and_report(&repo, &mut report);
    }
    Ok(report)
}

/// Stage everything (ignored files excepted) and commit; an empty directory
/// gets an empty first commit so that the branch and upstream exist.
fn first_commit(repo: &Repo, sig: &git2::Signature<'_>, report: &mut InitReport) -> Result<()> {
    let (mut index, _) = crate::git::stage::stage(
        repo,
        &crate::Target::Paths(vec![repo.workdir.clone()]),
        true,
    )?;
    let files = index.len();
    let tree = index
        .write_tree()
        .map_err(|e| Error::git("cannot write the first tree", e))?;
    let oid = repo.commit(tree, "Initial commit", sig)?;
    let files = match files {
        0 => "no files yet".to_string(),
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    report
        .steps
        .push(format!("first commit {} ({files})", &oid.to_string()[..7]));
    Ok(())
}

fn push_and_report(repo: &Repo, report: &mut InitReport) {
    match crate::git::publish::push_syncing(repo) {
        Ok(r) if r.up_to_date => report.steps.push(format!("{} is up to date", r.remote)),
        Ok(r) => {
            report
                .steps
                .push(format!("pushed {} commit(s) to {}", r.commits, r.remote));
            report.pushed = Some(r);
        }
        Err(e) => report
            .steps
            .push(format!("not pushed (kept; the next run pushes it): {e}")),
    }
}
