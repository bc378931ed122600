"""anet visualize: grids, smoothness score, checkpoint choice, CLI errors, compare, --images."""

import json
import os
import shutil
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from anet import runs
from anet import visualize as vis
from anet.cli import main
from anet.errors import AnetError
from tests.tinyrun import make_tiny_run

# --------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize("channels,shape", [(96, (8, 12)), (512, (16, 32)), (256, (16, 16)),
                                            (6, (2, 3)), (4, (2, 2)), (7, (3, 3)), (1, (1, 1)),
                                            (3, (2, 2))])
def test_grid_shape_near_square(channels, shape):
    assert vis.grid_shape(channels) == shape


def test_channel_grid_size_values_and_separators():
    rng = np.random.default_rng(0)
    fmap = rng.normal(size=(2, 2, 6)).astype(np.float32)
    fmap[..., 1] = 3.0  # a dead channel
    grid = vis.channel_grid(fmap)
    s = vis.upscale_factor(2, 2)
    assert s == 16  # 2x2 maps become 32x32 tiles
    assert grid.dtype == np.uint8 and grid.shape == (2 * 32 + 1, 3 * 32 + 2)
    assert (grid[32, :] == 255).all() and (grid[:, 32] == 255).all()  # 1-px separators
    tile0 = grid[:32, :32]
    assert tile0.min() == 0 and tile0.max() == 255  # own min/max
    assert (grid[:32, 33:65] == 0).all()  # constant channel -> black tile
    assert vis.channel_grid(fmap, max_channels=4).shape == (2 * 32 + 1, 2 * 32 + 1)
    big = vis.channel_grid(rng.normal(size=(55, 55, 96)))
    assert big.shape == (8 * 55 + 7, 12 * 55 + 11)


def test_smoothness_ranks_blur_above_noise_and_skips_constant_channels():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(1)
    noise = rng.normal(size=(32, 32, 8))
    blurred = np.stack([gaussian_filter(noise[..., c], 2.0) for c in range(8)], -1)
    s_noise, dead = vis.smoothness(noise)
    s_blur, _ = vis.smoothness(blurred)
    assert dead == 0.0
    assert 0.0 <= s_noise < s_blur <= 1.0
    assert s_noise == pytest.approx(vis.noise_smoothness(32, 32), abs=0.02)
    assert s_blur > 0.9
    checker = np.indices((8, 8)).sum(0) % 2.0
    # 2-D input is one channel; no-wrap differences give a checkerboard 1/n, not exactly 0
    assert vis.smoothness(checker)[0] == pytest.approx(1 / 8)
    with_dead = noise.copy()
    with_dead[..., :2] = 0.0  # dead ReLUs
    with_dead[..., 2] = 7.5  # any constant
    s, dead = vis.smoothness(with_dead)
    assert dead == pytest.approx(3 / 8)
    assert s == pytest.approx(vis.smoothness(noise[..., 3:])[0])
    assert vis.smoothness(np.zeros((4, 4, 3))) == (None, 1.0)
    assert vis.smoothness(rng.normal(size=(1, 1, 5))) == (None, None)
    assert vis.noise_smoothness(2, 2) == pytest.approx(2 / 3)
    assert vis.noise_smoothness(1, 1) is None


# --------------------------------------------------------------------------- tiny runs


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """tmp/runs/tiny (anetc6 at 67) and tmp/runs/vgg (vgg16 at 64) on one tiny dataset."""
    tmp = tmp_path_factory.mktemp("vis")
    make_tiny_run(tmp, model="anetc6", size=67, epochs=1)
    make_tiny_run(tmp, model="vgg16", size=64, epochs=1, data=tmp / "data", name="vgg")
    return tmp


def run_cli(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["anet", "visualize", *args])
    main()


def cli_error(monkeypatch, capsys, *args) -> str:
    with pytest.raises(SystemExit) as e:
        run_cli(monkeypatch, *args)
    assert e.value.code == 2
    return capsys.readouterr().err.strip()


def test_single_run_files_grid_sizes_and_json(root, capsys):
    out = root / "out-single"
    report = vis.visualize(root / "runs" / "tiny", samples=2, out=out)
    assert "pool_last (pool6)" in capsys.readouterr().out
    (result,) = report["runs"]
    assert [r["name"] for r in result["layers"]] == ["conv1", "pool1", "pool2", "pool_last"]
    assert [r["layer"] for r in result["layers"]] == ["conv1", "pool1", "pool2", "pool6"]
    assert result["checkpoint_reason"].startswith("recorded during training: best valid accuracy")
    assert len(report["samples"]) == 2 and report["samples"][0]["source"].startswith("test:")
    assert json.loads((out / "visualize.json").read_text()) == report
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 2
    for folder in folders:
        assert (folder / "overview.png").is_file()
        for row in result["layers"]:
            h, w, c = row["shape"]
            rows, cols = vis.grid_shape(c)
            s = vis.upscale_factor(h, w)
            img = np.asarray(Image.open(folder / f"{row['name']}.png"))
            assert img.shape == (rows * h * s + rows - 1, cols * w * s + cols - 1)
            assert img.dtype == np.uint8
    conv1 = result["layers"][0]
    assert 0.0 <= conv1["smoothness"] <= 1.0 and 0.0 <= conv1["dead_fraction"] <= 1.0
    assert result["layers"][3]["shape"][:2] == [1, 1] and result["layers"][3]["smoothness"] is None
    assert any((root / "runs" / "tiny" / "tensorboard" / "visualize").iterdir())


def test_vgg_conv1_alias_and_default_out(root):
    run_dir = root / "runs" / "vgg"
    report = vis.visualize(run_dir, layers="conv1,pool_last", samples=1)
    layers = report["runs"][0]["layers"]
    assert [r["layer"] for r in layers] == ["conv1_1", "pool5"]
    assert layers[1]["shape"] == [2, 2, 32]
    assert (run_dir / "visualize" / "visualize.json").is_file()


def test_checkpoint_choice_eval_json_then_best_then_latest(root, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(root / "runs" / "tiny", run_dir)
    run = runs.open_run(run_dir)
    first, last = run.ckpts[0], run.ckpts[-1]
    assert runs.choose_checkpoint(run, str(first.step))[0].step == first.step
    best = max(run.ckpts, key=lambda c: (-1 if c.valid_acc is None else c.valid_acc, -c.step))  # as evaluate
    assert runs.choose_checkpoint(run)[0].step == best.step
    chosen = {"name": last.name, "step": last.step, "reason": "r"}
    (run_dir / "eval.json").write_text(json.dumps({"chosen": chosen, "checkpoints": []}))
    assert runs.choose_checkpoint(run) == (last, "chosen by `anet evaluate`")
    (run_dir / "eval.json").write_text(json.dumps({"chosen": {"name": "ckpt-99999999"}}))
    assert runs.choose_checkpoint(run)[0].step == best.step  # stale choice ignored
    (run_dir / "eval.json").write_text("{not json")
    assert runs.choose_checkpoint(run)[0].step == best.step
    unscored = runs.Run(run.dir, run.cfg, tuple(replace(c, valid_acc=None)
                                                for c in run.ckpts))
    assert runs.choose_checkpoint(unscored) == (unscored.ckpts[-1],
                                                "latest (no validation accuracy recorded)")
    with pytest.raises(AnetError, match="no checkpoint 'ckpt-9'"):
        runs.choose_checkpoint(run, "ckpt-9")


def test_unknown_layer_lists_valid_names_exit_2(root, monkeypatch, capsys):
    err = cli_error(monkeypatch, capsys, "--ckpt-dir", str(root / "runs" / "tiny"),
                    "--layers", "conv1,conv9", "--out", str(root / "out-bad"))
    assert err.startswith("error: model 'anetc6' has no feature-map layer 'conv9'; valid: ")
    assert "pool1, conv2" in err and "pool_last" in err and "fc1" not in err


def test_out_that_is_a_file_exit_2(root, tmp_path, monkeypatch, capsys):
    (tmp_path / "taken").write_text("x")
    for out in (tmp_path / "taken", tmp_path / "taken" / "sub"):
        err = cli_error(monkeypatch, capsys, "--ckpt-dir", str(root / "runs" / "tiny"),
                        "--out", str(out))
        assert err == (f"error: {out}: cannot create the output folder (a file is in the way); "
                       "choose another --out")


def test_no_run_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = cli_error(monkeypatch, capsys, "--layers", "conv1,pool1,pool2,pool_last")
    assert err == ("error: no runs under runs/; train one with `anet train CONFIG` "
                   "or pass --run-dir")


def test_latest_run_is_used_and_named(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    for name, t in (("tiny", 2_000_000_000), ("vgg", 1_000_000_000)):
        os.utime(root / "runs" / name / "checkpoints" / "checkpoints.jsonl", (t, t))
    run_cli(monkeypatch, "--layers", "conv1,pool1,pool2,pool_last", "--samples", "1",
            "--out", "out-latest")
    assert "using the most recent run: runs/tiny" in capsys.readouterr().err
    report = json.loads((root / "out-latest" / "visualize.json").read_text())
    assert report["runs"][0]["run"] == "runs/tiny"


def test_compare_two_models_one_figure_per_sample(root, monkeypatch):
    out = root / "out-compare"
    run_cli(monkeypatch, "--compare", str(root / "runs" / "tiny"), str(root / "runs" / "vgg"),
            "--samples", "2", "--out", str(out))
    report = json.loads((out / "visualize.json").read_text())
    assert [r["model"] for r in report["runs"]] == ["anetc6", "vgg16"]
    assert [r["input_shape"] for r in report["runs"]] == [[67, 67, 1], [64, 64, 1]]
    assert [r["layers"][0]["layer"] for r in report["runs"]] == ["conv1", "conv1_1"]
    figures = sorted(out.glob("compare-*.png"))
    assert len(figures) == 2 and [str(f) for f in figures] == sorted(report["files"])


def test_compare_needs_one_dataset(root, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other"  # a run trained on 4 classes (its input contract says so)
    shutil.copytree(root / "runs" / "vgg", other)
    contract = json.loads((other / "input.json").read_text())
    (other / "input.json").write_text(json.dumps(dict(contract, classes=["0", "1", "2", "3"])))
    err = cli_error(monkeypatch, capsys, "--compare", str(root / "runs" / "tiny"), str(other))
    assert err.startswith("error: --compare needs runs on one dataset (same classes and channels)")
    assert "4 classes" in err and "3 classes" in err
    err = cli_error(monkeypatch, capsys, "--compare", str(other))
    assert "at least two runs" in err


def test_images_files_use_the_eval_preprocessing(root, tmp_path, monkeypatch):
    a = np.full((30, 50), 220, np.uint8)
    a[5:25, 10:20] = 20
    Image.fromarray(a).save(tmp_path / "bar.png")
    Image.fromarray(np.stack([a] * 3, -1)).save(tmp_path / "rgb.jpg")
    out = tmp_path / "out"
    run_cli(monkeypatch, "--ckpt-dir", str(root / "runs" / "tiny"), "--layers", "pool1",
            "--images", str(tmp_path / "bar.png"), str(tmp_path / "rgb.jpg"), "--out", str(out))
    report = json.loads((out / "visualize.json").read_text())
    assert [s["name"] for s in report["samples"]] == ["bar", "rgb"]
    assert report["split"] is None
    assert (out / "00-bar" / "pool1.png").is_file() and (out / "01-rgb" / "overview.png").is_file()
    spec = runs.open_run(root / "runs" / "tiny").contract
    _, x = vis.load_inputs(spec, images=[tmp_path / "bar.png"])
    assert x.shape == (1, 67, 67, 1)  # resized and 1-channel like training
    with pytest.raises(AnetError, match="no such image file"):
        vis.load_inputs(spec, images=[tmp_path / "nope.png"])


def test_layer_alias_maps_paper_names_on_every_model():
    from anet import models
    from anet.models import build

    small = {"width": 0.0625, "fc_units": 8}
    vgg = build("vgg16", (32, 32, 1), 3, **small)
    vgg_bn = build("vgg16", (32, 32, 1), 3, batch_norm=True, **small)
    anet = build("anetc6", (67, 67, 1), 3, **small)
    assert [models.layer_alias(vgg, n) for n in ("conv1", "conv2", "pool1")] == [
        "conv1_1", "conv2_1", "pool1"]
    assert models.layer_alias(vgg_bn, "conv1") == "relu1_1"  # the ReLU output, like fused conv1
    assert models.layer_alias(anet, "conv1") == "conv1"
    assert [lay.name for lay in vis.resolve_layers(vgg, ["conv1", "pool_last"])] == [
        "conv1_1", "pool5"]
    with pytest.raises(AnetError, match="no feature-map layer 'fc1'; valid: input, conv1_1"):
        vis.resolve_layers(vgg, ["fc1"])
