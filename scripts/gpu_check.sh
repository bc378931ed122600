#!/usr/bin/env bash
# One GPU check of anet (issue #16 item 5): step rates of the three full-size models in 16-bit
# mixed precision with XLA, the card's measured 16-bit matmul rate, and full-size ANet-c6 on
# Fashion-MNIST for as many epochs as fit. Each section is time-boxed; a failing section is
# reported and the rest still run. Results: $OUT/gpu_check.md (table) and gpu_check.json,
# rewritten as each section ends ($OUT defaults to ./gpu_check_out).
#
# Two modes, chosen automatically (or GPU_CHECK_MODE=tensorflow|keras-jax):
#   tensorflow  TensorFlow sees a GPU: anet's own code. scripts/bench.py (mixed_float16, XLA),
#               TF matmul rates, `anet train-many --gpus 0` smoke run, `anet prepare/train/
#               evaluate` of full-size ANet-c6 on Fashion-MNIST (test = anet's test split).
#   keras-jax   no TensorFlow: anet's architectures (anet.models) on Keras 3 with the JAX
#               backend (bf16, jit = XLA), jax/torch matmul rates, the torch.compile AlexNet
#               peer, and Keras `fit` of ANet-c6 on Fashion-MNIST (test = the 10k test set).
#
# Usage: bash scripts/gpu_check.sh [--quick]     (--quick: tiny sizes, a CPU dry run)
#   FASHION_DIR   folder with the four Fashion-MNIST *-ubyte.gz files
#                 (default: .gpudata if present, else /usr/share/datasets/fashion-mnist)
#   GPU_CHECK_SECONDS  total time budget (default 400; the Fashion-MNIST box takes what is left)
set -u
cd "$(dirname "$0")/.."
QUICK=""
SLOW=1  # multiplies every section's time limit
TOTAL=${GPU_CHECK_SECONDS:-400}
if [ "${1:-}" = "--quick" ]; then  # a slow shared CPU: room for compiling, not for measuring
  QUICK="--quick" SLOW=6 TOTAL=$(( TOTAL * 6 ))
fi
OUT=${OUT:-$PWD/gpu_check_out}
export OUT PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1  # the whole log comes back with the results
PY=${PYTHON:-python3}
B="$PY scripts/gpu_bench.py"
START=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
if [ -z "${FASHION_DIR:-}" ]; then
  FASHION_DIR=/usr/share/datasets/fashion-mnist
  [ -f .gpudata/t10k-labels-idx1-ubyte.gz ] && FASHION_DIR=$PWD/.gpudata
fi

left() { echo $(( TOTAL - ($(date +%s) - START) )); }

# section NAME SECONDS COMMAND...: run COMMAND under a timeout (never past the budget);
# on failure record the reason in the results and go on.
section() {
  local name=$1 limit=$(( $2 * SLOW ))
  shift 2
  local rest
  rest=$(left)
  [ "$limit" -gt "$rest" ] && limit=$rest
  if [ "$limit" -lt 10 ]; then
    echo "== $name: skipped, the time budget is spent"
    $B record --section "$name" --error "skipped: time budget spent" >/dev/null
    return
  fi
  echo "== $name (at most ${limit}s, $(( $(date +%s) - START ))s elapsed)"
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$WORK/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    local why="exit $rc"
    [ "$rc" -eq 124 ] && why="timed out after ${limit}s"
    why="$why: $(grep -v '^\s*$' "$WORK/$name.log" | tail -1 | cut -c1-300)"
    echo "== $name FAILED ($why); continuing"
    $B record --section "$name" --error "$why" >/dev/null
  fi
}

echo "== gpu_check $(date -u +%FT%TZ) in $PWD -> $OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
MODE=${GPU_CHECK_MODE:-}
if [ -z "$MODE" ]; then
  if $PY -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)" \
      >/dev/null 2>&1; then MODE=tensorflow; else MODE=keras-jax; fi
fi
echo "== mode: $MODE"
export KERAS_BACKEND=${KERAS_BACKEND:-$([ "$MODE" = keras-jax ] && echo jax || echo tensorflow)}
section env 60 $B env --mode "$MODE"

if [ "$MODE" = keras-jax ]; then
  echo "== anet architectures on Keras 3/JAX; anet's TF training loop was not run (no TensorFlow on this machine)"
  if [ -n "$QUICK" ]; then
    MM="--n 256 --repeats 3"; STEP="--batch 4 --size 67 --warmup 1 --steps 2 --quick"
    PEER="--batch 4 --size 67 --warmup 1 --steps 2 --device cpu --amp none"
    FASHION="--size 67 --batch 64 --quick"
  else
    MM=""; STEP=""; PEER=""; FASHION=""
  fi
  section matmul 60 $B matmul $MM
  section step_alexnet 75 $B step --model alexnet --batch 256 $STEP
  section step_anetc6 75 $B step --model anetc6 --batch 256 $STEP
  section step_vgg16 100 $B step --model vgg16 --batch 128 $STEP
  section torch 120 $B torch --batch 256 $PEER
  box=$(( $(left) - 75 ))
  [ "$box" -lt 20 ] && box=20
  [ -n "$QUICK" ] && box=20
  section fashion $(( box + 70 )) $B fashion --source "$FASHION_DIR" --seconds "$box" $FASHION
else
  FM=(--dataset fashion-mnist --source "$FASHION_DIR")
  if [ -n "$QUICK" ]; then  # the bench's 700-image MNIST-format fixture stands in for Fashion-MNIST
    BENCH="--images 700 --steps 2 --models alexnet"; MM="--n 256 --repeats 3"
    SIZE="--set data.image_size=67 --set model.width=0.125 --set model.fc_units=64"
    FM=(--dataset mnist --source "$WORK/bench/idx")
  else
    BENCH="--images 7000 --steps 10"; MM=""; SIZE=""
  fi
  section tf_matmul 60 $B tf-matmul $MM
  mkdir -p "$WORK/bench"
  section bench 150 $PY scripts/bench.py --sections prepare matmul train \
    --precision mixed_float16 --out-dir "$WORK" --work "$WORK/bench" $BENCH
  [ -f "$WORK/bench.json" ] && $B from-bench --json "$WORK/bench.json" >/dev/null
  if $PY -m anet.cli train-many --help 2>/dev/null | grep -q -- "--gpus"; then
    section train_many 90 bash -c "$PY -m anet.cli prepare --dataset synthetic-karyotype \
      --cells 10 --out '$WORK/tiny' && $PY -m anet.cli train-many configs/tiny.yaml --gpus 0 \
      --set data.dir='$WORK/tiny' --set run.dir='$WORK/runs/tiny' --set train.epochs=1"
    grep -q "^done: " "$WORK/train_many.log" 2>/dev/null && $B record --section train_many \
      --status "$(grep '^done: ' "$WORK/train_many.log" | head -1 | cut -c1-200)" >/dev/null
  else
    echo "== train_many: skipped, this anet has no train-many --gpus"
    $B record --section train_many --error "skipped: anet train-many has no --gpus option" >/dev/null
  fi
  section fashion_prepare 120 $PY -m anet.cli prepare "${FM[@]}" --out "$WORK/fm"
  box=$(( $(left) - 100 ))
  [ "$box" -lt 30 ] && box=30  # (`timeout 0` would mean no limit at all)
  [ -n "$QUICK" ] && box=300
  # `anet train` stops cleanly on SIGINT (interrupt checkpoint); evaluate then picks the best
  echo "== fashion_train: full-size anetc6, mixed_float16 + XLA, ${box}s then SIGINT"
  t0=$(date +%s)
  timeout -s INT -k 60 "$box" $PY -m anet.cli train configs/anetc6_mnist.yaml \
    --run-dir "$WORK/runs/fm" --set data.dir="$WORK/fm" --set train.precision=mixed_float16 \
    --set train.epochs=1000 --set schedule.early_break.enabled=false $SIZE 2>&1 | tail -15
  train_s=$(( $(date +%s) - t0 ))
  section fashion_evaluate 100 $PY -m anet.cli evaluate --run-dir "$WORK/runs/fm"
  [ -f "$WORK/runs/fm/eval.json" ] && $B from-eval --run-dir "$WORK/runs/fm" \
    --data-dir "$WORK/fm" --train-s "$train_s" \
    --input "$( [ -n "$QUICK" ] && echo 67x67x1 || echo 227x227x1 )"
fi
echo "== done in $(( $(date +%s) - START ))s; results in $OUT/gpu_check.md and gpu_check.json"
cat "$OUT/gpu_check.md" 2>/dev/null
rm -rf "$WORK"
