"""``anet train-many ... --slurm OUT.sbatch``: the plan as a Slurm job array, one task per
config x seed, each an ``anet train`` of its own run folder (so submitting the file again
resumes what a failure, a time limit or a pre-emption stopped, and skips what finished)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anet.errors import AnetError
from anet.files import atomic_write, check_writable
from anet.plan import Job
from anet.runs import RunPaths

TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")  # sbatch --time formats
MEM = re.compile(r"\d+[KMGT]?")
PARTITION = re.compile(r"[A-Za-z0-9_.,-]+")
STOP_SECONDS = 120  # SIGTERM this long before the time limit: anet writes its checkpoint


@dataclass(frozen=True)
class Resources:
    """What each array task asks Slurm for (``train-many --slurm`` options)."""

    partition: str = ""  # "" = the cluster's default partition
    time: str = "24:00:00"  # per task; a task that hits it resumes when submitted again
    gpus_per_task: int = 1
    cpus_per_task: int = 8  # data pipeline threads
    mem: str = "32G"

    def check(self) -> Resources:
        """Itself, or a one-line AnetError naming the option and a valid value."""
        if self.partition and not PARTITION.fullmatch(self.partition):
            raise AnetError(f"--partition {self.partition!r}: expected a partition name like gpu")
        if not TIME.fullmatch(self.time):
            raise AnetError(f"--time {self.time!r}: expected a Slurm time like 24:00:00, 90 "
                            "(minutes) or 2-00:00:00 (days-hours:minutes:seconds)")
        if not MEM.fullmatch(self.mem):
            raise AnetError(f"--mem {self.mem!r}: expected a size like 32G or 16000M")
        if self.gpus_per_task < 0 or self.cpus_per_task < 1:
            raise AnetError(f"--gpus-per-task {self.gpus_per_task} / --cpus-per-task "
                            f"{self.cpus_per_task}: need GPUs >= 0 and CPUs >= 1")
        return self


def array_script(jobs: Sequence[Job], res: Resources, *, workdir: Path, python: str,
                 name: str, command: str) -> str:
    """The sbatch file: one array task per job (task i runs ``jobs[i]``), run from ``workdir``
    with ``python -m anet``, its output appended to the job's ``train.log``."""
    q = shlex.quote
    header = [
        "#!/bin/bash",
        f"# A Slurm job array written by: {command}",
        f"# Task i runs job i below ({len(jobs)} in all): `anet train` of its own run folder.",
        "# Submit it with sbatch; submit it again to resume what did not finish (a finished",
        "# task ends at once), or one task: sbatch --array=N FILE. Then anet evaluate / report.",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --array=0-{len(jobs) - 1}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={res.cpus_per_task}",
        *([f"#SBATCH --gres=gpu:{res.gpus_per_task}"] if res.gpus_per_task else []),
        f"#SBATCH --mem={res.mem}",
        f"#SBATCH --time={res.time}",
        *([f"#SBATCH --partition={res.partition}"] if res.partition else []),
        "# Pre-empted: queued again (and resumes). Near the time limit: SIGTERM, so anet writes",
        "# its checkpoint and stops.",
        "#SBATCH --requeue",
        f"#SBATCH --signal=B:TERM@{STOP_SECONDS}",
        "set -euo pipefail",
        f"cd {q(str(workdir))}",
        'if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then',
        '  echo "error: SLURM_ARRAY_TASK_ID is not set; submit this file with sbatch (or set it '
        'to run one task here)" >&2; exit 2',
        "fi",
        'task="$SLURM_ARRAY_TASK_ID"',
        'case "$task" in',
    ]
    cases = [f"  {i}) run={q(str(job.run_dir))}; set -- {shlex.join(job.train_args())} ;;"
             for i, job in enumerate(jobs)]
    footer = [
        f'  *) echo "error: array task $task is not in this file (0-{len(jobs) - 1})" >&2; '
        "exit 2 ;;",
        "esac",
        'mkdir -p "$run"',
        f'log="$run/{RunPaths(".").train_log.name}"',
        'echo "array task $task of job ${SLURM_ARRAY_JOB_ID:-none} on $(hostname): anet $*" '
        '>> "$log"',
        "# exec: Slurm's signals reach anet itself",
        f'exec {q(python)} -m anet "$@" >> "$log" 2>&1',
    ]
    return "\n".join(header + cases + footer) + "\n"


def write_array(out: str | Path, jobs: Sequence[Job], res: Resources, *, python: str,
                command: str, force: bool = False) -> Path:
    """Write :func:`array_script` to ``out`` atomically (executable); an existing file only
    with ``force``. Prints what each task runs and how to submit it."""
    out = Path(out)
    res.check()
    if out.is_dir():
        raise AnetError(f"--slurm {out}: is a folder; give a file name like jobs.sbatch")
    if out.exists() and not force:
        raise AnetError(f"--slurm {out}: exists; add --force to replace it")
    check_writable(out.parent, "choose another --slurm path")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", out.stem) or "anet"
    text = array_script(jobs, res, workdir=Path.cwd(), python=python, name=name, command=command)
    atomic_write(out, text)
    out.chmod(0o755)
    for i, job in enumerate(jobs):
        print(f"task {i}: {job.name} -> {job.run_dir}")
    print(f"wrote {out}: {len(jobs)} array task{'s' if len(jobs) != 1 else ''}; submit with "
          f"`sbatch {out}` (again to resume)")
    return out
