r"""What a layer's eigenvalue spectrum says: one :class:`LayerSpectrum` per weight matrix.

For a weight matrix :math:`W` (:math:`N \times M`, :math:`N \ge M`) the eigenvalues are
:math:`\lambda_i = \sigma_i^2`, the squared singular values of :math:`W` (for a
convolution, of the scaled per-kernel-position matrices, pooled); this is
weightwatcher's convention (no :math:`1/N`). From them:

- the power-law fit of the tail (:func:`wcdfa.spectral.fit_power_law`): ``alpha``,
  ``xmin``, ``D``, ``sigma``, ``num_tail``;
- ``alpha_hat`` :math:`= \alpha \log_{10} \lambda_{max}` (weightwatcher's
  ``alpha_weighted``);
- ``log_norm`` :math:`= \log_{10} \sum_i \lambda_i = \log_{10} \|W\|_F^2` and
  ``log_spectral_norm`` :math:`= \log_{10} \lambda_{max} = \log_{10} \|W\|_2^2`
  (weightwatcher's ``log_norm`` and ``log_spectral_norm``: norms of the squared
  singular values), ``log_alpha_norm`` :math:`= \log_{10} \sum_i \lambda_i^\alpha`;
- ``stable_rank`` :math:`= \sum_i \lambda_i / \lambda_{max}`;
- ``entropy``: the matrix entropy :math:`-\sum_i p_i \log p_i / \log r` with
  :math:`p_i = \lambda_i / \sum_j \lambda_j + 10^{-10}` and :math:`r` the numerical rank;
- ``detx_num``: the tail size of SETOL's TRACE-LOG condition
  (:func:`wcdfa.spectral.detx_count`) and ``detx_gap`` = ``detx_num - num_tail``.

``warning`` says ``"over-trained"`` (α < 2), ``"under-trained"`` (α > 6), ``"few
eigenvalues"`` (fewer than 20 above the threshold: the small-sample fit), or ``"fit
failed: ..."`` (then the fitted fields are NaN); several are joined by ``"; "``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from wcdfa.spectral.fit import SMALL_N, detx_count, fit_power_law

__all__ = [
    "OVER_TRAINED",
    "UNDER_TRAINED",
    "LayerSpectrum",
    "SpectralAnalysis",
    "format_table",
    "layer_spectrum",
]

OVER_TRAINED = 2.0
"""Below this α a layer is flagged over-trained (HTSR; weightwatcher's bound)."""

UNDER_TRAINED = 6.0
"""Above this α a layer is flagged under-trained (HTSR; weightwatcher's bound)."""

_ENTROPY_EPSILON = 1e-10
_RANK_EPS = float(np.finfo(np.float64).eps)

_FIELDS_IN_TABLE = (
    ("name", "{}"),
    ("shape", "{}"),
    ("num_evals", "{:d}"),
    ("alpha", "{:.3f}"),
    ("xmin", "{:.4g}"),
    ("D", "{:.3f}"),
    ("num_tail", "{:d}"),
    ("alpha_hat", "{:.3f}"),
    ("log_norm", "{:.3f}"),
    ("log_spectral_norm", "{:.3f}"),
    ("stable_rank", "{:.1f}"),
    ("entropy", "{:.3f}"),
    ("detx_num", "{:d}"),
    ("warning", "{}"),
)


@dataclasses.dataclass(frozen=True)
class LayerSpectrum:
    """The spectral reading of one weight matrix (see the module for each quantity).

    ``evals`` (sorted, every eigenvalue) is kept for plots and left out of
    :meth:`as_dict`, ``repr`` and comparisons.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    N: int
    M: int
    rf: int
    num_evals: int
    alpha: float
    xmin: float
    D: float
    sigma: float
    num_tail: int
    lambda_max: float
    alpha_hat: float
    log_norm: float
    log_spectral_norm: float
    log_alpha_norm: float
    stable_rank: float
    entropy: float
    detx_num: int
    detx_gap: int
    warning: str
    evals: np.ndarray = dataclasses.field(repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """Return every field but ``evals`` as plain Python values."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del out["evals"]
        out["shape"] = list(self.shape)
        return out


def layer_spectrum(
    evals: Any,
    *,
    name: str = "",
    kind: str = "matrix",
    shape: Sequence[int] = (),
    N: int | None = None,
    M: int | None = None,
    rf: int = 1,
    detx: bool = True,
    bounds: tuple[float, float] = (OVER_TRAINED, UNDER_TRAINED),
) -> LayerSpectrum:
    r"""Read a layer's eigenvalues: the power-law fit and the other ESD quantities.

    Parameters
    ----------
    evals : array_like
        Every eigenvalue :math:`\lambda = \sigma^2` of the layer (tiny negative values
        from a Gram matrix are read as 0).
    name, kind, shape : str, str, sequence of int
        What the record says the layer is.
    N, M : int, optional
        The matrix's larger and smaller dimension (default: ``len(evals)`` for both);
        ``N`` sets the tolerance of the numerical rank in ``entropy``.
    rf : int, default 1
        Kernel positions pooled into ``evals`` (convolutions).
    detx : bool, default True
        Compute ``detx_num`` and ``detx_gap`` (-1 otherwise).
    bounds : (float, float), default (2.0, 6.0)
        α below the first is flagged over-trained, above the second under-trained.

    Returns
    -------
    LayerSpectrum

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal((400, 200)) / np.sqrt(400)
    >>> spectrum = layer_spectrum(np.linalg.eigvalsh(w.T @ w), name="fc", shape=w.shape)
    >>> spectrum.num_evals, spectrum.warning
    (200, 'under-trained')
    """
    values = np.sort(np.maximum(np.asarray(evals, dtype=np.float64).ravel(), 0.0))
    count = values.size
    n_dim = count if N is None else int(N)
    m_dim = count if M is None else int(M)
    warnings: list[str] = []
    nan = float("nan")
    alpha = xmin = dist = sigma = nan
    num_tail = 0
    if count == 0 or not np.all(np.isfinite(values)):
        warnings.append("fit failed: no eigenvalues" if count == 0 else "fit failed: non-finite")
    else:
        try:
            fit = fit_power_law(values)
        except ValueError as exc:
            warnings.append(f"fit failed: {exc}")
        else:
            alpha, xmin, dist, sigma, num_tail = fit.alpha, fit.xmin, fit.D, fit.sigma, fit.num_tail
            if fit.num_evals < SMALL_N:
                warnings.append("few eigenvalues")
            if alpha < bounds[0]:
                warnings.insert(0, "over-trained")
            elif alpha > bounds[1]:
                warnings.insert(0, "under-trained")
    lam_max = float(values[-1]) if count else nan
    total = float(values.sum()) if count else nan
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_spectral = float(np.log10(lam_max)) if count else nan
        alpha_norm = float(np.log10(np.sum(values**alpha))) if np.isfinite(alpha) else nan
        log_norm = float(np.log10(total)) if count else nan
        stable = total / lam_max if count and lam_max > 0 else nan
    detx_num = detx_count(values) if detx and count else -1
    return LayerSpectrum(
        name=name,
        kind=kind,
        shape=tuple(int(s) for s in shape),
        N=n_dim,
        M=m_dim,
        rf=int(rf),
        num_evals=count,
        alpha=alpha,
        xmin=xmin,
        D=dist,
        sigma=sigma,
        num_tail=num_tail,
        lambda_max=lam_max,
        alpha_hat=alpha * log_spectral,
        log_norm=log_norm,
        log_spectral_norm=log_spectral,
        log_alpha_norm=alpha_norm,
        stable_rank=stable,
        entropy=_matrix_entropy(values, n_dim),
        detx_num=detx_num,
        detx_gap=detx_num - num_tail if detx and np.isfinite(alpha) else -1,
        warning="; ".join(warnings),
        evals=values,
    )


def _matrix_entropy(values: np.ndarray, n_dim: int) -> float:
    r"""Normalised entropy of :math:`p_i \propto \lambda_i`, by the log of the numerical rank.

    weightwatcher counts singular values above :math:`\sigma_{max} N \epsilon`; from a
    Gram matrix a zero singular value reads as about :math:`\sqrt{M\epsilon}\,
    \sigma_{max}`, so the rank here counts :math:`\lambda > \lambda_{max} N \epsilon`
    (:math:`\sigma > \sigma_{max}\sqrt{N\epsilon}`): the same rank for every matrix
    without singular values between those two levels (:math:`10^{-13}` and
    :math:`10^{-7}` of the largest).
    """
    if values.size == 0 or not values[-1] > 0:
        return float("nan")
    rank = float(np.count_nonzero(values > values[-1] * n_dim * _RANK_EPS))
    p = values / values.sum() + _ENTROPY_EPSILON
    rank += _ENTROPY_EPSILON
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.sum(p * np.log(p)) / np.log(rank))


def format_table(records: Iterable[LayerSpectrum]) -> str:
    """Return the records as an aligned text table, one row per layer."""
    rows = [[name for name, _ in _FIELDS_IN_TABLE]]
    for record in records:
        row = []
        for field, form in _FIELDS_IN_TABLE:
            value = getattr(record, field)
            if field == "shape":
                value = "x".join(map(str, value))
            if isinstance(value, float) and not np.isfinite(value):
                row.append("nan")
            else:
                row.append(form.format(value))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)) for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


_SUMMARY_FIELDS = (
    "alpha",
    "alpha_hat",
    "log_norm",
    "log_spectral_norm",
    "log_alpha_norm",
    "stable_rank",
    "entropy",
)


@dataclasses.dataclass(frozen=True)
class SpectralAnalysis:
    """The readings of every analysed layer, in model order: ``analyze``'s result.

    Iterate over it, index it by position or layer name, ``print`` it (a table), or
    take :meth:`as_dicts` (a ``pandas.DataFrame(result.as_dicts())`` away from
    weightwatcher's ``details``) and :meth:`summary`.
    """

    layers: tuple[LayerSpectrum, ...]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Any:
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> LayerSpectrum:
        """Return a layer's reading by position or by name."""
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            msg = f"No analysed layer named {key!r}; the layers are {self.names}"
            raise KeyError(msg)
        return self.layers[key]

    @property
    def names(self) -> list[str]:
        """The analysed layers' names, in order."""
        return [layer.name for layer in self.layers]

    def as_dicts(self) -> list[dict[str, Any]]:
        """Return one plain dict per layer (:meth:`LayerSpectrum.as_dict`)."""
        return [layer.as_dict() for layer in self.layers]

    def summary(self) -> dict[str, float]:
        """Return the mean of each quantity over the layers where it is finite.

        ``alpha_weighted`` is the mean ``alpha_hat`` (weightwatcher's summary name).
        """
        out: dict[str, float] = {}
        for field in _SUMMARY_FIELDS:
            values = np.array([getattr(layer, field) for layer in self.layers], dtype=float)
            values = values[np.isfinite(values)]
            key = "alpha_weighted" if field == "alpha_hat" else field
            out[key] = float(values.mean()) if values.size else float("nan")
        return out

    def table(self) -> str:
        """Return the aligned text table (also what ``print`` shows)."""
        return format_table(self.layers)

    def __str__(self) -> str:
        return self.table()
