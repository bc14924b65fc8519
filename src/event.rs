//! Progress events and the final outcome of a run. The faces render these;
//! the core never prints.

use serde::Serialize;

/// Where the commit message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum MessageSource {
    /// Written by the model (name as resolved against `/api/tags`).
    Model { model: String },
    /// The fallback template was used; `reason` says why (always shown).
    Fallback { reason: String },
    /// Given by the user (`--message`, or edited in review mode).
    User,
}

impl MessageSource {
    pub fn is_fallback(&self) -> bool {
        matches!(self, MessageSource::Fallback { .. })
    }
}

/// Lines added/removed per file, as shown to the model and the user.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffStats {
    pub files: usize,
    pub insertions: usize,
    pub deletions: usize,
}

/// Progress of one run, in pipeline order.
#[derive(Debug, Clone)]
pub enum Event {
    /// Files staged (paths relative to the work tree).
    Staged { paths: Vec<String> },
    /// The staged diff that the message will describe.
    Diff(DiffStats),
    /// The model call starts (model name, host).
    Generating { model: String, host: String },
    /// A piece of the message as it streams from the model.
    Token(String),
    /// The final, sanitized message and where it came from.
    Message { text: String, source: MessageSource },
    /// The commit exists (hex oid).
    Committed { oid: String },
    /// Push started to `remote` (name) at `url`.
    Pushing { remote: String, url: String },
    /// Everything pending was pushed.
    Pushed(crate::git::push::PushReport),
    /// The push failed; the commit is kept and will be pushed next time.
    PushFailed { reason: String },
    /// A backup was scheduled in the background (or why not).
    Backup { detail: String },
}

/// What a finished run did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Hex oid of the new commit; `None` for a dry run.
    pub oid: Option<String>,
    pub branch: Option<String>,
    pub message: String,
    #[serde(flatten)]
    pub source: MessageSource,
    pub paths: Vec<String>,
    pub stats: DiffStats,
    pub push: PushStatus,
    /// Whether a background backup was scheduled (None: no targets).
    pub backup: Option<String>,
    pub elapsed_ms: u128,
    pub timings: Timings,
}

/// Milliseconds spent in each stage of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub stage_ms: f64,
    pub diff_ms: f64,
    pub model_ms: f64,
    pub commit_ms: f64,
    pub push_ms: f64,
}

/// Milliseconds since `t`, for [`Timings`].
pub(crate) fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PushStatus {
    /// Pushing is off (`--no-push`, `push = false`) or this was a dry run.
    Skipped,
    Pushed(crate::git::push::PushReport),
    /// The commit is kept locally and is pushed by the next run.
    Failed {
        reason: String,
    },
}

impl Outcome {
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}
