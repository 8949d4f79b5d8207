"""Weight-change DFA in a Hugging Face Trainer run (tiny GPT-2 built from a config).

python examples/hf_trainer.py [--steps 300] [--out runs/hf]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import transformers

from wcdfa.integrations.transformers import WeightChangeDFACallback


class Tokens(torch.utils.data.Dataset):
    """Sequences that repeat a random motif: learnable, and nothing to download."""

    def __init__(self, n: int = 512, length: int = 32, vocab: int = 64) -> None:
        gen = torch.Generator().manual_seed(0)
        motif = torch.randint(0, vocab, (n, 8), generator=gen)
        self.ids = motif.repeat(1, length // 8)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--out", type=Path, default=Path("runs/hf"), help="output folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_positions=32, n_embd=64, n_layer=2, n_head=2)
    training_args = transformers.TrainingArguments(
        output_dir=str(args.out),
        max_steps=args.steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=50,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = transformers.Trainer(
        model=transformers.GPT2LMHeadModel(config), args=training_args, train_dataset=Tokens()
    )
    # The Trainer decays the learning rate linearly: normalize="lr" divides each update
    # by its rate, so that the schedule does not read as "ordered" dynamics.
    callback = WeightChangeDFACallback(window=100, normalize="lr").install(trainer)
    trainer.train()
    for row in trainer.state.log_history:
        if "wcdfa/alpha" in row and "loss" in row:
            print(f"step {row['step']:4d}  loss {row['loss']:.3f}  α={row['wcdfa/alpha']:.3f}")
    print(f"final: {callback.monitor}")


if __name__ == "__main__":
    main()
