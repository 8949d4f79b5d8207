"""Write docs/attention.md from the runs of examples/attention_crystallisation.py.

    python examples/attention_crystallisation.py --seed 0 --out runs/attention   # and 1, 2, ...
    python benchmarks/attention_report.py runs/attention

Copies each run's figure to docs/img/ and tabulates per seed what the run shows:
grokking epoch, every head's final entropy, the crystallisation events with the ‖ΔW‖
regime at each, and the compensation scores. The page's fixed part (definitions,
validation, cost) is in this script; every number about the runs comes from them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

HEAD = """# Attention heads: entropy, crystallisation, compensation

`AttentionProbe` reads every attention head's normalised entropy on a fixed probe batch,
live, in a `TrainingMonitor`; `compensation_test` perturbs one head and fits the other
heads' response. Definitions (ours, with the formulas):

- **Normalised entropy of a head.** For each valid query row, H = −Σ p log p over its
  valid keys, divided by log(number of valid keys): uniform attention gives 1, one-hot 0;
  masked keys and padding never count, and rows with fewer than two valid keys (the
  first query under a causal mask) are left out; a head's entropy is the mean over the
  valid rows of the probe batch. In self-attention a position whose key no query may
  attend is padding. Reported per head, per layer (mean and std) and overall.
- **Crystallisation.** The spread of the heads' entropies (population std over every
  head read; with `relative=True` divided by their mean) falls below `start` (1e-3)
  and later `end` (1e-4), each held for `confirm` readings: `crystallisation_start` and
  `crystallisation_end` events at the first reading of the confirming run, and
  `decrystallised` if it rises back above `start`. With 2–4 heads an absolute threshold
  is fragile (one head's drift moves the std of so few values a lot): the relative
  criterion does not depend on where the entropies settle.
- **Convergence of a head**: the first reading from which its entropy changes by less
  than `tol` (1e-3) between consecutive readings, through the last, over at least
  `confirm` changes.
- **Compensation test** (offline): head h's output is scaled by ω ∈ [0.5, 1.5] and every
  head's entropy is read; the slope s_hj of head j's entropy against ω by least squares.
  Only heads of later layers can respond. Our compensation score (the published account
  gives none) is κ_h = mean over those heads of |s_hj|, the entropy change per unit of
  perturbation; `net` is the signed mean.

## Capture

```python
from wcdfa import TrainingMonitor, WeightChangeDFA
from wcdfa.probes import AttentionProbe

probe = AttentionProbe(probe_batch, every=100)        # a tensor, a dict of kwargs or a tuple
monitor = TrainingMonitor(model, [WeightChangeDFA(window=500), probe])
monitor.attach(optimizer)
# attention/entropy, attention/spread, attention/entropy/<layer>/h<i>, ...
```

The probe batch runs in eval mode under no_grad with the random generators forked:
training is bit-identical with and without the probe (tested with dropout and AdamW).
The attention probabilities are reduced to per-head sums inside the forward and never
kept: memory O(batch·heads·queries) beyond the forward's own.

- `nn.MultiheadAttention`, also inside `nn.TransformerEncoderLayer` (which asks it for
  no weights) and past the encoders' fast paths: for the probe forward only, a pre-hook
  asks for per-head weights (building the causal mask where `is_causal` comes without
  one), the forward hook reduces them and returns none.
- Hugging Face models: their attention with SDPA or flash returns no weights, so for
  the probe forward the model's attention implementation is a function registered
  with transformers' `AttentionInterface` (eager attention, reduced in place), then
  restored.
- Anything else: `capture=lambda model, batch: {layer: probs}` (or `(probs, valid_keys)`).

Validation (`tests/test_attention.py`): per-head entropies agree to 1e-6 (measured
≤ 3e-16) with entropies computed by hand from the weights that MultiheadAttention
(`average_attn_weights=False`) returns in eval mode, batch-first or not, with no mask,
a causal mask, a padding mask and both; and from the weights of Hugging Face eager
attention (`output_attentions=True`) for a GPT-2 (causal) and a BERT, both with
padding. Uniform attention gives exactly 1 for powers-of-two key counts (otherwise
within 4e-16), one-hot exactly 0.

## Cost

`python benchmarks/bench_probes.py` (2-core CPU, nothing else running):

```
{bench}
```

## The reproduction: (a + b) mod 113

`examples/attention_crystallisation.py`: a 2-layer, 2-head causal transformer (d_model
64, feed-forward 128, pre-norm, no dropout) on [a, a, b, b, =] predicting (a + b) mod
113 at the last position; 30 % of the pairs for training; full-batch AdamW (lr 1e-3,
weight decay 1.0); AttentionProbe every 100 epochs on 256 training sequences,
WeightChangeDFA(window=500, stride=100) and a SpectralProbe every 500 epochs in one
TrainingMonitor; the compensation test on the first layer's heads at the end.

```bash
python examples/attention_crystallisation.py --seed 0 --out runs/attention   # and 1, 2, ...
python benchmarks/attention_report.py runs/attention                          # this section
```
"""


def label(head: str) -> str:
    """A head's short name in the tables: L<layer>h<head>."""
    return head.replace("blocks.layers.", "L").replace(".self_attn/", "")


def collapsed(r: dict) -> str:
    """Say so when a run ends at chance with every head uniform (crystallised by collapse)."""
    chance = 1 / 113
    if r["final_test_accuracy"] > 2 * chance or min(r["final_entropy"].values()) < 0.999:
        return ""
    return (
        f" The run collapsed: it ends at chance accuracy (1/113 = {chance:.3f}) with every "
        "head's entropy at 1 (uniform attention), so its heads' spread fell to zero by "
        "collapse; the crystallisation events of this seed mark that collapse, not "
        "specialised heads."
    )


def converged(r: dict) -> str:
    """Each head's convergence step (entropy change below tol from there on), or 'never'."""
    steps = r.get("convergence", {})
    if not steps:
        return "convergence not recorded."
    parts = [f"{label(h)} " + ("never" if e is None else f"at {e}") for h, e in steps.items()]
    return (
        "heads converged (entropy change < 1e-3 per reading from then on): "
        + ", ".join(parts)
        + "."
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", type=Path)
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=Path, default=root / "docs" / "attention.md")
    parser.add_argument("--bench", type=Path, help="bench_probes.py's output, to include")
    args = parser.parse_args()
    bench = args.bench.read_text().strip() if args.bench else "(run the benchmark)"
    results = [json.loads(p.read_text()) for p in sorted(args.runs.glob("attention_seed*.json"))]
    img = args.out.parent / "img"
    img.mkdir(parents=True, exist_ok=True)
    lines = [HEAD.replace("{bench}", bench)]
    if not results:
        args.out.write_text("\n".join([*lines, "No full run has been made yet.", ""]))
        print(f"wrote {args.out} (no runs)")
        return
    heads = list(results[0]["final_entropy"]) if results else []
    short = [label(h) for h in heads]
    lines += [
        "| seed | epochs | grokking (test > 90 %) | final test acc | "
        + " | ".join(f"entropy {s}" for s in short)
        + " | mean | spread | crystallisation (‖ΔW‖ regime then) |",
        "|---|---|---|---|" + "---|" * len(heads) + "---|---|---|",
    ]
    for r in results:
        events = (
            "; ".join(
                f"{e['kind'].replace('crystallisation_', '')} at {e['step']} ({e['wcdfa_regime']})"
                for e in r["events"]
            )
            or "none"
        )
        lines.append(
            f"| {r['seed']} | {r['epochs']} | {r['grokking_epoch'] or '—'} | "
            f"{r['final_test_accuracy']:.3f} | "
            + " | ".join(f"{r['final_entropy'][h]:.6f}" for h in heads)
            + f" | {r['final_mean_entropy']:.6f} | {r['final_spread']:.1e} | {events} |"
        )
    lines += ["", "Compensation scores κ (first layer's heads; second layer responding):", ""]
    for r in results:
        scores = ", ".join(
            f"{label(h)} κ = {v:.4f} (net {r['compensation_net'][h]:+.4f})"
            for h, v in r["compensation_score"].items()
        )
        lines.append(f"- seed {r['seed']}: {scores}")
        shutil.copy(
            args.runs / f"attention_seed{r['seed']}.png", img / f"attention_seed{r['seed']}.png"
        )
    lines += ["", "Per seed:", ""]
    for r in results:
        data = np.load(args.runs / f"attention_seed{r['seed']}.npz")
        acc = data["test_acc"]
        seen = np.flatnonzero(np.isfinite(acc))
        best = seen[np.argmax(acc[seen])]
        spread = data["entropies"].std(axis=1)
        note = (
            f" ({r['epochs']} epochs: shorter than the full 12,000)" if r["epochs"] < 12000 else ""
        )
        lines.append(
            f"- seed {r['seed']}{note}: "
            + (
                f"test accuracy passed 90 % at epoch {r['grokking_epoch']}, "
                if r["grokking_epoch"]
                else "no grokking, "
            )
            + f"peaked at {acc[best]:.3f} (epoch {best}) and ended at "
            f"{r['final_test_accuracy']:.3f}; "
            f"the heads' spread ranged {spread.min():.1e}-{spread.max():.1e} "
            f"({'never' if spread.min() >= 1e-3 else 'at times'} below the 1e-3 start threshold), "
            f"mean entropy {data['entropies'][0].mean():.3f} at the first reading and "
            f"{r['final_mean_entropy']:.3f} at the end; "
            + converged(r)
            + collapsed(r)
            + (
                ""
                if r.get("final_wcdfa_alpha") is None
                else f" Final ‖ΔW‖ α {r['final_wcdfa_alpha']:.2f}."
            )
        )
    means = [r["final_mean_entropy"] for r in results]
    claim = 0.611992
    if results:
        close = [r["seed"] for r in results if abs(r["final_mean_entropy"] - claim) < 5e-7]
        lines += [
            "",
            f"**What our runs show.** {len(results)} seed(s). The account's claim of a final "
            f"entropy of {claim} in every seed: our final mean entropies are "
            + ", ".join(f"{m:.6f}" for m in means)
            + (
                f"; {len(close)} of them equal it to 6 decimals."
                if close
                else "; none equals it to 6 decimals."
            ),
            "",
            *[f"![seed {r['seed']}](img/attention_seed{r['seed']}.png)" for r in results],
        ]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
