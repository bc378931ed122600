"""Experiment configs: YAML -> typed, frozen dataclasses, with all validation in one place.

A config has five sections (``model``, ``data``, ``train``, ``schedule``, ``run``). Every key
has a default here, so a YAML file only states what differs. ``load_config(path, overrides)``
applies ``--set key.sub=value`` overrides, validates types, ranges and combinations, and
raises :class:`ConfigError` with the key path and the file on the first problem.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anet.errors import AnetError
from anet.files import atomic_write
from anet.models import MODELS


class ConfigError(AnetError, ValueError):
    """A config problem a user must fix; the message names the file and key path."""


INITS = ("he_normal", "glorot_uniform", "alexnet")  # = anet.models.INITS (no TF import here)
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
CLUSTERS = ("auto", "tf_config", "slurm")  # where multi_worker finds its workers (anet.cluster)


@dataclass(frozen=True)
class ModelConfig:
    name: str = "anetc6"  # alexnet | anetc6 | vgg16
    width: float = 1.0  # multiplies every conv filter count (tiny configs use e.g. 0.125)
    fc_units: int = 4096  # units of fc1 and fc2
    dropout: float = 0.5  # dropout rate after fc1 and fc2
    weight_decay: float = 0.0005  # L2 penalty on conv/dense kernels
    batch_norm: bool = False  # BatchNorm after every conv, before its ReLU (beyond the paper)
    init: str = "he_normal"  # he_normal | glorot_uniform (Keras' default) | alexnet (N(0,0.01), bias 1)
    polarity: bool = False  # a second, two-way head (p-arm up/down) on the fc trunk (needs polarity data)
    polarity_weight: float = 0.5  # its cross-entropy's weight in the training loss


@dataclass(frozen=True)
class DataConfig:
    dir: str = "data/synthetic-karyotype"  # output of `anet prepare` (holds dataset.json)
    image_size: int = 227  # model input height = width (227 AlexNet/ANet-c6, 224 VGG16)
    resize: str = "stretch"  # stretch (the paper) | pad (keep aspect ratio on a fixed canvas)
    normalize: str = "standardize"  # standardize: per-dataset train mean/std | unit: x/255 in [0,1]
    augment: bool = False  # augment training batches (the keys below; evaluate/predict never)
    crop: bool = True  # with augment: random crop after padding 8 px by edge reflection
    flip: bool = True  # with augment: horizontal flip (refused for digit datasets: mnist)
    rotate_degrees: float = 0.0  # with augment: rotation uniform in [-r, r] degrees, r <= 180
    scale: float = 0.0  # with augment: zoom uniform in [1 - s, 1 + s], s < 1
    translate: float = 0.0  # with augment: shift uniform in [-t, t] x image size, t <= 0.5
    shuffle_buffer: int = 10000  # examples in the shuffle buffer


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 64  # global mini-batch (the paper: 64)
    epochs: int = 200  # upper bound; early break usually stops sooner
    max_steps: int = 0  # stop after this many steps (0 = no limit; tiny configs use it)
    optimizer: str = "momentum"  # sgd | momentum | adam | adamw
    adamw_decay: float = 0.01  # adamw's decoupled weight decay (model.weight_decay adds L2 too)
    label_smoothing: float = 0.0  # training loss on smoothed one-hot targets (0 = off)
    clipnorm: float = 0.0  # clip the global gradient norm to this (0 = off)
    momentum: float = 0.9  # for optimizer: momentum
    eval_every_steps: int = 200  # Algorithm 1 runs every this many steps
    checkpoint_every_epochs: int = 10  # unconditional checkpoint period
    eval_batches: int = 0  # batches of the valid split per evaluation (0 = whole split)
    precision: str = "float32"  # float32 | mixed_float16 | mixed_bfloat16
    jit_compile: bool | str = "auto"  # XLA-compile the train step: auto (on a GPU only) | true | false
    deterministic: bool = False  # op determinism + fixed data order (not with jit_compile: true)
    distribute: str = "none"  # none | mirrored (all local GPUs) | multi_worker (see cluster)
    cluster: str = "auto"  # multi_worker: auto | tf_config | slurm (auto: TF_CONFIG, else srun's)
    cluster_port: int = 0  # slurm: first port of a node's workers (0 = one range per job id)
    stall_share: float = 0.1  # check once, after this share of the step budget, for chance acc (0 = never)
    on_stall: str = "warn"  # warn: print and record it | stop: also end the run there


@dataclass(frozen=True)
class EarlyBreakConfig:
    enabled: bool = True  # false: always train all epochs (or max_steps)
    valid_expectation: float = 0.98  # stop when valid accuracy >= this after an epoch ...
    train_expectation: float = 0.99  # ... and train batch accuracy >= this ...
    consecutive: int = 5  # ... for this many consecutive batches


@dataclass(frozen=True)
class ScheduleConfig:
    type: str = "algorithm1"  # algorithm1 (the paper) | cosine | step | constant (from lrs[0])
    warmup_steps: int = 0  # linear warmup of the learning rate over this many steps (any type)
    monitor: str = "batch"  # batch: mini-batch accuracy (the paper) | valid: valid accuracy
    # Algorithm 1: the highest level that the best accuracy exceeds sets lr and gate.
    levels: tuple[float, ...] = (0.0, 0.5, 0.8, 0.9)  # ascending accuracy levels
    lrs: tuple[float, ...] = (0.01, 0.005, 0.001, 0.0005)  # learning rate per level
    gates: tuple[float, ...] = (0.0, 0.02, 0.01, 0.005)  # gain over best needed to save, per level
    early_break: EarlyBreakConfig = field(default_factory=EarlyBreakConfig)


@dataclass(frozen=True)
class RunConfig:
    dir: str = ""  # run directory ("" = runs/<config file stem>)
    seed: int = 0  # weights init, data order, augmentation, dropout
    keep_checkpoints: int = 0  # keep only the newest N unconditional ones (0 = keep all)
    keep_best: int | None = None  # keep only the N best Algorithm 1 ones by monitored acc (null = all)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    name: str = "experiment"  # set from the file name; names the default run dir


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise ConfigError(f"duplicate key {key!r} on lines {seen[key]} and {line}; "
                                      "keep one")
            except TypeError:  # an unhashable key: let SafeLoader report it
                continue
            seen[key] = line
        return super().construct_mapping(node, deep)


class _Source(str):
    """The config's name in messages; remembers which keys came from ``--set`` so that a
    problem with such a key is blamed on the ``--set``, not on the YAML file."""

    sets: dict[str, str] = {}


def _blame(source: str, key: str) -> str:
    """``--set KEY=VALUE`` when ``key`` (or its section, or a key inside it) was set on the
    command line, else the config file ``source``. ``a.b/c`` names the keys a.b and a.c."""
    first, *more = key.split("/")
    base = first.rsplit(".", 1)[0] + "." if "." in first else ""
    for alt in [first, *(base + m for m in more)]:
        for k, item in getattr(source, "sets", {}).items():
            if alt == k or alt.startswith((k + ".", k + "[")) or k.startswith(alt + "."):
                return f"--set {item}"
    return source


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> Config:
    """Load a YAML config, apply ``key.sub=value`` overrides, validate, return a frozen Config.

    ``path=None`` gives the defaults (plus overrides).
    """
    source = _Source(str(path) if path is not None else "<defaults>")
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{source}: config file not found")
        try:
            loaded = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{source}: not a UTF-8 text file (byte {e.start} is "
                              f"0x{e.object[e.start]:02x}); a config is YAML text") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML: {str(e).splitlines()[0]}") from None
        if loaded is None:  # empty or only comments: would silently train every default
            raise ConfigError(f"{source}: the config is empty; state at least the dataset, e.g. "
                              "`data: {dir: data/mnist}` (see configs/ for examples)")
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: top level must be a mapping of sections")
        raw = loaded
        raw.setdefault("name", p.stem)
    for item in overrides:
        _apply_override(raw, item, source)
    source.sets = {item.split("=", 1)[0].strip(): item for item in overrides}
    cfg = _build(Config, raw, "", source)
    _validate(cfg, source)
    return cfg


def _apply_override(raw: dict, item: str, source: str) -> None:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key.sub=value, e.g. --set train.batch_size=32")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        if node.get(part) is None:  # absent, or an empty section (`train:`) in the YAML
            node[part] = {}
        nxt = node[part]
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section")
        node = nxt
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        node[parts[-1]] = value


def _build(cls, raw: Any, prefix: str, source: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{_blame(source, prefix.rstrip('.'))}: {prefix.rstrip('.') or 'config'} "
                          "must be a mapping")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(f"{_blame(source, f'{prefix}{key}')}: unknown key '{prefix}{key}'{hint} "
                              f"(valid: {', '.join(names)})")
    kwargs = {}
    for name in names:
        if name not in raw:
            continue
        kwargs[name] = _coerce(hints[name], raw[name], f"{prefix}{name}", source)
    return cls(**kwargs)


def _coerce(tp, value, key: str, source: str):
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key + ".", source)
    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{_blame(source, key)}: {key} must be a list, got {value!r}")
        (item_tp, _) = typing.get_args(tp)
        return tuple(_coerce(item_tp, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType) and type(None) not in typing.get_args(tp):
        for option in typing.get_args(tp):  # `bool | str`: the first type the value is
            try:
                return _coerce(option, value, key, source)
            except ConfigError:
                pass
        names = " or ".join(t.__name__ for t in typing.get_args(tp))
        raise ConfigError(f"{_blame(source, key)}: {key} must be {names}, got {value!r}")
    if origin in (typing.Union, types.UnionType):  # `X | None`: null, or an X
        (inner,) = [t for t in typing.get_args(tp) if t is not type(None)]
        if value is None:
            return None
        try:
            return _coerce(inner, value, key, source)
        except ConfigError:
            raise ConfigError(f"{_blame(source, key)}: {key} must be {inner.__name__} or null, "
                              f"got {value!r}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - all fields are covered above
        raise AssertionError(tp)
    raise ConfigError(f"{_blame(source, key)}: {key} must be {tp.__name__}, got {value!r}")


def _check(cond: bool, source: str, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{_blame(source, key)}: {key} {msg}")


def _one_of(value: str, allowed: tuple[str, ...], source: str, key: str) -> None:
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    _check(value in allowed, source, key, f"must be one of {', '.join(allowed)}, got {value!r}{hint}")


def _validate(c: Config, s: str) -> None:
    _one_of(c.model.name, MODELS, s, "model.name")
    _check(0 < c.model.width <= 4, s, "model.width", f"must be in (0, 4], got {c.model.width}")
    _check(c.model.fc_units >= 1, s, "model.fc_units", f"must be >= 1, got {c.model.fc_units}")
    _check(0 <= c.model.dropout < 1, s, "model.dropout", f"must be in [0, 1), got {c.model.dropout}")
    _check(c.model.weight_decay >= 0, s, "model.weight_decay", "must be >= 0")
    _one_of(c.model.init, INITS, s, "model.init")
    _check(c.model.polarity_weight > 0, s, "model.polarity_weight",
           f"must be > 0, got {c.model.polarity_weight}")
    _check(8 <= c.data.image_size <= 1024, s, "data.image_size",
           f"must be in [8, 1024], got {c.data.image_size}")
    _one_of(c.data.resize, ("stretch", "pad"), s, "data.resize")
    _one_of(c.data.normalize, ("unit", "standardize"), s, "data.normalize")
    _check(c.data.shuffle_buffer >= 1, s, "data.shuffle_buffer", "must be >= 1")
    for key, value, hi in (("rotate_degrees", c.data.rotate_degrees, "<= 180"),
                           ("scale", c.data.scale, "< 1"), ("translate", c.data.translate, "<= 0.5")):
        ok = {"<= 180": value <= 180, "< 1": value < 1, "<= 0.5": value <= 0.5}[hi]
        _check(value >= 0 and ok, s, f"data.{key}", f"must be >= 0 and {hi}, got {value}")
        _check(c.data.augment or not value, s, f"data.{key}",
               f"= {value} needs data.augment: true (it only applies to augmented training batches)")
    t = c.train
    _check(t.batch_size >= 1, s, "train.batch_size", f"must be >= 1, got {t.batch_size}")
    _check(t.epochs >= 1, s, "train.epochs", f"must be >= 1, got {t.epochs}")
    _check(t.max_steps >= 0, s, "train.max_steps", "must be >= 0")
    _one_of(t.optimizer, ("sgd", "momentum", "adam", "adamw"), s, "train.optimizer")
    _check(t.adamw_decay >= 0, s, "train.adamw_decay", "must be >= 0")
    _check(0 <= t.label_smoothing < 1, s, "train.label_smoothing", "must be in [0, 1)")
    _check(t.clipnorm >= 0, s, "train.clipnorm", "must be >= 0 (0 = off)")
    _check(0 <= t.momentum < 1, s, "train.momentum", "must be in [0, 1)")
    _check(t.eval_every_steps >= 1, s, "train.eval_every_steps", "must be >= 1")
    _check(t.checkpoint_every_epochs >= 1, s, "train.checkpoint_every_epochs", "must be >= 1")
    _check(t.eval_batches >= 0, s, "train.eval_batches", "must be >= 0")
    _check(t.jit_compile in (True, False, "auto"), s, "train.jit_compile",
           f"must be auto, true or false, got {t.jit_compile!r}")
    _check(not (t.deterministic and t.jit_compile is True), s, "train.deterministic",
           "needs train.jit_compile: false (XLA has no deterministic max-pool gradient); "
           "set train.jit_compile: false or --set train.jit_compile=false")
    _one_of(t.precision, PRECISIONS, s, "train.precision")
    _one_of(t.distribute, DISTRIBUTE, s, "train.distribute")
    _one_of(t.cluster, CLUSTERS, s, "train.cluster")
    _check(t.distribute == "multi_worker" or (t.cluster == "auto" and not t.cluster_port), s,
           "train.cluster", "and train.cluster_port need train.distribute: multi_worker")
    _check(t.cluster_port == 0 or 1024 <= t.cluster_port <= 65535 - 16, s, "train.cluster_port",
           f"must be 0 (from the Slurm job id) or a port in [1024, 65519], got {t.cluster_port}")
    _check(0 <= t.stall_share <= 1, s, "train.stall_share", f"must be in [0, 1], got {t.stall_share}")
    _one_of(t.on_stall, ("warn", "stop"), s, "train.on_stall")
    sc = c.schedule
    _one_of(sc.monitor, ("batch", "valid"), s, "schedule.monitor")
    _one_of(sc.type, ("algorithm1", "cosine", "step", "constant"), s, "schedule.type")
    _check(sc.warmup_steps >= 0, s, "schedule.warmup_steps", "must be >= 0")
    n = len(sc.levels)
    _check(n >= 1, s, "schedule.levels", "must have at least one level")
    _check(len(sc.lrs) == n and len(sc.gates) == n, s, "schedule.lrs/gates",
           f"must have as many entries as schedule.levels ({n}), got {len(sc.lrs)} and {len(sc.gates)}")
    _check(list(sc.levels) == sorted(sc.levels), s, "schedule.levels",
           f"must be ascending, got {list(sc.levels)}")
    _check(all(0 <= v < 1 for v in sc.levels), s, "schedule.levels", "must lie in [0, 1)")
    _check(all(0 < v < float("inf") for v in sc.lrs), s, "schedule.lrs",
           f"must be finite and > 0, got {list(sc.lrs)}")
    _check(all(0 <= v < 1 for v in sc.gates), s, "schedule.gates", "must lie in [0, 1)")
    eb = sc.early_break
    _check(0 <= eb.valid_expectation <= 1, s, "schedule.early_break.valid_expectation", "must be in [0, 1]")
    _check(0 <= eb.train_expectation <= 1, s, "schedule.early_break.train_expectation", "must be in [0, 1]")
    _check(eb.consecutive >= 1, s, "schedule.early_break.consecutive", "must be >= 1")
    _check(c.run.keep_checkpoints >= 0, s, "run.keep_checkpoints", "must be >= 0")
    _check(c.run.keep_best is None or c.run.keep_best >= 1, s, "run.keep_best",
           f"must be >= 1 (or null to keep every Algorithm 1 checkpoint), got {c.run.keep_best}")


# --------------------------------------------------------------------------- writing


def to_dict(cfg: Config) -> dict:
    """Plain nested dict (tuples as lists) suitable for YAML/JSON."""

    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(dataclasses.asdict(cfg))


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def write_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config to the file ``path`` atomically (creating its folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, dump_yaml(cfg))


def from_dict(raw: dict, source: str = "<dict>") -> Config:
    """Rebuild a Config from :func:`to_dict` output (e.g. a checkpoint's stored config)."""
    cfg = _build(Config, dict(raw), "", source)
    _validate(cfg, source)
    return cfg

