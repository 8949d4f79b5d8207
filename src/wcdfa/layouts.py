"""Where DFA puts its boxes, and the kernels that detrend them all at once.

Four layouts, each the convention of a reference implementation (docs/validation.md):

- ``"both"``: the ``n // s`` non-overlapping boxes from the start and as many from the
  end (wcdfa 0.1.0, MFDFA, fathon with ``revSeg=True``);
- ``"forward"``: the ``n // s`` non-overlapping boxes from the start only (PhysioNet's
  ``dfa``, nolds with ``overlap=False``, fathon with ``revSeg=False``);
- ``"overlap"``: boxes starting at ``0, h, 2h, ...`` with ``h = s // 2``, for every
  start ``< n - s`` (nolds' default; like nolds, no box ends exactly at the last
  sample);
- ``"sliding"``: a box at every start ``0 .. n - s`` (PhysioNet's ``-s`` option).

No kernel loops over boxes in Python. Residuals are formed explicitly (never as a
difference of global sums of squares), also for the sliding layout's small boxes
(up to ``SLIDING_EXPLICIT_MAX``); for its larger boxes, ``s`` times more than the
other layouts have, the sliding kernel works segment by segment on a locally
detrended profile so that its running sums stay local (F(s) within 1e-10 of an
80-bit computation on doubly integrated noise, tests/test_layouts.py).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

__all__ = [
    "LAYOUTS",
    "Plan",
    "box_count",
    "box_starts",
    "fluctuations",
    "make_plan",
    "trend_basis",
]

LAYOUTS = ("both", "forward", "overlap", "sliding")
"""The box layouts :func:`wcdfa.dfa` accepts as ``boxes=``."""


def box_starts(n: int, s: int, layout: str) -> NDArray[np.intp]:
    """First index of every box of size ``s`` in a profile of ``n`` samples."""
    if layout == "sliding":
        return np.arange(n - s + 1, dtype=np.intp)
    if layout == "overlap":
        return np.arange(0, n - s, s // 2, dtype=np.intp)
    m = n // s
    forward = np.arange(m, dtype=np.intp) * s
    if layout == "forward":
        return forward
    return np.concatenate([forward, forward + (n - m * s)])


def box_count(n: int, s: int, layout: str) -> int:
    """Count the boxes of size ``s`` (``box_starts(n, s, layout).size``, computed)."""
    if layout == "sliding":
        return n - s + 1
    if layout == "overlap":
        return max(0, -(-(n - s) // (s // 2)))
    return (1 if layout == "forward" else 2) * (n // s)


@functools.lru_cache(maxsize=256)
def trend_basis(s: int, order: int, constant: bool = False) -> NDArray[np.float64]:
    """Orthonormal polynomial basis on a box of ``s`` points, shape ``(s, order)``.

    Degrees 1..order, orthogonal to the constants (whose part is removed separately
    as the box mean); with ``constant`` the degree-0 column is included first.
    """
    t = (np.arange(s) - (s - 1) / 2.0) / s
    vander = np.vander(t, order + 1, increasing=True)
    q = np.linalg.qr(vander)[0]
    if not constant:
        q = q[:, 1:]
    q = np.ascontiguousarray(q)
    q.flags.writeable = False
    return q


class Plan(NamedTuple):
    """Every box of every scale laid end to end (short signals: one gather)."""

    take: NDArray[np.intp]  # positions in y of the laid-out elements
    basis: NDArray[np.float64]  # (order, elements): trend basis value of each element
    length: NDArray[np.intp]  # length of each box
    box_start: NDArray[np.intp]  # first element of each box in the laid-out array
    inv_len: NDArray[np.float64]  # 1 / box length
    scale_start: NDArray[np.intp]  # first box of each scale
    inv_boxes: NDArray[np.float64]  # 1 / number of boxes of each scale


def make_plan(n: int, scales: NDArray[np.int64], order: int, layout: str) -> Plan:
    """Lay out (once per length, scales, order and layout) all boxes of all scales."""
    starts = [box_starts(n, s, layout) for s in scales.tolist()]
    index = np.concatenate(
        [
            (st[:, None] + np.arange(s)).ravel()
            for s, st in zip(scales.tolist(), starts, strict=True)
        ]
    )
    basis = np.concatenate(
        [
            np.tile(trend_basis(s, order).T, st.size)
            for s, st in zip(scales.tolist(), starts, strict=True)
        ],
        axis=1,
    )
    n_boxes = np.array([st.size for st in starts])
    length = np.repeat(scales, n_boxes).astype(np.intp)
    plan = Plan(
        take=index.astype(np.intp),
        basis=basis,
        length=length,
        box_start=np.cumsum(length) - length,
        inv_len=1.0 / length,
        scale_start=(np.cumsum(n_boxes) - n_boxes).astype(np.intp),
        inv_boxes=1.0 / n_boxes,
    )
    for arr in plan:
        arr.flags.writeable = False
    return plan


def fluctuations(
    y: NDArray[np.float64],
    scales: NDArray[np.int64],
    plan: Plan | None,
    order: int,
    aggregate: str,
    layout: str = "both",
) -> NDArray[np.float64]:
    """F(s) of the profile(s) ``y`` (shape (n,) or (batch, n)) at each scale."""
    if plan is not None:
        rss = _box_rss_gather(y, plan)  # (..., boxes)
        per_box = rss * plan.inv_len
        sums = np.add.reduceat(
            np.sqrt(per_box) if aggregate == "mean" else per_box, plan.scale_start, axis=-1
        )
        out = sums * plan.inv_boxes
    else:
        out = np.empty((*y.shape[:-1], scales.size))
        for i, s in enumerate(scales.tolist()):
            var = _box_variances(y, s, order, layout)  # list of (..., boxes) arrays
            total = sum((np.sqrt(v) if aggregate == "mean" else v).sum(axis=-1) for v in var)
            out[..., i] = total / sum(v.shape[-1] for v in var)
    return np.asarray(out if aggregate == "mean" else np.sqrt(out))


def _box_variances(
    y: NDArray[np.float64], s: int, order: int, layout: str
) -> list[NDArray[np.float64]]:
    """Residual variance of every box of size ``s``, O(n) extra memory (long signals).

    Returned in parts (concatenating them would be a copy): for "both", the boxes from
    the start, then (unless ``n % s == 0``, where they coincide) those from the end.
    """
    n = y.shape[-1]
    lead = y.shape[:-1]
    if layout == "sliding":
        if s <= SLIDING_EXPLICIT_MAX:
            return [_sliding_explicit(y, s, order)]
        return [_sliding_variances(y, s, order)]
    if layout == "overlap":
        count = box_count(n, s, layout)
        parts = [sliding_window_view(y, s, axis=-1)[..., : (count - 1) * (s // 2) + 1 : s // 2, :]]
    else:
        m = n // s
        parts = [y[..., : m * s].reshape(*lead, m, s)]
        if layout == "both" and n % s:
            parts.append(y[..., n - m * s :].reshape(*lead, m, s))
    return [_explicit_variances(boxes, s, order) for boxes in parts]


SLIDING_EXPLICIT_MAX = 12
"""Box sizes up to which the sliding layout forms every residual explicitly.

That costs O(n · s) but is exact and, for small ``s``, faster than the running sums
(measured crossover: s ≈ 15 at n = 500, ≈ 12 at n = 10^5); above it their O(n) wins.
"""

SEGMENT_STARTS = 3
"""Box starts per segment of the sliding kernel, in box lengths."""


def _explicit_variances(boxes: NDArray[np.float64], s: int, order: int) -> NDArray[np.float64]:
    """Residual variance of each row of ``boxes`` (..., count, s): the trend removed explicitly."""
    basis = trend_basis(s, order)
    resid = boxes - boxes.mean(axis=-1, keepdims=True)
    resid -= (boxes @ basis) @ basis.T
    return np.asarray(np.einsum("...ij,...ij->...i", resid, resid) / s)


def _sliding_explicit(y: NDArray[np.float64], s: int, order: int) -> NDArray[np.float64]:
    """Residual variance of the box at every start, each residual formed explicitly.

    Position ``t`` of every box is the contiguous slice ``y[t : t + n - s + 1]``, so
    the box means, the trend coefficients and the residuals are O(s · order) whole-
    array operations, with no gather and no short rows.
    """
    width = y.shape[-1] - s + 1
    rows = [y[..., t : t + width] for t in range(s)]
    basis = trend_basis(s, order)  # (s, order), orthogonal to the constants
    mean = rows[0].copy()
    for row in rows[1:]:
        mean += row
    mean /= s
    term = np.empty_like(mean)  # every product below goes through this one buffer
    coefs = []
    for j in range(order):
        c = rows[0] * basis[0, j]
        for t in range(1, s):
            c += np.multiply(rows[t], basis[t, j], out=term)
        coefs.append(c)
    rss = np.zeros_like(mean)
    resid = np.empty_like(mean)
    for t in range(s):
        np.subtract(rows[t], mean, out=resid)
        for j in range(order):
            np.multiply(coefs[j], basis[t, j], out=term)
            resid -= term
        np.multiply(resid, resid, out=resid)
        rss += resid
    return np.asarray(rss / s)


def _sliding_variances(y: NDArray[np.float64], s: int, order: int) -> NDArray[np.float64]:
    """Residual variance of the box at every start (the sliding layout), O(n · order).

    The boxes are taken in segments: the ``K = SEGMENT_STARTS · s`` boxes starting in
    ``[b K, (b + 1) K)`` all lie in ``y[b K : b K + K + s - 1]``. Each segment is first
    detrended by its own polynomial of the DFA order (which changes no box's residual:
    a box's fit absorbs any polynomial of that degree), so every sum below is of local
    fluctuations only and runs over a few box lengths. Per box, RSS = Σ z² − Σ_j c_j²
    with c_j = Σ_t q_j(t) z(o + t) the coefficients on the orthonormal polynomial basis
    of a box; the c_j of all starts come from running sums of z·v^k inside the segment
    (v the segment coordinate in box lengths) through the exact change of polynomial
    basis of :func:`_moment_weights`.
    """
    n = y.shape[-1]
    lead = y.shape[:-1]
    windows = n - s + 1
    starts = min(windows, SEGMENT_STARTS * s)
    segments = -(-windows // starts)
    span = starts + s - 1
    need = (segments - 1) * starts + span
    if need > n:  # pad (edge values: finite, of the profile's scale); boxes past the end are cut
        y = np.pad(y, [(0, 0)] * len(lead) + [(0, need - n)], mode="edge")
    seg = sliding_window_view(y, span, axis=-1)[..., ::starts, :]  # (..., segments, span)
    q_span = trend_basis(span, order, constant=True)
    powers, weights = _moment_weights(s, order, starts)  # (order+1, span), (order+1, order+1, K)
    rss = np.empty((*lead, segments, starts))
    # a few segments at a time: the temporaries stay cache-sized (and off fresh pages)
    per_segment = math.prod(lead) * (order + 2) * (span + 1)
    step = max(1, _SEGMENT_CHUNK_ELEMENTS // per_segment)
    for first in range(0, segments, step):
        z = seg[..., first : first + step, :].copy()
        z -= (z @ q_span) @ q_span.T  # each segment detrended
        terms = np.empty((*z.shape[:-1], order + 2, span + 1))
        terms[..., 0] = 0.0
        np.multiply(z, z, out=terms[..., 0, 1:])
        np.multiply(z[..., None, :], powers, out=terms[..., 1:, 1:])
        np.cumsum(terms, axis=-1, out=terms)
        sums = terms[..., s : s + starts] - terms[..., :starts]  # (..., chunk, order + 2, K)
        coef = np.einsum("jko,...ko->...jo", weights, sums[..., 1:, :])
        rss[..., first : first + step, :] = sums[..., 0, :] - np.einsum(
            "...jo,...jo->...o", coef, coef
        )
    out = rss.reshape(*lead, segments * starts)[..., :windows]
    return np.asarray(np.maximum(out, 0.0) / s)


_SEGMENT_CHUNK_ELEMENTS = 1 << 15
"""Running-sum elements the sliding kernel handles per chunk of segments (256 KiB)."""


@functools.lru_cache(maxsize=256)
def _moment_weights(
    s: int, order: int, starts: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Powers v^k of the segment coordinate and the weights turning moments into c_j.

    In a segment of ``span = starts + s - 1`` points, v = (u − (span − 1)/2) / s. The
    box starting at ``o`` has box coordinate τ = (t − (s − 1)/2) / s = v − d_o with
    d_o = (o + (s − 1)/2 − (span − 1)/2) / s, and its orthonormal basis is
    q_j(τ) = Σ_i B_ij τ^i (B = R⁻¹ of the QR factorisation that defines
    :func:`trend_basis`). Expanding τ^i = Σ_k C(i, k) (−d_o)^(i−k) v^k gives
    c_j(o) = Σ_k W[j, k, o] Σ_box z v^k.
    """
    span = starts + s - 1
    tau = (np.arange(s) - (s - 1) / 2.0) / s
    inv_r = np.linalg.inv(np.linalg.qr(np.vander(tau, order + 1, increasing=True))[1])
    shift = -(np.arange(starts) + (s - 1) / 2.0 - (span - 1) / 2.0) / s  # −d_o for every start
    weights = np.zeros((order + 1, order + 1, starts))
    for j in range(order + 1):
        for i in range(j + 1):
            for k in range(i + 1):
                weights[j, k] += inv_r[i, j] * math.comb(i, k) * shift ** (i - k)
    powers = ((np.arange(span) - (span - 1) / 2.0) / s) ** np.arange(order + 1)[:, None]
    for arr in (powers, weights):
        arr.flags.writeable = False
    return powers, weights


def _box_rss_gather(y: NDArray[np.float64], plan: Plan) -> NDArray[np.float64]:
    """Residual sum of squares of every box of every scale in a dozen numpy calls.

    The trend of each box is removed explicitly (its mean, then its projection on the
    orthonormal polynomial basis): never a difference of sums of squares.
    """
    z = y[..., plan.take]
    mean = np.add.reduceat(z, plan.box_start, axis=-1) * plan.inv_len
    coefs = [np.add.reduceat(z * q, plan.box_start, axis=-1) for q in plan.basis]
    z -= np.repeat(mean, plan.length, axis=-1)
    for q, c in zip(plan.basis, coefs, strict=True):
        z -= np.repeat(c, plan.length, axis=-1) * q
    z *= z
    return np.asarray(np.add.reduceat(z, plan.box_start, axis=-1))
