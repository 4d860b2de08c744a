"""Improved precision and recall, density and coverage: k-nearest-neighbour manifolds.

Precision and recall (Kynkäänniemi et al., "Improved Precision and Recall Metric for
Assessing Generative Models", NeurIPS 2019; k = 3) estimate each set's manifold as the union
of balls around its samples, each reaching the sample's k-th nearest neighbour: precision is
the share of generated samples inside the real manifold (quality), recall the share of real
samples inside the generated one (diversity). Density and coverage (Naeem et al., "Reliable
Fidelity and Diversity Metrics for Generative Models", ICML 2020; k = 5) use the real balls
only, which generated outliers cannot inflate: density is the number of real balls holding a
generated sample, averaged and divided by k (about 1 when both sets come from one
distribution); coverage is the share of real balls holding at least one generated sample.

Balls are closed (distance <= radius), as in Kynkäänniemi et al.'s code. Naeem et al.'s
package `prdc` uses open balls (<): the two agree except where a distance equals a radius
exactly, i.e. on duplicated features; a set scored against itself then has density (k + 1) / k
here (each sample lies in its own ball and in k others) and 1 in `prdc`.

Distances are Euclidean, in float64 (as the Fréchet distance of `sngan_tf.eval`), computed
by TensorFlow in blocks of rows against every feature of the other set, each block's
distance matrix at most `max_block_bytes`; 10,000 x 10,000 features never hold all 10^8
distances at once. The real radii do not depend on the generator: `knn_radii` computes
them once, and `sngan_tf.eval` keeps them in its cache beside the FID statistics.
"""
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

PRECISION_RECALL_K = 3  # Kynkäänniemi et al.'s choice
DENSITY_COVERAGE_K = 5  # Naeem et al.'s recommendation
NEAREST_K = (PRECISION_RECALL_K, DENSITY_COVERAGE_K)
METRICS = ("precision", "recall", "density", "coverage")
_K = {"precision": PRECISION_RECALL_K, "recall": PRECISION_RECALL_K,
      "density": DENSITY_COVERAGE_K, "coverage": DENSITY_COVERAGE_K}
# One block's distance matrix: 1,677 rows of 10,000 distances. A block's temporaries (the
# product, the distances, the comparisons) are a few matrices of this size, below 1 GB.
DEFAULT_BLOCK_BYTES = 128 * 2**20

_MATRIX = tf.TensorSpec([None, None], tf.float64)
_VECTOR = tf.TensorSpec([None], tf.float64)


def min_samples(metrics: Sequence[str] = METRICS) -> int:
    """k + 1 for the largest k the metrics use: the fewest samples each set needs."""
    return max(_K[m] for m in metrics) + 1


def check_features(features, name: str, needed: int) -> np.ndarray:
    """`features` as a float64 [N, D] array, or a ValueError naming `name` and the fault.

    Args:
      features: [N, D] features.
      name: what they are, for the message ("real", "generated").
      needed: the fewest rows allowed (k + 1: every sample needs k neighbours).
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} features must be a [N, D] matrix, got shape {features.shape}")
    if features.shape[0] < needed:
        raise ValueError(f"{features.shape[0]} {name} features: fewer than k + 1 = {needed} "
                         f"(the k-th nearest neighbour of a sample needs k others)")
    bad_rows = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if len(bad_rows):
        raise ValueError(f"{name} features are not finite (NaN or infinity) in "
                         f"{len(bad_rows)} of {features.shape[0]} rows, the first row "
                         f"{bad_rows[0]}")
    return features


def _distances(a, b):
    """Euclidean distances [A, B] of a's rows to b's, by |a|^2 + |b|^2 - 2 a.b."""
    a2 = tf.reduce_sum(tf.square(a), axis=1, keepdims=True)
    b2 = tf.reduce_sum(tf.square(b), axis=1)
    return tf.sqrt(tf.maximum(a2 + b2[tf.newaxis] - 2.0 * tf.matmul(a, b, transpose_b=True),
                              0.0))


# No autograph in either (no Python control flow): it would read this file at the first
# evaluation of a run, maybe after an edit (sngan_tf.feature_networks says more).
@tf.function(input_signature=[_MATRIX, _MATRIX, tf.TensorSpec([], tf.int32)], autograph=False)
def _nearest_distances(block, features, k):
    """[B, k + 1] ascending: each block row's distances to its k + 1 nearest features.

    Column 0 is the row itself (distance 0) when the block is part of `features`, so column
    k is the distance to the k-th nearest neighbour, as `prdc` counts it.
    """
    return -tf.math.top_k(-_distances(block, features), k=k + 1).values


@tf.function(input_signature=[_MATRIX, _MATRIX, _VECTOR, _VECTOR, _VECTOR], autograph=False)
def _block_counts(real_block, fake, pr_radii, dc_radii, fake_radii):
    """One block of real rows against every generated feature.

    The distances are real rows against generated columns, the orientation of the real
    radii (`_nearest_distances` of real rows), so a set scored against itself meets each
    radius exactly where it was measured.

    Args:
      real_block: [B, D] real features.
      fake: [M, D] generated features.
      pr_radii, dc_radii: [B] the block's radii for precision/recall and density/coverage.
      fake_radii: [M] the generated features' radii (recall).

    Returns:
      in_real_balls [M] bool: generated features inside a ball of the block (precision);
      ball_count: int64, (real ball, generated feature) pairs with the feature inside (density);
      covered [B] bool: the block's balls holding a generated feature (coverage);
      recalled [B] bool: the block's features inside a generated ball (recall).
    """
    d = _distances(real_block, fake)  # [B, M]
    in_dc_ball = d <= dc_radii[:, tf.newaxis]
    return (tf.reduce_any(d <= pr_radii[:, tf.newaxis], axis=0),
            tf.reduce_sum(tf.cast(in_dc_ball, tf.int64)),
            tf.reduce_any(in_dc_ball, axis=1),
            tf.reduce_any(d <= fake_radii[tf.newaxis], axis=1))


def _row_blocks(num_rows: int, num_columns: int, max_block_bytes: int):
    """(start, stop) of row blocks whose float64 [rows, num_columns] fit max_block_bytes."""
    rows = max(1, int(max_block_bytes) // (8 * max(1, num_columns)))
    return [(start, min(start + rows, num_rows)) for start in range(0, num_rows, rows)]


def _kth_distances(features, ks, max_block_bytes):
    """{k: [N] each feature's distance to its k-th nearest neighbour among `features`}.

    Args:
      features: [N, D] float64 tensor.
    """
    n = int(features.shape[0])
    k_max = tf.constant(max(ks), tf.int32)
    nearest = np.concatenate([
        _nearest_distances(features[start:stop], features, k_max).numpy()
        for start, stop in _row_blocks(n, n, max_block_bytes)])
    return {k: nearest[:, k] for k in ks}


def knn_radii(features, ks: Sequence[int] = NEAREST_K, *,
              max_block_bytes: int = DEFAULT_BLOCK_BYTES) -> Dict[int, np.ndarray]:
    """Each feature's distance to its k-th nearest neighbour in the set (itself left out).

    Args:
      features: [N, D] finite features, N > max(ks).
      ks: the neighbourhood sizes.
      max_block_bytes: the largest distance matrix held at once.

    Returns:
      {k: [N] float64 radii} for each k in `ks`.
    """
    ks = sorted({int(k) for k in ks})
    features = check_features(features, "real", ks[-1] + 1)
    return _kth_distances(tf.constant(features), ks, max_block_bytes)


def precision_recall_density_coverage(
        real, fake, *, real_radii: Optional[Mapping[int, np.ndarray]] = None,
        metrics: Sequence[str] = METRICS,
        max_block_bytes: int = DEFAULT_BLOCK_BYTES) -> Dict[str, float]:
    """Improved precision and recall (k = 3), density and coverage (k = 5) of `fake`.

    Args:
      real: [N, D] real features.
      fake: [M, D] generated features of the same network.
      real_radii: {k: [N] radii} from `knn_radii(real)`; a k the metrics need and this
        lacks is computed.
      metrics: which of `METRICS` to return; only recall needs the generated radii (a
        pass of generated against generated features).
      max_block_bytes: the largest distance matrix held at once.

    Returns:
      {metric: value} as floats, in the order of `METRICS`.

    Raises:
      ValueError: a set with fewer than k + 1 samples, features of different widths,
        non-finite features, or radii not of the real set's length.
    """
    metrics = [m for m in METRICS if m in metrics]
    if not metrics:
        raise ValueError(f"no metric asked for; choose from {', '.join(METRICS)}")
    needed = min_samples(metrics)
    real = check_features(real, "real", needed)
    fake = check_features(fake, "generated", needed)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real features are {real.shape[1]}-wide but generated features "
                         f"{fake.shape[1]}-wide: they must come from one feature network")
    real_t, fake_t = tf.constant(real), tf.constant(fake)
    del real, fake  # one float64 copy of each set: the tensors
    ks = sorted({_K[m] for m in metrics})
    radii = {k: np.asarray(r, np.float64) for k, r in (real_radii or {}).items() if k in ks}
    missing = [k for k in ks if k not in radii]
    if missing:
        radii.update(_kth_distances(real_t, missing, max_block_bytes))
    num_real, num_fake = int(real_t.shape[0]), int(fake_t.shape[0])
    for k in ks:
        if radii[k].shape != (num_real,):
            raise ValueError(f"real radii for k = {k} have shape {radii[k].shape}, not "
                             f"({num_real},): radii of another real set")
    no_ball = np.full(num_real, -1.0)  # every distance is >= 0: holds nothing
    pr_radii = radii.get(PRECISION_RECALL_K, no_ball)
    dc_radii = radii.get(DENSITY_COVERAGE_K, no_ball)
    if "recall" in metrics:
        fake_radii = _kth_distances(fake_t, [PRECISION_RECALL_K],
                                    max_block_bytes)[PRECISION_RECALL_K]
    else:
        fake_radii = np.full(num_fake, -1.0)
    fake_radii = tf.constant(fake_radii, tf.float64)
    in_real_balls = np.zeros(num_fake, bool)
    ball_count, covered, recalled = 0, [], []
    for start, stop in _row_blocks(num_real, num_fake, max_block_bytes):
        inside, count, block_covered, block_recalled = (t.numpy() for t in _block_counts(
            real_t[start:stop], fake_t, pr_radii[start:stop], dc_radii[start:stop],
            fake_radii))
        in_real_balls |= inside
        ball_count += int(count)
        covered.append(block_covered)
        recalled.append(block_recalled)
    values = {
        "precision": float(np.mean(in_real_balls)),
        "recall": float(np.mean(np.concatenate(recalled))),
        "density": ball_count / (DENSITY_COVERAGE_K * num_fake),
        "coverage": float(np.mean(np.concatenate(covered))),
    }
    return {m: values[m] for m in metrics}
