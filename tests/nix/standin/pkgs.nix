# A stand-in for nixpkgs' package set, over nixpkgs' real lib, for evaluating
# ai-commit's flake and modules where nixpkgs cannot be fetched
# (.ci/nix-check). Nothing here can be built (every builder is
# /standin/cannot-build); what the real builders would reject at build
# time is rejected here at evaluation time, with the message the real tool
# gives: unknown cargo packages, features, test targets and skipped tests,
# a missing build script, and a `.cargo/config.toml` that cargo refuses
# once nixpkgs' cargo setup hook has appended its `[target."<triple>"]`.
{
  lib,
  system,
  neovimVersion,
}:
let
  platform = lib.systems.elaborate system;
  rustTriple = platform.rust.rustcTarget;

  # Like stdenv.mkDerivation: meta and passthru stay out of the derivation,
  # functions are dropped, overrideAttrs works.
  mkDerivation =
    args:
    let
      name = args.name or "${args.pname}-${args.version}";
      drvArgs = lib.filterAttrs (_: v: !lib.isFunction v) (
        removeAttrs args [
          "meta"
          "passthru"
          "name"
        ]
      );
      drv = derivation (
        drvArgs
        // {
          inherit name system;
          builder = "/standin/cannot-build";
        }
      );
    in
    drv
    // (args.passthru or { })
    // {
      meta = args.meta or { };
      # Attribute sets that are not packages go to passthru, as the real
      # wrappers' do (they are no derivation attributes).
      overrideAttrs =
        f:
        let
          new0 = if lib.isFunction f then f args else f;
          new = if lib.isFunction new0 then new0 args else new0;
          isPlainSet = v: lib.isAttrs v && !lib.isDerivation v;
        in
        mkDerivation (
          args
          // lib.filterAttrs (_: v: !isPlainSet v) new
          // {
            passthru = (args.passthru or { }) // lib.filterAttrs (_: isPlainSet) new;
          }
        );
    };

  simple =
    name:
    mkDerivation {
      pname = name;
      version = "standin";
      meta.mainProgram = name;
    };

  writeTextFile =
    {
      name,
      text,
      executable ? false,
      destination ? "",
      ...
    }:
    mkDerivation {
      inherit name text destination;
      executable = if executable then "1" else "";
      passAsFile = [ "text" ];
    };

  runCommand =
    name: env: buildCommand:
    mkDerivation (
      env
      // {
        inherit name buildCommand;
      }
    );

  # The value types of nixpkgs' pkgs/pkgs-lib/formats.nix.
  formats =
    let
      jsonValue =
        with lib.types;
        let
          valueType =
            nullOr (oneOf [
              bool
              int
              float
              str
              path
              (attrsOf valueType)
              (listOf valueType)
            ])
            // {
              description = "JSON value";
            };
        in
        valueType;
      tomlValue =
        with lib.types;
        let
          valueType =
            oneOf [
              bool
              int
              float
              str
              path
              (attrsOf valueType)
              (listOf valueType)
            ]
            // {
              description = "TOML value";
            };
        in
        valueType;
      # Like the real generators: json2toml (remarshal) over the value as
      # JSON, passed as a file. .ci/nix-check runs the real json2toml on
      # `value` to test the round trip.
      viaJson =
        tool: name: value:
        runCommand name {
          value = builtins.toJSON value;
          passAsFile = [ "value" ];
          preferLocalBuild = true;
        } "${tool} \"$valuePath\" \"$out\"";
    in
    {
      json = _: {
        type = jsonValue;
        generate = viaJson "jq . ";
      };
      toml = _: {
        type = tomlValue;
        generate = viaJson "json2toml";
      };
      yaml = _: {
        type = jsonValue;
        generate = viaJson "json2yaml";
      };
      ini =
        {
          listsAsDuplicateKeys ? false,
          ...
        }:
        let
          atom =
            with lib.types;
            nullOr (oneOf [
              bool
              int
              float
              str
            ]);
          value =
            if listsAsDuplicateKeys then lib.types.coercedTo atom lib.toList (lib.types.listOf atom) else atom;
        in
        {
          lib.types.atom = atom;
          type = lib.types.attrsOf (lib.types.attrsOf value);
          generate =
            name: v:
            writeTextFile {
              inherit name;
              text = lib.generators.toINI { inherit listsAsDuplicateKeys; } v;
            };
        };
    };

  # What nixpkgs' cargoSetupHook appends to .cargo/config.toml.
  cargoHookConfig = ''

    [target."${rustTriple}"]
    "linker" = "cc"
  '';

  buildRustPackage =
    args@{
      src,
      cargoLock,
      buildAndTestSubdir ? null,
      cargoBuildFlags ? [ ],
      cargoTestFlags ? [ ],
      checkFlags ? [ ],
      buildFeatures ? [ ],
      doCheck ? true,
      ...
    }:
    let
      fail = msg: throw "buildRustPackage ${args.pname} (stand-in, as cargo would): ${msg}";
      readToml = p: builtins.fromTOML (builtins.readFile p);
      root = readToml "${src}/Cargo.toml";
      members = map (m: {
        dir = if m == "." then "${src}" else "${src}/${m}";
        manifest = readToml (if m == "." then "${src}/Cargo.toml" else "${src}/${m}/Cargo.toml");
      }) (root.workspace.members or [ "." ]);
      byName = lib.listToAttrs (map (m: lib.nameValuePair m.manifest.package.name m) members);
      # -p NAME, else the crate in buildAndTestSubdir, else the root crate.
      flagValues =
        flag: flags:
        let
          go =
            l:
            if l == [ ] || lib.tail l == [ ] then
              [ ]
            else
              (lib.optional (lib.head l == flag) (lib.elemAt l 1)) ++ go (lib.tail l);
        in
        go flags;
      selected =
        let
          named = flagValues "-p" cargoBuildFlags;
        in
        if named != [ ] then
          map (n: byName.${n} or (fail "package ID specification `${n}` did not match any packages")) named
        else if buildAndTestSubdir != null then
          [
            (
              if builtins.pathExists "${src}/${buildAndTestSubdir}/Cargo.toml" then
                {
                  dir = "${src}/${buildAndTestSubdir}";
                  manifest = readToml "${src}/${buildAndTestSubdir}/Cargo.toml";
                }
              else
                fail "buildAndTestSubdir ${buildAndTestSubdir} has no Cargo.toml"
            )
          ]
        else
          [ (lib.head members) ];
      features =
        buildFeatures ++ lib.concatMap (lib.splitString ",") (flagValues "--features" cargoBuildFlags);
      checkFeature =
        f:
        lib.any (m: (m.manifest.features or { }) ? ${f} || (m.manifest.dependencies or { }) ? ${f}) selected
        || fail "none of the selected packages contains this feature: ${f}";
      checkBuildScript =
        m:
        let
          build =
            m.manifest.package.build or (if builtins.pathExists "${m.dir}/build.rs" then "build.rs" else false);
        in
        build == false
        || builtins.pathExists "${m.dir}/${build}"
        || fail "failed to read build script ${build} of ${m.manifest.package.name}";
      testNames =
        m:
        map (lib.removeSuffix ".rs") (
          lib.attrNames (lib.filterAttrs (n: _: lib.hasSuffix ".rs" n) (builtins.readDir "${m.dir}/tests"))
        )
        ++ map (t: t.name) (m.manifest.test or [ ]);
      checkTest =
        t:
        lib.any (m: builtins.pathExists "${m.dir}/tests" && lib.elem t (testNames m)) selected
        || fail "no test target named `${t}`";
      # A skipped test that exists nowhere is a typo (libtest would skip nothing).
      testSources = lib.concatMapStrings (
        m:
        lib.concatMapStrings (f: builtins.readFile f) (
          lib.filter (lib.hasSuffix ".rs") (lib.filesystem.listFilesRecursive m.dir)
        )
      ) selected;
      # Not lib.hasInfix: its regex (`.*x.*`) overflows the evaluator's
      # stack on sources this large; replaceStrings is a plain search.
      contains = needle: hay: builtins.replaceStrings [ needle ] [ "" ] hay != hay;
      checkSkip = t: contains "fn ${t}(" testSources || fail "--skip ${t}: no such test";
      # cargo parses .cargo/config.toml after the hook's append; a table
      # defined twice fails here as in cargo ("table already defined").
      cargoConfig = "${src}/.cargo/config.toml";
      checkCargoConfig =
        !builtins.pathExists cargoConfig
        || builtins.fromTOML (builtins.readFile cargoConfig + cargoHookConfig) != null;
      # The tests start loopback servers (the stand-in Ollama); the Darwin
      # build sandbox refuses that unless the derivation allows it.
      checkDarwinNetworking =
        !(doCheck && platform.isDarwin)
        || (args.__darwinAllowLocalNetworking or false)
        || fail "tests that bind loopback servers need __darwinAllowLocalNetworking = true on Darwin";
      checks =
        checkDarwinNetworking
        && builtins.pathExists "${src}/Cargo.lock"
        && builtins.pathExists cargoLock.lockFile
        && lib.all checkFeature features
        && lib.all checkBuildScript selected
        && checkCargoConfig
        && (!doCheck || lib.all checkTest (flagValues "--test" cargoTestFlags))
        && (!doCheck || lib.all checkSkip (flagValues "--skip" checkFlags));
    in
    assert checks;
    mkDerivation (
      removeAttrs args [ "cargoLock" ]
      // {
        cargoLockFile = cargoLock.lockFile;
        nativeBuildInputs = (args.nativeBuildInputs or [ ]) ++ [
          pkgs.cargo
          pkgs.rustc
        ];
      }
    );

  buildVimPlugin =
    args@{ src, ... }:
    assert lib.assertMsg (
      builtins.pathExists "${src}/lua" || builtins.pathExists "${src}/plugin"
    ) "buildVimPlugin ${args.pname}: a plugin without lua/ or plugin/";
    mkDerivation (
      args
      // {
        passthru = (args.passthru or { }) // {
          vimPlugin = true;
        };
      }
    );

  neovim-unwrapped = (simple "neovim-unwrapped") // {
    version = neovimVersion;
    meta.mainProgram = "nvim";
    lua = simple "luajit";
  };

  pkgs =
    lib.genAttrs [
      "bash"
      "shared-mime-info"
      "man"
      "glibcLocales"
      "cargo"
      "clippy"
      "coreutils"
      "deadnix"
      "findutils"
      "git"
      "gnugrep"
      "gnused"
      "jq"
      "libiconv"
      "lndir"
      "nixfmt"
      "ollama"
      "openssh"
      "pkg-config"
      "procps"
      "remarshal"
      "rust-analyzer"
      "rustc"
      "rustfmt"
      "sd-switch"
      "systemd"
      "util-linux"
      "zlib"
    ] simple
    // {
      inherit
        lib
        system
        formats
        runCommand
        writeTextFile
        neovim-unwrapped
        ;
      neovim = neovim-unwrapped;
      # home-manager imports nixos/modules/misc/{assertions,meta}.nix from here.
      path = ./nixpkgs-path;
      stdenv = {
        inherit mkDerivation;
        hostPlatform = platform;
        buildPlatform = platform;
        targetPlatform = platform;
        inherit (platform) isLinux isDarwin;
        cc = simple "cc" // {
          cc = simple "gcc-unwrapped";
        };
        shell = "${pkgs.bash}/bin/bash";
      };
      callPackage = f: extra: f (builtins.intersectAttrs (lib.functionArgs f) pkgs // extra);
      runCommandLocal = runCommand;
      writeText = name: text: writeTextFile { inherit name text; };
      writeShellScript =
        name: text:
        writeTextFile {
          inherit name;
          executable = true;
          text = "#!${pkgs.bash}/bin/bash\n${text}";
        };
      writeShellScriptBin =
        name: text:
        writeTextFile {
          inherit name;
          executable = true;
          destination = "/bin/${name}";
          text = "#!${pkgs.bash}/bin/bash\n${text}";
        };
      symlinkJoin = args: mkDerivation args;
      emptyDirectory = simple "empty-directory";
      mkShell = args: mkDerivation ({ name = "nix-shell"; } // args);
      rustPlatform = { inherit buildRustPackage; };
      vimUtils = { inherit buildVimPlugin; };
      vimPlugins = { };
      neovimUtils = {
        makeVimPackageInfo = plugins: {
          pluginPython3Packages = [ ];
          runtimeDeps = [ ];
          vimPackage = {
            start = map (p: p.plugin) (lib.filter (p: !(p.optional or false)) plugins);
            opt = map (p: p.plugin) (lib.filter (p: p.optional or false) plugins);
          };
        };
        packDir =
          packages:
          mkDerivation {
            name = "vim-pack-dir";
            plugins = lib.concatMap (p: p.start ++ p.opt) (lib.attrValues packages);
          };
      };
      # The real wrapper reads `plugins` entries as { plugin; optional; config; }.
      wrapNeovimUnstable =
        neovim: args:
        assert lib.assertMsg (lib.all (
          p: lib.isDerivation p.plugin
        ) args.plugins) "wrapNeovimUnstable: a plugin that is not a package";
        mkDerivation {
          pname = "neovim";
          inherit (neovim) version;
          unwrapped = neovim;
          plugins = map (p: p.plugin) args.plugins;
          passthru.luaRcContent = "";
          meta.mainProgram = "nvim";
        };
      replaceVars =
        src: vars:
        mkDerivation (
          {
            name = baseNameOf src;
            inherit src;
          }
          // lib.mapAttrs (_: toString) vars
        );
    };
in
pkgs
