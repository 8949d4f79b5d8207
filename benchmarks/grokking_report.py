"""Write docs/grokking.md from the runs of examples/grokking.py.

    python examples/grokking.py --seed 0 --out runs/grokking    # and seeds 1, 2
    python benchmarks/grokking_report.py runs/grokking

Copies each run's figure to docs/img/ and tabulates, per seed, the grokking epoch
(first test accuracy > 90 %), the epoch from which α stays in the critical band and
the final α, then says plainly what the runs show.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

BAND = (2.0, 6.0)


def dfa_facts(runs: Path, results: list) -> str:
    """The ‖ΔW‖ α facts of the runs, from their saved series."""
    parts = []
    for r in results:
        data = np.load(runs / f"grokking_seed{r['seed']}.npz")
        ep, alphas = data["epochs"], data["alphas"]
        known = np.isfinite(alphas)
        inside = known & (alphas >= 0.8) & (alphas <= 1.2)
        grok = r["grokking_epoch"]
        at = (
            alphas[known & (ep <= grok)][-1]
            if grok is not None and (known & (ep <= grok)).any()
            else None
        )
        first = int(ep[inside][0]) if inside.any() else None
        parts.append(
            f"seed {r['seed']}: memorised by epoch {r['memorisation_epoch']}, α "
            + (f"{at:.2f} at grokking, " if at is not None else "")
            + (f"first critical at epoch {first}" if first is not None else "never critical")
            + f", lowest α {np.nanmin(alphas):.2f}"
        )
    return "; ".join(parts) + "."


def spectral_section(runs: Path, results: list) -> list:
    """Per-layer spectral α of the runs made with ``--probes spectral`` (none: nothing)."""
    with_spectral = [r for r in results if r.get("spectral")]
    if not with_spectral:
        return []
    names = with_spectral[0]["spectral"]["layers"]
    header = "| seed | reading | epoch | " + " | ".join(names) + " |"
    rows = [header, "|---|---|---|" + "---|" * len(names)]
    crossings, below_from = [], []
    for r in with_spectral:
        spec = r["spectral"]
        for key in ("first", "at_grokking", "final"):
            reading = spec[key]
            if reading is None:
                continue
            cells = " | ".join(f"{reading['alpha'][n]:.2f}" for n in names)
            rows.append(f"| {r['seed']} | {key.replace('_', ' ')} | {reading['epoch']} | {cells} |")
        data = np.load(runs / f"grokking_seed{r['seed']}.npz")
        epochs, alphas = data["spectral_epochs"], data["spectral_alphas"]
        layers = [str(n) for n in data["spectral_layers"]]
        moves = []
        for name, row in zip(layers, alphas, strict=True):
            inside = (row >= BAND[0]) & (row <= BAND[1])
            if inside.all():
                moves.append(f"{name} always in the band")
            elif not inside.any():
                side = "above" if np.nanmedian(row) > BAND[1] else "below"
                moves.append(f"{name} never in it ({side})")
            else:
                entered = epochs[np.flatnonzero(inside)[0]]
                moves.append(
                    f"{name} first in it at epoch {entered} "
                    f"({100 * inside.mean():.0f} % of readings)"
                )
        crossings.append(
            f"seed {r['seed']} (grokking at {r['grokking_epoch']}): " + "; ".join(moves)
        )
        stays = []
        for name, row in zip(layers, alphas, strict=True):
            above = np.flatnonzero(row >= BAND[0])
            if not above.size:
                stays.append(f"{name} from the start")
            elif above[-1] + 1 < row.size:
                stays.append(f"{name} from epoch {epochs[above[-1] + 1]}")
            else:
                stays.append(f"{name} not at the end")
        below_from.append(
            f"seed {r['seed']} (grokking at {r['grokking_epoch']}): " + ", ".join(stays)
        )
    summary = []
    for key, label in (
        ("first", "at the first reading"),
        ("at_grokking", "at grokking"),
        ("final", "at the end"),
    ):
        values = [
            a
            for r in with_spectral
            if r["spectral"][key]
            for a in r["spectral"][key]["alpha"].values()
        ]
        if values:
            below = sum(a < BAND[0] for a in values)
            above = sum(a > BAND[1] for a in values)
            summary.append(
                f"{label} α ranged {min(values):.2f}–{max(values):.2f} over the layers and seeds "
                f"({below} of {len(values)} below {BAND[0]:g}, {above} above {BAND[1]:g})"
            )
    return [
        "## Every layer's spectral α over the same runs",
        "",
        "`--probes spectral` adds a SpectralProbe reading each layer's heavy-tailed",
        "spectral exponent every 250 epochs (weightwatcher's conventions; every layer here",
        "has at least 97 eigenvalues). It only reads the weights, so these runs train",
        "exactly as without it. Each layer's α at the first reading, at the last reading",
        "before grokking and at the end:",
        "",
        *rows,
        "",
        f"Against the HTSR band {BAND[0]:g}–{BAND[1]:g}: " + ". ".join(crossings) + ".",
        "",
        f"α stays below {BAND[0]:g} through the end — " + "; ".join(below_from) + ".",
        "",
        "**What the spectra show.** " + "; ".join(summary).capitalize() + ". "
        "Read next to the ‖ΔW‖ α above, per seed, not as a law.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", type=Path)
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=Path, default=root / "docs" / "grokking.md")
    args = parser.parse_args()
    results = [json.loads(p.read_text()) for p in sorted(args.runs.glob("grokking_seed*.json"))]
    img = args.out.parent / "img"
    img.mkdir(exist_ok=True)
    rows, gaps = [], []
    for r in results:
        seed = r["seed"]
        shutil.copy(args.runs / f"grokking_seed{seed}.png", img / f"grokking_seed{seed}.png")
        grok, crit = r["grokking_epoch"], r["criticality_epoch"]
        gap = None if grok is None or crit is None else crit - grok
        if gap is not None:
            gaps.append(gap)
        ci = r["final_alpha_ci"]
        rows.append(
            f"| {seed} | {r['epochs']} | {r['memorisation_epoch']} | {grok or '—'} | "
            f"{crit or '—'} | "
            f"{'—' if gap is None else gap} | {r['final_alpha']:.3f} "
            f"[{ci[0]:.2f}, {ci[1]:.2f}] | {r['final_regime']} | {r['final_test_accuracy']:.3f} |"
        )
    statements = []
    for r in results:
        grok, crit = r["grokking_epoch"], r["criticality_epoch"]
        if grok is None:
            statements.append(f"seed {r['seed']} did not generalise within {r['epochs']} epochs")
        elif crit is None:
            statements.append(
                f"seed {r['seed']} generalised at epoch {grok}, but α never settled in the "
                f"critical band within {r['epochs']} epochs (final α {r['final_alpha']:.2f}, "
                f"{r['final_regime']})"
            )
        elif crit > grok:
            statements.append(
                f"seed {r['seed']} generalised at epoch {grok} and reached lasting "
                f"criticality {crit - grok} epochs later (epoch {crit})"
            )
        else:
            statements.append(
                f"seed {r['seed']} reached lasting criticality at epoch {crit}, "
                f"{grok - crit} epochs *before* generalising (epoch {grok})"
            )
    preceded = sum(1 for g in gaps if g > 0)
    verdict = (
        f"Generalisation preceded criticality in {preceded} of {len(results)} runs"
        + (
            f" (by {min(gaps)}–{max(gaps)} epochs)"
            if preceded and min(gaps) != max(gaps)
            else f" (by {gaps[0]} epochs)"
            if preceded
            else ""
        )
        + ": "
        + "; ".join(statements)
        + ". Criticality never came before generalisation "
        "in our runs" * (preceded == len(gaps)) + ("." if preceded == len(gaps) else "")
    )

    text = [
        "# Grokking precedes criticality? Our runs",
        "",
        "The headline claim of weight-change DFA: on modular addition, networks generalise",
        '("grok") long before their weight-update dynamics reach the critical band.',
        "`examples/grokking.py` reproduces the setting: (a + b) mod 97, 30 % of the pairs",
        "for training, an MLP on two learned 128-d embeddings (two hidden layers of 256,",
        "ReLU), full-batch AdamW (lr 1e-3, weight decay 1.0), RollingWeightChangeDFA(window=500,",
        "stride=200) updated once per epoch; accuracy every 10 epochs. Commands:",
        "",
        "```bash",
        "python examples/grokking.py --seed 0 --probes spectral --threads 1 --out runs/grokking",
        "python benchmarks/grokking_report.py runs/grokking          # this page",
        "```",
        "",
        "| seed | epochs | train > 99 % | grokking (test > 90 %) | α stays critical from | "
        "gap (epochs) | final α [95 % CI] | final regime | final test acc |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"**What our runs show.** {verdict}",
        "",
        "How to read the numbers: α is recomputed every 200 epochs on the last 500, so",
        'each epoch above is known to ±200 epochs; "stays critical from" is the first α',
        "after the last one outside [0.8, 1.2], so a late dip just below 0.8 moves it by",
        f"thousands of epochs. Per seed: {dfa_facts(args.runs, results)} Three seeds are",
        "few: read the order of the events per run, not as a law.",
        "",
        *spectral_section(args.runs, results),
        *[f"![seed {r['seed']}](img/grokking_seed{r['seed']}.png)" for r in results],
        "",
    ]
    args.out.write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
