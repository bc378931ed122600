"""Export a run's chosen checkpoint as a SavedModel a colleague can serve without anet.

Two signatures, both through the run's input contract (``pipeline.resize``/``normalize``):
``serving_default`` takes encoded JPEG/PNG/GIF/BMP bytes, decoded in the graph by the intensity
policy as ``anet predict`` reads them (``anet.data.served``: not TIF, 1/4-bit or compressed BMP,
nor EXIF orientation); ``serving_pixels`` takes decoded pixel arrays on the 8-bit scale (how a
caller passes TIFs it decoded itself). A model with the polarity head also returns
``polarity_probabilities`` [N, 2] (p-arm up, down) and ``polarity`` [N] (``up``/``down``).
``export.json`` says what the model is: classes, polarity, input contract, intensity policy,
the selected checkpoint and its accuracies, the dataset, the anet version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path

from anet import __version__
from anet.data.contract import INTENSITY_TEXT
from anet.errors import AnetError
from anet.files import atomic_write, check_writable
from anet.models import POLARITY_CLASSES
from anet.runs import eval_result, open_chosen, pick_run

EXPORT_INFO = "export.json"
TFLITE = "model.tflite"
SIGNATURES = {
    "serving_default": "images: encoded JPEG/PNG/GIF/BMP bytes [N] (not TIF, 1/4-bit or "
                       "compressed BMP; EXIF orientation not applied) -> probabilities [N, K], "
                       "class_ids [N], class_names [N] (with the polarity head also "
                       "polarity_probabilities [N, 2] and polarity [N]: up|down)",
    "serving_pixels": "pixels: float32 [N, H, W, C], decoded images of one size on the 8-bit "
                      "scale 0..255 after the intensity policy (16-bit: divide by 257) -> the same "
                      "outputs",
}


def serving_module(model, spec):
    """A ``tf.Module`` with ``serve(images)`` (encoded bytes) and ``serve_pixels(pixels)``."""
    import tensorflow as tf

    from anet.data.pipeline import normalize, resize
    from anet.data.served import serve_transform
    from anet.models import split_outputs

    shape = [spec.image_size, spec.image_size, spec.channels]

    class Serving(tf.Module):
        def __init__(self):
            super().__init__(name="anet_serving")
            self.model = model
            self.class_names = tf.constant(list(spec.classes))

        def _outputs(self, x):
            probs, pol = split_outputs(self.model(x, training=False))
            ids = tf.argmax(probs, axis=-1, output_type=tf.int32)
            out = {"probabilities": probs, "class_ids": ids,
                   "class_names": tf.gather(self.class_names, ids)}
            if pol is not None:
                out["polarity_probabilities"] = pol
                out["polarity"] = tf.gather(tf.constant(list(POLARITY_CLASSES)),
                                            tf.argmax(pol, axis=-1, output_type=tf.int32))
            return out

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def serve(self, images):
            x = tf.map_fn(lambda b: serve_transform(b, spec), images,
                          fn_output_signature=tf.TensorSpec(shape, tf.float32))
            return self._outputs(x)

        @tf.function(input_signature=[
            tf.TensorSpec([None, None, None, spec.channels], tf.float32, name="pixels")])
        def serve_pixels(self, pixels):
            x = tf.map_fn(lambda im: normalize(resize(im, spec), spec), pixels,
                          fn_output_signature=tf.TensorSpec(shape, tf.float32))
            return self._outputs(x)

    return Serving()


def provenance(run, chosen: dict, why: str) -> dict:
    """export.json: what the model is and where it came from."""
    spec = run.contract
    name = chosen.name
    ev = eval_result(run)
    acc = {"valid": chosen.valid_acc, "test": None, "source": "recorded during training"}
    if ev.get("chosen", {}).get("name") == name and isinstance(ev.get("accuracy"), dict):
        acc = {"valid": ev["accuracy"].get("valid"), "test": ev["accuracy"].get("test"),
               "source": f"{run.dir / 'eval.json'}"}
    return {
        "anet_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": str(run.dir),
        "model": run.cfg.model.name,
        "checkpoint": {"name": name, "step": chosen.step, "why": why, "accuracy": acc},
        "classes": list(spec.classes),
        "polarity": list(POLARITY_CLASSES) if run.cfg.model.polarity else None,
        "input": dataclasses.asdict(spec),
        "intensity_policy": INTENSITY_TEXT,
        "dataset": {"name": spec.dataset, "sha256": spec.dataset_sha256},
        "signatures": SIGNATURES,
    }


def to_tflite(model) -> bytes:
    """The Keras model as a TFLite (LiteRT) flatbuffer: preprocessed ``[N, S, S, C]`` float32
    inputs -> probabilities, like ``model.keras`` (LRN is a TFLite builtin op)."""
    import tensorflow as tf

    with contextlib.redirect_stdout(sys.stderr):  # the converter prints its traced signature
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def export(run_dir: str | Path | None, out: str | Path, *, ckpt: str | None = None,
           overrides=(), tflite: bool = False) -> Path:
    """SavedModel (two signatures) + ``model.keras`` (+ ``model.tflite`` with ``tflite``) +
    ``export.json`` of the chosen checkpoint.

    ``out`` is written beside itself and renamed into place; an existing ``out`` is replaced
    only when it is an earlier export (holds ``saved_model.pb``).
    """
    import tensorflow as tf

    out = Path(out)
    check_writable(out.parent, "choose another --out")  # before the model is built
    if out.exists() and not (out / "saved_model.pb").is_file() and (
            not out.is_dir() or any(out.iterdir())):  # a file, or a non-empty foreign folder
        raise AnetError(f"{out}: exists and is not an anet export; choose another --out")
    run, chosen, why, model = open_chosen(pick_run(run_dir), ckpt, overrides)
    spec = run.contract
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    module = serving_module(model, spec)
    tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve,
                                                      "serving_pixels": module.serve_pixels})
    model.save(tmp / "model.keras")
    if tflite:
        (tmp / TFLITE).write_bytes(to_tflite(model))
    atomic_write(tmp / EXPORT_INFO, json.dumps(provenance(run, chosen, why), indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"exported {chosen.name} ({why}) to {out} (SavedModel with signatures "
          f"{', '.join(SIGNATURES)}; model.keras; {TFLITE + '; ' if tflite else ''}{EXPORT_INFO})")
    return out
