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

      # Only what the build reads: no target/, .venv/, .git/.
      rustSource = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./Cargo.toml
          ./Cargo.lock
          ./.cargo
          ./src
          ./prompts
          ./tests
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
          ];
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
            type = (pkgs.formats.toml { }).type;
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
              + ". Keys as in the README; unknown keys are errors at run time.";
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
        };

      tomlFile = pkgs: settings: (pkgs.formats.toml { }).generate "ai-commit.toml" settings;

      # One oneshot run over the configured work trees (NixOS and home-manager).
      backupScript =
        cfg: pkgs:
        pkgs.writeShellScript "ai-commit-backup" (
          lib.concatMapStringsSep "\n" (
            r: "(cd ${lib.escapeShellArg r} && ${lib.getExe cfg.package} backup) || status=1"
          ) cfg.backup.repositories
          + "\nexit \${status:-0}\n"
        );

      backupUnits = cfg: pkgs: {
        services.ai-commit-backup = {
          Unit.Description = "ai-commit backups";
          Service = {
            Type = "oneshot";
            ExecStart = toString (backupScript cfg pkgs);
          };
        };
        timers.ai-commit-backup = {
          Unit.Description = "ai-commit backups";
          Timer = {
            OnCalendar = cfg.backup.interval;
            Persistent = true;
          };
          Install.WantedBy = [ "timers.target" ];
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
        in
        {
          options.programs.ai-commit = commonOptions {
            inherit pkgs;
            home = false;
          };
          config = lib.mkIf cfg.enable (
            lib.mkMerge [
              { environment.systemPackages = [ cfg.package ]; }
              (lib.mkIf (cfg.settings != { }) {
                environment.etc."ai-commit/config.toml".source = tomlFile pkgs cfg.settings;
                environment.variables.AI_COMMIT_CONFIG = "/etc/ai-commit/config.toml";
              })
              (lib.mkIf (cfg.backup.repositories != [ ]) {
                systemd.user.services.ai-commit-backup = {
                  description = "ai-commit backups";
                  serviceConfig = {
                    Type = "oneshot";
                    ExecStart = toString (backupScript cfg pkgs);
                  };
                };
                systemd.user.timers.ai-commit-backup = {
                  wantedBy = [ "timers.target" ];
                  timerConfig = {
                    OnCalendar = cfg.backup.interval;
                    Persistent = true;
                  };
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
              (lib.mkIf (cfg.settings != { }) {
                xdg.configFile."ai-commit/config.toml".source = tomlFile pkgs cfg.settings;
              })
              (lib.mkIf cfg.neovim.enable {
                programs.neovim.plugins = [
                  {
                    plugin = cfg.neovim.package;
                    type = "lua";
                    config = "require(\"ai_commit\").setup(${lib.generators.toLua { } cfg.neovim.settings})";
                  }
                ];
              })
              (lib.mkIf (cfg.backup.repositories != [ ]) { systemd.user = backupUnits cfg pkgs; })
            ]
          );
        };
    };
}
