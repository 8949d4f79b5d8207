"""Real gloo runs of monitors misused on one rank (tests/test_distributed_faults.py).

    python tests/distributed_faults_job.py CASE OUT_DIR PORT

Two ranks train an FSDP2-sharded model (DTensor parameters, Shard(0)) for STEPS
steps; CASE decides what one rank does differently. Each rank writes what it saw
to OUT_DIR/rank{r}.json: the error it raised (type and message, at which step), or
its monitor's record. A hang is the failure the caller's timeout catches.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from wcdfa import WeightChangeDFA

STEPS, CHANGE_AT = 40, 20


def worker(rank, world, case, out, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    record = {"rank": rank}
    step = 0
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        fully_shard(model, mesh=init_device_mesh("cpu", (world,)))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
        raise_on_nan = case == "diverge-metrics-rank0"
        monitor = WeightChangeDFA(
            window=50, stride=5, on_nonfinite="raise" if raise_on_nan else "warn"
        )
        if case == "attach-rank0":
            if rank == 0:
                monitor.attach(opt)
        elif case != "update-rank0" or rank == 0:
            monitor.update(model)
        gen = torch.Generator().manual_seed(1 + rank)
        warnings.simplefilter("ignore")
        for step in range(1, STEPS + 1):
            x = torch.randn(8, 8, generator=gen)
            loss = torch.nn.functional.mse_loss(model(x), torch.sin(x.sum(1, keepdim=True)))
            if raise_on_nan and step == 13:
                loss = loss * math.nan  # every rank diverges at the same step
            opt.zero_grad()
            loss.backward()
            opt.step()
            if case == "update-rank0" and rank == 0:
                monitor.update(model)
            elif case not in ("attach-rank0", "update-rank0"):
                monitor.update(model)
            if raise_on_nan and rank == 0:
                monitor.metrics()  # a sink on rank zero reads (and fetches) every step
            if step == CHANGE_AT and rank == 1:
                if case == "reset-rank1":
                    monitor.reset()
                elif case == "reset-snapshot-rank1":
                    monitor.reset_snapshot()
                elif case == "load-rank1":
                    monitor.load_state_dict(monitor.state_dict())
        record.update(
            step_count=monitor.step_count,
            lost=monitor.lost_steps,
            signal=monitor.get_signal().tolist(),
        )
    except Exception as exc:  # reported to the test
        record.update(
            error=type(exc).__name__,
            message=str(exc),
            at=step,
            trace=traceback.format_exc()[-2000:],
        )
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(record))
    if "error" not in record:
        dist.barrier()  # both ranks done with every collective and every file written
    # No teardown: after an error the other rank may still wait in a collective, and
    # gloo's teardown under load aborted now and then after a clean run.
    os._exit(0)


def main():
    case, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mp.spawn(worker, args=(2, case, out, port), nprocs=2)


if __name__ == "__main__":
    main()
