"""SpectralProbe under real torch.distributed (gloo, CPU), for tests/test_spectral_distributed.py.

    python tests/spectral_job.py MODE METHOD OUT_DIR [PORT]

MODE is single, ddp or fsdp (FSDP2 ``fully_shard``: every weight a Shard(0) DTensor).
The same model trains on the same data (two ranks take half the batch each; SGD with
momentum) with a TrainingMonitor holding a WeightChangeDFA (``method=METHOD``), a
SpectralProbe every 5 steps, a FlowProbe every 5 (its credit alignment from the
WeightChangeDFA's measurer) and a SpectralProjection every 10; every rank writes the
probe's history, the number of layers it decomposed itself, the credit readings, the
projected layers and the final (full) weights to OUT_DIR/{mode}_rank{r}.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from unittest import mock

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from wcdfa import TrainingMonitor, WeightChangeDFA
from wcdfa.control import SpectralProjection
from wcdfa.probes import FlowProbe, SpectralProbe
from wcdfa.spectral import layers as spectral_layers

STEPS, BATCH = 20, 32


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(24, 64),
        torch.nn.Tanh(),
        torch.nn.Linear(64, 48),
        torch.nn.Tanh(),
        torch.nn.Linear(48, 40),
        torch.nn.Tanh(),
        torch.nn.Linear(40, 32),
    )


def train(model, rank, world, out, mode, method):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    projection = SpectralProjection(every=10, ramp_epochs=2, min_tail=2)
    flow = FlowProbe(torch.randn(8, 24, generator=torch.Generator().manual_seed(2)), every=5)
    probes = [WeightChangeDFA(window=50, method=method), SpectralProbe(every=5), flow, projection]
    monitor = TrainingMonitor(model, probes, raise_errors=True)
    monitor.attach(optimizer)
    gen = torch.Generator().manual_seed(1)
    half = BATCH // world
    decomposed = 0
    original = spectral_layers.eigenvalues

    def counting(*args, **kwargs):
        nonlocal decomposed
        decomposed += 1
        return original(*args, **kwargs)

    with mock.patch.object(spectral_layers, "eigenvalues", counting):
        for _ in range(STEPS):
            x = torch.randn(BATCH, 24, generator=gen)
            y = torch.sin(x.repeat(1, 2)[:, :32])
            xs, ys = x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half]
            loss = torch.nn.functional.mse_loss(model(xs), ys)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    probe = monitor["spectral"]
    weights = {}
    for name, param in model.named_parameters():
        full = param.full_tensor() if hasattr(param, "full_tensor") else param
        weights[name.removeprefix("module.")] = full.detach().double().flatten().tolist()
    result = {
        "history": probe.history,
        "decomposed": decomposed,
        "metrics": {k: v for k, v in monitor.metrics().items() if k.startswith("spectral/")},
        "credit": [[step, reading["credit"]] for step, reading in flow.history],
        "projected": [
            [r.name.removeprefix("module.") for r in rs if r.skipped is None]
            for _, rs in projection.history
        ],
        "weights": weights,
    }
    (Path(out) / f"{mode}_rank{rank}.json").write_text(json.dumps(result))


def worker(rank, world, mode, method, out, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = make_model()
        if mode == "ddp":
            model = torch.nn.parallel.DistributedDataParallel(model)
        else:
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard

            fully_shard(model, mesh=init_device_mesh("cpu", (world,)))
        train(model, rank, world, out, mode, method)
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    os._exit(0)  # gloo's teardown aborts now and then under load; see distributed_job.py


def main():
    mode, method, out = sys.argv[1:4]
    if mode == "single":
        train(make_model(), 0, 1, out, mode, method)
        return
    mp.spawn(worker, args=(2, mode, method, out, int(sys.argv[4])), nprocs=2)


if __name__ == "__main__":
    main()
