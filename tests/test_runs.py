from pathlib import Path

from anet.runs import RunPaths


def test_run_paths_name_the_run_folder_layout():
    p = RunPaths("runs/x")
    assert p.dir == Path("runs/x")
    got = {k: str(getattr(p, k)) for k in ("config", "checkpoints", "checkpoint_index", "metrics",
                                          "tensorboard", "curves", "eval", "confusion", "errors",
                                          "visualize", "train_log")}
    assert got == {"config": "runs/x/config.yaml", "checkpoints": "runs/x/checkpoints",
                   "checkpoint_index": "runs/x/checkpoints/checkpoints.jsonl",
                   "metrics": "runs/x/metrics.jsonl", "tensorboard": "runs/x/tensorboard",
                   "curves": "runs/x/curves.png", "eval": "runs/x/eval.json",
                   "confusion": "runs/x/confusion.png", "errors": "runs/x/errors.png",
                   "visualize": "runs/x/visualize", "train_log": "runs/x/train.log"}
    assert p.worker(2) == RunPaths("runs/x/worker-2")
