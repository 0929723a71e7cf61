#!/usr/bin/env bash
# Checks formatting of every C++ file with clang-format (the repo's .clang-format); with --fix,
# rewrites them; with --tidy, also runs clang-tidy (.clang-tidy) over lib/ and apps/ using the
# default build's compile_commands.json (slow: minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'lib/*.cpp' 'lib/*.h' 'apps/*.cpp' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp')
case ${1:-} in
  --fix) clang-format -i "${files[@]}"; echo "lint: formatted ${#files[@]} files" ;;
  --tidy)
    clang-format --dry-run --Werror "${files[@]}"
    [[ -f build/compile_commands.json ]] || { echo "lint: configure first (cmake --preset default)" >&2; exit 2; }
    git ls-files 'lib/*.cpp' 'apps/*.cpp' | xargs -n 8 clang-tidy -p build --quiet
    ;;
  "") clang-format --dry-run --Werror "${files[@]}" && echo "lint: ${#files[@]} files formatted" ;;
  *) echo "usage: scripts/lint.sh [--fix|--tidy]" >&2; exit 2 ;;
esac
