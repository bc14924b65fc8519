//! Runs of the pipeline on worker threads, and the queue that carries their
//! events to the main loop.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use ai_commit::{Cancel, Request, Settings, Target};
use nvim_oxi::libuv::AsyncHandle;
use nvim_oxi::Function;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{err, events};

/// State shared with worker threads.
struct Shared {
    queue: Mutex<VecDeque<Value>>,
    /// Active runs: id → (repository work tree, cancel, review reply channel).
    active: Mutex<HashMap<u64, Active>>,
    next_id: Mutex<u64>,
    wake: AsyncHandle,
    runtime: tokio::runtime::Runtime,
}

struct Active {
    repo: PathBuf,
    cancel: Cancel,
    review: Option<Sender<Option<String>>>,
    /// A background sync (not a commit): one at a time per repository too.
    sync: bool,
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

thread_local! {
    /// The Lua function that drains the queue (main thread only).
    static WAKER: std::cell::RefCell<Option<Function<(), ()>>> = const { std::cell::RefCell::new(None) };
}

/// Create the AsyncHandle (once, on the main thread) and the runtime.
pub fn init() -> nvim_oxi::Result<()> {
    if SHARED.get().is_some() {
        return Ok(()); // loaded twice: keep the first handle (it is never freed)
    }
    let wake = AsyncHandle::new(|| {
        // A libuv callback is a "fast" context: run the Lua side from the
        // main loop proper. Sends are coalesced; the waker drains everything.
        nvim_oxi::schedule(|_| {
            WAKER.with(|w| {
                if let Some(f) = w.borrow().as_ref() {
                    let _ = f.call(()); // a Lua error must not cross back
                }
            });
        });
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ai-commit-io")
        .enable_all()
        .build()
        .map_err(|e| {
            nvim_oxi::api::Error::Other(format!("ai-commit: cannot start its runtime: {e}"))
        })?;
    let _ = SHARED.set(Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        active: Mutex::new(HashMap::new()),
        next_id: Mutex::new(1),
        wake,
        runtime,
    }));
    Ok(())
}

fn shared() -> &'static Arc<Shared> {
    SHARED.get().expect("init() runs when the module loads")
}

pub fn set_waker(f: Function<(), ()>) {
    WAKER.with(|w| *w.borrow_mut() = Some(f));
}

fn push(v: Value) {
    let s = shared();
    if let Ok(mut q) = s.queue.lock() {
        q.push_back(v);
    }
    let _ = s.wake.send();
}

/// All queued events, oldest first, as a JSON array.
pub fn drain() -> String {
    let items: Vec<Value> = shared()
        .queue
        .lock()
        .map(|mut q| q.drain(..).collect())
        .unwrap_or_default();
    Value::Array(items).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartArgs {
    /// The buffer's file; absent with `all`.
    path: Option<PathBuf>,
    #[serde(default)]
    all: bool,
    /// Neovim's current directory (for `all`, and relative paths).
    cwd: PathBuf,
    #[serde(default)]
    dry_run: bool,
    message: Option<String>,
    /// Pause for a `reply` with the edited message before committing.
    #[serde(default)]
    review: bool,
    #[serde(default)]
    settings: Settings,
    /// The `ai-commit` CLI that runs scheduled backups (Neovim is not it):
    /// the one on PATH, or the one built beside the plugin; absent, PATH
    /// is searched.
    cli: Option<PathBuf>,
}

pub fn start(v: Value) -> String {
    let args: StartArgs = match serde_json::from_value(v) {
        Ok(a) => a,
        Err(e) => return err("bad_args", format!("start: {e}")),
    };
    let at = args.path.clone().unwrap_or_else(|| args.cwd.clone());
    // Fast (a few stat calls): find the repository now, so that a second
    // press for the same repository is refused at once.
    let repo = match ai_commit::git::Repo::discover(&args.cwd.join(&at)) {
        Ok(r) => r.workdir,
        Err(e) => return err(e.kind(), e),
    };
    let s = shared().clone();
    let (id, cancel, review_rx) = {
        let Ok(mut active) = s.active.lock() else {
            return err("internal", "run table poisoned");
        };
        // A background sync does not make a press busy: the run waits for
        // it (below), so a file opened and committed at once just works.
        if let Some((id, _)) = active.iter().find(|(_, a)| a.repo == repo && !a.sync) {
            return json!({ "ok": false, "kind": "busy", "id": id,
                "err": format!("a commit is already running for {}", repo.display()) })
            .to_string();
        }
        let id = {
            let mut n = s.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        let cancel = Cancel::new();
        let (tx, rx) = channel();
        active.insert(
            id,
            Active {
                repo: repo.clone(),
                cancel: cancel.clone(),
                review: args.review.then_some(tx),
                sync: false,
            },
        );
        (id, cancel, args.review.then_some(rx))
    };
    let req = Request {
        target: if args.all {
            Target::AllTracked
        } else {
            match args.path {
                Some(p) => Target::Paths(vec![p]),
                None => Target::AllTracked,
            }
        },
        cwd: args.cwd,
        settings: args.settings,
        dry_run: args.dry_run,
        message: args.message,
        backup_runner: args.cli,
    };
    let spawned = std::thread::Builder::new()
        .name(format!("ai-commit-run-{id}"))
        .spawn(move || worker(id, req, cancel, review_rx));
    if let Err(e) = spawned {
        forget(id);
        return err("internal", format!("cannot start a thread: {e}"));
    }
    json!({ "ok": true, "id": id, "repo": repo }).to_string()
}

/// Let a background sync of run `id`'s repository finish first (a local
/// fetch: milliseconds; bounded, as the sync itself is).
fn wait_for_sync(s: &Shared, id: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let syncing = s.active.lock().is_ok_and(|a| {
            let repo = a.get(&id).map(|r| r.repo.clone());
            a.values().any(|o| o.sync && Some(&o.repo) == repo.as_ref())
        });
        if !syncing {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn forget(id: u64) {
    if let Ok(mut a) = shared().active.lock() {
        a.remove(&id);
    }
}

fn worker(
    id: u64,
    req: Request,
    cancel: Cancel,
    review_rx: Option<std::sync::mpsc::Receiver<Option<String>>>,
) {
    let s = shared().clone();
    wait_for_sync(&s, id);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut on_event = |ev: ai_commit::Event| push(events::event(id, &ev));
        let mut review = |msg: &str| -> ai_commit::Result<Option<String>> {
            push(json!({ "id": id, "type": "review", "text": msg }));
            // Wait for the user. No message (the review buffer closed without
            // `:w`, `:AICommitCancel`, a closed channel) is the user's abort:
            // a cancellation, not an empty message (`:w` of an empty buffer).
            match review_rx.as_ref().and_then(|rx| rx.recv().ok()).flatten() {
                Some(text) => Ok(Some(text)),
                None => Err(ai_commit::Error::Cancelled),
            }
        };
        ai_commit::run(
            &req,
            s.runtime.handle(),
            &cancel,
            &mut on_event,
            if review_rx.is_some() {
                Some(&mut review)
            } else {
                None
            },
        )
    }));
    forget(id);
    let last = match result {
        Ok(Ok(outcome)) => events::done(id, &outcome),
        Ok(Err(e)) => events::failed(id, &e),
        Err(_) => json!({ "id": id, "type": "error", "kind": "panic",
            "message": "internal error in ai-commit (a bug; please report it); nothing was lost: your changes are in the work tree or staged" }),
    };
    push(last);
}

pub fn cancel(id: u64) -> String {
    let Ok(active) = shared().active.lock() else {
        return err("internal", "run table poisoned");
    };
    match active.get(&id) {
        Some(a) => {
            a.cancel.cancel();
            if let Some(tx) = &a.review {
                let _ = tx.send(None);
            }
            json!({ "ok": true }).to_string()
        }
        None => err("not_running", format!("run {id} is not running")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyArgs {
    id: u64,
    /// The message to commit; null aborts.
    text: Option<String>,
}

pub fn reply(v: Value) -> String {
    let args: ReplyArgs = match serde_json::from_value(v) {
        Ok(a) => a,
        Err(e) => return err("bad_args", format!("reply: {e}")),
    };
    let Ok(active) = shared().active.lock() else {
        return err("internal", "run table poisoned");
    };
    match active.get(&args.id).and_then(|a| a.review.as_ref()) {
        Some(tx) if tx.send(args.text).is_ok() => json!({ "ok": true }).to_string(),
        _ => err(
            "not_waiting",
            format!("run {} is not waiting for a review", args.id),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoctorArgs {
    cwd: PathBuf,
    #[serde(default)]
    settings: Settings,
}

/// Health checks (blocking, with the configured short timeouts: this is
/// `:checkhealth`, which is synchronous by nature).
pub fn doctor(v: Value) -> String {
    let args: DoctorArgs = match serde_json::from_value(v) {
        Ok(a) => a,
        Err(e) => return err("bad_args", format!("doctor: {e}")),
    };
    let checks = ai_commit::doctor::run(&args.cwd, &args.settings, shared().runtime.handle());
    json!({ "ok": true, "checks": checks }).to_string()
}

/// `:AICommitBackup`: run the configured backups now, on a worker thread; the
/// result arrives as a `backup_done` event (id 0).
pub fn backup(v: Value) -> String {
    let args: DoctorArgs = match serde_json::from_value(v) {
        Ok(a) => a,
        Err(e) => return err("bad_args", format!("backup: {e}")),
    };
    let repo = match ai_commit::git::Repo::discover(&args.cwd) {
        Ok(r) => r,
        Err(e) => return err(e.kind(), e),
    };
    let cfg = match ai_commit::Config::load(Some(&repo.workdir), args.settings) {
        Ok(c) => c,
        Err(e) => return err("config", e),
    };
    if cfg.backup.targets.is_empty() {
        let file = ai_commit::config::global_file()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.config/ai-commit/config.toml".into());
        return err(
            "no_targets",
            format!("no backup targets: add [[backup.targets]] to {file} (:help ai-commit-config)"),
        );
    }
    let spawned = std::thread::Builder::new()
        .name("ai-commit-backup".into())
        .spawn(move || {
            let state = ai_commit::backup::run_now(&repo, &cfg.backup);
            push(json!({ "id": 0, "type": "backup_done", "state": state }));
        });
    match spawned {
        Ok(_) => json!({ "ok": true }).to_string(),
        Err(e) => err("internal", format!("cannot start a thread: {e}")),
    }
}

/// The last backup's results for the repository around `cwd`.
pub fn backup_status(v: Value) -> String {
    let args: DoctorArgs = match serde_json::from_value(v) {
        Ok(a) => a,
        Err(e) => return err("bad_args", format!("backup_status: {e}")),
    };
    match ai_commit::git::Repo::discover(&args.cwd) {
        Ok(repo) => {
            json!({ "ok": true, "state": ai_commit::backup::load_state(&repo) }).to_string()
        }
        Err(e) => err(e.kind(), e),
    }
}

/// Ask Ollama to load the model, in the background; reports nothing back
/// unless it fails (a `preload` event), since it is only an optimisation.
pub fn preload(v: Value) -> String {
    let args: DoctorArgs = match serde_json::from_value(v) {
        Ok(a) => a,
        Err(e) => return err("bad_args", format!("preload: {e}")),
    };
    // Only for files in a repository (the ones `\g` can commit).
    let root = match ai_commit::git::Repo::discover(&args.cwd) {
        Ok(r) => r.workdir,
        Err(e) => return err(e.kind(), e),
    };
    let cfg = match ai_commit::Config::load(Some(&root), args.settings) {
        Ok(c) => c,
        Err(e) => return err("config", e),
    };
    let client = match ai_commit::model::Client::new(&cfg) {
        Ok(c) => c,
        Err(e) => return err("model", e),
    };
    shared().runtime.spawn(async move {
        let result = match client.resolve_model(&cfg.model).await {
            Ok(model) => client.preload(&model).await.map(|_| model),
            Err(e) => Err(e),
        };
        match result {
            Ok(model) => push(json!({ "id": 0, "type": "preloaded", "model": model })),
            Err(e) => push(json!({ "id": 0, "type": "preload_failed", "reason": e.to_string() })),
        }
    });
    json!({ "ok": true }).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncArgs {
    cwd: PathBuf,
    /// Only fetch (a buffer of the repository has unsaved changes: its file
    /// must not change under it); say what is waiting.
    #[serde(default)]
    fetch_only: bool,
    /// Push what is pending after the sync (as `ai-commit sync`).
    #[serde(default = "yes")]
    push: bool,
}

fn yes() -> bool {
    true
}

/// Reconcile the repository of `cwd` with its remote in the background
/// (`:AICommitSync`, and when a buffer of it is first entered): fetch;
/// fast-forward or replay local commits (the core's sync, which never
/// overwrites an uncommitted change); push what is pending. The result comes
/// as a `sync_done` event (id 0). Skipped while a commit runs for that
/// repository (its push syncs anyway).
pub fn sync(v: Value) -> String {
    let args: SyncArgs = match serde_json::from_value(v) {
        Ok(a) => a,
        Err(e) => return err("bad_args", format!("sync: {e}")),
    };
    let repo = match ai_commit::git::Repo::discover(&args.cwd) {
        Ok(r) => r,
        Err(e) => return err(e.kind(), e),
    };
    let workdir = repo.workdir.clone();
    let s = shared().clone();
    let id = {
        let Ok(mut active) = s.active.lock() else {
            return err("internal", "run table poisoned");
        };
        if active.values().any(|a| a.repo == workdir) {
            return json!({ "ok": false, "kind": "busy",
                "err": format!("a commit or sync is running for {}", workdir.display()) })
            .to_string();
        }
        let id = {
            let mut n = s.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        active.insert(
            id,
            Active {
                repo: workdir.clone(),
                cancel: Cancel::new(),
                review: None,
                sync: true,
            },
        );
        id
    };
    let spawned = std::thread::Builder::new()
        .name(format!("ai-commit-sync-{id}"))
        .spawn(move || {
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sync_worker(&repo, &args)))
                    .unwrap_or_else(|_| {
                        json!({ "ok": false, "quiet": false,
                            "err": "internal error in ai-commit's sync (a bug; please report it); nothing was changed" })
                    });
            forget(id);
            let mut ev = result;
            ev["id"] = 0.into();
            ev["type"] = "sync_done".into();
            ev["repo"] = json!(repo.workdir);
            push(ev);
        });
    if let Err(e) = spawned {
        forget(id);
        return err("internal", format!("cannot start a thread: {e}"));
    }
    json!({ "ok": true, "repo": workdir }).to_string()
}

fn sync_worker(repo: &ai_commit::git::Repo, args: &SyncArgs) -> Value {
    use ai_commit::git::remote::PushError;
    use ai_commit::git::sync::{SyncError, Synced};
    // Nothing to reconcile without a remote, a branch, or in the middle of a
    // merge: quiet notes, not errors (the user did not ask for a sync). Nor
    // while another git holds the index or the branch (a `git commit`
    // waiting in its editor) or commits meanwhile: nothing was changed, and
    // the next sync catches up.
    if let Err(e) = repo.check_state() {
        return json!({ "ok": false, "quiet": true, "err": e.to_string() });
    }
    let quiet = |e: &SyncError| {
        matches!(
            e,
            SyncError::Remote(
                PushError::Unreachable { .. } | PushError::NoRemote { .. } | PushError::Detached
            ) | SyncError::IndexLocked { .. }
                | SyncError::RefLocked { .. }
                | SyncError::Moved { .. }
        )
    };
    if args.fetch_only {
        let fetched = ai_commit::git::remote::push_target(repo)
            .map_err(SyncError::Remote)
            .and_then(|t| ai_commit::git::sync::fetch(repo, &t).map_err(SyncError::Remote));
        return match fetched {
            Err(e) => json!({ "ok": false, "quiet": quiet(&e), "err": e.to_string() }),
            Ok(()) => {
                let behind = ai_commit::status::status(repo)
                    .map(|s| s.behind)
                    .unwrap_or(0);
                json!({ "ok": true, "fetch_only": true, "behind": behind,
                    "text": format!("{behind} new commit(s) on the remote wait") })
            }
        };
    }
    match ai_commit::git::sync::sync(repo) {
        Err(e) => json!({ "ok": false, "quiet": quiet(&e), "err": e.to_string() }),
        Ok(synced) => {
            let changed = matches!(
                synced,
                Synced::FastForwarded { .. } | Synced::Rebased { .. }
            );
            let mut v = json!({ "ok": true, "sync": synced, "text": synced.to_string(), "changed": changed });
            if args.push && matches!(synced, Synced::Ahead { .. } | Synced::Rebased { .. }) {
                v["push"] = match ai_commit::git::push::push(repo) {
                    Ok(r) => json!({ "status": "pushed", "commits": r.commits }),
                    Err(e) => json!({ "status": "failed", "reason": e.to_string() }),
                };
            }
            v
        }
    }
}
