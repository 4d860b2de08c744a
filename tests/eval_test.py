"""Tests for sngan_tf.eval (IS/FID/KID on TF-GAN against closed forms and SciPy; the k-NN
metrics wired in, their radii cached) and sngan_tf.feature_networks (loading, resizing,
offline failures).

TF-GAN's metric functions themselves (imported through sngan_tf.tfgan_compat, which lets
TF-GAN 2.1.0 import without tf.estimator) are checked against float64 NumPy/SciPy
formulas written here. A tiny stand-in for TF-GAN's Inception (pool_3 = 4x4 mean-pooled pixels of an 8x8 image,
12-d; logits = a fixed linear map) is saved as a SavedModel, so the real loading code
(tensorflow_hub / tf.saved_model) runs offline.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from unittest import mock

import numpy as np
import scipy.linalg
import scipy.special
import tensorflow as tf

from sngan_tf import eval as eval_lib
from sngan_tf import feature_networks
from sngan_tf import manifold_metrics
from sngan_tf import tfgan_compat
from sngan_tf.tfgan_compat import tfgan

_SIZE = 8  # stand-in input side; pool = 2x2 blocks x 3 channels
_DIM = 12
_CLASSES = 10


class _StandIn(tf.Module):
    """Inception-shaped module: any image size in, {"pool_3", "logits"} out."""

    def __init__(self, seed=1):
        super().__init__()
        w = np.random.default_rng(seed).standard_normal((_DIM, _CLASSES)).astype(np.float32)
        self.w = tf.Variable(w)

    def features(self, x):
        pool = tf.reshape(tf.nn.avg_pool2d(x, 4, 4, "VALID"), [tf.shape(x)[0], _DIM])
        return {"pool_3": pool, "logits": tf.matmul(pool, self.w)}

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, x):
        return self.features(x)


class _FixedSizeStandIn(_StandIn):
    """Classifier-shaped module: a fixed input size in its signature."""

    @tf.function(input_signature=[tf.TensorSpec([None, _SIZE, _SIZE, 3], tf.float32)])
    def __call__(self, x):
        return self.features(x)


def _images_from_pool(pool):
    """8x8 images whose 4x4 block means are exactly `pool` ([N, 12])."""
    blocks = np.asarray(pool, np.float32).reshape(-1, 2, 2, 3)
    return np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)


def _exact_gaussian(rng, n, mean, cov):
    """n samples whose sample mean and unbiased covariance are exactly mean, cov."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return z @ np.linalg.cholesky(cov).T + mean


def _scipy_frechet(x, y):
    """Independent reference: scipy.linalg.sqrtm of S1 S2."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)


def _numpy_inception_score(logits):
    """Independent reference: exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x)."""
    p = scipy.special.softmax(np.asarray(logits, np.float64), axis=1)
    p_y = p.mean(axis=0)
    return np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p_y)), axis=1)))


def _numpy_kid(x, y):
    """Independent reference: unbiased MMD^2 with the kernel k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    kxx, kyy = k(x, x), k(y, y)
    m, n = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * k(x, y).mean())


def _sampler(images):
    """sample_fn returning successive slices of `images`."""
    state = {"i": 0}

    def sample_fn(n):
        out = images[state["i"]:state["i"] + n]
        state["i"] += n
        return out
    return sample_fn


class EvalTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.inception_path = os.path.join(cls.root, "fake_inception")
        cls.classifier_path = os.path.join(cls.root, "toy_classifier")
        tf.saved_model.save(_StandIn(), cls.inception_path)
        tf.saved_model.save(_FixedSizeStandIn(), cls.classifier_path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def _inception(self):
        return feature_networks.load_inception(self.inception_path, input_size=_SIZE)

    def test_fid_identical_sets_is_zero(self):
        net = self._inception()
        pool = np.random.default_rng(0).standard_normal((64, _DIM))
        images = _images_from_pool(pool)
        stats = eval_lib.real_statistics(
            net, images, dataset="toy", split="train", image_size=_SIZE, num_samples=64,
            cache_dir=self.get_temp_dir(), kid_samples=64, batch_size=16)
        result = eval_lib.evaluate_generator(net, _sampler(images), stats, num_samples=64,
                                             batch_size=16)
        self.assertEqual(list(result), ["fid", "is", "kid", "class_entropy", "precision",
                                        "recall", "density", "coverage", "num_samples"])
        self.assertEqual(result["num_samples"], 64)
        self.assertAllClose(result["fid"], 0.0, atol=1e-6)
        # The same images: every one inside the other set's balls; density about (k + 1) / k.
        self.assertAllClose([result[m] for m in ("precision", "recall", "coverage")],
                            [1.0, 1.0, 1.0], rtol=0, atol=0)
        self.assertAllClose(result["density"], 6 / 5, atol=0.05)

    def test_fid_matches_closed_form_of_two_gaussians(self):
        rng = np.random.default_rng(1)
        var_real, var_fake = rng.uniform(0.2, 1.0, _DIM), rng.uniform(0.2, 1.0, _DIM)
        shift = rng.uniform(-0.5, 0.5, _DIM)
        real = _exact_gaussian(rng, 200, np.zeros(_DIM), np.diag(var_real))
        fake = _exact_gaussian(rng, 200, shift, np.diag(var_fake))
        # FD of N(0, diag a) and N(m, diag b): |m|^2 + sum (sqrt a - sqrt b)^2.
        closed_form = np.sum(shift**2) + np.sum((np.sqrt(var_real) - np.sqrt(var_fake))**2)

        net = self._inception()
        stats = eval_lib.real_statistics(
            net, _images_from_pool(real), dataset="toy", split="train", image_size=_SIZE,
            num_samples=200, cache_dir=self.get_temp_dir(), batch_size=64)
        result = eval_lib.evaluate_generator(
            net, _sampler(_images_from_pool(fake)), stats, num_samples=200, batch_size=64)
        self.assertAllClose(result["fid"], closed_form, rtol=1e-3)
        self.assertAllClose(result["fid"], _scipy_frechet(real, fake), rtol=1e-4)

    def test_frechet_distance_matches_scipy_and_stats_version(self):
        rng = np.random.default_rng(2)
        mix = rng.standard_normal((16, 16))
        x = rng.standard_normal((300, 16)) @ mix
        y = rng.gamma(2.0, size=(250, 16)) @ mix * 0.7 + 0.3
        fd = eval_lib.frechet_distance(x, y)
        self.assertAllClose(fd, _scipy_frechet(x, y), rtol=1e-6)
        from_stats = eval_lib.frechet_distance_from_stats(
            x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
        self.assertAllClose(from_stats, fd, rtol=1e-4)
        self.assertGreater(fd, 1.0)  # the two sets really differ

    def test_inception_score_of_one_hot_logits(self):
        for k in (1, 4, 10):
            labels = np.arange(6 * k) % k
            logits = 50.0 * np.eye(_CLASSES)[labels][:, :max(k, 2)]
            self.assertAllClose(eval_lib.inception_score(logits), k, rtol=1e-6)
        # Classes used 3:1: the score is exp(entropy of the marginal).
        logits = 50.0 * np.eye(2)[[0, 0, 0, 1]]
        expected = np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
        self.assertAllClose(eval_lib.inception_score(logits), expected, rtol=1e-6)

    def test_class_entropy_of_predicted_classes(self):
        eye = np.eye(10)
        self.assertAllClose(eval_lib.class_entropy(eye[np.arange(50) % 10]), np.log(10))
        self.assertEqual(eval_lib.class_entropy(3.0 * eye[[4] * 20] + 0.1), 0.0)  # one class
        logits = eye[[0, 0, 0, 7]] + 0.01 * np.arange(10)  # the argmax counts, 3:1
        self.assertAllClose(eval_lib.class_entropy(logits),
                            -(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))

    def test_kid_matches_numpy_unbiased_mmd(self):
        rng = np.random.default_rng(3)
        x, y = rng.standard_normal((40, 5)), rng.standard_normal((30, 5)) + 0.5
        self.assertAllClose(eval_lib.kid(x, y), _numpy_kid(x, y), rtol=1e-6)
        # Two blocks of 20 + 15 samples: TF-GAN averages the blocks' estimates.
        two_blocks = (_numpy_kid(x[:20], y[:15]) + _numpy_kid(x[20:], y[15:])) / 2
        self.assertAllClose(eval_lib.kid(x, y, max_block_size=20), two_blocks, rtol=1e-6)
        self.assertNotAllClose(two_blocks, _numpy_kid(x, y), rtol=1e-2)

    def test_network_resizes_any_input_and_traces_once(self):
        net = self._inception()
        colour = np.array([0.5, -0.25, 1.0], np.float32)
        expected_pool = np.tile(colour, 4)
        for side in (5, 16, 32):
            pool, logits = net(np.broadcast_to(colour, (3, side, side, 3)))
            self.assertAllClose(pool, np.tile(expected_pool, (3, 1)), atol=1e-6)
            self.assertAllClose(logits[0], expected_pool @ _StandIn().w.numpy(), atol=1e-5)
        # A non-constant image: TF-GAN's bilinear resize, then the network.
        image = np.random.default_rng(6).uniform(-1, 1, (1, 5, 5, 3)).astype(np.float32)
        resized = tf.image.resize(image, [_SIZE, _SIZE], method="bilinear").numpy()
        expected = resized.reshape(1, 2, 4, 2, 4, 3).mean(axis=(2, 4)).reshape(1, _DIM)
        self.assertAllClose(net(image)[0], expected, atol=1e-6)
        pool, _ = net(np.full((2, _SIZE, _SIZE, 3), 51, np.uint8))  # uint8 -> [-1, 1]
        self.assertAllClose(pool, np.full((2, _DIM), 51 / 127.5 - 1))
        self.assertEqual(net._forward.experimental_get_tracing_count(), 1)  # pylint: disable=protected-access
        self.assertEqual(feature_networks.load_inception.__kwdefaults__["input_size"], 299)

    def test_statistics_cache_hits_and_invalidates(self):
        cache_dir = self.get_temp_dir()
        images = _images_from_pool(np.random.default_rng(4).standard_normal((48, _DIM)))
        net = self._inception()
        kwargs = dict(dataset="toy", split="train", image_size=_SIZE, cache_dir=cache_dir,
                      kid_samples=16, batch_size=16)
        first = eval_lib.real_statistics(net, images, num_samples=40, **kwargs)
        self.assertEqual(net.num_images, 40)
        second = eval_lib.real_statistics(net, images, num_samples=40, **kwargs)
        self.assertEqual(net.num_images, 40)  # cache hit: the network did not run
        self.assertAllEqual(second.mu, first.mu)
        self.assertAllEqual(second.sigma, first.sigma)
        self.assertEqual(second.pool.shape, (16, _DIM))

        eval_lib.real_statistics(net, images, num_samples=32, **kwargs)
        self.assertEqual(net.num_images, 72)  # a different sample count recomputes

        other = feature_networks.load_classifier(self.classifier_path)
        other_stats = eval_lib.real_statistics(other, images, num_samples=40, **kwargs)
        self.assertEqual(other.num_images, 40)  # a different network recomputes
        self.assertEqual(sorted(f.startswith(".tmp") for f in os.listdir(cache_dir)),
                         [False] * 3)  # three entries, no temporary files left
        with self.assertRaises(ValueError):  # statistics of another network
            eval_lib.evaluate_generator(net, _sampler(images), other_stats, num_samples=8)

    def test_cache_keeps_the_radii_and_completes_old_files(self):
        cache_dir = self.get_temp_dir()
        images = _images_from_pool(np.random.default_rng(8).standard_normal((40, _DIM)))
        net = self._inception()
        kwargs = dict(dataset="toy", split="train", image_size=_SIZE, num_samples=40,
                      cache_dir=cache_dir, kid_samples=32, batch_size=20)
        stats = eval_lib.real_statistics(net, images, **kwargs)
        self.assertEqual(sorted(stats.radii), [3, 5])
        expected = manifold_metrics.knn_radii(stats.pool)
        with np.load(stats.path) as data:
            for k in (3, 5):  # in the file beside the FID statistics, one array per k
                self.assertAllClose(data[f"radii_k{k}"], expected[k], rtol=0, atol=0)
                self.assertAllClose(stats.radii[k], expected[k], rtol=0, atol=0)
            old = {name: data[name] for name in data.files if not name.startswith("radii")}
        np.savez(stats.path, **old)  # a cache file from before the radii
        with mock.patch.object(manifold_metrics, "knn_radii",
                               wraps=manifold_metrics.knn_radii) as knn_radii:
            again = eval_lib.real_statistics(net, images, **kwargs)
            self.assertEqual(knn_radii.call_count, 1)  # computed for the old file, and saved
            eval_lib.real_statistics(net, images, **kwargs)
            self.assertEqual(knn_radii.call_count, 1)
        self.assertEqual(net.num_images, 40)  # the network ran once, for the first call
        self.assertAllClose(again.mu, stats.mu, rtol=0, atol=0)
        for k in (3, 5):
            self.assertAllClose(again.radii[k], expected[k], rtol=0, atol=0)
        with np.load(stats.path) as data:
            self.assertIn("radii_k5", data.files)

    def test_metrics_subset_and_features_of_the_pool(self):
        net = feature_networks.load_classifier(self.classifier_path)
        rng = np.random.default_rng(9)
        real, fake = rng.standard_normal((48, _DIM)), 0.8 * rng.standard_normal((40, _DIM))
        stats = eval_lib.real_statistics(
            net, _images_from_pool(real), dataset="toy", split="train", image_size=_SIZE,
            num_samples=48, cache_dir=self.get_temp_dir(), kid_samples=30, batch_size=16)
        full = eval_lib.evaluate_generator(net, _sampler(_images_from_pool(fake)), stats,
                                           num_samples=40, batch_size=16)
        # The real set is the cached KID pool (30 of the 48), the generated set all 40.
        direct = manifold_metrics.precision_recall_density_coverage(stats.pool, fake)
        for metric, value in direct.items():
            self.assertAllClose(full[f"{metric}_toy_classifier"], value, rtol=0, atol=1e-12)
        some = eval_lib.evaluate_generator(net, _sampler(_images_from_pool(fake)), stats,
                                           num_samples=40, batch_size=16,
                                           metrics=["recall", "fd"])
        self.assertEqual(list(some), ["fd_toy_classifier", "recall_toy_classifier",
                                      "num_samples"])
        self.assertAllClose(some["recall_toy_classifier"], full["recall_toy_classifier"],
                            rtol=0, atol=0)
        with self.assertRaisesRegex(ValueError, "unknown metrics fid"):
            eval_lib.evaluate_generator(net, _sampler(fake), stats, metrics=["fid"])

    def test_statistics_of_an_infinite_batch_stream_use_the_first_images(self):
        pool = np.random.default_rng(7).standard_normal((24, _DIM))
        images = _images_from_pool(pool)

        def stream():  # like sngan_tf.data.make_dataset: never ends
            while True:
                for i in range(0, 24, 8):
                    yield images[i:i + 8]
        net = self._inception()
        stats = eval_lib.real_statistics(
            net, stream(), dataset="toy", split="train", image_size=_SIZE, num_samples=20,
            cache_dir=self.get_temp_dir(), kid_samples=100)
        self.assertEqual(net.num_images, 20)
        self.assertAllClose(stats.mu, pool[:20].mean(0), atol=1e-6)
        self.assertAllClose(stats.sigma, np.cov(pool[:20], rowvar=False), atol=1e-5)
        self.assertEqual(stats.pool.shape, (20, _DIM))

    def test_no_network_fails_fast_with_instructions(self):
        # A handle under the reserved .invalid domain (RFC 6761) so that a machine with
        # network does not download the real 90 MB module in a unit test.
        handle = "https://tfhub.invalid/tensorflow/tfgan/eval/inception/1"
        empty_cache = self.get_temp_dir()
        start = time.time()
        with mock.patch.dict(os.environ, {"TFHUB_CACHE_DIR": empty_cache}), \
                mock.patch.object(feature_networks, "INCEPTION_HANDLE", handle):
            with self.assertRaises(feature_networks.FeatureNetworkUnavailable) as ctx:
                feature_networks.load_inception(None)
        self.assertLess(time.time() - start, 30)
        message = str(ctx.exception)
        self.assertIn("--inception_path", message)
        self.assertIn("--classifier_path", message)
        self.assertIn("TFHUB_CACHE_DIR", message)
        self.assertIn("inception/1?tf-hub-format=compressed", message)
        self.assertEqual(os.listdir(empty_cache), [])

    def test_unreachable_hub_host_does_not_wait_for_tensorflow_hub(self):
        # A blackholed network: connections hang; tensorflow_hub must not even be tried.
        def hang(*args, **kwargs):
            del args, kwargs
            time.sleep(60)
            raise OSError("hung")  # as a real timeout would, long after the probe gave up
        start = time.time()
        with mock.patch.dict(os.environ, {"TFHUB_CACHE_DIR": self.get_temp_dir()}), \
                mock.patch.object(feature_networks.socket, "create_connection",
                                  side_effect=hang), \
                mock.patch("tensorflow_hub.load", side_effect=AssertionError) as hub_load:
            with self.assertRaisesRegex(feature_networks.FeatureNetworkUnavailable, "timed out"):
                feature_networks.load_inception(None)
        self.assertLess(time.time() - start, 10)
        hub_load.assert_not_called()

    def test_classifier_is_never_labelled_fid(self):
        net = feature_networks.load_classifier(self.classifier_path)
        self.assertEqual(net.name, "toy_classifier")
        self.assertEqual(net.metric_name, "fd_toy_classifier")
        self.assertEqual(net.input_size, _SIZE)  # read from the input signature
        self.assertEqual(self._inception().metric_name, "fid")
        images = _images_from_pool(np.random.default_rng(5).standard_normal((32, _DIM)))
        stats = eval_lib.real_statistics(
            net, images, dataset="toy", split="train", image_size=_SIZE, num_samples=32,
            cache_dir=self.get_temp_dir(), batch_size=16)
        result = eval_lib.evaluate_generator(net, _sampler(images[::-1]), stats,
                                             num_samples=32, batch_size=16)
        self.assertEqual(set(result), {"fd_toy_classifier", "score_toy_classifier",
                                       "kd_toy_classifier", "class_entropy_toy_classifier",
                                       "precision_toy_classifier",
                                       "recall_toy_classifier", "density_toy_classifier",
                                       "coverage_toy_classifier", "num_samples"})
        self.assertAllClose(result["fd_toy_classifier"], 0.0, atol=1e-6)
        for other in (net, self._inception()):  # one naming rule for every key
            self.assertEqual(eval_lib.result_key(other, "fd"), other.metric_name)


    def test_metrics_flag_names_unknown_metrics(self):
        result = subprocess.run(
            [sys.executable, "-m", "sngan_tf.evaluate", "--metrics=fid,precision",
             "--logdir=unused"], capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("--metrics: unknown metrics fid; choose from fd, score, kd, class_entropy, "
                      "precision, recall, density, coverage", result.stderr)

    def test_mean_and_spread_of_sets(self):
        sets = [{"fd_x": v, "kd_x": v / 10, "num_samples": 8} for v in (10.0, 12.0, 14.0)]
        out = eval_lib.mean_and_spread(sets)
        self.assertAllClose(out["fd_x"], 12.0)
        self.assertAllClose(out["fd_x_std"], 2.0)  # ddof=1: sqrt((4 + 0 + 4) / 2)
        self.assertAllClose(out["kd_x_std"], 0.2)
        self.assertEqual(out["num_sets"], 3)
        self.assertEqual(out["num_samples"], 8)
        self.assertEqual(eval_lib.mean_and_spread(sets[:1]), sets[0])  # default protocol

    def test_run_evaluator_scores_independent_sets(self):
        from sngan_tf import models, training  # pylint: disable=g-import-not-at-top
        net = feature_networks.load_classifier(self.classifier_path)
        real = _images_from_pool(np.random.default_rng(3).standard_normal((64, _DIM)))
        stats = eval_lib.real_statistics(net, real, dataset="toy", split="train",
                                         image_size=_SIZE, num_samples=64,
                                         cache_dir=self.get_temp_dir(), batch_size=16)
        config = training.TrainConfig(model=models.ModelConfig())
        mix = tf.constant(np.random.default_rng(4).standard_normal((100, 192)) / 10,
                          tf.float32)

        class _Gan:  # a "generator": a fixed linear map of the codes to 8x8 images
            def generate(self, z):
                return tf.tanh(tf.reshape(tf.matmul(z, mix), (-1, _SIZE, _SIZE, 3)))

        one = eval_lib.make_run_evaluator(net, stats, config, 32, 16)(_Gan())
        three = eval_lib.make_run_evaluator(net, stats, config, 32, 16, num_sets=3)(_Gan())
        # Independently: each set k scored alone on codes [seed + 1, (k << 24) + batch].
        per_set = []
        for k in range(3):
            codes = [models.sample_z(config.model, 16, [config.seed + 1, (k << 24) + b])
                     for b in range(2)]
            images = _Gan().generate(tf.concat(codes, 0)).numpy()
            per_set.append(eval_lib.evaluate_generator(net, _sampler(images), stats, 32, 16)
                           ["fd_toy_classifier"])
        self.assertAllClose(one["fd_toy_classifier"], per_set[0], rtol=1e-6)  # set 0 = default
        self.assertAllClose(three["fd_toy_classifier"], np.mean(per_set), rtol=1e-6)
        self.assertAllClose(three["fd_toy_classifier_std"], np.std(per_set, ddof=1), rtol=1e-5)
        self.assertGreater(three["fd_toy_classifier_std"], 0.0)
        self.assertEqual(three["num_sets"], 3)
        self.assertNotIn("num_sets", one)
        self.assertIn("precision_toy_classifier_std", three)

        # Too few images for k = 5 fails when the evaluator is made, before any training.
        with self.assertRaisesRegex(ValueError, r"k \+ 1 = 6 generated images "
                                    r"\(--eval_num_samples=5\)"):
            eval_lib.make_run_evaluator(net, stats, config, 5, 16)
        small = stats._replace(pool=stats.pool[:4])
        with self.assertRaisesRegex(ValueError, "and real ones \\(4 kept"):
            eval_lib.make_run_evaluator(net, small, config, 32, 16)
        eval_lib.make_run_evaluator(net, small, config, 5, 16, metrics=["fd", "kd"])


class TfganMetricsTest(tf.test.TestCase):
    """TF-GAN's own metric functions on fixed random data against float64 NumPy/SciPy.

    Sample sizes are small so that a plausible slip (biased covariances, sqrt(S1) sqrt(S2)
    for (S1 S2)^(1/2), a reversed KL, a kernel diagonal kept) moves each value by more
    than 1%, far outside the tolerances.
    """

    def test_frechet_distance_from_activations_matches_scipy(self):
        rng = np.random.default_rng(10)
        x = rng.standard_normal((48, 8)) @ rng.standard_normal((8, 8))
        y = rng.standard_normal((40, 8)) @ rng.standard_normal((8, 8)) * 0.8 + 0.2
        fid = tfgan.eval.frechet_classifier_distance_from_activations(
            tf.constant(x), tf.constant(y))
        self.assertAllClose(fid, _scipy_frechet(x, y), rtol=1e-3)

    def test_classifier_score_from_logits_matches_numpy(self):
        logits = 2.0 * np.random.default_rng(11).standard_normal((64, 10))
        score = tfgan.eval.classifier_score_from_logits(tf.constant(logits))
        self.assertAllClose(score, _numpy_inception_score(logits), rtol=1e-6)

    def test_kernel_distance_from_activations_matches_numpy(self):
        rng = np.random.default_rng(12)
        x, y = rng.standard_normal((50, 6)), 0.9 * rng.standard_normal((35, 6)) + 0.3
        kid = tfgan.eval.kernel_classifier_distance_from_activations(
            tf.constant(x), tf.constant(y), max_block_size=64)  # a single block
        self.assertAllClose(kid, _numpy_kid(x, y), rtol=1e-6)


class TfganCompatTest(tf.test.TestCase):
    """sngan_tf.tfgan_compat adds a stand-in tf.estimator only where none exists."""

    def test_existing_estimator_is_left_alone(self):
        real = types.ModuleType("real_estimator")
        v1 = types.SimpleNamespace()
        fake_tf = types.SimpleNamespace(estimator=real, compat=types.SimpleNamespace(v1=v1))
        self.assertEqual(tfgan_compat.install_estimator_stand_in(fake_tf), [v1])
        self.assertIs(fake_tf.estimator, real)
        self.assertIsInstance(v1.estimator, tfgan_compat.EstimatorStandIn)
        stand_in = v1.estimator
        self.assertEqual(tfgan_compat.install_estimator_stand_in(fake_tf), [])  # idempotent
        self.assertIs(fake_tf.estimator, real)
        self.assertIs(v1.estimator, stand_in)

    def test_installing_again_in_this_process_changes_nothing(self):
        before = (tf.estimator, tf.compat.v1.estimator)
        self.assertEqual(tfgan_compat.install_estimator_stand_in(), [])
        self.assertIs(tf.estimator, before[0])
        self.assertIs(tf.compat.v1.estimator, before[1])

    def test_stand_in_classes_subclass_but_do_not_instantiate(self):
        stand_in = tfgan_compat.EstimatorStandIn("tensorflow.estimator")
        self.assertIs(stand_in.SessionRunHook, stand_in.SessionRunHook)  # made once

        class Hook(stand_in.SessionRunHook):  # as TF-GAN's train.py does on import
            pass

        class TPUEstimator(stand_in.tpu.TPUEstimator):
            pass

        for cls in (Hook, TPUEstimator):
            with self.assertRaisesRegex(NotImplementedError, "tf.estimator does not exist"):
                cls()
        self.assertFalse(hasattr(stand_in, "__path__"))  # not mistaken for a package


if __name__ == "__main__":
    tf.test.main()
