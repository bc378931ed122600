"""anet report: Table 2 from hand-written eval.json files, Table 1 from dataset.json, errors."""

import json

import pytest

from anet.data.info import load_dataset
from anet.errors import AnetError
from anet.report import report, table1, table2
from tests.cli import run_cli


def eval_json(run_dir, model, dataset, train, valid, test, **more):
    """A hand-written eval.json (``more``: top5_accuracy, macro_f1; left out as in older files)."""
    run_dir.mkdir(parents=True)
    doc = {"run": str(run_dir), "model": model,
           "dataset": {"name": dataset, "totals": {"total": 10}},
           "accuracy": {"train": train, "valid": valid, "test": test}, **more}
    (run_dir / "eval.json").write_text(json.dumps(doc))
    return run_dir


@pytest.fixture
def runs(tmp_path):
    return [
        eval_json(tmp_path / "anetc6_mnist", "anetc6", "mnist", 0.9991, 0.9921, 0.99,
                  top5_accuracy={"train": 1.0, "valid": 0.99995, "test": 0.9999},
                  macro_f1={"train": 0.999, "valid": 0.99201, "test": 0.98998}),
        eval_json(tmp_path / "alexnet_mnist", "alexnet", "mnist", 1.0, 0.98765, 0.9812),
        eval_json(tmp_path / "anetc6_cifar", "anetc6", "cifar", 0.95, 0.8, None,
                  top5_accuracy=None, macro_f1={"train": 0.9, "valid": 0.75, "test": None}),
    ]


MNIST = ("mnist train | mnist valid | mnist test | mnist top-5 valid | mnist top-5 test | "
         "mnist macro-F1 valid | mnist macro-F1 test")


def test_table2_markdown(runs):
    # top-5 n/a with 5 classes or fewer (top5_accuracy null); '-' where not measured (an
    # eval.json written before top-5 and macro-F1 existed, or a split not evaluated)
    assert report(runs) == (
        f"| Model | {MNIST} | {MNIST.replace('mnist', 'cifar')} |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| anetc6 | 0.9991 | 0.9921 | 0.9900 | 1.0000 | 0.9999 | 0.9920 | 0.9900 "
        "| 0.9500 | 0.8000 | - | n/a | n/a | 0.7500 | - |\n"
        "| alexnet | 1.0000 | 0.9877 | 0.9812 | - | - | - | - | - | - | - | - | - | - | - |"
    )


def test_table2_csv(runs):
    assert report(runs, as_csv=True).splitlines() == [
        "Model," + MNIST.replace(" | ", ",") + "," + MNIST.replace(" | ", ",").replace("mnist", "cifar"),
        "anetc6,0.9991,0.9921,0.9900,1.0000,0.9999,0.9920,0.9900,0.9500,0.8000,-,n/a,n/a,0.7500,-",
        "alexnet,1.0000,0.9877,0.9812,-,-,-,-,-,-,-,-,-,-,-",
    ]


def test_table2_two_runs_of_one_model_on_one_dataset_are_told_apart(tmp_path):
    a = eval_json(tmp_path / "a", "vgg16", "cifar", 0.9, 0.8, 0.7)
    b = eval_json(tmp_path / "b", "vgg16", "cifar", 0.95, 0.85, 0.75)
    rows = table2([json.loads((r / "eval.json").read_text()) for r in (a, b)]).splitlines()
    assert rows[2].startswith("| vgg16 (a) | 0.9000") and rows[3].startswith("| vgg16 (b) | 0.9500")


def dataset(tmp_path, name, totals, size):
    d = tmp_path / name
    d.mkdir()
    (d / "dataset.json").write_text(json.dumps({"name": name, "totals": totals, "size": size,
                                                "classes": ["a"], "num_classes": 1, "channels": 1,
                                                "mean": [0.5], "std": [0.2]}))
    return d


def test_table1(tmp_path):
    mnist = dataset(tmp_path, "mnist", {"total": 70000, "train": 63000, "valid": 3500,
                                         "test": 3500}, {"min": [28, 28], "max": [28, 28]})
    karyo = dataset(tmp_path, "karyotype", {"total": 5474, "train": 4926, "valid": 274,
                                             "test": 274}, {"min": [40, 12], "max": [208, 96]})
    assert report(datasets=[mnist, karyo]) == (
        "| Dataset | Total | Train | Valid | Test | Size |\n"
        "|---|---|---|---|---|---|\n"
        "| mnist | 70000 | 63000 | 3500 | 3500 | 28x28 |\n"
        "| karyotype | 5474 | 4926 | 274 | 274 | 40x12 .. 208x96 |"
    )
    assert table1([load_dataset(mnist)], as_csv=True) == (
        "Dataset,Total,Train,Valid,Test,Size\nmnist,70000,63000,3500,3500,28x28")


def test_cli_report_csv_and_both_tables(runs, tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(["report", *runs, "--csv"], capsys)
    assert code in (0, None) and out.startswith("Model,mnist train")
    d = dataset(tmp_path, "tiny", {"total": 3, "train": 1, "valid": 1, "test": 1},
                {"min": [4, 4], "max": [4, 4]})
    code, out, _ = run_cli(["report", runs[0], "--dataset", d], capsys)
    assert out.startswith("| Dataset |") and "| Model |" in out


def test_run_without_eval_json(tmp_path, monkeypatch, capsys):
    (tmp_path / "r").mkdir()
    code, _, err = run_cli(["report", tmp_path / "r"], capsys)
    assert code == 2
    assert err == f"error: {tmp_path / 'r'}: no eval.json; run `anet evaluate --run-dir " \
                  f"{tmp_path / 'r'}` first\n"
    for flag in ("--run-dir", "--ckpt-dir"):  # the same run folder option as the other commands
        code, _, err2 = run_cli(["report", flag, tmp_path / "r"], capsys)
        assert (code, err2) == (2, err)


@pytest.mark.parametrize("args,message", [
    ((), "nothing to report"),
    (("--dataset", "/nonexistent/data"), "no prepared dataset"),
    (("/nonexistent/run",), "no such run directory"),
])
def test_report_bad_input(args, message, monkeypatch, capsys):
    code, _, err = run_cli(["report", *args], capsys)
    assert code == 2 and message in err and err.startswith("error: ")


def test_corrupt_eval_json(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "eval.json").write_text("{")
    with pytest.raises(AnetError, match="not valid JSON"):
        report([tmp_path / "r"])


@pytest.mark.parametrize("doc", ["[]", "{}", '{"run": "r", "model": "m", "dataset": {}, "accuracy": {}}',
                                 '{"run": "r", "model": "m", "dataset": {"name": "d"}, "accuracy": 1}'])
def test_foreign_eval_json(tmp_path, monkeypatch, capsys, doc):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "eval.json").write_text(doc)
    code, _, err = run_cli(["report", tmp_path / "r"], capsys)
    assert code == 2 and err.startswith("error: ") and "not an anet eval.json" in err


def test_save_figure_is_atomic_and_closes(tmp_path):
    from anet.plotting import pyplot, save_figure

    plt = pyplot()
    fig, _ = plt.subplots()
    out = save_figure(fig, tmp_path / "f.png")
    assert out == tmp_path / "f.png" and out.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]  # no temp file left
    assert not plt.fignum_exists(fig.number)


def test_a_seeds_folder_is_one_row_of_mean_std_and_n(tmp_path, monkeypatch, capsys):
    exp = tmp_path / "fm_anetc6"
    for seed, (valid, test) in enumerate([(0.86, 0.85), (0.88, 0.87), (0.87, 0.89)]):
        eval_json(exp / f"seed-{seed}", "anetc6", "fashion", 0.9, valid, test,
                  top5_accuracy={"valid": 0.99, "test": 0.98 + seed / 100},
                  macro_f1={"valid": valid - 0.01, "test": test - 0.01})
    single = eval_json(tmp_path / "fm_alexnet", "alexnet", "fashion", 0.95, 0.9, None)
    # valid: mean 0.87, sample std 0.01; test: mean 0.87, std 0.02
    assert report([exp, single]).splitlines()[2:] == [
        "| anetc6 | 0.9000 ± 0.0000 (n=3) | 0.8700 ± 0.0100 (n=3) | 0.8700 ± 0.0200 (n=3) "
        "| 0.9900 ± 0.0000 (n=3) | 0.9900 ± 0.0100 (n=3) | 0.8600 ± 0.0100 (n=3) "
        "| 0.8600 ± 0.0200 (n=3) |",
        "| alexnet | 0.9500 | 0.9000 | - | - | - | - | - |",
    ]
    rows = report([exp], per_seed=True).splitlines()[2:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| anetc6 (fm_anetc6/seed-0)", "| anetc6 (fm_anetc6/seed-1)", "| anetc6 (fm_anetc6/seed-2)"]
    code, out, _ = run_cli(["report", exp, "--per-seed", "--csv"], capsys)
    assert code == 0 and out.splitlines()[1] == \
        "anetc6 (fm_anetc6/seed-0),0.9000,0.8600,0.8500,0.9900,0.9800,0.8500,0.8400"
    code, _, err = run_cli(["report", exp, "--per-seed", "--html", tmp_path / "r.html"], capsys)
    assert code == 2 and "--per-seed is for the text table" in err
