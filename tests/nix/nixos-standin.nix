# The few NixOS options ai-commit's NixOS module sets, declared with the
# types NixOS gives them (nixos/modules/system/boot/systemd, environment,
# etc, assertions), for lib.evalModules without nixpkgs' nixos/ tree. A
# user service's environment is only its `environment` (plus PATH from
# `path`): environment.variables reach login shells, not systemd units.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  atom = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
  ];
  unitOption = types.either atom (types.listOf atom);
  unitOptions = {
    description = mkOption {
      type = types.str;
      default = "";
    };
    wantedBy = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    unitConfig = mkOption {
      type = types.attrsOf unitOption;
      default = { };
    };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    environment.variables = mkOption {
      type = types.attrsOf (
        types.oneOf [
          (types.listOf types.str)
          types.int
          types.str
          types.path
        ]
      );
      default = { };
    };
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options = {
            source = mkOption { type = types.path; };
            mode = mkOption {
              type = types.str;
              default = "symlink";
            };
          };
        }
      );
    };
    systemd.user.services = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options = unitOptions // {
            environment = mkOption {
              type = types.attrsOf (
                types.nullOr (
                  types.oneOf [
                    types.str
                    types.path
                    types.package
                  ]
                )
              );
              default = { };
            };
            path = mkOption {
              type = types.listOf (types.either types.package types.str);
              default = [ ];
            };
            serviceConfig = mkOption {
              type = types.attrsOf unitOption;
              default = { };
            };
          };
        }
      );
    };
    systemd.user.timers = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options = unitOptions // {
            timerConfig = mkOption { type = types.attrsOf unitOption; };
          };
        }
      );
    };
  };
}
