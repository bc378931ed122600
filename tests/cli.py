"""Run the real `anet` entry point in-process, as the tests of every command do."""

from __future__ import annotations

import os
import sys

from anet.cli import main

CLI_ENV = ("ANET_QUIET", "ANET_TF_LOGS")  # what `anet -q` / `anet -v` set for the process


def run_cli(args, capsys) -> tuple[int, str, str]:
    """Run ``anet ARGS`` in-process through the real entry point; (exit code, stdout, stderr).
    The environment ``-q``/``-v`` set is restored, so they do not leak into later tests."""
    old, env = sys.argv, {k: os.environ.get(k) for k in CLI_ENV}
    sys.argv = ["anet", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = old
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    out = capsys.readouterr()
    return code, out.out, out.err
