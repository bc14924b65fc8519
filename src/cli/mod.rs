//! The CLI: parse, build a [`Request`], run the core, render, exit code.

mod args;
mod editor;
mod output;

use std::io::Read;
use std::path::PathBuf;

use ai_commit::doctor::{self, Level};
use ai_commit::status::ago;
use ai_commit::{
    config, hook, pipeline, prompt, Cancel, Error, Event, PushStatus, Request, Settings, Target,
};
use clap::Parser;

use args::{Cli, Command, Common, Format, HookAction};
use output::{json_err, Printer};

/// Exit codes (documented in `--help` and the README).
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_NOTHING: i32 = 3;
pub const EXIT_NOT_PUSHED: i32 = 4;
pub const EXIT_NO_MESSAGE: i32 = 5;
pub const EXIT_CANCELLED: i32 = 130;

pub fn main() -> i32 {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let cancel = Cancel::new();
    watch_ctrl_c(&rt, cancel.clone());
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));

    let code = match &cli.command {
        Some(Command::Doctor) => run_doctor(&cli.common, &cwd, &rt),
        Some(Command::Hook {
            action: HookAction::Install,
        }) => run_hook_install(&cli.common, &cwd),
        Some(Command::Init { dir, bare }) => {
            run_init(&cli.common, dir.as_deref().unwrap_or(&cwd), bare.as_deref())
        }
        Some(Command::Sync { no_push }) => run_sync(&cli.common, &cwd, *no_push),
        Some(Command::Status) => run_status(&cli.common, &cwd),
        Some(Command::Compact { status, scheduled }) => {
            run_compact(&cli.common, &cwd, *status, *scheduled)
        }
        Some(Command::Backup { status, scheduled }) => {
            run_backup(&cli.common, &cwd, *status, *scheduled)
        }
        Some(Command::Message) => {
            let req = Request {
                target: Target::Index,
                cwd,
                settings: settings(&cli.common),
                dry_run: true,
                message: None,
                backup_runner: None,
            };
            run_commit(&cli, req, &rt, &cancel)
        }
        None if cli.common.format() == Format::Plain && cli.files.is_empty() && !cli.all => {
            run_plain(&cli.common, &cwd, &rt, &cancel)
        }
        None => {
            let target = if cli.all {
                Target::AllTracked
            } else if cli.files.is_empty() {
                let mut p = Printer::new(cli.common.format(), cli.common.quiet);
                p.error("name the files to commit, or use -a for all tracked changes (see --help)");
                return args_error(&cli.common);
            } else {
                Target::Paths(cli.files.clone())
            };
            let mut s = settings(&cli.common);
            if cli.no_verify {
                s.verify = Some(false);
            }
            if cli.no_push {
                s.push = Some(false);
            } else if cli.push {
                s.push = Some(true);
            }
            let req = Request {
                target,
                cwd,
                settings: s,
                dry_run: cli.dry_run,
                message: cli.message.clone(),
                backup_runner: std::env::current_exe().ok(),
            };
            run_commit(&cli, req, &rt, &cancel)
        }
    };
    // The process exits next: whatever is left on the runtime (the Ctrl-C
    // watch, an unneeded model lookup) can be dropped without waiting for
    // its threads to wind down, which a plain drop does.
    rt.shutdown_background();
    code
}

fn args_error(common: &Common) -> i32 {
    if common.format() == Format::Json {
        println!("{}", json_err("usage", "no files named and no -a"));
    }
    2
}

/// First Ctrl-C cancels the run (the model call stops, nothing is committed);
/// a second one exits at once.
fn watch_ctrl_c(rt: &tokio::runtime::Runtime, cancel: Cancel) {
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(EXIT_CANCELLED);
            }
        }
    });
}

fn settings(c: &Common) -> Settings {
    Settings {
        model: c.model.clone(),
        host: c.host.clone(),
        timeout: c.timeout,
        prompt: c.prompt.clone(),
        fallback_message: c.fallback_message.clone(),
        ..Settings::default()
    }
}

fn run_commit(cli: &Cli, req: Request, rt: &tokio::runtime::Runtime, cancel: &Cancel) -> i32 {
    let format = cli.common.format();
    let mut printer = Printer::new(format, cli.common.quiet);
    let mut events = |ev: Event| printer.event(&ev);
    let mut review = |msg: &str| editor::edit(msg, &req.cwd);
    let result = pipeline::run(
        &req,
        rt.handle(),
        cancel,
        &mut events,
        if cli.edit { Some(&mut review) } else { None },
    );
    match result {
        Ok(outcome) => {
            printer.outcome(&outcome);
            match outcome.push {
                PushStatus::Failed { .. } => EXIT_NOT_PUSHED,
                _ => EXIT_OK,
            }
        }
        Err(e) => report_error(&mut printer, format, &e),
    }
}

fn report_error(printer: &mut Printer, format: Format, e: &Error) -> i32 {
    let code = match e {
        Error::NothingToCommit { .. } => EXIT_NOTHING,
        Error::Cancelled => EXIT_CANCELLED,
        Error::Model(_) => EXIT_NO_MESSAGE,
        _ => EXIT_ERROR,
    };
    let text = match e {
        Error::NoSuchFile { path } => match command_named(path) {
            // `ai-commit --json status`: options before a command make clap
            // read the command as a file to commit.
            Some(cmd) => format!(
                "{e}. If you meant the `{cmd}` command, put options after it, e.g. `ai-commit {cmd} --json`"
            ),
            None => e.to_string(),
        },
        _ => e.to_string(),
    };
    if format == Format::Json {
        println!("{}", json_err(e.kind(), &text));
    }
    printer.error(&text);
    code
}

/// The subcommand a missing file's name spells, if any.
fn command_named(path: &std::path::Path) -> Option<String> {
    use clap::CommandFactory as _;
    let name = path.file_name()?.to_str()?;
    args::Cli::command()
        .get_subcommands()
        .find(|c| c.get_name() == name)
        .map(|c| c.get_name().to_string())
}

/// Drop-in for ai.py: diff on stdin, message alone on stdout; on any failure
/// nothing on stdout, the reason on stderr, exit ≠ 0.
fn run_plain(
    common: &Common,
    cwd: &std::path::Path,
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
) -> i32 {
    let mut raw = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut raw) {
        eprintln!("error: cannot read the diff from stdin: {e}");
        return EXIT_ERROR;
    }
    let input = String::from_utf8_lossy(&raw);
    if input.trim().is_empty() {
        eprintln!("error: no diff on stdin (plain mode reads the change to describe from stdin)");
        return EXIT_ERROR;
    }
    let root = ai_commit::git::Repo::discover(cwd).ok().map(|r| r.workdir);
    let cfg = match config::Config::load(root.as_deref(), settings(common)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let instruction = match prompt::template(&cfg, &[]) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read the prompt file: {e}");
            return EXIT_ERROR;
        }
    };
    let full = prompt::build_plain(&cfg, &instruction, &input);
    match pipeline::model_message(&cfg, &full, rt.handle(), cancel, &mut |_| {}) {
        Ok((msg, _model)) => {
            println!("{msg}");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, ai_commit::model::ModelError::Cancelled) {
                EXIT_CANCELLED
            } else {
                EXIT_NO_MESSAGE
            }
        }
    }
}

fn run_doctor(common: &Common, cwd: &std::path::Path, rt: &tokio::runtime::Runtime) -> i32 {
    let checks = doctor::run(cwd, &settings(common), rt.handle());
    let failed = checks.iter().any(|c| c.level == Level::Fail);
    if common.format() == Format::Json {
        println!("{}", serde_json::to_string(&checks).unwrap_or_default());
    } else {
        for c in &checks {
            let tag = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            println!("{tag} {:<10} {}", c.name, c.detail);
            for a in &c.advice {
                println!("{:<15} - {a}", "");
            }
        }
    }
    if failed {
        EXIT_ERROR
    } else {
        EXIT_OK
    }
}

fn run_hook_install(common: &Common, cwd: &std::path::Path) -> i32 {
    let mut printer = Printer::new(common.format(), common.quiet);
    let code = match hook::install(cwd) {
        Ok(hook::Installed::New(p)) => {
            println!("installed {}", p.display());
            EXIT_OK
        }
        Ok(hook::Installed::Updated(p)) => {
            println!("updated {}", p.display());
            EXIT_OK
        }
        Err(e) => return report_error(&mut printer, common.format(), &e),
    };
    // The hook runs `ai-commit message` from PATH and steps aside quietly
    // when it is not there (so `git commit` still works): say so now, or
    // the first `git commit` ends with git's "empty commit message".
    if ai_commit::job::find_on_path("ai-commit").is_none() {
        printer.warn(
            "ai-commit is not on PATH, so the hook does nothing (git commit opens the editor as \
             before): install it with `cargo install --locked --path .`, or add its directory \
             (e.g. ./.local/bin after .ci/main-job) to PATH",
        );
    }
    code
}

fn open_repo(common: &Common, cwd: &std::path::Path) -> Result<ai_commit::git::Repo, i32> {
    ai_commit::git::Repo::discover(cwd).map_err(|e| {
        let mut p = Printer::new(common.format(), common.quiet);
        report_error(&mut p, common.format(), &e)
    })
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

fn run_init(common: &Common, dir: &std::path::Path, bare: Option<&std::path::Path>) -> i32 {
    let mut printer = Printer::new(common.format(), common.quiet);
    match ai_commit::init::init(dir, bare) {
        Ok(report) => {
            if common.format() == Format::Json {
                print_json(&report);
            } else if !common.quiet {
                for step in &report.steps {
                    println!("{step}");
                }
            }
            if report.steps.iter().any(|s| s.starts_with("not pushed")) {
                EXIT_NOT_PUSHED
            } else {
                EXIT_OK
            }
        }
        Err(e) => report_error(&mut printer, common.format(), &e),
    }
}

fn run_sync(common: &Common, cwd: &std::path::Path, no_push: bool) -> i32 {
    let repo = match open_repo(common, cwd) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut printer = Printer::new(common.format(), common.quiet);
    if let Err(e) = repo.check_state() {
        return report_error(&mut printer, common.format(), &e);
    }
    let synced = match ai_commit::git::sync::sync(&repo) {
        Ok(s) => s,
        // A missing remote (its disk unmounted) is the normal state of a
        // laptop away from home: a short note and exit 4 ("not pushed"),
        // nothing to alarm a background caller.
        Err(e) if e.is_unreachable() => {
            let note = format!("not synced: {e}");
            if common.format() == Format::Json {
                println!(
                    "{}",
                    serde_json::json!({
                        "ok": true,
                        "sync": { "sync": "unreachable", "note": note },
                        "push": { "status": "skipped" },
                    })
                );
            } else if !common.quiet {
                eprintln!("note: {note}");
            }
            return EXIT_NOT_PUSHED;
        }
        Err(e) => {
            if common.format() == Format::Json {
                println!("{}", json_err("sync", &e.to_string()));
            }
            printer.error(&e.to_string());
            return EXIT_ERROR;
        }
    };
    let pushed = if no_push {
        None
    } else {
        Some(ai_commit::git::push::push(&repo).map_err(|e| e.to_string()))
    };
    if common.format() == Format::Json {
        let push = match &pushed {
            None => serde_json::json!({ "status": "skipped" }),
            Some(Ok(r)) => {
                serde_json::json!({ "status": "pushed", "commits": r.commits, "up_to_date": r.up_to_date })
            }
            Some(Err(e)) => serde_json::json!({ "status": "failed", "reason": e }),
        };
        println!(
            "{}",
            serde_json::json!({ "ok": true, "sync": synced, "push": push })
        );
    } else if !common.quiet {
        println!("{synced}");
        match &pushed {
            Some(Ok(r)) if !r.up_to_date => {
                println!("pushed {} commit(s) to {}", r.commits, r.remote)
            }
            _ => {}
        }
    }
    match pushed {
        Some(Err(e)) => {
            printer.warn(&format!("not pushed: {e}"));
            EXIT_NOT_PUSHED
        }
        _ => EXIT_OK,
    }
}

fn run_status(common: &Common, cwd: &std::path::Path) -> i32 {
    let repo = match open_repo(common, cwd) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut printer = Printer::new(common.format(), common.quiet);
    let s = match ai_commit::status::status(&repo) {
        Ok(s) => s,
        Err(e) => return report_error(&mut printer, common.format(), &e),
    };
    if common.format() == Format::Json {
        print_json(&s);
        return EXIT_OK;
    }
    let branch = s.branch.clone().unwrap_or_else(|| "(detached)".into());
    match (&s.remote, &s.url) {
        (Some(r), Some(u)) => {
            println!("{branch} → {r} ({u})");
            println!(
                "ahead {}, behind {} (as of the last fetch or push; `ai-commit sync` to update)",
                s.ahead, s.behind
            );
        }
        // Nothing to be ahead of or behind.
        _ => println!("{branch}: {}", s.remote_problem.clone().unwrap_or_default()),
    }
    match &s.last_push {
        Some(p) if p.ok => println!("last push: ok ({})", ago(p.at)),
        Some(p) => println!(
            "last push: FAILED ({}): {}",
            ago(p.at),
            p.error.clone().unwrap_or_default()
        ),
        None => println!("last push: none recorded"),
    }
    match &s.last_sync {
        Some(l) if l.ok => println!(
            "last sync: ok ({}): {}",
            ago(l.at),
            l.result.clone().unwrap_or_default()
        ),
        Some(l) if l.unreachable => println!(
            "last sync: remote not reachable ({}): {}",
            ago(l.at),
            l.error.clone().unwrap_or_default()
        ),
        Some(l) => println!(
            "last sync: FAILED ({}): {}",
            ago(l.at),
            l.error.clone().unwrap_or_default()
        ),
        None => println!("last sync: none recorded"),
    }
    for o in &s.objects {
        if !o.reachable {
            println!("objects of {}: {}", o.repo, ai_commit::status::UNREACHABLE);
            continue;
        }
        println!(
            "objects of {}: {} ({} loose, {} pack(s))",
            o.repo,
            ai_commit::compact::human(o.usage.total()),
            o.usage.loose_count,
            o.usage.packs
        );
    }
    println!(
        "last compaction: {}",
        ai_commit::status::describe_compaction(
            s.last_compaction.unwrap_or(0),
            &s.last_compaction_results
        )
    );
    EXIT_OK
}

fn run_compact(common: &Common, cwd: &std::path::Path, status: bool, scheduled: bool) -> i32 {
    use ai_commit::compact;
    let repo = match open_repo(common, cwd) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut printer = Printer::new(common.format(), common.quiet);
    let cfg = match config::Config::load(Some(&repo.workdir), settings(common)) {
        Ok(c) => c,
        Err(e) => return report_error(&mut printer, common.format(), &Error::from(e)),
    };
    let state = if status {
        Some(compact::load_state(&repo))
    } else if scheduled {
        if !cfg.compaction.enabled {
            return EXIT_OK;
        }
        match compact::scheduled(&repo, &cfg.compaction, &cfg.backup) {
            Ok(s) => s,
            Err(e) => return report_error(&mut printer, common.format(), &e),
        }
    } else {
        Some(compact::run_now(&repo, &cfg.backup))
    };
    let Some(state) = state else {
        return EXIT_OK; // coalesced into the job already pending
    };
    if common.format() == Format::Json {
        print_json(&state);
    } else if !common.quiet {
        if status {
            for dir in compact::repositories(&repo, &cfg.backup) {
                if !dir.join("objects").is_dir() {
                    println!(
                        "objects of {}: {}",
                        ai_commit::status::shown(&dir.display().to_string()),
                        ai_commit::status::UNREACHABLE
                    );
                    continue;
                }
                let u = compact::usage(&dir.join("objects"), None);
                println!(
                    "objects of {}: {} ({} loose: {}; {} pack(s): {})",
                    ai_commit::status::shown(&dir.display().to_string()),
                    compact::human(u.total()),
                    u.loose_count,
                    compact::human(u.loose_bytes),
                    u.packs,
                    compact::human(u.pack_bytes)
                );
            }
        }
        if state.finished == 0 {
            println!("no compaction has run yet for {}", repo.workdir.display());
        } else {
            println!(
                "last compaction: {} (took {} s)",
                ago(state.finished),
                state.finished.saturating_sub(state.started)
            );
        }
        for r in &state.results {
            println!(
                "  {:<7} {} ({} ms): {}",
                r.status,
                ai_commit::status::shown(&r.repo),
                r.ms,
                r.detail
            );
        }
    }
    if state.results.iter().any(|r| r.status == "failed") && !status {
        EXIT_ERROR
    } else {
        EXIT_OK
    }
}

fn run_backup(common: &Common, cwd: &std::path::Path, status: bool, scheduled: bool) -> i32 {
    let repo = match open_repo(common, cwd) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut printer = Printer::new(common.format(), common.quiet);
    let cfg = match config::Config::load(Some(&repo.workdir), settings(common)) {
        Ok(c) => c,
        Err(e) => return report_error(&mut printer, common.format(), &Error::from(e)),
    };
    let state = if status {
        Some(ai_commit::backup::load_state(&repo))
    } else if cfg.backup.targets.is_empty() {
        let file = config::global_file()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.config/ai-commit/config.toml".into());
        printer.error(&format!(
            "no backup targets: add [[backup.targets]] to {file} (see the README)"
        ));
        return EXIT_ERROR;
    } else if scheduled {
        match ai_commit::backup::scheduled(&repo, &cfg.backup) {
            Ok(s) => s,
            Err(e) => return report_error(&mut printer, common.format(), &e),
        }
    } else {
        Some(ai_commit::backup::run_now(&repo, &cfg.backup))
    };
    let Some(state) = state else {
        return EXIT_OK; // coalesced into the job already pending
    };
    if common.format() == Format::Json {
        print_json(&state);
    } else if !common.quiet {
        if state.finished == 0 {
            println!("no backup has run yet for {}", repo.workdir.display());
        } else {
            println!(
                "last backup: {} (took {} s)",
                ago(state.finished),
                state.finished.saturating_sub(state.started)
            );
        }
        for r in &state.results {
            println!("  {:<7} {} ({} ms): {}", r.status, r.target, r.ms, r.detail);
        }
    }
    for r in state.results.iter().filter(|r| r.status == "skipped") {
        printer.warn(&format!("{} skipped: {}", r.target, r.detail));
    }
    if state.results.iter().any(|r| r.status == "failed") && !status {
        EXIT_ERROR
    } else {
        EXIT_OK
    }
}
