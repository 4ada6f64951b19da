#!/usr/bin/env bash
# Debian packages the full build and the opt-in tests use (run as root, or with sudo):
# TBB (stdpar back end), Kokkos (Serial, from Trilinos), OpenBLAS (PETSc), Slurm and munge
# (the real-Slurm job tests). `make test` calls this when HPC_INSTALL_SYSTEM_DEPS=1.
set -euo pipefail
pkgs=(libtbb-dev libtrilinos-kokkos-dev)
[ "${HPC_WITH_PETSC:-0}" = 1 ] && pkgs+=(libopenblas-dev)
[ "${HPC_WITH_SLURM:-0}" = 1 ] && pkgs+=(slurm-wlm munge)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
