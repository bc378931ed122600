#!/usr/bin/env bash
# `make demo`: the embedded default end to end on 2 CPU cores (the README gives a measured time):
# synthetic karyotypes -> prepare -> train a narrow ANet-c6 -> evaluate -> report -> visualize
# -> predict -> the whole run as one self-contained page, runs/demo_report.html.
# Re-running skips what is finished (prepare says so; train resumes or does nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
ANET=${ANET:-.venv/bin/anet}
DATA=data/synthetic-karyotype
RUN=runs/demo_anetc6_synth

$ANET prepare --dataset synthetic-karyotype --cells 200 --out "$DATA"
$ANET train configs/demo_anetc6_synth.yaml --run-dir "$RUN"
$ANET evaluate --run-dir "$RUN"
$ANET report "$RUN"
$ANET visualize --run-dir "$RUN" --layers conv1,pool1,pool2,pool_last --samples 2
sample=$(find "$DATA/jpg" -name '*.jpg' | sort | sed -n 1p)
$ANET predict --run-dir "$RUN" "$sample"
$ANET report "$RUN" --html runs/demo_report.html
