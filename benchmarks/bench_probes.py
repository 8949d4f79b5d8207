"""The probes' cost: one reading against one training step of the same model, side by side.

    python benchmarks/bench_probes.py [--seconds 2]

AttentionProbe:

Models: the 2-layer, 2-head transformer of examples/attention_crystallisation.py on its
full training batch (3,830 sequences), with the probe on 256 of them; and a 2-layer
GPT-2 from a config (batch 16 x 64 tokens, probe on 16 sequences). Same run, medians of
repeated calls; the cost per training step is the reading's time divided by ``every``.

FlowProbe: the residual MLP of examples/learning_rule_audit.py (batch 128), the probe on
3 batches of 128 with the loss (its own backward), without and with DFA's credit and
8 null draws.
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


if __name__ == "__main__":
    main()
