#!/usr/bin/env bash
# Prepares, on this Debian machine, what the GPU machine lacks to build pcmoe: ZeroMQ (+ its
# libraries), cppzmq, msgpack-c headers and Catch2 v2, as Debian 12 packages unpacked into
# .gpu-deps/prefix (git-ignored). The device tool carries that folder (carry: [".gpu-deps"]);
# scripts/gpu-run.sh then builds against it there. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(libzmq5 libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libsodium23 libsodium-dev libpgm-5.3-0 libnorm1 catch2 libbsd0 libmd0)
mkdir -p .gpu-deps/debs .gpu-deps/prefix
# The quality study's corpora (bench/quality_study.sh): the demo's three domains as they lie here.
if [[ ! -f .gpu-deps/study/.done ]]; then
  dest=$PWD/.gpu-deps/study
  mkdir -p "$dest/fortunes/de" "$dest/linux"
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' -exec cp {} "$dest/fortunes/" \;
  find /usr/share/games/fortunes/de -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' -exec cp {} "$dest/fortunes/de/" \;
  (cd /usr/include/linux && find . -name '*.h' -exec cp --parents {} "$dest/linux/" \;)
  touch "$dest/.done"
fi
if [[ -f .gpu-deps/prefix/.done ]]; then
  echo "gpu-deps: .gpu-deps/prefix is ready"
  exit 0
fi
(cd .gpu-deps/debs && apt-get download "${pkgs[@]}" >/dev/null)
for f in .gpu-deps/debs/*.deb; do dpkg -x "$f" .gpu-deps/prefix; done
rm -rf .gpu-deps/prefix/usr/share/doc .gpu-deps/prefix/usr/share/man
# A real-text corpus for the benchmarks (the GPU machine has no fortunes package).
mkdir -p .gpu-deps/corpus
find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort | xargs cat >.gpu-deps/corpus/fortunes-en
touch .gpu-deps/prefix/.done
du -sh .gpu-deps/prefix
