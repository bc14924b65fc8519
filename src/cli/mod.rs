//! The CLI: parse, build a [`Request`], run the core, render, exit code.

mod args;
mod editor;
mod output;

use std::io::Read;
use std::path::PathBuf;

use ai_commit::doctor::{self, Level};
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

    match &cli.command {
        Some(Command::Doctor) => run_doctor(&cli.common, &cwd, &rt),
        Some(Command::Hook {
            action: HookAction::Install,
        }) => run_hook_install(&cli.common, &cwd),
        Some(Command::Message) => {
            let req = Request {
                target: Target::Index,
                cwd,
                settings: settings(&cli.common),
                dry_run: true,
                message: None,
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
            };
            run_commit(&cli, req, &rt, &cancel)
        }
    }
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
    if format == Format::Json {
        println!("{}", json_err(e.kind(), &e.to_string()));
    }
    printer.error(&e.to_string());
    code
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
    match hook::install(cwd) {
        Ok(hook::Installed::New(p)) => {
            println!("installed {}", p.display());
            EXIT_OK
        }
        Ok(hook::Installed::Updated(p)) => {
            println!("updated {}", p.display());
            EXIT_OK
        }
        Err(e) => report_error(&mut printer, common.format(), &e),
    }
}
