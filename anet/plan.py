"""What ``anet train-many`` runs, decided before anything runs: one job per config x seed, each
an ``anet train`` of its own run folder, and which job starts on which GPU (pure functions;
anet.devices runs the plan on this machine, anet.slurm writes it as a Slurm job array)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from anet.config import load_config
from anet.errors import AnetError
from anet.runs import RunPaths, default_run_dir


@dataclass(frozen=True)
class Job:
    """One ``anet train`` of a train-many: a config (and seed) and its own run folder."""

    config: str  # the config path as given
    run_dir: Path  # the same folder a plain `anet train` (--seeds) of the config uses
    overrides: tuple[str, ...] = ()  # the --set values, then run.seed=N with a seed
    seed: int | None = None

    def train_args(self) -> list[str]:
        """anet's arguments for this job: ``train CONFIG --run-dir RUN [--set KEY=VALUE ...]``."""
        sets = [a for o in self.overrides for a in ("--set", o)]
        return ["train", self.config, "--run-dir", str(self.run_dir), *sets]

    @property
    def name(self) -> str:
        return self.config if self.seed is None else f"{self.config} seed {self.seed}"


def plan(configs: Sequence[str], overrides: Sequence[str] = (), seeds: Sequence[int] = ()
         ) -> tuple[Job, ...]:
    """The jobs of ``train-many CONFIG... [--set ...] [--seeds ...]``, configs in the order given,
    each config's seeds in order. Every config is loaded (and validated) here, before any runs."""
    if not configs:
        raise AnetError("train-many: no CONFIG given; e.g. anet train-many configs/a.yaml "
                        "configs/b.yaml [--gpus 0,1] [--slurm jobs.sbatch]")
    jobs = []
    for path in configs:
        cfg = load_config(path, overrides)
        if cfg.train.distribute == "multi_worker":
            raise AnetError(f"{path}: train.distribute=multi_worker needs one process per worker "
                            "(srun, or TF_CONFIG on each), not a train-many job; see docs/cluster.md")
        run = RunPaths(default_run_dir(cfg))
        if not seeds:
            jobs.append(Job(str(path), run.dir, tuple(overrides)))
        for seed in seeds:
            jobs.append(Job(str(path), run.seed(seed).dir, (*overrides, f"run.seed={seed}"), seed))
    dirs = [j.run_dir for j in jobs]
    if len(set(dirs)) != len(dirs):
        raise AnetError("train-many: two configs share a run directory; give them distinct run.dir")
    return tuple(jobs)


def next_starts(pending: Sequence[Job], running: Mapping, slots: Sequence, stopping: bool
                ) -> list[tuple[Job, object]]:
    """Which pending jobs start now and where: the first ones, in order, on the free slots
    (GPU indices, or ``None`` for the one CPU slot) in order; none once a stop was asked."""
    if stopping:
        return []
    free = [s for s in slots if s not in running]
    return list(zip(pending, free))


def gpu_env(gpu: int | None, visible: str | None) -> dict[str, str]:
    """The environment a job on GPU ``gpu`` gets: CUDA_VISIBLE_DEVICES naming that one GPU.

    ``gpu`` counts the GPUs this process sees, so under ``CUDA_VISIBLE_DEVICES=4,5,6`` GPU 0 is
    device 4. ``None`` (no --gpus) changes nothing.
    """
    if gpu is None:
        return {}
    if visible is None:
        return {"CUDA_VISIBLE_DEVICES": str(gpu)}
    devices = [d.strip() for d in visible.split(",") if d.strip()]
    if not devices:
        raise AnetError("--gpus: CUDA_VISIBLE_DEVICES is empty (no GPU visible); unset it or "
                        "leave out --gpus")
    if gpu >= len(devices):
        raise AnetError(f"--gpus: GPU {gpu} is not among the {len(devices)} that "
                        f"CUDA_VISIBLE_DEVICES={visible} shows (0-{len(devices) - 1})")
    return {"CUDA_VISIBLE_DEVICES": devices[gpu]}
