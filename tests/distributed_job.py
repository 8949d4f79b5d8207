"""Real torch.distributed runs (gloo, CPU) for the distributed tests.

    python tests/distributed_job.py MODE OUT_DIR [PORT]

MODE is single, ddp or fsdp, optionally with -derived (ΔW from the optimizer's
state instead of a snapshot).

Trains the same model on the same data: ``single`` in one process on the full
batch; ``ddp`` (DistributedDataParallel, replicated parameters) and ``fsdp`` (FSDP2
``fully_shard``: DTensor parameters sharded with Shard(0)) on two ranks with half
the batch each. Every rank writes its ‖ΔW‖ window and α history to
OUT_DIR/{mode}_rank{r}.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from wcdfa import WeightChangeDFA

STEPS, BATCH = 80, 16


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))


def batches():
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        x = torch.randn(BATCH, 8, generator=gen)
        yield x, torch.sin(x.sum(1, keepdim=True))


def train(model, rank, world, out, mode):
    opt = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01
    )
    derived = mode.endswith("derived")
    monitor = WeightChangeDFA(window=50, stride=5, method="optimizer" if derived else "auto")
    if derived:  # no snapshot: from the optimizer's (sharded) state
        monitor.attach(opt)
    else:
        monitor.update(model)
    half = BATCH // world
    for x, y in batches():
        xs, ys = x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half]
        loss = torch.nn.functional.mse_loss(model(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not derived:
            monitor.update(model)
    result = {
        "signal": monitor.get_signal().tolist(),
        "history": monitor.history,
        "method": monitor.method_in_use,
    }
    (Path(out) / f"{mode}_rank{rank}.json").write_text(json.dumps(result))


def worker(rank, world, mode, out, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from torch.distributed.device_mesh import init_device_mesh

        model = make_model()
        if mode == "ddp":
            model = torch.nn.parallel.DistributedDataParallel(model)
            train(model, rank, world, out, mode)
        else:
            from torch.distributed.fsdp import fully_shard

            fully_shard(model, mesh=init_device_mesh("cpu", (world,)))
            train(model, rank, world, out, mode)
        dist.barrier()  # both ranks done with every collective and every file written
    except BaseException:
        dist.destroy_process_group()
        raise
    # Skip gloo's teardown: under load it aborted now and then ("terminate called
    # without an active exception") after both ranks had finished and written.
    os._exit(0)


def main():
    mode, out = sys.argv[1], sys.argv[2]
    if mode in ("single", "single-derived"):
        train(make_model(), 0, 1, out, mode)
        return
    port = int(sys.argv[3])
    mp.spawn(worker, args=(2, mode, out, port), nprocs=2)


if __name__ == "__main__":
    main()
