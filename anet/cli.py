"""The `anet` command line: parse arguments, load the config, call one library function.

No logic lives here. Library modules are imported inside each command so `anet --help`
does not pay TensorFlow's start-up cost.
"""

from __future__ import annotations

import os
import sys

import click

from anet.errors import AnetError

DATASETS = ("mnist", "fashion-mnist", "cifar", "karyotype", "synthetic-karyotype", "folder")

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config key, e.g. --set train.batch_size=32 (repeatable).",
)


# These never start TensorFlow (train-many only to count the GPUs when --gpus is not given).
LIGHT_COMMANDS = {"models", "summary", "config", "report", "train-many", None}


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up chatter (oneDNN/CUDA notes) kept off stderr.

    TF 2.21 prints those through absl before TF_CPP_MIN_LOG_LEVEL applies, so fd 2 is muted
    only for the import; Python errors still surface. `anet -v` (ANET_TF_LOGS=1) shows everything.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("ANET_TF_LOGS") or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anet")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bars or notes: only results, warnings and errors.")
@click.option("-v", "--verbose", is_flag=True, help="Also show TensorFlow's start-up log lines.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """Train and compare AlexNet, ANet-c6 and VGG16 image classifiers from YAML configs.

    Progress goes to stderr: a bar on a terminal, a plain line per ~10% or 30 s otherwise
    (log files get no carriage returns). -q and -v go before the command: anet -q train ...
    """
    if quiet:  # the environment, so processes that train-many starts inherit it
        os.environ["ANET_QUIET"] = "1"
    if verbose:
        os.environ["ANET_TF_LOGS"] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    if ctx.invoked_subcommand not in LIGHT_COMMANDS and "--help" not in sys.argv and "-h" not in sys.argv:
        _import_tensorflow_quietly()


@cli.command()
@click.option("--dataset", required=True, type=click.Choice(DATASETS), help="Which dataset to prepare.")
@click.option("--source", type=click.Path(), default=None,
              help="Raw data: IDX folder (mnist), CIFAR folder or .tar.gz, TIF tree or CSV manifest; "
                   "folder: a folder of class folders (any names) or a CSV manifest.")
@click.option("--manifest", type=click.Path(), default=None, metavar="CSV",
              help="folder only: a CSV path,label[,group][,split] (paths relative to it) instead "
                   "of --source.")
@click.option("--channels", type=click.Choice(("1", "3")), default=None,
              help="folder only: 1 (gray) or 3 (colour); default 3 when any image is colour.")
@click.option("--out", type=click.Path(), default=None,
              help="Output folder (default data/NAME; folder: data/<source folder's name>).")
@click.option("--valid-ratio", type=float, default=0.05, show_default=True)
@click.option("--test-ratio", type=float, default=0.05, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Split (and synthetic) seed.")
@click.option("--cells", type=int, default=200, show_default=True,
              help="synthetic-karyotype only: number of cells (46 chromosomes each).")
@click.option("--abnormal", type=float, default=0.0, show_default=True,
              help="synthetic-karyotype only: fraction of abnormal cells (+13, +18, +21, 45,X, "
                   "47,XXY, 47,XYY, del(5)(p14), t(9;22)(q34;q11)).")
@click.option("--workers", type=int, default=0, help="Worker processes (0 = one per core).")
@click.option("--force", is_flag=True, help="Rebuild even if a finished dataset exists at --out.")
def prepare(dataset, source, manifest, channels, out, valid_ratio, test_ratio, seed, cells,
            abnormal, workers, force):
    """Raw dataset -> JPG tree -> stratified TFRecord splits + dataset.json.

    --dataset folder takes your own labelled images: class folders, or a CSV manifest.
    """
    from anet.data.prepare import prepare as run_prepare

    run_prepare(dataset, source=source, out=out, valid_ratio=valid_ratio, test_ratio=test_ratio,
                seed=seed, cells=cells, workers=workers, force=force, abnormal=abnormal,
                channels=int(channels) if channels else None, manifest=manifest)


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


@cli.command("config")
@click.argument("config", type=click.Path())
@set_option
def config_command(config, overrides) -> None:
    """Print the resolved config (YAML defaults filled in, --set applied, validated)."""
    from anet.config import dump_yaml, load_config

    click.echo(dump_yaml(load_config(config, overrides)), nl=False)


@cli.command()
@click.argument("config", type=click.Path())
@set_option
@click.option("--run-dir", "--ckpt-dir", "run_dir", type=click.Path(), default=None,
              help="Run directory (default run.dir, else runs/<config name>); --ckpt-dir is an alias.")
@click.option("--gpu", type=int, default=None, help="Run on this one GPU (others hidden).")
@click.option("--seeds", default=None, metavar="0,1,2",
              help="One run per seed in RUN/seed-N (run.seed=N), one after another; "
                   "evaluate and report take RUN as one experiment (mean ± std).")
def train(config, overrides, run_dir, gpu, seeds) -> None:
    """Train one experiment; re-running on the same run directory resumes it.

    Ctrl-C finishes the current step, writes a checkpoint and exits; the same command
    continues from it (a second Ctrl-C aborts without a checkpoint).
    """
    from anet.config import load_config
    from anet.devices import select_gpu
    from anet.runs import parse_seeds

    cfg = load_config(config, overrides)
    seed_list = parse_seeds(seeds) if seeds is not None else None
    select_gpu(gpu)  # before TensorFlow initialises its devices
    from anet.train import train as run_train
    from anet.train import train_seeds

    if seed_list is None:
        run_train(cfg, run_dir)
    else:
        train_seeds(cfg, run_dir, seed_list)


@cli.command("train-many")
@click.argument("configs", nargs=-1, type=click.Path())
@set_option
@click.option("--gpus", default=None, metavar="0,1,2",
              help="One job per GPU at a time (CUDA_VISIBLE_DEVICES per job), the rest queued; "
                   "default: every visible GPU, or one job after another without GPUs.")
@click.option("--seeds", default=None, metavar="0,1,2",
              help="Each config once per seed, in RUN/seed-N (run.seed=N).")
@click.option("--slurm", "slurm_out", type=click.Path(), default=None, metavar="OUT.sbatch",
              help="Run nothing: write a Slurm job array, one task per config x seed, each "
                   "`anet train` of its own run folder (submit it again to resume).")
@click.option("--partition", default=None, help="--slurm: the partition (default: the "
              "cluster's).")
@click.option("--time", "time_limit", default=None, metavar="24:00:00",
              help="--slurm: time limit per task (default 24:00:00).")
@click.option("--gpus-per-task", type=int, default=None, help="--slurm: GPUs per task (default 1).")
@click.option("--cpus-per-task", type=int, default=None, help="--slurm: CPUs per task (default 8).")
@click.option("--mem", default=None, metavar="32G", help="--slurm: memory per task (default 32G).")
@click.option("--force", is_flag=True, help="--slurm: replace an existing OUT.sbatch.")
def train_many(configs, overrides, gpus, seeds, slurm_out, partition, time_limit, gpus_per_task,
               cpus_per_task, mem, force) -> None:
    """Train several experiments: one job per config (x seed), each `anet train` of its own run
    folder with its own train.log; one per GPU in parallel, or as a Slurm job array.

    Ctrl-C (or SIGTERM): every running job writes its checkpoint and no further job starts
    (again to abort them); the same command resumes.
    """
    from anet.plan import plan
    from anet.runs import parse_seeds

    slurm_only = {"--partition": partition, "--time": time_limit, "--gpus-per-task": gpus_per_task,
                  "--cpus-per-task": cpus_per_task, "--mem": mem, "--force": force or None}
    if slurm_out is None and (given := [k for k, v in slurm_only.items() if v is not None]):
        raise AnetError(f"{given[0]} is an option of --slurm OUT.sbatch; add --slurm or leave it out")
    if slurm_out is not None and gpus is not None:
        raise AnetError("--gpus runs the jobs here and --slurm writes them for a cluster; use one")
    jobs = plan(configs, overrides, parse_seeds(seeds) if seeds is not None else ())
    if slurm_out is not None:
        import shlex

        from anet.slurm import Resources, write_array

        res = Resources(**{k: v for k, v in dict(
            partition=partition, time=time_limit, gpus_per_task=gpus_per_task,
            cpus_per_task=cpus_per_task, mem=mem).items() if v is not None})
        write_array(slurm_out, jobs, res, python=sys.executable, force=force,
                    command=shlex.join(["anet", *sys.argv[1:]]))
        return
    from anet.devices import parse_gpus
    from anet.devices import train_many as run_many

    if gpus is None:
        _import_tensorflow_quietly()  # to count the visible GPUs
    sys.exit(run_many(jobs, parse_gpus(gpus or "")))


run_dir_option = click.option(
    "--run-dir", "--ckpt-dir", "run_dir", type=click.Path(), default=None,
    help="Run directory (default: the most recent run under runs/); --ckpt-dir is an alias.")


@cli.command()
@run_dir_option
@click.option("--split", type=click.Choice(("valid", "test")), default="test", show_default=True,
              help="Split reported for the chosen checkpoint (selection always uses valid).")
@click.option("--ckpt", default=None, help="Score only this checkpoint (name or step); no selection.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Evaluation batch size (default: the config's train.batch_size).")
@click.option("--train-batches", type=click.IntRange(min=0), default=0, show_default=True,
              help="Batches of the train split for train accuracy (0 = whole split).")
@click.option("--predictions", type=click.Path(), default=None, metavar="CSV",
              help="Also write per-image predictions (file, cell, split, true, predicted, "
                   "probability) of valid and --split to this CSV.")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Factor that brings the dataset's images to the training images' scale "
                   "(e.g. 0.5 for twice the magnification); data.resize: pad runs only.")
@click.option("--karyograms", type=click.IntRange(min=0), default=0, show_default=True,
              help="Karyotype datasets: draw the karyograms of this many cells of the split "
                   "(RUN/karyograms/DATASET-SPLIT-CELL.png).")
@set_option
def evaluate(run_dir, split, ckpt, batch_size, train_batches, predictions, scale, karyograms,
             overrides) -> None:
    """Score every checkpoint on valid, test the best one; writes eval.json and plots.

    eval.json holds accuracy, top-5 accuracy (n/a with 5 classes or fewer) and macro-F1 per
    split; confusion.png shows counts beside row-normalised; both also go to RUN/tensorboard.

    With --set data.dir=OTHER the run's selected checkpoint is scored on another prepared
    dataset (read with the run's own input contract) and written to eval-NAME.json; the
    run's eval.json is kept.
    """
    from anet.evaluate import evaluate as run_evaluate
    from anet.runs import pick_run

    run_evaluate(pick_run(run_dir), split=split, ckpt=ckpt, batch_size=batch_size or 0,
                 train_batches=train_batches, scale=scale, predictions=predictions,
                 karyograms=karyograms, overrides=overrides)


class _ManyValues(click.Command):
    """Lets ``--images A B`` and ``--compare RUN RUN`` take several values (click takes one):
    each value after such an option, up to the next option, is given its own copy of it."""

    many = ("--images", "--compare")

    def parse_args(self, ctx, args):
        out, opt = [], None
        for a in args:
            if a.startswith("-"):
                opt = a if a in self.many else None
            elif opt and out[-1] != opt:
                out.append(opt)
            out.append(a)
        return super().parse_args(ctx, out)


@cli.command(cls=_ManyValues)
@run_dir_option
@click.option("--layers", default="conv1,pool1,pool2,pool_last", show_default=True,
              help="Comma-separated layers; conv1 is conv1_1 on vgg16, pool_last the last pool.")
@click.option("--samples", type=click.IntRange(min=1), default=2, show_default=True,
              help="The first N examples of --split.")
@click.option("--split", type=click.Choice(("train", "valid", "test")), default="test",
              show_default=True)
@click.option("--images", multiple=True, type=click.Path(), metavar="FILE...",
              help="JPG/PNG/TIF files to use instead of --split samples.")
@click.option("--out", type=click.Path(), default=None, help="Output folder (default RUN/visualize).")
@click.option("--ckpt", default=None,
              help="Checkpoint name or step (default: evaluate's choice, else best valid, else latest).")
@click.option("--compare", multiple=True, type=click.Path(), metavar="RUN...",
              help="Several runs on one dataset: one figure per sample, a row per run.")
def visualize(run_dir, layers, samples, split, images, out, ckpt, compare) -> None:
    """Layer outputs as image grids, an overview per sample and a smoothness table (Figure 4)."""
    from anet.visualize import visualize as run_visualize

    run_visualize(run_dir, layers=layers, samples=samples, split=split, images=images, out=out,
                  ckpt=ckpt, compare=compare)


@cli.command()
@click.argument("runs", nargs=-1, type=click.Path())
@click.option("--run-dir", "--ckpt-dir", "run_dirs", multiple=True, type=click.Path(), metavar="RUN",
              help="A run directory, as for the other commands (repeatable; adds to RUNS).")
@click.option("--dataset", "datasets", multiple=True, type=click.Path(), metavar="DIR",
              help="A prepared dataset folder for Table 1 (repeatable).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of markdown.")
@click.option("--html", "html_out", type=click.Path(), default=None, metavar="OUT.html",
              help="One self-contained page (images embedded): Tables 1-2, Figures 3-4, per-run "
                   "confusion/per-class/errors, methods. Runs not evaluated are listed, not dropped.")
@click.option("--md", "md_out", type=click.Path(), default=None, metavar="OUT.md",
              help="The same report as Markdown, its images in OUT_files/ beside it.")
@click.option("--visualize", is_flag=True,
              help="With --html/--md: run `anet visualize` (--compare across models) for Figure 4 "
                   "where the runs have none.")
@click.option("--per-seed", is_flag=True,
              help="A row per seed run instead of one mean ± std row per --seeds folder.")
def report(runs, run_dirs, datasets, as_csv, html_out, md_out, visualize, per_seed) -> None:
    """Paper Table 2 for evaluated RUNS (from eval.json: accuracy per split, top-5 and
    macro-F1 on valid and test) and Table 1 for --dataset folders;
    --html/--md: the whole comparison as one page. A RUN holding seed-N folders (anet train
    --seeds) is one experiment: mean ± std (n) over its seeds; --per-seed lists each."""
    runs = tuple(runs) + tuple(run_dirs)
    if per_seed and (html_out or md_out):
        raise AnetError("--per-seed is for the text table; the --html/--md page already lists "
                        "every seed run in its per-run table")
    if visualize and not (html_out or md_out):
        raise AnetError("--visualize makes Figure 4 for the page; add --html OUT.html or --md OUT.md")
    if html_out or md_out:
        if visualize:
            _import_tensorflow_quietly()
        from anet.report_html import write_report

        write_report(list(runs), html_out=html_out, md_out=md_out, visualize=visualize,
                     datasets=datasets, as_csv=as_csv)
        return
    from anet.report import report as make_report

    click.echo(make_report(runs, datasets, as_csv=as_csv, per_seed=per_seed))


@cli.command()
@run_dir_option
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--ckpt", default=None,
              help="Checkpoint name or step (default: evaluate's choice, else best valid, else latest).")
@click.option("--out", type=click.Path(), default=None,
              help="Also write the predictions as CSV (path, top-k classes and probabilities, "
                   "flags, run, checkpoint; unreadable files with their reason).")
@click.option("--min-confidence", type=float, default=0.5, show_default=True,
              help="Flag predictions whose top probability is below this (low-confidence).")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Factor that brings these images to the training images' scale (e.g. 0.5 "
                   "for images taken at twice the magnification); data.resize: pad runs only.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document (run, checkpoint, per image top-k and flags, skipped "
                   "files) instead of the TSV table.")
@click.option("--cell", type=click.Path(), default=None, metavar="DIR",
              help="Instead of IMAGES: one cell's chromosome crops (a folder, not recursive): "
                   "labels after the per-cell assignment and the cell's ISCN call.")
@click.option("--karyogram", "karyogram_out", type=click.Path(), default=None, metavar="OUT.png",
              help="With --cell: also draw the cell's karyogram to OUT.png.")
@set_option
def predict(run_dir, images, top_k, ckpt, out, min_confidence, scale, as_json, cell,
            karyogram_out, overrides) -> None:
    """Top-k classes for JPG/PNG/TIF IMAGES: files, folders (recursive) or glob patterns.

    stdout holds only the predictions: a TSV table (path, class_1, prob_1, ..., [polarity,
    polarity_prob,] flags) or, with --json, one JSON document; notices and the summary go to
    stderr. Unreadable files are reported and skipped; the exit code is then 1.

    --cell DIR: a TSV line per chromosome (path, label after the per-cell assignment, argmax
    label[, polarity]) and `call: ISCN`; an unreadable file is an error (the call needs them all).
    """
    if cell is not None:
        if images or out or as_json:
            what = "IMAGES" if images else "--out" if out else "--json"
            raise AnetError(f"--cell {cell}: {what} does not apply to one cell's call; drop it")
        from anet.predict_cell import predict_cell

        predict_cell(run_dir, cell, karyogram=karyogram_out, ckpt=ckpt, scale=scale,
                     overrides=overrides)
        return
    if karyogram_out is not None:
        raise AnetError("--karyogram draws one cell's karyogram; add --cell DIR")
    from anet.predict import predict as run_predict

    result = run_predict(run_dir, list(images), top_k=top_k, ckpt=ckpt, out=out,
                         min_confidence=min_confidence, scale=scale, overrides=overrides,
                         as_json=as_json)
    sys.exit(1 if result.skipped else 0)


@cli.command()
@click.argument("folder", type=click.Path())
@run_dir_option
@click.option("--out", type=click.Path(), default=None,
              help="Karyogram PNG (default FOLDER-karyogram.png beside the folder).")
@click.option("--ckpt", default=None,
              help="Checkpoint name or step (default: evaluate's choice, else best valid, else latest).")
@set_option
def karyogram(folder, run_dir, out, ckpt, overrides) -> None:
    """One cell's crops (FOLDER) -> labels after per-cell assignment, its call, its karyogram."""
    from pathlib import Path

    from anet.predict_cell import predict_cell

    folder = Path(folder)
    predict_cell(run_dir, folder, ckpt=ckpt, overrides=overrides,
                 karyogram=out or folder.resolve().with_name(f"{folder.resolve().name}-karyogram.png"))


@cli.command()
@run_dir_option
@click.option("--out", required=True, type=click.Path(), help="Output folder of the SavedModel.")
@click.option("--ckpt", default=None,
              help="Checkpoint name or step (default: evaluate's choice, else best valid, else latest).")
@click.option("--tflite", is_flag=True,
              help="Also write model.tflite (TFLite/LiteRT, the Keras model: preprocessed "
                   "[N, S, S, C] inputs -> probabilities).")
@set_option
def export(run_dir, out, ckpt, tflite, overrides) -> None:
    """SavedModel (signatures for encoded images and for decoded pixels) + model.keras +
    export.json (classes, input contract, checkpoint, accuracies, dataset, anet version)."""
    from anet.export import export as run_export

    run_export(run_dir, out, ckpt=ckpt, overrides=overrides, tflite=tflite)


def main() -> None:
    try:  # prog_name: `python -m anet` reads and completes (_ANET_COMPLETE) as `anet` does
        cli.main(prog_name="anet", standalone_mode=False)
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
