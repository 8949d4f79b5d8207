"""Weight-change DFA with JAX and optax: pass the norm of the applied update as a float.

    python examples/jax_optax.py [--steps 1500]

A small MLP regression trained with optax.adamw; each step returns
optax.tree.norm(updates), the norm of the update optax applied, and the monitor gets it
as a float (one host transfer per step).
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import optax

from wcdfa import WeightChangeDFA


def init(key, sizes=(8, 64, 64, 1)):
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        params.append(
            {
                "w": jax.random.normal(sub, (fan_in, fan_out)) / jnp.sqrt(fan_in),
                "b": jnp.zeros(fan_out),
            }
        )
    return params


def forward(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps")
    args = parser.parse_args()
    key = jax.random.PRNGKey(0)
    params = init(key)
    optimizer = optax.adamw(1e-3)
    opt_state = optimizer.init(params)

    def loss_fn(params, x, y):
        return jnp.mean((forward(params, x) - y) ** 2)

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, optax.tree.norm(updates)

    monitor = WeightChangeDFA(window=500)
    for step in range(1, args.steps + 1):
        key, sub = jax.random.split(key)
        x = jax.random.normal(sub, (64, 8))
        y = jnp.sin(x[:, :3].sum(axis=1, keepdims=True))
        params, opt_state, loss, update_norm = train_step(params, opt_state, x, y)
        monitor.update(float(update_norm))
        if monitor.ready and step % monitor.stride == 0:
            alpha, regime = monitor.alpha, monitor.regime
            print(f"step {step:5d}  loss {float(loss):.4f}  α={alpha:.3f}  {regime}")
    print(f"final: {monitor}")


if __name__ == "__main__":
    main()
