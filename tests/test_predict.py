"""anet predict and export: the run's input contract, batches, checkpoint choice, SavedModel."""

import csv
import hashlib
import io
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import anet
from anet.cli import main
from anet.data import pipeline
from anet.data.contract import InputContract
from anet.data.images import load_inputs
from anet.data.records import decode_example, shard_paths
from anet.export import export
from anet.predict import predict
from anet.runs import Run, build_model, choose_checkpoint, open_run
from tests.tinyrun import make_tiny_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_tiny_run(tmp_path_factory.mktemp("pr"), epochs=2)


@pytest.fixture(scope="module")
def spec(run):
    return open_run(run).contract


def png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def test_inputs_are_eval_transform_of_the_same_bytes(run, spec, tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (40, 24), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(png(arr))
    Image.fromarray(arr).save(tmp_path / "b.jpg", quality=90)
    x = load_inputs([tmp_path / "a.png", tmp_path / "b.jpg"], spec)
    for i, name in enumerate(("a.png", "b.jpg")):
        want = pipeline.eval_transform(tf.constant((tmp_path / name).read_bytes()), spec)
        np.testing.assert_array_equal(x[i].numpy(), want.numpy())
    assert x.shape == (2, 67, 67, 1)


def test_16bit_tif_is_read_by_the_intensity_policy(spec, tmp_path):
    a = np.linspace(1000, 41000, 40 * 24).reshape(40, 24).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "c.tif")
    expect = np.round(a / 65535 * 255).astype(np.uint8)
    want = pipeline.eval_transform(tf.constant(png(expect)), spec)
    np.testing.assert_array_equal(load_inputs([tmp_path / "c.tif"], spec)[0].numpy(), want.numpy())


def test_predict_matches_the_model_on_eval_dataset(run, spec, tmp_path, capsys):
    data_dir = open_run(run).cfg.data.dir
    records = {}
    for r in tf.data.TFRecordDataset(shard_paths(data_dir, "test")):
        ex = decode_example(r.numpy())
        records[ex["filename"]] = ex["image"]
    x, _, names, _, _ = next(iter(pipeline.eval_dataset(data_dir, "test", spec, batch_size=5,
                                                     with_meta=True)))
    names = [n.decode() for n in names.numpy()]
    paths = []
    for i, name in enumerate(names):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(records[name])
    results = predict(run, paths, top_k=3)
    r = Run(run, open_run(run).cfg, open_run(run).ckpts)
    probs = build_model(r, choose_checkpoint(r)[0])(x, training=False).numpy()
    for res, p in zip(results.rows, probs):
        assert [c for c, _ in res.top] == [str(i) for i in np.argsort(-p, kind="stable")]
        np.testing.assert_allclose([v for _, v in res.top], np.sort(p)[::-1], atol=1e-6)
    cap = capsys.readouterr()
    out = cap.out.splitlines()  # stdout: the table only; the run and checkpoint go to stderr
    assert out[0] == "path\tclass_1\tprob_1\tclass_2\tprob_2\tclass_3\tprob_3\tflags"
    assert len(out) == 1 + len(paths) and all(len(line.split("\t")) == 8 for line in out)
    assert out[1].startswith(f"{paths[0]}\t") and cap.err.startswith(f"# run {run}, checkpoint ckpt-")


def test_checkpoint_choice(run, tmp_path):
    r = open_run(run)
    scored = [c for c in r.ckpts if c.valid_acc is not None]
    best = max(scored, key=lambda c: (c.valid_acc, -c.step))
    c, why = choose_checkpoint(r)
    assert c.step == best.step and why.startswith("recorded during training")
    assert choose_checkpoint(r, "5")[0].step == 5
    unscored = Run(r.dir, r.cfg, tuple(replace(c, valid_acc=None)
                                       for c in r.ckpts))
    assert choose_checkpoint(unscored)[0].step == r.ckpts[-1].step
    copy = Run(tmp_path, r.cfg, r.ckpts)
    (tmp_path / "eval.json").write_text(json.dumps({"chosen": {"name": "ckpt-00000005"}}))
    c, why = choose_checkpoint(copy)
    assert c.step == 5 and "evaluate" in why


def test_export_serves_raw_bytes_like_the_keras_model(run, spec, tmp_path):
    import keras

    out = export(run, tmp_path / "export")
    assert (out / "saved_model.pb").is_file() and (out / "model.keras").is_file()
    rng = np.random.default_rng(1)
    images = []
    for _ in range(3):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (40, 24), dtype=np.uint8)).save(buf, "JPEG")
        images.append(buf.getvalue())
    served = tf.saved_model.load(str(out)).signatures["serving_default"](
        images=tf.constant(images))
    x = tf.stack([pipeline.eval_transform(tf.constant(b), spec) for b in images])
    r = open_run(run)
    want = build_model(r, choose_checkpoint(r)[0])(x, training=False).numpy()
    np.testing.assert_allclose(served["probabilities"].numpy(), want, atol=1e-5)
    ids = want.argmax(axis=1)
    assert served["class_ids"].numpy().tolist() == ids.tolist()
    assert [n.decode() for n in served["class_names"].numpy()] == [str(i) for i in ids]
    reloaded = keras.models.load_model(out / "model.keras")
    np.testing.assert_allclose(reloaded(x, training=False).numpy(), want, atol=1e-5)
    # decoded pixels (how a caller passes a TIF it read itself) give the same answer
    pixels = np.stack([tf.io.decode_jpeg(b, channels=1).numpy().astype(np.float32) for b in images])
    by_pixels = tf.saved_model.load(str(out)).signatures["serving_pixels"](pixels=tf.constant(pixels))
    np.testing.assert_allclose(by_pixels["probabilities"].numpy(), want, atol=1e-5)
    info = json.loads((out / "export.json").read_text())
    r = open_run(run)
    chosen, why = choose_checkpoint(r)
    assert info["classes"] == ["0", "1", "2"] and info["anet_version"] == anet.__version__
    assert info["checkpoint"]["name"] == chosen.name
    assert info["checkpoint"]["why"] == why
    assert info["checkpoint"]["accuracy"]["valid"] == chosen.valid_acc
    assert InputContract(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in info["input"].items()}) == spec
    assert info["dataset"] == {"name": "tiny", "sha256": hashlib.sha256(
        (Path(r.cfg.data.dir) / "dataset.json").read_bytes()).hexdigest()}
    assert info["intensity_policy"].startswith("full-range-v1")
    assert set(info["signatures"]) == {"serving_default", "serving_pixels"}
    export(run, out)  # an earlier export is replaced


def test_export_serves_gray_bmp_gif_and_colour_files_as_predict_reads_them(run, spec, tmp_path):
    out = export(run, tmp_path / "export")
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (40, 24), dtype=np.uint8)
    rgb = rng.integers(0, 256, (36, 28, 3), dtype=np.uint8)
    files = {"gray.bmp": Image.fromarray(gray), "gray.gif": Image.fromarray(gray),
             "palette.bmp": Image.fromarray(rgb).quantize(8), "rgb.gif": Image.fromarray(rgb),
             "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., 0]])),
             "16bit.png": Image.fromarray(gray.astype(np.uint16) * 250)}
    for name, im in files.items():
        im.save(tmp_path / name)
    paths = [tmp_path / name for name in files]
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    served = serve(images=tf.constant([p.read_bytes() for p in paths]))
    r = open_run(run)
    want = build_model(r, choose_checkpoint(r)[0])(load_inputs(paths, spec), training=False)
    np.testing.assert_allclose(served["probabilities"].numpy(), want.numpy(), atol=1e-5)
    Image.fromarray(gray > 128).save(tmp_path / "1bit.bmp")  # TensorFlow has no decoder
    with pytest.raises(tf.errors.InvalidArgumentError, match="serving_default decodes "
                       "uncompressed 8-, 24- and 32-bit BMP only; send this image as PNG"):
        serve(images=tf.constant([(tmp_path / "1bit.bmp").read_bytes()]))


def test_export_refuses_a_foreign_folder(run, tmp_path, monkeypatch, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    err = cli_error(monkeypatch, capsys, "export", "--ckpt-dir", run, "--out", tmp_path)
    assert "is not an anet export" in err and (tmp_path / "keep.txt").exists()
    err = cli_error(monkeypatch, capsys, "export", "--ckpt-dir", run, "--out", tmp_path / "keep.txt")
    assert "is not an anet export" in err and (tmp_path / "keep.txt").read_text() == "mine"


def cli_error(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["anet", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_unreadable_images(run, tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(png(np.zeros((40, 24), np.uint8))[:60])
    for name, message in [("notes.png", "cannot read image (not an image"),
                          ("empty.jpg", "cannot read image (empty file)"),
                          ("cut.png", "cannot read image"),
                          ("missing.jpg", "no such image file")]:
        err = cli_error(monkeypatch, capsys, "predict", "--ckpt-dir", run, tmp_path / name)
        assert f"{tmp_path / name}: {message}" in err


def test_a_batch_with_broken_files_still_predicts_the_rest(run, tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(2)
    (tmp_path / "lab" / "cell1").mkdir(parents=True)
    good = []
    for i, (folder, ext) in enumerate([("lab", ".png"), ("lab/cell1", ".tif"), (".", ".jpg")]):
        good.append(tmp_path / folder / f"g{i}{ext}")
        Image.fromarray(rng.integers(0, 256, (40, 24), dtype=np.uint8)).save(good[-1])
    Image.fromarray(np.zeros((120, 24), np.uint8)).save(tmp_path / "lab" / "big.png")  # 3x taller
    (tmp_path / "lab" / "cell1" / "broken.tif").write_bytes(b"II*\x00" + bytes(200))
    out = tmp_path / "preds.csv"
    monkeypatch.setattr(sys, "argv", ["anet", "predict", "--ckpt-dir", str(run), str(tmp_path / "lab"),
                                      str(tmp_path / "*.jpg"), "--out", str(out), "--top-k", "2",
                                      "--min-confidence", "0.99"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 1  # some were skipped
    cap = capsys.readouterr()
    assert f"skipped {tmp_path / 'lab' / 'cell1' / 'broken.tif'}: cannot read image" in cap.err
    assert "predicted 4 images" in cap.err and "1 size-out-of-range" in cap.err
    lines = cap.out.splitlines()
    assert lines[0] == "path\tclass_1\tprob_1\tclass_2\tprob_2\tflags" and len(lines) == 5
    assert f"# run {run}, checkpoint ckpt-" in cap.err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["path", "class_1", "prob_1", "class_2", "prob_2", "low_confidence",
                             "size_out_of_range", "height", "width", "run", "checkpoint", "error"]
    by_path = {r["path"]: r for r in rows}
    assert set(by_path) == {str(p) for p in good} | {str(tmp_path / "lab" / "big.png"),
                                                     str(tmp_path / "lab" / "cell1" / "broken.tif")}
    broken = by_path[str(tmp_path / "lab" / "cell1" / "broken.tif")]
    assert broken["class_1"] == "" and broken["error"].startswith("cannot read image")
    big = by_path[str(tmp_path / "lab" / "big.png")]
    assert (big["size_out_of_range"], big["height"], big["width"]) == ("1", "120", "24")
    for p in good:
        r = by_path[str(p)]
        assert r["size_out_of_range"] == "0" and r["checkpoint"].startswith("ckpt-")
        assert r["low_confidence"] == str(int(float(r["prob_1"]) < 0.99))
        assert float(r["prob_1"]) >= float(r["prob_2"])
    assert all(r["run"] == str(run) for r in rows)


def test_predict_names_the_run_it_picked(run, tmp_path, monkeypatch, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 24), np.uint8)).save(img)
    monkeypatch.chdir(run.parent.parent)  # runs/tiny is the only run under runs/
    monkeypatch.setattr(sys, "argv", ["anet", "predict", str(img)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    assert "using run runs/tiny (the most recently trained under runs/" in capsys.readouterr().err


def test_predict_without_a_run(tmp_path, monkeypatch, capsys):
    err = cli_error(monkeypatch, capsys, "predict", "--ckpt-dir", tmp_path / "nope", "x.png")
    assert "no such run directory" in err


def test_the_run_stores_its_input_contract_at_train_start(run):
    from anet.data import contract

    r = open_run(run)
    stored = contract.load(r.paths.input)
    assert stored == contract.from_dataset(r.cfg.data, r.dataset)
    assert stored.classes == ("0", "1", "2") and stored.size_max == (40, 24)
    assert r.contract == stored


def test_readme_tif_snippet_matches_predict(run, tmp_path, capsys):
    """docs/predict-export.md's serving_pixels block, run as written, agrees with `anet predict`."""
    import re

    readme = (Path(__file__).parent.parent / "docs" / "predict-export.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "serving_pixels" in b)
    out = export(run, tmp_path / "export")
    a = np.random.default_rng(5).integers(0, 256, (40, 24)).astype(np.uint8)
    tifs = {"8": tmp_path / "a8.tif", "16": tmp_path / "a16.tif"}
    Image.fromarray(a).save(tifs["8"])
    Image.fromarray(a.astype(np.uint16) * 257).save(tifs["16"])
    for path in tifs.values():
        capsys.readouterr()
        exec(block, {"EXPORT_DIR": str(out), "TIF_PATH": str(path)})
        name, prob = capsys.readouterr().out.split()
        top = predict(run, [path], top_k=1).rows[0].top[0]
        assert name == top[0] and float(prob) == pytest.approx(top[1], abs=1e-5)


def test_tsv_row_has_a_column_per_class_and_probability():
    from anet.predict import Prediction, tsv_header, tsv_row

    p = Prediction("a b.png", (("X", 0.51234), ("7", 0.3)), (10, 20), True, False)
    assert tsv_header(3) == "path\tclass_1\tprob_1\tclass_2\tprob_2\tclass_3\tprob_3\tflags"
    assert tsv_row(p, 3) == "a b.png\tX\t0.5123\t7\t0.3000\t\t\tlow-confidence"
    p = Prediction("b", (("1", 1.0),), (5, 5), False, True)
    assert tsv_row(p, 1) == "b\t1\t1.0000\tsize-out-of-range"


def test_predict_json_is_the_whole_stdout(run, tmp_path, monkeypatch, capsys):
    good = tmp_path / "a.png"
    Image.fromarray(np.full((40, 24), 200, np.uint8)).save(good)
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + bytes(50))
    monkeypatch.setattr(sys, "argv", ["anet", "predict", "--run-dir", str(run), str(good),
                                      str(tmp_path / "bad.tif"), "--json", "--top-k", "2"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 1
    cap = capsys.readouterr()
    doc = json.loads(cap.out)  # nothing else on stdout
    assert doc["run"] == str(run) and doc["checkpoint"].startswith("ckpt-")
    [pred] = doc["predictions"]
    assert pred["path"] == str(good) and len(pred["top"]) == 2 and (pred["height"], pred["width"]) == (40, 24)
    assert pred["top"][0]["probability"] >= pred["top"][1]["probability"]
    assert [s["path"] for s in doc["skipped"]] == [str(tmp_path / "bad.tif")]
    assert "# run" in cap.err and "predicted 1 images" in cap.err


def test_export_tflite_gives_the_keras_model_outputs(run, spec, tmp_path, monkeypatch, capsys):
    import warnings

    monkeypatch.setattr(sys, "argv", ["anet", "export", "--run-dir", str(run), "--out",
                                      str(tmp_path / "ex"), "--tflite"])
    main()
    assert "model.tflite" in capsys.readouterr().out
    x = np.random.default_rng(3).uniform(-1, 1, (4, spec.image_size, spec.image_size, spec.channels))
    x = x.astype(np.float32)
    r = open_run(run)
    want = build_model(r, choose_checkpoint(r)[0])(x, training=False).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter: deprecated for ai_edge_litert
        it = tf.lite.Interpreter(model_path=str(tmp_path / "ex" / "model.tflite"))
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], x.shape)
    it.allocate_tensors()
    it.set_tensor(inp["index"], x)
    it.invoke()
    got = it.get_tensor(it.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert (got.argmax(1) == want.argmax(1)).all()
