"""Architectures as layer-spec tables, one planner (shapes, parameters, FLOPs) and one builder.

Each architecture is a tuple of specs ``(kind, name, *args)``; every model then gets the same
head ``flatten -> fc1 -> drop1 -> fc2 -> drop2 -> fc3 (softmax)``. With ``polarity`` a second,
two-way softmax ``polarity`` (p-arm up / down) shares that trunk: it reads drop2's output, like
fc3, and the model then has two outputs ``[classes, polarity]`` (see :func:`split_outputs`).
:func:`layer_table` expands a table into concrete rows (output shape, parameters, FLOPs) in
pure Python, which also rejects inputs that are too small, and :func:`build` turns those rows
into a Keras functional model. TensorFlow is imported only inside :func:`build`, so
``anet models`` and ``anet summary`` stay instant.

Conventions:
- channels-last; conv and dense layers use a fused ReLU (``batch_norm`` puts ``bn`` and a
  separate ``relu`` layer after every bias-free conv instead, on all three architectures;
  AlexNet's and ANet-c6's LRN layers stay where they are, after the ReLU);
- ``init`` (:data:`INITS`, see :func:`initializers`) sets the starting weights: ``he_normal``
  (the default) for every ReLU layer, ``glorot_uniform`` (Keras' default, what anet used before
  it had the option) or ``alexnet`` (Krizhevsky et al. 2012: N(0, 0.01) kernels, bias 1 in
  conv2/4/5 and fc1/fc2, 0 elsewhere);
- ``width`` multiplies every conv filter count (rounded, at least 1); ``fc_units`` sizes fc1/fc2;
- ``weight_decay`` is the classic SGD weight decay: ``keras.regularizers.L2(weight_decay / 2)``
  on every conv/dense kernel adds ``weight_decay * w`` to each kernel gradient, as in the
  AlexNet paper (biases and BN parameters are not decayed);
- fc3 has ``dtype="float32"``, so the model outputs float32 probabilities under mixed precision;
- FLOPs count a multiply-add as 2 FLOPs and only in conv (``2*k*k*cin*cout*hout*wout``) and
  dense (``2*in*out``) layers; biases, ReLU, LRN, pooling, BN, dropout and softmax are excluded
  (together well under 1% for these models).
- ``pool_last`` is an alias, not a layer name: :func:`resolve_layer` maps it to the last
  max-pool layer (AlexNet ``pool5``, ANet-c6 ``pool6``, VGG16 ``pool5``) and
  :func:`layer_names` lists it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import NamedTuple

from anet.data.info import DATASET_JSON, load_dataset
from anet.errors import AnetError

# (kind, name, filters, kernel, stride, padding) / (kind, name, window, stride, padding).
_ALEXNET_STEM = (
    ("conv", "conv1", 96, 11, 4, "valid"),
    ("lrn", "lrn1"),
    ("pool", "pool1", 3, 2, "valid"),
    ("conv", "conv2", 256, 5, 1, "same"),
    ("lrn", "lrn2"),
    ("pool", "pool2", 3, 2, "valid"),
)

ALEXNET = _ALEXNET_STEM + (
    ("conv", "conv3", 384, 3, 1, "same"),
    ("conv", "conv4", 384, 3, 1, "same"),
    ("conv", "conv5", 256, 3, 1, "same"),
    ("pool", "pool5", 3, 2, "valid"),
)

# ANet-c6, our statement of the paper's lost Figure 1: AlexNet's five convs and two LRNs, a
# sixth conv, five overlapping 3/2 max-pools (the last after conv6), three FC layers. pool3,
# pool5 and pool6 use `same` padding so that at 227x227 no map drops below 2x2 (with `valid`
# padding pool6 would vanish). conv6 keeps conv5's 256 filters: the paper adds depth, not
# width, and more filters would only grow fc1's input (2*2*filters).
# At 227x227x3 with 10 classes (fused ReLU after every conv and fc1/fc2):
#   layer  window/stride  output      params     | layer  window/stride  output     params
#   conv1  11/4 valid     55x55x96    34,944     | conv4  3/1 same       7x7x384    1,327,488
#   lrn1   n=5            55x55x96    0          | conv5  3/1 same       7x7x256    884,992
#   pool1  3/2 valid      27x27x96    0          | pool5  3/2 same       4x4x256    0
#   conv2  5/1 same       27x27x256   614,656    | conv6  3/1 same       4x4x256    590,080
#   lrn2   n=5            27x27x256   0          | pool6  3/2 same       2x2x256    0
#   pool2  3/2 valid      13x13x256   0          | fc1 + drop1           4096       4,198,400
#   conv3  3/1 same       13x13x384   885,120    | fc2 + drop2           4096       16,781,312
#   pool3  3/2 same       7x7x384     0          | fc3 softmax           10         40,970
#   total 25,357,962 parameters, 1.683 forward GFLOPs; smallest valid input 35x35.
ANETC6 = _ALEXNET_STEM + (
    ("conv", "conv3", 384, 3, 1, "same"),
    ("pool", "pool3", 3, 2, "same"),
    ("conv", "conv4", 384, 3, 1, "same"),
    ("conv", "conv5", 256, 3, 1, "same"),
    ("pool", "pool5", 3, 2, "same"),
    ("conv", "conv6", 256, 3, 1, "same"),
    ("pool", "pool6", 3, 2, "same"),
)


def _vgg(cfg: list) -> tuple:
    """timm-style VGG list (filters or 'M') -> specs named conv{block}_{i} / pool{block}."""
    specs, block, i = [], 1, 1
    for v in cfg:
        if v == "M":
            specs.append(("pool", f"pool{block}", 2, 2, "valid"))
            block, i = block + 1, 1
        else:
            specs.append(("conv", f"conv{block}_{i}", v, 3, 1, "same"))
            i += 1
    return tuple(specs)


# Configuration D of Simonyan & Zisserman (2015).
VGG16 = _vgg([64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"])

ARCHITECTURES = {"alexnet": ALEXNET, "anetc6": ANETC6, "vgg16": VGG16}
MODELS = tuple(ARCHITECTURES)  # the valid model.name values
INPUT_SIZE = {"alexnet": 227, "anetc6": 227, "vgg16": 224}  # the papers' input sizes
LRN_ARGS = {"depth_radius": 2, "bias": 2.0, "alpha": 1e-4, "beta": 0.75}  # AlexNet's n=5, k, a, b
POOL_LAST = "pool_last"
POLARITY = "polarity"  # the polarity head's layer name (and the second output's)
POLARITY_CLASSES = ("up", "down")  # its two outputs: where the p-arm points (records: 0 / 1)
INITS = ("he_normal", "glorot_uniform", "alexnet")
# AlexNet's recipe gives these layers bias 1 ("accelerates the early stages of learning by
# providing the ReLUs with positive inputs"); VGG16 names its convs convB_i, so none match.
ALEXNET_BIAS_ONE = ("conv2", "conv4", "conv5", "fc1", "fc2")


class Row(NamedTuple):
    """One layer of a planned model; ``args`` are the Keras constructor arguments."""

    name: str
    kind: str  # input | conv | bn | relu | lrn | pool | flatten | fc | dropout | head
    shape: tuple  # output shape without the batch axis
    params: int  # all weights, trainable or not (what model.count_params() counts)
    flops: int  # forward FLOPs per example (conv and dense only, multiply-add = 2)
    args: dict


# --------------------------------------------------------------------------- planning


def _out(n: int, k: int, s: int, padding: str) -> int:
    return -(-n // s) if padding == "same" else (n - k) // s + 1


def layer_table(name: str, input_shape, num_classes: int, *, width: float = 1.0,
                fc_units: int = 4096, dropout: float = 0.5, batch_norm: bool = False,
                polarity: bool = False) -> list[Row]:
    """Expand an architecture into rows with output shapes, parameters and FLOPs (no TF).

    Args:
        input_shape: ``(height, width, channels)``.
        polarity: add the ``polarity`` head (kind ``head``: a dense layer on fc3's input).

    Raises:
        AnetError: unknown model, or an input so small that a feature map vanishes (the
            message names the layer and the smallest valid square input).
    """
    if name not in ARCHITECTURES:
        raise AnetError(f"unknown model {name!r} (known: {', '.join(ARCHITECTURES)})")
    rows, vanished = _plan(name, tuple(input_shape), num_classes, width, fc_units, dropout,
                           batch_norm, polarity)
    if vanished:
        h, w, c = input_shape
        smallest = smallest_input_size(name, c)
        raise AnetError(
            f"{name}: input {h}x{w}x{c} is too small: the feature map vanishes at layer "
            f"{vanished}; the smallest valid input is {smallest}x{smallest}"
        )
    return rows


def _plan(name, input_shape, num_classes, width, fc_units, dropout, batch_norm, polarity=False):
    """Rows of the model, and the name of the layer whose output vanished ('' if none)."""
    h, w, c = input_shape
    rows = [Row("input", "input", (h, w, c), 0, 0, {})]
    for kind, lname, *a in ARCHITECTURES[name]:
        if kind == "conv":
            filters, k, s, pad = max(1, math.floor(a[0] * width + 0.5)), a[1], a[2], a[3]
            h, w = _out(h, k, s, pad), _out(w, k, s, pad)
            weights = k * k * c * filters
            conv = {"filters": filters, "kernel_size": k, "strides": s, "padding": pad}
            if batch_norm:  # BN's beta replaces the conv bias
                rows.append(Row(lname, kind, (h, w, filters), weights, 2 * weights * h * w,
                                {**conv, "use_bias": False}))
                bn, relu = lname.replace("conv", "bn", 1), lname.replace("conv", "relu", 1)
                rows.append(Row(bn, "bn", (h, w, filters), 4 * filters, 0, {}))
                rows.append(Row(relu, "relu", (h, w, filters), 0, 0, {}))
            else:
                rows.append(Row(lname, kind, (h, w, filters), weights + filters,
                                2 * weights * h * w, {**conv, "activation": "relu"}))
            c = filters
        elif kind == "pool":
            k, s, pad = a
            h, w = _out(h, k, s, pad), _out(w, k, s, pad)
            rows.append(Row(lname, kind, (h, w, c), 0, 0,
                            {"pool_size": k, "strides": s, "padding": pad}))
        else:  # lrn
            rows.append(Row(lname, kind, (h, w, c), 0, 0, dict(LRN_ARGS)))
        if h < 1 or w < 1:
            return rows, lname
    n = h * w * c
    rows.append(Row("flatten", "flatten", (n,), 0, 0, {}))
    for i, units in ((1, fc_units), (2, fc_units)):
        rows.append(Row(f"fc{i}", "fc", (units,), n * units + units, 2 * n * units,
                        {"units": units, "activation": "relu"}))
        rows.append(Row(f"drop{i}", "dropout", (units,), 0, 0, {"rate": dropout}))
        n = units
    rows.append(Row("fc3", "fc", (num_classes,), n * num_classes + num_classes,
                    2 * n * num_classes,
                    {"units": num_classes, "activation": "softmax", "dtype": "float32"}))
    if polarity:  # p-arm up / down, from the same trunk as fc3
        rows.append(Row(POLARITY, "head", (2,), n * 2 + 2, 2 * n * 2,
                        {"units": 2, "activation": "softmax", "dtype": "float32"}))
    return rows, ""


def smallest_input_size(name: str, channels: int = 3) -> int:
    """The smallest square input for which no feature map of ``name`` vanishes."""
    for size in range(1, 4097):
        if not _plan(name, (size, size, channels), 2, 1.0, 1, 0.0, False)[1]:
            return size
    raise AssertionError(name)  # pragma: no cover - every table has a finite minimum


def forward_flops(name: str, input_shape, num_classes: int, **options) -> int:
    """Forward FLOPs per example (conv + dense, multiply-add = 2 FLOPs); see module docs."""
    return sum(r.flops for r in layer_table(name, input_shape, num_classes, **options))


def count_params(name: str, input_shape, num_classes: int, **options) -> int:
    """Parameter count from the table; equals ``build(...).count_params()``."""
    return sum(r.params for r in layer_table(name, input_shape, num_classes, **options))


# --------------------------------------------------------------------------- building


def initializers(init: str, row: Row) -> dict:
    """Keras ``kernel_initializer``/``bias_initializer`` arguments of a conv or fc row.

    ``he_normal`` and ``glorot_uniform`` give every ReLU layer that kernel initializer; the
    softmax layer fc3 keeps Glorot-uniform under both (He's variance argument is about ReLU).
    ``alexnet`` is the 2012 recipe for every layer. Biases are zero except the recipe's ones.
    """
    if init not in INITS:
        raise AnetError(f"unknown model.init {init!r} (known: {', '.join(INITS)})")
    if init == "alexnet":
        kernel = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.01}}
        bias = 1.0 if row.name in ALEXNET_BIAS_ONE else 0.0
        return {"kernel_initializer": kernel,
                "bias_initializer": {"class_name": "Constant", "config": {"value": bias}}}
    relu = row.args.get("activation") != "softmax"
    return {"kernel_initializer": init if relu else "glorot_uniform",
            "bias_initializer": "zeros"}


def build(name: str, input_shape, num_classes: int, *, width: float = 1.0,
          fc_units: int = 4096, dropout: float = 0.5, weight_decay: float = 0.0,
          batch_norm: bool = False, init: str = "he_normal", polarity: bool = False):
    """Build architecture ``name`` as a Keras functional model named ``name``.

    Args:
        input_shape: ``(height, width, channels)``, channels-last.
        num_classes: units of fc3 (float32 softmax).
        init: one of :data:`INITS` (see :func:`initializers`).
        polarity: add the two-way ``polarity`` head; the model then outputs
            ``[class probabilities, polarity probabilities]``.
    Returns:
        An uncompiled ``keras.Model``; every layer is named as in :func:`layer_table`.
    """
    rows = layer_table(name, input_shape, num_classes, width=width, fc_units=fc_units,
                       dropout=dropout, batch_norm=batch_norm, polarity=polarity)
    import keras

    from anet.layers import LocalResponseNormalization

    def reg():
        return keras.regularizers.L2(weight_decay / 2) if weight_decay > 0 else None

    def weights(row):  # fresh initializer objects per layer (Keras seeds each one anew)
        args = {k: keras.initializers.get(v) for k, v in initializers(init, row).items()}
        if not row.args.get("use_bias", True):
            del args["bias_initializer"]
        return {**args, "kernel_regularizer": reg()}

    make = {
        "conv": lambda r: keras.layers.Conv2D(**r.args, **weights(r), name=r.name),
        "bn": lambda r: keras.layers.BatchNormalization(name=r.name),
        "relu": lambda r: keras.layers.ReLU(name=r.name),
        "lrn": lambda r: LocalResponseNormalization(**r.args, name=r.name),
        "pool": lambda r: keras.layers.MaxPooling2D(**r.args, name=r.name),
        "flatten": lambda r: keras.layers.Flatten(name=r.name),
        "fc": lambda r: keras.layers.Dense(**r.args, **weights(r), name=r.name),
        "dropout": lambda r: keras.layers.Dropout(**r.args, name=r.name),
        "head": lambda r: keras.layers.Dense(**r.args, **weights(r), name=r.name),
    }
    inputs = x = keras.Input(shape=rows[0].shape, name="input")
    trunk, heads = None, []
    for row in rows[1:]:
        if row.kind == "head":  # reads the trunk that fc3 reads
            heads.append(make[row.kind](row)(trunk))
            continue
        if row.name == "fc3":
            trunk = x
        x = make[row.kind](row)(x)
    return keras.Model(inputs, [x, *heads] if heads else x, name=name)


def split_outputs(outputs):
    """``(class probabilities, polarity probabilities or None)`` of a model's outputs."""
    if isinstance(outputs, (list, tuple)):
        return outputs[0], outputs[1]
    return outputs, None


def has_polarity(model) -> bool:
    """Whether a built model has the polarity head."""
    return any(layer.name == POLARITY for layer in model.layers)


def build_from_config(model_cfg, image_size: int, channels: int, num_classes: int):
    """:func:`build` from a :class:`anet.config.ModelConfig` and the data's shape."""
    return build(model_cfg.name, (image_size, image_size, channels), num_classes,
                 **_options(model_cfg))


def _table_options(model_cfg) -> dict:
    """The ModelConfig fields that shape the layer table."""
    return {"width": model_cfg.width, "fc_units": model_cfg.fc_units,
            "dropout": model_cfg.dropout, "batch_norm": model_cfg.batch_norm,
            "polarity": model_cfg.polarity}


def _options(model_cfg) -> dict:
    """The ModelConfig fields :func:`build` takes."""
    return {**_table_options(model_cfg), "weight_decay": model_cfg.weight_decay,
            "init": model_cfg.init}


def layer_names(model) -> list[str]:
    """Names usable with :func:`resolve_layer`: every layer, then the ``pool_last`` alias."""
    return [layer.name for layer in model.layers] + [POOL_LAST]


def resolve_layer(model, name: str):
    """``model.get_layer(name)``, where ``pool_last`` means the model's last max-pool layer."""
    if name == POOL_LAST:
        pools = [lay for lay in model.layers if type(lay).__name__ == "MaxPooling2D"]
        if pools:
            return pools[-1]
    elif name in {layer.name for layer in model.layers}:
        return model.get_layer(name)
    raise AnetError(f"model {model.name!r} has no layer {name!r} "
                    f"(known: {', '.join(layer_names(model))})")


def layer_alias(model, name: str) -> str:
    """Paper names on every model: ``convN`` is a ReLU output like plain ANet-c6's fused conv1:
    with batch_norm the layer ``reluN`` (``reluN_1`` on VGG16), on VGG16 ``convN_1``."""
    names = {layer.name for layer in model.layers}
    if not re.fullmatch(r"conv\d+", name):
        return name
    for candidate in (f"relu{name[4:]}", name, f"relu{name[4:]}_1", f"{name}_1"):
        if candidate in names:
            return candidate
    return name


# --------------------------------------------------------------------------- text tables


def models_table(num_classes: int = 10, channels: int = 3) -> str:
    """``anet models``: each architecture at its paper input size (plus 1-channel 24 classes)."""
    lines = [f"{'model':<8} {'input':>11} {'classes':>7} {'parameters':>13} {'GFLOPs':>7}"]
    for classes, chans in ((num_classes, channels), (24, 1)):
        for name, size in INPUT_SIZE.items():
            shape = (size, size, chans)
            params = count_params(name, shape, classes)
            gflops = forward_flops(name, shape, classes) / 1e9
            lines.append(f"{name:<8} {fmt_shape(shape):>11} {classes:>7} {params:>13,} "
                         f"{gflops:>7.3f}")
    lines.append("GFLOPs: forward, per image; conv + dense only, a multiply-add = 2 FLOPs.")
    return "\n".join(lines)


def format_table(rows: list[Row]) -> str:
    """Layer table as text: name, kind, output shape, parameters, MFLOPs, with totals."""
    lines = [f"{'layer':<10} {'kind':<8} {'output':>14} {'parameters':>13} {'MFLOPs':>10}"]
    for r in rows:
        lines.append(f"{r.name:<10} {r.kind:<8} {fmt_shape(r.shape):>14} {r.params:>13,} "
                     f"{r.flops / 1e6:>10.1f}")
    params, flops = sum(r.params for r in rows), sum(r.flops for r in rows)
    lines.append(f"{'total':<10} {'':<8} {'':>14} {params:>13,} {flops / 1e6:>10.1f}")
    return "\n".join(lines)


def config_summary(cfg) -> str:
    """``anet summary``: the layer table of one experiment's model.

    Classes and channels come from ``dataset.json`` in ``cfg.data.dir`` when it exists,
    else 24 classes and 1 channel (stated in the output).
    """
    meta_path = Path(cfg.data.dir) / DATASET_JSON
    if meta_path.is_file():
        info = load_dataset(cfg.data.dir)
        num_classes, channels = info.num_classes, info.channels
        source = f"from {meta_path}"
    else:
        num_classes, channels = 24, 1
        source = f"defaults: {meta_path} not found"
    m, size = cfg.model, cfg.data.image_size
    rows = layer_table(m.name, (size, size, channels), num_classes, **_table_options(m))
    head = (f"{cfg.name}: {m.name}, input {size}x{size}x{channels}, {num_classes} classes "
            f"({source}); width {m.width}, fc_units {m.fc_units}, dropout {m.dropout}, "
            f"weight_decay {m.weight_decay}, batch_norm {str(m.batch_norm).lower()}, init {m.init}"
            + (f", polarity head (loss weight {m.polarity_weight})" if m.polarity else ""))
    return head + "\n" + format_table(rows)


def fmt_shape(shape) -> str:
    """``(55, 55, 96)`` -> ``55x55x96``."""
    return "x".join(str(int(v)) for v in shape)
