"""Architectures: shapes, hand-derived parameter/FLOP counts, names, LRN, save/load, CLI."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from anet import models
from anet.cli import cli
from anet.config import ModelConfig, load_config
from anet.errors import AnetError
from anet.layers import LocalResponseNormalization, lrn_ops

TINY = {"width": 0.0625, "fc_units": 16}
FULL = {"alexnet": (227, 227, 3), "anetc6": (227, 227, 3), "vgg16": (224, 224, 3)}

# Full size, 3 channels, 1000 classes, weights + biases (k*k*cin*cout + cout; in*out + out).
# AlexNet, single tower, no channel groups; conv5 output 6x6x256 -> 9216 features:
#   conv1 11*11*3*96 + 96     =     34,944
#   conv2 5*5*96*256 + 256    =    614,656
#   conv3 3*3*256*384 + 384   =    885,120
#   conv4 3*3*384*384 + 384   =  1,327,488
#   conv5 3*3*384*256 + 256   =    884,992   (convs: 3,747,200)
#   fc1   9216*4096 + 4096    = 37,752,832
#   fc2   4096*4096 + 4096    = 16,781,312
#   fc3   4096*1000 + 1000    =  4,097,000
#   total                       62,378,344
# ANet-c6: the same five convs, conv6 3*3*256*256 + 256 = 590,080; pool6 output 2x2x256:
#   fc1 1024*4096 + 4096 = 4,198,400; fc2 16,781,312; fc3 4,097,000
#   total 3,747,200 + 590,080 + 4,198,400 + 16,781,312 + 4,097,000 = 29,413,992
# VGG16 (D): convs 1,792 + 36,928 + 73,856 + 147,584 + 295,168 + 2*590,080 + 1,180,160
#   + 5*2,359,808 = 14,714,688; pool5 7x7x512 -> fc1 25088*4096 + 4096 = 102,764,544;
#   fc2 16,781,312; fc3 4,097,000; total 138,357,544.
#   With batch_norm the 4,224 conv biases go and each conv gets 4*filters BN weights
#   (gamma, beta, moving mean, moving variance): 138,357,544 - 4,224 + 16,896 = 138,370,216.
#   AlexNet with batch_norm: conv biases 96+256+384+384+256 = 1,376 go, BN adds 4*1,376 = 5,504:
#   62,378,344 - 1,376 + 5,504 = 62,382,472. ANet-c6 also conv6 (256): biases 1,632, BN 6,528:
#   29,413,992 - 1,632 + 6,528 = 29,418,888.
HAND_PARAMS = {"alexnet": 62_378_344, "anetc6": 29_413_992, "vgg16": 138_357_544}
HAND_PARAMS_BN = {"alexnet": 62_382_472, "anetc6": 29_418_888, "vgg16": 138_370_216}


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_full_size_parameter_counts_match_hand_count(name):
    model = models.build(name, FULL[name], 1000)
    assert model.count_params() == HAND_PARAMS[name]
    assert models.count_params(name, FULL[name], 1000) == HAND_PARAMS[name]
    assert model.input_shape == (None, *FULL[name])
    assert model.output_shape == (None, 1000)


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_batch_norm_on_every_architecture_keeps_counts_exact(name):
    assert models.count_params(name, FULL[name], 1000, batch_norm=True) == HAND_PARAMS_BN[name]
    # BN, ReLU and the dropped biases cost no counted FLOPs: the same total as without BN.
    assert models.forward_flops(name, FULL[name], 1000, batch_norm=True) == \
        models.forward_flops(name, FULL[name], 1000)
    size = models.smallest_input_size(name)
    model = models.build(name, (size, size, 1), 10, batch_norm=True, **TINY)
    assert model.count_params() == models.count_params(name, (size, size, 1), 10,
                                                       batch_norm=True, **TINY)
    rows = models.layer_table(name, (size, size, 1), 10, batch_norm=True, **TINY)
    assert [lay.name for lay in model.layers] == [r.name for r in rows]
    first = "1" if name != "vgg16" else "1_1"
    order = [r.name for r in rows]
    # conv (no bias) -> bn -> relu, and the LRN of AlexNet/ANet-c6 after the ReLU.
    i = order.index(f"conv{first}")
    assert order[i:i + 3] == [f"conv{first}", f"bn{first}", f"relu{first}"]
    assert not model.get_layer(f"conv{first}").use_bias
    if name != "vgg16":
        assert order[i + 3] == "lrn1"


def _kernel(model, layer):
    return model.get_layer(layer).kernel.numpy()


def test_init_he_normal_is_default_and_glorot_reproduces_keras():
    keras.utils.set_random_seed(0)
    he = models.build("anetc6", (67, 67, 1), 10, width=0.25, fc_units=64)
    keras.utils.set_random_seed(0)
    gl = models.build("anetc6", (67, 67, 1), 10, width=0.25, fc_units=64, init="glorot_uniform")
    # conv2: 5*5*24 fan-in, 64 fan-out. He normal: std sqrt(2/fan_in) (Keras widens the
    # truncated normal so the std is exact); Glorot uniform: limit sqrt(6/(fan_in+fan_out)).
    k_he, k_gl = _kernel(he, "conv2"), _kernel(gl, "conv2")
    fan_in, fan_out = 5 * 5 * 24, 5 * 5 * 64
    assert abs(k_he.std() / np.sqrt(2 / fan_in) - 1) < 0.05
    assert abs(np.abs(k_gl).max() / np.sqrt(6 / (fan_in + fan_out)) - 1) < 0.01
    # The softmax layer keeps Glorot uniform under he_normal; every bias starts at zero.
    assert abs(np.abs(_kernel(he, "fc3")).max() / np.sqrt(6 / (64 + 10)) - 1) < 0.05
    assert all(not np.any(lay.bias.numpy()) for lay in he.layers
               if isinstance(lay, (keras.layers.Conv2D, keras.layers.Dense)))


def test_init_alexnet_recipe():
    model = models.build("alexnet", (67, 67, 1), 10, width=0.25, fc_units=64, init="alexnet")
    biases = {lay.name: set(lay.bias.numpy().tolist()) for lay in model.layers
              if isinstance(lay, (keras.layers.Conv2D, keras.layers.Dense))}
    assert biases == {"conv1": {0.0}, "conv2": {1.0}, "conv3": {0.0}, "conv4": {1.0},
                      "conv5": {1.0}, "fc1": {1.0}, "fc2": {1.0}, "fc3": {0.0}}
    assert abs(_kernel(model, "fc1").std() - 0.01) < 0.001
    with pytest.raises(AnetError, match="unknown model.init 'xavier'"):
        models.build("alexnet", (67, 67, 1), 10, init="xavier", **TINY)


def test_vgg16_batch_norm_parameter_count():
    assert models.count_params("vgg16", (224, 224, 3), 1000, batch_norm=True) == 138_370_216
    model = models.build("vgg16", (32, 32, 3), 10, batch_norm=True, **TINY)
    assert model.count_params() == models.count_params("vgg16", (32, 32, 3), 10,
                                                       batch_norm=True, **TINY)
    names = {layer.name for layer in model.layers}
    assert {"conv1_1", "bn1_1", "relu1_1", "conv5_3", "bn5_3", "relu5_3"} <= names


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("classes", [10, 24])
def test_output_shape(name, channels, classes):
    shape = FULL[name][:2] + (channels,)
    model = models.build(name, shape, classes, **TINY)
    assert model.input_shape == (None, *shape)
    assert model.output_shape == (None, classes)
    assert model.count_params() == models.count_params(name, shape, classes, **TINY)


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_forward_gives_float32_probabilities_under_mixed_precision(name):
    size = models.smallest_input_size(name)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.build(name, (size, size, 3), 24, **TINY)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("conv1" if name != "vgg16" else "conv1_1").compute_dtype == "float16"
    y = model(np.random.default_rng(0).uniform(size=(2, size, size, 3)).astype("float32"))
    assert y.dtype == "float32" and y.shape == (2, 24)
    np.testing.assert_allclose(np.sum(y, axis=1), 1.0, atol=1e-5)


EXPECTED_NAMES = {
    "alexnet": ["input", "conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "conv4",
                "conv5", "pool5"],
    "anetc6": ["input", "conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "pool3",
               "conv4", "conv5", "pool5", "conv6", "pool6"],
    "vgg16": ["input", "conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2",
              "conv3_1", "conv3_2", "conv3_3", "pool3", "conv4_1", "conv4_2", "conv4_3",
              "pool4", "conv5_1", "conv5_2", "conv5_3", "pool5"],
}
HEAD = ["flatten", "fc1", "drop1", "fc2", "drop2", "fc3"]
POOL_LAST = {"alexnet": "pool5", "anetc6": "pool6", "vgg16": "pool5"}


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_layer_names_and_pool_last(name):
    model = models.build(name, FULL[name], 10, **TINY)
    assert [layer.name for layer in model.layers] == EXPECTED_NAMES[name] + HEAD
    assert [r.name for r in models.layer_table(name, FULL[name], 10)] == [
        layer.name for layer in model.layers]
    assert models.layer_names(model)[-1] == "pool_last"
    assert models.resolve_layer(model, "pool_last").name == POOL_LAST[name]
    assert models.resolve_layer(model, "fc2") is model.get_layer("fc2")
    with pytest.raises(AnetError, match="no layer 'conv9'.*pool_last"):
        models.resolve_layer(model, "conv9")


def test_anetc6_keeps_every_map_at_least_2x2_at_227():
    rows = models.layer_table("anetc6", (227, 227, 3), 10)
    spatial = [r.shape[:2] for r in rows if len(r.shape) == 3]
    assert min(min(hw) for hw in spatial) == 2
    assert rows[[r.name for r in rows].index("pool6")].shape == (2, 2, 256)
    assert sum(r.kind == "pool" for r in rows) == 5 and sum(r.kind == "conv" for r in rows) == 6


def test_save_and_load_keras_file_gives_identical_outputs(tmp_path):
    x = np.random.default_rng(1).uniform(size=(2, 67, 67, 1)).astype("float32")
    for name, opts in (("anetc6", {}), ("vgg16", {"batch_norm": True})):
        model = models.build(name, (67, 67, 1), 24, weight_decay=5e-4, **TINY, **opts)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        if name == "anetc6":
            assert type(loaded.get_layer("lrn1")) is LocalResponseNormalization
        np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
        assert len(loaded.losses) == len(model.losses) > 0


FRESH_LOAD = """
import sys
import keras
import numpy as np
path, x_path, y_path = sys.argv[1:]
try:
    keras.models.load_model(path)
    print("loaded without anet.layers")
except Exception as e:  # Keras only imports its own modules: the LRN class must be registered
    print("refused without anet.layers:", type(e).__name__)
import anet.layers  # noqa: E402  the documented one-liner (registers anet>LocalResponseNormalization)
model = keras.models.load_model(path)
np.testing.assert_allclose(model.predict(np.load(x_path), verbose=0), np.load(y_path), rtol=1e-6, atol=1e-6)
print("ok", type(model.get_layer("lrn1")).__module__)
"""


@pytest.mark.slow
def test_keras_file_loads_in_a_fresh_process_after_import_anet_layers(tmp_path):
    import subprocess
    import sys

    x = np.random.default_rng(2).uniform(size=(2, 67, 67, 1)).astype("float32")
    model = models.build("anetc6", (67, 67, 1), 5, **TINY)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    proc = subprocess.run([sys.executable, "-c", FRESH_LOAD, str(tmp_path / "model.keras"),
                           str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused without anet.layers" in proc.stdout  # why the README's one-liner is needed
    assert "ok anet.layers" in proc.stdout


def test_lrn_equals_tf_local_response_normalization():
    # Large activations so the denominator differs clearly from bias**beta.
    x = tf.random.stateless_normal((2, 7, 7, 32), seed=(3, 4)) * 50.0
    layer = LocalResponseNormalization()
    expected = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4,
                                                  beta=0.75)
    assert not np.allclose(expected, x / 2.0**0.75)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tf.function(layer, jit_compile=True)(x), expected,
                               rtol=1e-5, atol=1e-5)
    again = LocalResponseNormalization.from_config(layer.get_config())
    assert (again.depth_radius, again.bias, again.alpha, again.beta) == (2, 2.0, 1e-4, 0.75)
    half = LocalResponseNormalization(dtype="mixed_float16")(tf.cast(x, tf.float16))
    assert half.dtype == tf.float16
    np.testing.assert_allclose(tf.cast(half, tf.float32), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("radius,channels", [(2, 32), (2, 3), (1, 1), (3, 5)])
def test_lrn_ops_equals_tf_op_incl_edge_channels(radius, channels):
    # the keras.ops form that non-TF backends run (gpu_bench.py on JAX): fewer channels than
    # the window (3, 1) and the first/last r channels check the zero-padded edges
    x = tf.random.stateless_normal((2, 5, 5, channels), seed=(5, channels)) * 60.0
    args = {"depth_radius": radius, "bias": 2.0, "alpha": 1e-4, "beta": 0.75}
    expected = tf.nn.local_response_normalization(x, **args)
    got = lrn_ops(x, radius, 2.0, 1e-4, 0.75)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    # the edges really differ from an interior-only formula
    assert not np.allclose(expected[..., 0], x[..., 0] / 2.0**0.75, rtol=1e-3)


def test_model_modules_import_tensorflow_only_lazily():
    # scripts/gpu_bench.py builds anet's models with Keras on JAX where TensorFlow is absent:
    # the modules it imports may import tensorflow only inside functions
    import ast
    from pathlib import Path

    import anet

    root = Path(anet.__file__).parent
    for module in ("models.py", "layers.py", "errors.py", "data/info.py"):
        tree = ast.parse((root / module).read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "tensorflow"], module
        assert {n for n in names if n.startswith("anet")} <= {"anet.errors", "anet.models",
                                                             "anet.data.info"}, module


def test_too_small_input_names_layer_and_smallest_size():
    # AlexNet: pool5 needs a 3x3 map, so conv1 must give 15x15: 11 + 4*14 = 67.
    with pytest.raises(AnetError, match=r"vanishes at layer pool5; the smallest valid input "
                                        r"is 67x67"):
        models.build("alexnet", (66, 66, 1), 10, **TINY)
    with pytest.raises(AnetError, match="layer conv1;.* 35x35"):
        models.build("anetc6", (10, 10, 3), 10)
    with pytest.raises(AnetError, match="layer pool5;.* 32x32"):
        models.layer_table("vgg16", (31, 31, 3), 10)
    assert models.layer_table("alexnet", (67, 67, 1), 10)[-7].shape == (1, 1, 256)
    with pytest.raises(AnetError, match="unknown model 'lenet'"):
        models.layer_table("lenet", (28, 28, 1), 10)


def test_alexnet_flops_hand_count():
    # 2 FLOPs per multiply-add, conv 2*k*k*cin*cout*hout*wout, dense 2*in*out:
    #   conv1 2*11*11*3*96*55*55   =   210,830,400
    #   conv2 2*5*5*96*256*27*27   =   895,795,200
    #   conv3 2*3*3*256*384*13*13  =   299,040,768
    #   conv4 2*3*3*384*384*13*13  =   448,561,152
    #   conv5 2*3*3*384*256*13*13  =   299,040,768
    #   fc1   2*9216*4096          =    75,497,472
    #   fc2   2*4096*4096          =    33,554,432
    #   fc3   2*4096*10            =        81,920
    #   total                        2,262,402,112
    assert models.forward_flops("alexnet", (227, 227, 3), 10) == 2_262_402_112
    rows = {r.name: r for r in models.layer_table("alexnet", (227, 227, 3), 10)}
    assert rows["conv2"].flops == 895_795_200 and rows["lrn1"].flops == 0


def test_weight_decay_regularizes_conv_and_dense_kernels():
    model = models.build("alexnet", (67, 67, 3), 10, weight_decay=1e-3, **TINY)
    assert len(model.losses) == 5 + 3
    kernel = model.get_layer("fc3").kernel
    np.testing.assert_allclose(float(model.losses[-1]),
                               0.5e-3 * float(tf.reduce_sum(kernel**2)), rtol=1e-5)
    assert not models.build("alexnet", (67, 67, 3), 10, **TINY).losses


def test_build_from_config():
    cfg = ModelConfig(name="vgg16", width=0.125, fc_units=32, dropout=0.2, batch_norm=True)
    model = models.build_from_config(cfg, 32, 1, 24)
    assert model.name == "vgg16" and model.output_shape == (None, 24)
    assert model.get_layer("drop1").rate == 0.2 and model.get_layer("conv1_1").filters == 8


def test_cli_models():
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    alexnet = next(line for line in lines if line.startswith("alexnet"))
    # 62,378,344 - 4,097,000 + (4096*10 + 10) for 10 classes.
    assert "227x227x3" in alexnet and "58,322,314" in alexnet and "2.262" in alexnet
    assert any(line.startswith("vgg16") and "224x224x1" in line for line in lines)
    assert sum(line.startswith("anetc6") for line in lines) == 2


def test_cli_summary_reads_dataset_json(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({
        "name": "t", "classes": list("abcdefghij"), "num_classes": 10, "channels": 3,
        "totals": {"total": 3, "train": 1, "valid": 1, "test": 1}, "size": {"min": [8, 8], "max": [8, 8]},
        "mean": [0.5] * 3, "std": [0.2] * 3}))
    config = tmp_path / "tiny.yaml"
    config.write_text(f"model: {{name: anetc6, width: 0.125}}\ndata: {{dir: {tmp_path}}}\n")
    result = CliRunner().invoke(cli, ["summary", str(config), "--set", "data.image_size=67"])
    assert result.exit_code == 0, result.output
    assert "input 67x67x3, 10 classes" in result.output and "pool6" in result.output
    cfg = load_config(config, ["data.dir=/nonexistent"])
    assert "24 classes (defaults" in models.config_summary(cfg)
