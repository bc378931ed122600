"""`make bench`: time anet's heavy steps; one function per section, all writing into one dict.

Results go to bench.json and, as a markdown table, to stdout and bench.md. Sections:
  prepare   70k-image MNIST-format IDX fixture (gz) -> `anet prepare` in a subprocess:
            images/s, wall time, peak RSS (largest process, and whole process tree).
  matmul    the machine's dense float32 matmul rate (2048^2), the utilisation denominator.
  pipeline  the input pipeline alone: images/s delivered at 227x227 and 224x224.
  train     each full-size model's training step at batch 64: images/s from memory and from
            the real pipeline (their ratio is the pipeline overhead), achieved GFLOP/s and
            utilisation = achieved / matmul rate. The step is compiled as `anet train` compiles
            it (--jit, default auto: XLA on a GPU, TensorFlow's plain graph on CPU); AlexNet and
            ANet-c6 also time the other choice from memory (step_over_xla / step_over_plain).
  peer      the same AlexNet in PyTorch (scripts/torch_alexnet.py; only if torch is installed,
            else the rows say skipped): torch.compile (inductor), the peer a PyTorch user runs
            today, and eager as a second row; anet / PyTorch images/s for each.
  overhead  the share of wall time outside the training steps (checks, saves, validation) of
            a full-size AlexNet paper run at its real check interval: step, check, validation
            and save times measured, the epoch computed from them (scripts/bench_loop.py).
  evaluate  `anet evaluate`'s per-checkpoint cost, before #16 (every checkpoint read twice:
            damage check, then Keras' load; the validation split decoded again per checkpoint)
            vs now (one read per checkpoint, the split decoded once), in one run
            (scripts/bench_eval.py): s/checkpoint, images/s and their ratio, for 20 checkpoints
            of the tiny model (evaluate) and 3 of full-size ANet-c6 227x227 (evaluate_full).
The pipeline, train, overhead and evaluate sections read the dataset that prepare wrote.

Usage: python scripts/bench.py [--sections prepare matmul ...] [--out-dir .] [--images 70000]
       [--models alexnet anetc6 vgg16] [--precision float32|mixed_float16] [--steps 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_eval  # noqa: E402
import bench_loop  # noqa: E402
import bench_train  # noqa: E402

from anet.data.info import load_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ANET = [sys.executable, "-c", "from anet.cli import main; main()"]


# --------------------------------------------------------------------------- helpers


def digit_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random-ish digit-like 28x28 uint8 images: a drawn glyph per class, shifted, scaled, noisy."""
    rng = np.random.default_rng(seed)
    glyphs = []
    for d in range(10):
        im = Image.new("L", (14, 14))
        ImageDraw.Draw(im).text((4, 1), str(d), fill=255)
        glyphs.append(np.asarray(im.resize((20, 20), Image.BILINEAR)))
    glyphs = np.pad(np.stack(glyphs), ((0, 0), (6, 6), (6, 6)))  # 10 x 32 x 32
    labels = rng.integers(0, 10, n)
    dy, dx = rng.integers(0, 5, n), rng.integers(0, 5, n)
    rows = dy[:, None] + np.arange(28)
    cols = dx[:, None] + np.arange(28)
    images = glyphs[labels[:, None, None], rows[:, :, None], cols[:, None, :]].astype(np.float32)
    images *= rng.uniform(0.6, 1.0, (n, 1, 1))
    images += rng.integers(0, 30, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """One gzipped IDX file (magic 0 0 8 ndim, big-endian sizes, uint8 data)."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(header + array.tobytes())


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (kB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_measured(cmd: list[str], **kw) -> dict:
    """Run a command; exit code, wall and CPU time, peak RSS of the largest process and of the
    whole process tree (polled from /proc every 50 ms)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, **kw)
    peak_tree = 0
    while proc.poll() is None:
        peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    # ru_maxrss of children is the largest single descendant so far (kB on Linux)
    return {"returncode": proc.returncode, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_max_process_mb": round(after.ru_maxrss / 1024, 1),
            "peak_rss_tree_mb": round(peak_tree / 1024, 1)}


# --------------------------------------------------------------------------- sections


def bench_prepare(results: dict, args: argparse.Namespace) -> None:
    """`anet prepare --dataset mnist` on a generated IDX fixture of ``args.images`` images."""
    images = args.images
    tmp = args.work
    src = Path(tmp) / "idx"
    src.mkdir(exist_ok=True)
    n_test = images // 7
    for split, n, seed in (("train", images - n_test, 0), ("t10k", n_test, 1)):
        x, y = digit_images(n, seed)
        write_idx_gz(src / f"{split}-images-idx3-ubyte.gz", x)
        write_idx_gz(src / f"{split}-labels-idx1-ubyte.gz", y)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    tf = run_measured([sys.executable, "-c", "import tensorflow"], env=env)
    out = Path(tmp) / "mnist"
    shutil.rmtree(out, ignore_errors=True)
    log = Path(tmp) / "prepare.log"
    with open(log, "w") as f:
        m = run_measured(ANET + ["prepare", "--dataset", "mnist", "--source", str(src),
                                 "--out", str(out)], env=env, stdout=f, stderr=subprocess.STDOUT,
                         cwd=ROOT)
    if m["returncode"] != 0:
        raise SystemExit(f"anet prepare failed:\n{log.read_text()[-3000:]}")
    meta = load_dataset(out)
    results["prepare"] = {
        "images": meta.totals["total"], **m,
        "images_per_s": round(meta.totals["total"] / m["wall_s"], 1),
        "tensorflow_import_s": tf["wall_s"], "workers": os.cpu_count(),
    }


def _dataset(args: argparse.Namespace) -> Path:
    data = Path(args.work) / "mnist"
    if not (data / "dataset.json").is_file():
        raise SystemExit(f"bench: {data} has no prepared dataset; include the prepare section")
    return data


def bench_matmul(results: dict, args: argparse.Namespace) -> None:
    # under mixed precision the step computes in 16 bits: compare with that matmul rate
    dtype = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(args.precision, "float32")
    results["matmul"] = bench_train.matmul_gflops(n=4096 if args.precision != "float32" else 2048,
                                                  dtype=dtype)


def bench_pipeline(results: dict, args: argparse.Namespace) -> None:
    data = _dataset(args)
    results["pipeline"] = {
        f"{size}x{size}_images_per_s": bench_train.pipeline_rate(data, size)["images_per_s"]
        for size in (227, 224)}


def bench_train_step(results: dict, args: argparse.Namespace) -> None:
    data = _dataset(args)
    peak = results.get("matmul", {}).get("gflops")
    for name, size in bench_train.MODELS:
        if name not in args.models:
            continue
        print(f"bench: train {name} ...", file=sys.stderr)
        # VGG16 costs ~13x AlexNet per image: fewer repeats keep `make bench` under 10 minutes
        steps, warmup = (min(args.steps, 2), 1) if name == "vgg16" else (args.steps, 2)
        r = bench_train.train_rates(name, size, data, steps=steps, warmup=warmup,
                                    precision=args.precision, jit=args.jit,
                                    alternative=name != "vgg16" and args.jit == "auto")
        if peak:
            r["utilisation"] = round(r["achieved_gflops"] / peak, 3)
        results[f"train_{name}"] = r


def bench_peer(results: dict, args: argparse.Namespace) -> None:
    ours = results.get("train_alexnet", {}).get("memory_images_per_s")
    for mode in ("compile", "eager"):
        print(f"bench: peer torch {mode} ...", file=sys.stderr)
        # compilation takes the first steps; eager torch steps are noisier: more repeats
        peer = bench_train.torch_peer(steps=args.steps + 2, compile=mode == "compile")
        if peer is None:
            results[f"peer_torch_{mode}"] = {"skipped": "torch not installed"}
            continue
        if ours and "images_per_s" in peer:
            peer["anet_over_torch"] = round(ours / peer["images_per_s"], 2)
        results[f"peer_torch_{mode}"] = peer


def bench_overhead(results: dict, args: argparse.Namespace) -> None:
    results["overhead"] = bench_loop.loop_overhead(_dataset(args))


def bench_evaluate(results: dict, args: argparse.Namespace) -> None:
    data = _dataset(args)
    results["evaluate"] = bench_eval.evaluate_rates(data)
    print("bench: evaluate full-size ANet-c6 ...", file=sys.stderr)
    results["evaluate_full"] = bench_eval.evaluate_rates(
        data, checkpoints_n=3, size=227, width=1.0, fc_units=4096, max_batches=2, rounds=1)


SECTIONS = {"prepare": bench_prepare, "matmul": bench_matmul, "pipeline": bench_pipeline,
            "train": bench_train_step, "peer": bench_peer, "overhead": bench_overhead,
            "evaluate": bench_evaluate}


def markdown(results: dict) -> str:
    """One table: section | metric | value."""
    lines = ["| section | metric | value |", "|---|---|---|"]
    for section, metrics in results.items():
        if section == "machine":
            continue
        lines += [f"| {section} | {k} | {v} |" for k, v in metrics.items()]
    m = results["machine"]
    head = (f"Bench on {m['cpu']} ({m['cores']} cores, load average {m['load_avg_1m']} at start), "
            f"Python {m['python']}")
    return head + "\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--out-dir", default=str(ROOT), help="where bench.json / bench.md go")
    parser.add_argument("--images", type=int, default=70000, help="prepare: fixture size")
    parser.add_argument("--models", nargs="*", default=[m for m, _ in bench_train.MODELS])
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_float16", "mixed_bfloat16"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per figure")
    parser.add_argument("--jit", default="auto", choices=["auto", "true", "false"],
                        help="train.jit_compile for the train section (auto: XLA on a GPU only)")
    parser.add_argument("--work", default="",
                        help="work dir, created if missing (default: a temp dir, removed)")
    args = parser.parse_args()
    args.jit = {"true": True, "false": False}.get(args.jit, args.jit)
    if not args.work:
        tmp = tempfile.TemporaryDirectory(prefix="anet-bench-")
        args.work = tmp.name
    try:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"error: --work {args.work}: cannot create it ({e.strerror}); "
                         "pass a folder you can write") from None
    results: dict = {"machine": {"cpu": platform.processor() or platform.machine(),
                                 "cores": os.cpu_count(), "python": platform.python_version(),
                                 "load_avg_1m": round(os.getloadavg()[0], 2)}}
    for name in args.sections:
        print(f"bench: {name} ...", file=sys.stderr)
        SECTIONS[name](results, args)
    out = Path(args.out_dir)
    (out / "bench.json").write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    (out / "bench.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
