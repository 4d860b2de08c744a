"""Statistics of a study: mean ± std over seeds, curves averaged point by point, TensorBoard's
smoothing, the best evaluation of a run, the mean singular-value spectrum of a group and how
unusual a curve's change is at given steps (resumes)."""
import math

import numpy as np

from sngan_tf.study.runs import natural_key


def summarize_metric(epochs, values, higher_better=False):
    """Returns (final value, best value, epoch of best); ties keep the earliest evaluation.

    Args:
      epochs, values: one evaluation per entry, ordered by step.
      higher_better: whether the best value is the largest rather than the smallest.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return (values[-1] if len(values) else None), None, None
    masked = np.where(finite, values, -np.inf if higher_better else np.inf)
    best = int(np.argmax(masked) if higher_better else np.argmin(masked))
    return float(values[-1]), float(values[best]), float(epochs[best])


def ema_smooth(values, weight=0.9):
    """TensorBoard's scalar smoothing: an exponential moving average with debiasing.

    s_t = (w * m_{t-1} + (1 - w) * x_t) / (1 - w^t), with m the un-debiased average, so the first
    point is not pulled towards zero. Non-finite values pass through and do not update the average,
    as in TensorBoard.

    Args:
      values: 1-D sequence of raw values.
      weight: smoothing weight w in [0, 1); 0 returns the raw curve.

    Returns:
      A float64 numpy array of the same length.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    last, count = 0.0, 0
    for i, x in enumerate(values):
        if not np.isfinite(x):
            out[i] = x
            continue
        last = last * weight + (1.0 - weight) * x
        count += 1
        out[i] = last / (1.0 - weight ** count) if weight > 0 else last
    return out


def change_shares(steps, values, starts, window=5):
    """How unusual the change of a logged scalar is at each of `starts` (resume steps, say).

    The change at a point is |mean of the `window` values from it - mean of the `window`
    before it|; each start's share is the fraction of the other points whose change is at
    least as large. A jump shows as a share near 0; without one the shares spread over
    [0, 1] (1 in 20 at most 0.05 by chance). None where a start lacks `window` values on
    either side.
    """
    steps, values = np.asarray(steps), np.asarray(values, dtype=np.float64)
    if len(values) < 2 * window:
        return [None] * len(starts)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    points = np.arange(window, len(values) - window + 1)
    change = np.abs(sums[points + window] - 2 * sums[points] + sums[points - window]) / window
    at = np.searchsorted(steps, starts)
    others = change[~np.isin(points, at)]
    shares = []
    for i in at:
        inside = window <= i <= len(values) - window and len(others)
        shares.append(float(np.mean(others >= change[i - window])) if inside else None)
    return shares


def mean_std(values):
    """Mean and standard deviation (ddof 1, the sample std) of the finite values.

    Returns:
      (mean, std, n): n the number of finite values; std is nan when n < 2 and mean is nan
      when n == 0.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    std = float(np.std(values, ddof=1)) if n >= 2 else math.nan
    return float(np.mean(values)), std, n


def mean_band(series):
    """Averages curves of several seeds point by point: the line and ±1 std band of a figure.

    Args:
      series: one (x, y) pair of 1-D arrays per seed; the x values need not be shared (a
        seed still training has fewer points).

    Returns:
      (x, mean, std, count) numpy arrays: x the sorted union of the x values; mean and std
      (ddof 1) over the seeds with a finite y at that x; std is nan where count < 2.
    """
    series = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
              for x, y in series]
    if not series:
        empty = np.zeros(0)
        return empty, empty, empty, np.zeros(0, dtype=np.int64)
    xs = np.unique(np.concatenate([x for x, _ in series]))
    table = np.full((len(series), len(xs)), np.nan)
    for i, (x, y) in enumerate(series):
        table[i, np.searchsorted(xs, x)] = y
    finite = np.isfinite(table)
    count = finite.sum(axis=0)
    total = np.where(finite, table, 0.0).sum(axis=0)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    squares = np.where(finite, (table - mean) ** 2, 0.0).sum(axis=0)
    std = np.where(count >= 2, np.sqrt(squares / np.maximum(count - 1, 1)), np.nan)
    return xs, mean, std, count


def mean_spectra(group):
    """Per layer, the mean over seeds of the singular values scaled to a largest value of 1.

    Returns:
      {layer: (scaled mean spectrum, mean largest singular value, number of seeds)}; a seed
      whose spectrum has another length than the first seed's is left out.
    """
    out = {}
    layers = []
    for run in group.runs:
        layers += [k for k in run.spectra if k not in layers]
    for layer in sorted(layers, key=natural_key):
        spectra = [r.spectra[layer] for r in group.runs if layer in r.spectra]
        spectra = [s for s in spectra if len(s) == len(spectra[0]) and s[0] > 0]
        if not spectra:
            continue
        scaled = np.mean([s / s[0] for s in spectra], axis=0)
        out[layer] = (scaled, float(np.mean([s[0] for s in spectra])), len(spectra))
    return out

