"""Reading saved runs that are broken, cut short or share names; bad arguments; extreme settings."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from gradscope.cli import main
from gradscope.diagnosis import findings_of
from gradscope.storage import find_runs, load_run

TINY = ["--hidden", "16,8", "--epochs", "2", "--batch-size", "50", "-q", "--no-reference"]


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory):
    """Two analyze outputs with a run of the same name in each (trained once for the module)."""
    import numpy as np

    from conftest import make_digits

    base = tmp_path_factory.mktemp("outputs")
    x_tr, y_tr = make_digits(200, seed=1)
    x_te, y_te = make_digits(100, seed=2)
    np.savez(base / "tiny.npz", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    for name, acts in (("a", ["sigmoid", "relu"]), ("b", ["sigmoid"])):
        args = ["analyze", *sum((["--act", a] for a in acts), []), "--data", str(base / "tiny.npz"),
                "--out", str(base / name), *TINY]
        r = CliRunner().invoke(main, args, catch_exceptions=False)
        assert r.exit_code == 0, r.output
    return base


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_runs_with_one_name_in_two_folders_are_kept_apart(two_outputs):
    runs = find_runs([two_outputs / "a", two_outputs / "b"])
    assert sorted(r.name for r in runs) == ["a/sigmoid-normal", "b/sigmoid-normal", "relu-normal"]
    r = CliRunner().invoke(main, ["diagnose", str(two_outputs / "a"), str(two_outputs / "b"), "--json"])
    assert r.exit_code == 0 and sorted(json.loads(r.output)) == ["a/sigmoid-normal", "b/sigmoid-normal", "relu-normal"]


def _as_csv(d):
    """Turn a run directory into what earlier versions wrote: one records.csv instead of Parquet parts."""
    import shutil

    from gradscope.storage import records_csv

    records = load_run(d).records
    shutil.rmtree(d / "records")
    records_csv.start(d / "records.csv")
    records_csv.append(d / "records.csv", records)
    return d


def _parts(d):
    return sorted((d / "records").glob("part-*.parquet"))


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "run.json").write_text("{not json"), "cannot read {d}/run.json"),
    (lambda d: (d / "run.json").write_text('{"run": "x"}'), "{d}/run.json is not a gradscope run.json"),
    (lambda d: __import__("shutil").rmtree(d / "records"), "{d}/records is missing, but run.json says"),
    (lambda d: _parts(d)[-1].unlink(), "{d}/records holds "),
    (lambda d: _parts(d)[0].write_bytes(b"PAR1 not really"), "cannot read {d}/records/part-000000.parquet"),
    # runs written by earlier versions, as one CSV file
    (lambda d: (_as_csv(d) / "records.csv").write_text("\n".join((d / "records.csv").read_text().splitlines()[:40]) + "\n"),
     "{d}/records.csv holds 39 records but run.json says"),
    (lambda d: (_as_csv(d) / "records.csv").write_text(
        (d / "records.csv").read_text().replace(",weight_norm_initial,", ",weight_norm_initial,x", 2)),
     "{d}/records.csv, line 2: column 'value' holds 'x"),  # the first record, after the header
    (lambda d: (_as_csv(d) / "records.csv").write_text((d / "records.csv").read_text().replace("sigmoid-normal,0,0,", "sigmoid-normal,zero,0,", 1)),
     "{d}/records.csv, line 2: column 'step' holds 'zero', not a whole number"),
])
def test_a_broken_run_is_skipped_with_one_line_and_the_others_are_rendered(two_outputs, tmp_path, damage, message):
    out = _copy(two_outputs / "a", tmp_path / "a")
    broken = out / "runs" / "sigmoid-normal"
    damage(broken)
    r = CliRunner().invoke(main, ["report", str(out), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 3, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith(f"skipped {broken}: " + message.format(d=broken)), lines
    assert lines[-2:] == [f"report: {tmp_path / 'r.html'} (1 run(s))", "1 run(s) skipped"]
    assert "Traceback" not in r.output
    html = (tmp_path / "r.html").read_text()
    assert html.count('class="run-row"') == 1 and "relu-normal" in html
    r = CliRunner().invoke(main, ["diagnose", str(out)])
    assert r.exit_code == 3 and "relu-normal:" in r.output and r.output.startswith(f"skipped {broken}")


def test_a_last_line_cut_short_is_left_out_and_noted(two_outputs, tmp_path):
    out = _copy(two_outputs / "a", tmp_path / "a")
    records = _as_csv(out / "runs" / "relu-normal") / "records.csv"  # as earlier versions appended it
    text = records.read_text()
    records.write_text(text + text.splitlines()[1][:12])  # a kill in the middle of an append
    run = load_run(records.parent)
    assert len(run.records) == len(text.splitlines()) - 1
    assert run.notes == [f"{records}, line {len(text.splitlines()) + 1}: cut short (the run was stopped while "
                         "writing it); left out"]
    r = CliRunner().invoke(main, ["report", str(out)])
    assert r.exit_code == 0 and f"note: {records}, line" in r.output


def test_a_run_of_an_earlier_version_reads_as_it_was_written(two_outputs, tmp_path):
    import pandas as pd

    out = _copy(two_outputs / "a", tmp_path / "a")
    d = out / "runs" / "relu-normal"
    parquet = load_run(d).records
    old = load_run(_as_csv(d)).records
    names = ["run", "layer", "variable", "metric"]  # (kept categorical in memory from Parquet, with pandas 3)
    pd.testing.assert_frame_equal(old.astype({c: str for c in names}), parquet.astype({c: str for c in names}),
                                  check_exact=False, rtol=1e-7)  # Parquet keeps float32 values
    assert findings_of(load_run(d)) == findings_of(load_run(out / "runs" / "relu-normal"))


def test_a_part_left_half_written_by_a_kill_is_not_read(two_outputs, tmp_path):
    out = _copy(two_outputs / "a", tmp_path / "a")
    d = out / "runs" / "relu-normal"
    whole = load_run(d).records
    last = _parts(d)[-1]
    (d / "records" / f".{last.name}.1234.tmp").write_bytes(last.read_bytes()[:100])  # killed while writing
    assert len(load_run(d).records) == len(whole)


def test_nothing_readable_is_an_error(tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "run.json").write_text("[]")
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 1 and "no readable run in" in r.output


BAD_ARGS = [
    (["--seed", "-1"], "--seed must be a whole number from 0 to 2**32 - 1; got -1"),
    (["--out", "/proc/gradscope-out"], "--out /proc/gradscope-out cannot be written"),
    (["--out", "/dev/null"], "--out /dev/null is not a folder"),
    (["--out", "{file}/out"], "is a file, not a folder"),
    (["--hidden", "512,,128"], "--hidden must be comma-separated positive integers like 512,256,128 (or none, for no "
                               "hidden layer); got '512,,128'"),
    (["--data", "{small}"], "has 3 image(s); gradscope needs at least 31 to split them 70/30"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--act", "sigmod"], "unknown activation 'sigmod'; did you mean 'sigmoid'?"),
    (["--act", "softmax"], "activation 'softmax' is not usable for hidden layers"),
    (["--init", "hee"], "unknown initializer 'hee'; did you mean 'he'?"),
    (["--init", "orthogonal", "--framework", "tf1"], "initializer 'orthogonal' is not available with --framework tf1"),
]


def test_bad_arguments_are_one_line_each_before_tensorflow_is_imported(tmp_path):
    import numpy as np
    import pandas as pd

    (tmp_path / "file").write_text("not a folder")
    small = pd.DataFrame(np.zeros((3, 784), dtype=int), columns=[f"pixel{i}" for i in range(784)])
    small.insert(0, "label", [0, 1, 2])
    small.to_csv(tmp_path / "small.csv", index=False)
    cases = [([a.format(file=tmp_path / "file", small=tmp_path / "small.csv") for a in args], message)
             for args, message in BAD_ARGS]
    code = (
        "import json, sys\nfrom click.testing import CliRunner\nfrom gradscope.cli import main\nout = []\n"
        f"for args in {[c[0] for c in cases]!r}:\n"
        f"    r = CliRunner().invoke(main, ['analyze', '--out', {str(tmp_path / 'o')!r}, *args] if '--out' not in args"
        " else ['analyze', *args])\n"
        "    out.append([r.exit_code, r.output])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(json.dumps({'results': out, 'loaded': loaded[:5]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["loaded"] == []  # every one of them was refused before TensorFlow was imported
    for (args, message), (exit_code, output) in zip(cases, got["results"]):
        assert exit_code == 1, (args, output)
        assert output.count("\n") == 1 and output.startswith("Error: ") and message in output, (args, output)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, expect", [
    (["--act", "relu", "--init", "zeros"], ("dead_units", "start at 0", "Initialise the weights randomly")),
    (["--act", "relu", "--init", "he", "--lr", "1e30"], ("non_finite", "learning rate 1e+30", "Lower the learning rate")),
    (["--act", "sigmoid", "--init", "normal", "--lr", "1e30"], ("stalled", "learning rate 1e+30", "Lower the learning rate")),
])
def test_extreme_settings_train_diagnose_and_render(tmp_path, tiny_npz, args, expect):
    expect, why, fix = expect
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["analyze", *args, "--data", str(tiny_npz), "--out", str(out), *TINY],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (run,) = find_runs([out])
    found = {f["kind"]: f for f in findings_of(run)}
    assert run.status == "complete" and expect in found
    assert why in found[expect]["why"] and found[expect]["recommendation"].startswith(fix)  # the cause, not a guess
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6 and expect.replace("_", " ") in html


def test_an_out_on_a_read_only_file_system_is_one_line(tmp_path):
    """A read-only place for real: a read-only tmpfs (a chmod 555 folder would not do: root writes it)."""
    place = tmp_path / "ro"
    place.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(place)], capture_output=True).returncode:
        pytest.skip("mounting a read-only tmpfs is not permitted here")
    try:
        r = CliRunner().invoke(main, ["analyze", "--out", str(place / "out")])
        assert r.exit_code == 1 and r.output.count("\n") == 1
        assert "cannot be written" in r.output and "Read-only file system" in r.output
    finally:
        subprocess.run(["umount", str(place)], capture_output=True)
