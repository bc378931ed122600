"""train(cfg, run_dir): data + model + optimizer + Algorithm 1 + checkpoints, in one custom loop.

A custom loop (not ``model.fit``) because the learning rate and checkpointing follow
Algorithm 1 at arbitrary steps, the run must resume mid-epoch with its policy state, and the
same loop runs under ``MirroredStrategy`` and ``MultiWorkerMirroredStrategy`` (where
``fit`` fails with PerReplica values).
"""

from __future__ import annotations

import dataclasses
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from anet import checkpoints, cluster, lock, models, progress, restore, retention, schedule, stall, tboard
from anet import resume as resume_policy
from anet.config import Config, to_dict, write_config
from anet.data import cache, contract, pipeline
from anet.data.contract import InputContract
from anet.data.info import DatasetInfo, load_dataset
from anet.errors import AnetError
from anet.files import check_writable
from anet.report import plot_curves
from anet.runlog import MetricsLog, record_command
from anet.runs import RunPaths, default_run_dir
from anet.steps import (
    StepSums,
    Sums,
    make_eval_fn,
    make_optimizer,
    make_strategy,
    make_train_step,
    use_xla,
)

BAR_SECONDS = 5.0  # the progress bar's loss/acc are read from the device at most this often


def setup(cfg: Config) -> None:
    """Seeds, op determinism and the dtype policy; call before building anything."""
    keras.utils.set_random_seed(cfg.run.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_dtype_policy(cfg.train.precision)


@dataclass(frozen=True)
class Loop:
    """Where training stands; each step makes a new one (a checkpoint records it)."""

    step: int
    epoch: int  # completed epochs
    in_epoch: int  # batches of the current epoch done
    schedule: schedule.ScheduleState  # Algorithm 1's state
    valid: dict = field(default_factory=dict)  # last validation: valid_acc, valid_loss, valid_step
    stalled: dict | None = None  # what the stall check found (see _stalled)


@dataclass(frozen=True)
class Session:
    """What stays fixed while one run trains (built once by :func:`start`)."""

    cfg: Config
    paths: RunPaths
    chief: RunPaths  # the run folder; ``paths`` differs on a multi-worker run's other workers
    info: DatasetInfo
    spec: InputContract
    strategy: tf.distribute.Strategy
    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    train_step: Callable
    sums: StepSums  # the step's running sums, on the device (read at checks and epoch ends)
    device: str | None  # where a single-device run's batches are prefetched to (None: CPU)
    evaluate: Callable
    valid_ds: tf.data.Dataset  # decoded once, then kept (anet.data.cache)
    log: MetricsLog
    record: dict  # the CheckpointState fields that never change: config, model, classes, shape
    steps_per_epoch: int
    budget: int  # steps the run may take (for the stall check)
    stall_step: int  # the Algorithm 1 check at which the stall check runs
    writer: checkpoints.Writer  # finishes check and periodic saves off the training thread


def start_contract(cfg: Config, info, paths: RunPaths, resuming: bool):
    """The run's input contract: the stored one when resuming (the model keeps seeing what it
    was trained on), else derived from the config and dataset and written with the run."""
    stored = contract.load(paths.input) if resuming else None
    if stored is not None:
        contract.check_dataset(stored, info)
        return stored
    spec = contract.from_dataset(cfg.data, info)
    contract.save(spec, paths.input)
    return spec


def train(cfg: Config, run_dir: str | Path | None = None) -> checkpoints.CheckpointState:
    """Train (or resume) one experiment in ``run_dir``; returns the final checkpoint state.

    The run directory is locked for the whole run: a second ``anet train`` on it is refused.
    """
    paths = chief = RunPaths(run_dir or default_run_dir(cfg))
    resolver = None
    if cfg.train.distribute == "multi_worker":
        resolver, found = cluster.resolve(cfg.train.cluster, cfg.train.cluster_port)
        progress.note(found.line())
        if not found.is_chief:  # only the chief writes the run itself
            paths = chief.worker(found.rank)
    if paths.seed_runs() and not paths.checkpoints.is_dir():  # one run inside an experiment
        raise AnetError(f"{paths.dir} holds seed runs of `anet train --seeds`; add --seeds to "
                        f"continue them, or give another --run-dir")
    for folder in (paths.dir, paths.checkpoints, paths.tensorboard):  # before any work, not at
        if folder == paths.dir or folder.is_dir():                      # the first checkpoint
            check_writable(folder, "fix its permissions or use another --run-dir")
    with lock.hold(paths.lock, paths.dir), pipeline.read_errors(cfg.data.dir), \
            cache.cache_folder(paths.cache):
        started = start(cfg, paths, resolver, chief)
        if isinstance(started, checkpoints.CheckpointState):
            return started  # finished before: nothing to do
        s, loop = started
        stop_reason = ""
        stop = _StopRequest()
        previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop_reason:
                if stop.requested:
                    stop_reason = "interrupted"
                elif loop.epoch >= cfg.train.epochs:
                    stop_reason = "epochs"
                else:
                    loop, stop_reason = train_epoch(s, loop, stop)
                    if not stop_reason:
                        loop, stop_reason = end_of_epoch(s, loop)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
            if cfg.train.distribute != "multi_worker":
                raise
            raise _worker_lost(s, loop.step, e) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            s.log.close()  # also when a NaN loss or another error ends the run
            s.writer.close()  # waits for the last save in flight; re-raises its error
        finished = stop_reason != "interrupted"
        valid = loop.valid
        if valid.get("valid_step") != loop.step:  # an interrupt saves at once, without validating
            valid = _valid(s, loop.step) if finished else {}
        path = save(s, loop, ["final" if finished else "interrupt"], stop_reason=stop_reason,
                    finished=finished, **valid)
        plot_curves(paths.dir)
        final = checkpoints.read_state(path)
    shown = f"valid acc {valid['valid_acc']:.4f}" if valid else "not validated"
    print(f"{paths.dir}: stopped at step {loop.step} ({stop_reason}); {shown}; checkpoint {path.name}")
    if stop_reason == "interrupted":
        raise KeyboardInterrupt
    return final


def train_seeds(cfg: Config, run_dir: str | Path | None, seeds) -> list:
    """``anet train --seeds``: one run per seed in ``RUN/seed-N`` (``run.seed`` = N), in turn.

    Each is an ordinary run (resumable, locked); rerunning the command resumes or skips them.
    Returns their final checkpoint states.
    """
    paths = RunPaths(run_dir or default_run_dir(cfg))
    if paths.checkpoints.is_dir():
        raise AnetError(f"{paths.dir} is a single-seed run; give --seeds another --run-dir")
    if cfg.train.distribute == "multi_worker" and len(seeds) > 1:  # one cluster per process
        raise AnetError("--seeds with train.distribute=multi_worker: start the workers once per "
                        "seed (--set run.seed=N --run-dir RUN/seed-N)")
    finals = []
    for seed in seeds:
        print(f"seed {seed} -> {paths.seed(seed).dir}")
        keras.backend.clear_session()  # a fresh graph per seed, as in a new process
        seeded = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, seed=seed))
        finals.append(train(seeded, paths.seed(seed).dir))
    return finals


def start(cfg: Config, paths: RunPaths, resolver=None, chief: RunPaths | None = None
          ) -> tuple[Session, Loop] | checkpoints.CheckpointState:
    """Start or resume a run: its session and where the loop continues, or the final
    checkpoint of a run that needs no more training.

    A multi-worker run's workers all resume from the chief's newest checkpoint (``chief``,
    the run folder; ``paths`` is this worker's own): they must agree on the step.
    """
    chief = chief or paths
    info = load_dataset(cfg.data.dir)
    if cfg.data.augment and cfg.data.flip and info.name in pipeline.DIGIT_DATASETS:
        raise AnetError(f"data.flip: true mirrors {info.name} digits into non-digits; set "
                        "data.flip: false (rotate_degrees/scale/translate still apply)")
    if cfg.model.polarity and not info.has_polarity:
        raise AnetError(f"model.polarity: true, but dataset {info.name} ({cfg.data.dir}) records no "
                        "polarity; set model.polarity: false or prepare data whose manifest has a "
                        "polarity column")
    setup(cfg)
    strategy = make_strategy(cfg.train.distribute, resolver)
    checkpoints.clean_partial(paths.checkpoints)
    resume = restore.newest_good(chief.checkpoints)  # a damaged newer one is skipped, with a notice
    if chief != paths:  # a worker's own checkpoints after that one belong to a lost future
        for name in retention.drop_after(paths.checkpoints, resume.step if resume else 0):
            print(f"notice: {paths.dir}: removed {name}, newer than the chief's "
                  f"{resume.name if resume else 'start'}", file=sys.stderr)
    if resume:
        stored, added = resume_policy.normalise(resume.config)  # keys added since the run began
        if added:
            progress.note(resume_policy.notice(paths.dir, added))
        cfg, kept = resume_policy.keep_start(cfg, stored)
        cfg, old_bn = resume_policy.bn_as_built(cfg, resume.config, paths.dir)
        if old_bn:
            progress.note(old_bn)
        for key, asked, value in kept:
            progress.note(f"note: {key}={asked!r} only sets a run's starting weights; resuming "
                          f"{paths.dir} keeps {value!r}, the value it started with")
        resume_policy.check_resumable(cfg, dataclasses.replace(resume, config=stored), paths.dir)
        done = resume_policy.finished_reason(resume, cfg)
        if done:
            print(f"{paths.dir}: already finished at step {resume.step} ({done}); nothing to do")
            return resume
    write_config(dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, dir=str(paths.dir))),
                 paths.config)  # records where the run lives, --run-dir included
    record_command(paths.dir)
    spec = start_contract(cfg, info, paths, resuming=resume is not None)

    sc = cfg.schedule
    batch = cfg.train.batch_size
    n_train = info.split_size("train")
    steps_per_epoch = n_train // batch
    budget = stall.budget(cfg.train.epochs, steps_per_epoch, cfg.train.max_steps)
    if steps_per_epoch == 0:
        raise AnetError(
            f"train.batch_size={batch} is larger than the train split ({n_train} examples); lower it"
        )
    if info.split_size("valid") == 0:  # else found only after the first epoch
        raise AnetError(pipeline.empty_split("valid"))
    device = pipeline.step_device()  # the GPU a single-device run's batches go to, or None
    jit = use_xla(cfg.train.jit_compile, cfg.train.deterministic, device is not None)
    progress.note(progress.start_line(progress.device_names(), cfg.train.precision,
                                      jit, cfg.train.distribute,
                                      strategy.num_replicas_in_sync))
    with strategy.scope():
        model = models.build_from_config(
            cfg.model, cfg.data.image_size, spec.channels, info.num_classes)
        loop = Loop(0, 0, 0, schedule.initial_state(sc.levels, sc.lrs, sc.gates))
        optimizer = make_optimizer(cfg.train, loop.schedule.lr)
        optimizer.build(model.trainable_variables)
    if resume:
        saved = restore.load(resume.path, model=model, optimizer=optimizer)
        if not checkpoints.has_optimizer(resume.path):  # only when a newer one was damaged
            print(f"notice: {resume.name} holds weights only (the optimizer state is kept in the "
                  "newest checkpoint alone); training goes on with a fresh optimizer state, so "
                  "this resume does not match an uninterrupted run bit for bit", file=sys.stderr)
        loop = Loop(saved.step, saved.epoch, saved.batch_in_epoch, saved.schedule,
                    stalled=resume.stalled)  # every later checkpoint still says so
        source = resume.name if chief == paths else resume.path  # a worker: the chief's
        print(f"resuming {paths.dir} from {source}: step {loop.step}, epoch {loop.epoch}, "
              f"best {loop.schedule.best:.4f}, lr {loop.schedule.lr:g}")
    optimizer.learning_rate = loop.schedule.lr
    sums = StepSums(batch, sc.early_break.train_expectation)
    session = Session(
        cfg=cfg, paths=paths, chief=chief, info=info, spec=spec, strategy=strategy, model=model,
        optimizer=optimizer,
        train_step=make_train_step(model, optimizer, strategy, batch, jit,
                                   distributed=cfg.train.distribute != "none",
                                   label_smoothing=cfg.train.label_smoothing,
                                   polarity_weight=cfg.model.polarity_weight, sums=sums),
        sums=sums, device=device,
        evaluate=make_eval_fn(model),
        valid_ds=pipeline.decoded_once(  # decoded at the first validation, then kept
            cfg.data.dir, "valid", spec, examples=info.split_size("valid"), batch_size=batch,
            max_batches=cfg.train.eval_batches, folder=paths.cache, polarity=cfg.model.polarity),
        log=MetricsLog(paths.dir, resume_step=loop.step),
        record=dict(config=to_dict(cfg), model=cfg.model.name, num_classes=info.num_classes,
                    input_shape=(cfg.data.image_size, cfg.data.image_size, spec.channels)),
        steps_per_epoch=steps_per_epoch, budget=budget,
        stall_step=stall.check_step(budget, cfg.train.stall_share, cfg.train.eval_every_steps),
        writer=checkpoints.Writer())
    if not resume:  # the hparams session of the run (its metrics come with `anet evaluate`)
        tboard.write_hparams(paths.tensorboard, session.record["config"], str(paths.dir))
    return session, loop


def train_epoch(s: Session, loop: Loop, stop: _StopRequest) -> tuple[Loop, str]:
    """The rest of the current epoch, step by step; returns the loop state and why it stopped
    early ('' when the epoch ran to its end)."""
    cfg = s.cfg
    batch = cfg.train.batch_size
    ds = pipeline.train_dataset(
        cfg.data.dir, s.spec, batch_size=batch, epoch=loop.epoch, seed=cfg.run.seed,
        skip_batches=loop.in_epoch, augmentation=pipeline.Augmentation.from_config(cfg.data),
        shuffle_buffer=cfg.data.shuffle_buffer, polarity=cfg.model.polarity)
    if cfg.train.distribute != "none":  # each replica's share, fetched to its device ahead
        ds = s.strategy.experimental_distribute_dataset(ds)
    else:
        ds = pipeline.to_device(ds, s.device)
    # A context manager, so an error or Ctrl-C clears the bar before its message prints.
    with progress.bar(s.steps_per_epoch, f"epoch {loop.epoch + 1}", "batch",
                      initial=loop.in_epoch, leave=False) as bar:
        window = _new_window(s, loop)
        shown = time.perf_counter()
        for xy in ds:
            if cfg.schedule.type != "algorithm1" or cfg.schedule.warmup_steps:
                s.optimizer.learning_rate = current_lr(s, loop)  # a function of the step
            s.train_step(xy)  # adds to s.sums on the device; nothing is read here
            loop = dataclasses.replace(loop, step=loop.step + 1, in_epoch=loop.in_epoch + 1)
            bar.update(1)
            if time.perf_counter() - shown >= BAR_SECONDS:  # one read: the bar stays current
                _show(bar, s, loop, window)
                shown = time.perf_counter()
            if schedule.is_check_step(loop.step, cfg.train.eval_every_steps):
                loop, sums = _read(s, loop, window)
                loop, stop_reason = check(s, loop, window, sums, bar)
                window = _new_window(s, loop)
                if stop_reason:
                    return loop, stop_reason
            if cfg.train.max_steps and loop.step >= cfg.train.max_steps:
                return _read(s, loop, window)[0], "max_steps"
            if stop.requested:  # checked between steps: weights and step agree
                return _read(s, loop, window)[0], "interrupted"
    return _read(s, loop, window)[0], ""


def _show(bar, s: Session, loop: Loop, window: dict) -> None:
    """The progress bar's loss/acc/images-per-second over the steps since the last check, read
    from the device sums (a read only: the check's sums and metrics are unchanged)."""
    row = _window_row(window, s.sums.read(), s.cfg.train.batch_size, loop.step, loop.epoch, 0.0)
    _postfix(bar, row, current_lr(s, loop, -1))


def _postfix(bar, row: dict, lr: float) -> None:
    bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_acc']:.3f}",
                    lr=f"{lr:g}", ips=f"{row['images_per_sec']:.0f}")


def _read(s: Session, loop: Loop, window: dict) -> tuple[Loop, Sums]:
    """Read the device's sums of the steps since ``window`` began: stop on a non-finite loss
    (naming the step that had it, as a per-step check would) and carry the streak over."""
    sums = s.sums.read()
    if sums.bad_step:
        raise _diverged(s, window["step"] + sums.bad_step, f"training loss is {sums.bad_loss}")
    return dataclasses.replace(loop, schedule=dataclasses.replace(
        loop.schedule, streak=sums.streak)), sums


def check(s: Session, loop: Loop, window: dict, sums: Sums, bar) -> tuple[Loop, str]:
    """Algorithm 1 at a check step (adjust the learning rate, save when the gain passes the
    gate), its metrics row, and the one stall check; returns the loop state and 'stalled'
    when the run must stop ('' otherwise)."""
    cfg, sc = s.cfg, s.cfg.schedule
    batch_acc = sums.last_correct / cfg.train.batch_size  # the latest step's batch
    row = _window_row(window, sums, cfg.train.batch_size, loop.step, loop.epoch,
                      current_lr(s, loop, -1))
    if sc.monitor == "valid":
        loop = dataclasses.replace(loop, valid=_valid(s, loop.step))
        row.update(loop.valid)
    acc = row["valid_acc"] if sc.monitor == "valid" else batch_acc
    state, need_save = schedule.check_and_adjust(acc, loop.schedule, sc.levels, sc.lrs, sc.gates)
    loop = dataclasses.replace(loop, schedule=state)
    s.optimizer.learning_rate = state.lr
    row.update(kind="check", batch_acc=batch_acc, monitored=acc, best=state.best,
               next_lr=current_lr(s, loop), saved=need_save)
    if need_save:
        fresh = loop.valid if loop.valid.get("valid_step") == loop.step else {}
        save(s, loop, ["check"], monitored=acc, train_acc=batch_acc, **fresh)
    s.log.log(row)
    _postfix(bar, row, state.lr)
    num_classes = s.info.num_classes
    if loop.step == s.stall_step and stall.at_chance(row["train_acc"], num_classes,
                                                     row["train_loss"]):
        loop = dataclasses.replace(loop, stalled=_stalled(row, num_classes, cfg.train.on_stall))
        s.log.log(dict(kind="stall", epoch=loop.epoch, **loop.stalled))
        bar.clear()
        print(stall.train_warning(loop.step, s.budget, row["train_acc"], row["train_loss"],
                                  num_classes, cfg.train.on_stall == "stop"), file=sys.stderr)
        if cfg.train.on_stall == "stop":
            return loop, "stalled"
    return loop, ""


def current_lr(s: Session, loop: Loop, offset: int = 0) -> float:
    """The learning rate of the update after ``loop.step + offset`` steps: Algorithm 1's (its
    state) or the step function of ``schedule.type``, with the warmup of any type."""
    sc = s.cfg.schedule
    peak = loop.schedule.lr if sc.type == "algorithm1" else sc.lrs[0]
    # Over the run's real length, as Keras' CosineDecay and timm span it: train.epochs x steps
    # per epoch, or train.max_steps when that ends the run sooner (the stall check's budget).
    total = stall.budget(s.cfg.train.epochs, s.steps_per_epoch, s.cfg.train.max_steps)
    return schedule.lr_at(max(loop.step + offset, 0), sc.type, peak, total, sc.warmup_steps)


def end_of_epoch(s: Session, loop: Loop) -> tuple[Loop, str]:
    """Validate, log, then the early break or the periodic checkpoint; returns the loop state
    and 'early_break' when the run is done ('' otherwise)."""
    cfg = s.cfg
    loop = dataclasses.replace(loop, epoch=loop.epoch + 1, in_epoch=0)
    loop = dataclasses.replace(loop, valid=_valid(s, loop.step))
    s.log.log(dict(kind="epoch", step=loop.step, epoch=loop.epoch, lr=current_lr(s, loop, -1),
                   streak=loop.schedule.streak, **loop.valid))
    eb, stop_reason = cfg.schedule.early_break, ""
    if eb.enabled and schedule.should_break(
            loop.valid["valid_acc"], loop.schedule.streak, eb.valid_expectation, eb.consecutive):
        stop_reason = "early_break"
    elif loop.epoch % cfg.train.checkpoint_every_epochs == 0:
        save(s, loop, ["periodic"], **loop.valid)
    pol = loop.valid.get("valid_polarity_acc")
    print(f"epoch {loop.epoch}: step {loop.step}, valid acc {loop.valid['valid_acc']:.4f}, "
          f"loss {loop.valid['valid_loss']:.4f}, lr {loop.schedule.lr:g}"
          + (f", polarity acc {pol:.4f}" if pol is not None else ""))
    return loop, stop_reason


def save(s: Session, loop: Loop, reasons: list[str], **extra) -> Path:
    """Checkpoint the current weights, optimizer and ``loop`` (then prune by run.keep_*).

    Check and periodic saves finish on ``s.writer``'s thread while training goes on; the
    final and interrupt saves are complete when this returns."""
    # The update of this step may have made weights inf/NaN before any loss shows it:
    # never store those as a checkpoint that later looks good.
    if not all(np.isfinite(w).all() for w in s.model.get_weights()):
        raise _diverged(s, loop.step, "weights are not finite")
    state = checkpoints.CheckpointState(
        **s.record, step=loop.step, epoch=loop.epoch, batch_in_epoch=loop.in_epoch,
        schedule=loop.schedule, reasons=tuple(reasons), stalled=loop.stalled, **extra)
    run = s.cfg.run
    last = bool({"final", "interrupt"} & set(reasons))
    s.writer.wait()
    return checkpoints.save(
        s.paths.checkpoints, model=s.model, optimizer=s.optimizer, state=state,
        writer=None if last else s.writer,
        then=lambda: retention.prune(s.paths.checkpoints, run.keep_checkpoints, run.keep_best))


def _diverged(s: Session, step: int, what: str) -> AnetError:
    last = checkpoints.latest(s.paths.checkpoints)
    where = last.name if last else "none"
    return AnetError(f"step {step}: {what}; stopped. Last good checkpoint: {where}. "
                     "Lower schedule.lrs or check the data")


def _worker_lost(s: Session, step: int, error: Exception) -> AnetError:
    s.writer.wait()  # the save in flight, if any, is the one to resume from
    last = checkpoints.latest(s.chief.checkpoints)
    where = last.path if last else "none yet"
    why = re.sub(r"\{\{.*?\}\}\s*", "", error.message).splitlines()[0].rstrip(":")
    return AnetError(f"step {step}: a worker of the cluster is gone ({why}); stopped. Last "
                     f"checkpoint: {where}. Start every worker again with the same command to "
                     "resume from it")


def _stalled(row: dict, num_classes: int, action: str) -> dict:
    """What metrics.jsonl and every later checkpoint record about a stall."""
    return {"step": row["step"], "train_acc": row["train_acc"], "train_loss": row["train_loss"],
            "chance": stall.chance(num_classes), "action": action}


def _new_window(s: Session, loop: Loop) -> dict:
    """Start the sums over the steps until the next Algorithm 1 check (for its metrics row):
    on the device, zeroed; here, the step and time they start at."""
    s.sums.reset(loop.schedule.streak)
    return {"step": loop.step, "t": time.perf_counter()}


def _window_row(window: dict, sums: Sums, batch: int, step: int, epoch: int,
                lr: float) -> dict:
    n = max(sums.steps, 1)
    seconds = max(time.perf_counter() - window["t"], 1e-9)
    return dict(step=step, epoch=epoch, lr=lr, train_loss=sums.loss / n,
                train_acc=sums.correct / (n * batch), images_per_sec=n * batch / seconds)


def _valid(s: Session, step: int) -> dict:
    r = s.evaluate(s.valid_ds)
    acc, loss = r["acc"], r["loss"]
    out = {"valid_acc": acc, "valid_loss": loss, "valid_step": step}
    if r.get("polarity_acc") is not None:
        out["valid_polarity_acc"] = r["polarity_acc"]
    return out


class _StopRequest:
    """Ctrl-C / SIGTERM handler: the first asks the loop to stop after the current step (and
    checkpoint); a second one aborts at once (KeyboardInterrupt, no checkpoint)."""

    requested = False

    def handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step (again to abort without a checkpoint)", file=sys.stderr)
