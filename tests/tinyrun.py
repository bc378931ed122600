"""A tiny trained run (seconds on 2 cores) for tests of evaluate, predict and visualize."""

from pathlib import Path

from anet.config import load_config
from tests.tinydata import write_dataset

TINY = """\
model: {{name: {model}, width: 0.0625, fc_units: 32, dropout: 0.0, weight_decay: 0.0}}
data: {{dir: {data}, image_size: {size}}}
train: {{batch_size: 8, epochs: {epochs}, eval_every_steps: 4, checkpoint_every_epochs: 1,
        optimizer: adam, jit_compile: false}}
schedule: {{lrs: [0.003, 0.002, 0.001, 0.001], early_break: {{enabled: false}}}}
run: {{seed: 0}}
"""


def tiny_config(tmp: Path, data: Path, *, model="anetc6", size=67, epochs=3, name="tiny") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(TINY.format(model=model, data=data, size=size, epochs=epochs))
    return path


def make_tiny_run(tmp: Path, *, model="anetc6", size=67, epochs=3, data: Path | None = None,
                  name="tiny") -> Path:
    """Prepare a tiny 3-class dataset (unless given) and train a tiny model; returns the run dir."""
    from anet.train import train

    data = data or write_dataset(tmp / "data", n_per_split={"train": 96, "valid": 24, "test": 24},
                                 size=(40, 24))
    cfg = load_config(tiny_config(tmp, data, model=model, size=size, epochs=epochs, name=name))
    run_dir = tmp / "runs" / name
    train(cfg, run_dir)
    return run_dir
