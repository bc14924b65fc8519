//! ai-commit's core: one pipeline — stage, diff, prompt, stream from a local
//! Ollama model, sanitize or fall back, commit, push — reporting progress as
//! [`Event`]s. The CLI (`src/main.rs`) and the Neovim module are thin faces
//! over [`pipeline::run`].
//!
//! Errors are types ([`Error`], [`model::ModelError`], [`git::push::PushError`])
//! whose texts say what went wrong and what to do; faces render them as they
//! are.

pub mod backup;
pub mod cancel;
pub mod compact;
pub mod config;
pub mod doctor;
pub mod error;
pub mod event;
pub mod git;
pub mod hook;
pub mod init;
pub mod job;
pub mod message;
pub mod model;
pub mod ollama_values;
pub mod pipeline;
pub mod prompt;
pub mod status;

pub use cancel::Cancel;
pub use config::{Config, Settings};
pub use error::{Error, Result};
pub use event::{DiffStats, Event, MessageSource, Outcome, PushStatus};
pub use git::stage::Target;
pub use pipeline::{run, Request};
