//! `ai-commit`: the command-line face of the pipeline.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
