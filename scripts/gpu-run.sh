#!/usr/bin/env bash
# Runs on the GPU machine (device tool; carry: [".gpu-deps"]): builds pcmoe against the pip
# PyTorch's libtorch (CUDA) and the carried Debian packages, runs the gpu-labelled tests and the
# benchmarks named on the command line. Prepare .gpu-deps here first: scripts/gpu-deps.sh.
#   scripts/gpu-run.sh [build|test|bench-central|bench-memory|bench-speed|bench-wire|bench-fp8|bench-federation-ab ...]
# Output: tables on stdout; logs and JSON under ${OUT:-/tmp/pcmoe-gpu-out}.
# FP8_KERNELS=OFF: build without the CUDA kernels of the fp8 wire (default: with them where nvcc is).
# Env for A/B builds: SRC_DIR (the source tree to build; default this one), BUILD_DIR (default
# build-gpu here), BUILD_TARGETS (default all; e.g. "pcmoe-party pcmoe-hub pcmoe-central pcmoe-ctl",
# what bench/builds-ab.sh runs).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/pcmoe-gpu-out}
mkdir -p "$OUT"
PREFIX=$ROOT/.gpu-deps/prefix/usr
[[ -d $PREFIX ]] || { echo "gpu-run: $PREFIX missing: run scripts/gpu-deps.sh on the dev machine and carry .gpu-deps" >&2; exit 2; }
PY=${PYTHON:-python3}
TORCH_CMAKE=$($PY -c 'import torch;print(torch.utils.cmake_prefix_path)')
export LD_LIBRARY_PATH=$PREFIX/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
BUILD=${BUILD_DIR:-$ROOT/build-gpu}
SRC=${SRC_DIR:-$ROOT}
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(build test)

build() {
  local t0=$SECONDS nvcc
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  cmake -G Ninja -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DPCMOE_PCH=ON -DPCMOE_FMT_HEADER_ONLY=ON -DPCMOE_HTTP=OFF \
    -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$PREFIX" -DCMAKE_CUDA_ARCHITECTURES=90 \
    ${FP8_KERNELS:+-DPCMOE_FP8_KERNELS=$FP8_KERNELS} $([[ -x $nvcc ]] && echo "-DCMAKE_CUDA_COMPILER=$nvcc") >"$OUT/configure.log" 2>&1 \
    || { tail -40 "$OUT/configure.log"; return 1; }
  # shellcheck disable=SC2086
  cmake --build "$BUILD" -j"$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS} -- -k 0 >"$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -40; return 1; }
  echo "gpu-run: built in $((SECONDS - t0)) s"
}

run_tests() {  # the gpu label once (what ctest -L gpu runs), with durations; then the fp8 wire's
  # tests again on libtorch operations instead of the fp8 kernels (PCMOE_FP8_KERNELS=0)
  "$BUILD/tests/pcmoe_tests_torch" "[gpu]" --durations yes >"$OUT/gpu-tests.txt" 2>&1
  PCMOE_FP8_KERNELS=0 "$BUILD/tests/pcmoe_tests_torch" "fp8 on the wire*,federation on CUDA*" \
    >>"$OUT/gpu-tests.txt" 2>&1
  grep -E "^footprint|^fp8|FAILED|with expansion|passed|failed" "$OUT/gpu-tests.txt" | head -40
}

for s in "${steps[@]}"; do
  case $s in
    build) build || exit 1 ;;
    test) run_tests ;;
    bench-*) bash "$ROOT/bench/${s#bench-}.sh" "$BUILD" "$OUT" ;;
    *) echo "gpu-run: unknown step '$s'" >&2; exit 2 ;;
  esac
done
