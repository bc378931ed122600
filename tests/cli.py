"""Run the real `anet` entry point in-process, as the tests of every command do."""

from __future__ import annotations

import sys

from anet.cli import main


def run_cli(args, capsys) -> tuple[int, str, str]:
    """Run ``anet ARGS`` in-process through the real entry point; (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["anet", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err
