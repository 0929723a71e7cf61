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
