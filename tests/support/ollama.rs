//! A loopback HTTP server that speaks Ollama's wire protocol (SPEC §9), for
//! tests and benchmarks: `/`, `/api/version`, `/api/tags`, `/api/generate`
//! and `/api/chat` with streamed NDJSON, final `done` lines, error JSON, 404
//! for unknown models, mid-stream errors, and slow, hanging, endless or
//! deliberately fragmented streams. It runs on its own thread and runtime so
//! the code under test can use whatever runtime it likes.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

/// How a streamed answer is delivered.
#[derive(Debug, Clone)]
pub struct Script {
    /// Status of a streamed answer (200) or of an error answer.
    pub status: u16,
    /// Complete NDJSON lines, each ending in `\n` (or raw bytes for garbage).
    pub lines: Vec<Vec<u8>>,
    /// Re-chunk the whole body into pieces of this many bytes (splits lines
    /// and UTF-8 characters); `None` sends one line per chunk.
    pub split_every: Option<usize>,
    /// Pause before each chunk.
    pub delay: Duration,
    /// After the lines: close, hang with the connection open, or stream forever.
    pub after: After,
}

#[derive(Debug, Clone, PartialEq)]
pub enum After {
    Close,
    Hang,
    Endless(String),
}

pub const MODEL: &str = "gemma3:latest";

fn now() -> String {
    "2026-11-22T10:00:00.000000000Z".to_string()
}

pub fn token_line(model: &str, text: &str) -> Vec<u8> {
    let mut l = serde_json::to_vec(&json!({
        "model": model, "created_at": now(), "response": text, "done": false
    }))
    .unwrap();
    l.push(b'\n');
    l
}

pub fn done_line(model: &str) -> Vec<u8> {
    let mut l = serde_json::to_vec(&json!({
        "model": model, "created_at": now(), "response": "", "done": true,
        "done_reason": "stop", "context": [1, 2, 3],
        "total_duration": 1_200_000_000u64, "load_duration": 2_000_000u64,
        "prompt_eval_count": 120, "prompt_eval_duration": 100_000_000u64,
        "eval_count": 12, "eval_duration": 1_000_000_000u64
    }))
    .unwrap();
    l.push(b'\n');
    l
}

impl Script {
    /// A clean stream of `tokens`, then the final `done` line.
    pub fn tokens(tokens: &[&str]) -> Script {
        let mut lines: Vec<Vec<u8>> = tokens.iter().map(|t| token_line(MODEL, t)).collect();
        lines.push(done_line(MODEL));
        Script {
            status: 200,
            lines,
            split_every: None,
            delay: Duration::ZERO,
            after: After::Close,
        }
    }

    /// The whole `text` as one token.
    pub fn text(text: &str) -> Script {
        Script::tokens(&[text])
    }

    /// A non-streamed error answer: `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Script {
        let mut s = Script::tokens(&[]);
        s.status = status;
        s.lines = vec![serde_json::to_vec(&json!({ "error": message })).unwrap()];
        s
    }

    /// Lines carrying a `thinking` field before the answer (thinking models).
    pub fn thinking(thoughts: &[&str], tokens: &[&str]) -> Script {
        let mut s = Script::tokens(tokens);
        let mut pre: Vec<Vec<u8>> = thoughts
            .iter()
            .map(|t| {
                let mut l = serde_json::to_vec(&json!({
                    "model": MODEL, "created_at": now(), "response": "", "thinking": t, "done": false
                }))
                .unwrap();
                l.push(b'\n');
                l
            })
            .collect();
        pre.append(&mut s.lines);
        s.lines = pre;
        s
    }

    pub fn split_every(mut self, n: usize) -> Script {
        self.split_every = Some(n);
        self
    }

    pub fn delay(mut self, d: Duration) -> Script {
        self.delay = d;
        self
    }

    /// Drop the final `done` line and keep the connection open.
    pub fn then_hang(mut self) -> Script {
        self.lines.pop();
        self.after = After::Hang;
        self
    }

    /// Drop the final `done` line and close: a stream cut short.
    pub fn cut(mut self) -> Script {
        self.lines.pop();
        self
    }

    /// Replace the final `done` line with an `{"error":…}` line.
    pub fn mid_stream_error(mut self, message: &str) -> Script {
        self.lines.pop();
        let mut l = serde_json::to_vec(&json!({ "error": message })).unwrap();
        l.push(b'\n');
        self.lines.push(l);
        self
    }

    /// Insert a line that is not JSON before the end.
    pub fn garbage(mut self, raw: &str) -> Script {
        let at = self.lines.len().saturating_sub(1);
        self.lines.insert(at, format!("{raw}\n").into_bytes());
        self
    }

    /// Stream `token` forever (until the client goes away).
    pub fn endless(token: &str) -> Script {
        let mut s = Script::tokens(&[]);
        s.lines.clear();
        s.after = After::Endless(token.to_string());
        s
    }
}

#[derive(Debug)]
struct State {
    models: Vec<String>,
    script: Script,
    requests: Vec<(String, Value)>,
}

/// A running fake Ollama. Dropping it stops the server.
pub struct FakeOllama {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    tls: bool,
}

impl FakeOllama {
    /// Serve `script` for every generate/chat call, with `gemma3:latest` pulled.
    pub fn start(script: Script) -> FakeOllama {
        FakeOllama::with_models(script, &[MODEL])
    }

    /// The same server over TLS, with a certificate for 127.0.0.1 signed by a
    /// throwaway CA. Returns the server and the CA in PEM (for SSL_CERT_FILE).
    pub fn start_tls(script: Script) -> (FakeOllama, String) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        use tokio_rustls::rustls;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        (
            FakeOllama::serve(script, &[MODEL], Some(acceptor)),
            ca_cert.pem(),
        )
    }

    pub fn with_models(script: Script, models: &[&str]) -> FakeOllama {
        FakeOllama::serve(script, models, None)
    }

    fn serve(
        script: Script,
        models: &[&str],
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> FakeOllama {
        let state = Arc::new(Mutex::new(State {
            models: models.iter().map(|m| m.to_string()).collect(),
            script,
            requests: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let is_tls = tls.is_some();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        let st = st.clone();
                        let tls = tls.clone();
                        tokio::spawn(async move {
                            let svc =
                                hyper::service::service_fn(move |req| handle(st.clone(), req));
                            let http = hyper::server::conn::http1::Builder::new();
                            match tls {
                                None => {
                                    let io = hyper_util::rt::TokioIo::new(tcp);
                                    let _ = http.serve_connection(io, svc).await;
                                }
                                Some(acceptor) => {
                                    if let Ok(stream) = acceptor.accept(tcp).await {
                                        let io = hyper_util::rt::TokioIo::new(stream);
                                        let _ = http.serve_connection(io, svc).await;
                                    }
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        FakeOllama {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
            tls: is_tls,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Requests received so far: (path, JSON body or Null).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Bodies of the generate calls that asked for text (not model loads).
    pub fn prompts(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|(p, b)| {
                p == "/api/generate"
                    && b.get("prompt")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
            })
            .map(|(_, b)| b)
            .collect()
    }
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An address where nothing listens (connection refused).
pub fn dead_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

fn json_resp(status: u16, v: Value) -> Response<Body> {
    full(status, "application/json; charset=utf-8", v.to_string())
}

/// Ollama's own name resolution: exact, or with `:latest` added.
fn known(models: &[String], name: &str) -> bool {
    models
        .iter()
        .any(|m| m == name || *m == format!("{name}:latest"))
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    state
        .lock()
        .unwrap()
        .requests
        .push((path.clone(), body.clone()));

    let (models, script) = {
        let s = state.lock().unwrap();
        (s.models.clone(), s.script.clone())
    };
    let resp = match (method.as_str(), path.as_str()) {
        ("GET", "/") | ("HEAD", "/") => full(200, "text/plain; charset=utf-8", "Ollama is running"),
        ("GET", "/api/version") => json_resp(200, json!({ "version": "0.12.6" })),
        ("GET", "/api/tags") => json_resp(
            200,
            json!({ "models": models.iter().map(|m| json!({
                "name": m, "model": m, "modified_at": "2026-11-01T10:00:00Z", "size": 3_338_801_804u64,
                "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
                "details": { "parent_model": "", "format": "gguf", "family": "gemma3",
                             "families": ["gemma3"], "parameter_size": "4.3B", "quantization_level": "Q4_K_M" }
            })).collect::<Vec<_>>() }),
        ),
        ("POST", "/api/generate") | ("POST", "/api/chat") => {
            let chat = path == "/api/chat";
            let model = body.get("model").and_then(Value::as_str).unwrap_or("");
            if model.is_empty() {
                return Ok(json_resp(400, json!({ "error": "model is required" })));
            }
            if !known(&models, model) {
                return Ok(json_resp(
                    404,
                    json!({ "error": format!("model \"{model}\" not found, try pulling it first") }),
                ));
            }
            let prompt_empty = body
                .get("prompt")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if !chat && prompt_empty {
                // Loading only (pre-warm): one final line, not streamed.
                return Ok(json_resp(
                    200,
                    json!({
                        "model": model, "created_at": now(), "response": "", "done": true, "done_reason": "load"
                    }),
                ));
            }
            if script.status != 200 {
                let text = String::from_utf8_lossy(&script.lines.concat()).into_owned();
                return Ok(full(script.status, "application/json; charset=utf-8", text));
            }
            let lines = if chat {
                to_chat(&script.lines)
            } else {
                script.lines.clone()
            };
            let streaming = body.get("stream").and_then(Value::as_bool).unwrap_or(true);
            if !streaming {
                return Ok(non_streamed(&lines, chat));
            }
            stream_response(Script { lines, ..script }, model.to_string(), chat)
        }
        _ => full(404, "text/plain; charset=utf-8", "404 page not found"),
    };
    Ok(resp)
}

/// `/api/chat` wraps the text in `message` instead of `response`.
fn to_chat(lines: &[Vec<u8>]) -> Vec<Vec<u8>> {
    lines
        .iter()
        .map(|l| match serde_json::from_slice::<Value>(l) {
            Ok(mut v) if v.get("response").is_some() => {
                let text = v["response"].take();
                let obj = v.as_object_mut().unwrap();
                obj.remove("response");
                obj.remove("context");
                let mut msg = json!({ "role": "assistant", "content": text });
                if let Some(t) = obj.remove("thinking") {
                    msg["thinking"] = t;
                }
                obj.insert("message".into(), msg);
                let mut out = serde_json::to_vec(&v).unwrap();
                out.push(b'\n');
                out
            }
            _ => l.clone(),
        })
        .collect()
}

fn non_streamed(lines: &[Vec<u8>], chat: bool) -> Response<Body> {
    let mut text = String::new();
    for l in lines {
        if let Ok(v) = serde_json::from_slice::<Value>(l) {
            if let Some(e) = v.get("error") {
                return json_resp(500, json!({ "error": e }));
            }
            let piece = if chat {
                &v["message"]["content"]
            } else {
                &v["response"]
            };
            text.push_str(piece.as_str().unwrap_or(""));
        }
    }
    let mut last: Value = lines
        .last()
        .and_then(|l| serde_json::from_slice(l).ok())
        .unwrap_or_else(|| json!({ "done": true }));
    if chat {
        last["message"] = json!({ "role": "assistant", "content": text });
    } else {
        last["response"] = json!(text);
    }
    json_resp(200, last)
}

fn stream_response(script: Script, model: String, _chat: bool) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let chunks: Vec<Vec<u8>> = match script.split_every {
            None => script.lines.clone(),
            Some(n) => script
                .lines
                .concat()
                .chunks(n.max(1))
                .map(<[u8]>::to_vec)
                .collect(),
        };
        for c in chunks {
            if !script.delay.is_zero() {
                tokio::time::sleep(script.delay).await;
            }
            if tx.send(Bytes::from(c)).await.is_err() {
                return; // the client went away
            }
        }
        match &script.after {
            After::Close => {}
            After::Hang => {
                // Keep the connection open until the client gives up.
                tx.closed().await;
            }
            After::Endless(token) => loop {
                if tx
                    .send(Bytes::from(token_line(&model, token)))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            },
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/x-ndjson")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}
