"""Multi-worker training from a cluster resolver: the pure parts (source, workers, chief, Slurm
ports and GPUs), bad inputs, and local worker processes through TF_CONFIG and Slurm's
variables (identical weights, a resume after a worker is killed)."""

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from anet import checkpoints
from anet.cluster import Cluster, choose, from_tf_config, slurm_gpus, slurm_port
from anet.config import ConfigError, load_config
from anet.errors import AnetError
from tests.cli import run_cli
from tests.test_train import ANET, ENV, weights
from tests.tinydata import write_dataset
from tests.tinyrun import tiny_config

MULTI = ["--set", "train.distribute=multi_worker"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"),
                         n_per_split={"train": 96, "valid": 24, "test": 24}, size=(40, 24))


def _free_ports(n: int) -> list[int]:
    """``n`` consecutive free ports (Slurm gives a node's tasks port_base, port_base + 1, ...)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            for p in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return list(range(base, base + n))
        except OSError:
            continue
    raise RuntimeError("no consecutive free ports")


def tf_config(workers: list[str], index: int) -> str:
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


# ----------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize("setting, environ, source", [
    ("auto", {"TF_CONFIG": "{}", "SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "2"}, "tf_config"),
    ("auto", {"SLURM_JOB_ID": "7", "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"}, "slurm"),
    ("auto", {"TF_CONFIG": "", "SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1"}, "slurm"),
    ("tf_config", {}, "tf_config"),
    ("slurm", {"TF_CONFIG": "{}"}, "slurm"),
])
def test_choose_golden(setting, environ, source):
    assert choose(setting, environ) == source


def test_choose_auto_names_what_to_set():
    with pytest.raises(AnetError, match=r"needs a cluster: set TF_CONFIG on every worker, or "
                                        r"start the workers with srun"):
        choose("auto", {})
    with pytest.raises(AnetError, match="a Slurm job but not a job step; start one anet per "
                                        r"worker with srun"):
        choose("auto", {"SLURM_JOB_ID": "12"})  # inside sbatch's script, outside srun


def test_tf_config_workers_chief_first_and_rank():
    two = from_tf_config(tf_config(["a:1", "b:2"], 1))
    assert two == Cluster("tf_config", ("a:1", "b:2"), 1, ("worker", 1)) and not two.is_chief
    assert two.line() == "cluster (tf_config): 2 workers: a:1 (chief), b:2; this process is worker 1"
    spec = {"cluster": {"worker": ["w0:1", "w1:1"], "chief": ["c:1"]},
            "task": {"type": "worker", "index": 0}}
    with_chief = from_tf_config(json.dumps(spec))
    assert with_chief.workers == ("c:1", "w0:1", "w1:1") and with_chief.rank == 1
    spec["task"] = {"type": "chief", "index": 0}
    assert from_tf_config(json.dumps(spec)).is_chief
    one = from_tf_config(tf_config(["a:1"], 0))
    assert one.line() == "cluster (tf_config): 1 worker: a:1 (chief); this process is the chief"


@pytest.mark.parametrize("text, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs "cluster"'),
    (tf_config(["a:1", "b:1"], 2), r"this task \('worker', index 2\) is not in the cluster "
                                   r"\(worker: 2\)"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}',
     "jobs ps are not used by MultiWorkerMirroredStrategy"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "lists no workers"),
])
def test_bad_tf_config_is_one_line(text, message):
    with pytest.raises(AnetError, match=message) as e:
        from_tf_config(text)
    assert "\n" not in str(e.value)


def test_slurm_port_golden():
    assert [slurm_port(j) for j in (0, 1, 1999, 2000, 123456)] == [20000, 20016, 51984, 20000,
                                                                   43296]  # 1456 x 16


@pytest.mark.parametrize("visible, tasks, kwargs", [
    ("0,1,2,3", 4, {"gpus_per_node": 4, "auto_set_gpu": True}),  # --gres=gpu:4, 4 tasks
    ("0,1,2,3", 2, {"gpus_per_node": 4, "auto_set_gpu": True}),  # two GPUs per task
    ("1", 2, {"gpus_per_node": 2, "gpus_per_task": 1, "auto_set_gpu": False}),  # bound by Slurm
    (None, 2, {"gpus_per_node": 2, "gpus_per_task": 1, "auto_set_gpu": False}),  # a CPU job
    ("", 1, {"gpus_per_node": 1, "gpus_per_task": 1, "auto_set_gpu": False}),
])
def test_slurm_gpus_golden(visible, tasks, kwargs):
    assert slurm_gpus(visible, tasks) == kwargs


# ----------------------------------------------------------------------------- bad inputs


def test_bad_cluster_settings_are_config_errors(tmp_path, data):
    cfg = tiny_config(tmp_path, data)
    with pytest.raises(ConfigError, match="train.cluster must be one of auto, tf_config, slurm, "
                                          "got 'kubernetes'"):
        load_config(cfg, ["train.distribute=multi_worker", "train.cluster=kubernetes"])
    with pytest.raises(ConfigError, match="train.cluster and train.cluster_port need "
                                          "train.distribute: multi_worker"):
        load_config(cfg, ["train.cluster=slurm"])
    with pytest.raises(ConfigError, match=r"train.cluster_port must be 0 .* got 80"):
        load_config(cfg, ["train.distribute=multi_worker", "train.cluster_port=80"])


def test_multi_worker_without_a_cluster_or_with_a_missing_slurm_variable(tmp_path, data,
                                                                         capsys, monkeypatch):
    cfg = tiny_config(tmp_path, data)
    for var in ("TF_CONFIG", "SLURM_JOB_ID", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                "SLURM_STEP_NODELIST", "SLURM_STEP_TASKS_PER_NODE"):
        monkeypatch.delenv(var, raising=False)
    run = tmp_path / "run"
    code, _, err = run_cli(["train", cfg, "--run-dir", run, *MULTI], capsys)
    assert code == 2 and err.strip().startswith(
        "error: train.distribute=multi_worker needs a cluster: set TF_CONFIG") and "\n" not in err.strip()
    monkeypatch.setenv("SLURM_JOB_ID", "5")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    code, _, err = run_cli(["train", cfg, "--run-dir", run, *MULTI, "--set", "train.cluster=slurm"],
                           capsys)
    assert code == 2 and err.strip() == ("error: train.cluster=slurm: SLURM_STEP_NODELIST is not "
                                         "set; start one anet per worker with srun inside a Slurm "
                                         "job (srun anet train ...)")
    code, _, err = run_cli(["train", cfg, "--run-dir", run, *MULTI,
                            "--set", "train.cluster=tf_config"], capsys)
    assert code == 2 and err.strip().startswith("error: train.cluster=tf_config: TF_CONFIG is not set")
    assert not run.exists()  # nothing written
    code, _, err = run_cli(["train", cfg, "--run-dir", run, *MULTI, "--seeds", "0,1"], capsys)
    assert code == 2 and err.strip().startswith("error: --seeds with train.distribute=multi_worker")


# ----------------------------------------------------------------------------- local workers


def start_workers(cfg: Path, run: Path, envs: list[dict], extra=()) -> list[subprocess.Popen]:
    return [subprocess.Popen(ANET + ["train", str(cfg), "--run-dir", str(run), *MULTI, *extra],
                             env=dict(ENV, **e), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for e in envs]


def finish(procs) -> list[str]:
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-3000:]
        outs.append(out)
    return outs


def assert_same_weights(*runs: Path) -> None:
    first = weights(runs[0])
    for run in runs[1:]:
        for x, y in zip(first, weights(run), strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_two_tf_config_workers_end_with_identical_weights(tmp_path, data):
    cfg = tiny_config(tmp_path, data, epochs=1)
    run = tmp_path / "run"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    outs = finish(start_workers(cfg, run, [{"TF_CONFIG": tf_config(workers, i)} for i in (0, 1)]))
    assert f"cluster (tf_config): 2 workers: {workers[0]} (chief), {workers[1]}; this process is " \
           "the chief" in outs[0] and "this process is worker 1" in outs[1]
    assert checkpoints.latest(run / "checkpoints").step == 12
    assert not (run / "worker-0").exists() and (run / "worker-1" / "checkpoints").is_dir()
    assert_same_weights(run, run / "worker-1")


@pytest.mark.slow
def test_three_workers_killed_one_resume_from_the_chief_and_end_identical(tmp_path, data):
    cfg = tiny_config(tmp_path, data, epochs=1)
    run = tmp_path / "run"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(3)]
    envs = [{"TF_CONFIG": tf_config(workers, i)} for i in range(3)]
    procs = start_workers(cfg, run, envs)
    index = run / "checkpoints" / checkpoints.INDEX
    deadline = time.time() + 300
    while not (index.is_file() and index.read_text()) and time.time() < deadline:
        time.sleep(0.2)
    assert all(p.poll() is None for p in procs), procs[0].communicate()[0][-3000:]
    procs[2].send_signal(signal.SIGKILL)
    out, _ = procs[0].communicate(timeout=180)  # the chief finds the worker gone and stops
    assert procs[0].returncode == 2, out[-3000:]
    assert "a worker of the cluster is gone" in out and "Start every worker again" in out
    procs[1].kill()  # the scheduler ends the rest of a failed job step
    procs[1].communicate()
    last = checkpoints.latest(run / "checkpoints")
    assert last.step < 12
    outs = finish(start_workers(cfg, run, envs))  # the same command on every worker
    assert f"resuming {run} from {last.name}: step {last.step}" in outs[0]
    for i in (1, 2):
        assert f"resuming {run / f'worker-{i}'} from {last.path}: step {last.step}" in outs[i]
    assert checkpoints.latest(run / "checkpoints").step == 12
    assert_same_weights(run, run / "worker-1", run / "worker-2")


@pytest.mark.slow
def test_slurm_job_step_of_two_local_tasks(tmp_path, data):
    """Two processes with the variables srun gives the tasks of one step on one node."""
    cfg = tiny_config(tmp_path, data, epochs=1)
    run = tmp_path / "run"
    port = _free_ports(2)[0]
    step = {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "2",
            "SLURM_STEP_NODELIST": "localhost", "SLURM_STEP_TASKS_PER_NODE": "2",
            "SLURM_NTASKS": "2"}
    envs = [dict(step, SLURM_PROCID=str(i), SLURM_LOCALID=str(i)) for i in (0, 1)]
    outs = finish(start_workers(cfg, run, envs, ["--set", f"train.cluster_port={port}"]))
    assert f"cluster (slurm): 2 workers: localhost:{port} (chief), localhost:{port + 1}; " \
           "this process is the chief" in outs[0]
    assert "this process is worker 1" in outs[1]
    assert checkpoints.latest(run / "checkpoints").step == 12
    assert_same_weights(run, run / "worker-1")
