"""The `anet` command line: parse arguments, load the config, call one library function.

No logic lives here. Library modules are imported inside each command so `anet --help`
does not pay TensorFlow's start-up cost.
"""

from __future__ import annotations

import os
import sys

import click

from anet.errors import AnetError

DATASETS = ("mnist", "fashion-mnist", "cifar", "karyotype", "synthetic-karyotype")

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config key, e.g. --set train.batch_size=32 (repeatable).",
)


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _not_yet(name: str) -> None:
    click.echo(f"error: `anet {name}` is not yet implemented", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anet")
def cli() -> None:
    """Train and compare AlexNet, ANet-c6 and VGG16 image classifiers from YAML configs."""
    _quiet_tf()


@cli.command()
@click.option("--dataset", required=True, type=click.Choice(DATASETS), help="Which dataset to prepare.")
@click.option("--source", type=click.Path(), default=None,
              help="Raw data: IDX folder (mnist), CIFAR folder or .tar.gz, TIF tree or CSV manifest.")
@click.option("--out", type=click.Path(), default=None, help="Output folder (default data/NAME).")
@click.option("--valid-ratio", type=float, default=0.05, show_default=True)
@click.option("--test-ratio", type=float, default=0.05, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Split (and synthetic) seed.")
@click.option("--cells", type=int, default=200, show_default=True,
              help="synthetic-karyotype only: number of cells (46 chromosomes each).")
@click.option("--workers", type=int, default=0, help="Worker processes (0 = one per core).")
@click.option("--force", is_flag=True, help="Rebuild even if a finished dataset exists at --out.")
def prepare(dataset, source, out, valid_ratio, test_ratio, seed, cells, workers, force):
    """Raw dataset -> JPG tree -> stratified TFRecord splits + dataset.json."""
    from anet.data.prepare import prepare as run_prepare

    run_prepare(dataset, source=source, out=out, valid_ratio=valid_ratio, test_ratio=test_ratio,
                seed=seed, cells=cells, workers=workers, force=force)


@cli.command()
def models() -> None:
    """Table of the architectures: input, parameters, forward GFLOPs per image."""
    from anet.models import models_table

    click.echo(models_table())


@cli.command()
@click.argument("config", type=click.Path())
@set_option
def summary(config, overrides) -> None:
    """Layer table (name, output shape, parameters) of one experiment's model."""
    from anet.config import load_config
    from anet.models import config_summary

    click.echo(config_summary(load_config(config, overrides)))


@cli.command()
@click.argument("config", type=click.Path())
@set_option
@click.option("--run-dir", type=click.Path(), default=None, help="Run directory (default runs/<config name>).")
@click.option("--gpu", type=int, default=None, help="Run on this one GPU (others hidden).")
def train(config, overrides, run_dir, gpu) -> None:
    """Train one experiment; re-running on the same run directory resumes it.

    Ctrl-C writes a checkpoint and exits; the same command continues from it.
    """
    from anet.config import load_config
    from anet.devices import select_gpu

    cfg = load_config(config, overrides)
    select_gpu(gpu)  # before TensorFlow initialises its devices
    from anet.train import train as run_train

    run_train(cfg, run_dir)


@cli.command("train-many")
@click.argument("configs", nargs=-1, required=True, type=click.Path())
@set_option
@click.option("--gpus", default="", metavar="0,1,2",
              help="One model per GPU, in parallel; without GPUs the runs go one after another.")
def train_many(configs, overrides, gpus) -> None:
    """Train several experiments, one model per GPU (each in its own run dir and train.log)."""
    from anet.devices import parse_gpus, train_many as run_many

    sys.exit(run_many(list(configs), list(overrides), parse_gpus(gpus)))


@cli.command()
def evaluate() -> None:
    """Score every checkpoint on valid, test the best one."""
    _not_yet("evaluate")


@cli.command()
def visualize() -> None:
    """Layer outputs as images."""
    _not_yet("visualize")


@cli.command()
def report() -> None:
    """Paper Table 1/Table 2 for datasets and runs."""
    _not_yet("report")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if e.exit_code in (1, 2) else e.exit_code)
    except AnetError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
