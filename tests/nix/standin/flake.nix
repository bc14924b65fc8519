# Stands in for nixpkgs in .ci/nix-check: nixpkgs' real lib (input `lib`,
# ../shared/nix/nixpkgs-lib) and a fake package set (./pkgs.nix) whose
# Neovim has the version in the `neovim` input's `version` file. Both
# inputs are always overridden by .ci/nix-check; the URLs here are
# placeholders.
{
  description = "Stand-in nixpkgs for evaluating ai-commit's flake (real lib, fake packages)";

  inputs = {
    lib = {
      url = "path:/nonexistent/nixpkgs-lib";
      flake = false;
    };
    neovim = {
      url = "path:/nonexistent/neovim-version";
      flake = false;
    };
  };

  outputs =
    { lib, neovim, ... }:
    let
      realLib = import "${lib}/lib";
    in
    {
      lib = realLib;
      legacyPackages =
        realLib.genAttrs
          [
            "x86_64-linux"
            "aarch64-linux"
            "x86_64-darwin"
            "aarch64-darwin"
          ]
          (
            system:
            import ./pkgs.nix {
              lib = realLib;
              inherit system;
              neovimVersion = realLib.fileContents "${neovim}/version";
            }
          );
    };
}
