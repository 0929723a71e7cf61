# Sourced by the bench scripts (ROOT set to the repository root).

# The fortune corpus: the copy the GPU machine carries (.gpu-deps/corpus), else this machine's.
bench_corpus() {
  local corpus=$ROOT/.gpu-deps/corpus
  [[ -d $corpus ]] || corpus=/usr/share/games/fortunes
  echo "$corpus"
}

# write_central_config FILE PRESET CORPUS OUT_DIR DEVICE: the pcmoe-central config of a benchmark
# run (fortune corpus, no resume, quiet, nothing saved at the end).
write_central_config() {
  cat >"$1" <<YAML
preset: $2
data:
  sources:
    - path: $3
      format: fortune
run:
  out_dir: $4
  device: $5
  resume: false
  log_level: warn
  progress: "off"
  save_on_exit: false
YAML
}

# timed_federation BUILD PRESET PARTIES STEPS DEVICES CORPUS OUT_DIR [federation.py args...]: the
# federation bench/speed.sh times (WARM=8 warm-up steps excluded, no evaluation), its summary JSON in
# OUT_DIR.json and its stderr in OUT_DIR.err; prints the end of that stderr and fails if it failed.
timed_federation() {
  local build=$1 preset=$2 parties=$3 steps=$4 devices=$5 corpus=$6 out=$7
  shift 7
  python3 "$ROOT/bench/federation.py" --bin "$build/apps" --preset "$preset" --parties "$parties" --steps "$steps" \
    --out "$out" --corpus "$corpus" --devices "$devices" --threads 2 --warm "${WARM:-8}" \
    --set train.warmup_steps=5 --set train.eval_every=0 --set train.eval_batches=1 "$@" \
    >"$out.json" 2>"$out.err" || { tail -5 "$out.err"; return 1; }
}
