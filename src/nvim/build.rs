//! The module is a Lua C module: on macOS the Lua symbols it uses are
//! resolved when Neovim loads it, not when it is linked. Here rather than in
//! `.cargo/config.toml`, which nixpkgs' cargo setup hook appends its own
//! `[target."<triple>"]` tables to (a second Darwin table is a TOML error).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos") {
        println!("cargo:rustc-cdylib-link-arg=-undefined");
        println!("cargo:rustc-cdylib-link-arg=dynamic_lookup");
    }
}
