#!/usr/bin/env bash
# bench/quality_study.sh BUILD OUT [SETTING...] — the quality study of concurrent rounds (issue:
# concurrent rounds): isolated, isolated with the party's memory, sequential and concurrent PC-MoE,
# central of equal compute, union and equal mix; see bench/quality_study.py for rows and env.
# On the GPU machine: scripts/gpu-run.sh build bench-quality_study
exec python3 "$(dirname "$0")/quality_study.py" "$@"
