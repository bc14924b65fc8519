//! Model calls to Ollama.
//!
//! ollama-rs provides the wire types (request, response lines, model options,
//! keep-alive) and the non-streamed calls (`/api/tags`, loading a model). The
//! streamed `/api/generate` call is read here through [`stream::LineFramer`],
//! because ollama-rs 0.3.6 loses text on split lines and split UTF-8 and drops
//! mid-stream errors (see `stream.rs`). One reqwest client serves both, built
//! without proxies for loopback hosts (reqwest would otherwise send
//! 127.0.0.1 through `http_proxy`).

/// Address parsing lives below both this module and the configuration
/// (which validates with it); re-exported here under its old path.
pub use crate::ollama_values as host;
pub use crate::ollama_values::parse_keep_alive;
pub mod stream;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ollama_rs::error::OllamaError;
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::generation::parameters::KeepAlive;
use ollama_rs::models::ModelOptions;
use ollama_rs::Ollama;
use serde::Serialize;
use tokio::time::timeout_at;
use url::Url;

use crate::cancel::Cancel;
use crate::config::Config;
use stream::{parse_line, Line, LineFramer};

/// Why the model produced no usable message. Each of these leads to the
/// fallback message in a normal run; the text is the reason shown to the user.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("cannot reach Ollama at {host} ({detail}); start it with `ollama serve`, or point --host / OLLAMA_HOST at it")]
    Unreachable { host: String, detail: String },

    #[error("a TLS connection to {host} failed ({detail}); if the server uses a private CA, point SSL_CERT_FILE at its certificate")]
    Tls { host: String, detail: String },

    #[error("Ollama at {host} did not answer in time: {stage} took longer than {secs:.1} s; {}", timeout_advice(.stage, .key))]
    Timeout {
        host: String,
        stage: &'static str,
        key: &'static str,
        secs: f64,
    },

    #[error("model {model:?} is not available on {host}; run `ollama pull {model}`{}", available_hint(.available))]
    ModelNotFound {
        model: String,
        host: String,
        available: Vec<String>,
    },

    #[error("Ollama answered HTTP {status}: {message}")]
    Http { status: u16, message: String },

    #[error("Ollama reported an error mid-stream: {message}")]
    Stream { message: String },

    #[error("the stream from Ollama ended before it was done ({detail}); the connection was cut")]
    Truncated { detail: String },

    #[error("the server at {host} does not speak Ollama's protocol (it sent: {excerpt:?})")]
    Protocol { host: String, excerpt: String },

    #[error("the model returned an empty message")]
    Empty,

    #[error("the model's output is an error, not a commit message: {excerpt:?}")]
    ErrorText { excerpt: String },

    /// The answer has text, but it is not a commit message (a diff line, a
    /// date, an echo of the prompt, the previous entry…): small local models
    /// write these often, and committing them is worse than the fallback.
    #[error("the model's answer is not a commit message ({why}): {excerpt:?}")]
    NotAMessage { why: String, excerpt: String },

    #[error("cancelled")]
    Cancelled,

    #[error("invalid Ollama host: {0}")]
    BadHost(String),
}

fn available_hint(models: &[String]) -> String {
    if models.is_empty() {
        String::new()
    } else {
        format!(" (pulled: {})", models.join(", "))
    }
}

impl ModelError {
    /// Short machine-readable name (for `--json` and the plugin).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::Unreachable { .. } => "unreachable",
            ModelError::Timeout { .. } => "timeout",
            ModelError::Tls { .. } => "tls",
            ModelError::ModelNotFound { .. } => "model_not_found",
            ModelError::Http { .. } => "http",
            ModelError::Stream { .. } => "stream_error",
            ModelError::Truncated { .. } => "truncated",
            ModelError::Protocol { .. } => "protocol",
            ModelError::Empty => "empty",
            ModelError::ErrorText { .. } => "error_text",
            ModelError::NotAMessage { .. } => "not_a_message",
            ModelError::Cancelled => "cancelled",
            ModelError::BadHost(_) => "bad_host",
        }
    }
}

/// The result of a streamed generation.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    /// The raw text as the model wrote it (before sanitizing).
    pub text: String,
    pub done_reason: Option<String>,
    /// True when we stopped reading because the output grew past the cap.
    pub capped: bool,
    pub eval_count: Option<u64>,
    pub elapsed: Duration,
}

/// `"stream": true` plus ollama-rs's request (its own wrapper is private).
#[derive(Serialize)]
struct Streamed<'a> {
    stream: bool,
    #[serde(flatten)]
    request: GenerationRequest<'a>,
}

/// The configured model's name being resolved (`/api/tags`, see
/// [`Client::resolve_model`]) on the runtime while the caller stages and
/// diffs: it does not depend on the diff, so the generate call need not wait
/// for a round trip (and the connection is open by then). The client is
/// built in the task too: building reqwest's client costs ~0.3 ms, which the
/// caller would otherwise spend before it starts staging.
pub struct Resolving {
    task: tokio::task::JoinHandle<Result<(Client, String), ModelError>>,
}

impl Resolving {
    pub fn start(cfg: &Config, rt: &tokio::runtime::Handle) -> Resolving {
        let cfg = cfg.clone();
        let task = rt.spawn(async move {
            let client = Client::new(&cfg)?;
            let model = client.resolve_model(&cfg.model).await?;
            Ok((client, model))
        });
        Resolving { task }
    }

    /// The client and the resolved name (or why not: a bad host, Ollama
    /// unreachable, the model missing).
    pub async fn resolved(&mut self) -> Result<(Client, String), ModelError> {
        (&mut self.task).await.unwrap_or_else(|e| {
            Err(ModelError::Http {
                status: 0,
                message: format!("resolving the model failed: {e}"),
            })
        })
    }
}

impl Drop for Resolving {
    fn drop(&mut self) {
        // A run that ends early (nothing to commit) leaves no request behind.
        self.task.abort();
    }
}

/// An Ollama client configured from [`Config`].
#[derive(Debug, Clone)]
pub struct Client {
    base: Url,
    host: String,
    http: reqwest::Client,
    ollama: Ollama,
    options: ModelOptions,
    keep_alive: KeepAlive,
    connect_timeout: Duration,
    first_token_timeout: Duration,
    timeout: Duration,
    /// Stop reading after this many bytes of text: a model that never stops
    /// must not hold the run (num_predict should stop it first).
    max_output_bytes: usize,
}

impl Client {
    pub fn new(cfg: &Config) -> Result<Client, ModelError> {
        let base = host::normalize(&cfg.host).map_err(ModelError::BadHost)?;
        let mut builder = reqwest::Client::builder().connect_timeout(cfg.connect_timeout);
        if host::is_loopback(&base) {
            builder = builder.no_proxy();
        }
        if base.scheme() == "http" {
            // Loading the system's CA certificates costs milliseconds per run;
            // a plain-http host (the usual local Ollama) never needs them.
            builder = builder.tls_built_in_native_certs(false);
        }
        let http = builder
            .build()
            .map_err(|e| ModelError::BadHost(e.to_string()))?;
        let ollama = Ollama::builder()
            .url(base.clone())
            .reqwest_client(http.clone())
            .build();
        let options = model_options(cfg);
        Ok(Client {
            host: base.as_str().trim_end_matches('/').to_string(),
            base,
            http,
            ollama,
            options,
            keep_alive: parse_keep_alive(&cfg.keep_alive).map_err(ModelError::BadHost)?,
            connect_timeout: cfg.connect_timeout,
            first_token_timeout: cfg.first_token_timeout.min(cfg.timeout),
            timeout: cfg.timeout,
            max_output_bytes: (cfg.num_predict as usize * 16).max(4096),
        })
    }

    /// The normalised base URL, e.g. `http://127.0.0.1:11434`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `stage` and `key` name what timed out and the setting that bounds it
    /// (see [`timeout_advice`]).
    fn timeout_err(&self, stage: &'static str, key: &'static str, d: Duration) -> ModelError {
        ModelError::Timeout {
            host: self.host.clone(),
            stage,
            key,
            secs: d.as_secs_f64(),
        }
    }

    fn map_reqwest(&self, e: &reqwest::Error) -> ModelError {
        if e.is_timeout() {
            return self.timeout_err("connecting", "connect_timeout", self.connect_timeout);
        }
        let detail = root_cause(e);
        let lower = detail.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return ModelError::Tls {
                host: self.host.clone(),
                detail,
            };
        }
        if e.is_connect() || e.is_request() {
            ModelError::Unreachable {
                host: self.host.clone(),
                detail,
            }
        } else {
            ModelError::Truncated { detail }
        }
    }

    fn map_status(&self, status: u16, body: &str, model: &str) -> ModelError {
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| body.trim().chars().take(200).collect());
        if status == 404 && message.contains("not found") {
            ModelError::ModelNotFound {
                model: model.to_string(),
                host: self.host.clone(),
                available: Vec::new(),
            }
        } else {
            ModelError::Http { status, message }
        }
    }

    /// Names of the pulled models (`GET /api/tags`).
    pub async fn list_models(&self) -> Result<Vec<String>, ModelError> {
        let limit = self.connect_timeout + Duration::from_secs(5);
        match tokio::time::timeout(limit, self.ollama.list_local_models()).await {
            Err(_) => Err(self.timeout_err("listing models", "connect_timeout", limit)),
            Ok(Ok(models)) => Ok(models.into_iter().map(|m| m.name).collect()),
            Ok(Err(OllamaError::ReqwestError(e))) => Err(self.map_reqwest(&e)),
            Ok(Err(OllamaError::JsonError(e))) => Err(ModelError::Protocol {
                host: self.host.clone(),
                excerpt: e.to_string(),
            }),
            Ok(Err(e)) => Err(ModelError::Http {
                status: 0,
                message: e.to_string(),
            }),
        }
    }

    /// `GET /api/version`, for `doctor` (ollama-rs has no call for it).
    pub async fn version(&self) -> Result<String, ModelError> {
        let url = self
            .base
            .join("api/version")
            .map_err(|e| ModelError::BadHost(e.to_string()))?;
        let limit = self.connect_timeout + Duration::from_secs(5);
        let resp = tokio::time::timeout(limit, self.http.get(url).send())
            .await
            .map_err(|_| self.timeout_err("asking the version", "connect_timeout", limit))?
            .map_err(|e| self.map_reqwest(&e))?;
        let v: serde_json::Value = resp.json().await.map_err(|e| ModelError::Protocol {
            host: self.host.clone(),
            excerpt: e.to_string(),
        })?;
        Ok(v.get("version")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_string())
    }

    /// Resolve `want` against the pulled models: exact, then `:latest`, then
    /// the first tag of that name (`gemma3` → `gemma3:4b`). A server that
    /// cannot list models gets the name as given (generate will say more).
    pub async fn resolve_model(&self, want: &str) -> Result<String, ModelError> {
        match self.list_models().await {
            Ok(names) => resolve_name(want, &names).ok_or_else(|| ModelError::ModelNotFound {
                model: want.to_string(),
                host: self.host.clone(),
                available: names,
            }),
            Err(
                e @ (ModelError::Unreachable { .. }
                | ModelError::Timeout { .. }
                | ModelError::Tls { .. }),
            ) => Err(e),
            Err(_) => Ok(want.to_string()),
        }
    }

    /// The generate request for `prompt`: the one place the model options
    /// and `keep_alive` are attached, so a pre-warm (empty prompt) and the
    /// real call can never differ in them. Ollama reloads a model whenever a
    /// load-time option such as `num_ctx` differs, which made an option-less
    /// pre-warm load a second instance that the first `\g` did not use.
    pub fn request<'a>(&self, model: &str, prompt: &'a str) -> GenerationRequest<'a> {
        GenerationRequest::new(model.to_string(), prompt)
            .options(self.options.clone())
            .keep_alive(self.keep_alive.clone())
    }

    /// Ask Ollama to load `model` and keep it loaded (an empty generate with
    /// `keep_alive` and the generate call's options), so the next real call
    /// does not pay the load time.
    pub async fn preload(&self, model: &str) -> Result<(), ModelError> {
        let req = self.request(model, "");
        match tokio::time::timeout(self.timeout, self.ollama.generate(req)).await {
            Err(_) => Err(self.timeout_err("loading the model", "timeout", self.timeout)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(OllamaError::ReqwestError(e))) => Err(self.map_reqwest(&e)),
            Ok(Err(OllamaError::Other(body))) => Err(self.map_status(404, &body, model)),
            Ok(Err(e)) => Err(ModelError::Http {
                status: 0,
                message: e.to_string(),
            }),
        }
    }

    /// Stream a completion for `prompt`, calling `on_token` for every piece of
    /// text as it arrives. Returns the whole text, or why there is none.
    pub async fn generate(
        &self,
        model: &str,
        prompt: &str,
        cancel: &Cancel,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generated, ModelError> {
        let started = Instant::now();
        let tokio_start = tokio::time::Instant::now();
        let total_deadline = tokio_start + self.timeout;
        let first_deadline = tokio_start + self.first_token_timeout;
        let url = self
            .base
            .join("api/generate")
            .map_err(|e| ModelError::BadHost(e.to_string()))?;
        let body = Streamed {
            stream: true,
            request: self.request(model, prompt),
        };
        let first_timeout = || {
            if self.first_token_timeout < self.timeout {
                self.timeout_err(
                    "the first token",
                    "first_token_timeout",
                    self.first_token_timeout,
                )
            } else {
                self.timeout_err("the whole answer", "timeout", self.timeout)
            }
        };

        let send = self.http.post(url).json(&body).send();
        let resp = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ModelError::Cancelled),
            r = timeout_at(first_deadline, send) => r,
        };
        let resp = resp
            .map_err(|_| first_timeout())?
            .map_err(|e| self.map_reqwest(&e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = tokio::select! {
                _ = cancel.cancelled() => return Err(ModelError::Cancelled),
                r = timeout_at(total_deadline, resp.text()) => r.ok().and_then(Result::ok).unwrap_or_default(),
            };
            return Err(self.map_status(status.as_u16(), &body, model));
        }

        let mut bytes = resp.bytes_stream();
        let mut framer = LineFramer::default();
        let mut out = Generated::default();
        let mut seen_line = false;
        let mut done = false;
        let mut on_line =
            |line: &[u8], out: &mut Generated, seen: &mut bool| -> Result<bool, ModelError> {
                match parse_line(line).map_err(|excerpt| ModelError::Protocol {
                    host: self.host.clone(),
                    excerpt,
                })? {
                    Line::Blank => Ok(false),
                    Line::Error(message) => Err(ModelError::Stream { message }),
                    Line::Chunk {
                        response,
                        done,
                        done_reason,
                        eval_count,
                        thinking: _, // reasoning is never part of the message
                    } => {
                        *seen = true;
                        if !response.is_empty() {
                            on_token(&response);
                            out.text.push_str(&response);
                        }
                        if done {
                            out.done_reason = done_reason;
                            out.eval_count = eval_count;
                        }
                        Ok(done)
                    }
                }
            };

        'read: loop {
            let deadline = if seen_line {
                total_deadline
            } else {
                first_deadline.min(total_deadline)
            };
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(ModelError::Cancelled),
                r = timeout_at(deadline, bytes.next()) => r,
            };
            let chunk = match next {
                Err(_) if seen_line => {
                    return Err(self.timeout_err("the whole answer", "timeout", self.timeout))
                }
                Err(_) => return Err(first_timeout()),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    // The server was reached; the connection broke mid-answer.
                    return Err(ModelError::Truncated {
                        detail: root_cause(&e),
                    });
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            for line in framer.push(&chunk) {
                if on_line(&line, &mut out, &mut seen_line)? {
                    done = true;
                    break 'read;
                }
                if out.text.len() > self.max_output_bytes {
                    // Dropping the response closes the connection, which
                    // makes Ollama stop generating.
                    out.capped = true;
                    break 'read;
                }
            }
        }
        if !done && !out.capped {
            if let Some(tail) = framer.finish() {
                done = on_line(&tail, &mut out, &mut seen_line)?;
            }
        }
        out.elapsed = started.elapsed();
        if !done && !out.capped {
            return Err(ModelError::Truncated {
                detail: format!(
                    "{} bytes of text received, no final \"done\" line",
                    out.text.len()
                ),
            });
        }
        Ok(out)
    }
}

/// The model options of every generate request (and of the pre-warm):
/// built from the configuration only, never from the change being described,
/// so a pre-warm that knows nothing of the change asks for the same instance.
pub fn model_options(cfg: &Config) -> ModelOptions {
    let mut o = ModelOptions::default()
        .temperature(cfg.temperature)
        .num_ctx(u64::from(cfg.num_ctx))
        .num_predict(i32::try_from(cfg.num_predict).unwrap_or(i32::MAX));
    if !cfg.stop.is_empty() {
        o = o.stop(cfg.stop.clone());
    }
    o
}

/// reqwest's own text is "error sending request"; the useful cause is the
/// innermost source ("Connection refused", "connection reset by peer").
fn root_cause(e: &reqwest::Error) -> String {
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    detail
}

/// What to do about a timeout: the quick calls (`/api/tags`, `/api/version`,
/// connecting) bounded by `connect_timeout` (+ 5 s for an answer) mean a
/// server that accepts connections but does not answer; a model that is
/// slow to load or to write is a matter of the model's size and its limits.
fn timeout_advice(stage: &str, key: &str) -> String {
    if stage == "connecting" {
        "nothing accepted the connection: is the host right, and is Ollama running there? (the limit is `connect_timeout`)".to_string()
    } else if key == "connect_timeout" {
        format!(
            "something accepts connections there but does not answer (the limit is `connect_timeout` + 5 s for {stage}): is it Ollama, and is it not stuck? `ollama ps` and `curl HOST/api/tags` tell"
        )
    } else {
        format!("raise `{key}` or use a smaller model")
    }
}

/// See [`Client::resolve_model`].
pub fn resolve_name(want: &str, names: &[String]) -> Option<String> {
    if let Some(n) = names.iter().find(|n| *n == want) {
        return Some(n.clone());
    }
    if !want.contains(':') {
        let latest = format!("{want}:latest");
        if let Some(n) = names.iter().find(|n| **n == latest) {
            return Some(n.clone());
        }
        let prefix = format!("{want}:");
        let mut tagged: Vec<&String> = names.iter().filter(|n| n.starts_with(&prefix)).collect();
        tagged.sort();
        return tagged.first().map(|n| (*n).clone());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollama_rs::generation::parameters::TimeUnit;

    #[test]
    fn model_names_resolve_like_a_user_expects() {
        let names: Vec<String> = ["gemma3:latest", "llama3.2:3b", "llama3.2:1b", "qwen3:8b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            resolve_name("gemma3", &names).as_deref(),
            Some("gemma3:latest")
        );
        assert_eq!(
            resolve_name("gemma3:latest", &names).as_deref(),
            Some("gemma3:latest")
        );
        assert_eq!(
            resolve_name("llama3.2", &names).as_deref(),
            Some("llama3.2:1b")
        );
        assert_eq!(resolve_name("qwen3:4b", &names), None);
        assert_eq!(resolve_name("mistral", &names), None);
    }

    /// The client is built in the resolving task now: a host it cannot use
    /// must still come back from `resolved()` as `BadHost`, which the
    /// pipeline turns into the fallback message's reason.
    #[test]
    fn resolving_reports_a_bad_host_from_its_task() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let cfg = Config {
            host: "http://[::1".into(),
            ..Config::default()
        };
        let mut resolving = Resolving::start(&cfg, rt.handle());
        let got = rt.block_on(resolving.resolved());
        assert!(
            matches!(got, Err(ModelError::BadHost(_))),
            "expected BadHost, got {:?}",
            got.map(|(_, m)| m)
        );
    }

    #[test]
    fn keep_alive_forms() {
        assert_eq!(parse_keep_alive("-1").unwrap(), KeepAlive::Indefinitely);
        assert_eq!(
            parse_keep_alive("0").unwrap(),
            KeepAlive::UnloadOnCompletion
        );
        assert_eq!(
            parse_keep_alive("30m").unwrap(),
            KeepAlive::Until {
                time: 30,
                unit: TimeUnit::Minutes
            }
        );
        assert!(parse_keep_alive("soon").is_err());
        assert!(parse_keep_alive("5d").is_err());
    }
}
