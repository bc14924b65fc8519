//! Lossless NDJSON framing for Ollama's streaming responses.
//!
//! ollama-rs 0.3.6 parses each HTTP chunk on its own, so a JSON line split
//! across chunks is dropped, a chunk that splits a UTF-8 character is
//! dropped, and an `{"error":…}` line ends the stream silently. Here bytes are
//! buffered until a full `\n`-terminated line exists and only whole lines are
//! decoded, so neither split can lose text; error lines and unparseable lines
//! become typed errors. The line *payloads* are still ollama-rs's own
//! [`GenerationResponse`].

use ollama_rs::generation::completion::GenerationResponse;
use serde::Deserialize;

/// Splits a byte stream into complete lines.
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
}

impl LineFramer {
    /// Add a chunk; return every line it completed (without the newline).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.buf);
            line.extend_from_slice(&rest[..i]);
            lines.push(line);
            rest = &rest[i + 1..];
        }
        self.buf.extend_from_slice(rest);
        lines
    }

    /// The unterminated tail at end of stream, if it holds anything.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let tail = std::mem::take(&mut self.buf);
        (!tail.iter().all(u8::is_ascii_whitespace)).then_some(tail)
    }
}

/// One decoded line.
#[derive(Debug)]
pub enum Line {
    Chunk {
        response: String,
        thinking: Option<String>,
        done: bool,
        done_reason: Option<String>,
        eval_count: Option<u64>,
    },
    /// `{"error":"…"}`, sent by Ollama mid-stream when generation fails.
    Error(String),
    /// Blank (keep-alive) line.
    Blank,
}

#[derive(Deserialize)]
struct ErrorLine {
    error: String,
}

/// `done_reason` is on the wire but not in ollama-rs 0.3.6's struct.
#[derive(Deserialize)]
struct Extra {
    done_reason: Option<String>,
}

/// Decode one complete line. `Err` holds a short excerpt of a line that is
/// not Ollama's protocol (a proxy's HTML page, a truncated write, …).
pub fn parse_line(line: &[u8]) -> Result<Line, String> {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return Ok(Line::Blank);
    }
    if let Ok(e) = serde_json::from_slice::<ErrorLine>(trimmed) {
        return Ok(Line::Error(e.error));
    }
    match serde_json::from_slice::<GenerationResponse>(trimmed) {
        Ok(g) => {
            let extra: Option<Extra> = serde_json::from_slice(trimmed).ok();
            Ok(Line::Chunk {
                response: g.response,
                thinking: g.thinking,
                done: g.done,
                done_reason: extra.and_then(|x| x.done_reason),
                eval_count: g.eval_count,
            })
        }
        Err(_) => {
            let text = String::from_utf8_lossy(trimmed);
            let excerpt: String = text.chars().take(80).collect();
            Err(excerpt)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_anywhere_are_reassembled() {
        let wire = "{\"model\":\"m\",\"created_at\":\"t\",\"response\":\"Ünï\",\"done\":false}\n\
                    {\"model\":\"m\",\"created_at\":\"t\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\"}\n";
        let bytes = wire.as_bytes();
        // Every possible split point, including inside the multi-byte characters.
        for cut in 0..bytes.len() {
            let mut f = LineFramer::default();
            let mut lines = f.push(&bytes[..cut]);
            lines.extend(f.push(&bytes[cut..]));
            assert!(f.finish().is_none());
            assert_eq!(lines.len(), 2, "cut at {cut}");
            match parse_line(&lines[0]).unwrap() {
                Line::Chunk { response, .. } => assert_eq!(response, "Ünï"),
                other => panic!("{other:?}"),
            }
            match parse_line(&lines[1]).unwrap() {
                Line::Chunk {
                    done, done_reason, ..
                } => {
                    assert!(done);
                    assert_eq!(done_reason.as_deref(), Some("stop"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn error_and_garbage_lines_are_distinguished() {
        assert!(matches!(
            parse_line(br#"{"error":"boom"}"#).unwrap(),
            Line::Error(e) if e == "boom"
        ));
        assert!(parse_line(b"<html>proxy</html>").is_err());
        assert!(matches!(parse_line(b"  \r").unwrap(), Line::Blank));
    }

    #[test]
    fn unterminated_tail_is_returned() {
        let mut f = LineFramer::default();
        assert!(f.push(b"{\"a\":").is_empty());
        assert_eq!(f.finish().unwrap(), b"{\"a\":");
        assert!(f.finish().is_none());
    }
}
