# Stand-in for nixpkgs' nixos/modules/misc/meta.nix (home-manager imports it
# from pkgs.path): module metadata, merged across modules, unused here.
{ lib, ... }:
let
  collect = lib.mkOptionType {
    name = "meta value";
    merge = _: defs: map (d: d.value) defs;
  };
in
{
  options.meta = {
    maintainers = lib.mkOption {
      type = lib.types.listOf lib.types.raw;
      internal = true;
      default = [ ];
    };
    teams = lib.mkOption {
      type = lib.types.listOf lib.types.raw;
      internal = true;
      default = [ ];
    };
    doc = lib.mkOption {
      type = collect;
      internal = true;
    };
    buildDocsInSandbox = lib.mkOption {
      type = collect;
      internal = true;
    };
  };
}
