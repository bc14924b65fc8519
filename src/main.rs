//! `ai-commit`: the command-line face of the pipeline.

mod cli;

fn main() {
    quiet_broken_pipe();
    std::process::exit(cli::main());
}

/// `ai-commit status | head -1`: when whoever reads stdout goes away, stop
/// quietly with the status a shell shows for a tool ended by SIGPIPE (141,
/// as `git log | head -1` does) instead of panicking in `println!` with a
/// backtrace. Rust ignores SIGPIPE so that sockets and hook pipes report
/// EPIPE as errors; only stdout's own failure ends the process here, and a
/// commit is made before its result line is printed.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
