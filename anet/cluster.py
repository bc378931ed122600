"""Where the workers of a multi-worker run are: a ``tf.distribute.cluster_resolver`` chosen by
``train.cluster`` (TF_CONFIG, or Slurm's job-step variables through ``SlurmClusterResolver``).

Kubernetes needs nothing of its own: its TensorFlow operators (Kubeflow's TFJob) write TF_CONFIG
into every pod, and TensorFlow's ``KubernetesClusterResolver`` cannot tell a pod its task index.
The pure parts (which source, the worker list and this process's rank, the Slurm port and GPU
sharing) are separate from the resolvers so they can be tested without a cluster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from anet.errors import AnetError

# Variables every Slurm job step (srun) sets, which SlurmClusterResolver reads.
SLURM_STEP_VARS = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST",
                   "SLURM_STEP_TASKS_PER_NODE")
WORKER_TYPES = ("chief", "worker")  # the task types MultiWorkerMirroredStrategy trains with
PORTS_PER_JOB = 16  # ports a Slurm job may use on one node (one per task on the node)


@dataclass(frozen=True)
class Cluster:
    """The workers of a multi-worker run, the chief first, and which one this process is."""

    source: str  # tf_config | slurm
    workers: tuple[str, ...]  # host:port, the chief first
    rank: int  # this process's place in ``workers`` (0 = the chief)
    task: tuple[str, int]  # this process's (task type, index) as TensorFlow names it

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def line(self) -> str:
        """``cluster (slurm): 2 workers: n1:8888 (chief), n2:8888; this process is worker 1``."""
        n = len(self.workers)
        listed = ", ".join(w + (" (chief)" if i == 0 else "") for i, w in enumerate(self.workers))
        me = "the chief" if self.is_chief else f"worker {self.rank}"
        return f"cluster ({self.source}): {n} worker{'s' if n != 1 else ''}: {listed}; " \
               f"this process is {me}"


def choose(setting: str, environ: Mapping[str, str]) -> str:
    """``train.cluster`` -> the source to read: ``tf_config`` or ``slurm``.

    ``auto`` takes TF_CONFIG when it is set, else the Slurm job step anet runs in.
    """
    if setting != "auto":
        return setting
    if environ.get("TF_CONFIG"):
        return "tf_config"
    if "SLURM_PROCID" in environ and "SLURM_STEP_NUM_TASKS" in environ:
        return "slurm"
    if "SLURM_JOB_ID" in environ:
        raise AnetError("train.distribute=multi_worker: this is a Slurm job but not a job step; "
                        "start one anet per worker with srun (srun anet train ...)")
    raise AnetError("train.distribute=multi_worker needs a cluster: set TF_CONFIG on every "
                    "worker, or start the workers with srun in a Slurm job (train.cluster: "
                    "auto | tf_config | slurm)")


def from_tf_config(text: str, source: str = "tf_config") -> Cluster:
    """The cluster a TF_CONFIG value (JSON) describes; a one-line AnetError when it cannot."""
    try:
        tf_config = json.loads(text)
    except ValueError as e:
        raise AnetError(f"TF_CONFIG is not valid JSON ({e}); expected "
                        '{"cluster": {"worker": ["host:port", ...]}, '
                        '"task": {"type": "worker", "index": N}}') from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise AnetError('TF_CONFIG needs "cluster" ({"worker": ["host:port", ...]}) and "task" '
                        '({"type": "worker", "index": N})')
    return describe(cluster, str(task.get("type")), task.get("index", 0), source)


def describe(cluster: Mapping[str, list], task_type: str, task_id, source: str) -> Cluster:
    """A cluster spec (job -> addresses) and this task -> :class:`Cluster` (chief first)."""
    other = sorted(set(cluster) - set(WORKER_TYPES))
    if other:
        raise AnetError(f"{source}: jobs {', '.join(other)} are not used by "
                        "MultiWorkerMirroredStrategy; list only chief and worker tasks")
    workers = [str(a) for t in WORKER_TYPES for a in cluster.get(t) or []]
    if len(cluster.get("chief") or []) > 1:
        raise AnetError(f"{source}: a cluster has at most one chief")
    if not workers:
        raise AnetError(f"{source}: the cluster lists no workers")
    if task_type not in WORKER_TYPES or not isinstance(task_id, int) \
            or not 0 <= task_id < len(cluster.get(task_type) or []):
        raise AnetError(f"{source}: this task ({task_type!r}, index {task_id!r}) is not in the "
                        f"cluster ({', '.join(f'{t}: {len(v)}' for t, v in cluster.items())})")
    rank = task_id + (len(cluster.get("chief") or []) if task_type == "worker" else 0)
    return Cluster(source, tuple(workers), rank, (task_type, task_id))


def slurm_port(job_id: int) -> int:
    """The first port of a Slurm job's workers on a node: a range per job, so two jobs that
    share a node do not collide (``train.cluster_port: 0``)."""
    return 20000 + (job_id % 2000) * PORTS_PER_JOB


def slurm_gpus(cuda_visible: str | None, tasks_on_node: int) -> dict:
    """SlurmClusterResolver's GPU keywords for the GPUs Slurm gave this task.

    With at least one GPU per task on the node (``--gres=gpu:4`` with 4 tasks) the resolver
    deals them out and sets CUDA_VISIBLE_DEVICES; with fewer (Slurm bound each task to its own
    GPU, ``--gpus-per-task``) or none (a CPU job) each task keeps what it has.
    """
    visible = len([d for d in (cuda_visible or "").split(",") if d.strip()])
    if visible >= tasks_on_node >= 1:
        return {"gpus_per_node": visible, "auto_set_gpu": True}
    # One "GPU" slot per task only lays out the ports; nothing is set.
    return {"gpus_per_node": tasks_on_node, "gpus_per_task": 1, "auto_set_gpu": False}


def resolve(setting: str, port: int = 0):
    """(resolver for ``MultiWorkerMirroredStrategy``, :class:`Cluster`) for ``train.cluster``
    from this process's environment.

    Call before TensorFlow initialises its devices: the Slurm resolver may set
    CUDA_VISIBLE_DEVICES.
    """
    import tensorflow as tf

    environ = os.environ
    source = choose(setting, environ)
    resolvers = tf.distribute.cluster_resolver
    if source == "tf_config":
        if not environ.get("TF_CONFIG"):
            raise AnetError("train.cluster=tf_config: TF_CONFIG is not set; set it on every "
                            "worker (or train.cluster: auto to use a Slurm job step)")
        return resolvers.TFConfigClusterResolver(), from_tf_config(environ["TF_CONFIG"])
    missing = [v for v in SLURM_STEP_VARS + (() if port else ("SLURM_JOB_ID",))
               if v not in environ]
    if missing:
        raise AnetError(f"train.cluster=slurm: {missing[0]} is not set; start one anet per "
                        "worker with srun inside a Slurm job (srun anet train ...)")
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (
        expand_tasks_per_node,
    )

    try:
        on_node = max(expand_tasks_per_node(environ["SLURM_STEP_TASKS_PER_NODE"]))
        slurm = resolvers.SlurmClusterResolver(
            port_base=port or slurm_port(int(environ["SLURM_JOB_ID"])),
            **slurm_gpus(environ.get("CUDA_VISIBLE_DEVICES"), on_node))
        spec = slurm.cluster_spec()  # also deals out the GPUs
    except (RuntimeError, ValueError) as e:
        raise AnetError(f"train.cluster=slurm: {str(e).splitlines()[0]}") from None
    gpus = len(tf.config.list_physical_devices("GPU"))  # after CUDA_VISIBLE_DEVICES is final
    resolver = resolvers.SimpleClusterResolver(
        spec, task_type=slurm.task_type, task_id=slurm.task_id, rpc_layer="grpc",
        num_accelerators={"GPU": gpus} if gpus else None)
    return resolver, describe(spec.as_dict(), slurm.task_type, slurm.task_id, "slurm")
