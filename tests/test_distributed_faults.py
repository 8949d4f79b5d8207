"""Monitors misused on one rank under FSDP2 (real gloo, 2 processes): no hang (issue 11).

Every case runs under a timeout, so that a regression fails the test instead of
hanging CI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import ROOT

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch built without distributed"
)
CHANGE_AT, STEPS = 20, 40


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(case, out, ranks=(0, 1)):
    job = str(ROOT / "tests" / "distributed_faults_job.py")
    env = {**os.environ, "WCDFA_JOIN_TIMEOUT": "5"}
    run = subprocess.run(
        [sys.executable, job, case, str(out), str(_free_port())],
        env=env,
        timeout=150,
        check=False,
        capture_output=True,
        text=True,
    )
    missing = [r for r in ranks if not (out / f"rank{r}.json").exists()]
    assert not missing, f"ranks {missing} wrote nothing:\n{run.stderr[-3000:]}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in ranks]


@pytest.mark.parametrize("case", ["reset-rank1", "reset-snapshot-rank1", "load-rank1"])
def test_a_new_baseline_on_one_rank_neither_hangs_nor_records_a_wrong_sum(tmp_path, case):
    rank0, rank1 = _run(case, tmp_path)
    assert "error" not in rank0, rank0.get("trace")
    assert "error" not in rank1, rank1.get("trace")
    # the step after the change: rank 1's sum would miss its shard, so rank 0 drops it
    assert rank0["lost"] == [CHANGE_AT + 1]
    assert rank0["step_count"] == STEPS
    assert len(rank0["signal"]) == STEPS - 1
    if case == "reset-rank1":  # its record starts afresh after the baseline
        assert rank1["step_count"] == STEPS - CHANGE_AT - 1
    else:
        assert rank1["step_count"] == STEPS - 1  # its baseline step adds no sample
    # every other step is the same global norm on both ranks
    tail = rank1["signal"][-(STEPS - CHANGE_AT - 1) :]
    assert rank0["signal"][-len(tail) :] == pytest.approx(tail, rel=1e-6)


@pytest.mark.parametrize("case", ["attach-rank0", "update-rank0"])
def test_measuring_on_one_rank_fails_fast_with_advice(tmp_path, case):
    (rank0,) = _run(case, tmp_path, ranks=(0,))  # the rank that measured alone
    assert rank0["error"] == "RuntimeError"
    assert "every rank must measure" in rank0["message"]
    assert "not under `if rank == 0`" in rank0["message"]


def test_divergence_raised_on_every_rank_at_the_same_step_when_rank0_reads(tmp_path):
    rank0, rank1 = _run("diverge-metrics-rank0", tmp_path)
    assert rank0["error"] == rank1["error"] == "DivergenceError"
    assert rank0["at"] == rank1["at"] == 15  # the stride boundary after the NaN at 13
