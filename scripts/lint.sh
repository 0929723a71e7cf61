#!/usr/bin/env bash
# Checks formatting of every C++ file with clang-format (the repo's .clang-format) and that every
# bash script parses (bash -n); with --fix,
# rewrites them; with --tidy, also runs clang-tidy (.clang-tidy) over lib/ and apps/ using the
# default build's compile_commands.json (slow: minutes); with --sizes, checks the complexity
# budget of the party and the trainers: no function in lib/party or lib/train over 80 lines
# (clang-tidy readability-function-size), lib/party/daemon.cpp under 300 lines (a minute or two).
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
  --sizes)
    [[ -f build/compile_commands.json ]] || { echo "lint: configure first (cmake --preset default)" >&2; exit 2; }
    lines=$(wc -l <lib/party/daemon.cpp)
    [[ $lines -lt 300 ]] || { echo "lint: lib/party/daemon.cpp has $lines lines (budget: under 300)" >&2; exit 1; }
    out=$(git ls-files 'lib/party/*.cpp' 'lib/train/*.cpp' | xargs clang-tidy -p build --quiet \
      -checks='-*,readability-function-size' -warnings-as-errors='readability-function-size' \
      -config='{CheckOptions: [{key: readability-function-size.LineThreshold, value: 80}]}' 2>&1) ||
      { grep -A2 "readability-function-size" <<<"$out" >&2; echo "lint: functions over 80 lines (above)" >&2; exit 1; }
    echo "lint: lib/party and lib/train within the budget (functions <= 80 lines, daemon.cpp $lines lines)"
    ;;
  "")
    clang-format --dry-run --Werror "${files[@]}" && echo "lint: ${#files[@]} files formatted"
    # Every shell script parses (a quoting slip in docker/keys.sh once failed only inside CI's demo).
    mapfile -t scripts < <(git ls-files '*.sh' 'packaging/*' | xargs grep -l '^#!.*bash' 2>/dev/null)
    for f in "${scripts[@]}"; do bash -n "$f" || { echo "lint: $f does not parse (bash -n)" >&2; exit 1; }; done
    echo "lint: ${#scripts[@]} shell scripts parse"
    # fmt::join lives in <fmt/ranges.h> from fmt 11 (the GPU machine's); Debian's fmt 9 also has it
    # in <fmt/format.h>, so a missing include builds here and fails only there.
    missing=$(git ls-files '*.cpp' '*.h' | xargs grep -l 'fmt::join' | xargs grep -L '<fmt/ranges.h>' || true)
    [[ -z $missing ]] || { echo "lint: fmt::join without #include <fmt/ranges.h> in:" $missing >&2; exit 1; }
    ;;
  *) echo "usage: scripts/lint.sh [--fix|--tidy|--sizes]" >&2; exit 2 ;;
esac
