#!/usr/bin/env bash
# The embedded default end to end: synthetic karyotypes -> prepare.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2
ANET=.venv/bin/anet
$ANET prepare --dataset synthetic-karyotype --cells 200 --out data/synthetic-karyotype
