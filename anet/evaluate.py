"""evaluate(run_dir): score every checkpoint on valid, pick the best, test it (the paper's procedure).

The model is built once and each checkpoint's weights are swapped in (anet.scoring: each
checkpoint read once, the validation split decoded once). Selection looks only at
the validation split; the test split is read once, for the chosen checkpoint. Everything lands
in the run directory (a ``--ckpt`` evaluation writes beside them under its own names, see
``RunPaths.partial_eval``): ``eval.json`` (scores, choice and why, accuracies, per-class metrics,
confusion matrix, config hash, dataset identity, per-cell karyotype accuracy when it applies),
``confusion.png`` and ``errors.png``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from anet import checkpoints, karyotype, metrics, polarity, restore, scoring, stall, tboard
from anet.config import dump_yaml
from anet.data.info import DatasetInfo
from anet.errors import AnetError
from anet.files import atomic_write, check_writable, safe_name
from anet.models import has_polarity
from anet.plotting import plot_confusion, plot_errors
from anet.runlog import record_command
from anet.runs import RunPaths, build_model, check_fits, choose_checkpoint, open_run

REPORTED = ("valid", "test")  # --split choices (selection always reads valid)


def select_best(scores: list[dict]) -> tuple[dict, str]:
    """The checkpoint with the highest ``valid_acc``; ties go to the earliest ``step``.

    Args:
        scores: one dict per checkpoint with at least ``name``, ``step`` and ``valid_acc``.
    Returns:
        (chosen score dict, a one-line reason).
    """
    chosen, tied = checkpoints.select_best(scores, lambda s: s["valid_acc"], lambda s: s["step"])
    others = [s["name"] for s in tied]
    reason = f"highest valid accuracy {chosen['valid_acc']:.4f}"
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        reason += f"; tie with {shown} broken by earliest step"
    return chosen, reason


def other_dataset(spec, ident: dict) -> str:
    """'' when ``ident`` (see dataset_identity) is the dataset the run was trained on; else a
    file-safe name for results on it (its name, plus its hash when the names are equal)."""
    if not spec.dataset_sha256 or ident["sha256"] == spec.dataset_sha256:
        return ""
    name = safe_name(str(ident["name"]))
    return name if name != safe_name(spec.dataset or "") else f"{name}-{ident['sha256'][:8]}"


# --------------------------------------------------------------------------- the command


def evaluate(run_dir: str | Path, *, split: str = "test", ckpt: str | None = None,
             batch_size: int = 0, train_batches: int = 0, scale: float = 1.0,
             predictions: str | Path | None = None, karyograms: int = 0, overrides=()) -> dict:
    """Select the best checkpoint on valid, report it on ``split``; writes eval.json and plots.

    Images are read by the run's input contract (normalisation, size, classes of training),
    whatever ``data.dir`` is. On another dataset (``--set data.dir=OTHER``) the run's selected
    checkpoint is reported, not re-selected, and the result goes to ``eval-NAME.json`` (and
    ``eval-NAME-confusion.png``, ``-errors.png``); the run's own ``eval.json`` is never replaced.

    Args:
        split: the split whose per-class metrics and confusion matrix are reported
            (``test`` is read only for the chosen checkpoint; ``valid`` never reads it).
        ckpt: score only this checkpoint (a name like ``ckpt-00000072`` or a step).
        batch_size: evaluation batch size (0: the config's ``train.batch_size``).
        train_batches: cap on batches of the train split for train accuracy (0: whole split).
        scale: the factor that brings the images to the training images' scale (pad runs).
        predictions: also write per-example predictions (valid and ``split``) to this CSV.
        karyograms: draw the karyograms of this many cells of ``split`` (karyotype datasets).
    Returns:
        The eval.json dict.
    """
    from anet.data import pipeline

    if split not in REPORTED:
        raise AnetError(f"--split must be one of {', '.join(REPORTED)}, got {split!r}")
    predictions = Path(predictions) if predictions is not None else None
    if predictions is not None and (predictions.is_dir() or not predictions.parent.is_dir()):
        raise AnetError(f"--predictions {predictions}: name a .csv file in an existing folder")
    seeds = RunPaths(run_dir).seed_runs()
    if seeds and not RunPaths(run_dir).checkpoints.is_dir():
        if ckpt or predictions is not None or karyograms:
            what = ("--ckpt names one run's checkpoint" if ckpt else "--predictions is one run's"
                    if predictions is not None else "--karyograms draws one run's cells")
            raise AnetError(f"{run_dir} holds {len(seeds)} seed runs; {what}: "
                            f"pass --run-dir {seeds[0]}")
        return evaluate_seeds(seeds, split=split, batch_size=batch_size,
                              train_batches=train_batches, scale=scale,
                              predictions=None, overrides=overrides)
    run = open_run(run_dir, overrides)
    check_writable(run.dir, "evaluate writes eval.json there; fix its permissions")
    if karyograms and not (karyotype.is_karyotype(run.dataset.classes) and run.dataset.has_cells):
        raise AnetError(f"--karyograms needs a karyotype dataset whose chromosomes know their cell; "
                        f"{run.cfg.data.dir} ({run.dataset.name}) has none")
    from anet.data import cache

    # a damaged shard: one line naming it; the decoded valid split's cache file (if it needs
    # one) lives in the run while this command runs
    with pipeline.read_errors(run.cfg.data.dir), cache.cache_folder(run.paths.cache):
        return _evaluate(run, split=split, ckpt=ckpt, batch_size=batch_size,
                         train_batches=train_batches, scale=scale, predictions=predictions,
                         karyograms=karyograms)


def _evaluate(run, *, split: str, ckpt: str | None, batch_size: int, train_batches: int,
              scale: float, predictions: Path | None, karyograms: int = 0) -> dict:
    from anet.data import pipeline
    from anet.data.contract import check_dataset
    from anet.steps import make_eval_fn

    info, spec = run.dataset, run.contract
    data_dir, batch = run.cfg.data.dir, batch_size or run.cfg.train.batch_size
    check_dataset(spec, info)
    classes, read = list(spec.classes), spec.scaled(scale)
    ident = dataset_identity(info)
    other = other_dataset(spec, ident)
    if ckpt or other:  # on other data the run's selection is kept, never re-selected
        one, selected_why = (run.checkpoint(ckpt), "--ckpt") if ckpt else choose_checkpoint(run)
        candidates, broken = [one], []
    else:  # damaged checkpoints are skipped (with a notice) and listed in eval.json
        candidates, broken = list(run.ckpts), restore.unlisted(run.paths.checkpoints, list(run.ckpts))
        for path, why in broken:
            print(restore.skip_notice(path, why), file=sys.stderr)
    for c in candidates:
        check_fits(run, c, len(classes))

    model = build_model(run)
    polar = has_polarity(model)  # the split is then read with its polarity
    forward = scoring.forward_fn(model)
    score = make_eval_fn(model)
    restorer = restore.Restorer(model)
    # decoded at the first checkpoint, then kept for the others (anet.data.cache); each
    # checkpoint is read once, and that read finds a damaged one (anet.restore)
    valid_ds = pipeline.decoded_once(data_dir, "valid", read, examples=info.split_size("valid"),
                                     batch_size=batch, folder=run.paths.cache)
    scores, damaged = scoring.score_checkpoints(candidates, restorer, score, valid_ds,
                                                explicit=bool(ckpt or other))
    broken += damaged
    if not scores:
        raise AnetError(f"{run.dir}: every checkpoint is damaged; train again")
    if ckpt:
        chosen, reason = scores[0], f"given with --ckpt (valid accuracy {scores[0]['valid_acc']:.4f})"
    elif other:
        chosen, reason = scores[0], f"the run's selection ({selected_why}), not re-selected on {other}"
    else:
        chosen, reason = select_best(scores)
    never_learned = all(stall.at_chance(sc["valid_acc"], len(classes), sc["valid_loss"])
                        for sc in scores)
    if never_learned:
        print(stall.eval_warning(len(scores), max(sc["valid_acc"] for sc in scores),
                                 len(classes)), file=sys.stderr)
        reason += "; every checkpoint is at chance"
    if chosen is not scores[-1]:  # the model holds the last one scored: read the chosen again
        restorer.weights(next(c.path for c in candidates if c.name == chosen["name"]))

    k = len(classes)
    out = scoring.collect(forward, pipeline.eval_dataset(data_dir, split, read, batch_size=batch,
                                                  with_meta=True, polarity=polar), split)
    valid_out = out if split == "valid" else scoring.collect(forward, pipeline.eval_dataset(
        data_dir, "valid", read, batch_size=batch, with_meta=True, polarity=polar),
        "valid") if predictions else None
    # The chosen checkpoint's confusion and top-k on every split (macro-F1, top-5 in eval.json)
    tallies = {"train": scoring.tally(forward, pipeline.eval_dataset(
        data_dir, "train", read, batch_size=batch, max_batches=train_batches), k, "train"),
        "valid": metrics.tally(valid_out["probs"], valid_out["labels"], k) if valid_out
        else scoring.tally(forward, valid_ds, k, "valid"),
        split: metrics.tally(out["probs"], out["labels"], k)}
    preds = out["probs"].argmax(axis=1)
    cm = tallies[split][0]
    train_cm = tallies["train"][0]
    outside = sum(spec.out_of_range(int(h), int(w), scale) for h, w in out["sizes"])
    pol = polarity.score(out["polarity_probs"], out["polarity"])
    result = {
        "run": str(run.dir),
        "model": run.cfg.model.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config_sha256": hashlib.sha256(dump_yaml(run.cfg).encode()).hexdigest(),
        "dataset": ident,
        "trained_on": {"name": spec.dataset, "sha256": spec.dataset_sha256},
        "other_dataset": other or None,
        "checkpoints": scores,
        "damaged": [{"name": Path(p).name, "reason": why} for p, why in broken],
        "chosen": {"name": chosen["name"], "step": chosen["step"], "reason": reason},
        "at_chance": never_learned,
        "accuracy": {"train": float(np.trace(train_cm) / train_cm.sum()),
                     "valid": chosen["valid_acc"],
                     "test": float((preds == out["labels"]).mean()) if split == "test" else None},
        **metrics.eval_fields(tallies, classes),
        "examples": {"train": int(train_cm.sum()), split: len(preds)},
        "train_batches": train_batches,
        "split": split,
        "scale": scale,
        "out_of_range": {"split": split, "count": int(outside),
                         "size_min": list(spec.size_min), "size_max": list(spec.size_max)},
        "classes": classes,
        "per_class": metrics.per_class(cm, classes),
        "confusion": cm.tolist(),
        "errors": scoring.misclassified(out, classes),
        "polarity": pol.to_json() if pol else None,
        "karyotype": None,
    }
    if karyotype.applies(classes, out["cells"]):
        cell = karyotype.cell_report(out["probs"], out["labels"], out["cells"],
                                     truths=info.karyotypes, filenames=out["filenames"],
                                     structural=info.structural)
        result["karyotype"] = cell | {"split": split}
        if karyograms:
            drawn = draw_karyograms(run, out, cell["per_cell"][:karyograms], split,
                                    other or safe_name(info.name), pol)
            result["karyotype"]["karyograms"] = [str(p.relative_to(run.dir)) for p in drawn]
    if predictions is not None:
        parts = [out] if split == "valid" else [valid_out, out]
        atomic_write(predictions, scoring.predictions_csv(parts, classes))
    # A partial evaluation (--ckpt) or one on other data writes beside the selection's files.
    if other:
        files = run.paths.other_eval(other, *((chosen["name"], split) if ckpt else ()))
    elif ckpt:
        files = run.paths.partial_eval(chosen["name"], split)
    else:
        files = (run.paths.eval, run.paths.confusion, run.paths.errors)
    result["files"] = [f.name for f in files]
    atomic_write(files[0], json.dumps(result, indent=1) + "\n")
    record_command(run.dir)
    on = f"{other} " if other else ""
    plot_confusion(cm, classes, files[1],
                   title=f"{Path(run.dir).name} {chosen['name']}: {on}{split} confusion")
    plot_errors(out["errors"], classes, files[2], total=int((preds != out["labels"]).sum()))
    if files[0] == run.paths.eval:  # the selection: at the newest step scored, so the last wins
        tboard.write_eval(run.paths.tensorboard, result, max(sc["step"] for sc in scores), files[1])
    if pol and pol.at_chance:
        print(polarity.warning(run.dir, pol, f"{on}{split}"), file=sys.stderr)
    if outside:
        print(f"warning: {outside} of {len(preds)} {split} images are outside the training size "
              f"range ({spec.size_min[0]}x{spec.size_min[1]} .. {spec.size_max[0]}x"
              f"{spec.size_max[1]}); another magnification? try --scale", file=sys.stderr)
    print(summary(result, predictions))
    return result


def draw_karyograms(run, out: dict, rows: list[dict], split: str, dataset: str,
                    pol: polarity.PolarityScore | None = None) -> list[Path]:
    """The karyograms of the cells in ``rows`` (per-cell report rows), from their JPGs, as
    ``RUN/karyograms/DATASET-SPLIT-CELL.png``; chromosomes are turned by the polarity head's
    calls unless ``pol`` (its score on the split) says it is at chance."""
    from PIL import Image

    from anet import karyogram

    assigned = karyotype.assign_cells(out["probs"], out["cells"])
    argmax = out["probs"].argmax(axis=1)
    calls = out["polarity_probs"].argmax(axis=1) if out["polarity_probs"] is not None else None
    calls, note = polarity.karyogram_turns(calls, pol)
    paths = []
    run.paths.karyogram(dataset, split, "cell").parent.mkdir(exist_ok=True)
    for row in rows:
        idx = [i for i, c in enumerate(out["cells"]) if c == row["cell"]]
        files = [run.dataset.dir / "jpg" / out["filenames"][i] for i in idx]
        if missing := [f for f in files if not f.is_file()]:
            raise AnetError(f"{missing[0]}: missing; --karyograms draws the dataset's jpg/ tree "
                            "(re-run `anet prepare --force` to restore it)")
        images = [np.asarray(Image.open(f).convert("L")) for f in files]
        truth = f" (truth {row['truth']})" if row["truth"] else ""
        paths.append(karyogram.draw(
            images, assigned[idx], run.paths.karyogram(dataset, split, row["cell"]),
            title=f"{row['cell']}: called {row['call']}{truth}", argmax=argmax[idx],
            truth=out["labels"][idx], polarity=calls[idx] if calls is not None else None,
            note=note))
    return paths


def dataset_identity(info: DatasetInfo) -> dict:
    """What identifies the dataset a result was computed on: name, totals, sha256 of dataset.json."""
    return {"name": info.name, "dir": str(info.dir), "totals": info.totals, "sha256": info.sha256}


def evaluate_seeds(seed_dirs: list[Path], **options) -> dict:
    """``anet evaluate`` on a ``--seeds`` folder: each ``seed-N`` run in turn (its own eval.json),
    then one line per split of mean ± std over the seeds. Returns ``{"runs": [eval dicts]}``."""
    from anet.report_data import fmt_mean_std

    results = [evaluate(d, **options) for d in seed_dirs]
    parent = Path(seed_dirs[0]).parent
    lines = [f"{parent}: {len(results)} seeds ({', '.join(Path(d).name for d in seed_dirs)})"]
    for s in ("train", "valid", "test"):
        values = [r["accuracy"].get(s) for r in results]
        if any(v is not None for v in values):
            lines.append(f"{s:<6} {fmt_mean_std(values)}  (mean ± std, n={len(results)})")
    print("\n".join(lines))
    return {"runs": results}


def summary(result: dict, predictions: Path | None = None) -> str:
    """A short text table of an eval.json dict."""
    from anet.report import metric_cells

    acc, n = result["accuracy"], result["examples"]
    on = f" on {result['dataset']['dir']}" if result.get("other_dataset") else ""
    lines = [f"{result['run']}{on}: chose {result['chosen']['name']} ({result['chosen']['reason']})",
             f"{'split':<6} {'accuracy':>9} {'top-5':>7} {'macro-F1':>9} {'examples':>9}"]
    for s in ("train", "valid", "test"):
        if acc.get(s) is not None:
            count = n.get(s, result["dataset"]["totals"].get(s, ""))
            top5, f1 = metric_cells(result, s)
            lines.append(f"{s:<6} {acc[s]:>9.4f} {top5:>7} {f1:>9} {count:>9}")
    absent = {s: c for s, c in (result.get("absent_classes") or {}).items() if c}
    if absent:
        lines.append("macro-F1 leaves out classes absent from a split: " + "; ".join(
            f"{s}: {', '.join(map(str, c[:6]))}" + (f" and {len(c) - 6} more" if len(c) > 6 else "")
            for s, c in absent.items()))
    if pol := polarity.PolarityScore.from_json(result.get("polarity")):
        shown = (f"{pol.accuracy:.4f} (one-sided binomial p={pol.p_value:.2g} against 0.5"
                 f"{': at chance' if pol.at_chance else ''})" if pol.accuracy is not None
                 else "n/a (not recorded)")
        lines.append(f"polarity ({result['split']}, {pol.examples} known): accuracy {shown}")
    k = result.get("karyotype")
    if k:
        lines.append(f"karyotype ({k['split']}, {k['cells']} cells, {k['chromosomes']} chromosomes): "
                     f"per-chromosome {k['accuracy_before']:.4f} -> per-cell assigned "
                     f"{k['accuracy_after']:.4f}")
        if k.get("calls"):
            lines.append(karyotype.call_lines(k["calls"], k.get("structural", [])))
    paths = RunPaths(result["run"])
    files = result.get("files") or [paths.eval.name, paths.confusion.name, paths.errors.name]
    lines.append(f"wrote {paths.dir / files[0]}, {', '.join(files[1:])}"
                 + (f", {predictions}" if predictions else ""))
    return "\n".join(lines)
