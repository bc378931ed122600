"""scripts/gpu_bench.py's pure parts: IDX reading, results merging and the markdown table."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench  # noqa: E402
import gpu_bench  # noqa: E402


def test_read_idx_round_trips_bench_fixture(tmp_path):
    x, y = bench.digit_images(5, seed=3)
    bench.write_idx_gz(tmp_path / "i.gz", x)
    bench.write_idx_gz(tmp_path / "l.gz", y)
    np.testing.assert_array_equal(gpu_bench.read_idx(tmp_path / "i.gz"), x)
    np.testing.assert_array_equal(gpu_bench.read_idx(tmp_path / "l.gz"), y)


def test_save_merges_sections_and_writes_summary_table(tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    gpu_bench.save("env", {"mode": "keras-jax", "note": gpu_bench.HONEST, "gpu": "Card X",
                           "driver": "1.2"})
    gpu_bench.save("matmul", {"n": 8192, "jax_bfloat16_tflops": 800.0, "torch_float16_tflops": 700.0})
    gpu_bench.save("step_alexnet", {"framework": "keras-jax", "precision": "mixed_bfloat16",
                                    "batch": 256, "images_per_s": 20000.0,
                                    "achieved_tflops": 200.0})
    gpu_bench.save("torch", {"images_per_s": 16000.0, "amp": "bf16", "batch": 256,
                             "keras_jax_over_torch_compile": 1.25})
    gpu_bench.save("fashion", {"framework": "keras-jax", "input": "227x227x1", "epochs": 7,
                               "train_s": 150.0, "test_accuracy": 0.91, "test_images": 10000})
    # a failure note keeps the figures already saved for that section
    gpu_bench.cmd_record(type("A", (), {"json": "", "section": "torch", "error": "timed out",
                                       "status": ""}))
    results = json.loads((tmp_path / "gpu_check.json").read_text())
    assert list(results) == ["env", "matmul", "step_alexnet", "torch", "fashion"]
    assert results["torch"]["error"] == "timed out" and results["torch"]["images_per_s"] == 16000.0
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.startswith("GPU check on Card X (driver 1.2), mode `keras-jax`: anet architectures")
    assert "| matmul 8192^3, jax bfloat16 | 800.0 TFLOP/s |" in md
    assert ("| alexnet train step (keras-jax, mixed_bfloat16, batch 256) | 20000.0 images/s, "
            "200.0 TFLOP/s, 0.25 of jax_bfloat16 matmul |") in md
    assert "Keras/JAX anet alexnet / torch.compile = 1.25" in md
    assert "test accuracy 0.91 on 10000 images after 7 epochs, 150.0 s" in md
    assert "| torch | error | timed out |" in md
