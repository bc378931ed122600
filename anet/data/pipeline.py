"""tf.data input pipeline: TFRecord shards -> (image float32 [S, S, C], label int32) batches.

Preprocessing is a chain of pure functions ``(tensor, spec) -> tensor`` shared by training,
evaluation and ``anet predict`` (one code path). Training adds a seeded shuffle and optional
augmentation; each epoch is its own dataset with its own shuffle seed, so a resumed run can
skip exactly the batches it already trained on.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from anet.data.contract import InputContract
from anet.data.records import parse_example, shard_paths
from anet.errors import AnetError

AUTOTUNE = tf.data.AUTOTUNE
AUG_PAD = 8  # pixels of padding before the random crop


def decode(image_bytes: tf.Tensor, spec: InputContract) -> tf.Tensor:
    """JPEG/PNG bytes -> uint8 [H, W, C] with the dataset's channel count."""
    img = tf.io.decode_image(image_bytes, channels=spec.channels, expand_animations=False)
    img.set_shape([None, None, spec.channels])
    return img


def resize(img: tf.Tensor, spec: InputContract) -> tf.Tensor:
    """uint8/float [H, W, C] -> float32 [S, S, C] in [0, 255].

    ``stretch`` scales each axis to S (the paper). ``pad`` scales every image by one factor
    (S / largest side in the dataset, so relative lengths survive; smaller if an image
    would not fit) and centres it on a canvas filled with the image's mean border value
    (light background for chromosomes, dark for digits).
    """
    s = spec.image_size
    img = tf.cast(img, tf.float32)
    if spec.resize == "stretch":
        return tf.image.resize(img, [s, s], antialias=True)
    shape = tf.cast(tf.shape(img)[:2], tf.float32)
    scale = tf.minimum(spec.pad_scale, tf.reduce_min(s / shape))
    new_hw = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
    border = tf.concat(
        [img[0], img[-1], img[:, 0], img[:, -1]], axis=0
    )  # [N, C] pixels on the four edges
    fill = tf.reduce_mean(border, axis=0)
    small = tf.image.resize(img, new_hw, antialias=True)
    top = (s - new_hw[0]) // 2
    left = (s - new_hw[1]) // 2
    padded = tf.pad(
        small - fill, [[top, s - new_hw[0] - top], [left, s - new_hw[1] - left], [0, 0]]
    )
    return tf.ensure_shape(padded + fill, [s, s, spec.channels])


def normalize(img: tf.Tensor, spec: InputContract) -> tf.Tensor:
    """[0, 255] -> [0, 1], then per-channel standardization when the spec has mean/std."""
    x = img / 255.0
    if spec.mean:
        x = (x - tf.constant(spec.mean, tf.float32)) / tf.constant(spec.std, tf.float32)
    return x


DIGIT_DATASETS = ("mnist",)  # a mirrored digit is not that digit: no horizontal flip


@dataclass(frozen=True)
class Augmentation:
    """Training-only augmentation (``data.augment`` and its keys); every draw is stateless."""

    crop: bool = True  # random crop after padding AUG_PAD px by edge reflection
    flip: bool = True  # horizontal flip with probability 1/2
    rotate_degrees: float = 0.0  # rotation uniform in [-r, r] degrees (counter-clockwise > 0)
    scale: float = 0.0  # zoom factor uniform in [1 - s, 1 + s]
    translate: float = 0.0  # shift uniform in [-t, t] x image size, per axis

    @classmethod
    def from_config(cls, data) -> Augmentation | None:
        """From a DataConfig; None when ``data.augment`` is off."""
        if not data.augment:
            return None
        return cls(crop=data.crop, flip=data.flip, rotate_degrees=data.rotate_degrees,
                   scale=data.scale, translate=data.translate)

    @property
    def affine(self) -> bool:
        return bool(self.rotate_degrees or self.scale or self.translate)


def affine_matrix(angle: tf.Tensor, zoom: tf.Tensor, shift: tf.Tensor, size: int) -> tf.Tensor:
    """The 8 projective-transform parameters (output -> input pixel coordinates) of a rotation
    by ``angle`` radians (counter-clockwise as displayed), a zoom by ``zoom`` about the image
    centre and a shift by ``shift`` = (dx, dy) pixels: out = c + zoom * R(angle) (in - c) + shift."""
    c = (size - 1) / 2.0
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    x0, y0 = c + shift[0], c + shift[1]
    # in = c + R(-angle) (out - (c + shift)) / zoom, with y pointing down in image coordinates
    a0, a1, b0, b1 = cos, -sin, sin, cos
    return tf.stack([a0, a1, c - a0 * x0 - a1 * y0, b0, b1, c - b0 * x0 - b1 * y0, 0.0, 0.0])


def transform(img: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """[S, S, C] float image through an affine_matrix (bilinear; edges extended outward, so
    the background of chromosomes and digits fills the corners)."""
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=img[tf.newaxis], transforms=tf.cast(matrix, tf.float32)[tf.newaxis],
        output_shape=tf.shape(img)[:2], fill_value=0.0, interpolation="BILINEAR",
        fill_mode="NEAREST")
    return tf.ensure_shape(out[0], img.shape)


def augment_degrees(seed: tf.Tensor, aug: Augmentation) -> tf.Tensor:
    """The rotation (degrees, counter-clockwise) that :func:`augment` applies for ``seed``."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    return tf.random.stateless_uniform([], seeds[2], -1.0, 1.0) * aug.rotate_degrees


def rotated_polarity(polarity: tf.Tensor, rotation: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """The p-arm's end (0 up, 1 down, -1 unknown) of a chromosome lying ``rotation`` degrees from
    upright after turning it by ``degrees`` more: it flips once the axis passes horizontal."""
    def past_horizontal(deg):
        return tf.abs(tf.math.floormod(deg + 180.0, 360.0) - 180.0) > 90.0

    rotation = tf.cast(rotation, tf.float32)
    flip = tf.logical_and(tf.not_equal(past_horizontal(rotation),
                                       past_horizontal(rotation + degrees)), polarity >= 0)
    return tf.where(flip, 1 - polarity, polarity)


def augment(img: tf.Tensor, seed: tf.Tensor, spec: InputContract,
            aug: Augmentation = Augmentation()) -> tf.Tensor:
    """Seeded training augmentation of one [S, S, C] image: rotation/scale/translation, then
    random crop (after padding AUG_PAD px by edge reflection), then horizontal flip. The same
    (image, seed) gives the same output, eagerly or inside tf.data."""
    s = spec.image_size
    seeds = tf.random.experimental.stateless_split(seed, 5)
    if aug.affine:
        angle = augment_degrees(seed, aug) * (math.pi / 180)
        zoom = 1.0 + tf.random.stateless_uniform([], seeds[3], -1.0, 1.0) * aug.scale
        shift = tf.random.stateless_uniform([2], seeds[4], -1.0, 1.0) * aug.translate * s
        img = transform(img, affine_matrix(angle, zoom, shift, s))
    if aug.crop:
        padded = tf.pad(img, [[AUG_PAD, AUG_PAD], [AUG_PAD, AUG_PAD], [0, 0]], mode="REFLECT")
        img = tf.image.stateless_random_crop(padded, [s, s, spec.channels], seed=seeds[0])
    if aug.flip:
        img = tf.image.stateless_random_flip_left_right(img, seed=seeds[1])
    return img


def eval_transform(image_bytes: tf.Tensor, spec: InputContract) -> tf.Tensor:
    """Bytes -> model input, for evaluation and prediction."""
    return normalize(resize(decode(image_bytes, spec), spec), spec)


def _files(data_dir: str | Path, split: str) -> list[str]:
    files = shard_paths(data_dir, split)
    if not files:
        raise AnetError(f"{data_dir}: no {split}-*.tfrecord shards; re-run `anet prepare`")
    return files


def damaged_shard(data_dir: str | Path) -> tuple[str, str] | None:
    """``(shard, reason)`` of the first TFRecord shard in ``data_dir`` that does not read to its
    end (truncated or corrupt), or None."""
    for f in sorted(Path(data_dir).glob("*.tfrecord")):
        try:
            for _ in tf.data.TFRecordDataset(str(f)):
                pass
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as e:
            return str(f), e.message.splitlines()[0].split("}}")[-1].split(" [Op:")[0].strip()
    return None


@contextlib.contextmanager
def read_errors(data_dir: str | Path):
    """Turn a damaged shard met while reading ``data_dir`` into a one-line AnetError naming it."""
    try:
        yield
    except tf.errors.DataLossError as e:
        found = damaged_shard(data_dir)
        shard, reason = found or (str(data_dir), e.message.splitlines()[0][:160])
        raise AnetError(f"{shard}: damaged TFRecord shard ({reason}); re-run `anet prepare "
                        f"--force` for {data_dir}") from None


def _records(files: list[str], seed: int | None) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(files)
    if seed is not None:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=False)
    return ds.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
        num_parallel_calls=AUTOTUNE, deterministic=True,
    )


def train_dataset(
    data_dir: str | Path, spec: InputContract, *, batch_size: int, epoch: int, seed: int,
    skip_batches: int = 0, augmentation: Augmentation | None = None, shuffle_buffer: int = 10000,
    polarity: bool = False,
) -> tf.data.Dataset:
    """One epoch of shuffled training batches (drop_remainder: static shapes for XLA).

    The order depends only on (seed, epoch), and each example's augmentation only on (seed,
    epoch, its index in the epoch), so ``skip_batches`` resumes mid-epoch exactly. With
    ``polarity`` each element also carries the p-arm's end (int32, 0 up, 1 down, -1 unknown),
    after the augmentation's rotation (:func:`rotated_polarity`).
    """
    epoch_seed = seed * 100003 + epoch
    ds = _records(_files(data_dir, "train"), epoch_seed)
    ds = ds.shuffle(shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False)
    if skip_batches:
        ds = ds.skip(skip_batches * batch_size)  # before decoding: skipping costs only I/O

    def parse(index, serialized):
        ex = parse_example(serialized)
        img = resize(decode(ex["image"], spec), spec)
        pol = tf.cast(ex["polarity"], tf.int32)
        if augmentation is not None:
            key = tf.stack([tf.cast(epoch_seed, tf.int64), index])
            img = augment(img, key, spec, augmentation)
            if augmentation.affine:
                pol = rotated_polarity(pol, ex["rotation"], augment_degrees(key, augmentation))
        x, y = normalize(img, spec), tf.cast(ex["label"], tf.int32)
        return (x, y, pol) if polarity else (x, y)

    ds = ds.enumerate(start=skip_batches * batch_size).map(
        parse, num_parallel_calls=AUTOTUNE, deterministic=True
    )
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def step_device() -> str | None:
    """The device a single-device step runs on when it is not the CPU (the first GPU), else
    None: batches are prefetched there (see :func:`to_device`)."""
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else None


def to_device(ds: tf.data.Dataset, device: str | None, buffer: int = 2) -> tf.data.Dataset:
    """``ds`` with its next ``buffer`` batches copied to ``device`` ahead of the step that
    takes them (the last transformation of a pipeline); unchanged when ``device`` is None."""
    if device is None:
        return ds
    return ds.apply(tf.data.experimental.prefetch_to_device(device, buffer_size=buffer))


def eval_dataset(
    data_dir: str | Path, split: str, spec: InputContract, *, batch_size: int,
    max_batches: int = 0, with_meta: bool = False, polarity: bool = False,
    cache: str | None = None,
) -> tf.data.Dataset:
    """A split in file order, every example once (last batch may be smaller).

    With ``with_meta`` each element is (image, label, filename, cell, [height, width] of the
    stored image) for per-example reports; ``polarity`` appends the p-arm's end (int32, 0 up,
    1 down, -1 unknown) to either form. ``cache`` (see anet.data.cache.where): None reads
    and decodes the split on every pass; ``""`` keeps the decoded batches in memory after the
    first pass; a path keeps them in that tf.data cache file.
    """

    def parse(serialized):
        ex = parse_example(serialized)
        img = eval_transform(ex["image"], spec)
        label = tf.cast(ex["label"], tf.int32)
        out = (img, label)
        if with_meta:
            out += (ex["filename"], ex["cell"], tf.stack([ex["height"], ex["width"]]))
        return out + (tf.cast(ex["polarity"], tf.int32),) if polarity else out

    ds = _records(_files(data_dir, split), None)
    ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True).batch(batch_size)
    if max_batches:
        ds = ds.take(max_batches)
    if cache is not None:
        ds = ds.cache(cache)
    return ds.prefetch(AUTOTUNE)


def decoded_once(data_dir: str | Path, split: str, spec: InputContract, *, examples: int,
                 batch_size: int, folder: Path | None, max_batches: int = 0,
                 polarity: bool = False, limit: int | None = None) -> tf.data.Dataset:
    """:func:`eval_dataset` decoded on its first pass only and kept for the later ones (in
    memory when it fits, else a cache file in ``folder``; see anet.data.cache). ``examples``
    is the split's size; ``limit`` the memory cap in bytes (default cache.MEMORY_LIMIT)."""
    from anet.data import cache

    if max_batches:
        examples = min(examples, max_batches * batch_size)
    where = cache.where(examples, spec.image_size, spec.channels, folder,
                        cache.MEMORY_LIMIT if limit is None else limit)
    return eval_dataset(data_dir, split, spec, batch_size=batch_size, max_batches=max_batches,
                        polarity=polarity, cache=where)


def empty_split(split: str) -> str:
    """The one-line error for a split with no examples."""
    if split == "train":
        return "the train split is empty; re-run `anet prepare` with smaller --valid/--test-ratio"
    name = {"valid": "validation"}.get(split, split)
    return f"the {name} split is empty; re-run `anet prepare` with --{split}-ratio > 0"
