"""GAN evaluation: Inception score, FID and KID on TF-GAN's metric functions, and the
k-NN precision, recall, density and coverage.

Implements the metrics SN-GAN reports (Miyato et al., ICLR 2018, Sec. 4.1): the Inception
score (Salimans et al., 2016) and the Fréchet Inception distance (Heusel et al., 2017),
plus the kernel Inception distance (Bińkowski et al., 2018). The metrics are pure
functions of activations (STYLE.md item 8) that call TF-GAN's
`tensorflow_gan/python/eval/classifier_metrics.py` (imported through
`sngan_tf.tfgan_compat`, which lets TF-GAN 2.1.0 import on TensorFlow >= 2.16); the
activations come from a network of `sngan_tf.feature_networks`. Beside them, improved
precision and recall and density and coverage (`sngan_tf.manifold_metrics`) tell quality
from diversity on the same pool features, real ones being the cached KID subset. Around
them: the cached statistics of real images, and the evaluator a run uses during training
and after it.

Results are keyed by the network (`sngan_tf.metric_keys`): "fid", "is", "kid",
"precision", "recall", "density", "coverage" for Inception, "fd_<name>", "score_<name>",
"kd_<name>", "precision_<name>", ... for any other.
"""
import os
import tempfile
from typing import Callable, Dict, Iterable, NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from sngan_tf import feature_networks
from sngan_tf import manifold_metrics
from sngan_tf import metric_keys
from sngan_tf.tfgan_compat import tfgan

# Authors' protocol (the SN-GAN paper, Sec. 4.1 and its chainer-gan-lib evaluation code):
# 10,000 generated images scored against the statistics of the 50,000 training images.
DEFAULT_NUM_SAMPLES = 10000
DEFAULT_NUM_REAL_SAMPLES = 50000
# Real activations kept in the cache for KID (a random subset: KID's block estimator
# assumes random order, and image folders come sorted by class); they are also the real
# set of precision, recall, density and coverage, 10,000 against 10,000 generated as in
# Kynkäänniemi et al. and Naeem et al.
DEFAULT_KID_SAMPLES = 10000
DEFAULT_BATCH_SIZE = 100
_SEED = 0


def compute_activations(net: feature_networks.FeatureNetwork,
                        batches: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Runs the network over an iterable of image batches.

    Args:
      net: the feature network.
      batches: iterable of [B, H, W, C] float images in [-1, 1] (or uint8).

    Returns:
      (pool [N, D], logits [N, K]) float32 numpy arrays.
    """
    pools, logits = [], []
    for batch in batches:
        p, l = net(batch)
        pools.append(p)
        logits.append(l)
    if not pools:
        raise ValueError("no batches")
    return np.concatenate(pools), np.concatenate(logits)


def generator_activations(net: feature_networks.FeatureNetwork,
                          sample_fn: Callable[[int], object], num_samples: int,
                          batch_size: int = DEFAULT_BATCH_SIZE):
    """Activations of `num_samples` generated images.

    Args:
      net: the feature network.
      sample_fn: `sample_fn(n)` returns n float images in [-1, 1] (numpy or tensor).
      num_samples: total number of images.
      batch_size: images per `sample_fn` call.

    Returns:
      (pool [num_samples, D], logits [num_samples, K]) float32 numpy arrays.
    """
    def batches():
        remaining = num_samples
        while remaining > 0:
            n = min(batch_size, remaining)
            images = np.asarray(sample_fn(n))
            if images.shape[0] != n:
                raise ValueError(f"sample_fn({n}) returned {images.shape[0]} images")
            yield images
            remaining -= n
    return compute_activations(net, batches())


def _as_float64(x):
    return tf.convert_to_tensor(np.asarray(x, np.float64))


def frechet_distance(real_pool, fake_pool) -> float:
    """Fréchet distance between two sets of activations (FID when they are Inception's).

    Args:
      real_pool: [N, D] activations.
      fake_pool: [M, D] activations.

    Returns:
      |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) with unbiased covariances, as a float.
    """
    return float(tfgan.eval.frechet_classifier_distance_from_activations(
        _as_float64(real_pool), _as_float64(fake_pool)))


def activation_statistics(pool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of [N, D] activations (float64), as TF-GAN computes them."""
    pool = np.asarray(pool, np.float64)
    return pool.mean(axis=0), np.cov(pool, rowvar=False)


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance of two Gaussians, given their means and covariances.

    Uses TF-GAN's `trace_sqrt_product` (the square root by SVD that
    `frechet_classifier_distance_from_activations` uses), so it agrees with
    `frechet_distance` on the same activations; needed for cached real statistics.

    Args:
      mu1, mu2: [D] means.
      sigma1, sigma2: [D, D] covariances.

    Returns:
      The distance as a float.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = _as_float64(sigma1), _as_float64(sigma2)
    trace_sqrt = float(tfgan.eval.classifier_metrics.trace_sqrt_product(sigma1, sigma2))
    trace = float(tf.linalg.trace(sigma1) + tf.linalg.trace(sigma2)) - 2.0 * trace_sqrt
    return float(np.sum(np.square(mu1 - mu2))) + trace


def inception_score(logits) -> float:
    """Classifier score exp(E KL(p(y|x) || p(y))); the Inception score on Inception's logits.

    Args:
      logits: [N, K] logits.

    Returns:
      The score as a float (in [1, K]).
    """
    return float(tfgan.eval.classifier_score_from_logits(_as_float64(logits)))


def class_entropy(logits) -> float:
    """Entropy in nats of the histogram of predicted classes (argmax of [N, K] logits):
    ln K for classes drawn equally often, 0 for one class."""
    counts = np.bincount(np.argmax(np.asarray(logits), axis=1), minlength=np.shape(logits)[1])
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def kid(real_pool, fake_pool, max_block_size: int = 1024) -> float:
    """Kernel (Inception) distance: unbiased MMD² with the cubic polynomial kernel.

    Args:
      real_pool: [N, D] activations, in random order (TF-GAN's block estimator).
      fake_pool: [M, D] activations, in random order.
      max_block_size: TF-GAN's block size.

    Returns:
      The distance as a float.
    """
    return float(tfgan.eval.kernel_classifier_distance_from_activations(
        _as_float64(real_pool), _as_float64(fake_pool), max_block_size=max_block_size))


class RealStatistics(NamedTuple):
    """Cached statistics of real images under one feature network."""
    mu: np.ndarray  # [D] float64
    sigma: np.ndarray  # [D, D] float64, unbiased
    pool: np.ndarray  # [<= kid_samples, D] float32, shuffled, for KID and the k-NN metrics
    num_samples: int
    network: str
    path: str
    # k -> [len(pool)] float64: each pool feature's distance to its k-th nearest neighbour
    # in the pool (`manifold_metrics.knn_radii`); empty when the pool has k or fewer rows.
    radii: Dict[int, np.ndarray]


def _cache_key(net, dataset, split, image_size, num_samples, kid_samples):
    safe = lambda s: "".join(c if c.isalnum() or c in "-." else "-" for c in str(s))
    return "_".join([safe(dataset), safe(split), f"{int(image_size)}px", safe(net.name),
                     safe(net.fingerprint), f"n{int(num_samples)}", f"kid{int(kid_samples)}"])


def _atomic_savez(path: str, **arrays):
    """Writes an .npz to a temporary file in the same directory, then renames it."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def real_statistics(net: feature_networks.FeatureNetwork, images_uint8_or_batches, *,
                    dataset: str, split: str, image_size: int,
                    num_samples: int = DEFAULT_NUM_REAL_SAMPLES, cache_dir: str,
                    kid_samples: int = DEFAULT_KID_SAMPLES,
                    batch_size: int = DEFAULT_BATCH_SIZE,
                    nearest_k: Sequence[int] = manifold_metrics.NEAREST_K) -> RealStatistics:
    """Mean, covariance, a KID subset of real activations and its k-NN radii, cached as .npz.

    The cache file is keyed by dataset, split, image size, network name and fingerprint,
    sample count and KID subset size; a hit skips the network entirely. The radii of the
    subset are kept in the same file, one array per k (`radii_k3`, `radii_k5`); a file
    without them (written before they existed, or for other k) gains them on first use.

    Args:
      net: the feature network.
      images_uint8_or_batches: a [N, H, W, C] uint8 array (a random subset of
        `num_samples` images is used with a fixed seed, since image folders come sorted
        by class), or an iterable of float batches in [-1, 1] (the first `num_samples`
        images are used: shuffle it beforehand). Not read on a cache hit.
      dataset, split, image_size: describe the images (cache key only).
      num_samples: number of real images (the authors use all 50,000 training images).
      cache_dir: directory of the .npz files (created if needed).
      kid_samples: real activations kept for KID and the k-NN metrics.
      batch_size: batch size when given an array.
      nearest_k: the neighbourhood sizes whose radii to keep (precision and recall's,
        density and coverage's).

    Returns:
      `RealStatistics`.
    """
    os.makedirs(cache_dir, exist_ok=True)
    key = _cache_key(net, dataset, split, image_size, num_samples, kid_samples)
    path = os.path.join(cache_dir, key + ".npz")
    if os.path.exists(path):
        with np.load(path) as data:
            cached = {name: data[name] for name in data.files}
        if str(cached["key"]) == key:
            return _with_radii(cached, path, net.name, nearest_k, saved=True)

    source = images_uint8_or_batches
    if isinstance(source, np.ndarray):
        if source.shape[0] < num_samples:
            raise ValueError(f"{source.shape[0]} images < num_samples={num_samples}")
        index = np.sort(np.random.default_rng(_SEED).permutation(source.shape[0])[:num_samples])
        batches = (source[index[i:i + batch_size]] for i in range(0, num_samples, batch_size))
    else:
        batches = _take(source, num_samples)
    pool, _ = compute_activations(net, batches)
    if pool.shape[0] < num_samples:
        raise ValueError(f"only {pool.shape[0]} real images, num_samples={num_samples}")
    mu, sigma = activation_statistics(pool)
    kid_pool = pool[np.random.default_rng(_SEED).permutation(pool.shape[0])[:kid_samples]]
    arrays = dict(key=np.array(key), mu=mu, sigma=sigma, pool=kid_pool,
                  num_samples=np.array(num_samples))
    return _with_radii(arrays, path, net.name, nearest_k, saved=False)


def _radii_name(k: int) -> str:
    return f"radii_k{int(k)}"


def _with_radii(arrays: dict, path: str, network: str, nearest_k,
                saved: bool) -> RealStatistics:
    """The statistics of a cache entry, first adding the pool's radii it lacks.

    The entry is written when it is new or has gained radii. A pool of k or fewer
    features gets no radii for that k (the k-NN metrics then fail, saying so).
    """
    pool = arrays["pool"]
    missing = [k for k in nearest_k if _radii_name(k) not in arrays and len(pool) > k]
    if missing:
        radii = manifold_metrics.knn_radii(pool, missing)
        arrays.update({_radii_name(k): r for k, r in radii.items()})
    if missing or not saved:
        _atomic_savez(path, **arrays)
    radii = {int(k): arrays[_radii_name(k)] for k in nearest_k if _radii_name(k) in arrays}
    return RealStatistics(arrays["mu"], arrays["sigma"], pool, int(arrays["num_samples"]),
                          network, path, radii)


def _take(batches, num_samples):
    """Yields the first `num_samples` images of an iterable of batches."""
    remaining = num_samples
    for batch in batches:  # may be infinite (sngan_tf.data.make_dataset)
        batch = np.asarray(batch)[:remaining]
        remaining -= batch.shape[0]
        yield batch
        if remaining <= 0:
            return


def result_key(net: feature_networks.FeatureNetwork, metric: str) -> str:
    """The key of `metric` (one of `metric_keys.ALL`) on `net`'s features, e.g. "fid"."""
    return metric_keys.key(metric, None if net.is_inception else net.name)


def evaluate_generator(net: feature_networks.FeatureNetwork,
                       sample_fn: Callable[[int], object], real_stats: RealStatistics,
                       num_samples: int = DEFAULT_NUM_SAMPLES,
                       batch_size: int = DEFAULT_BATCH_SIZE,
                       metrics: Sequence[str] = metric_keys.ALL) -> dict:
    """Scores a generator against cached real statistics.

    Args:
      net: the feature network `real_stats` was computed with.
      sample_fn: `sample_fn(n)` returns n float images in [-1, 1].
      real_stats: from `real_statistics`.
      num_samples: generated images (authors' protocol: 10,000).
      batch_size: images per `sample_fn` call.
      metrics: which of `metric_keys.ALL` to compute (default all).

    Returns:
      {key: value} for each metric, keyed by `result_key` (for Inception "fid", "is", "kid",
      "precision", "recall", "density", "coverage"; for a network `name` "fd_<name>",
      "score_<name>", "kd_<name>", "precision_<name>", ...), and "num_samples".
    """
    metrics = metric_keys.check(metrics)
    if real_stats.network != net.name:
        raise ValueError(f"real statistics of {real_stats.network!r}, network {net.name!r}")
    fake_pool, fake_logits = generator_activations(net, sample_fn, num_samples, batch_size)
    results = {}
    if metric_keys.FRECHET in metrics:
        mu, sigma = activation_statistics(fake_pool)
        results[result_key(net, metric_keys.FRECHET)] = frechet_distance_from_stats(
            real_stats.mu, real_stats.sigma, mu, sigma)
    if metric_keys.SCORE in metrics:
        results[result_key(net, metric_keys.SCORE)] = inception_score(fake_logits)
    if metric_keys.KERNEL in metrics:
        results[result_key(net, metric_keys.KERNEL)] = kid(real_stats.pool, fake_pool)
    if metric_keys.CLASS_ENTROPY in metrics:
        results[result_key(net, metric_keys.CLASS_ENTROPY)] = class_entropy(fake_logits)
    manifold = [m for m in metrics if m in manifold_metrics.METRICS]
    if manifold:
        values = manifold_metrics.precision_recall_density_coverage(
            real_stats.pool, fake_pool, real_radii=real_stats.radii, metrics=manifold)
        results.update({result_key(net, m): v for m, v in values.items()})
    results["num_samples"] = int(num_samples)
    return results


def training_statistics(net: feature_networks.FeatureNetwork, images: np.ndarray, *,
                        dataset: str, data_dir: str | None, image_size: int, num_samples: int,
                        cache_dir: str) -> RealStatistics:
    """Reference statistics of a run's training images, under the cache key every binary uses.

    Args:
      net: the feature network.
      images: uint8 training images from `sngan_tf.data.load_images(dataset, ...)`.
      dataset, data_dir: the data flags the images came from (cache key).
      image_size: their side length.
      num_samples: images to use; capped at `len(images)`.
      cache_dir: directory of the statistics cache.
    """
    return real_statistics(net, images, dataset=f"{dataset}:{data_dir or ''}", split="train",
                           image_size=image_size, num_samples=min(num_samples, len(images)),
                           cache_dir=cache_dir)


def mean_and_spread(per_set: list) -> dict:
    """Metrics of K generated sets -> their means, plus `<metric>_std` (ddof 1) and
    `num_sets` when K > 1; one set is returned unchanged (the default protocol)."""
    if len(per_set) == 1:
        return dict(per_set[0])
    out = {}
    for key in per_set[0]:
        if key == "num_samples":
            out[key] = per_set[0][key]
            continue
        values = np.array([r[key] for r in per_set], np.float64)
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1))
    out["num_sets"] = len(per_set)
    return out


def make_run_evaluator(net: feature_networks.FeatureNetwork, real_stats: RealStatistics,
                       config, num_samples: int = DEFAULT_NUM_SAMPLES,
                       batch_size: int = DEFAULT_BATCH_SIZE, num_sets: int = 1,
                       metrics: Sequence[str] = metric_keys.ALL) -> Callable:
    """The evaluator of a run (a `sngan_tf.training.TrainConfig`): `f(gan) -> metrics`.

    It scores `gan.generate` on the same latent codes at every call, seeded by
    `config.seed + 1` (apart from the training codes), so evaluations during training and
    later ones of a checkpoint differ only by their generators. With `num_sets` K > 1 it
    scores K independent sets of `num_samples` images (set 0 being the single-set codes)
    and reports their mean and standard deviation (`mean_and_spread`): the spread that
    comes from sampling alone. `metrics` (default all) are checked here, before training:
    the k-NN metrics need more than k real and generated images.
    """
    from sngan_tf import models  # pylint: disable=g-import-not-at-top
    if num_sets < 1:
        raise ValueError(f"--eval_num_sets must be positive, got {num_sets}.")
    metrics = metric_keys.check(metrics)
    manifold = [m for m in metrics if m in manifold_metrics.METRICS]
    needed = manifold_metrics.min_samples(manifold) if manifold else 0
    if min(num_samples, len(real_stats.pool)) < needed:
        raise ValueError(
            f"{', '.join(manifold)} need at least k + 1 = {needed} generated images "
            f"(--eval_num_samples={num_samples}) and real ones ({len(real_stats.pool)} kept "
            f"of --eval_real_samples={real_stats.num_samples}); or leave them out of --metrics")
    seed = config.seed + 1

    def evaluate(gan):
        per_set = []
        for k in range(num_sets):
            counter = iter(range(k << 24, (k + 1) << 24))  # disjoint codes per set

            def sample_fn(n):
                return gan.generate(models.sample_z(config.model, n, [seed, next(counter)]))

            per_set.append(evaluate_generator(net, sample_fn, real_stats, num_samples,
                                              batch_size, metrics))
        return mean_and_spread(per_set)

    return evaluate
