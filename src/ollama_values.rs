//! Ollama's own value syntaxes: `OLLAMA_HOST`-style addresses → a base URL,
//! and keep-alive durations. Both the configuration (to validate a value,
//! naming its key) and the model client (to use it) parse them, so they sit
//! below both and import neither.
//!
//! Ollama accepts `host`, `host:port`, `:port`, `[v6]:port` and full URLs;
//! the default port is 11434 without a scheme (80/443 with one). ollama-rs
//! panics on a scheme-less address and mishandles a path, so everything goes
//! through here first.

use ollama_rs::generation::parameters::{KeepAlive, TimeUnit};
use url::Url;

pub const DEFAULT_PORT: u16 = 11434;

/// Normalise an Ollama address to `scheme://host:port/`.
pub fn normalize(raw: &str) -> Result<Url, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("the Ollama host is empty".into());
    }
    let (scheme, rest) = match s.split_once("://") {
        Some((sch, rest)) => (sch.to_ascii_lowercase(), rest),
        None => ("http".to_string(), s),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{raw:?}: Ollama is reached over http or https, not {scheme}"
        ));
    }
    let (hostport, path) = match rest.split_once('/') {
        Some((hp, p)) => (hp, p.trim_matches('/')),
        None => (rest, ""),
    };
    if !path.is_empty() {
        return Err(format!(
            "{raw:?}: a host with a path (/{path}) is not supported; give scheme://host:port"
        ));
    }
    let default_port = match (s.contains("://"), scheme.as_str()) {
        (false, _) => DEFAULT_PORT,
        (true, "https") => 443,
        (true, _) => 80,
    };
    let mut url = Url::parse(&format!("{scheme}://{}", with_host(hostport)))
        .map_err(|e| format!("{raw:?} is not a host:port or URL ({e})"))?;
    if url.port().is_none() && !hostport.ends_with(&format!(":{default_port}")) {
        let _ = url.set_port(Some(default_port));
    }
    // A server bound to 0.0.0.0 / [::] (a common OLLAMA_HOST for `ollama serve`)
    // is reached on loopback.
    match url.host_str() {
        Some("0.0.0.0") => {
            let _ = url.set_host(Some("127.0.0.1"));
        }
        Some("[::]") => {
            let _ = url.set_host(Some("[::1]"));
        }
        _ => {}
    }
    Ok(url)
}

/// `:11434` means "this machine".
fn with_host(hostport: &str) -> String {
    if hostport.starts_with(':') {
        format!("127.0.0.1{hostport}")
    } else {
        hostport.to_string()
    }
}

/// True for addresses that must never go through an HTTP proxy.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parse a keep-alive value the way Ollama does: `-1`, `0`, `30s`, `5m`, `2h`.
pub fn parse_keep_alive(s: &str) -> Result<KeepAlive, String> {
    let s = s.trim();
    match s {
        "-1" => return Ok(KeepAlive::Indefinitely),
        "0" => return Ok(KeepAlive::UnloadOnCompletion),
        _ => {}
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    match (num.parse::<u64>(), TimeUnit::from_symbol(unit)) {
        (Ok(time), Some(unit)) => Ok(KeepAlive::Until { time, unit }),
        _ => Err(format!(
            "{s:?} is not a duration like \"30s\", \"10m\", \"2h\", \"-1\" (forever) or \"0\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn n(s: &str) -> String {
        normalize(s).unwrap().to_string()
    }

    #[test]
    fn ollama_host_forms() {
        assert_eq!(n("127.0.0.1:11434"), "http://127.0.0.1:11434/");
        assert_eq!(n("localhost"), "http://localhost:11434/");
        assert_eq!(n(":9999"), "http://127.0.0.1:9999/");
        assert_eq!(n("0.0.0.0"), "http://127.0.0.1:11434/");
        assert_eq!(n("http://gpu-box"), "http://gpu-box/");
        assert_eq!(n("https://ollama.example"), "https://ollama.example/");
        assert_eq!(n("http://10.1.2.3:8080/"), "http://10.1.2.3:8080/");
        assert_eq!(n("[::1]:11434"), "http://[::1]:11434/");
        assert_eq!(n("  gpu-box:1234 "), "http://gpu-box:1234/");
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        assert!(normalize("").is_err());
        assert!(normalize("ftp://x").is_err());
        assert!(normalize("http://h:1/prefix").unwrap_err().contains("path"));
        assert!(normalize("host:notaport").is_err());
    }
}
