//! The flake's pins and source filter, checked without Nix (the Nix files
//! themselves are parsed, evaluated where possible, format- and dead-code-
//! checked by `.ci/test`).

use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn flake_lock_pins_nixpkgs_fully() {
    let lock: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("flake.lock")).unwrap())
            .expect("flake.lock is JSON");
    assert_eq!(lock["version"], 7);
    assert_eq!(lock["root"], "root");
    assert_eq!(lock["nodes"]["root"]["inputs"]["nixpkgs"], "nixpkgs");
    let locked = &lock["nodes"]["nixpkgs"]["locked"];
    let rev = locked["rev"].as_str().unwrap();
    assert!(
        rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
        "a full commit: {rev}"
    );
    let hash = locked["narHash"].as_str().unwrap();
    assert!(
        hash.starts_with("sha256-") && hash.len() == 51 && hash.ends_with('='),
        "an SRI sha256: {hash}"
    );
    assert!(locked["lastModified"]
        .as_u64()
        .is_some_and(|t| t > 1_600_000_000));
    assert_eq!(locked["type"], "github");
    assert_eq!(locked["owner"], "NixOS");
    assert_eq!(locked["repo"], "nixpkgs");
    // The lock agrees with what flake.nix asks for.
    let original = &lock["nodes"]["nixpkgs"]["original"];
    let url = format!(
        "github:{}/{}/{}",
        original["owner"].as_str().unwrap(),
        original["repo"].as_str().unwrap(),
        original["ref"].as_str().unwrap()
    );
    let flake = std::fs::read_to_string(root().join("flake.nix")).unwrap();
    assert!(
        flake.contains(&format!("inputs.nixpkgs.url = \"{url}\";")),
        "flake.nix asks for {url}"
    );
}

#[test]
fn the_flake_source_holds_what_the_build_reads_and_nothing_generated() {
    let flake = std::fs::read_to_string(root().join("flake.nix")).unwrap();
    // include_str!("../prompts/…"), the lock, the workspace members: all
    // needed inside the Nix build.
    for path in [
        "./Cargo.toml",
        "./Cargo.lock",
        "./src",
        "./prompts",
        "(lib.fileset.difference ./tests ./tests/nix)",
        "./benches",
        "./lua",
        "./plugin",
        "./doc",
    ] {
        assert!(
            flake.contains(&format!("          {path}\n")),
            "{path} in a source fileset"
        );
    }
    for generated in ["./target", "./.venv", "./.local"] {
        assert!(
            !flake.contains(generated),
            "{generated} must stay out of the build"
        );
    }
    // Every workspace member lives under the filtered source.
    let cargo: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    for member in cargo["workspace"]["members"].as_array().unwrap() {
        let m = member.as_str().unwrap();
        assert!(m == "." || m.starts_with("src/"), "{m} is inside ./src");
    }
    // nixpkgs' cargo setup hook appends [target."<triple>"] tables to
    // .cargo/config.toml: a Darwin table of ours there breaks macOS builds.
    // The Darwin link flags live in the module crate's build script.
    assert!(!root().join(".cargo/config.toml").exists());
    assert!(!flake.contains("./.cargo"));
    let build = std::fs::read_to_string(root().join("src/nvim/build.rs")).unwrap();
    assert!(build.contains("cargo:rustc-cdylib-link-arg=dynamic_lookup"));
}
