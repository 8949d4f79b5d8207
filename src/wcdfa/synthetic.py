"""Synthetic signals with known scaling exponents, for validating DFA.

For DFA-1, fractional Gaussian noise (fGn) with Hurst exponent H has α = H, its
cumulative sum, fractional Brownian motion (fBm), has α = H + 1, and 1/f (pink) noise
has α = 1.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from wcdfa._checks import check_int, check_real

__all__ = ["fbm", "fgn", "pink"]


def fgn(n: int, hurst: float, rng: Any = None) -> NDArray[np.float64]:
    r"""Exact fractional Gaussian noise by circulant embedding (Davies–Harte).

    Parameters
    ----------
    n : int
        Number of samples, at least 2.
    hurst : float
        Hurst exponent, strictly between 0 and 1 (0.5: white noise).
    rng : numpy.random.Generator, int or None
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        ``n`` samples of zero mean and unit variance with autocovariance
        :math:`\gamma(k) = \tfrac12(|k+1|^{2H} - 2|k|^{2H} + |k-1|^{2H})`.

    Notes
    -----
    The autocovariance is embedded in a circulant matrix of size :math:`2n`, whose
    eigenvalues (an FFT of its first row) are non-negative for fGn at every
    :math:`H`; a complex Gaussian vector scaled by their square roots and
    transformed back has exactly the wanted covariance in its first :math:`n` samples.

    References
    ----------
    .. [1] R. B. Davies and D. S. Harte, "Tests for Hurst effect", Biometrika 74,
       95-101 (1987).
    .. [2] C. R. Dietrich and G. N. Newsam, "Fast and exact simulation of stationary
       Gaussian processes through circulant embedding of the covariance matrix",
       SIAM J. Sci. Comput. 18, 1088-1107 (1997).

    Examples
    --------
    >>> from wcdfa.synthetic import fgn
    >>> x = fgn(1000, 0.7, rng=0)
    >>> x.shape, round(float(x.std()), 1)
    ((1000,), 1.0)
    """
    n = check_int("n", n, 2)
    out: NDArray[np.float64] = fgn_batch(n, _check_hurst(hurst), 1, np.random.default_rng(rng))[0]
    return out


def fbm(n: int, hurst: float, rng: Any = None) -> NDArray[np.float64]:
    """Fractional Brownian motion: the cumulative sum of :func:`fgn`.

    Parameters
    ----------
    n : int
        Number of samples, at least 2.
    hurst : float
        Hurst exponent, strictly between 0 and 1 (0.5: a random walk).
    rng : numpy.random.Generator, int or None
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        ``n`` samples; DFA-1 gives α ≈ ``hurst + 1``.

    Examples
    --------
    >>> from wcdfa.synthetic import fbm
    >>> fbm(500, 0.5, rng=1).shape
    (500,)
    """
    return np.cumsum(fgn(n, hurst, rng))


def pink(n: int, rng: Any = None) -> NDArray[np.float64]:
    """1/f noise by spectral synthesis: power spectral density proportional to 1/f.

    Parameters
    ----------
    n : int
        Number of samples, at least 2.
    rng : numpy.random.Generator, int or None
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        ``n`` samples of zero mean and unit variance; DFA-1 gives α ≈ 1.

    Notes
    -----
    Every Fourier coefficient but the mean is an independent complex Gaussian with
    variance proportional to :math:`1/f`, so the result is a Gaussian process with
    that spectrum (periodic over the ``n`` samples).

    Examples
    --------
    >>> from wcdfa.synthetic import pink
    >>> pink(1024, rng=2).shape
    (1024,)
    """
    n = check_int("n", n, 2)
    out: NDArray[np.float64] = power_law_batch(n, 1.0, 1, np.random.default_rng(rng))[0]
    return out


def _check_hurst(hurst: Any) -> float:
    h = check_real("hurst", hurst)
    if not 0.0 < h < 1.0:
        msg = f"Argument `hurst` must be strictly between 0 and 1, but got {hurst!r}"
        raise ValueError(msg)
    return h


@functools.lru_cache(maxsize=64)
def _circulant_sqrt_eigenvalues(n: int, hurst: float) -> NDArray[np.float64]:
    k = np.arange(n + 1, dtype=np.float64)
    two_h = 2.0 * hurst
    gamma = 0.5 * (np.abs(k + 1) ** two_h - 2.0 * k**two_h + np.abs(k - 1) ** two_h)
    row = np.concatenate([gamma, gamma[-2:0:-1]])  # length 2n
    eig = np.fft.fft(row).real
    # Non-negative in theory for fGn; clip rounding below zero.
    out = np.sqrt(np.clip(eig, 0.0, None) / row.size)
    out.flags.writeable = False
    return out


def fgn_batch(n: int, hurst: float, size: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``size`` independent fGn series of length ``n`` (rows)."""
    if hurst == 0.5:
        return rng.standard_normal((size, n))
    scale = _circulant_sqrt_eigenvalues(n, hurst)
    half = (size + 1) // 2  # real and imaginary parts are two independent series
    w = rng.standard_normal((half, 2 * n)) + 1j * rng.standard_normal((half, 2 * n))
    y = np.fft.fft(scale * w, axis=-1)[:, :n]
    return np.concatenate([y.real, y.imag])[:size]


def power_law_batch(
    n: int, beta: float, size: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``size`` Gaussian series with power spectral density proportional to f^-beta."""
    freqs = np.fft.rfftfreq(n)
    amp = np.zeros_like(freqs)
    amp[1:] = freqs[1:] ** (-beta / 2.0)
    shape = (size, freqs.size)
    coef = amp * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    if n % 2 == 0:  # the Nyquist coefficient of a real series is real
        coef[:, -1] = coef[:, -1].real * np.sqrt(2.0)
    x = np.fft.irfft(coef, n=n, axis=-1)
    return np.asarray(x / x.std(axis=-1, keepdims=True))
