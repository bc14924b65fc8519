# The NixOS and home-manager modules, evaluated with nixpkgs' real lib and
# real home-manager over the stand-in package set (.ci/nix-check).
#
#   import tests/nix/modules.nix { shared = DIR; storeRoot = STORE; }
#     → { passed = [ … ]; failed = [ … ]; tomlFiles = [ { name; json; expected; } ]; }
#   import tests/nix/modules.nix { shared = DIR; case = NAME; }
#     → evaluates the wrong configuration NAME (see `bad`), which must fail
{
  shared,
  # Where the store's /nix/store really is (a store = DIR in nix.conf).
  storeRoot ? "",
  system ? "x86_64-linux",
  neovimVersion ? "0.12.1",
  case ? null,
}:
let
  lib = import "${shared}/nixpkgs-lib/lib";
  standin =
    s:
    import ./standin/pkgs.nix {
      inherit lib neovimVersion;
      system = s;
    };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [
      "x86_64-linux"
      "aarch64-linux"
      "x86_64-darwin"
      "aarch64-darwin"
    ] standin;
  };
  flake = import ../../flake.nix;
  self = flake.outputs {
    inherit self nixpkgs;
  };
  pkgs = nixpkgs.legacyPackages.${system};
  cli = self.packages.${system}.default;
  plugin = self.packages.${system}.ai-commit-nvim;

  nixos =
    config:
    lib.evalModules {
      modules = [
        ./nixos-standin.nix
        self.nixosModules.default
        config
        { _module.args.pkgs = pkgs; }
      ];
    };
  home =
    config:
    import "${shared}/home-manager/modules" {
      inherit pkgs lib;
      configuration = {
        imports = [
          self.homeModules.default
          config
        ];
        # As with home-manager.useGlobalPkgs: the given package set, not
        # one imported from pkgs.path.
        _module.args.pkgs = lib.mkForce pkgs;
        # home-manager's man pages need nixpkgs' nixosOptionsDoc (not stood in).
        manual.manpages.enable = false;
        home = {
          username = "me";
          homeDirectory = "/home/me";
          stateVersion = "25.11";
        };
      };
    };

  # What a user writes, and what the TOML file must parse back to.
  settings = {
    model = "gemma3";
    timeout = 60;
    temperature = 0.2;
    push = true;
    prompt_kind = "journal";
    backup = {
      min_interval = "10m";
      targets = [
        {
          mirror = "/mnt/backup/git/{name}.git";
          require = "/mnt/backup/.mounted";
        }
        { command = [ "backup-home" ]; }
      ];
    };
    compaction = {
      enabled = false;
      min_interval = "1h";
      min_loose_bytes = 8388608;
    };
  };

  os = nixos {
    programs.ai-commit = {
      enable = true;
      inherit settings;
      backup = {
        repositories = [
          "/home/me/journal"
          "/home/me/notes"
        ];
        users = [ "me" ];
      };
      sync = {
        repositories = [
          "/home/me/journal"
          "/home/me/notes"
        ];
        users = [ "me" ];
      };
    };
  };
  osCfg = os.config;
  osService = osCfg.systemd.user.services.ai-commit-backup;
  osTimer = osCfg.systemd.user.timers.ai-commit-backup;
  osSync = osCfg.systemd.user.services.ai-commit-sync;
  osSyncTimer = osCfg.systemd.user.timers.ai-commit-sync;
  osMinimal = (nixos { programs.ai-commit.enable = true; }).config;
  # Backups only; sync.users alone generates nothing either.
  osBackupOnly =
    (nixos {
      programs.ai-commit = {
        enable = true;
        backup = {
          repositories = [ "/home/me/journal" ];
          users = [ "me" ];
        };
        sync.users = [ "me" ];
      };
    }).config;
  # No settings: no AI_COMMIT_CONFIG for the sync service either.
  osSyncNoSettings =
    (nixos {
      programs.ai-commit = {
        enable = true;
        sync = {
          repositories = [ "/home/me/journal" ];
          users = [
            "me"
            "you"
          ];
        };
      };
    }).config;
  noSyncUnits =
    c: !(c.systemd.user.services ? ai-commit-sync) && !(c.systemd.user.timers ? ai-commit-sync);

  hm = home {
    programs.neovim.enable = true;
    programs.ai-commit = {
      enable = true;
      inherit settings;
      neovim = {
        enable = true;
        settings = {
          keymap = "<leader>g";
          review = false;
        };
      };
      backup.repositories = [ "/home/me/journal" ];
      sync = {
        repositories = [ "/home/me/journal" ];
        interval = "*:0/5";
      };
    };
  };
  hmCfg = hm.config;
  hmService = hmCfg.systemd.user.services.ai-commit-backup;
  hmSync = hmCfg.systemd.user.services.ai-commit-sync;
  hmBackupOnly =
    (home {
      programs.ai-commit = {
        enable = true;
        backup.repositories = [ "/home/me/journal" ];
      };
    }).config;
  hmNoSyncFiles =
    c:
    !(c.systemd.user.services ? ai-commit-sync)
    && !(c.systemd.user.timers ? ai-commit-sync)
    && !lib.any (lib.hasInfix "ai-commit-sync") (lib.attrNames c.xdg.configFile);
  hmNoNeovim =
    (home {
      programs.ai-commit = {
        enable = true;
        neovim.enable = true;
      };
    }).config;

  # The text a stand-in builder was given (written files, scripts): read
  # from the .drv the string's context names.
  drvText =
    s:
    lib.replaceStrings [ "\\n" "\\\"" "\\\\" ] [ "\n" "\"" "\\" ] (
      lib.concatMapStrings (d: builtins.readFile (storeRoot + d)) (
        lib.attrNames (builtins.getContext (toString s))
      )
    );
  # Substring tests on texts that name store paths.
  has = needle: hay: lib.hasInfix (discard needle) (discard hay);
  discard = builtins.unsafeDiscardStringContext;
  sameDrv = a: b: a.drvPath == b.drvPath;
  hasPackage = list: p: lib.any (x: x ? drvPath && sameDrv x p) list;
  gitBin = "${pkgs.git}/bin";
  scriptOf = unit: drvText unit;
  pluginEntry = lib.findFirst (
    p: p.plugin ? drvPath && sameDrv p.plugin plugin
  ) null hmCfg.programs.neovim.plugins;
  hmUnitText = drvText hmCfg.xdg.configFile."systemd/user/ai-commit-backup.service".source;
  hmSyncText = drvText hmCfg.xdg.configFile."systemd/user/ai-commit-sync.service".source;
  hmSyncTimerText = drvText hmCfg.xdg.configFile."systemd/user/ai-commit-sync.timer".source;
  # The sync script: git on PATH, `ai-commit sync` in each work tree, exit 4
  # (remote unreachable) kept apart from real failures, which win.
  syncScriptOk =
    repos: t:
    has gitBin t
    && has ''(cd "$1" && ${lib.getExe cli} sync)'' t
    && has ''4) [ "$status" = 1 ] || status=4 ;;'' t
    && has "*) status=1 ;;" t
    && has "\nexit $status\n" t
    && lib.all (r: has "run ${lib.escapeShellArg r}\n" t) repos
    && !has " backup" t;

  checks = {
    "NixOS: the CLI in environment.systemPackages" = hasPackage osCfg.environment.systemPackages cli;
    "NixOS: /etc/ai-commit/config.toml from formats.toml, AI_COMMIT_CONFIG for shells" =
      osCfg.environment.etc."ai-commit/config.toml".source ? value
      && osCfg.environment.variables.AI_COMMIT_CONFIG == "/etc/ai-commit/config.toml";
    "NixOS: no settings, no config file and no AI_COMMIT_CONFIG" =
      osMinimal.environment.etc == { } && !(osMinimal.environment.variables ? AI_COMMIT_CONFIG);
    "NixOS: the backup service itself gets AI_COMMIT_CONFIG (not only login shells)" =
      (osService.environment.AI_COMMIT_CONFIG or null) == "/etc/ai-commit/config.toml";
    "NixOS: the backup service and timer run only for backup.users (ConditionUser)" =
      osService.unitConfig.ConditionUser or null == [ "|me" ]
      && osTimer.unitConfig.ConditionUser or null == [ "|me" ];
    "NixOS: the backup script has git on PATH and backs up each repository" =
      let
        t = scriptOf osService.serviceConfig.ExecStart;
      in
      has gitBin t
      && has "cd ${lib.escapeShellArg "/home/me/journal"} && ${lib.getExe cli} backup" t
      && has "cd ${lib.escapeShellArg "/home/me/notes"} &&" t;
    "NixOS: an hourly persistent timer wanted by timers.target" =
      osTimer.timerConfig == {
        OnCalendar = "hourly";
        Persistent = true;
      }
      && osTimer.wantedBy == [ "timers.target" ];
    "NixOS: no failed assertions" = lib.all (a: a.assertion) osCfg.assertions;
    "NixOS: the sync script has git on PATH, syncs each repository, exit 4 apart from failures" =
      syncScriptOk [ "/home/me/journal" "/home/me/notes" ]
        (scriptOf osSync.serviceConfig.ExecStart);
    "NixOS: the sync service is a oneshot for which exit 4 (remote unreachable) is success" =
      osSync.serviceConfig.Type or null == "oneshot"
      && osSync.serviceConfig.SuccessExitStatus or null == 4;
    "NixOS: the sync service gets AI_COMMIT_CONFIG, or nothing without settings" =
      osSync.environment == {
        AI_COMMIT_CONFIG = "/etc/ai-commit/config.toml";
      }
      && osSyncNoSettings.systemd.user.services.ai-commit-sync.environment == { };
    "NixOS: the sync service and timer run only for sync.users (ConditionUser)" =
      osSync.unitConfig.ConditionUser or null == [ "|me" ]
      && osSyncTimer.unitConfig.ConditionUser or null == [ "|me" ]
      &&
        osSyncNoSettings.systemd.user.timers.ai-commit-sync.unitConfig.ConditionUser or null == [
          "|me"
          "|you"
        ];
    "NixOS: a persistent sync timer every 15 minutes wanted by timers.target" =
      osSyncTimer.timerConfig == {
        OnCalendar = "*:0/15";
        Persistent = true;
      }
      && osSyncTimer.wantedBy == [ "timers.target" ];
    "NixOS: no sync units without sync.repositories (backups alone, or nothing)" =
      noSyncUnits osBackupOnly
      && osBackupOnly.systemd.user.services ? ai-commit-backup
      && lib.all (a: a.assertion) osBackupOnly.assertions
      && noSyncUnits osMinimal;
    "home-manager: the CLI in home.packages" = hasPackage hmCfg.home.packages cli;
    "home-manager: ~/.config/ai-commit/config.toml from formats.toml" =
      hmCfg.xdg.configFile."ai-commit/config.toml".source ? value;
    "home-manager: the plugin in programs.neovim.plugins with its setup{} call" =
      pluginEntry != null
      && pluginEntry.type == "lua"
      && lib.hasPrefix ''require("ai_commit").setup({'' pluginEntry.config
      && has ''["keymap"] = "<leader>g",'' pluginEntry.config
      && has ''["review"] = false'' pluginEntry.config;
    "home-manager: the plugin in the wrapped Neovim ${neovimVersion} and its setup in init.lua" =
      hmCfg.programs.neovim.finalPackage.version == neovimVersion
      && hasPackage hmCfg.programs.neovim.finalPackage.plugins plugin
      && lib.hasInfix ''require("ai_commit").setup('' hmCfg.xdg.configFile."nvim/init.lua".text;
    "home-manager: the backup unit file has AI_COMMIT_CONFIG and a script with git on PATH" =
      has "Environment=AI_COMMIT_CONFIG=/home/me/.config/ai-commit/config.toml" hmUnitText
      && has gitBin (scriptOf hmService.Service.ExecStart);
    "home-manager: the timer is installed in timers.target.wants" =
      hmCfg.xdg.configFile ? "systemd/user/timers.target.wants/ai-commit-backup.timer";
    "home-manager: the sync unit file: oneshot, AI_COMMIT_CONFIG, SuccessExitStatus=4, the script" =
      has "Type=oneshot" hmSyncText
      && has "Environment=AI_COMMIT_CONFIG=/home/me/.config/ai-commit/config.toml" hmSyncText
      && has "SuccessExitStatus=4" hmSyncText
      && has "ExecStart=${toString hmSync.Service.ExecStart}" hmSyncText
      && syncScriptOk [ "/home/me/journal" ] (scriptOf hmSync.Service.ExecStart);
    "home-manager: the sync timer has sync.interval, is persistent and in timers.target.wants" =
      has "OnCalendar=*:0/5" hmSyncTimerText
      && has "Persistent=true" hmSyncTimerText
      && hmCfg.xdg.configFile ? "systemd/user/timers.target.wants/ai-commit-sync.timer";
    "home-manager: no sync units without sync.repositories" =
      hmNoSyncFiles hmBackupOnly
      && hmBackupOnly.systemd.user.services ? ai-commit-backup
      && hmNoSyncFiles hmNoNeovim;
    "home-manager: no warnings for a Neovim managed by home-manager" = hmCfg.warnings == [ ];
    "home-manager: a warning when neovim.enable is set but programs.neovim is not" =
      lib.any (lib.hasInfix "programs.neovim.enable") hmNoNeovim.warnings;
  };

  results = lib.mapAttrs (_: c: builtins.tryEval (builtins.deepSeq c c)) checks;

  # Wrong values a user may write; each must fail evaluation with `expect`
  # in the message (.ci/nix-check runs each in its own evaluation).
  bad = {
    nixos-timeout-string = {
      eval =
        (nixos {
          programs.ai-commit = {
            enable = true;
            settings.timeout = "abc";
          };
        }).config.environment.etc;
      expect = "programs.ai-commit.settings.timeout";
    };
    home-timeout-string = {
      eval =
        (home {
          programs.ai-commit = {
            enable = true;
            settings.timeout = "abc";
          };
        }).config.xdg.configFile;
      expect = "programs.ai-commit.settings.timeout";
    };
    prompt-kind-unknown = {
      eval =
        (nixos {
          programs.ai-commit = {
            enable = true;
            settings.prompt_kind = "prose";
          };
        }).config.environment.etc;
      expect = "programs.ai-commit.settings.prompt_kind";
    };
    backup-target-typo = {
      eval =
        (home {
          programs.ai-commit = {
            enable = true;
            settings.backup.targets = [ { mirorr = "/x"; } ];
          };
        }).config.xdg.configFile;
      expect = "mirorr";
    };
    nixos-compaction-enabled-string = {
      eval =
        (nixos {
          programs.ai-commit = {
            enable = true;
            settings.compaction.enabled = "yes";
          };
        }).config.environment.etc;
      expect = "programs.ai-commit.settings.compaction.enabled";
    };
    home-compaction-min-loose-bytes-negative = {
      eval =
        (home {
          programs.ai-commit = {
            enable = true;
            settings.compaction.min_loose_bytes = -1;
          };
        }).config.xdg.configFile;
      expect = "programs.ai-commit.settings.compaction.min_loose_bytes";
    };
    compaction-min-interval-not-a-duration = {
      eval =
        (nixos {
          programs.ai-commit = {
            enable = true;
            settings.compaction.min_interval = "10 minutes";
          };
        }).config.environment.etc;
      expect = "programs.ai-commit.settings.compaction.min_interval";
    };
    backup-min-interval-not-a-duration = {
      eval =
        (home {
          programs.ai-commit = {
            enable = true;
            settings.backup.min_interval = "ten minutes";
          };
        }).config.xdg.configFile;
      expect = "programs.ai-commit.settings.backup.min_interval";
    };
    nixos-backup-without-users = {
      eval =
        let
          c =
            (nixos {
              programs.ai-commit = {
                enable = true;
                backup.repositories = [ "/home/me/journal" ];
              };
            }).config;
          failed = lib.filter (a: !a.assertion) c.assertions;
        in
        if failed == [ ] then
          c.systemd.user.services
        else
          throw (lib.concatMapStringsSep "\n" (a: a.message) failed);
      expect = "programs.ai-commit.backup.users";
    };
    nixos-sync-without-users = {
      eval =
        let
          c =
            (nixos {
              programs.ai-commit = {
                enable = true;
                backup = {
                  repositories = [ "/home/me/journal" ];
                  users = [ "me" ];
                };
                sync.repositories = [ "/home/me/journal" ];
              };
            }).config;
          failed = lib.filter (a: !a.assertion) c.assertions;
        in
        if failed == [ ] then
          c.systemd.user.services
        else
          throw (lib.concatMapStringsSep "\n" (a: a.message) failed);
      expect = "programs.ai-commit.sync.users";
    };
  };
in
if case != null then
  builtins.deepSeq bad.${case}.eval "evaluated (it should not have)"
else
  {
    passed = lib.attrNames (lib.filterAttrs (_: r: r.success && r.value) results);
    failed = lib.attrNames (lib.filterAttrs (_: r: !(r.success && r.value)) results);
    badCases = lib.mapAttrs (_: b: b.expect) bad;
    # For a look by hand: nix eval --impure --expr '(import …).inspect.hm.home.packages'
    inspect = {
      os = osCfg;
      hm = hmCfg;
      inherit cli plugin pluginEntry;
    };
    tomlFiles = [
      {
        name = "NixOS /etc/ai-commit/config.toml";
        json = osCfg.environment.etc."ai-commit/config.toml".source.value;
        expected = builtins.toJSON settings;
      }
      {
        name = "home-manager ~/.config/ai-commit/config.toml";
        json = hmCfg.xdg.configFile."ai-commit/config.toml".source.value;
        expected = builtins.toJSON settings;
      }
    ];
  }
