"""Faults and misuse without torch: no lost data, no crash, clear errors (issue 11)."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from wcdfa import WeightChangeDFA, compute_dfa, dfa
from wcdfa.errors import (
    DivergenceWarning,
    MisuseWarning,
    NearConstantWarning,
    NotANormWarning,
)
from wcdfa.uncertainty import confidence_interval

ROOT = Path(__file__).resolve().parents[1]


def _feed(monitor, values):
    for v in values:
        monitor.update(v)
    return monitor


def _white(n, seed=0):
    return np.abs(np.random.default_rng(seed).standard_normal(n)) + 0.5


# ------------------------------------------------------------------ data loss
FAILING_SAVE = """
import resource, signal, sys
import numpy as np
from wcdfa import WeightChangeDFA
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: writes fail with EFBIG
m = WeightChangeDFA(window=50, keep_norms=True)
for v in np.abs(np.random.default_rng(0).standard_normal(5000)) + 0.5:
    m.update(float(v))
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    m.save(sys.argv[1])
except OSError as exc:
    print("OSError:", exc)
"""


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_failed_save_leaves_the_previous_export_whole_and_says_why(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    _feed(WeightChangeDFA(window=50), _white(120)).save(path)
    before = path.read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", FAILING_SAVE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "OSError: " in out
    assert str(path) in out
    assert "previous file is unchanged" in out
    assert path.read_bytes() == before  # not truncated, not half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_save_creates_missing_folders_and_keeps_permissions(tmp_path):
    path = tmp_path / "a" / "b" / "run.csv"
    m = _feed(WeightChangeDFA(window=50), _white(60))
    assert m.save(path) == path
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    m.save(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_save_labels_steps_across_a_dropped_nonfinite_norm(tmp_path):
    # norm = i at step i; the NaN at step 50 leaves the window but must not shift labels
    m = WeightChangeDFA(window=50, stride=10, on_nonfinite="ignore")
    for i in range(1, 81):
        m.update(math.nan if i == 50 else float(i))
    m.save(tmp_path / "r.csv")
    with (tmp_path / "r.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["delta_norm"]]
    finite = [r for r in rows if r["delta_norm"] != "nan"]
    assert len(finite) == 50
    assert all(float(r["delta_norm"]) == int(r["step"]) for r in finite)
    assert [r["step"] for r in rows if r["delta_norm"] == "nan"] == ["50"]
    np.testing.assert_array_equal(m.get_signal_steps(), m.get_signal())


def test_every_alpha_row_carries_its_own_interval(tmp_path):
    m = _feed(WeightChangeDFA(window=100, stride=20), _white(300))
    m.save(tmp_path / "r.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    alpha_rows = [r for r in rows if r["alpha"] is not None]
    assert len(alpha_rows) == len(m.history) == 11
    for row in alpha_rows:
        low, high = confidence_interval(row["alpha"], 100, 0.95)
        assert (row["alpha_ci_low"], row["alpha_ci_high"]) == (low, high)
        assert low < row["alpha"] < high
    assert (alpha_rows[-1]["alpha_ci_low"], alpha_rows[-1]["alpha_ci_high"]) == m.alpha_ci


# ------------------------------------------------------- crashes of the loop
def test_order_3_interval_metrics_and_text_work():
    m = _feed(WeightChangeDFA(window=200, order=3), _white(200, seed=3))
    expected = dfa(m.get_signal(), order=3)
    assert m.alpha == expected.alpha
    assert m.alpha_ci == (expected.ci_low, expected.ci_high)
    assert m.metrics()["wcdfa/alpha_ci_low"] == expected.ci_low
    assert f"{m.alpha:.3f}" in str(m)
    assert f"{m.alpha:.3f}" in repr(m)


def test_one_near_constant_rule_for_the_monitor_and_the_core():
    # 1e-14-scaled white noise has an α from dfa(); the monitor once called it constant
    signal = 1e-14 * _white(100, seed=4)
    m = _feed(WeightChangeDFA(window=100), signal)
    assert m.alpha == dfa(signal).alpha
    constant = np.full(100, 0.1) * np.arange(1, 101) / np.arange(1, 101)  # 0.1 ± 1 ulp
    with pytest.raises(ValueError, match="constant"):
        dfa(constant)
    with pytest.warns(NearConstantWarning, match="near-constant"):
        m = _feed(WeightChangeDFA(window=100), constant)
    assert m.alpha is None
    assert str(m) == "wcdfa: not ready (constant window (100 samples))"


# ----------------------------------------------------------- corrupted input
@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s.update(settings=list(s["settings"].items())), "'settings' must be a dict"),
        (lambda s: s.update(settings=None), "'settings' must be a dict"),
        (lambda s: s.update(group_alphas=[1.0]), "'group_alphas' must be a dict"),
        (lambda s: s["result"].update(scales="x"), "'result' must be"),
        (lambda s: s["result"].update(alpha=0.1), "'result' must be the fit of the last α"),
        (lambda s: s["alpha_history"].__setitem__(-1, math.nan), "'alpha_history'.*finite"),
        (lambda s: s["settings"].update(window=math.nan), r"other settings.*'window'"),
        (lambda s: s["settings"].update(window=-5), r"other settings.*'window': \(-5, 50\)"),
        (lambda s: s.update(step_count=10**30), "'step_count' must be an integer from 0"),
        (lambda s: s.update(step_count=-1), "'step_count' must be an integer from 0"),
        (lambda s: s["signal"].__setitem__(0, math.nan), "'signal' must be a list of finite"),
        (lambda s: s.update(alpha_steps=[10**20] * len(s["alpha_steps"])), "'alpha_steps'"),
        (lambda s: s.update(signal_steps=list(reversed(s["signal_steps"]))), "increasing"),
        (lambda s: s.update(norms=["a"]), "'norms' must be a list of numbers"),
        (lambda s: s.pop("format"), "field 'format' is missing"),
    ],
)
def test_load_state_dict_validates_everything_before_changing_anything(mutate, match):
    source = _feed(WeightChangeDFA(window=50, stride=10, keep_norms=True), _white(90))
    state = source.state_dict()
    mutate(state)
    target = _feed(WeightChangeDFA(window=50, stride=10, keep_norms=True), _white(70, seed=9))
    before = target.state_dict()
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(state)
    assert target.state_dict() == before  # all or nothing


def test_load_state_dict_rejects_a_non_dict():
    with pytest.raises(ValueError, match=r"must be a dict from state_dict.*list"):
        WeightChangeDFA(window=50).load_state_dict([1, 2])


def test_compute_dfa_refuses_absurd_scale_counts_at_once():
    x = _white(1000)
    for count in (10**9, 2**63):
        start = time.perf_counter()
        with pytest.raises(ValueError, match=r"`num_scales` must be an integer from 2 to 1000"):
            compute_dfa(x, num_scales=count)
        assert time.perf_counter() - start < 1.0  # refused, not attempted
    assert compute_dfa(x, num_scales=1000)[1].size > 100  # the limit itself works


def test_an_integer_beyond_float64_is_recorded_as_infinite():
    m = WeightChangeDFA(window=50)
    m.update(1.0)
    with pytest.warns(DivergenceWarning, match="step 2"):
        m.update(10**400)
    m.update(-(10**400))
    assert m.nonfinite_steps == [2, 3]
    assert m.get_signal().tolist() == [1.0]


# ------------------------------------------------------------ silent misuse
def test_runs_of_exact_zeros_warn_once_naming_the_fix():
    m = WeightChangeDFA(window=50)
    m.update(0.0)
    m.update(1.0)
    m.update(0.0)  # single zeros: no run yet
    with pytest.warns(MisuseWarning, match=r"exact zeros.*micro-batches.*after optimizer.step"):
        m.update(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.update(0.0)


def _warned_at(category, action):
    """The file and line a warning names (the caller's line, not the library's)."""
    with pytest.warns(category) as record:
        line = action()
    (entry,) = [w for w in record if issubclass(w.category, category)]
    return Path(entry.filename).resolve(), entry.lineno, line


def _line():
    return sys._getframe(1).f_lineno


def test_warnings_name_the_users_line():
    here = Path(__file__).resolve()

    def negative():
        m = WeightChangeDFA(window=50)
        line = _line() + 1
        m.update(-1.0)
        return line

    def diverged():
        m = WeightChangeDFA(window=50)
        line = _line() + 1
        m.update(math.inf)
        return line

    def constant():
        m = WeightChangeDFA(window=50)
        for _ in range(49):
            m.update(0.5)
        line = _line() + 1
        m.update(0.5)
        return line

    def zeros():
        m = WeightChangeDFA(window=50)
        m.update(0.0)
        line = _line() + 1
        m.update(0.0)
        return line

    for category, action in [
        (NotANormWarning, negative),
        (DivergenceWarning, diverged),
        (NearConstantWarning, constant),
        (MisuseWarning, zeros),
    ]:
        filename, lineno, line = _warned_at(category, action)
        assert (filename, lineno) == (here, line), category.__name__


def test_cli_reads_no_column_it_has_to_guess(tmp_path, capsys):
    from wcdfa.cli import main

    path = tmp_path / "r.csv"
    values = _white(300)
    path.write_text("step,loss\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "name one with --column (columns: step, loss)" in err
    single = tmp_path / "one.csv"
    single.write_text("loss\n" + "".join(f"{v}\n" for v in values))
    assert main(["analyze", str(single), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["column"] == "loss"
    assert report["alpha"] == dfa(values).alpha


def _npy_claiming(path, elements):
    header = {"descr": "<f8", "fortran_order": False, "shape": (elements,)}
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(np.zeros(10).tobytes())


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        (
            "big.jsonl",
            lambda p: p.write_text('{"delta_norm": ' + "9" * 400 + "}\n"),
            "big.jsonl:1 column 'delta_norm': a number beyond float64",
        ),
        (
            "deep.jsonl",
            lambda p: p.write_text("[" * 100_000 + "]" * 100_000 + "\n"),
            "deep.jsonl:1: not a JSON value",
        ),
        ("empty.npy", lambda p: p.write_bytes(b""), "empty.npy: not a readable .npy array"),
        (
            "wide.csv",
            lambda p: p.write_text("delta_norm\n" + "1" * 200_000 + "\n"),
            r"wide.csv:\d+: not valid CSV \(field larger than field limit",
        ),
        ("huge.npy", lambda p: _npy_claiming(p, 2**40), "huge.npy: not a readable .npy array"),
        (
            "row.jsonl",
            lambda p: p.write_text('{"delta_norm": 1}\n[1, 2]\n'),
            "row.jsonl:2: expected an object with named fields",
        ),
        (
            "zip.npy",
            lambda p: (
                np.savez(p.with_suffix(".npz"), a=np.ones(60)) or p.with_suffix(".npz").rename(p)
            ),
            "zip.npy: not a single .npy array",
        ),
        (
            "image.csv",
            lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 50),
            "image.csv: not a text file",
        ),
    ],
)
def test_cli_bad_files_are_one_line_and_exit_2(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    out = subprocess.run(
        [sys.executable, "-m", "wcdfa.cli", "analyze", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert re.search(message, out.stderr), out.stderr


def test_cli_window_larger_than_the_series_is_refused_before_allocating(tmp_path, capsys):
    from wcdfa.cli import main

    path = tmp_path / "s.txt"
    path.write_text("\n".join(map(str, _white(300))))
    assert main(["analyze", str(path), "--window", str(10**12)]) == 2
    assert "shorter than the window" in capsys.readouterr().err


def test_cli_streams_large_files(tmp_path):
    # peak memory well under 3x the file: the rows are never held as Python objects
    path = tmp_path / "big.csv"
    values = _white(1_500_000, seed=5)
    with path.open("w") as f:
        f.write("step,delta_norm,alpha,alpha_ci_low,alpha_ci_high,regime\n")
        for start in range(0, values.size, 100_000):
            f.write(
                "".join(
                    f"{start + i + 1},{v!r},,,,\n"
                    for i, v in enumerate(values[start : start + 100_000].tolist())
                )
            )
    size = path.stat().st_size
    probe = (
        "import resource, sys; from wcdfa.cli import main; "
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "code = main(['analyze', sys.argv[1], '--json']); "
        "print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.split("\n")
    base, peak, code = (int(v) for v in out[-2].split())
    assert code == 0
    assert (peak - base) * 1024 < 3 * size, (peak - base) * 1024 / size


@pytest.mark.parametrize(
    ("build", "name", "integral", "fractional"),
    [
        (lambda v: WeightChangeDFA(window=v), "window", 50.0, 50.5),
        (lambda v: WeightChangeDFA(window=50, stride=v), "stride", 5.0, 5.5),
        (lambda v: WeightChangeDFA(window=50, order=v), "order", 2.0, 1.5),
        (lambda v: dfa(_white(200), min_box=v), "min_box", 5.0, 5.5),
        (lambda v: dfa(_white(200), max_box=v), "max_box", 40.0, 40.5),
        (lambda v: compute_dfa(_white(200), num_scales=v), "num_scales", 10.0, 10.5),
    ],
)
def test_one_rule_for_integral_floats(build, name, integral, fractional):
    build(integral)  # an integral float is the integer
    with pytest.raises(ValueError, match=rf"`{name}` must be an integer.*{fractional}"):
        build(fractional)
    with pytest.raises(TypeError, match=rf"`{name}` must be an integer.*True"):
        build(True)
