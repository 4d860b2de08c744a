"""Tests for sngan_tf.manifold_metrics (precision, recall, density, coverage) and
sngan_tf.metric_keys (the metrics' names).

The metrics are checked against the authors' package `prdc` (Naeem et al.; a test-only
dependency, those tests skip without it) on random features and on the offline classifier's
features of two CIFAR-10 classes (skipped without the shared zip), against a brute-force
NumPy/SciPy version written here, and on sets whose answer is known.
"""
import contextlib
import io
import os
import pathlib

import numpy as np
import scipy.spatial.distance
import tensorflow as tf
from absl.testing import parameterized

from sngan_tf import manifold_metrics
from sngan_tf import metric_keys

try:
    import prdc  # pylint: disable=g-import-not-at-top
except ImportError:  # a test-only dependency (requirements-test.txt)
    prdc = None

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_ZIP = _REPO / ".." / "shared" / "data" / "cifar10_jpg.zip"
_CLASSIFIER = _REPO / "classifiers" / "cifar10_classifier"
_PR_K, _DC_K = 3, 5


def _numpy_reference(real, fake):
    """Brute force with closed balls: all pairwise distances at once (SciPy's cdist)."""
    def radii(x, k):
        return np.sort(scipy.spatial.distance.cdist(x, x), axis=1)[:, k]
    d = scipy.spatial.distance.cdist(real, fake)  # [N, M]
    real_pr, real_dc, fake_pr = radii(real, _PR_K), radii(real, _DC_K), radii(fake, _PR_K)
    return {"precision": np.mean((d <= real_pr[:, None]).any(axis=0)),
            "recall": np.mean((d <= fake_pr[None]).any(axis=1)),
            "density": np.sum(d <= real_dc[:, None]) / (_DC_K * fake.shape[0]),
            "coverage": np.mean((d <= real_dc[:, None]).any(axis=1))}


def _prdc(real, fake):
    """The authors' values: precision and recall at k = 3, density and coverage at k = 5."""
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        at_3 = prdc.compute_prdc(real, fake, nearest_k=_PR_K)
        at_5 = prdc.compute_prdc(real, fake, nearest_k=_DC_K)
    return {"precision": at_3["precision"], "recall": at_3["recall"],
            "density": at_5["density"], "coverage": at_5["coverage"]}


def _overlapping_sets(seed, n=400, m=300, dim=24):
    """Real and generated features that overlap in part: no share is 0 or 1."""
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, dim))
    fake = 0.7 * rng.standard_normal((m, dim)) + 0.4
    return real, fake


def _metrics(real, fake, **kwargs):
    return manifold_metrics.precision_recall_density_coverage(real, fake, **kwargs)


class ManifoldMetricsTest(tf.test.TestCase, parameterized.TestCase):

    def _assert_telling(self, values):
        """No value at a bound (0, or 1 for the shares) that a wrong rule could also give."""
        for name, value in values.items():
            self.assertTrue(0.0 < value and (name == "density" or value < 1.0),
                            f"{name} = {value}: not a telling comparison")

    @parameterized.named_parameters(
        ("one_block", 1 << 30), ("many_blocks", 8 * 400 * 7), ("row_blocks", 1))
    def test_matches_brute_force_in_any_blocks(self, max_block_bytes):
        real, fake = _overlapping_sets(0)
        expected = _numpy_reference(real, fake)
        self._assert_telling(expected)
        got = _metrics(real, fake, max_block_bytes=max_block_bytes)
        self.assertEqual(list(got), ["precision", "recall", "density", "coverage"])
        self.assertAllClose(got, expected, rtol=0, atol=1e-12)

    def test_matches_prdc_on_random_features(self):
        if prdc is None:
            self.skipTest("prdc is not installed (pip install -r requirements-test.txt)")
        for seed, (n, m) in enumerate([(400, 300), (250, 500), (300, 300)]):
            real, fake = _overlapping_sets(seed, n, m)
            expected = _prdc(real, fake)
            self._assert_telling(expected)
            self.assertAllClose(_metrics(real, fake, max_block_bytes=8 * m * 50), expected,
                                rtol=0, atol=1e-6)
            # Features stored as float32, as the feature networks give them.
            real32, fake32 = real.astype(np.float32), fake.astype(np.float32)
            self.assertAllClose(_metrics(real32, fake32), _prdc(real32, fake32),
                                rtol=0, atol=1e-6)

    def test_matches_prdc_on_classifier_features_of_two_cifar10_classes(self):
        if prdc is None:
            self.skipTest("prdc is not installed (pip install -r requirements-test.txt)")
        if not _SHARED_ZIP.is_file():
            self.skipTest(f"{_SHARED_ZIP} is absent (the shared CIFAR-10 zip)")
        from sngan_tf import data, feature_networks  # pylint: disable=g-import-not-at-top
        net = feature_networks.load_classifier(str(_CLASSIFIER))
        features = {}
        for name in ("cat", "dog"):
            images = data.load_images("image_folder", image_size=32,
                                      data_dir=os.path.join(_SHARED_ZIP, "cifar10/test", name))
            features[name] = np.concatenate([net(images[i:i + 250])[0]
                                             for i in range(0, len(images), 250)])
        real, fake = features["cat"], features["dog"]
        self.assertEqual(real.shape, (1000, 256))
        expected = _prdc(real, fake)
        self._assert_telling(expected)
        self.assertAllClose(_metrics(real, fake, max_block_bytes=8 * 1000 * 100), expected,
                            rtol=0, atol=1e-6)

    def test_identical_sets(self):
        # Closed balls: each feature lies in its own ball and in those of its k nearest
        # neighbours, so density is (k + 1) / k; prdc's open balls leave the k-th out (1).
        real = np.random.default_rng(1).standard_normal((200, 16))
        got = _metrics(real, real.copy())
        self.assertAllClose([got["precision"], got["recall"], got["coverage"]], [1, 1, 1],
                            rtol=0, atol=0)
        self.assertAllClose(got["density"], (_DC_K + 1) / _DC_K, atol=0.01)
        if prdc is not None:
            self.assertAllClose(_prdc(real, real.copy())["density"], 1.0, atol=0.01)

    def test_two_far_apart_clusters_score_zero(self):
        rng = np.random.default_rng(2)
        real = rng.standard_normal((100, 8))
        fake = rng.standard_normal((120, 8)) + 100.0
        self.assertAllEqual(_metrics(real, fake),
                            {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0})

    def test_collapsed_generator(self):
        # Every generated feature a copy of real feature 7: perfect quality, no diversity.
        real = np.random.default_rng(3).standard_normal((300, 16))
        fake = np.repeat(real[7:8], 300, axis=0)
        got = _metrics(real, fake)
        expected = _numpy_reference(real, fake)
        self.assertEqual(got["precision"], 1.0)
        self.assertLessEqual(got["recall"], 1 / 300)  # at most feature 7 itself
        self.assertLess(got["coverage"], 0.05)  # the balls of 7 and of its neighbours
        self.assertAllClose(got["coverage"], expected["coverage"], rtol=0, atol=1e-12)
        self.assertGreater(got["density"], 0.0)

    def test_subsets_of_metrics_and_given_radii(self):
        real, fake = _overlapping_sets(4, 120, 90)
        full = _metrics(real, fake)
        radii = manifold_metrics.knn_radii(real)
        self.assertEqual(sorted(radii), [_PR_K, _DC_K])
        brute = np.sort(scipy.spatial.distance.cdist(real, real), axis=1)
        for k in (_PR_K, _DC_K):
            self.assertAllClose(radii[k], brute[:, k], rtol=0, atol=1e-12)
        for subset in (["coverage", "density"], ["recall"], ["precision"]):
            got = _metrics(real, fake, real_radii=radii, metrics=subset)
            self.assertEqual(list(got), sorted(subset, key=manifold_metrics.METRICS.index))
            self.assertAllClose(got, {m: full[m] for m in subset}, rtol=0, atol=0)
        # Radii are used as given: doubled radii hold more generated features.
        doubled = {k: 2 * r for k, r in radii.items()}
        self.assertGreater(_metrics(real, fake, real_radii=doubled)["precision"],
                           full["precision"])

    def test_bad_input_names_the_fault(self):
        rng = np.random.default_rng(5)
        real, fake = rng.standard_normal((20, 6)), rng.standard_normal((20, 6))
        with self.assertRaisesRegex(ValueError, r"5 generated features: fewer than k \+ 1 = 6"):
            _metrics(real, fake[:5])
        with self.assertRaisesRegex(ValueError, r"3 real features: fewer than k \+ 1 = 4"):
            _metrics(real[:3], fake, metrics=["precision"])
        _metrics(real[:4], fake[:4], metrics=["precision", "recall"])  # k = 3: 4 suffice
        with self.assertRaisesRegex(ValueError, "6-wide but generated features 5-wide"):
            _metrics(real, fake[:, :5])
        bad = fake.copy()
        bad[3, 2], bad[11, 0] = np.nan, np.inf
        with self.assertRaisesRegex(ValueError, "generated features are not finite .* in 2 of "
                                    "20 rows, the first row 3"):
            _metrics(real, bad)
        with self.assertRaisesRegex(ValueError, "real features are not finite"):
            manifold_metrics.knn_radii(bad)
        with self.assertRaisesRegex(ValueError, r"must be a \[N, D\] matrix, got shape \(20,\)"):
            _metrics(real[:, 0], fake)
        with self.assertRaisesRegex(ValueError, "radii of another real set"):
            _metrics(real, fake, real_radii=manifold_metrics.knn_radii(real[:10]))
        with self.assertRaisesRegex(ValueError, "no metric"):
            _metrics(real, fake, metrics=["fid"])


class MetricKeysTest(tf.test.TestCase):

    def test_keys_name_the_network_except_inception(self):
        self.assertEqual([metric_keys.key(m) for m in metric_keys.ALL],
                         ["fid", "is", "kid", "class_entropy", "precision", "recall",
                          "density", "coverage"])
        self.assertEqual([metric_keys.key(m, "net") for m in metric_keys.ALL],
                         ["fd_net", "score_net", "kd_net", "class_entropy_net",
                          "precision_net", "recall_net", "density_net", "coverage_net"])
        for metric in metric_keys.ALL:
            for network in (None, "cifar10_classifier"):
                self.assertEqual(metric_keys.parse(metric_keys.key(metric, network)),
                                 (metric, network))
        self.assertIsNone(metric_keys.parse("num_sets"))
        self.assertIsNone(metric_keys.parse("fd_"))
        with self.assertRaisesRegex(ValueError, "unknown metric 'fid'"):
            metric_keys.key("fid")

    def test_tensorboard_aliases_are_bare_manifold_names_of_one_network(self):
        keys = ["fd_net", "precision_net", "recall_net", "density_net", "coverage_net",
                "class_entropy_net", "precision_net_std", "num_sets"]
        self.assertEqual(metric_keys.tensorboard_aliases(keys),
                         {"precision": "precision_net", "recall": "recall_net",
                          "density": "density_net", "coverage": "coverage_net"})
        # Inception's keys are bare already; two networks' recall would share one curve.
        self.assertEqual(metric_keys.tensorboard_aliases(["precision", "recall_a", "recall_b"]),
                         {})

    def test_check_orders_and_rejects(self):
        self.assertEqual(metric_keys.check(["recall", "fd"]), ("fd", "recall"))
        with self.assertRaisesRegex(ValueError, "unknown metrics fid, pr; choose from fd,"):
            metric_keys.check(["fid", "pr", "kd"])
        with self.assertRaisesRegex(ValueError, r"\(none given\)"):
            metric_keys.check([])


if __name__ == "__main__":
    tf.test.main()
