"""TensorBoard summaries of a run: one scheme, written by ``anet train`` and ``anet evaluate``.

Train and valid curves overlay on one chart the Keras way: a writer per split in its own
subfolder, each writing the same tag names. Under ``RUN/tensorboard/``:

    train/      loss, accuracy (mean since the last Algorithm 1 check), lr, images_per_sec
    valid/      loss, accuracy (at each check with ``schedule.monitor: valid`` and epoch end)
    train/ valid/ test/   eval/accuracy, eval/top5_accuracy, eval/macro_f1 of the checkpoint
                `anet evaluate` chose; the evaluated split's folder has the image eval/confusion
    (itself)    the hparams session: the resolved config as typed hyper-parameters (hparams
                plugin: bools, numbers, text), with eval/accuracy of valid/ and test/ and
                eval/macro_f1 of test/ as its metrics
    visualize/  `anet visualize` images

In TensorBoard's run selector a chart such as ``accuracy`` shows ``RUN/tensorboard/train`` and
``RUN/tensorboard/valid`` as two coloured lines. Bookkeeping (epoch, streak, best, monitored,
saved, next_lr, stall records) is not a scalar: it stays in ``metrics.jsonl``.

TensorFlow and the hparams plugin are imported inside the writers, so reading a run never loads them.
"""

from __future__ import annotations

from pathlib import Path

from anet.files import atomic_write

TRAIN, VALID, TEST = "train", "valid", "test"  # writer subfolders (TensorBoard "runs")

# metrics.jsonl key -> (writer subfolder, tag); every other key is bookkeeping
SCALARS = {
    "train_loss": (TRAIN, "loss"),
    "train_acc": (TRAIN, "accuracy"),
    "lr": (TRAIN, "lr"),
    "images_per_sec": (TRAIN, "images_per_sec"),
    "valid_loss": (VALID, "loss"),
    "valid_acc": (VALID, "accuracy"),
}
CURVE_RUNS = (TRAIN, VALID)  # the subfolders the training curves are written to
EVAL_TAGS = {"accuracy": "eval/accuracy", "top5_accuracy": "eval/top5_accuracy",
             "macro_f1": "eval/macro_f1"}  # eval.json key -> tag (in the split's folder)
CONFUSION_TAG = "eval/confusion"
# (tag, writer subfolder, name in the hparams table)
HPARAMS_METRICS = (("eval/accuracy", VALID, "valid accuracy (chosen checkpoint)"),
                   ("eval/accuracy", TEST, "test accuracy (chosen checkpoint)"),
                   ("eval/macro_f1", TEST, "test macro-F1 (chosen checkpoint)"))


def scalars(row: dict) -> list[tuple[str, str, float]]:
    """(writer subfolder, tag, value) for each number of a metrics.jsonl row that is a curve
    (check and epoch rows; a stall record repeats numbers already drawn)."""
    if row.get("kind") not in (None, "check", "epoch"):
        return []
    out = []
    for key, (run, tag) in SCALARS.items():
        v = row.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((run, tag, float(v)))
    return out


def _leaves(config: dict, prefix: str = ""):
    for k, v in config.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def hparams(config: dict) -> dict:
    """The resolved config (``config.to_dict``) as flat hparams: ``section.key`` -> a bool,
    int, float or str (lists and other values as text; a null key is left out, which
    TensorBoard shows as an empty cell)."""
    flat = {}
    for key, value in _leaves(config):
        if isinstance(value, (bool, int, float, str)):
            flat[key] = value
        elif value is not None:
            flat[key] = str(list(value) if isinstance(value, tuple) else value)
    return flat


def _declared_type(key: str):
    """The config's declared type of a dotted key (``int`` for ``int | None``), or None."""
    import dataclasses
    import typing

    from anet.config import Config

    tp = Config
    for part in key.split("."):
        if not dataclasses.is_dataclass(tp) or part not in typing.get_type_hints(tp):
            return None
        tp = typing.get_type_hints(tp)[part]
    inner = [t for t in typing.get_args(tp) if t is not type(None)]
    return inner[0] if len(inner) == 1 else tp


def hparam_kinds(config: dict) -> dict[str, str]:
    """``section.key`` -> ``bool``, ``number`` or ``text`` for every key of the config: how
    TensorBoard's hparams dashboard treats it (a null key by the config's declared type)."""
    values = hparams(config)
    kinds = {}
    for key, _ in _leaves(config):
        tp = type(values[key]) if key in values else _declared_type(key)
        kinds[key] = "bool" if tp is bool else "number" if tp in (int, float) else "text"
    return kinds


def hparam_domain(kind: str):
    """The hparams ``Domain`` that declares a kind's type and sets no limit on the values
    another run may have (all runs under one TensorBoard log dir share one experiment): a
    bool's two values, any number (TensorBoard has no integer type), any text (an empty
    domain: the type alone)."""
    import math

    from tensorboard.plugins.hparams import api as hp

    if kind == "bool":
        return hp.Discrete([False, True])
    if kind == "number":
        return hp.RealInterval(-math.inf, math.inf)
    return hp.Discrete([], dtype=str)


def eval_scalars(result: dict) -> list[tuple[str, str, float]]:
    """(writer subfolder, tag, value) of an eval.json dict: accuracy, top-5 and macro-F1 per split."""
    out = []
    for key, tag in EVAL_TAGS.items():
        for split, v in (result.get(key) or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append((split, tag, float(v)))
    return out


class Writers:
    """One ``tf.summary`` file writer per subfolder of ``RUN/tensorboard``, opened on first use."""

    def __init__(self, folder: str | Path):
        import tensorflow as tf

        self.tf, self.folder, self._open = tf, Path(folder), {}

    def __call__(self, run: str):
        if run not in self._open:
            self._open[run] = self.tf.summary.create_file_writer(str(self.folder / run))
        return self._open[run]

    def scalars(self, step: int, values) -> None:
        """Write (subfolder, tag, value) triples at ``step`` and flush."""
        for run, tag, v in values:
            with self(run).as_default(step=step):
                self.tf.summary.scalar(tag, v)
        self.flush()

    def flush(self) -> None:
        for w in self._open.values():
            w.flush()

    def close(self) -> None:
        for w in self._open.values():
            w.close()
        self._open = {}


def trim_after(folder: str | Path, step: int) -> list[Path]:
    """Drop the events past ``step`` from the event files of one TensorBoard run folder.

    A resumed run redoes the steps after its checkpoint and writes them again; without this
    each would be a second point at the same step (TensorBoard's Python loader and any event
    reader show both). A file holding such events (or a record torn by a kill) is rewritten
    beside itself, without them, and renamed over itself; other files are not touched.
    Returns the rewritten files."""
    import os

    import tensorflow as tf

    rewritten = []
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        kept, dropped = [], False
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                raw = record.numpy()
                if tf.compat.v1.Event.FromString(raw).step <= step:
                    kept.append(raw)
                else:
                    dropped = True
        except tf.errors.DataLossError:  # a record torn by a kill: it goes too
            dropped = True
        if not dropped:
            continue
        def write(tmp: Path, kept=kept) -> None:
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for raw in kept:
                    writer.write(raw)

        # the temp name has no "tfevents" in it, so TensorBoard never reads the half-written file
        atomic_write(path, write, tmp=path.with_name(f".anet-trim-{os.getpid()}.tmp"))
        rewritten.append(path)
    return rewritten


def write_hparams(folder: str | Path, config: dict, trial: str) -> None:
    """The run's hyper-parameters as an hparams session in ``folder`` (RUN/tensorboard), each
    declared with its type (:func:`hparam_domain`) so the dashboard filters and sorts bools,
    numbers and text as such, and :data:`HPARAMS_METRICS` (their values come when
    `anet evaluate` writes them)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = hparams(config)
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        hp.hparams_config(hparams=[hp.HParam(k, hparam_domain(kind))
                                   for k, kind in hparam_kinds(config).items()],
                          metrics=[hp.Metric(tag, group=run, display_name=name)
                                   for tag, run, name in HPARAMS_METRICS])
        hp.hparams(values, trial_id=trial)
    writer.close()


def write_eval(folder: str | Path, result: dict, step: int, confusion_png: Path | None) -> None:
    """eval.json's accuracy, top-5 and macro-F1 per split (the hparams metrics among them) and
    the confusion figure as an image in the evaluated split's folder, all at ``step``."""
    writers = Writers(folder)
    try:
        writers.scalars(step, eval_scalars(result))
        if confusion_png is not None and Path(confusion_png).is_file():
            tf = writers.tf
            image = tf.image.decode_png(Path(confusion_png).read_bytes(), channels=3)
            with writers(result.get("split", TEST)).as_default(step=step):
                tf.summary.image(CONFUSION_TAG, image[None], max_outputs=1,
                                 description="confusion.png of `anet evaluate`: counts and "
                                             "row-normalised")
    finally:
        writers.close()
