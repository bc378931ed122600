"""The run's input contract: everything a model needs to turn an image file into its input.

Written with the run at train start (``RunPaths.input``) and read back by evaluate, predict,
visualize and export, so a model always sees images prepared the way it was trained,
whatever dataset is read later (another dataset's mean/std, size or class order never leak in).
No TensorFlow here: reports and export provenance read it too.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from anet.errors import AnetError
from anet.files import atomic_write

# The intensity policy (anet/data/images.py applies it; prepare and predict share it).
INTENSITY = "full-range-v1"
INTENSITY_TEXT = (
    "full-range-v1: integer pixels are scaled by the full range of their bit depth "
    "(8-bit as is, 16-bit x 255/65535), float pixels are taken as 0..1; colour becomes gray by "
    "ITU-R 601 luma (L = 0.299 R + 0.587 G + 0.114 B) for 1-channel models, gray is repeated "
    "for 3-channel models; the result is 8-bit 0..255, then the model's normalisation applies"
)
SIZE_TOLERANCE = 0.1  # an image this much outside the training size range is flagged


@dataclass(frozen=True)
class InputContract:
    """Preprocessing of one run (the fields the pipeline functions read) plus its provenance."""

    image_size: int
    channels: int
    resize: str = "stretch"  # stretch | pad
    pad_scale: float = 1.0  # pad mode: one scale for every image (keeps relative lengths)
    mean: tuple[float, ...] = ()  # empty -> unit scaling only
    std: tuple[float, ...] = ()
    classes: tuple[str, ...] = ()  # label order of the model's outputs
    size_min: tuple[int, int] = (0, 0)  # smallest (height, width) seen in training data
    size_max: tuple[int, int] = (0, 0)  # largest (height, width)
    intensity: str = INTENSITY
    dataset: str = ""  # name of the dataset trained on
    dataset_sha256: str = ""  # sha256 of its dataset.json

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "input.json") -> InputContract:
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise AnetError(f"{source}: not valid JSON ({e})") from None
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(raw, dict) or set(raw) - names or not {"image_size", "channels"} <= set(raw):
            raise AnetError(f"{source}: not an anet input contract (expected keys {sorted(names)})")
        tuples = {k: tuple(v) for k, v in raw.items() if isinstance(v, list)}
        return cls(**(raw | tuples))

    def scaled(self, scale: float) -> InputContract:
        """The contract for images taken at another magnification (``--scale``): pad mode only."""
        if scale == 1.0:
            return self
        if not scale > 0:
            raise AnetError(f"--scale must be > 0, got {scale}")
        if self.resize != "pad":
            raise AnetError(f"--scale {scale}: only runs trained with data.resize: pad keep one "
                            "image scale; this run stretches every image to its input size")
        return dataclasses.replace(self, pad_scale=self.pad_scale * scale)

    def out_of_range(self, height: int, width: int, scale: float = 1.0) -> bool:
        """True when an image (times ``scale``) is outside the training size range by more than
        SIZE_TOLERANCE in height or width (unknown range: never)."""
        if not any(self.size_max):
            return False
        lo = [m * (1 - SIZE_TOLERANCE) for m in self.size_min]
        hi = [m * (1 + SIZE_TOLERANCE) for m in self.size_max]
        return any(not a <= v * scale <= b for v, a, b in zip((height, width), lo, hi))


def from_dataset(data_cfg, info) -> InputContract:
    """The contract a run trained with ``cfg.data`` on the dataset ``info`` (DatasetInfo) uses."""
    size = data_cfg.image_size
    lo, hi = info.size.get("min", [0, 0]), info.size.get("max", [size, size])
    standardize = data_cfg.normalize == "standardize"
    return InputContract(
        image_size=size,
        channels=info.channels,
        resize=data_cfg.resize,
        pad_scale=size / max(hi[0], hi[1], 1),
        mean=tuple(float(m) for m in info.mean) if standardize else (),
        std=tuple(float(s) for s in info.std) if standardize else (),
        classes=tuple(info.classes),
        size_min=(int(lo[0]), int(lo[1])),
        size_max=(int(hi[0]), int(hi[1])),
        intensity=info.intensity or "unrecorded (prepared before anet recorded it)",
        dataset=info.name,
        dataset_sha256=info.sha256,
    )


def save(contract: InputContract, path: str | Path) -> Path:
    """Write the contract to ``path`` (a run's ``RunPaths.input``)."""
    return atomic_write(path, contract.to_json())


def load(path: str | Path) -> InputContract | None:
    """The contract stored at ``path``; None when there is none (runs made before it existed)."""
    path = Path(path)
    if not path.is_file():
        return None
    return InputContract.from_json(path.read_text(), str(path))


def check_dataset(contract: InputContract, info) -> None:
    """A dataset (DatasetInfo) read with a run must have the run's classes in the same order
    (its channels are converted by decoding with the run's channel count)."""
    classes = tuple(info.classes)
    if contract.classes and classes != contract.classes:
        raise AnetError(f"{info.dir}: its classes ({', '.join(classes)}) differ from the run's "
                        f"({', '.join(contract.classes)}); evaluate on a dataset with the same "
                        "classes in the same order")
