"""The command line as a user starts it: ``python -m anet``, shell completion, run-dir option."""

import os
import subprocess
import sys

from anet.cli import cli


def run(args, env=None):
    return subprocess.run([sys.executable, "-m", "anet", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_python_m_anet_runs_the_cli():
    proc = run(["--help"])
    assert proc.returncode == 0 and "Commands:" in proc.stdout and "evaluate" in proc.stdout
    proc = run(["evaluate", "--bogus"])
    assert proc.returncode == 2 and "No such option '--bogus'" in proc.stderr
    assert "Usage: anet evaluate" in proc.stderr


def test_bash_completion_script_and_completions():
    proc = run([], env={"_ANET_COMPLETE": "bash_source"})
    assert proc.returncode == 0 and "complete -o nosort -F" in proc.stdout
    proc = run([], env={"_ANET_COMPLETE": "bash_complete", "COMP_WORDS": "anet eva", "COMP_CWORD": "1"})
    assert proc.stdout.split() == ["plain,evaluate"]
    proc = run([], env={"_ANET_COMPLETE": "bash_complete", "COMP_WORDS": "anet predict --run",
                        "COMP_CWORD": "2"})
    assert "plain,--run-dir" in proc.stdout.split()


def test_every_run_folder_command_takes_run_dir_and_the_ckpt_dir_alias():
    for name in ("train", "evaluate", "visualize", "predict", "export", "report"):
        opts = {o for p in cli.commands[name].params for o in p.opts}
        assert {"--run-dir", "--ckpt-dir"} <= opts, name
