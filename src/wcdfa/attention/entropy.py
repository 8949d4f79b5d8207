r"""Normalised attention entropy of each head (numpy reference).

For a query row with attention probabilities :math:`p_k` over its valid keys
:math:`k \in V` (:math:`|V| \ge 2`), the normalised entropy is

.. math:: h = -\sum_{k \in V} p_k \log p_k \,/\, \log |V| ,

1 for uniform attention and 0 for attention on a single key; masked keys and padding
never count. A head's entropy is the mean of :math:`h` over the valid query rows of the
probe batch: rows whose query is padding, and rows with fewer than two valid keys (the
first query under a causal mask), are left out. The torch reduction the probes run
inside their hooks (:func:`wcdfa.attention.capture.reduce_entropy`) computes the same
numbers; this is the slow, direct oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["head_entropies"]


def head_entropies(probs: Any, valid_keys: Any = None, valid_queries: Any = None) -> np.ndarray:
    """Return each head's mean normalised entropy, shape ``(heads,)``.

    Parameters
    ----------
    probs : array_like, shape (batch, heads, queries, keys)
        Attention probabilities (each valid row sums to 1).
    valid_keys : array_like of bool, optional
        Broadcastable to ``(batch, queries, keys)``: True where a key may be attended.
        Default: every key.
    valid_queries : array_like of bool, optional
        Broadcastable to ``(batch, queries)``: True where a query is real (not padding).
        Default: in self-attention (as many queries as keys) a position whose key no
        query may attend is padding; otherwise every query is real.

    Returns
    -------
    numpy.ndarray
        NaN for a head with no valid query row.

    Examples
    --------
    >>> import numpy as np
    >>> uniform = np.full((1, 1, 3, 4), 0.25)
    >>> one_hot = np.zeros((1, 1, 3, 4)); one_hot[..., 2] = 1.0
    >>> head_entropies(uniform), head_entropies(one_hot)
    (array([1.]), array([0.]))
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 4:
        msg = f"Argument `probs` must have shape (batch, heads, queries, keys), but got {p.shape}"
        raise ValueError(msg)
    batch, heads, queries, keys = p.shape
    keys_ok: np.ndarray = np.ones((batch, queries, keys), bool)
    if valid_keys is not None:
        keys_ok = np.broadcast_to(np.asarray(valid_keys, bool), (batch, queries, keys))
    rows_ok: np.ndarray = np.ones((batch, queries), bool)
    if valid_queries is None and queries == keys:  # self-attention: keys never seen are padding
        rows_ok = np.asarray(keys_ok.any(axis=1))
    elif valid_queries is not None:
        rows_ok = np.broadcast_to(np.asarray(valid_queries, bool), (batch, queries))
    out = np.full(heads, np.nan)
    for h in range(heads):
        values = []
        for b in range(batch):
            for q in range(queries):
                support = keys_ok[b, q]
                n = int(support.sum())
                if not rows_ok[b, q] or n < 2:
                    continue
                row = p[b, h, q][support]
                row = row[row > 0]
                values.append(float(-(row * np.log(row)).sum() / np.log(n)))
        if values:
            out[h] = float(np.mean(values))
    return out
