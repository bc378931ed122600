"""Input pipeline: pure preprocessing functions (eager and in tf.data) and dataset order."""

import numpy as np
import pytest
import tensorflow as tf

from anet.config import DataConfig
from anet.data import pipeline as P
from anet.data.contract import InputContract, from_dataset
from anet.data.info import load_dataset
from anet.errors import AnetError
from tests.tinydata import jpeg, write_dataset


def spec(**kw):
    base = dict(image_size=16, channels=1)
    return InputContract(**(base | kw))


def test_stretch_resize_shape_and_range():
    img = tf.constant(np.full((40, 10, 1), 200, np.uint8))
    out = P.resize(img, spec())
    assert out.shape == (16, 16, 1)
    np.testing.assert_allclose(out.numpy(), 200, atol=1e-3)


def test_pad_keeps_relative_length_and_fills_with_border():
    # Two bars of length 10 and 20 in a dataset whose largest side is 32: with pad they stay
    # 5 and 10 px long on a 16 px canvas; stretch would make both 16 px.
    sp = spec(resize="pad", pad_scale=16 / 32)
    out = []
    for length in (10, 20):
        img = np.full((length, 4, 1), 220, np.uint8)
        img[:, 1:3] = 20
        r = P.resize(tf.constant(img), sp).numpy()[..., 0]
        assert r.shape == (16, 16)
        out.append(int((r.min(axis=1) < 120).sum()))  # rows containing the dark bar
        assert r[0, 0] > 150  # filled with the light border value, not black
    assert out == [5, 10]


def test_pad_scales_down_images_larger_than_the_dataset_max():
    img = tf.constant(np.zeros((64, 8, 1), np.uint8))
    assert P.resize(img, spec(resize="pad", pad_scale=1.0)).shape == (16, 16, 1)


def test_pad_never_crops_a_large_image():
    # Training bars were at most 20 px (-> 8 px on the 16 px canvas). A bar imaged at three
    # times that size (60 px) would need 24 px: it is shrunk to fit, both ends stay visible,
    # and it is flagged out of range.
    sp = spec(resize="pad", pad_scale=8 / 20, size_min=(10, 4), size_max=(20, 16))
    img = np.full((60, 16, 1), 220, np.uint8)
    img[:, 4:12] = 20
    r = P.resize(tf.constant(img), sp).numpy()[..., 0]
    dark_rows = np.flatnonzero(r.min(axis=1) < 120)
    assert dark_rows[0] == 0 and dark_rows[-1] == 15  # the whole bar, top to bottom
    assert sp.out_of_range(60, 16) and not sp.out_of_range(20, 16)
    # --scale 1/3 says "taken at three times the magnification": then it is a training-size bar
    third = sp.scaled(1 / 3)
    assert not third.out_of_range(60, 16, 1 / 3)
    r2 = P.resize(tf.constant(img), third).numpy()[..., 0]
    ref = P.resize(tf.constant(img[::3, ::3]), sp).numpy()[..., 0]
    assert (r2.min(axis=1) < 180).sum() == (ref.min(axis=1) < 180).sum() == 8


def test_scale_is_refused_for_stretch_runs():
    with pytest.raises(AnetError, match="only runs trained with data.resize: pad"):
        spec().scaled(0.5)
    with pytest.raises(AnetError, match="--scale must be > 0"):
        spec(resize="pad").scaled(0)


def test_normalize_unit_and_standardize():
    x = tf.constant(np.full((2, 2, 1), 255.0, np.float32))
    assert P.normalize(x, spec()).numpy().max() == pytest.approx(1.0)
    z = P.normalize(x, spec(mean=(0.5,), std=(0.25,)))
    np.testing.assert_allclose(z.numpy(), 2.0)


def test_eval_transform_same_eagerly_and_in_tf_data():
    arr = np.random.default_rng(0).integers(0, 255, (30, 20, 1), dtype=np.uint8)
    data = jpeg(arr)
    sp = spec(resize="pad", pad_scale=0.5)
    eager = P.eval_transform(tf.constant(data), sp).numpy()
    ds = tf.data.Dataset.from_tensors(data).map(lambda b: P.eval_transform(b, sp))
    graph = next(iter(ds)).numpy()
    np.testing.assert_allclose(eager, graph, atol=1e-5)
    assert eager.min() >= 0 and eager.max() <= 1


def test_augment_is_seeded_and_shape_preserving():
    img = tf.random.uniform((16, 16, 1), seed=1)
    a = P.augment(img, tf.constant([1, 2], tf.int64), spec())
    b = P.augment(img, tf.constant([1, 2], tf.int64), spec())
    assert a.shape == (16, 16, 1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_rotation_by_90_degrees_equals_np_rot90():
    # Golden value: a quarter turn about the centre is np.rot90 (counter-clockwise as shown).
    img = np.arange(25, dtype=np.float32).reshape(5, 5, 1)
    m = P.affine_matrix(tf.constant(np.pi / 2), tf.constant(1.0), tf.constant([0.0, 0.0]), 5)
    np.testing.assert_allclose(P.transform(tf.constant(img), m).numpy(), np.rot90(img), atol=1e-4)
    shifted = P.transform(tf.constant(img), P.affine_matrix(
        tf.constant(0.0), tf.constant(1.0), tf.constant([1.0, 0.0]), 5)).numpy()[..., 0]
    np.testing.assert_allclose(shifted[:, 1:], img[:, :4, 0], atol=1e-4)  # one pixel right
    np.testing.assert_allclose(shifted[:, 0], img[:, 0, 0], atol=1e-4)  # edge extended


FULL = P.Augmentation(rotate_degrees=20, scale=0.1, translate=0.1)


def test_affine_augment_is_seeded_same_eager_and_in_tf_data():
    img = tf.random.uniform((16, 16, 1), seed=1)
    seeds = tf.constant([[1, 2], [1, 3]], tf.int64)
    eager = [P.augment(img, sd, spec(), FULL).numpy() for sd in seeds]
    ds = tf.data.Dataset.from_tensor_slices(seeds).map(lambda sd: P.augment(img, sd, spec(), FULL))
    for e, g in zip(eager, ds):
        np.testing.assert_allclose(e, g.numpy(), atol=1e-6)
    assert not np.allclose(eager[0], eager[1])  # another example, another draw
    assert not np.allclose(eager[0], img.numpy())


def test_zero_augmentation_equals_no_augmentation(tiny):
    sp = from_dataset(DataConfig(dir=str(tiny), image_size=16), load_dataset(tiny))
    none = P.Augmentation(crop=False, flip=False)
    assert P.Augmentation.from_config(DataConfig()) is None  # data.augment off
    plain = P.train_dataset(tiny, sp, batch_size=8, epoch=1, seed=3)
    zero = P.train_dataset(tiny, sp, batch_size=8, epoch=1, seed=3, augmentation=none)
    for (a, _), (b, _) in zip(plain, zero):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    full = P.train_dataset(tiny, sp, batch_size=8, epoch=1, seed=3, augmentation=FULL)
    assert not np.allclose(next(iter(plain))[0], next(iter(full))[0])


@pytest.mark.parametrize("over, msg", [
    ("data.rotate_degrees=-5", "data.rotate_degrees must be >= 0 and <= 180, got -5"),
    ("data.scale=1.5", "data.scale must be >= 0 and < 1, got 1.5"),
    ("data.translate=0.7", "data.translate must be >= 0 and <= 0.5, got 0.7"),
])
def test_bad_augmentation_values_are_one_line_errors(tmp_path, over, msg):
    from anet.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=msg):
        load_config(None, ["data.augment=true", over])
    with pytest.raises(ConfigError, match="needs data.augment: true"):
        load_config(None, ["data.rotate_degrees=10"])


def test_cli_refuses_bad_augmentation_and_flipping_digits(tmp_path, capsys, tiny):
    import json
    import shutil

    from tests.cli import run_cli
    from tests.tinyrun import tiny_config

    code, _, err = run_cli(["train", tiny_config(tmp_path, tiny),
                            "--set", "data.scale=2", "--run-dir", tmp_path / "r"], capsys)
    assert code == 2 and "data.scale must be >= 0 and < 1" in err and len(err.splitlines()) == 1
    digits = tmp_path / "mnist"
    shutil.copytree(tiny, digits)
    meta = json.loads((digits / "dataset.json").read_text())
    (digits / "dataset.json").write_text(json.dumps(meta | {"name": "mnist"}))
    cfg = tiny_config(tmp_path, digits, augment=True)
    code, _, err = run_cli(["train", cfg, "--run-dir", tmp_path / "d"], capsys)
    assert code == 2 and "set data.flip: false" in err
    assert {p.name for p in (tmp_path / "d").iterdir()} <= {".anet.lock"}  # nothing written


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("tiny"))


def test_train_dataset_deterministic_per_epoch_and_resumable(tiny):
    sp = from_dataset(DataConfig(dir=str(tiny), image_size=16), load_dataset(tiny))
    def labels(epoch, skip=0):
        ds = P.train_dataset(tiny, sp, batch_size=8, epoch=epoch, seed=3, skip_batches=skip)
        return [y.numpy().tolist() for _, y in ds]
    e0 = labels(0)
    assert len(e0) == 6  # 48 examples / 8, drop_remainder
    assert e0 == labels(0)
    assert e0 != labels(1)  # reshuffled per epoch
    assert labels(0, skip=2) == e0[2:]


def test_train_dataset_with_augmentation_shapes(tiny):
    sp = from_dataset(DataConfig(dir=str(tiny), image_size=16), load_dataset(tiny))
    x, y = next(iter(P.train_dataset(tiny, sp, batch_size=4, epoch=0, seed=0,
                                    augmentation=P.Augmentation(rotate_degrees=10, scale=0.1))))
    assert x.shape == (4, 16, 16, 1) and x.dtype == tf.float32 and y.dtype == tf.int32


def test_eval_dataset_covers_split_once_with_meta(tiny):
    sp = from_dataset(DataConfig(dir=str(tiny), image_size=16), load_dataset(tiny))
    names = []
    for _x, _y, f, _c, hw in P.eval_dataset(tiny, "valid", sp, batch_size=5, with_meta=True):
        names += [n.decode() for n in f.numpy()]
        assert hw.numpy().tolist() == [[20, 12]] * len(f)
    assert len(names) == 12 == len(set(names))


def test_missing_dataset_and_shards_errors(tmp_path):
    with pytest.raises(AnetError, match="run `anet prepare` first"):
        load_dataset(tmp_path)
    with pytest.raises(AnetError, match="no train-\\*.tfrecord shards"):
        P._files(tmp_path, "train")


def test_corrupt_dataset_json_is_a_one_line_error(tmp_path):
    (tmp_path / "dataset.json").write_text('{"name": "tiny", ')  # cut off mid-write by hand
    with pytest.raises(AnetError, match="dataset.json: not valid JSON .*anet prepare --force"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("change,message", [
    ({"colour": 1}, "unknown key 'colour'"),
    ({"num_classes": None}, "key 'num_classes' has the wrong type"),
    ({"classes": ["a"]}, "key 'num_classes' is 3 but 'classes' lists 1"),
    ({"totals": {"train": 1}}, "key 'totals' lacks valid, test"),
])
def test_dataset_json_with_wrong_keys_is_one_line_naming_file_and_key(tiny, tmp_path, change, message):
    import json
    import shutil

    d = tmp_path / "d"
    shutil.copytree(tiny, d)
    meta = json.loads((d / "dataset.json").read_text())
    (d / "dataset.json").write_text(json.dumps(meta | change))
    with pytest.raises(AnetError, match=f"^{d}/dataset.json: {message}.*anet prepare --force") as e:
        load_dataset(d)
    assert "\n" not in str(e.value)
    del meta["channels"]
    (d / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(AnetError, match="missing key 'channels'"):
        load_dataset(d)


def test_dataset_info_round_trips(tiny):
    from anet.data.info import DatasetInfo

    info = load_dataset(tiny)
    assert info.num_classes == 3 and info.classes == ("0", "1", "2") and info.split_size("valid") == 12
    assert DatasetInfo.from_json(info.to_json()) == info and len(info.sha256) == 64


def test_to_device_prefetches_the_same_batches_and_none_leaves_the_dataset():
    ds = tf.data.Dataset.range(10).batch(3)
    assert P.to_device(ds, None) is ds
    on_cpu = P.to_device(ds, "/cpu:0")  # the GPU path, on the device a test has
    got = [b.numpy().tolist() for b in on_cpu]
    assert got == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert all("CPU:0" in b.device for b in on_cpu)
