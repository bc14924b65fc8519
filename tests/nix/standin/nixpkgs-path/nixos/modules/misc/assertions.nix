# Stand-in for nixpkgs' nixos/modules/misc/assertions.nix (home-manager
# imports it from pkgs.path): the same two options.
{ lib, ... }:
{
  options = {
    assertions = lib.mkOption {
      type = lib.types.listOf lib.types.unspecified;
      internal = true;
      default = [ ];
      description = "Assertions: { assertion = bool; message = str; }.";
    };
    warnings = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      internal = true;
      default = [ ];
      description = "Warnings printed when the configuration is evaluated.";
    };
  };
}
