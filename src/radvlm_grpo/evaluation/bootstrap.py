"""Bootstrap 95% intervals for corpus-level metrics, with every resample recomputing the metric from its pairs.

Every metric of the evaluation is a function of per-sample *additive* statistics: a mean is (sum, count); corpus BLEU
is (clipped n-gram matches, n-gram counts, lengths); CheXbert micro/macro F1 is per-condition (TP, FP, FN); average
IoU is (IoU sum, pair count). A :class:`Statistic` holds those per-sample rows and the function that turns their sum
into the metric. A bootstrap resample of the (prediction, reference) pairs is then a vector of multiplicities, the
resampled sums are one matrix product, and 2,000 resamples of a 3,000-report test set cost milliseconds, while giving
exactly the value a full recomputation on the resampled pairs would give.

As the authors' ``bootstrap.py`` (method.md 4.2): 2,000 resamples, numpy's default generator seeded with 0, percentile
intervals. All statistics of one sample set share the same resamples, so their intervals come from paired draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

N_RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95
_CHUNK = 250  # resamples per batch: bounds memory at CHUNK x n multiplicities

Finalize = Callable[[np.ndarray], np.ndarray]


@dataclass
class Statistic:
    """A corpus-level metric: ``finalize(samples[rows].sum(0))``, vectorised over leading axes of its argument."""

    name: str
    samples: np.ndarray  # (n, k) additive per-sample statistics
    finalize: Finalize
    per_sample: np.ndarray | None = None  # each sample's own score, when the metric is a mean of them

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples, dtype=np.float64)
        if self.samples.ndim == 1:
            self.samples = self.samples[:, None]
        if self.samples.ndim != 2:
            raise ValueError(f"{self.name}: per-sample statistics must be (n, k); got shape {self.samples.shape}.")

    def __len__(self) -> int:
        return len(self.samples)

    def value(self) -> float:
        return float(self.finalize(self.samples.sum(axis=0)))

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """The metric under each row of resample multiplicities ``counts`` (r, n)."""
        return np.asarray(self.finalize(counts @ self.samples), dtype=np.float64)


def ratio_of_sums(sums: np.ndarray) -> np.ndarray:
    """`sums[..., 0] / sums[..., 1]`, 0 where the denominator is 0: the finaliser of means and pooled averages."""
    num, den = sums[..., 0], sums[..., 1]
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def mean_statistic(name: str, values: Sequence[float]) -> Statistic:
    """The mean of per-sample values; non-finite values (a scorer that returned nothing) are left out of the mean."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    samples = np.stack([np.where(finite, values, 0.0), finite.astype(np.float64)], axis=1)
    return Statistic(name, samples, ratio_of_sums, per_sample=values)


def ratio_statistic(name: str, numerators: Sequence[float], denominators: Sequence[float]) -> Statistic:
    """``sum(numerators) / sum(denominators)`` (0 when the denominator is 0): pooled averages such as RadVLM's IoU."""
    return Statistic(
        name, np.stack([np.asarray(numerators, float), np.asarray(denominators, float)], axis=1), ratio_of_sums
    )


@dataclass
class Interval:
    """A point estimate with its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    n: int
    confidence: float = CONFIDENCE
    n_resamples: int = N_RESAMPLES

    def to_dict(self) -> dict:
        return asdict(self)


def resample_indices(n: int, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
    """The pairs each resample draws (with replacement), in chunks of shape (<= 250, n).

    ``rng = np.random.default_rng(seed)`` draws ``rng.integers(0, n, size=(chunk, n))`` per chunk, so the resamples
    depend only on ``n``, ``n_resamples`` and ``seed``.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, _CHUNK):
        yield rng.integers(0, n, size=(min(_CHUNK, n_resamples - start), n))


def counts_of(indices: np.ndarray, n: int) -> np.ndarray:
    """How many times each of ``n`` pairs occurs in each resample: (r, n) multiplicities from (r, n) indices."""
    rows = len(indices)
    flat = (indices + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)


def bootstrap(
    statistics: Sequence[Statistic],
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, Interval]:
    """Point estimates and percentile intervals of statistics computed on the same ``n`` pairs (paired resamples)."""
    if not statistics:
        return {}
    n = len(statistics[0])
    if any(len(s) != n for s in statistics):
        raise ValueError("Every statistic of one bootstrap must cover the same samples.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}.")
    if n == 0:
        nan = float("nan")
        return {s.name: Interval(nan, nan, nan, 0, confidence, n_resamples) for s in statistics}
    draws: dict[str, list[np.ndarray]] = {s.name: [] for s in statistics}
    for indices in resample_indices(n, n_resamples, seed):
        counts = counts_of(indices, n)
        for s in statistics:
            draws[s.name].append(s.resampled(counts))
    tail = 100 * (1 - confidence) / 2
    results = {}
    for s in statistics:
        values = np.concatenate(draws[s.name])
        low, high = np.nanpercentile(values, [tail, 100 - tail]) if np.isfinite(values).any() else (np.nan, np.nan)
        results[s.name] = Interval(s.value(), float(low), float(high), n, confidence, n_resamples)
    return results
