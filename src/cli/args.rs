//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Stage, let a local model (Ollama) write the commit message, commit, push.
///
/// With FILES: stage them (deletions too) and commit. With -a: every tracked
/// change. With `--format plain` and no FILES: the drop-in for the old ai.py
/// (a diff on stdin, the message alone on stdout).
#[derive(Debug, Parser)]
#[command(name = "ai-commit", version, args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Exit codes: 0 committed (and pushed if pushing), 1 error (nothing committed), \
2 usage, 3 nothing to commit, 4 committed but not pushed (kept; pushed by the next run), \
5 no message (plain mode: the model failed), 130 cancelled."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Files (or directories) to stage and commit; use `--` before names starting with `-`.
    pub files: Vec<PathBuf>,

    /// Stage every change to tracked files (like `git commit -a`).
    #[arg(short = 'a', long = "all")]
    pub all: bool,

    /// Do not push after committing.
    #[arg(long, overrides_with = "push")]
    pub no_push: bool,

    /// Push after committing (overrides `push = false` in the config).
    #[arg(long)]
    pub push: bool,

    /// Print the message that would be used; stage nothing, commit nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,

    /// Open the message in $GIT_EDITOR / core.editor / $VISUAL / $EDITOR before committing.
    #[arg(short = 'e', long)]
    pub edit: bool,

    /// Skip the work tree's pre-commit and commit-msg hooks (as `git commit --no-verify`).
    #[arg(long)]
    pub no_verify: bool,

    /// Use this message instead of asking the model.
    #[arg(short = 'm', long = "message", value_name = "TEXT")]
    pub message: Option<String>,

    #[command(flatten)]
    pub common: Common,
}

/// Options every command understands.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Ollama model (default gemma3; `gemma3` also finds `gemma3:latest` or another tag).
    #[arg(long, global = true, value_name = "NAME")]
    pub model: Option<String>,

    /// Ollama address: host:port or URL (default: config, else $OLLAMA_HOST, else 127.0.0.1:11434).
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,

    /// Seconds the model may take in all before the fallback message is used.
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// A prompt file, or the prompt text itself.
    #[arg(long, global = true, value_name = "FILE|TEXT")]
    pub prompt: Option<String>,

    /// Fallback message template: {file} (the changed file, or "a.md and 2
    /// more files"), {count} (files), {title} (the entry's title or the
    /// changed definitions).
    #[arg(long, global = true, value_name = "TEMPLATE")]
    pub fallback_message: Option<String>,

    /// Output: `text` for people, `json` for programs, `plain` for the message alone.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Same as `--format json`.
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress and no result line; warnings and errors still go to stderr.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Plain,
}

impl Common {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a message for what is staged now; commit nothing.
    Message,
    /// Install git hooks.
    Hook {
        #[command(subcommand)]
        action: HookAction,
    },
    /// Check Ollama, the model, the repository, identity and remote.
    Doctor,
    /// Turn a directory into a repository with a serverless bare remote,
    /// first commit, upstream, push. Safe to run again: it checks and reports.
    Init {
        /// The directory (default: the current one); created if missing.
        dir: Option<PathBuf>,
        /// The bare repository to push to (created if missing), e.g. ~/git-repos/journal.git.
        #[arg(long, value_name = "PATH")]
        bare: Option<PathBuf>,
    },
    /// Fetch; fast-forward, or replay your commits on top of the remote's;
    /// then push what is pending. Stops on a conflict with nothing changed.
    Sync {
        /// Only bring the remote's commits in.
        #[arg(long)]
        no_push: bool,
    },
    /// Commits ahead of / behind the remote, and how the last push went.
    Status,
    /// Pack loose objects of this repository, its local bare remote and
    /// backup mirrors now (`[compaction]` in config.toml).
    Compact {
        /// Show the objects' size and the last compaction instead.
        #[arg(long)]
        status: bool,
        /// Internal: the detached, debounced, single-flight job started after commits.
        #[arg(long, hide = true)]
        scheduled: bool,
    },
    /// Run the configured backups now (`[backup]` in config.toml).
    Backup {
        /// Show the last backup's results instead.
        #[arg(long)]
        status: bool,
        /// Internal: the detached, debounced, single-flight job started after commits.
        #[arg(long, hide = true)]
        scheduled: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum HookAction {
    /// prepare-commit-msg: plain `git commit` opens with the model's message.
    Install,
}
