"""The probes' cost: one reading against one training step of the same model, side by side.

    python benchmarks/bench_probes.py [--seconds 2]

AttentionProbe:

Models: the 2-layer, 2-head transformer of examples/attention_crystallisation.py on its
full training batch (3,830 sequences), with the probe on 256 of them; and a 2-layer
GPT-2 from a config (batch 16 x 64 tokens, probe on 16 sequences). Same run, medians of
repeated calls; the cost per training step is the reading's time divided by ``every``.

FlowProbe: the residual MLP of examples/learning_rule_audit.py (batch 128), the probe on
3 batches of 128 with the loss (its own backward), without and with DFA's credit and
8 null draws. Then the credit alignment's extra cost on a sampled step: a training step
with a WeightChangeDFA attached (snapshot, then optimizer state), alone and with the
alignment asked of its measurer and read per block (what the FlowProbe does on its
steps), against the same step with the transient copy of the blocks that the probe
makes when no WeightChangeDFA is hosted.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import torch
from timing import median_time

from wcdfa.probes import AttentionProbe, FlowProbe

ROOT = Path(__file__).resolve().parents[1]


def step_fn(model, optimizer, loss_fn):
    def step():
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()

    return step


def cases():
    example = runpy.run_path(str(ROOT / "examples" / "attention_crystallisation.py"), run_name="x")
    torch.manual_seed(0)
    model = example["Transformer"]()
    x, y, _, _ = example["data"](0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = lambda: torch.nn.functional.cross_entropy(model(x), y)  # noqa: E731
    yield "transformer mod 113", model, step_fn(model, optimizer, loss), x[:256]
    import transformers

    config = transformers.GPT2Config(
        vocab_size=1000, n_positions=64, n_embd=64, n_layer=2, n_head=4
    )
    gpt = transformers.GPT2LMHeadModel(config)
    ids = torch.randint(0, 1000, (16, 64))
    opt = torch.optim.AdamW(gpt.parameters(), lr=1e-3)
    yield (
        "GPT-2 2x64 (sdpa)",
        gpt,
        step_fn(gpt, opt, lambda: gpt(input_ids=ids, labels=ids).loss),
        {"input_ids": ids},
    )


def flow_cases():
    example = runpy.run_path(str(ROOT / "examples" / "learning_rule_audit.py"), run_name="x")
    torch.manual_seed(0)
    model = example["ResMLP"]()
    x, y = example["dataset"](0, 512)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = lambda: torch.nn.functional.cross_entropy(model(x[:128]), y[:128])  # noqa: E731
    step = step_fn(model, optimizer, loss)
    batches = [(x[i * 128 : (i + 1) * 128], y[i * 128 : (i + 1) * 128]) for i in range(3)]
    feedback = [torch.randn(64, 10) for _ in range(6)]

    def credit(m, inputs, targets, generator):
        return example["dfa_credit"](m, inputs, targets, feedback)

    ce = torch.nn.functional.cross_entropy
    yield "flow: ResMLP, 3 batches", model, step, FlowProbe(batches, loss_fn=ce)
    yield "flow: + DFA credit", model, step, FlowProbe(batches, loss_fn=ce, credit_fn=credit)


def credit_cases(seconds):
    """ms per step: plain, + alignment from the measurer, + the probe's own copy."""
    from wcdfa import WeightChangeDFA

    example = runpy.run_path(str(ROOT / "examples" / "learning_rule_audit.py"), run_name="x")
    torch.manual_seed(0)
    model = example["ResMLP"]()
    x, y = example["dataset"](0, 512)
    groups = [list(m.parameters()) for m in model.blocks]
    params = [p for g in groups for p in g]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = step_fn(model, optimizer, lambda: torch.nn.functional.cross_entropy(model(x), y))
    for method in ("snapshot", "optimizer"):
        monitor = WeightChangeDFA(window=50, method=method)
        handle = monitor.attach(optimizer)

        def aligned(measurer=monitor.measurer):
            measurer.request_alignment()
            step()
            measurer.take_alignment().cosines(groups)

        def copied():
            before = [p.detach().clone() for p in params]
            step()
            for group in groups:
                dw = [p.detach() - b for p, b in zip(group, before, strict=False)]
                dot = sum((d * -p.grad).sum() for d, p in zip(dw, group, strict=False))
                float(dot / (sum(d.square().sum() for d in dw) ** 0.5))

        t_plain = median_time(step, seconds)
        t_aligned = median_time(aligned, seconds)
        t_copied = median_time(copied, seconds)
        print(
            f"credit ({method}): step {t_plain * 1e3:.2f} ms; + alignment "
            f"{(t_aligned - t_plain) * 1e3:+.2f} ms ({t_aligned / t_plain:.2f}x); + own copy "
            f"{(t_copied - t_plain) * 1e3:+.2f} ms ({t_copied / t_plain:.2f}x), "
            f"{sum(p.numel() * p.element_size() for p in params) / 2**20:.2f} MiB held"
        )
        handle.remove()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(
        f"{'model':<22} {'step ms':>8} {'reading ms':>11} {'reading/step':>13} "
        f"{'every=100':>10} {'every=1000':>11}"
    )
    runs = [(label, m, step, AttentionProbe(batch)) for label, m, step, batch in cases()]
    for label, model, step, probe in [*runs, *flow_cases()]:
        t_step = median_time(step, args.seconds)
        t_read = median_time(lambda p=probe, m=model: p.read(m), args.seconds)
        ratio = t_read / t_step
        print(
            f"{label:<22} {t_step * 1e3:>8.1f} {t_read * 1e3:>11.1f} {ratio:>12.2f}x "
            f"{100 * ratio / 100:>9.2f}% {100 * ratio / 1000:>10.3f}%"
        )
    credit_cases(args.seconds)


if __name__ == "__main__":
    main()
