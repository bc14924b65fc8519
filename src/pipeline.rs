//! The one pipeline both faces run:
//! stage → diff → prompt → stream → sanitize (or fallback) → commit → push.
//!
//! Git work is synchronous (libgit2); the model call is async and driven on
//! the caller's tokio runtime via `Handle::block_on`, so this function is
//! called from a worker thread (the Neovim face) or the CLI's main thread.
//! Checks that can refuse the run (repo state, identity) come before anything
//! is changed, and the model is never asked before they pass.

use std::path::PathBuf;
use std::time::Instant;

use tokio::runtime::Handle;

use crate::cancel::Cancel;
use crate::config::{Config, Settings};
use crate::error::{Error, Result};
use crate::event::{ms_since, Event, MessageSource, Outcome, PushStatus, Timings};
use crate::git::stage::Target;
use crate::git::{commit, diff, publish, Repo};
use crate::message::{self, Shape};
use crate::model::{ModelError, Resolving};
use crate::prompt;

/// One run's request, as a face builds it.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    /// Where to find the repository when no path is given.
    pub cwd: PathBuf,
    /// The face's options (CLI flags, Lua `setup{}`), over the config files.
    pub settings: Settings,
    /// Build the message only: nothing staged on disk, nothing committed.
    pub dry_run: bool,
    /// Use this message instead of asking the model.
    pub message: Option<String>,
    /// The `ai-commit` executable that runs scheduled backups (the CLI
    /// passes itself); `None` looks for `ai-commit` on PATH.
    pub backup_runner: Option<PathBuf>,
}

/// Called with the message before committing (review / `--edit`): returns
/// the message to use, or `None` to abort.
pub type Review<'a> = &'a mut dyn FnMut(&str) -> Result<Option<String>>;

/// Run the pipeline. `events` sees progress in order; the result says what
/// was done. A failed push is part of a successful [`Outcome`].
pub fn run(
    req: &Request,
    rt: &Handle,
    cancel: &Cancel,
    events: &mut dyn FnMut(Event),
    review: Option<Review<'_>>,
) -> Result<Outcome> {
    let started = Instant::now();
    let repo = open_repo(req)?;
    let cfg = Config::load(Some(&repo.workdir), req.settings.clone())?;
    repo.check_state()?;
    let (author, committer) = repo.identities()?;
    // Ask Ollama which models it has while staging (a bad host is reported
    // by the model step as before).
    let mut early = req.message.is_none().then(|| Resolving::start(&cfg, rt));

    let mut timings = Timings::default();
    let t = Instant::now();
    let prefetch = match &req.target {
        Target::Paths(ps) => {
            let rel: Vec<String> = ps
                .iter()
                .filter_map(|p| repo.relative(&req.cwd.join(p)).ok())
                .collect();
            Some(diff::prefetch(repo.git.path().to_path_buf(), rel))
        }
        _ => None,
    };
    // Phase 1 of the critical section (see git::commit): stage under
    // index.lock and remember the commit the change is based on.
    let mut prepared = commit::stage(&repo, &req.target, req.dry_run)?;
    let hooks = crate::git::client_hooks::ClientHooks::new(&repo);
    if !req.dry_run && cfg.verify {
        // As `git commit`: pre-commit before the message, so a hook that
        // re-stages files (a formatter) is described by the message.
        if hooks.pre_commit()? {
            commit::after_pre_commit(&repo, &mut prepared)?;
        }
    }
    timings.stage_ms = ms_since(t);
    let t = Instant::now();
    let prefetched = prefetch.and_then(|h| h.join().ok()).unwrap_or_default();
    let files = diff::staged_from(
        &repo,
        prepared.base,
        &prepared.index,
        prepared.pathspec.as_deref(),
        prefetched,
        &prepared.contents,
    )?;
    let changes = commit::changes(&repo, &prepared)?;
    timings.diff_ms = ms_since(t);
    if files.is_empty() {
        let detail = match &req.target {
            Target::Paths(_) => {
                let names: Vec<&str> = prepared
                    .named
                    .iter()
                    .map(|p| if p.is_empty() { "the work tree" } else { p })
                    .collect();
                format!("{} unchanged since the last commit", names.join(", "))
            }
            Target::AllTracked => "no tracked file has changed".to_string(),
            Target::Index => "nothing is staged".to_string(),
        };
        return Err(Error::NothingToCommit { detail });
    }
    // What the commit contains is what the message should name.
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let stats = diff::stats(&files);
    events(Event::Staged {
        paths: paths.clone(),
    });
    events(Event::Diff(stats.clone()));

    let t = Instant::now();
    let (mut text, mut source) = match &req.message {
        Some(m) => (m.clone(), MessageSource::User),
        None => {
            let template = prompt::template(&cfg, &paths)
                .map_err(|e| Error::io("cannot read the prompt file", e))?;
            let built = prompt::build_full(&cfg, &template, &files);
            let fallback = || {
                message::fallback_for(
                    cfg.fallback_message.as_deref(),
                    built.kind,
                    &files,
                    cfg.max_subject,
                )
            };
            message_early(&cfg, &built, fallback, rt, cancel, events, early.take())?
        }
    };
    timings.model_ms = ms_since(t);
    events(Event::Message {
        text: text.clone(),
        source: source.clone(),
    });
    if let Some(review) = review {
        match review(&text)? {
            Some(edited) if !edited.trim().is_empty() => {
                if edited.trim() != text.trim() {
                    source = MessageSource::User;
                }
                text = edited.trim().to_string();
            }
            _ => return Err(Error::EmptyMessage),
        }
    }
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    if !req.dry_run && cfg.verify {
        // A hook may amend the message (a trailer); its source stays the same.
        text = hooks.commit_msg(&text, repo.git.path())?;
    }

    let mut outcome = Outcome {
        oid: None,
        branch: repo.branch(),
        message: text.clone(),
        source,
        paths,
        stats,
        push: PushStatus::Skipped,
        backup: None,
        elapsed_ms: 0,
        timings,
    };
    if req.dry_run {
        outcome.elapsed_ms = started.elapsed().as_millis();
        return Ok(outcome);
    }

    let t = Instant::now();
    // Phase 3: re-check and commit exactly the described change on top of
    // the branch as it is now, under index.lock and the ref lock.
    let oid = commit::commit(&repo, &prepared, &changes, &text, &author, &committer)?;
    outcome.oid = Some(oid.to_string());
    outcome.timings.commit_ms = ms_since(t);
    hooks.post_commit();
    events(Event::Committed {
        oid: oid.to_string(),
    });

    // From here on the commit is safe; push problems are reported, not raised.
    let t = Instant::now();
    if cfg.push {
        let target = crate::git::remote::push_target(&repo);
        if let Ok(t) = &target {
            events(Event::Pushing {
                remote: t.remote.clone(),
                url: t.url.clone(),
            });
        }
        outcome.push = match publish::publish_to(&repo, target, Some(oid)) {
            Ok((report, now)) => {
                // After a sync replayed the commit, report the copy that is
                // on the branch and the remote, not the one replaced.
                if let Some(now) = now.filter(|n| *n != oid) {
                    outcome.oid = Some(now.to_string());
                }
                events(Event::Pushed(report.clone()));
                PushStatus::Pushed(report)
            }
            Err(reason) => {
                events(Event::PushFailed {
                    reason: reason.clone(),
                });
                PushStatus::Failed { reason }
            }
        };
        outcome.timings.push_ms = ms_since(t);
    }
    // Backups never hold the commit: a detached job does them later.
    if let Some(detail) = crate::backup::trigger(&repo, &cfg.backup, req.backup_runner.as_deref()) {
        events(Event::Backup {
            detail: detail.clone(),
        });
        outcome.backup = Some(detail);
    }
    // Packing big files' versions never holds the commit either; the job
    // logs what it does (see compact.rs), so nothing is shown here.
    if !req.dry_run {
        let _ = crate::compact::trigger(&repo, &cfg.compaction, req.backup_runner.as_deref());
    }
    outcome.elapsed_ms = started.elapsed().as_millis();
    Ok(outcome)
}

/// The repository of the first path (all paths must share it), else of `cwd`.
fn open_repo(req: &Request) -> Result<Repo> {
    let Target::Paths(paths) = &req.target else {
        return Repo::discover(&req.cwd);
    };
    let Some(first) = paths.first() else {
        return Repo::discover(&req.cwd);
    };
    let first = req.cwd.join(first);
    let repo = Repo::discover(&first)?;
    refuse_submodule(req, &repo, &first)?;
    for p in &paths[1..] {
        let p = req.cwd.join(p);
        let other = Repo::discover(&p)?;
        if other.workdir != repo.workdir {
            return Err(Error::MixedRepos { first, second: p });
        }
    }
    Ok(repo)
}

/// A path that lies in a submodule of the repository the user is in (the
/// submodule itself, or a file in it) is refused, as `git add` refuses it:
/// committing there would commit and push the submodule's repository. From
/// inside the submodule, it is just a repository. A nested repository that
/// is not registered as a submodule is not refused.
fn refuse_submodule(req: &Request, repo: &Repo, named: &std::path::Path) -> Result<()> {
    let Ok(cwd) = req.cwd.canonicalize() else {
        return Ok(());
    };
    if cwd.starts_with(&repo.workdir) {
        return Ok(());
    }
    let Some(parent) = repo.workdir.parent() else {
        return Ok(());
    };
    let Ok(outer) = Repo::discover(parent) else {
        return Ok(());
    };
    let Ok(rel) = outer.relative(&repo.workdir) else {
        return Ok(());
    };
    if rel.is_empty() {
        return Ok(());
    }
    let gitlink = outer.git.index().ok().is_some_and(|i| {
        i.get_path(std::path::Path::new(&rel), 0)
            .is_some_and(|e| e.mode == 0o160000)
    });
    if gitlink || outer.git.find_submodule(&rel).is_ok() {
        return Err(Error::Submodule {
            path: named.to_path_buf(),
        });
    }
    Ok(())
}

/// Ask the model; on any model failure (a refused answer included) use the
/// fallback and say why. Only cancellation is an error here.
pub fn message_or(
    cfg: &Config,
    built: &prompt::Built,
    fallback: impl FnOnce() -> String,
    rt: &Handle,
    cancel: &Cancel,
    events: &mut dyn FnMut(Event),
) -> Result<(String, MessageSource)> {
    message_early(cfg, built, fallback, rt, cancel, events, None)
}

/// [`message_or`] with the model's name perhaps already being resolved.
fn message_early(
    cfg: &Config,
    built: &prompt::Built,
    fallback: impl FnOnce() -> String,
    rt: &Handle,
    cancel: &Cancel,
    events: &mut dyn FnMut(Event),
    early: Option<Resolving>,
) -> Result<(String, MessageSource)> {
    match generate(cfg, &built.text, &built.context, rt, cancel, events, early) {
        Ok((text, model)) => Ok((text, MessageSource::Model { model })),
        Err(ModelError::Cancelled) => Err(Error::Cancelled),
        Err(e) => Ok((
            fallback(),
            MessageSource::Fallback {
                reason: e.to_string(),
            },
        )),
    }
}

/// [`message_or`] with the generic fallback template ("Update {file}" or
/// the user's), for callers that have no diff to describe.
pub fn message_or_fallback(
    cfg: &Config,
    prompt: &str,
    paths: &[String],
    rt: &Handle,
    cancel: &Cancel,
    events: &mut dyn FnMut(Event),
) -> Result<(String, MessageSource)> {
    let built = prompt::Built {
        text: prompt.to_string(),
        kind: prompt::kind(cfg, paths),
        context: message::Context::from_plain(prompt),
    };
    let template = cfg
        .fallback_message
        .as_deref()
        .unwrap_or(crate::config::DEFAULT_FALLBACK);
    let fallback = || message::fallback(template, paths, cfg.max_subject);
    message_or(cfg, &built, fallback, rt, cancel, events)
}

/// Resolve the model, stream its answer, sanitize it. Returns the message and
/// the resolved model name. The prompt's parts are not known here (the
/// drop-in mode's text): its `+`/`-` lines count as the diff.
pub fn model_message(
    cfg: &Config,
    prompt: &str,
    rt: &Handle,
    cancel: &Cancel,
    events: &mut dyn FnMut(Event),
) -> Result<(String, String), ModelError> {
    let ctx = message::Context::from_plain(prompt);
    model_message_in(cfg, prompt, &ctx, rt, cancel, events)
}

/// [`model_message`], judging the answer against `ctx` (what the prompt
/// showed: see [`message::sanitize_in`]).
pub fn model_message_in(
    cfg: &Config,
    prompt: &str,
    ctx: &message::Context,
    rt: &Handle,
    cancel: &Cancel,
    events: &mut dyn FnMut(Event),
) -> Result<(String, String), ModelError> {
    generate(cfg, prompt, ctx, rt, cancel, events, None)
}

/// [`model_message_in`], with the resolution started early if `early`.
fn generate(
    cfg: &Config,
    prompt: &str,
    ctx: &message::Context,
    rt: &Handle,
    cancel: &Cancel,
    events: &mut dyn FnMut(Event),
    early: Option<Resolving>,
) -> Result<(String, String), ModelError> {
    let mut early = early.unwrap_or_else(|| Resolving::start(cfg, rt));
    rt.block_on(async {
        let (client, model) = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ModelError::Cancelled),
            m = early.resolved() => m?,
        };
        events(Event::Generating {
            model: model.clone(),
            host: client.host().to_string(),
        });
        let mut on_token = |t: &str| events(Event::Token(t.to_string()));
        let generated = client
            .generate(&model, prompt, cancel, &mut on_token)
            .await?;
        let shape = Shape {
            max_subject: cfg.max_subject,
            body: cfg.body,
        };
        let text = message::sanitize_in(&generated.text, shape, ctx)?;
        Ok((text, model))
    })
}
