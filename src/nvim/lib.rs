//! `ai_commit_native`: the Neovim face's native Lua module, over the same
//! core pipeline as the CLI.
//!
//! The boundary is deliberately narrow because nvim-oxi 0.6 aborts Neovim
//! when an `Err` or a panic leaves a Rust function called from Lua, or when
//! Lua passes an argument of an unexpected type:
//!
//! - every function takes and returns **strings** (JSON), checked here, so a
//!   wrong argument gives `{"ok":false,"err":…}` instead of an abort;
//! - every body runs under `catch_unwind`;
//! - no Neovim API is called from Rust at all: work runs on worker threads,
//!   events are queued, one `AsyncHandle` (made once, at load time, on the
//!   main thread) wakes the main loop, which `schedule`s the Lua waker, which
//!   drains the queue. UI stays in Lua (`lua/ai_commit/`).
//!
//! **Why one build works in every Neovim (0.10, 0.11, 0.12, nightly).** What
//! changes between Neovim releases is its C API (`nvim_*` functions, their
//! argument structs and calling conventions); a module that calls it must be
//! built for the Neovim that loads it. This module calls none of it: it only
//! uses LuaJIT's C API (`lua_*`, stable since Lua 5.1), libuv (`uv_*`, stable
//! within 1.x) and luv's `luv_loop`, which every Neovim exports. Keep it that
//! way: anything from `nvim_oxi::api` (buffers, windows, notify, …) or
//! `nvim_oxi::mlua` would tie the module to one Neovim again. The test
//! `the_module_imports_no_neovim_c_api` (tests/nvim.rs) fails if it happens.
//!
//! What can go wrong instead is a module older than the Lua side (a stale
//! build after `git pull`): [`PROTOCOL`] names the boundary's version and the
//! Lua side refuses a module that reports another one.

mod events;
mod runs;

use std::panic::{catch_unwind, AssertUnwindSafe};

use nvim_oxi::conversion::FromObject;
use nvim_oxi::{Dictionary, Function, Object, ObjectKind};
use serde_json::{json, Value};

/// The version of the boundary between this module and `lua/ai_commit/`: the
/// functions, their JSON arguments and answers, the events. Bump it, together
/// with `PROTOCOL` in `lua/ai_commit/native.lua`, whenever any of them
/// changes, so that a module built from older sources is refused with a
/// message saying how to rebuild it, instead of misbehaving.
pub const PROTOCOL: u32 = if cfg!(feature = "stale-protocol-for-tests") {
    1
} else {
    5
};

fn err(kind: &str, message: impl std::fmt::Display) -> String {
    json!({ "ok": false, "kind": kind, "err": message.to_string() }).to_string()
}

/// The only argument shape we accept: one string. Anything else is reported,
/// never converted (a failed conversion would abort Neovim).
fn string_arg(arg: &Object) -> Result<String, String> {
    match arg.kind() {
        ObjectKind::String => {
            // SAFETY: the kind was just checked.
            let s = unsafe { arg.as_nvim_str_unchecked() };
            Ok(s.to_string_lossy().into_owned())
        }
        ObjectKind::Nil => Ok(String::new()),
        other => Err(format!(
            "expected a string argument, got {}",
            other.as_static()
        )),
    }
}

/// Wrap `f` so that neither a bad argument nor a panic crosses into Lua.
fn guarded(name: &'static str, f: fn(&str) -> String) -> Object {
    Object::from(Function::<Object, String>::from_fn(
        move |arg: Object| -> Result<String, std::convert::Infallible> {
            let out = match string_arg(&arg) {
                Err(e) => err("bad_args", format!("{name}: {e}")),
                Ok(s) => catch_unwind(AssertUnwindSafe(|| f(&s))).unwrap_or_else(|_| {
                    err(
                        "panic",
                        format!("{name}: internal error (a bug in ai-commit; please report it)"),
                    )
                }),
            };
            Ok(out)
        },
    ))
}

fn info(_: &str) -> String {
    json!({
        "ok": true,
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": PROTOCOL,
    })
    .to_string()
}

fn parse(args: &str) -> Result<Value, String> {
    serde_json::from_str(args).map_err(|e| err("bad_args", format!("arguments are not JSON: {e}")))
}

fn start(args: &str) -> String {
    match parse(args) {
        Ok(v) => runs::start(v),
        Err(e) => e,
    }
}

fn cancel(args: &str) -> String {
    match args.trim().parse::<u64>() {
        Ok(id) => runs::cancel(id),
        Err(_) => err("bad_args", "cancel: expected a run id"),
    }
}

fn reply(args: &str) -> String {
    match parse(args) {
        Ok(v) => runs::reply(v),
        Err(e) => e,
    }
}

fn drain(_: &str) -> String {
    runs::drain()
}

fn doctor(args: &str) -> String {
    match parse(args) {
        Ok(v) => runs::doctor(v),
        Err(e) => e,
    }
}

fn backup(args: &str) -> String {
    match parse(args) {
        Ok(v) => runs::backup(v),
        Err(e) => e,
    }
}

fn backup_status(args: &str) -> String {
    match parse(args) {
        Ok(v) => runs::backup_status(v),
        Err(e) => e,
    }
}

fn sync(args: &str) -> String {
    match parse(args) {
        Ok(v) => runs::sync(v),
        Err(e) => e,
    }
}

fn preload(args: &str) -> String {
    match parse(args) {
        Ok(v) => runs::preload(v),
        Err(e) => e,
    }
}

#[nvim_oxi::plugin]
fn ai_commit_native() -> nvim_oxi::Result<Dictionary> {
    runs::init()?;
    // `set_waker` takes a Lua function, not a string: checked by kind too.
    let set_waker = Function::<Object, String>::from_fn(
        |arg: Object| -> Result<String, std::convert::Infallible> {
            Ok(match arg.kind() {
                ObjectKind::LuaRef => match Function::<(), ()>::from_object(arg) {
                    Ok(f) => {
                        runs::set_waker(f);
                        json!({ "ok": true }).to_string()
                    }
                    Err(e) => err("bad_args", format!("set_waker: {e}")),
                },
                other => err(
                    "bad_args",
                    format!("set_waker: expected a function, got {}", other.as_static()),
                ),
            })
        },
    );
    Ok(Dictionary::from_iter([
        ("info", guarded("info", info)),
        ("start", guarded("start", start)),
        ("cancel", guarded("cancel", cancel)),
        ("reply", guarded("reply", reply)),
        ("drain", guarded("drain", drain)),
        ("doctor", guarded("doctor", doctor)),
        ("preload", guarded("preload", preload)),
        ("sync", guarded("sync", sync)),
        ("backup", guarded("backup", backup)),
        ("backup_status", guarded("backup_status", backup_status)),
        ("set_waker", Object::from(set_waker)),
    ]))
}
