//! One configuration schema for both faces.
//!
//! Layers, lowest first: built-in defaults, `OLLAMA_HOST` (Ollama's own
//! convention, so it sits *below* our files: SPEC §4 "host from config, else
//! OLLAMA_HOST"), `$XDG_CONFIG_HOME/ai-commit/config.toml`, the repository's
//! `.ai-commit.toml`, `AI_COMMIT_*` variables, then the face's own options
//! (CLI flags or Lua `setup{}`). Every layer is parsed into [`Settings`] with
//! unknown keys denied, so a typo is reported with its name and its source
//! instead of being ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const DEFAULT_HOST: &str = "http://127.0.0.1:11434";
pub const DEFAULT_MODEL: &str = "gemma3";
/// The generic fallback, used when the change cannot be described better
/// (and what `{file}` templates look like).
pub const DEFAULT_FALLBACK: &str = "Update {file}";
/// Default prompt budget for journal/prose changes, in estimated tokens: a
/// small local model on a CPU reads ~50 tokens/s, so a 7,000-token prompt
/// means minutes before the first token (issue 10).
pub const DEFAULT_JOURNAL_BUDGET: u32 = 2048;
/// Default stop sequences: where a small model starts copying the diff or
/// the prompt back, the message is over.
pub const DEFAULT_STOP: &[&str] = &["\n\n\n", "\n--- a/", "\n+++ b/", "\n@@ ", "\nEND NEW ENTRY"];
/// `AI_COMMIT_*` variables that are not settings: the config file's path,
/// the Neovim plugin's native module path, and the repository a backup
/// command is run for (a backup script that calls ai-commit inherits it).
/// Every other one must be a setting.
pub const NON_SETTING_VARS: &[&str] = &["AI_COMMIT_CONFIG", "AI_COMMIT_NATIVE", "AI_COMMIT_REPO"];
/// Name of the per-repository override file, at the top of the work tree.
pub const REPO_FILE: &str = ".ai-commit.toml";

#[derive(Debug, thiserror::Error)]
#[error("configuration error in {origin}: {message}")]
pub struct ConfigError {
    /// Where the bad value came from: a file path, an environment variable, a flag.
    pub origin: String,
    pub message: String,
}

impl ConfigError {
    fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            origin: origin.into(),
            message: message.into(),
        }
    }
}

/// Which built-in prompt to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PromptKind {
    /// Journal/prose for text files (.md, .txt, .org, …), code otherwise.
    #[default]
    Auto,
    Journal,
    Code,
}

/// One layer of settings: every key optional. The same struct is the TOML
/// schema, the `AI_COMMIT_*` schema and what faces pass as overrides.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Ollama model name; resolved against `/api/tags` (`gemma3` → `gemma3:latest`).
    pub model: Option<String>,
    /// Ollama address: `host:port` or a URL.
    pub host: Option<String>,
    /// Total seconds allowed for the model call before the fallback is used.
    pub timeout: Option<f64>,
    /// Seconds to establish the connection to Ollama.
    pub connect_timeout: Option<f64>,
    /// Seconds to wait for the first streamed line (includes model load time).
    pub first_token_timeout: Option<f64>,
    /// Push after committing.
    pub push: Option<bool>,
    /// Template for the fallback message; `{file}` is the changed file (or
    /// "a and N more files"), `{count}` the number of files, `{title}` the
    /// description ai-commit would use (the new journal entry's title, or
    /// the files and functions changed). Unset: that description.
    pub fallback_message: Option<String>,
    /// A prompt file path, or the prompt text itself.
    pub prompt: Option<String>,
    pub prompt_kind: Option<PromptKind>,
    pub temperature: Option<f32>,
    /// Context window asked of Ollama; the diff is budgeted to fit in it.
    pub num_ctx: Option<u32>,
    /// Most tokens the model may write.
    pub num_predict: Option<u32>,
    /// Most estimated tokens of a journal/prose prompt (code prompts are
    /// bounded by `num_ctx` only).
    pub journal_budget: Option<u32>,
    /// Stop sequences sent to Ollama: generation ends at the first one.
    /// `[]` sends none.
    pub stop: Option<Vec<String>>,
    /// How long Ollama keeps the model loaded: "30m", "1h", "-1" (forever), "0".
    pub keep_alive: Option<String>,
    /// Longest subject line, in characters.
    pub max_subject: Option<usize>,
    /// Keep a body (lines after the subject) when the model writes one.
    pub body: Option<bool>,
    /// Run the work tree's pre-commit and commit-msg hooks (like `git commit`).
    pub verify: Option<bool>,
    /// Backups run after commits, in the background (`[backup]`).
    pub backup: Option<BackupSettings>,
    /// Packing the objects of big files' versions, in the background
    /// (`[compaction]`).
    pub compaction: Option<CompactionSettings>,
}

/// `[backup]`: when and where backups go.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    /// At most one run per this interval: "10m", "1h", "30s", "0".
    pub min_interval: Option<String>,
    #[serde(default)]
    pub targets: Vec<BackupTarget>,
}

/// `[compaction]`: when the background job packs loose objects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionSettings {
    /// false: never pack (git's own `gc --auto` still may). Default true.
    pub enabled: Option<bool>,
    /// At most one run per this interval: "10m", "1h", "0". Default "10m".
    pub min_interval: Option<String>,
    /// Only start when the loose objects take at least this many bytes.
    /// Default 4194304 (4 MiB).
    pub min_loose_bytes: Option<u64>,
}

/// One `[[backup.targets]]`: a mirror or a command, optionally conditional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupTarget {
    /// A bare repository (created if missing) that receives every branch and
    /// tag; `{name}` is the work tree's directory name.
    pub mirror: Option<String>,
    /// A command run in the work tree (`["backup-home"]`).
    pub command: Option<Vec<String>>,
    /// Skip (with a warning) while this path is missing (a marker file).
    pub require: Option<String>,
    /// Skip (with a warning) while this path is not a mount point.
    pub require_mount: Option<String>,
}

impl Settings {
    /// Values of `other` win where set.
    pub fn merge(&mut self, other: Settings) {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            model,
            host,
            timeout,
            connect_timeout,
            first_token_timeout,
            push,
            fallback_message,
            prompt,
            prompt_kind,
            temperature,
            num_ctx,
            num_predict,
            journal_budget,
            stop,
            keep_alive,
            max_subject,
            body,
            verify,
            backup,
            compaction
        );
    }

    /// Parse a TOML document (a config file's text).
    pub fn from_toml(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::new(origin, e.to_string().trim_end()))
    }

    /// Read the `AI_COMMIT_*` variables from `vars`. Values are read as TOML
    /// scalars when they parse as one (`30`, `false`), else as strings.
    pub fn from_env_vars<I>(vars: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut settings = Settings::default();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("AI_COMMIT_") else {
                continue;
            };
            if NON_SETTING_VARS.contains(&name.as_str()) {
                continue;
            }
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value.clone()));
            // One variable at a time, so an error names the variable itself.
            let mut table = toml::Table::new();
            table.insert(key.to_ascii_lowercase(), parsed);
            let one = Settings::deserialize(table).map_err(|e| {
                ConfigError::new(
                    format!("the environment variable {name}"),
                    e.to_string().trim_end(),
                )
            })?;
            settings.merge(one);
        }
        Ok(settings)
    }
}

/// The effective configuration, every value filled and validated.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub model: String,
    pub host: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub first_token_timeout: Duration,
    pub push: bool,
    /// The user's fallback template; `None`: describe the change.
    pub fallback_message: Option<String>,
    pub prompt: Option<String>,
    pub prompt_kind: PromptKind,
    pub temperature: f32,
    pub num_ctx: u32,
    pub num_predict: u32,
    pub journal_budget: u32,
    pub stop: Vec<String>,
    pub keep_alive: String,
    pub max_subject: usize,
    pub body: bool,
    pub verify: bool,
    pub backup: Backup,
    pub compaction: Compaction,
}

/// Validated `[compaction]`.
#[derive(Debug, Clone, Serialize)]
pub struct Compaction {
    pub enabled: bool,
    pub min_interval: Duration,
    pub min_loose_bytes: u64,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            enabled: true,
            min_interval: Duration::from_secs(600),
            min_loose_bytes: 4 << 20,
        }
    }
}

/// Validated `[backup]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Backup {
    pub min_interval: Duration,
    pub targets: Vec<BackupTarget>,
}

/// "30s", "10m", "2h", "1d", "0" → a duration.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like \"30s\", \"10m\", \"1h\" or \"0\""))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration like \"30s\", \"10m\", \"1h\" or \"0\""
            ))
        }
    };
    Ok(Duration::from_secs(secs))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            model: DEFAULT_MODEL.into(),
            host: DEFAULT_HOST.into(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(3),
            first_token_timeout: Duration::from_secs(30),
            push: true,
            fallback_message: None,
            prompt: None,
            prompt_kind: PromptKind::Auto,
            temperature: 0.2,
            num_ctx: 8192,
            // A subject and a short body fit in ~100 tokens; more is a small
            // model rambling (4–7 s of junk at 200, issue 10).
            num_predict: 120,
            journal_budget: DEFAULT_JOURNAL_BUDGET,
            stop: DEFAULT_STOP.iter().map(|s| s.to_string()).collect(),
            keep_alive: "30m".into(),
            max_subject: 72,
            body: true,
            verify: true,
            backup: Backup::default(),
            compaction: Compaction::default(),
        }
    }
}

/// A `prompt` value is a file path or the prompt text itself. One that looks
/// like a path (`/…`, `~/…`, `./…`, `../…`, or one word ending in `.md`,
/// `.txt`, …) must name an existing file: otherwise the path itself would be
/// sent to the model as the prompt.
fn check_prompt(p: String) -> Result<String, String> {
    let t = p.trim();
    let one_line = !t.contains('\n');
    let rooted = ["/", "~/", "./", "../"].iter().any(|s| t.starts_with(s));
    let named = !t.contains(char::is_whitespace)
        && [".md", ".txt", ".prompt", ".markdown", ".tmpl"]
            .iter()
            .any(|e| t.to_ascii_lowercase().ends_with(e));
    if !(one_line && (rooted || named)) {
        return Ok(p);
    }
    let path = expand_home(t);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(p),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!(
            "{t:?} looks like a prompt file, but {} cannot be read ({e}); give an existing file or the prompt text itself",
            path.display()
        )),
    }
}

/// `~/x` → `$HOME/x`, for paths in settings and remote URLs.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

/// The first `{word}` in a fallback template that is not one of its
/// placeholders (`{file}`, `{count}`, `{title}`); other braces are text.
fn unknown_placeholder(template: &str) -> Option<&str> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let word = &after[..close];
        let is_word =
            !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_word && !matches!(word, "file" | "count" | "title") {
            return Some(word);
        }
        rest = &after[close + 1..];
    }
    None
}

/// Where the global config file lives: `AI_COMMIT_CONFIG`, else
/// `$XDG_CONFIG_HOME/ai-commit/config.toml` (via `dirs`).
pub fn global_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AI_COMMIT_CONFIG") {
        return Some(PathBuf::from(p));
    }
    dirs::config_dir().map(|d| d.join("ai-commit").join("config.toml"))
}

fn read_file_layer(path: &Path) -> Result<Option<Settings>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Settings::from_toml(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new(
            path.display().to_string(),
            format!("cannot read it: {e}"),
        )),
    }
}

/// Where each key's value came from (a file, a variable, the run's
/// options), so that a bad value's error names its source.
pub type Origins = std::collections::BTreeMap<String, String>;

/// Record `origin` for every key `layer` sets.
fn note(origins: &mut Origins, layer: &Settings, origin: &str) {
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(layer) {
        for (k, v) in map {
            if !v.is_null() {
                origins.insert(k, origin.to_string());
            }
        }
    }
}

/// Where the face's own options come from (CLI flags or Lua `setup{}`).
const OVERRIDES: &str = "this run's options (a command-line flag or setup{})";

impl Config {
    /// Load every layer for a run in `repo_root` (if known), with the face's
    /// `overrides` on top.
    pub fn load(repo_root: Option<&Path>, overrides: Settings) -> Result<Config, ConfigError> {
        let mut s = Settings::default();
        let mut origins = Origins::new();
        if let Ok(h) = std::env::var("OLLAMA_HOST") {
            if !h.trim().is_empty() {
                s.host = Some(h);
                origins.insert("host".into(), "the environment variable OLLAMA_HOST".into());
            }
        }
        match std::env::var_os("AI_COMMIT_CONFIG").filter(|p| !p.is_empty()) {
            // Named explicitly: a missing file is a mistake, not "no config".
            Some(p) => {
                let path = PathBuf::from(p);
                let Some(layer) = read_file_layer(&path)? else {
                    return Err(ConfigError::new(
                        "the environment variable AI_COMMIT_CONFIG",
                        format!("{} does not exist", path.display()),
                    ));
                };
                note(&mut origins, &layer, &path.display().to_string());
                s.merge(layer);
            }
            None => {
                if let Some(path) = global_file() {
                    if let Some(layer) = read_file_layer(&path)? {
                        note(&mut origins, &layer, &path.display().to_string());
                        s.merge(layer);
                    }
                }
            }
        }
        if let Some(root) = repo_root {
            let path = root.join(REPO_FILE);
            if let Some(layer) = read_file_layer(&path)? {
                note(&mut origins, &layer, &path.display().to_string());
                s.merge(layer);
            }
        }
        // One variable at a time, so each value's origin is its variable.
        let mut vars: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AI_COMMIT_"))
            .collect();
        vars.sort();
        for (name, value) in vars {
            let layer = Settings::from_env_vars([(name.clone(), value)])?;
            note(
                &mut origins,
                &layer,
                &format!("the environment variable {name}"),
            );
            s.merge(layer);
        }
        note(&mut origins, &overrides, OVERRIDES);
        s.merge(overrides);
        Config::resolve_from(s, &origins)
    }

    /// Fill defaults and validate values, naming the key that is wrong.
    pub fn resolve(s: Settings) -> Result<Config, ConfigError> {
        Config::resolve_from(s, &Origins::new())
    }

    /// [`resolve`](Self::resolve), naming where a bad value came from.
    pub fn resolve_from(s: Settings, origins: &Origins) -> Result<Config, ConfigError> {
        let d = Config::default();
        let origin_of = |key: &str| -> String {
            let top = key.split(['.', '[']).next().unwrap_or(key);
            match origins.get(top) {
                Some(o) => format!("key `{key}` (from {o})"),
                None => format!("key `{key}`"),
            }
        };
        let secs = |key: &str, v: Option<f64>, def: Duration| -> Result<Duration, ConfigError> {
            match v {
                None => Ok(def),
                Some(x) if x.is_finite() && x > 0.0 && x <= 86_400.0 => {
                    Ok(Duration::from_secs_f64(x))
                }
                Some(x) => Err(ConfigError::new(
                    origin_of(key),
                    format!("{x} seconds is out of range: give more than 0 and at most 86400"),
                )),
            }
        };
        let bad = |key: &str, msg: String| ConfigError::new(origin_of(key), msg);

        let model = s.model.unwrap_or(d.model);
        if model.trim().is_empty() || model.chars().any(char::is_whitespace) {
            return Err(bad("model", format!("{model:?} is not a model name")));
        }
        let host = s.host.unwrap_or(d.host);
        crate::ollama_values::normalize(&host).map_err(|e| bad("host", e))?;
        let fallback_message = s.fallback_message;
        if let Some(f) = &fallback_message {
            if f.trim().is_empty() {
                return Err(bad("fallback_message", "must not be empty".into()));
            }
            // A misspelt placeholder would be committed as it is, braces
            // and all, in every fallback message.
            if let Some(p) = unknown_placeholder(f) {
                return Err(bad(
                    "fallback_message",
                    format!("{{{p}}} is not a placeholder: use {{file}}, {{count}} or {{title}}"),
                ));
            }
        }
        let temperature = s.temperature.unwrap_or(d.temperature);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(bad(
                "temperature",
                format!("{temperature} is outside 0.0..=2.0"),
            ));
        }
        let num_ctx = s.num_ctx.unwrap_or(d.num_ctx);
        let num_predict = s.num_predict.unwrap_or(d.num_predict);
        if num_ctx < 512 {
            return Err(bad(
                "num_ctx",
                format!("{num_ctx} is too small (at least 512)"),
            ));
        }
        if num_predict < 8 || num_predict >= num_ctx / 2 {
            return Err(bad(
                "num_predict",
                format!(
                    "{num_predict} must be at least 8 and less than half of num_ctx ({num_ctx})"
                ),
            ));
        }
        let journal_budget = s.journal_budget.unwrap_or(d.journal_budget);
        if journal_budget < 256 {
            return Err(bad(
                "journal_budget",
                format!("{journal_budget} tokens is too small (at least 256)"),
            ));
        }
        let stop = s.stop.unwrap_or(d.stop);
        if stop.iter().any(|s| s.is_empty()) {
            return Err(bad("stop", "a stop sequence must not be empty".into()));
        }
        let keep_alive = s.keep_alive.unwrap_or(d.keep_alive);
        crate::ollama_values::parse_keep_alive(&keep_alive).map_err(|e| bad("keep_alive", e))?;
        let max_subject = s.max_subject.unwrap_or(d.max_subject);
        if !(20..=200).contains(&max_subject) {
            return Err(bad(
                "max_subject",
                format!("{max_subject} is outside 20..=200"),
            ));
        }
        let backup = match s.backup {
            None => Backup::default(),
            Some(b) => {
                let min_interval = match &b.min_interval {
                    Some(i) => parse_interval(i).map_err(|e| bad("backup.min_interval", e))?,
                    None => Duration::from_secs(600),
                };
                for (i, t) in b.targets.iter().enumerate() {
                    let key = format!("backup.targets[{i}]");
                    match (&t.mirror, &t.command) {
                        (Some(_), None) => {}
                        (None, Some(c)) if !c.is_empty() => {}
                        (None, Some(_)) => {
                            return Err(bad(&key, "command must not be empty".into()))
                        }
                        _ => {
                            return Err(bad(
                                &key,
                                "needs exactly one of `mirror` or `command`".into(),
                            ))
                        }
                    }
                }
                Backup {
                    min_interval,
                    targets: b.targets,
                }
            }
        };
        let compaction = match s.compaction {
            None => Compaction::default(),
            Some(c) => {
                let d = Compaction::default();
                Compaction {
                    enabled: c.enabled.unwrap_or(d.enabled),
                    min_interval: match &c.min_interval {
                        Some(i) => {
                            parse_interval(i).map_err(|e| bad("compaction.min_interval", e))?
                        }
                        None => d.min_interval,
                    },
                    min_loose_bytes: c.min_loose_bytes.unwrap_or(d.min_loose_bytes),
                }
            }
        };
        Ok(Config {
            verify: s.verify.unwrap_or(d.verify),
            backup,
            compaction,
            model,
            host,
            timeout: secs("timeout", s.timeout, d.timeout)?,
            connect_timeout: secs("connect_timeout", s.connect_timeout, d.connect_timeout)?,
            first_token_timeout: secs(
                "first_token_timeout",
                s.first_token_timeout,
                d.first_token_timeout,
            )?,
            push: s.push.unwrap_or(d.push),
            fallback_message,
            prompt: match s.prompt.filter(|p| !p.trim().is_empty()) {
                Some(p) => Some(check_prompt(p).map_err(|e| bad("prompt", e))?),
                None => None,
            },
            prompt_kind: s.prompt_kind.unwrap_or(d.prompt_kind),
            temperature,
            num_ctx,
            num_predict,
            journal_budget,
            stop,
            keep_alive,
            max_subject,
            body: s.body.unwrap_or(d.body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = Settings::from_toml("modle = \"x\"\n", "test.toml").unwrap_err();
        assert!(err.to_string().contains("modle"), "{err}");
        assert!(err.to_string().contains("test.toml"), "{err}");
    }

    #[test]
    fn bad_type_is_named() {
        let err = Settings::from_toml("timeout = \"soon\"\n", "f").unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let s = Settings::from_toml("temperature = 9.0\n", "f").unwrap();
        let err = Config::resolve(s).unwrap_err();
        assert!(err.to_string().contains("temperature"), "{err}");
        let s = Settings::from_toml("keep_alive = \"soon\"\n", "f").unwrap();
        assert!(Config::resolve(s)
            .unwrap_err()
            .to_string()
            .contains("keep_alive"));
    }

    #[test]
    fn env_layer_parses_types_and_rejects_unknown() {
        let s = Settings::from_env_vars([
            ("AI_COMMIT_TIMEOUT".to_string(), "12".to_string()),
            ("AI_COMMIT_PUSH".to_string(), "false".to_string()),
            ("AI_COMMIT_MODEL".to_string(), "llama3.2:1b".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
            ("AI_COMMIT_NATIVE".to_string(), "/x.so".to_string()),
            ("AI_COMMIT_REPO".to_string(), "/home/me/journal".to_string()),
        ])
        .unwrap();
        assert_eq!(s.timeout, Some(12.0));
        assert_eq!(s.push, Some(false));
        assert_eq!(s.model.as_deref(), Some("llama3.2:1b"));
        let err = Settings::from_env_vars([("AI_COMMIT_MODLE".into(), "x".into())]).unwrap_err();
        assert!(err.to_string().contains("AI_COMMIT_MODLE"), "{err}");
        let err =
            Settings::from_env_vars([("AI_COMMIT_PUSH".into(), "sometimes".into())]).unwrap_err();
        assert!(err.to_string().contains("AI_COMMIT_PUSH"), "{err}");
    }

    #[test]
    fn backup_section_is_validated() {
        let s = Settings::from_toml(
            "[backup]\nmin_interval = \"10m\"\n[[backup.targets]]\nmirror = \"/mnt/b/{name}.git\"\nrequire = \"/mnt/b/.mounted\"\n[[backup.targets]]\ncommand = [\"backup-home\"]\n",
            "f",
        )
        .unwrap();
        let c = Config::resolve(s).unwrap();
        assert_eq!(c.backup.min_interval, Duration::from_secs(600));
        assert_eq!(c.backup.targets.len(), 2);
        let s =
            Settings::from_toml("[backup]\n[[backup.targets]]\nrequire = \"/x\"\n", "f").unwrap();
        assert!(Config::resolve(s)
            .unwrap_err()
            .to_string()
            .contains("backup.targets[0]"));
        let s = Settings::from_toml("[backup]\nmin_interval = \"soon\"\n", "f").unwrap();
        assert!(Config::resolve(s)
            .unwrap_err()
            .to_string()
            .contains("backup.min_interval"));
        let e =
            Settings::from_toml("[backup]\n[[backup.targets]]\nmirorr = \"x\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("mirorr"), "{e}");
    }

    #[test]
    fn later_layers_win() {
        let mut s = Settings::from_toml("model = \"a\"\npush = false\n", "f").unwrap();
        s.merge(Settings {
            model: Some("b".into()),
            ..Default::default()
        });
        let c = Config::resolve(s).unwrap();
        assert_eq!(c.model, "b");
        assert!(!c.push);
        assert_eq!(c.timeout, Duration::from_secs(60));
    }

    #[test]
    fn message_keys_have_defaults_and_are_validated() {
        let c = Config::resolve(Settings::default()).unwrap();
        assert_eq!(c.journal_budget, DEFAULT_JOURNAL_BUDGET);
        assert_eq!(c.num_predict, 120);
        assert!(c.stop.iter().any(|s| s == "\n+++ b/"), "{:?}", c.stop);
        assert_eq!(c.fallback_message, None, "unset: describe the change");
        let s = Settings::from_toml("journal_budget = 1000\nstop = []\n", "f").unwrap();
        let c = Config::resolve(s).unwrap();
        assert_eq!((c.journal_budget, c.stop.len()), (1000, 0));
        for (toml, key) in [
            ("journal_budget = 10\n", "journal_budget"),
            ("stop = [\"\"]\n", "stop"),
            ("fallback_message = \" \"\n", "fallback_message"),
            (
                "fallback_message = \"Update {nope}\"\n",
                "{nope} is not a placeholder",
            ),
        ] {
            let s = Settings::from_toml(toml, "f").unwrap();
            let e = Config::resolve(s).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        // Known placeholders and other braces pass.
        let s = Settings::from_toml(
            "fallback_message = \"{title} ({count}: {file}) {} { x } {\"\n",
            "f",
        )
        .unwrap();
        assert!(Config::resolve(s).is_ok());
        let e = Settings::from_toml("stop = \"x\"\n", "f").unwrap_err();
        assert!(e.to_string().contains("stop"), "{e}");
        let s =
            Settings::from_env_vars([("AI_COMMIT_STOP".to_string(), "[\"\\n\\n\"]".to_string())])
                .unwrap();
        assert_eq!(s.stop, Some(vec!["\n\n".to_string()]));
    }
}
