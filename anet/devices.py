"""Device placement: one GPU per model (`--gpu N`), and several models on several GPUs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from anet.config import load_config
from anet.errors import AnetError
from anet.runs import RunPaths, default_run_dir


def select_gpu(gpu: int | None) -> None:
    """Make only GPU ``gpu`` visible to TensorFlow (call before TF initialises devices).

    With no such GPU, TensorFlow sees none and the model runs on the CPU (with a notice).
    """
    if gpu is None:
        return
    if gpu < 0:
        raise AnetError(f"--gpu {gpu}: must be a GPU index >= 0")
    os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:  # CUDA was read before the variable was set: hide the others through TF
        gpus = [gpus[gpu]] if gpu < len(gpus) else []
        tf.config.set_visible_devices(gpus, "GPU")
    if not gpus:
        print(f"notice: GPU {gpu} is not available; training on the CPU", file=sys.stderr)


def parse_gpus(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; '' -> every visible GPU (none on a CPU-only machine)."""
    if not text.strip():
        import tensorflow as tf

        return list(range(len(tf.config.list_physical_devices("GPU"))))
    try:
        gpus = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise AnetError(f"--gpus {text!r}: expected comma-separated GPU indices like 0,1,2") from None
    if len(set(gpus)) != len(gpus) or any(g < 0 for g in gpus):
        raise AnetError(f"--gpus {text!r}: indices must be distinct and >= 0")
    return gpus


def train_many(configs: list[str], overrides: list[str], gpus: list[int],
               seeds: tuple[int, ...] = ()) -> int:
    """Run ``anet train`` for each config, one per GPU at a time; sequentially without GPUs.

    With ``seeds`` each config runs once per seed, in ``<run dir>/seed-N`` with run.seed=N.
    Each run logs to ``<run dir>/train.log``. Returns the worst exit code.
    """
    jobs = []
    for path in configs:  # validate every config before starting anything
        cfg = load_config(path, overrides)
        if not seeds:
            jobs.append((path, default_run_dir(cfg), []))
        for seed in seeds:
            jobs.append((path, RunPaths(default_run_dir(cfg)).seed(seed).dir, [f"run.seed={seed}"]))
    run_dirs = [str(d) for _, d, _ in jobs]
    if len(set(run_dirs)) != len(run_dirs):
        raise AnetError("train-many: two configs share a run directory; give them distinct run.dir")
    slots = gpus or [None]
    running: dict = {}  # slot -> (process, config, run dir, log file)
    codes = []
    queue = list(jobs)
    stop = _Interrupts()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while (queue and not stop.count) or running:
            for slot in slots:
                if slot not in running and queue and not stop.count:
                    path, run_dir, extra = queue.pop(0)
                    run_dir.mkdir(parents=True, exist_ok=True)
                    log = open(RunPaths(run_dir).train_log, "a")
                    cmd = [sys.executable, "-m", "anet.cli", "train", path, "--run-dir", str(run_dir)]
                    cmd += [a for o in [*overrides, *extra] for a in ("--set", o)]
                    if slot is not None:
                        cmd += ["--gpu", str(slot)]
                    where = f"GPU {slot}" if slot is not None else "CPU"
                    print(f"start {path} on {where} -> {RunPaths(run_dir).train_log}", flush=True)
                    # Own session: a terminal Ctrl-C reaches only this process, which passes
                    # exactly one stop request on (two would abort the child's checkpoint).
                    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
                    running[slot] = (proc, path, run_dir, log)
            stop.forward([proc for proc, *_ in running.values()])
            for slot, (proc, path, run_dir, log) in list(running.items()):
                if proc.poll() is not None:
                    log.close()
                    codes.append(proc.returncode)
                    status = ("done" if proc.returncode == 0 else "interrupted (checkpoint written)"
                              if proc.returncode == 130 else f"FAILED (exit {proc.returncode})")
                    print(f"{status}: {path} ({RunPaths(run_dir).train_log})", flush=True)
                    del running[slot]
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.count:
        if queue:
            print(f"not started: {', '.join(f'{p} ({d})' if x else p for p, d, x in queue)}",
                  flush=True)
        return 130
    return max(codes, default=0)


class _Interrupts:
    """Counts Ctrl-C / SIGTERM in train-many and forwards each one once to the running children:
    the first asks them to checkpoint and stop, a second to abort."""

    def __init__(self):
        self.count = 0
        self.sent: dict[int, int] = {}  # pid -> signals forwarded

    def handle(self, signum, frame):
        self.count += 1
        if self.count == 1:
            print("\ninterrupted: waiting for the running training to write its checkpoint "
                  "(again to abort it); no further config starts", file=sys.stderr, flush=True)

    def forward(self, procs) -> None:
        for proc in procs:
            while self.sent.get(proc.pid, 0) < min(self.count, 2) and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                self.sent[proc.pid] = self.sent.get(proc.pid, 0) + 1
