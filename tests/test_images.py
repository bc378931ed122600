"""The intensity policy and file reading shared by prepare, predict and visualize."""

import io

import numpy as np
import pytest
from PIL import ExifTags, Image

from anet.data import images, sources
from anet.data.contract import InputContract
from anet.errors import AnetError


def saved(tmp_path, name, arr, **kw):
    path = tmp_path / name
    Image.fromarray(arr).save(path, **kw)
    return path


@pytest.fixture
def picture():
    rng = np.random.default_rng(0)
    img = np.full((30, 20), 230, np.uint8)
    img[5:25, 8:12] = 60
    return np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


def test_8bit_16bit_and_rgb_of_one_picture_convert_equally(picture, tmp_path):
    files = {
        "8": saved(tmp_path, "a8.tif", picture),
        "16": saved(tmp_path, "a16.tif", picture.astype(np.uint16) * 257),  # full 16-bit range
        "16+7": saved(tmp_path, "b16.tif", picture.astype(np.uint16) * 256 + 7),  # a lab export
        "rgb": saved(tmp_path, "rgb.tif", np.stack([picture] * 3, axis=-1)),
        "lzw": saved(tmp_path, "lzw.tif", picture, compression="tiff_lzw"),
    }
    for name, path in files.items():
        prepared = sources.read_image(path)  # what `anet prepare` stores
        data, hw = images.image_bytes(path, 1)  # what `anet predict` feeds the model
        predicted = np.asarray(Image.open(io.BytesIO(data)))
        assert hw == (30, 20)
        np.testing.assert_array_equal(prepared, predicted)
        diff = np.abs(prepared.astype(int) - picture).max()
        assert diff <= (1 if name == "16+7" else 0), name  # equal within rounding


def test_no_per_image_stretch(tmp_path):
    # A dim 16-bit image stays dim: the minimum is not pulled to 0 nor the maximum to 255.
    a = np.linspace(1000, 41000, 600).reshape(30, 20).astype(np.uint16)
    gray = sources.read_image(saved(tmp_path, "dim.tif", a))
    np.testing.assert_array_equal(gray, np.round(a / 65535 * 255).astype(np.uint8))
    assert gray.min() == 4 and gray.max() == 160


def test_float_and_three_channel_models():
    f = Image.fromarray(np.array([[0.0, 0.5], [1.0, 2.0]], np.float32))
    np.testing.assert_array_equal(sources.to_uint8(f), [[0, 128], [255, 255]])
    g = Image.fromarray(np.array([[0, 65535]], np.uint16))
    assert sources.to_uint8(g, 3).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    rgb = Image.fromarray(np.array([[[255, 0, 0]]], np.uint8))
    assert sources.to_uint8(rgb, 1).tolist() == [[76]]  # ITU-R 601: 0.299 * 255


def test_8bit_png_and_jpg_pass_through_unchanged(picture, tmp_path):
    for name in ("a.png", "a.jpg"):
        path = saved(tmp_path, name, picture)
        assert images.image_bytes(path, 1)[0] == path.read_bytes()


def test_bmp_gif_and_colour_for_a_gray_model_read_as_prepare_reads_them(picture, tmp_path):
    import tensorflow as tf

    rgb = np.stack([picture, picture // 2, 255 - picture], axis=-1)
    for name, arr, channels in (("g.bmp", picture, 1), ("g.gif", picture, 1), ("c.jpg", rgb, 1),
                                ("c.bmp", rgb, 3), ("c.png", rgb, 1)):
        path = saved(tmp_path, name, arr)
        data, _ = images.image_bytes(path, channels)
        decoded = tf.io.decode_image(data, channels=channels, expand_animations=False).numpy()
        np.testing.assert_array_equal(decoded.reshape(sources.read_image(path, channels).shape),
                                      sources.read_image(path, channels), err_msg=name)
    rgb_jpg = saved(tmp_path, "rgb.jpg", rgb)
    assert images.image_bytes(rgb_jpg, 3)[0] == rgb_jpg.read_bytes()  # colour model: as is


def tagged(tmp_path, name, arr, orientation):
    """``arr`` saved as a JPEG whose EXIF Orientation tag says how to show it (as phones do)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return saved(tmp_path, name, arr, exif=exif, quality=95)


@pytest.mark.parametrize("orientation,shown", [
    (6, lambda a: np.rot90(a, -1)),  # a phone held upright: stored sideways, shown turned right
    (8, lambda a: np.rot90(a, 1)),
    (3, lambda a: np.rot90(a, 2)),
    (2, lambda a: a[:, ::-1]),
])
def test_exif_orientation_is_applied_by_prepare_and_predict(picture, tmp_path, orientation,
                                                            shown):
    import tensorflow as tf

    rgb = np.stack([picture, picture // 2, 255 - picture], axis=-1)
    for arr, channels in ((picture, 1), (rgb, 3), (rgb, 1)):
        stored = sources.read_image(saved(tmp_path, "plain.jpg", arr, quality=95), channels)
        path = tagged(tmp_path, "photo.jpg", arr, orientation)  # the same JPEG data plus a tag
        up = shown(stored)
        np.testing.assert_array_equal(sources.read_image(path, channels), up)  # prepare
        data, hw = images.image_bytes(path, channels)  # predict
        assert hw == up.shape[:2] and data != path.read_bytes()
        decoded = tf.io.decode_image(data, channels=channels, expand_animations=False).numpy()
        np.testing.assert_array_equal(decoded.reshape(up.shape), up)
    plain = tagged(tmp_path, "upright.jpg", picture, 1)  # orientation 1: passes through
    assert images.image_bytes(plain, 1)[0] == plain.read_bytes()


def test_expand_paths_folders_globs_and_misses(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / ".hidden").mkdir()
    for rel in ("d/a.tif", "d/sub/b.PNG", "d/.hidden/c.png", "d/notes.txt", "e1.jpg", "e2.jpg"):
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    files, missing = images.expand_paths([tmp_path / "d", str(tmp_path / "e*.jpg"),
                                          tmp_path / "empty", str(tmp_path / "z*.png")])
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "d/a.tif", "d/sub/b.PNG", "e1.jpg", "e2.jpg"]
    assert [why for _, why in missing] == ["folder holds no image files",
                                           "no files match this pattern"]


def test_unreadable_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image")
    for name, why in (("empty.tif", "empty file"), ("notes.png", "not an image Pillow"),
                      ("missing.tif", "no such image file")):
        with pytest.raises(AnetError, match=why):
            images.image_bytes(tmp_path / name, 1)
    with pytest.raises(AnetError, match="is a folder"):
        images.image_bytes(tmp_path, 1)


def test_contract_json_round_trip_and_refusal():
    c = InputContract(image_size=32, channels=1, resize="pad", pad_scale=0.5, mean=(0.8,),
                      std=(0.2,), classes=("1", "2"), size_min=(10, 4), size_max=(60, 20))
    assert InputContract.from_json(c.to_json()) == c
    with pytest.raises(AnetError, match="not an anet input contract"):
        InputContract.from_json('{"image_size": 3, "channels": 1, "colour": "blue"}')
    with pytest.raises(AnetError, match="not valid JSON"):
        InputContract.from_json('{"image_size"')
