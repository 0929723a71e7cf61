#!/usr/bin/env bash
# Installs everything pcmoe needs on Debian 12 from apt: the build toolchain, the libraries, and the
# real text corpora used by demos and tests. Idempotent: a second run installs nothing.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build clang clang-14 clang-format clang-tidy ccache pkg-config git
  libtorch-dev libopenblas0-pthread
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libyaml-cpp-dev libfmt-dev catch2 zlib1g-dev libcpp-httplib-dev
  fortunes fortunes-de
  gnuplot-nox jq curl
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all packages present" >&2
fi
