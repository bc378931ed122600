"""Layer outputs -> arrays -> image grids, a smoothness score per layer, and a compare figure.

The paper's Figure 4 shows the outputs of conv1, pool1, pool2 and the last pool of ANet-c6 and
VGG16 on two samples per dataset and argues that too-smooth outputs after the last pool lose
detail. :func:`visualize` draws those outputs for one run (a grid PNG per layer and an
overview PNG per sample) or for several runs side by side (``compare``), and puts a number on
the claim with :func:`smoothness`.

Smoothness of one channel ``x`` (an ``H x W`` map) with ``A`` spatial axes longer than 1::

    s(x) = 1 - E / (4 * A * V)
    E = sum of squared differences between 4-neighbours (no wrap-around)
    V = sum of squared deviations of x from its mean

``E`` is the Dirichlet energy of the map: in the DCT basis it weights each frequency's energy
by ``4 sin^2(pi k / 2n)`` (0 for the mean, almost 4 at the highest frequency), so ``E / 4AV``
is the high-frequency fraction of the mean-removed energy and ``s`` is in [0, 1] exactly:
near 1 for a slowly varying map, near 0 for a checkerboard, about 0.5 for white noise
(about :func:`noise_smoothness`, which is higher on tiny maps: 0.67 at 2x2).
A layer's score is the mean over its live channels (and over samples). Constant channels
(dead ReLUs, or pools of them) have no shape to score: they are excluded and reported as the
``dead`` fraction. 1x1 maps have no neighbours: smoothness and dead fraction are undefined.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from anet import models, runs
from anet.data.images import load_inputs as image_inputs
from anet.errors import AnetError
from anet.files import atomic_write, check_writable, safe_name
from anet.plotting import pyplot, save_figure
from anet.report import fmt_num

DEFAULT_LAYERS = "conv1,pool1,pool2,pool_last"
MIN_TILE = 32  # upscale tiny maps (e.g. 2x2) with nearest neighbour to at least this many px
SEPARATOR = 255  # grid lines and empty cells are white; a dead channel is a black tile
COMPARE_CHANNELS = 16  # channels per layer in the compare figure (the first ones)


# --------------------------------------------------------------------------- pure functions


def grid_shape(channels: int) -> tuple[int, int]:
    """(rows, cols) for tiling ``channels`` maps: an exact near-square factorisation
    (cols <= 2 rows, e.g. 96 -> 8x12, 512 -> 16x32) when one exists, else ceil(sqrt) columns."""
    for rows in range(math.isqrt(channels), 0, -1):
        if channels % rows == 0 and channels // rows <= 2 * rows:
            return rows, channels // rows
    cols = math.ceil(math.sqrt(channels))
    return math.ceil(channels / cols), cols


def upscale_factor(height: int, width: int) -> int:
    """Nearest-neighbour factor that makes a tile at least MIN_TILE pixels on its long side."""
    return max(1, math.ceil(MIN_TILE / max(height, width, 1)))


def normalize_channels(fmap: np.ndarray) -> np.ndarray:
    """[H, W, C] -> uint8, each channel stretched to [0, 255] by its own min/max (constant -> 0).

    1x1 maps are stretched over all channels together: one pixel has no min/max of its own.
    """
    x = np.asarray(fmap, np.float64)
    over = (0, 1, 2) if x.shape[0] * x.shape[1] == 1 else (0, 1)
    lo, hi = x.min(axis=over), x.max(axis=over)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    return np.round((x - lo) / span * 255).astype(np.uint8)


def channel_grid(fmap: np.ndarray, max_channels: int = 0) -> np.ndarray:
    """Tile the channels of ``fmap`` [H, W, C] into one uint8 image with 1-px separators.

    Each tile is one channel normalised by its own min/max and upscaled by
    :func:`upscale_factor`; the layout is :func:`grid_shape`. The result is
    ``rows * h * s + rows - 1`` by ``cols * w * s + cols - 1`` pixels.
    """
    fmap = np.asarray(fmap)
    if max_channels:
        fmap = fmap[..., :max_channels]
    h, w, c = fmap.shape
    s = upscale_factor(h, w)
    tiles = normalize_channels(fmap).repeat(s, axis=0).repeat(s, axis=1)
    rows, cols = grid_shape(c)
    th, tw = h * s, w * s
    grid = np.full((rows * th + rows - 1, cols * tw + cols - 1), SEPARATOR, np.uint8)
    for i in range(c):
        r, k = divmod(i, cols)
        grid[r * (th + 1):r * (th + 1) + th, k * (tw + 1):k * (tw + 1) + tw] = tiles[..., i]
    return grid


def smoothness(fmap: np.ndarray, eps: float = 1e-6) -> tuple[float | None, float | None]:
    """(smoothness in [0, 1], higher = smoother; fraction of constant channels) of [H, W, C].

    See the module docstring for the definition. Smoothness is None when every channel is
    constant; both are None for 1x1 maps.
    """
    x = np.asarray(fmap, np.float64)
    x = x[..., None] if x.ndim == 2 else x
    h, w, _ = x.shape
    axes = [a for a, n in ((0, h), (1, w)) if n > 1]
    if not axes:
        return None, None
    lo, hi = x.min(axis=(0, 1)), x.max(axis=(0, 1))
    live = hi - lo > eps * np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
    dead = float(1.0 - live.mean())
    if not live.any():
        return None, dead
    y = x[..., live] - x[..., live].mean(axis=(0, 1))
    energy = sum((np.diff(y, axis=a) ** 2).sum(axis=(0, 1)) for a in axes)
    var = (y ** 2).sum(axis=(0, 1))
    score = np.clip(1.0 - energy / (4 * len(axes) * var), 0.0, 1.0)
    return float(score.mean()), dead


def noise_smoothness(height: int, width: int) -> float | None:
    """Expected :func:`smoothness` of white noise of this size (0.5 + O(1/n); 0.67 at 2x2)."""
    axes = [n for n in (height, width) if n > 1]
    if not axes:
        return None
    pairs = height * (width - 1) + width * (height - 1)
    return 1.0 - 2 * pairs / (4 * len(axes) * (height * width - 1))


# --------------------------------------------------------------------------- runs and layers


def resolve_layers(model, names: list[str]) -> list:
    """Keras layers for ``names`` (aliases allowed); an unknown or non-map layer is an AnetError
    listing the valid names."""
    spatial = [lay.name for lay in model.layers if len(lay.output.shape) == 4]
    out = []
    for name in names:
        try:
            layer = models.resolve_layer(model, models.layer_alias(model, name))
        except AnetError:
            layer = None
        if layer is None or layer.name not in spatial:
            raise AnetError(f"model {model.name!r} has no feature-map layer {name!r}; valid: "
                            f"{', '.join(spatial + [models.POOL_LAST])} (conv1 = conv1_1 on vgg16)")
        out.append(layer)
    return out


def load_inputs(spec, *, data_dir=None, split: str = "test", samples: int = 2, images=(),
                classes=()) -> tuple[list[dict], np.ndarray]:
    """(sample descriptions, model inputs [N, S, S, C]): the ``images`` files, else the first
    ``samples`` examples of ``split``; both through the evaluation preprocessing."""

    from anet.data import pipeline

    if images:  # same reader as `anet predict` (JPG/PNG/TIF, 16-bit), then eval_transform
        x = image_inputs(images, spec).numpy()
        return [{"name": Path(p).stem, "source": str(p)} for p in images], x
    ds = pipeline.eval_dataset(data_dir, split, spec, batch_size=samples, max_batches=1,
                               with_meta=True)
    batch = next(iter(ds), None)
    if batch is None:
        raise AnetError(f"{data_dir}: the {split} split is empty; use --split or --images")
    x, labels, files = batch[:3]
    info = []
    for label, f in zip(labels.numpy(), files.numpy()):
        f = f.decode("utf-8")
        info.append({"name": Path(f).stem, "source": f"{split}:{f}",
                     "label": classes[label] if label < len(classes) else int(label)})
    return info, x.numpy()


def layer_outputs(model, layers: list, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of ``layers`` for the batch ``x``, as numpy arrays [N, H, W, C]."""
    import keras

    probe = keras.Model(model.input, [layer.output for layer in layers])
    outs = probe(x, training=False)
    return [np.asarray(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]


# --------------------------------------------------------------------------- the command


def visualize(ckpt_dir=None, *, layers=DEFAULT_LAYERS, samples: int = 2, split: str = "test",
              images=(), out=None, ckpt: str | None = None, compare=(), runs_root="runs") -> dict:
    """``anet visualize``: grids, overview figures and smoothness table for one run, or one
    compare figure per sample for several runs (``compare``; ``ckpt_dir`` joins them first).

    Writes ``visualize.json`` into ``out`` (default ``<run>/visualize``, with ``compare``
    ``<first run>/visualize/compare``) and returns the same dict.
    """
    names = [n.strip() for n in (layers.split(",") if isinstance(layers, str) else layers)]
    names = [n for n in names if n]
    if not names:
        raise AnetError("--layers is empty; e.g. --layers conv1,pool1,pool2,pool_last")
    dirs = ([ckpt_dir] if ckpt_dir else []) + list(compare)
    if compare and len(dirs) < 2:
        raise AnetError("--compare needs at least two runs (or --run-dir plus one)")
    if compare and ckpt:
        raise AnetError("--ckpt picks a checkpoint of one run; with --compare each run uses "
                        "its evaluated/best checkpoint")
    if not dirs:
        dirs = [runs.latest_run(runs_root)]
        print(f"using the most recent run: {dirs[0]}", file=sys.stderr)
    opened = [runs.open_run(d) for d in dirs]
    _check_same_data(opened)
    first = opened[0]
    classes = first.contract.classes
    out = Path(out or first.paths.visualize / ("compare" if compare else ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise AnetError(f"{out}: cannot create the output folder (a file is in the way); "
                        "choose another --out") from None
    check_writable(out, "choose another --out")  # read-only: say so before any work

    results, samples_info, grids = [], None, []
    for run in opened:  # the same samples (first run's data), each run's own preprocessing
        chosen, why = runs.choose_checkpoint(run, ckpt)
        model = runs.build_model(run, chosen)
        chosen_layers = resolve_layers(model, names)
        info, x = load_inputs(run.contract, data_dir=first.cfg.data.dir, split=split,
                              samples=samples, images=images, classes=classes)
        samples_info = samples_info or info
        maps = layer_outputs(model, chosen_layers, x)
        results.append(_run_result(run, chosen, why, names, chosen_layers, maps, x))
        grids.append((x, maps))
        print(f"{run.dir} ({run.cfg.model.name}, {chosen.name}: {why})")
        print(format_table(results[-1]["layers"]))
    if compare:
        files = [_compare_figure(out, i, s, results, grids) for i, s in enumerate(samples_info)]
    else:
        files = _write_single(out, samples_info, results[0], *grids[0])
        _write_tensorboard(first.paths, samples_info, results[0], grids[0][1])
    report = {"split": None if images else split, "samples": samples_info, "runs": results,
              "files": [str(f) for f in files],
              "smoothness": "1 - E/(4*A*V) per live channel, mean over channels and samples; "
                            "see anet/visualize.py"}
    atomic_write(out / "visualize.json", json.dumps(report, indent=2) + "\n")
    print(f"wrote {len(files)} images and {out / 'visualize.json'}")
    return report


def _check_same_data(opened: list) -> None:
    keys = [(len(r.contract.classes), r.contract.channels) for r in opened]
    if len(set(keys)) > 1:
        have = "; ".join(f"{r.dir}: {k[0]} classes, {k[1]} channels" for r, k in zip(opened, keys))
        raise AnetError(f"--compare needs runs on one dataset (same classes and channels): {have}")


def _run_result(run, chosen, why, names, layers, maps, x) -> dict:
    rows = []
    for name, layer, fmap in zip(names, layers, maps):
        scores = [smoothness(m) for m in fmap]
        smooth = [s for s, _ in scores if s is not None]
        dead = [d for _, d in scores if d is not None]
        h, w, c = fmap.shape[1:]
        rows.append({"name": name, "layer": layer.name, "shape": [h, w, c],
                     "smoothness": float(np.mean(smooth)) if smooth else None,
                     "dead_fraction": float(np.mean(dead)) if dead else None,
                     "noise_smoothness": noise_smoothness(h, w),
                     "per_sample": [{"smoothness": s, "dead_fraction": d} for s, d in scores]})
    return {"run": str(run.dir), "model": run.cfg.model.name,
            "checkpoint": chosen.name, "checkpoint_reason": why,
            "step": chosen.step, "input_shape": list(x.shape[1:]), "layers": rows}


def format_table(rows: list[dict]) -> str:
    """layer, shape, smoothness, white-noise reference and dead-channel fraction as text."""
    lines = [f"{'layer':<22} {'shape':>12} {'smoothness':>10} {'noise':>6} {'dead':>6}"]
    for r in rows:
        cells = [fmt_num(r[k], 3, "n/a") for k in ("smoothness", "noise_smoothness", "dead_fraction")]
        lines.append(f"{_label(r):<22} {models.fmt_shape(r['shape']):>12} {cells[0]:>10} "
                     f"{cells[1]:>6} {cells[2]:>6}")
    lines.append("smoothness: 1 = smooth, ~noise = white noise, 0 = checkerboard; "
                 "dead: fraction of constant channels (excluded)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- writers


def _write_single(out: Path, info: list, result: dict, x: np.ndarray, maps: list) -> list:
    files = []
    for i, sample in enumerate(info):
        folder = out / f"{i:02d}-{safe_name(sample['name'], 'sample')}"
        folder.mkdir(exist_ok=True)
        panels = [("input", _input_image(x[i]), models.fmt_shape(x.shape[1:]))]
        for row, fmap in zip(result["layers"], maps):
            grid = channel_grid(fmap[i])
            files.append(_save_png(grid, folder / f"{safe_name(row['name'], 'layer')}.png"))
            s = row["per_sample"][i]["smoothness"]
            panels.append((_label(row), grid, f"{models.fmt_shape(row['shape'])}  s={fmt_num(s, 2, 'n/a')}"))
        title = (f"{Path(result['run']).name} ({result['model']}, {result['checkpoint']}): "
                 f"{sample['source']}" + (f", label {sample['label']}" if "label" in sample else ""))
        files.append(_figure([[p] for p in panels], title, folder / "overview.png"))
    return files


def _compare_figure(out: Path, i: int, sample: dict, results: list, grids: list) -> Path:
    rows = []
    for result, (x, maps) in zip(results, grids):
        row = [("input", _input_image(x[i]), models.fmt_shape(x.shape[1:]),
                f"{Path(result['run']).name} ({result['model']})")]
        for layer, fmap in zip(result["layers"], maps):
            s = layer["per_sample"][i]["smoothness"]
            row.append((_label(layer), channel_grid(fmap[i], COMPARE_CHANNELS),
                        f"{models.fmt_shape(layer['shape'])}  s={fmt_num(s, 2, 'n/a')}"))
        rows.append(row)
    title = f"{sample['source']}: first {COMPARE_CHANNELS} channels per layer, s = smoothness"
    return _figure(list(map(list, zip(*rows))), title,
                   out / f"compare-{i:02d}-{safe_name(sample['name'], 'sample')}.png")


def _figure(columns: list[list], title: str, path: Path) -> Path:
    """A matplotlib grid of (title, image, caption[, row label]) panels, given as columns."""
    plt = pyplot()
    ncols, nrows = len(columns), len(columns[0])
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.9 * ncols, 3.1 * nrows + 0.4), dpi=110,
                             squeeze=False)
    for c, column in enumerate(columns):
        for r, (name, img, caption, *row_label) in enumerate(column):
            ax = axes[r][c]
            if row_label:
                ax.set_ylabel(row_label[0], fontsize=10)
            ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(caption, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(h_pad=1.5)
    return save_figure(fig, path)


def _write_tensorboard(paths: runs.RunPaths, info: list, result: dict, maps: list) -> None:
    """The same grids as TensorBoard image summaries in ``<run>/tensorboard/visualize``."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(paths.tensorboard / "visualize"))
    with writer.as_default():
        for i, sample in enumerate(info):
            for row, fmap in zip(result["layers"], maps):
                grid = channel_grid(fmap[i])[None, ..., None]
                tf.summary.image(f"{i:02d}-{safe_name(sample['name'], 'sample')}/{row['name']}", grid,
                                 step=int(result["step"]))
    writer.close()


def _input_image(x: np.ndarray) -> np.ndarray:
    """A preprocessed input stretched to uint8 [0, 255] over all channels (keeps colour)."""
    lo, hi = float(x.min()), float(x.max())
    img = np.round((x - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
    return img[..., 0] if img.shape[-1] == 1 else img


def _save_png(img: np.ndarray, path: Path) -> Path:
    from PIL import Image

    return atomic_write(path, lambda tmp: Image.fromarray(img).save(tmp))


def _label(row: dict) -> str:
    """``pool_last (pool6)``: the requested name, and the layer it resolved to if different."""
    return row["name"] if row["name"] == row["layer"] else f"{row['name']} ({row['layer']})"
