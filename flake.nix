{
  description = "ai-commit: stage, let a local model (Ollama) write the commit message, commit, push — CLI and Neovim plugin";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      version = (lib.importTOML ./Cargo.toml).package.version;

      # Only what the build reads: no target/, .venv/, .git/, nor the Nix
      # evaluation checks in tests/nix. No .cargo/: nixpkgs' cargo setup
      # hook appends to .cargo/config.toml (Darwin link flags are in
      # src/nvim/build.rs).
      rustSource = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./Cargo.toml
          ./Cargo.lock
          ./src
          ./prompts
          (lib.fileset.difference ./tests ./tests/nix)
          ./benches
        ];
      };
      pluginSource = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./lua
          ./plugin
          ./doc
        ];
      };

      mkCli =
        pkgs:
        pkgs.rustPlatform.buildRustPackage {
          pname = "ai-commit";
          inherit version;
          src = rustSource;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [
            "-p"
            "ai-commit"
          ];
          nativeBuildInputs = [ pkgs.pkg-config ];
          buildInputs = [ pkgs.zlib ] ++ lib.optionals pkgs.stdenv.hostPlatform.isDarwin [ pkgs.libiconv ];
          # The tests use real git repositories, git's CLI as an oracle, and
          # util-linux's `script` for a pseudo-terminal. The Neovim tests need
          # the native module and a Neovim: they run in checks.ai-commit-nvim.
          nativeCheckInputs = [
            pkgs.git
            pkgs.util-linux
            pkgs.procps
          ];
          cargoTestFlags = [
            "-p"
            "ai-commit"
            "--lib"
            "--test"
            "model_streams"
            "--test"
            "git_cases"
            "--test"
            "cli_modes"
            "--test"
            "prompt_budget"
            "--test"
            "sync_backup"
            "--test"
            "concurrency"
            "--test"
            "hostile_cases"
            "--test"
            "journal_merge"
            "--test"
            "messages"
            "--test"
            "compaction"
          ];
          # The tests run a loopback Ollama server.
          __darwinAllowLocalNetworking = true;
          # A pseudo-terminal may not exist in the build sandbox.
          checkFlags = [
            "--skip"
            "tokens_stream_on_a_tty_only_and_no_color_is_honoured"
          ];
          meta = {
            description = "Stage, let a local model write the commit message, commit, push";
            mainProgram = "ai-commit";
            license = lib.licenses.mit;
          };
        };

      mkNative =
        pkgs:
        pkgs.rustPlatform.buildRustPackage {
          pname = "ai-commit-nvim-native";
          inherit version;
          src = rustSource;
          cargoLock.lockFile = ./Cargo.lock;
          # One module for every Neovim >= 0.10: it calls no Neovim C API
          # (src/nvim/lib.rs), so it does not depend on nixpkgs' Neovim.
          buildAndTestSubdir = "src/nvim";
          nativeBuildInputs = [ pkgs.pkg-config ];
          buildInputs = [ pkgs.zlib ] ++ lib.optionals pkgs.stdenv.hostPlatform.isDarwin [ pkgs.libiconv ];
          doCheck = false;
          # Lua looks for lua/<name>.so on every platform (.dylib on macOS).
          installPhase = ''
            runHook preInstall
            mkdir -p $out/lua
            lib=$(find target -name 'libai_commit_native.so' -o -name 'libai_commit_native.dylib' | grep -v '/deps/' | head -n 1)
            install -m 755 "$lib" $out/lua/ai_commit_native.so
            runHook postInstall
          '';
        };

      mkPlugin =
        pkgs:
        let
          native = mkNative pkgs;
        in
        pkgs.vimUtils.buildVimPlugin {
          pname = "ai-commit-nvim";
          inherit version;
          src = pluginSource;
          postInstall = ''
            install -m 755 ${native}/lua/ai_commit_native.so $out/lua/ai_commit_native.so
          '';
          # Loading the module and :checkhealth need the real Neovim.
          doCheck = false;
          meta.description = "Neovim face of ai-commit (\\g: stage, message, commit, push), native module included";
        };

      # Both modules share the options; `home` says where they are used.
      commonOptions =
        { pkgs, home }:
        {
          enable = lib.mkEnableOption "ai-commit";
          package = lib.mkOption {
            type = lib.types.package;
            default = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
            defaultText = lib.literalExpression "ai-commit.packages.\${system}.default";
            description = "The ai-commit CLI.";
          };
          settings = lib.mkOption {
            type = settingsType pkgs;
            default = { };
            example = lib.literalExpression ''
              {
                model = "gemma3";
                timeout = 60;
                backup = {
                  min_interval = "10m";
                  targets = [ { mirror = "/mnt/backup/git/{name}.git"; require = "/mnt/backup/.mounted"; } ];
                };
              }
            '';
            description =
              "ai-commit's configuration, rendered to "
              + (
                if home then "~/.config/ai-commit/config.toml" else "/etc/ai-commit/config.toml (AI_COMMIT_CONFIG)"
              )
              + ". Keys as in the README, typed; other keys pass through (a newer CLI's) and are errors at run time if unknown.";
          };
          backup = {
            repositories = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              example = [ "/home/me/journal" ];
              description = "Work trees whose [backup] targets a systemd user timer runs (`ai-commit backup`).";
            };
            interval = lib.mkOption {
              type = lib.types.str;
              default = "hourly";
              description = "systemd OnCalendar= for the backup timer.";
            };
          };
          sync = {
            repositories = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              example = [ "/home/me/journal" ];
              description = "Work trees a systemd user timer reconciles with their remote (`ai-commit sync`: fetch; fast-forward or replay local commits, merging new journal entries; push what is pending). An unreachable remote (its disk unmounted) is a normal run, not a failed unit.";
            };
            interval = lib.mkOption {
              type = lib.types.str;
              default = "*:0/15";
              example = "hourly";
              description = "systemd OnCalendar= for the sync timer (default: every 15 minutes, as the plugin's `sync_interval = 15`; a sync with nothing new is one fetch).";
            };
          };
        };

      # The keys of src/config.rs (`Settings`), typed, so that a wrong value
      # fails evaluation instead of the CLI at run time; any other TOML
      # passes through (freeformType).
      settingsType =
        pkgs:
        let
          inherit (lib) types;
          toml = (pkgs.formats.toml { }).type;
          opt =
            type: description:
            lib.mkOption {
              type = types.nullOr type;
              default = null;
              inherit description;
            };
          seconds = types.either types.ints.unsigned (types.addCheck types.float (x: x >= 0));
          target = types.submodule {
            options = {
              mirror = opt types.str "A bare repository receiving every branch and tag ({name}: the work tree's name).";
              command = opt (types.nonEmptyListOf types.str) "A command run in the work tree.";
              require = opt types.str "Skip while this path is missing.";
              require_mount = opt types.str "Skip while this path is not a mount point.";
            };
          };
          # What src/config.rs `parse_interval` accepts.
          interval = types.strMatching "0|[0-9]+[smhd]";
          backup = types.submodule {
            freeformType = toml;
            options = {
              min_interval = opt interval "At most one run per this interval: \"30s\", \"10m\", \"1h\", \"1d\" or \"0\" (default \"10m\").";
              targets = lib.mkOption {
                type = types.listOf target;
                default = [ ];
                description = "Mirrors and commands.";
              };
            };
          };
          compaction = types.submodule {
            freeformType = toml;
            options = {
              enabled = opt types.bool "Pack loose objects in the background after commits (default true); false: never (git's own `gc --auto` still may).";
              min_interval = opt interval "At most one compaction per this interval: \"30s\", \"10m\", \"1h\", \"1d\" or \"0\" (default \"10m\").";
              min_loose_bytes = opt types.ints.unsigned "Start only when the loose objects take at least this many bytes (default 4194304, 4 MiB).";
            };
          };
        in
        types.submodule {
          freeformType = toml;
          options = {
            model = opt types.str "Ollama model name.";
            host = opt types.str "Ollama address.";
            timeout = opt seconds "Seconds for the model call.";
            connect_timeout = opt seconds "Seconds to connect to Ollama.";
            first_token_timeout = opt seconds "Seconds to the first streamed line.";
            push = opt types.bool "Push after committing.";
            fallback_message = opt types.str "Fallback message template ({file}).";
            prompt = opt types.str "A prompt file path, or the prompt itself.";
            prompt_kind = opt (types.enum [
              "auto"
              "journal"
              "code"
            ]) "Which built-in prompt.";
            temperature = opt types.number "Model temperature.";
            num_ctx = opt types.ints.u32 "Context window asked of Ollama.";
            num_predict = opt types.ints.u32 "Most tokens the model may write.";
            keep_alive = opt types.str "How long Ollama keeps the model loaded.";
            max_subject = opt types.ints.positive "Longest subject line.";
            body = opt types.bool "Keep a body the model writes.";
            verify = opt types.bool "Run pre-commit and commit-msg hooks.";
            backup = opt backup "[backup]: when and where backups go.";
            compaction = opt compaction "[compaction]: packing the loose objects of the work repository, its local bare remote and backup mirrors in the background (`git repack`).";
          };
        };

      # TOML has no null: unset typed keys are left out.
      withoutNulls =
        v:
        if lib.isAttrs v then
          lib.mapAttrs (_: withoutNulls) (lib.filterAttrs (n: x: x != null && n != "_module") v)
        else if lib.isList v then
          map withoutNulls v
        else
          v;
      settingsOf = cfg: withoutNulls cfg.settings;

      tomlFile = pkgs: settings: (pkgs.formats.toml { }).generate "ai-commit.toml" settings;

      # One oneshot run over the configured work trees (NixOS and home-manager).
      backupScript =
        cfg: pkgs:
        pkgs.writeShellScript "ai-commit-backup" (
          # Backups to network remotes run git; the user's own PATH (command
          # targets) is kept after it.
          "export PATH=${lib.makeBinPath [ pkgs.git ]}\${PATH:+:$PATH}\n"
          + lib.concatMapStringsSep "\n" (
            r: "(cd ${lib.escapeShellArg r} && ${lib.getExe cfg.package} backup) || status=1"
          ) cfg.backup.repositories
          + "\nexit \${status:-0}\n"
        );

      # `ai-commit sync` in each configured work tree. Exit 4 is the remote
      # unreachable (its disk unmounted; the commits are kept, the next run
      # pushes them): a normal state, so the script exits 4 when nothing
      # worse happened and the units count 4 as success (SuccessExitStatus);
      # any other exit (a conflict to finish by hand, an update refused over
      # uncommitted edits, a missing work tree) makes the run fail.
      syncScript =
        cfg: pkgs:
        pkgs.writeShellScript "ai-commit-sync" (
          ''
            export PATH=${lib.makeBinPath [ pkgs.git ]}''${PATH:+:$PATH}
            status=0
            run() {
              (cd "$1" && ${lib.getExe cfg.package} sync)
              case $? in
                0) ;;
                4) [ "$status" = 1 ] || status=4 ;;
                *) status=1 ;;
              esac
            }
          ''
          + lib.concatMapStrings (r: "run ${lib.escapeShellArg r}\n") cfg.sync.repositories
          + "exit $status\n"
        );

      # home-manager's units for one timer job (backup or sync).
      # configFile: the file the settings are rendered to, or null.
      userUnits =
        {
          name,
          description,
          script,
          interval,
          service ? { },
        }:
        configFile: {
          services.${name} = {
            Unit.Description = description;
            Service = {
              Type = "oneshot";
              ExecStart = toString script;
              Environment = lib.optional (configFile != null) "AI_COMMIT_CONFIG=${configFile}";
            }
            // service;
          };
          timers.${name} = {
            Unit.Description = description;
            Timer = {
              OnCalendar = interval;
              Persistent = true;
            };
            Install.WantedBy = [ "timers.target" ];
          };
        };
      backupUnits =
        cfg: pkgs:
        userUnits {
          name = "ai-commit-backup";
          description = "ai-commit backups";
          script = backupScript cfg pkgs;
          inherit (cfg.backup) interval;
        };
      syncUnits =
        cfg: pkgs:
        userUnits {
          name = "ai-commit-sync";
          description = "ai-commit sync with the remote";
          script = syncScript cfg pkgs;
          inherit (cfg.sync) interval;
          service.SuccessExitStatus = 4;
        };

      # NixOS's units for one timer job, run only for `users` (each user's
      # systemd manager loads every user unit; ConditionUser skips the others).
      nixosUserUnits =
        {
          name,
          description,
          script,
          interval,
          users,
          environment,
          serviceConfig ? { },
        }:
        {
          services.${name} = {
            inherit description environment;
            unitConfig.ConditionUser = map (u: "|" + u) users;
            serviceConfig = {
              Type = "oneshot";
              ExecStart = toString script;
            }
            // serviceConfig;
          };
          timers.${name} = {
            wantedBy = [ "timers.target" ];
            unitConfig.ConditionUser = map (u: "|" + u) users;
            timerConfig = {
              OnCalendar = interval;
              Persistent = true;
            };
          };
        };
    in
    {
      packages = forAllSystems (pkgs: rec {
        ai-commit = mkCli pkgs;
        ai-commit-nvim = mkPlugin pkgs;
        default = ai-commit;
      });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.ai-commit;
          meta.description = "Stage, let a local model write the commit message, commit, push";
        };
      });

      overlays.default = final: prev: {
        ai-commit = mkCli final;
        vimPlugins = prev.vimPlugins // {
          ai-commit-nvim = mkPlugin final;
        };
      };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.rust-analyzer
            pkgs.pkg-config
            pkgs.zlib
            pkgs.git
            pkgs.neovim
            pkgs.ollama
            pkgs.nixfmt
            pkgs.deadnix
          ];
        };
      });

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
        in
        {
          ai-commit = self.packages.${system}.ai-commit;
          ai-commit-nvim = self.packages.${system}.ai-commit-nvim;
          nix-format =
            pkgs.runCommand "ai-commit-nix-format"
              {
                nativeBuildInputs = [
                  pkgs.nixfmt
                  pkgs.deadnix
                ];
              }
              ''
                nixfmt --check ${./flake.nix}
                deadnix --fail ${./flake.nix}
                touch $out
              '';
        }
      );

      formatter = forAllSystems (pkgs: pkgs.nixfmt);

      nixosModules.default =
        {
          config,
          pkgs,
          ...
        }:
        let
          cfg = config.programs.ai-commit;
          # What the timer services get (a user unit does not see
          # environment.variables).
          environment = lib.optionalAttrs (settingsOf cfg != { }) {
            AI_COMMIT_CONFIG = "/etc/ai-commit/config.toml";
          };
        in
        {
          options.programs.ai-commit =
            lib.recursiveUpdate
              (commonOptions {
                inherit pkgs;
                home = false;
              })
              {
                backup.users = lib.mkOption {
                  type = lib.types.listOf lib.types.str;
                  default = [ ];
                  example = [ "me" ];
                  description = "Users whose systemd user manager runs the backup timer (the owners of backup.repositories); not every user of the machine.";
                };
                sync.users = lib.mkOption {
                  type = lib.types.listOf lib.types.str;
                  default = [ ];
                  example = [ "me" ];
                  description = "Users whose systemd user manager runs the sync timer (the owners of sync.repositories); not every user of the machine.";
                };
              };
          config = lib.mkIf cfg.enable (
            lib.mkMerge [
              { environment.systemPackages = [ cfg.package ]; }
              (lib.mkIf (settingsOf cfg != { }) {
                environment.etc."ai-commit/config.toml".source = tomlFile pkgs (settingsOf cfg);
                # Login shells; the timer services get it below.
                environment.variables.AI_COMMIT_CONFIG = "/etc/ai-commit/config.toml";
              })
              (lib.mkIf (cfg.backup.repositories != [ ]) {
                assertions = [
                  {
                    assertion = cfg.backup.users != [ ];
                    message = "programs.ai-commit.backup.repositories is set: set programs.ai-commit.backup.users to the users who own them (the timer runs only for them).";
                  }
                ];
                systemd.user = nixosUserUnits {
                  name = "ai-commit-backup";
                  description = "ai-commit backups";
                  script = backupScript cfg pkgs;
                  inherit (cfg.backup) interval users;
                  inherit environment;
                };
              })
              (lib.mkIf (cfg.sync.repositories != [ ]) {
                assertions = [
                  {
                    assertion = cfg.sync.users != [ ];
                    message = "programs.ai-commit.sync.repositories is set: set programs.ai-commit.sync.users to the users who own them (the timer runs only for them).";
                  }
                ];
                systemd.user = nixosUserUnits {
                  name = "ai-commit-sync";
                  description = "ai-commit sync with the remote";
                  script = syncScript cfg pkgs;
                  inherit (cfg.sync) interval users;
                  inherit environment;
                  serviceConfig.SuccessExitStatus = 4;
                };
              })
            ]
          );
        };

      homeModules.default =
        {
          config,
          pkgs,
          ...
        }:
        let
          cfg = config.programs.ai-commit;
          configFile =
            if settingsOf cfg != { } then "${config.xdg.configHome}/ai-commit/config.toml" else null;
        in
        {
          options.programs.ai-commit =
            commonOptions {
              inherit pkgs;
              home = true;
            }
            // {
              neovim = {
                enable = lib.mkEnableOption "the ai-commit Neovim plugin (added to programs.neovim.plugins)";
                package = lib.mkOption {
                  type = lib.types.package;
                  default = self.packages.${pkgs.stdenv.hostPlatform.system}.ai-commit-nvim;
                  defaultText = lib.literalExpression "ai-commit.packages.\${system}.ai-commit-nvim";
                  description = "The plugin, native module included (built for nixpkgs' Neovim).";
                };
                settings = lib.mkOption {
                  type = lib.types.attrsOf lib.types.anything;
                  default = { };
                  example = {
                    keymap = "<leader>g";
                    review = false;
                  };
                  description = "Options for require(\"ai_commit\").setup{} (:help ai-commit-options).";
                };
              };
            };
          config = lib.mkIf cfg.enable (
            lib.mkMerge [
              { home.packages = [ cfg.package ]; }
              (lib.mkIf (settingsOf cfg != { }) {
                xdg.configFile."ai-commit/config.toml".source = tomlFile pkgs (settingsOf cfg);
              })
              {
                warnings = lib.optional (cfg.neovim.enable && !config.programs.neovim.enable) (
                  "programs.ai-commit.neovim.enable adds the plugin to programs.neovim.plugins, "
                  + "but programs.neovim.enable is false: a Neovim not managed by home-manager does not load it "
                  + "(set programs.neovim.enable, or add pkgs.vimPlugins.ai-commit-nvim to your own plugin manager)."
                );
              }
              (lib.mkIf cfg.neovim.enable {
                programs.neovim.plugins = [
                  {
                    plugin = cfg.neovim.package;
                    type = "lua";
                    config = "require(\"ai_commit\").setup(${lib.generators.toLua { } cfg.neovim.settings})";
                  }
                ];
              })
              (lib.mkIf (cfg.backup.repositories != [ ]) { systemd.user = backupUnits cfg pkgs configFile; })
              (lib.mkIf (cfg.sync.repositories != [ ]) { systemd.user = syncUnits cfg pkgs configFile; })
            ]
          );
        };
    };
}
