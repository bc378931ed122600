"""The sections of scripts/gpu_check.sh (one subcommand each; the shell script time-boxes them).

Every section merges its figures into ``$OUT/gpu_check.json`` and rewrites ``$OUT/gpu_check.md``
as soon as it ends, so a run killed part-way still leaves what it measured.

Without TensorFlow (mode ``keras-jax``) the models are anet's own architectures, built by
``anet.models.build`` from its layer-spec tables, run by Keras 3 on the JAX backend (jit = XLA)
under ``mixed_bfloat16``; their FLOPs are anet's counts (``anet.models.forward_flops``, a
training step = 3x forward). anet's TensorFlow training loop is not run in that mode.

  env        card, driver, framework versions
  matmul     8192^3 bf16 and fp16 matmul rate with JAX and PyTorch (the utilisation denominator)
  step       one model's training step with Keras/JAX: images/s, TFLOP/s, share of the matmul rate
  torch      the torch.compile peer (scripts/torch_alexnet.py on the GPU, bf16 autocast, NHWC)
  fashion    full-size ANet-c6 on Fashion-MNIST with Keras/JAX ``fit`` inside a time box
  tf-matmul  (TensorFlow mode) the same matmul rates with TensorFlow
  from-bench (TensorFlow mode) scripts/bench.py's figures -> the step sections
  from-eval  (TensorFlow mode) `anet evaluate` of the Fashion-MNIST run -> the fashion section
  record     merge a JSON file or a failure note into the results (used by gpu_check.sh)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL_SIZE = {"alexnet": 227, "anetc6": 227, "vgg16": 224}
HONEST = ("anet architectures on Keras 3/JAX; anet's TF training loop was not run "
          "(no TensorFlow on this machine)")


# --------------------------------------------------------------------------- results


def out_dir() -> Path:
    out = Path(os.environ.get("OUT") or ROOT / "gpu_check_out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def load() -> dict:
    path = out_dir() / "gpu_check.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def save(section: str, figures: dict) -> None:
    """Merge one section's figures, rewrite the JSON and the markdown (each atomically)."""
    from anet.files import atomic_write

    results = load()
    results[section] = figures
    atomic_write(out_dir() / "gpu_check.json", json.dumps(results, indent=1) + "\n")
    atomic_write(out_dir() / "gpu_check.md", markdown(results))
    print(f"[{section}] " + json.dumps(figures), flush=True)


def _rate_ref(results: dict) -> tuple[float | None, str]:
    """The card's measured 16-bit matmul rate the steps are compared with (same framework)."""
    mm = results.get("matmul", {})
    for key in ("jax_bfloat16_tflops", "tf_float16_tflops", "torch_bfloat16_tflops"):
        if mm.get(key):
            return mm[key], key.replace("_tflops", "")
    return None, ""


def markdown(results: dict) -> str:
    """A summary table (ready for the README/note), then every figure by section."""
    env = results.get("env", {})
    lines = [f"GPU check on {env.get('gpu', '?')} (driver {env.get('driver', '?')}), mode "
             f"`{env.get('mode', '?')}`: {env.get('note', '')}", ""]
    ref, ref_name = _rate_ref(results)
    mm = results.get("matmul", {})
    lines += ["| measurement | value |", "|---|---|"]
    for key, value in mm.items():
        if key.endswith("_tflops"):
            lines.append(f"| matmul {mm.get('n', '')}^3, {key[:-7].replace('_', ' ')} | "
                         f"{value} TFLOP/s |")
    for name in MODEL_SIZE:
        r = results.get(f"step_{name}")
        if not r or "images_per_s" not in r:
            continue
        share = f", {r['achieved_tflops'] / ref:.2f} of {ref_name} matmul" if ref else ""
        lines.append(f"| {name} train step ({r.get('framework', '')}, {r.get('precision', '')}, "
                     f"batch {r.get('batch')}) | {r['images_per_s']} images/s, "
                     f"{r['achieved_tflops']} TFLOP/s{share} |")
    peer = results.get("torch", {})
    if "images_per_s" in peer:
        vs = peer.get("keras_jax_over_torch_compile")
        lines.append(f"| alexnet torch.compile ({peer.get('amp')}, channels-last, batch "
                     f"{peer.get('batch')}) | {peer['images_per_s']} images/s"
                     + (f"; Keras/JAX anet alexnet / torch.compile = {vs}" if vs else "") + " |")
    fm = results.get("fashion", {})
    if "test_accuracy" in fm:
        lines.append(f"| anetc6 Fashion-MNIST {fm.get('input')} ({fm.get('framework')}) | test "
                     f"accuracy {fm['test_accuracy']} on {fm.get('test_images')} images after "
                     f"{fm.get('epochs')} epochs, {fm.get('train_s')} s |")
    lines += ["", "| section | metric | value |", "|---|---|---|"]
    for section, figures in results.items():
        lines += [f"| {section} | {k} | {v} |" for k, v in figures.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- helpers


def timed(fn, warmup: int, repeats: int) -> list[float]:
    """Seconds per call of ``fn`` (which must block until its work is done), after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def spread(work: float, times: list[float], scale: float = 1.0) -> str:
    return f"{work / max(times) / scale:.1f}..{work / min(times) / scale:.1f}"


def _keras_jax():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit(f"KERAS_BACKEND={keras.backend.backend()}: these sections need jax")
    return keras


# --------------------------------------------------------------------------- sections


def cmd_env(a) -> None:
    figures = {"mode": a.mode, "note": HONEST if a.mode == "keras-jax" else
               "anet's own TensorFlow training step and CLI (mixed_float16, XLA)"}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True)
    except FileNotFoundError:
        smi = subprocess.CompletedProcess([], 1, "", "")
    if smi.returncode == 0 and smi.stdout.strip():
        gpu, driver, memory = (s.strip() for s in smi.stdout.splitlines()[0].split(","))
        figures.update(gpu=gpu, driver=driver, gpu_memory=memory)
    else:
        figures.update(gpu="none (nvidia-smi failed)", driver="-")
    figures["python"] = sys.version.split()[0]
    for module in ("numpy", "keras", "jax", "torch", "tensorflow"):
        try:
            figures[module] = __import__(module).__version__
        except Exception as e:  # noqa: BLE001 - report whatever stops a framework importing
            figures[module] = f"absent ({type(e).__name__})"
    if a.mode == "keras-jax":
        import jax

        figures["jax_devices"] = ", ".join(str(d) for d in jax.devices())
    save("env", figures)


def cmd_matmul(a) -> None:
    n, flops = a.n, 2 * a.n**3
    figures = dict(load().get("matmul", {}), n=n)
    try:
        import jax
        import jax.numpy as jnp

        for dtype in ("bfloat16", "float16"):
            k1, k2 = jax.random.split(jax.random.key(0))
            x = jax.random.normal(k1, (n, n), dtype)
            y = jax.random.normal(k2, (n, n), dtype)
            mm = jax.jit(jnp.matmul)
            times = timed(lambda x=x, y=y, mm=mm: mm(x, y).block_until_ready(), 3, a.repeats)
            figures[f"jax_{dtype}_tflops"] = round(flops / statistics.median(times) / 1e12, 1)
            figures[f"jax_{dtype}_spread"] = spread(flops, times, 1e12)
    except Exception as e:  # noqa: BLE001 - one framework failing must not hide the other
        figures["jax_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    try:
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        for dtype in ("bfloat16", "float16"):
            x = torch.randn(n, n, device=dev, dtype=getattr(torch, dtype))
            y = torch.randn(n, n, device=dev, dtype=getattr(torch, dtype))

            def run(x=x, y=y, dev=dev):
                torch.matmul(x, y)
                if dev == "cuda":
                    torch.cuda.synchronize()

            times = timed(run, 3, a.repeats)
            figures[f"torch_{dtype}_tflops"] = round(flops / statistics.median(times) / 1e12, 1)
            figures[f"torch_{dtype}_spread"] = spread(flops, times, 1e12)
        figures["torch_device"] = dev
    except Exception as e:  # noqa: BLE001
        figures["torch_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    save("matmul", figures)


def cmd_tf_matmul(a) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_train

    figures = dict(load().get("matmul", {}), n=a.n)
    for dtype in ("float16", "bfloat16"):
        r = bench_train.matmul_gflops(n=a.n, repeats=a.repeats, dtype=dtype)
        figures[f"tf_{dtype}_tflops"] = round(r["gflops"] / 1e3, 1)
    save("matmul", figures)


def cmd_step(a) -> None:
    """Keras/JAX training step of anet's model: SGD momentum, L2 weight decay, dropout on."""
    keras = _keras_jax()
    import jax

    from anet import models

    keras.mixed_precision.set_dtype_policy(a.policy)
    keras.utils.set_random_seed(0)
    size = a.size or MODEL_SIZE[a.model]
    shape, classes = (size, size, a.channels), 10
    opts = {"width": 0.125, "fc_units": 64} if a.quick else {}
    model = models.build(a.model, shape, classes, weight_decay=5e-4, **opts)
    opt = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    opt.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    def loss_and_state(tv, ntv, x, y):
        probs, ntv, losses = model.stateless_call(tv, ntv, x, training=True, return_losses=True)
        return loss_fn(y, probs) + sum(losses), ntv

    grad = jax.value_and_grad(loss_and_state, has_aux=True)

    def step(state, x, y):
        tv, ntv, ov = state
        (loss, ntv), grads = grad(tv, ntv, x, y)
        tv, ov = opt.stateless_apply(ov, grads, tv)
        return loss, (tv, ntv, ov)

    step = jax.jit(step, donate_argnums=0)
    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in opt.variables])
    key = jax.random.key(0)
    x = jax.random.uniform(key, (a.batch, *shape), "float32")
    y = jax.random.randint(key, (a.batch,), 0, classes)
    box = {"state": state}

    def one():
        loss, box["state"] = step(box["state"], x, y)
        box["loss"] = float(loss)  # waits for the step

    t = time.perf_counter()
    one()
    compile_s = time.perf_counter() - t
    times = timed(one, a.warmup, a.steps)
    ips = a.batch / statistics.median(times)
    flops = 3 * models.forward_flops(a.model, shape, classes, **opts)
    results = load()
    figures = {"framework": "keras-jax", "precision": a.policy, "batch": a.batch,
               "input": "x".join(map(str, shape)), "images_per_s": round(ips, 1),
               "spread": spread(a.batch, times), "repeats": len(times),
               "train_gflop_per_image": round(flops / 1e9, 3),
               "achieved_tflops": round(ips * flops / 1e12, 2),
               "first_step_s": round(compile_s, 1), "last_loss": round(box["loss"], 4)}
    if opts:
        figures["quick_model"] = opts  # not the full-size model: no comparison with a peer
    ref, ref_name = _rate_ref(results)
    if ref:
        figures[f"share_of_{ref_name}_matmul"] = round(figures["achieved_tflops"] / ref, 3)
    save(f"step_{a.model}", figures)


def cmd_torch(a) -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "torch_alexnet.py"), "--size", str(a.size),
           "--batch", str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--channels", str(a.channels), "--amp", a.amp, "--channels-last", "--compile",
           "--device", a.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
        errors = [line for line in lines if "Error" in line] or lines
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"torch_alexnet.py failed: {errors[-1][:400]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = load().get("step_alexnet", {})
    same = (ours.get("batch"), ours.get("input")) == (a.batch, f"{a.size}x{a.size}x{a.channels}")
    if ours.get("images_per_s") and same and not ours.get("quick_model"):
        figures["keras_jax_over_torch_compile"] = round(
            ours["images_per_s"] / figures["images_per_s"], 2)
    save("torch", figures)


def read_idx(path: Path) -> np.ndarray:
    """One gzipped IDX file -> uint8 array (magic 0 0 8 ndim, big-endian sizes)."""
    data = gzip.open(path).read()
    ndim = data[3]
    dims = np.frombuffer(data[4:4 + 4 * ndim], ">u4").astype(int)
    return np.frombuffer(data[4 + 4 * ndim:], np.uint8).reshape(dims)


def cmd_fashion(a) -> None:
    """Full-size ANet-c6 on Fashion-MNIST (60k train / 10k test), Keras/JAX fit, time-boxed.

    anet's input conventions: stretch-resize (bilinear) to the model size, x/255, then
    standardize with the train split's mean/std; resizing runs on the device inside the model.
    Optimizer as anet's default start: SGD momentum 0.9 at lr 0.01, L2 weight decay 5e-4.
    """
    keras = _keras_jax()
    from anet import models

    src = Path(a.source)
    x_train = read_idx(src / "train-images-idx3-ubyte.gz")[..., None]
    y_train = read_idx(src / "train-labels-idx1-ubyte.gz").astype("int32")
    x_test = read_idx(src / "t10k-images-idx3-ubyte.gz")[..., None]
    y_test = read_idx(src / "t10k-labels-idx1-ubyte.gz").astype("int32")
    if a.quick:
        x_train, y_train, x_test, y_test = x_train[:2000], y_train[:2000], x_test[:500], y_test[:500]
    mean, std = float(x_train.mean() / 255), float(x_train.std() / 255)
    keras.mixed_precision.set_dtype_policy(a.policy)
    keras.utils.set_random_seed(0)
    size = a.size
    opts = {"width": 0.125, "fc_units": 64} if a.quick else {}
    net = models.build("anetc6", (size, size, 1), 10, weight_decay=5e-4, **opts)
    inp = keras.Input((28, 28, 1), name="pixels")
    x = keras.layers.Resizing(size, size, interpolation="bilinear", dtype="float32",
                              name="stretch")(inp)
    x = keras.layers.Rescaling(1 / (255 * std), offset=-mean / std, dtype="float32",
                               name="standardize")(x)
    for layer in net.layers[1:]:  # anet's layers in one flat model (the tables are a chain)
        x = layer(x)
    model = keras.Model(inp, x, name="fashion_anetc6")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=True)
    start = time.perf_counter()
    steps = -(-len(x_train) // a.batch)  # batches per epoch
    epoch_s: list[float] = []
    done = {"batches": 0}

    class TimeBox(keras.callbacks.Callback):
        """Stop before an epoch that would not fit, or mid-epoch at the box's end."""

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_s.append(time.perf_counter() - self.t)
            if time.perf_counter() - start + epoch_s[-1] > a.seconds:
                self.model.stop_training = True

        def on_train_batch_end(self, batch, logs=None):
            done["batches"] += 1
            if time.perf_counter() - start > a.seconds:
                self.model.stop_training = True

    history = model.fit(x_train, y_train, batch_size=a.batch, epochs=1000, verbose=2,
                        callbacks=[TimeBox()], shuffle=True)
    train_s = time.perf_counter() - start
    loss, acc = model.evaluate(x_test, y_test, batch_size=a.batch, verbose=0)
    probs = model.predict(x_test, batch_size=a.batch, verbose=0)
    nan_rows = int(np.isnan(probs).any(axis=1).sum())  # a NaN row would count as class 0
    save("fashion", {
        "framework": "keras-jax", "precision": a.policy, "input": f"{size}x{size}x1",
        "batch": a.batch, "epochs": round(done["batches"] / steps, 2),
        "train_s": round(train_s, 1), "epoch_s": [round(s, 1) for s in epoch_s],
        "optimizer": "SGD momentum 0.9, lr 0.01, L2 5e-4",
        "train_accuracy_last_epoch": round(history.history["accuracy"][-1], 4),
        "test_accuracy": round(float(acc), 4), "test_loss": round(float(loss), 4),
        "test_accuracy_from_predict": round(float((probs.argmax(1) == y_test).mean()), 4),
        "test_nan_rows": nan_rows,
        "train_images": len(x_train), "test_images": len(x_test),
    })
    print(f"Fashion-MNIST test accuracy: {acc:.4f} ({len(x_test)} test images, "
          f"{done['batches'] / steps:.2f} epochs)"
          + (f"; WARNING: {nan_rows} test rows predicted NaN" if nan_rows else ""), flush=True)


def cmd_from_bench(a) -> None:
    """(TensorFlow mode) scripts/bench.py's bench.json -> one step_NAME section per model."""
    bench = json.loads(Path(a.json).read_text())
    ref, ref_name = _rate_ref(load())
    for name in MODEL_SIZE:
        r = bench.get(f"train_{name}")
        if not r:
            continue
        figures = {"framework": "anet-tensorflow", "precision": a.precision, "batch": a.batch,
                   "images_per_s": r["memory_images_per_s"], "spread": r["memory_spread"],
                   "pipeline_images_per_s": r.get("pipeline_images_per_s"),
                   "train_gflop_per_image": r["train_gflop_per_image"],
                   "achieved_tflops": round(r["achieved_gflops"] / 1e3, 2)}
        if ref:
            figures[f"share_of_{ref_name}_matmul"] = round(figures["achieved_tflops"] / ref, 3)
        save(f"step_{name}", figures)
    save("bench", {k: v for k, v in bench.items() if not k.startswith("train_")})


def cmd_from_eval(a) -> None:
    """(TensorFlow mode) `anet evaluate`'s eval.json of the Fashion-MNIST run -> fashion."""
    from anet.data.info import load_dataset

    ev = json.loads((Path(a.run_dir) / "eval.json").read_text())
    train_images = load_dataset(a.data_dir).totals["train"]
    steps = max((c.get("step") or 0 for c in ev["checkpoints"]), default=0)
    save("fashion", {
        "framework": "anet-tensorflow", "precision": a.precision, "input": a.input,
        "batch": a.batch, "epochs": round(steps * a.batch / max(train_images, 1), 1),
        "train_s": a.train_s, "checkpoint": ev["chosen"]["name"],
        "valid_accuracy": round(ev["accuracy"]["valid"], 4),
        "test_accuracy": round(ev["accuracy"]["test"], 4),
        "test_images": ev["examples"].get("test"), "test_split": "anet's own test split",
    })
    print(f"Fashion-MNIST test accuracy: {ev['accuracy']['test']:.4f}", flush=True)


def cmd_record(a) -> None:
    """Merge a JSON file (``--json``), a failure note (``--error``) or a status line."""
    if a.json:
        figures = json.loads(Path(a.json).read_text())
    elif a.error:
        figures = dict(load().get(a.section, {}), error=a.error)
    else:
        figures = dict(load().get(a.section, {}), status=a.status)
    save(a.section, figures)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = {"action": "store_true", "help": "tiny sizes for a CPU dry run"}
    s = sub.add_parser("env")
    s.add_argument("--mode", required=True, choices=["keras-jax", "tensorflow"])
    for name in ("matmul", "tf-matmul"):
        s = sub.add_parser(name)
        s.add_argument("--n", type=int, default=8192)
        s.add_argument("--repeats", type=int, default=10)
    s = sub.add_parser("step")
    s.add_argument("--model", required=True, choices=list(MODEL_SIZE))
    s.add_argument("--batch", type=int, default=256)
    s.add_argument("--size", type=int, default=0, help="0: the paper's input size")
    s.add_argument("--channels", type=int, default=1)
    s.add_argument("--policy", default="mixed_bfloat16")
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--quick", **q)
    s = sub.add_parser("torch")
    s.add_argument("--batch", type=int, default=256)
    s.add_argument("--size", type=int, default=227)
    s.add_argument("--channels", type=int, default=1)
    s.add_argument("--amp", default="bf16")
    s.add_argument("--device", default="cuda")
    s.add_argument("--warmup", type=int, default=3)
    s.add_argument("--steps", type=int, default=20)
    s = sub.add_parser("fashion")
    s.add_argument("--source", required=True, help="folder with the four Fashion-MNIST .gz files")
    s.add_argument("--seconds", type=float, default=180, help="time box of fit")
    s.add_argument("--batch", type=int, default=128)
    s.add_argument("--size", type=int, default=227)
    s.add_argument("--policy", default="mixed_bfloat16")
    s.add_argument("--quick", **q)
    s = sub.add_parser("from-bench")
    s.add_argument("--json", required=True)
    s.add_argument("--precision", default="mixed_float16")
    s.add_argument("--batch", type=int, default=64)
    s = sub.add_parser("from-eval")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--precision", default="mixed_float16")
    s.add_argument("--input", default="227x227x1")
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--data-dir", required=True, help="the prepared Fashion-MNIST dataset")
    s.add_argument("--train-s", type=float, default=0.0)
    s = sub.add_parser("record")
    s.add_argument("--section", required=True)
    s.add_argument("--json", default="")
    s.add_argument("--error", default="")
    s.add_argument("--status", default="")
    a = p.parse_args()
    {"env": cmd_env, "matmul": cmd_matmul, "tf-matmul": cmd_tf_matmul, "step": cmd_step,
     "torch": cmd_torch, "fashion": cmd_fashion, "from-bench": cmd_from_bench,
     "from-eval": cmd_from_eval, "record": cmd_record}[a.cmd](a)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # results are saved: skip the frameworks' slow teardown (it counts in the box)


if __name__ == "__main__":
    main()
