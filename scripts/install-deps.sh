#!/usr/bin/env bash
# Installs the Debian packages tcq needs, only those missing (idempotent).
# Usage: install-deps.sh [docs]   (docs: also doxygen, for CI's docs_doxygen test)
set -euo pipefail
pkgs=(cmake make g++ pkg-config libeigen3-dev libxsimd-dev doctest-dev libbenchmark-dev nlohmann-json3-dev
      libpcre2-dev libutf8proc-dev libopenmpi-dev openmpi-bin
      clang libclang-rt-14-dev)
for group in "$@"; do
  case $group in
    docs) pkgs+=(doxygen) ;;
    *) echo "install-deps: unknown group '$group' (known: docs)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
