"""The labelled suite's quick subset, end to end: 2 short configs per family, trained, labelled by
intervention and measurement, scored next to the baselines (``benchmarks/diagnosis_suite.py --quick``)."""

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # 14 runs, each labelled by intervention: about 45 s

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import diagnosis_suite

        yield diagnosis_suite
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_quick_suite_trains_labels_and_scores_every_family(suite, tmp_path):
    from gradscope.diagnosis import DiagnosisSettings

    assert suite.main(["--quick", "--out", str(tmp_path)]) == 0
    results = suite.load_results(tmp_path / "results.jsonl")
    families = {r["config"]["family"] for r in results}
    assert families == set(suite.F.FAMILIES) and len(results) == 2 * len(families)
    for r in results:  # every run left a complete run directory that diagnose reads back
        assert (Path(r["run_dir"]) / "run.json").is_file()
    table = (tmp_path / "table.md").read_text()
    for family in suite.F.FAMILIES:
        assert f"| {family}" in table
    said = suite.verdicts(results, DiagnosisSettings())["gradscope"]
    cells = [(bool(v[k]), r["labels"][k]) for r, v in zip(results, said) for k in suite.KINDS]
    agree = sum(a == b for a, b in cells) / len(cells)
    assert agree >= 0.95, f"gradscope agrees with the labels on {agree:.0%} of run x kind cells"
    # the short runs include an explosion to NaN in every family but the RNNs: found, and traced
    for r, v in zip(results, said):
        if r["labels"]["non_finite"]:
            assert v["non_finite"] and v["exploding_gradient"], r["config"]["name"]
