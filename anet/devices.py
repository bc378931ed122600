"""Device placement: one GPU per model (`--gpu N`), and train-many's jobs on several GPUs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from anet.errors import AnetError
from anet.plan import Job, gpu_env, next_starts
from anet.runs import RunPaths


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


def train_many(jobs: Sequence[Job], gpus: list[int]) -> int:
    """Run the planned ``anet train`` jobs (:func:`anet.plan.plan`): with ``gpus`` one per GPU
    at a time (CUDA_VISIBLE_DEVICES names it), the rest queued; without, one after another.

    Each run logs to ``<run dir>/train.log``. Ctrl-C / SIGTERM go to every running job (each
    writes its interrupt checkpoint) and no further job starts. Returns the worst exit code.
    """
    slots = gpus or [None]
    envs = {slot: gpu_env(slot, os.environ.get("CUDA_VISIBLE_DEVICES")) for slot in slots}
    running: dict = {}  # slot -> (process, log file, job)
    codes = []
    pending = list(jobs)
    stop = _Interrupts()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while (pending and not stop.count) or running:
            for job, slot in next_starts(pending, running, slots, stopping=bool(stop.count)):
                pending.remove(job)
                running[slot] = (*_start(job, slot, envs[slot]), job)
            stop.forward([proc for proc, *_ in running.values()])
            for slot, (proc, log, job) in list(running.items()):
                if proc.poll() is not None:
                    log.close()
                    codes.append(proc.returncode)
                    status = ("done" if proc.returncode == 0 else "interrupted (checkpoint written)"
                              if proc.returncode == 130 else f"FAILED (exit {proc.returncode})")
                    print(f"{status}: {job.name} ({RunPaths(job.run_dir).train_log})", flush=True)
                    del running[slot]
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.count:
        if pending:
            print(f"not started: {', '.join(j.name for j in pending)}", flush=True)
        return 130
    return max(codes, default=0)


def _start(job: Job, slot: int | None, env: dict) -> tuple[subprocess.Popen, object]:
    """Start one job's ``anet train`` (output appended to its train.log); (process, log file)."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    log = open(RunPaths(job.run_dir).train_log, "a")
    where = f"GPU {slot} (CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']})" \
        if slot is not None else "CPU"
    print(f"start {job.name} on {where} -> {RunPaths(job.run_dir).train_log}", flush=True)
    # Own session: a terminal Ctrl-C reaches only train-many, which passes exactly one stop
    # request on (two would abort the child's checkpoint).
    proc = subprocess.Popen([sys.executable, "-m", "anet.cli", *job.train_args()],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **env})
    return proc, log


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
