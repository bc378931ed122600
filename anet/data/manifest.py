"""Reading a prepared dataset's ``dataset.json`` (no TensorFlow: tables and reports use it)."""

from __future__ import annotations

import json
from pathlib import Path

from anet.errors import AnetError


def load_manifest(data_dir: str | Path) -> dict:
    """Read ``dataset.json`` of a prepared dataset, with a clear error when it is missing."""
    path = Path(data_dir) / "dataset.json"
    if not path.is_file():
        raise AnetError(
            f"{path}: no prepared dataset (data.dir={data_dir}); run `anet prepare` first "
            "or set data.dir to its output folder"
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AnetError(f"{path}: not valid JSON ({e}); re-run `anet prepare --force`") from None
