"""train-many's plan (jobs, GPUs, the queue) as golden tables, the Slurm array script (golden
text, its task command run here with SLURM_ARRAY_TASK_ID), --gpus on CPU, and bad inputs."""

import os
import subprocess
from pathlib import Path

import pytest

from anet import checkpoints
from anet.errors import AnetError
from anet.plan import Job, gpu_env, next_starts, plan
from anet.slurm import Resources, array_script
from tests.cli import run_cli
from tests.test_train import ANET, ENV
from tests.tinydata import write_dataset
from tests.tinyrun import tiny_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"),
                         n_per_split={"train": 48, "valid": 12, "test": 12})


def test_plan_is_configs_by_seeds_in_the_folders_a_local_run_uses(tmp_path, data):
    a = str(tiny_config(tmp_path, data, name="a"))
    b = str(tiny_config(tmp_path, data, name="b"))
    assert plan([a, b], ["train.epochs=2"]) == (
        Job(a, Path("runs/a"), ("train.epochs=2",)), Job(b, Path("runs/b"), ("train.epochs=2",)))
    jobs = plan([a, b], (), (3, 1))
    assert [(j.config, str(j.run_dir), j.overrides, j.seed) for j in jobs] == [
        (a, "runs/a/seed-3", ("run.seed=3",), 3), (a, "runs/a/seed-1", ("run.seed=1",), 1),
        (b, "runs/b/seed-3", ("run.seed=3",), 3), (b, "runs/b/seed-1", ("run.seed=1",), 1)]
    assert jobs[0].train_args() == ["train", a, "--run-dir", "runs/a/seed-3", "--set", "run.seed=3"]
    assert jobs[0].name == f"{a} seed 3"
    with pytest.raises(AnetError, match="two configs share a run directory"):
        plan([a, b], [f"run.dir={tmp_path}/x"])
    with pytest.raises(AnetError, match="train-many: no CONFIG given"):
        plan([], ())
    with pytest.raises(AnetError, match="multi_worker needs one process per worker"):
        plan([a], ["train.distribute=multi_worker"])


def test_gpus_queue_golden():
    """Five jobs on GPUs 0,1,2: the first three start at once, each freed GPU takes the next;
    after a stop request nothing starts."""
    jobs = [Job(f"c{i}.yaml", Path(f"runs/c{i}")) for i in range(5)]
    slots = [0, 1, 2]
    starts = next_starts(jobs, {}, slots, stopping=False)
    assert [(j.config, g) for j, g in starts] == [("c0.yaml", 0), ("c1.yaml", 1), ("c2.yaml", 2)]
    running = {0: jobs[0], 2: jobs[2]}  # the job on GPU 1 finished
    assert [(j.config, g) for j, g in next_starts(jobs[3:], running, slots, False)] == \
        [("c3.yaml", 1)]
    running = {0: jobs[0], 1: jobs[3], 2: jobs[2]}
    assert next_starts(jobs[4:], running, slots, False) == []  # every GPU busy: c4 waits
    assert next_starts(jobs[4:], {1: jobs[3]}, slots, stopping=True) == []
    assert [(j.config, g) for j, g in next_starts(jobs[4:], {}, [None], False)] == \
        [("c4.yaml", None)]  # without GPUs: one slot, one job after another


@pytest.mark.parametrize("gpu, visible, env", [
    (None, "3", {}),
    (0, None, {"CUDA_VISIBLE_DEVICES": "0"}),
    (2, None, {"CUDA_VISIBLE_DEVICES": "2"}),
    (0, "4,5,6", {"CUDA_VISIBLE_DEVICES": "4"}),  # --gpus counts the GPUs train-many sees
    (2, "4, 5, 6", {"CUDA_VISIBLE_DEVICES": "6"}),
])
def test_gpu_env_golden(gpu, visible, env):
    assert gpu_env(gpu, visible) == env


def test_gpu_env_errors():
    with pytest.raises(AnetError, match=r"--gpus: GPU 3 is not among the 3 that "
                                        r"CUDA_VISIBLE_DEVICES=4,5,6 shows \(0-2\)"):
        gpu_env(3, "4,5,6")
    with pytest.raises(AnetError, match="CUDA_VISIBLE_DEVICES is empty"):
        gpu_env(0, "")


GOLDEN_SBATCH = """\
#!/bin/bash
# A Slurm job array written by: anet train-many a.yaml --slurm jobs.sbatch
# Task i runs job i below (2 in all): `anet train` of its own run folder.
# Submit it with sbatch; submit it again to resume what did not finish (a finished
# task ends at once), or one task: sbatch --array=N FILE. Then anet evaluate / report.
#SBATCH --job-name=jobs
#SBATCH --array=0-1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=2-00:00:00
#SBATCH --partition=gpu
# Pre-empted: queued again (and resumes). Near the time limit: SIGTERM, so anet writes
# its checkpoint and stops.
#SBATCH --requeue
#SBATCH --signal=B:TERM@120
set -euo pipefail
cd '/home/me/my exp'
if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "error: SLURM_ARRAY_TASK_ID is not set; submit this file with sbatch (or set it to run \
one task here)" >&2; exit 2
fi
task="$SLURM_ARRAY_TASK_ID"
case "$task" in
  0) run=runs/a/seed-0; set -- train a.yaml --run-dir runs/a/seed-0 --set 'x=1 2' --set run.seed=0 ;;
  1) run='runs/b c'; set -- train 'b c.yaml' --run-dir 'runs/b c' ;;
  *) echo "error: array task $task is not in this file (0-1)" >&2; exit 2 ;;
esac
mkdir -p "$run"
log="$run/train.log"
echo "array task $task of job ${SLURM_ARRAY_JOB_ID:-none} on $(hostname): anet $*" >> "$log"
# exec: Slurm's signals reach anet itself
exec /opt/venv/bin/python -m anet "$@" >> "$log" 2>&1
"""


def test_array_script_golden():
    jobs = [Job("a.yaml", Path("runs/a/seed-0"), ("x=1 2", "run.seed=0"), 0),
            Job("b c.yaml", Path("runs/b c"))]
    res = Resources(partition="gpu", time="2-00:00:00", gpus_per_task=0, cpus_per_task=4, mem="8G")
    text = array_script(jobs, res, workdir=Path("/home/me/my exp"), python="/opt/venv/bin/python",
                        name="jobs", command="anet train-many a.yaml --slurm jobs.sbatch")
    assert text == GOLDEN_SBATCH
    gpu = array_script(jobs, Resources(), workdir=Path("/w"), python="p", name="n", command="c")
    assert "#SBATCH --gres=gpu:1\n" in gpu and "--partition" not in gpu
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0  # valid bash


@pytest.mark.parametrize("args, message", [
    (["--slurm", "x.sbatch"], "error: train-many: no CONFIG given; e.g. anet train-many"),
    (["CFG", "--gpus", "0,x"], "error: --gpus '0,x': expected comma-separated GPU indices like 0,1,2"),
    (["CFG", "--partition", "gpu"], "error: --partition is an option of --slurm OUT.sbatch"),
    (["CFG", "--slurm", "x.sbatch", "--gpus", "0"], "error: --gpus runs the jobs here and --slurm"),
    (["CFG", "--slurm", "x.sbatch", "--time", "1 day"], "error: --time '1 day': expected a Slurm time"),
    (["CFG", "--slurm", "x.sbatch", "--mem", "lots"], "error: --mem 'lots': expected a size like 32G"),
    (["CFG", "--slurm", "x.sbatch", "--cpus-per-task", "0"], "error: --gpus-per-task 1 / --cpus-per-task 0"),
    (["CFG", "--slurm", "x.sbatch", "--seeds", "a"], "error: --seeds 'a': expected seeds like 0,1,2"),
])
def test_train_many_bad_inputs_are_one_line(tmp_path, data, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    cfg = str(tiny_config(tmp_path, data))
    code, out, err = run_cli(["train-many", *[cfg if a == "CFG" else a for a in args]], capsys)
    assert code == 2 and err.strip().startswith(message) and "\n" not in err.strip(), err
    assert not (tmp_path / "x.sbatch").exists() and not (tmp_path / "runs").exists()


def test_slurm_script_refuses_to_overwrite_without_force(tmp_path, data, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = str(tiny_config(tmp_path, data))
    out = tmp_path / "jobs.sbatch"
    out.write_text("mine\n")
    code, _, err = run_cli(["train-many", cfg, "--slurm", out], capsys)
    assert code == 2 and err.strip() == f"error: --slurm {out}: exists; add --force to replace it"
    assert out.read_text() == "mine\n"
    code, stdout, _ = run_cli(["train-many", cfg, "--seeds", "0,1", "--slurm", out, "--force",
                               "--partition", "gpu"], capsys)
    assert code == 0 and "#SBATCH --array=0-1\n#" in out.read_text()
    assert os.access(out, os.X_OK) and not list(tmp_path.glob(".jobs.tmp-*"))
    assert f"task 1: {cfg} seed 1 -> runs/tiny/seed-1" in stdout
    assert f"wrote {out}: 2 array tasks; submit with `sbatch {out}`" in stdout


@pytest.mark.slow
def test_array_task_runs_its_job_here_and_again_resumes_nothing(tmp_path, data, capsys,
                                                                monkeypatch):
    a = str(tiny_config(tmp_path, data, epochs=1, name="a"))
    b = str(tiny_config(tmp_path, data, epochs=1, name="b"))
    sbatch = tmp_path / "jobs.sbatch"
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train-many", a, b, "--seeds", "0,1", "--slurm", sbatch,
                            "--set", "train.max_steps=2"], capsys)
    assert code == 0, err
    env = {k: v for k, v in ENV.items() if not k.startswith("SLURM_")}
    out = subprocess.run(["bash", str(sbatch)], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.startswith("error: SLURM_ARRAY_TASK_ID is not set")
    out = subprocess.run(["bash", str(sbatch)], env=dict(env, SLURM_ARRAY_TASK_ID="4"),
                         capture_output=True, text=True)
    assert out.returncode == 2 and "error: array task 4 is not in this file (0-3)" in out.stderr
    task = dict(env, SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_JOB_ID="77")
    for _ in range(2):  # a second submission finds the task finished
        out = subprocess.run(["bash", str(sbatch)], env=task, cwd="/", capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    run = tmp_path / "runs" / "b" / "seed-0"  # task 2 = config b, seed 0, as a local run
    state = checkpoints.latest(run / "checkpoints")
    assert state.step == 2 and state.config["run"]["seed"] == 0
    log = (run / "train.log").read_text()
    assert "array task 2 of job 77 on" in log and "already finished at step 2" in log
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["b"]  # only that task ran


@pytest.mark.slow
def test_train_many_gpus_runs_two_at_once_and_queues_the_third(tmp_path, data):
    """On this CPU machine --gpus 0,1 still runs two jobs at once (each on the CPU)."""
    names = ["a", "b", "c"]
    cfgs = [str(tiny_config(tmp_path, data, epochs=1, name=n)) for n in names]
    env = {k: v for k, v in ENV.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run(ANET + ["train-many", *cfgs, "--gpus", "0,1", "--set", "train.max_steps=3"],
                         env=env, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("start ")]
    dones = [i for i, line in enumerate(lines) if line.startswith("done: ")]
    assert lines[starts[0]] == f"start {cfgs[0]} on GPU 0 (CUDA_VISIBLE_DEVICES=0) -> runs/a/train.log"
    assert lines[starts[1]].startswith(f"start {cfgs[1]} on GPU 1 (CUDA_VISIBLE_DEVICES=1)")
    assert starts[1] < dones[0] < starts[2]  # a and b together; c when a GPU is free
    for name in names:
        assert checkpoints.latest(tmp_path / "runs" / name / "checkpoints").step == 3
