"""prepare's --out safety: --force replaces only anet datasets, never the source, and an
interrupted swap is repaired (never deleted) by the next prepare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from anet.data import outdir
from tests.cli import run_cli
from tests.conftest import make_idx_dir, make_tif_tree

PYTHON_ANET = [sys.executable, "-m", "anet.cli"]


def mnist_args(src, out, *extra):
    return ["prepare", "--dataset", "mnist", "--source", src, "--out", out, "--workers", "1", *extra]


def test_force_refuses_a_user_folder(tmp_path, capsys):
    src = make_idx_dir(tmp_path / "idx", n_train=30, n_test=10)
    mine = tmp_path / "mydir"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("my only copy")
    code, _, err = run_cli(mnist_args(src, mine, "--force"), capsys)
    assert code == 2
    assert err.startswith(f"error: --out {mine} is a folder anet did not make (it holds notes.txt, sub)")
    assert "pick another --out" in err and "use --force" not in err
    assert (mine / "notes.txt").read_text() == "my only copy"
    code, _, err = run_cli(mnist_args(src, mine), capsys)  # the error without --force: same advice
    assert code == 2 and "pick another --out" in err and "use --force" not in err


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_out_never_overlaps_the_source(tmp_path, capsys, where):
    tifs = make_tif_tree(tmp_path / "lab" / "tifs", per_class=2, bad=False)
    out = {"same": tifs, "inside": tifs / "prepared", "contains": tmp_path / "lab"}[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, _, err = run_cli(["prepare", "--dataset", "karyotype", "--source", tifs, "--out", out,
                            "--workers", "1", "--force"], capsys)
    word = {"same": "is", "inside": "lies inside", "contains": "contains"}[where]
    assert code == 2 and err.startswith(f"error: --out {out} {word} --source {tifs}")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_out_beside_a_manifest_is_fine_but_not_around_it(tmp_path):
    (tmp_path / "kary").mkdir()
    manifest = str(tmp_path / "kary" / "m.csv")
    outdir.check_out(tmp_path / "kary" / "out", manifest, True)
    with pytest.raises(outdir.AnetError, match="contains --source"):
        outdir.check_out(tmp_path / "kary", manifest, True)


def test_force_replaces_an_anet_dataset_and_its_leftovers(tmp_path, capsys):
    src = make_idx_dir(tmp_path / "idx", n_train=30, n_test=10)
    out = tmp_path / "m"
    (out / "jpg").mkdir(parents=True)  # leftovers of an anet build: shards, no dataset.json
    (out / "train-00000-of-00001.tfrecord").write_bytes(b"")
    assert outdir.replaceable(out) and not outdir.is_finished(out)
    code, _, err = run_cli(mnist_args(src, out), capsys)
    assert code == 2 and "holds an unfinished anet dataset; re-run with --force" in err
    assert run_cli(mnist_args(src, out, "--force"), capsys)[0] == 0
    assert outdir.is_finished(out)


KILL_BETWEEN_RENAMES = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    rename = Path.rename
    def dying_rename(self, target):
        if ".partial-" in self.name and Path(target).name == "m":
            os._exit(9)  # like SIGKILL: no cleanup runs
        return rename(self, target)
    Path.rename = dying_rename
    from anet.cli import main
    sys.argv = ["anet"] + sys.argv[1:]
    main()
""")


@pytest.mark.slow
def test_kill_between_the_swap_renames_loses_nothing(tmp_path, capsys):
    src = make_idx_dir(tmp_path / "idx", n_train=30, n_test=10)
    out = tmp_path / "m"
    assert run_cli(mnist_args(src, out), capsys)[0] == 0
    args = [str(a) for a in mnist_args(src, out, "--force", "--seed", "7")[0:]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 9, proc.stderr
    (old,) = tmp_path.glob("m.old-*")
    (partial,) = tmp_path.glob("m.partial-*")
    assert not out.exists() and outdir.is_finished(old) and outdir.is_finished(partial)
    # The next prepare fails on its own input, yet first puts the finished dataset back.
    code, _, err = run_cli(mnist_args(tmp_path / "nowhere", out, "--force"), capsys)
    assert code == 2 and "--source" in err and f"restored {out} from {partial.name}" in err
    assert json.loads((out / "dataset.json").read_text())["seed"] == 7  # the swap, completed
    assert not list(tmp_path.glob("m.old-*")) and not list(tmp_path.glob("m.partial-*"))


def test_recover_restores_old_copy_and_keeps_finished_partial(tmp_path, capsys):
    def dataset(p: Path, seed: int) -> Path:
        p.mkdir()
        (p / "dataset.json").write_text(json.dumps({"shards": {}, "classes": [], "seed": seed}))
        return p

    out = tmp_path / "m"
    dataset(tmp_path / "m.old-11", 1)
    (tmp_path / "m.partial-12").mkdir()  # unfinished: debris
    outdir.recover(out)
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1
    assert not (tmp_path / "m.partial-12").exists() and not (tmp_path / "m.old-11").exists()
    dataset(tmp_path / "m.partial-13", 2)  # finished while out is there: kept, with a notice
    outdir.recover(out)
    assert (tmp_path / "m.partial-13").is_dir()
    assert "keeping" in capsys.readouterr().err


def test_swap_error_between_renames_puts_old_back(tmp_path, monkeypatch):
    out, work = tmp_path / "m", tmp_path / "m.partial-5"
    out.mkdir()
    (out / "dataset.json").write_text("{}")
    work.mkdir()
    rename = Path.rename

    def failing(self, target):
        if self == work:
            raise OSError("disk gone")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError):
        outdir.swap_in(work, out)
    assert (out / "dataset.json").is_file() and not list(tmp_path.glob("m.old-*"))


def test_finished_dataset_is_reused_only_with_the_same_options(tmp_path, capsys):
    src = make_idx_dir(tmp_path / "idx", n_train=30, n_test=10)
    out = tmp_path / "m"
    assert run_cli(mnist_args(src, out), capsys)[0] == 0
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert run_cli(mnist_args(src, out), capsys)[0] == 0  # same options: reused
    for extra, flag, have, want in [(["--seed", "3"], "--seed", 0, 3),
                                    (["--valid-ratio", "0.2"], "--valid-ratio", 0.05, 0.2)]:
        code, _, err = run_cli(mnist_args(src, out, *extra), capsys)
        assert code == 2 and err == (f"error: --out {out} holds a dataset built with {flag} {have}, "
                                     f"not {want}; use --force to rebuild it, or another --out\n")
    code, _, err = run_cli(["prepare", "--dataset", "fashion-mnist", "--source", src, "--out", out],
                           capsys)
    assert code == 2 and "built with --dataset mnist, not fashion-mnist" in err
    code, _, err = run_cli(["prepare", "--dataset", "synthetic-karyotype", "--out", out], capsys)
    assert code == 2 and "built with --dataset mnist, not synthetic-karyotype" in err
    assert (out / "dataset.json").stat().st_mtime_ns == stamp


def test_legacy_dataset_without_options_compares_what_it_recorded(tmp_path):
    from types import SimpleNamespace

    meta = {"name": "karyotype", "seed": 0, "ratios": {"valid": 0.05, "test": 0.05}, "options": {}}
    want = outdir.options("mnist", None, 0.05, 0.05, 0, 200, 0.0)
    with pytest.raises(outdir.AnetError, match="built with --dataset karyotype, not mnist"):
        outdir.check_reuse(SimpleNamespace(**meta), want, Path("o"))
    outdir.check_reuse(SimpleNamespace(**dict(meta, name="mnist")), want, Path("o"))
