"""A tiny trained run (seconds on 2 cores) for tests of evaluate, predict and visualize."""

from pathlib import Path

import yaml

from anet.config import load_config
from tests.tinydata import write_dataset

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def tiny_config(tmp: Path, data: Path, *, model="anetc6", size=67, epochs=3, name="tiny",
                **data_keys) -> Path:
    """``configs/tiny.yaml`` with this model, dataset, input size, epochs and other ``data``
    keys (e.g. ``normalize``, ``resize``), as ``tmp/name.yaml``."""
    raw = yaml.safe_load(TINY.read_text())
    raw["model"]["name"], raw["train"]["epochs"] = model, epochs
    raw["data"].update(dir=str(data), image_size=size, **data_keys)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def make_tiny_run(tmp: Path, *, model="anetc6", size=67, epochs=3, data: Path | None = None,
                  name="tiny", **data_keys) -> Path:
    """Prepare a tiny 3-class dataset (unless given) and train a tiny model; returns the run dir."""
    from anet.train import train

    data = data or write_dataset(tmp / "data", n_per_split={"train": 96, "valid": 24, "test": 24},
                                 size=(40, 24))
    cfg = load_config(tiny_config(tmp, data, model=model, size=size, epochs=epochs, name=name,
                                  **data_keys))
    run_dir = tmp / "runs" / name
    train(cfg, run_dir)
    return run_dir
