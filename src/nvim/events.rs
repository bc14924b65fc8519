//! Core events and outcomes as JSON for the Lua side.

use ai_commit::{Error, Event, Outcome};
use serde_json::{json, Value};

pub fn event(id: u64, ev: &Event) -> Value {
    let mut v = match ev {
        Event::Staged { paths } => json!({ "type": "staged", "paths": paths }),
        Event::Diff(s) => {
            json!({ "type": "diff", "files": s.files, "insertions": s.insertions, "deletions": s.deletions })
        }
        Event::Generating { model, host } => {
            json!({ "type": "generating", "model": model, "host": host })
        }
        Event::Token(t) => json!({ "type": "token", "text": t }),
        Event::Message { text, source } => {
            let mut v = json!({ "type": "message", "text": text });
            merge(&mut v, serde_json::to_value(source).unwrap_or_default());
            v
        }
        Event::Committed { oid } => json!({ "type": "committed", "oid": oid }),
        Event::Pushing { remote, url } => {
            json!({ "type": "pushing", "remote": remote, "url": url })
        }
        Event::Pushed(r) => {
            let mut v = json!({ "type": "pushed" });
            merge(&mut v, serde_json::to_value(r).unwrap_or_default());
            v
        }
        Event::PushFailed { reason } => json!({ "type": "push_failed", "reason": reason }),
        Event::Backup { detail } => json!({ "type": "backup", "detail": detail }),
    };
    v["id"] = id.into();
    v
}

pub fn done(id: u64, outcome: &Outcome) -> Value {
    json!({ "id": id, "type": "done", "outcome": outcome })
}

pub fn failed(id: u64, e: &Error) -> Value {
    json!({ "id": id, "type": "error", "kind": e.kind(), "message": e.to_string() })
}

/// Copy the fields of object `extra` into object `v`.
fn merge(v: &mut Value, extra: Value) {
    if let (Some(dst), Value::Object(src)) = (v.as_object_mut(), extra) {
        dst.extend(src);
    }
}
