"""Predict classes of image files with a run's checkpoint, and export it as a SavedModel.

Both go through ``pipeline.eval_transform`` (the evaluation preprocessing) on encoded image
bytes, so a prediction sees exactly what evaluation saw. TIFs (16-bit included) and other
formats TensorFlow cannot decode are first converted with Pillow the way ``anet prepare``
converts them, then encoded as PNG.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from anet.data.images import load_inputs
from anet.errors import AnetError
from anet.files import atomic_write, check_writable
from anet.runs import open_chosen


def predict(run_dir: str | Path, images, *, top_k: int = 3, ckpt: str | None = None,
            batch_size: int = 64, overrides=()) -> list[dict]:
    """Top-k class names and probabilities per image; prints one line per image.

    Returns:
        ``[{"image": path, "top": [(class name, probability), ...]}, ...]``.
    """
    if not images:
        raise AnetError("no images given; pass one or more JPG, PNG or TIF files")
    if top_k < 1:
        raise AnetError(f"--top-k must be >= 1, got {top_k}")
    run, chosen, why, model = open_chosen(run_dir, ckpt, overrides)
    classes, spec = list(run.dataset.classes), run.spec()
    print(f"# {chosen.name} ({why})")
    k = min(top_k, len(classes))
    results = []
    for start in range(0, len(images), batch_size):
        part = list(images[start:start + batch_size])
        probs = model(load_inputs(part, spec), training=False).numpy()
        for path, p in zip(part, probs):
            top = [(classes[i], float(p[i])) for i in np.argsort(-p, kind="stable")[:k]]
            results.append({"image": str(path), "top": top})
            print(f"{path}\t" + "\t".join(f"{name} {prob:.4f}" for name, prob in top))
    return results


# --------------------------------------------------------------------------- export


def serving_module(model, spec, classes):
    """A ``tf.Module`` whose ``serve(images)`` maps encoded image bytes [N] to predictions."""
    import tensorflow as tf

    from anet.data.pipeline import eval_transform

    shape = [spec.image_size, spec.image_size, spec.channels]

    class Serving(tf.Module):
        def __init__(self):
            super().__init__(name="anet_serving")
            self.model = model
            self.class_names = tf.constant(list(classes))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def serve(self, images):
            x = tf.map_fn(lambda b: eval_transform(b, spec), images,
                          fn_output_signature=tf.TensorSpec(shape, tf.float32))
            probs = self.model(x, training=False)
            ids = tf.argmax(probs, axis=-1, output_type=tf.int32)
            return {"probabilities": probs, "class_ids": ids,
                    "class_names": tf.gather(self.class_names, ids)}

    return Serving()


def export(run_dir: str | Path, out: str | Path, *, ckpt: str | None = None, overrides=()) -> Path:
    """SavedModel (serving raw image bytes) + ``model.keras`` of the chosen checkpoint in ``out``.

    ``out`` is written beside itself and renamed into place; an existing ``out`` is replaced
    only when it is an earlier export (holds ``saved_model.pb``).
    """
    import tensorflow as tf

    out = Path(out)
    check_writable(out.parent, "choose another --out")  # before the model is built
    if out.exists() and not (out / "saved_model.pb").is_file() and (
            not out.is_dir() or any(out.iterdir())):  # a file, or a non-empty foreign folder
        raise AnetError(f"{out}: exists and is not an anet export; choose another --out")
    run, chosen, why, model = open_chosen(run_dir, ckpt, overrides)
    classes, spec = list(run.dataset.classes), run.spec()
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = serving_module(model, spec, classes)
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
    model.save(tmp / "model.keras")
    info = {"run": str(run.dir), "checkpoint": chosen.name, "why": why,
            "classes": classes, "preprocess": spec.__dict__,
            "signature": "serving_default: images (encoded bytes [N]) -> probabilities, "
                         "class_ids, class_names"}
    atomic_write(tmp / "export.json", json.dumps(info, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"exported {chosen.name} ({why}) to {out} (SavedModel + model.keras)")
    return out
