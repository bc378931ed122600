"""A prepared dataset's ``dataset.json`` as one typed record (no TensorFlow: tables use it).

``anet prepare`` writes it last (its presence marks a finished dataset); train, evaluate,
predict, visualize, summary and report read it through :func:`load_dataset` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from anet.errors import AnetError

DATASET_JSON = "dataset.json"


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """What ``dataset.json`` holds. A new key gets a field here with a default (datasets
    prepared before it lack it); ``dir`` and ``sha256`` describe the file and are not stored."""

    name: str  # mnist, cifar, karyotype, synthetic-karyotype, ...
    source: str = ""  # where the raw data came from
    seed: int = 0  # the split seed
    ratios: dict = field(default_factory=dict)  # valid/test fractions asked for
    classes: tuple[str, ...]  # class names, in label order
    num_classes: int
    channels: int  # 1 (gray) or 3 (RGB)
    counts: dict = field(default_factory=dict)  # split -> class -> examples
    totals: dict  # total/train/valid/test -> examples
    size: dict  # {"min": [h, w], "max": [h, w]} of the source images
    mean: tuple[float, ...]  # per-channel train mean in [0, 1] (data.normalize=standardize)
    std: tuple[float, ...]
    shards: dict = field(default_factory=dict)  # split -> TFRecord file names
    has_cells: bool = False  # examples carry a cell id (karyotype per-cell assignment)
    has_polarity: bool = False  # examples carry a p-arm polarity
    karyotypes: dict = field(default_factory=dict)  # cell -> its ISCN karyotype (e.g. 47,XY,+21)
    structural: dict = field(default_factory=dict)  # jpg path -> a rearranged chromosome's ISCN name
    duplicates: int = 0  # examples whose image bytes repeat another's
    jpeg_quality: int = 0
    intensity: str = ""  # intensity policy of the TIF/16-bit conversion (anet.data.contract)
    skipped: list = field(default_factory=list)  # source files that could not be read
    created: str = ""  # ISO time of prepare
    options: dict = field(default_factory=dict)  # prepare options it was built from (outdir.options)
    dir: Path | None = field(default=None, compare=False)
    sha256: str = field(default="", compare=False)  # of the dataset.json bytes

    def split_size(self, split: str) -> int:
        """Examples in ``split`` (train, valid or test)."""
        return int(self.totals.get(split, 0))

    def to_json(self) -> dict:
        """The JSON object written as ``dataset.json``."""
        return {f.name: _plain(getattr(self, f.name)) for f in _stored()}

    @classmethod
    def from_json(cls, data, source: str | Path = DATASET_JSON) -> DatasetInfo:
        """Validate and type a ``dataset.json`` object; a wrong key or type is one AnetError
        naming ``source`` and the key."""
        fix = "re-run `anet prepare --force` on its source"
        if not isinstance(data, dict):
            raise AnetError(f"{source}: not an anet dataset.json (not a JSON object); {fix}")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in _stored()]
        for key in data:
            if key not in names:
                raise AnetError(f"{source}: unknown key {key!r} (valid: {', '.join(names)}); {fix}")
        for f in _stored():
            if f.name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise AnetError(f"{source}: missing key {f.name!r}; {fix}")
                continue
            if not _fits(hints[f.name], data[f.name]):
                raise AnetError(f"{source}: key {f.name!r} has the wrong type "
                                f"({type(data[f.name]).__name__}); {fix}")
        kwargs = {k: tuple(v) if isinstance(v, list) and k in ("classes", "mean", "std") else v
                  for k, v in data.items()}
        info = cls(**kwargs)
        if info.num_classes != len(info.classes):
            raise AnetError(f"{source}: key 'num_classes' is {info.num_classes} but 'classes' "
                            f"lists {len(info.classes)}; {fix}")
        missing = [s for s in ("train", "valid", "test") if not isinstance(info.totals.get(s), int)]
        if missing:
            raise AnetError(f"{source}: key 'totals' lacks {', '.join(missing)}; {fix}")
        return info


def load_dataset(data_dir: str | Path) -> DatasetInfo:
    """Read and validate ``dataset.json`` of the prepared dataset in ``data_dir``."""
    path = Path(data_dir) / DATASET_JSON
    if not path.is_file():
        raise AnetError(
            f"{path}: no prepared dataset (data.dir={data_dir}); run `anet prepare` first "
            "or set data.dir to its output folder"
        )
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AnetError(f"{path}: not valid JSON ({e}); re-run `anet prepare --force`") from None
    info = DatasetInfo.from_json(data, path)
    return dataclasses.replace(info, dir=Path(data_dir), sha256=hashlib.sha256(raw).hexdigest())


def _stored() -> list:
    return [f for f in dataclasses.fields(DatasetInfo) if f.compare]


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def _fits(tp, value) -> bool:
    """Whether a JSON value matches a field's annotation (ints count as floats)."""
    origin = typing.get_origin(tp) or tp
    if origin is tuple:
        (item, _) = typing.get_args(tp)
        return isinstance(value, list) and all(_fits(item, v) for v in value)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin)
