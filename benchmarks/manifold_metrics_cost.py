r"""Times precision, recall, density and coverage beside the Fréchet distance, on one set of features.

From the repository root:
  .venv/bin/python benchmarks/manifold_metrics_cost.py                  # 10k vs 10k, widths 256, 2048
  .venv/bin/python benchmarks/manifold_metrics_cost.py --num_real=200 --num_fake=200 --repeats=1

What an evaluation pays per generated set, the real side cached (`sngan_tf.eval`): the
Fréchet distance (mean and covariance of the generated features, then the distance to the
cached real statistics), the kernel distance, and the four k-NN metrics with the real radii
given; once per cache entry, the real radii themselves. Widths 256 (the offline classifier's
pool features, classifiers/cifar10_classifier) and 2048 (Inception's pool3). The features are
random: the cost depends on the sizes only. Run it on a quiet machine; each time is the
median of --repeats. The peak RSS, beside the process's size once TensorFlow is loaded,
bounds what the metrics hold at once (the distance blocks: about 1 GB at most).
"""
import json
import os
import platform
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # sngan_tf

flags.DEFINE_integer("num_real", 10000, "Real features (the cached KID pool: 10,000).")
flags.DEFINE_integer("num_fake", 10000, "Generated features (the protocol's 10,000).")
flags.DEFINE_list("widths", ["256", "2048"], "Feature widths: 256 for the offline classifier, "
                  "2048 for Inception's pool3.")
flags.DEFINE_integer("repeats", 3, "Timed repeats of each measurement (median reported).")
flags.DEFINE_string("output", None, "Also write the results as JSON here.")
FLAGS = flags.FLAGS


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _median_seconds(fn, repeats):
    """Median wall time of `fn()` over `repeats` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(num_real, num_fake, width, repeats):
    """Seconds of each metric on random features of one width, as an evaluation runs them."""
    from sngan_tf import eval as eval_lib  # pylint: disable=g-import-not-at-top
    from sngan_tf import manifold_metrics  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    real = rng.standard_normal((num_real, width)).astype(np.float32)
    fake = (0.9 * rng.standard_normal((num_fake, width)) + 0.1).astype(np.float32)
    mu, sigma = eval_lib.activation_statistics(real)
    radii = manifold_metrics.knn_radii(real)

    def frechet():
        fake_mu, fake_sigma = eval_lib.activation_statistics(fake)
        return eval_lib.frechet_distance_from_stats(mu, sigma, fake_mu, fake_sigma)

    def four():
        return manifold_metrics.precision_recall_density_coverage(real, fake, real_radii=radii)

    return {
        "width": width, "num_real": num_real, "num_fake": num_fake,
        "fd_s": _median_seconds(frechet, repeats),
        "kd_s": _median_seconds(lambda: eval_lib.kid(real, fake), repeats),
        "prdc_s": _median_seconds(four, repeats),
        "real_radii_once_s": _median_seconds(lambda: manifold_metrics.knn_radii(real),
                                             repeats),
        "values": four(),
    }


def main(argv):
    del argv
    from sngan_tf import tfstart  # pylint: disable=g-import-not-at-top
    tf = tfstart.start()  # before any TensorFlow work: its start-up lines, filtered
    from sngan_tf import eval as _  # pylint: disable=g-import-not-at-top,unused-import
    baseline_mb = _peak_rss_mb()
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "tensorflow": tf.__version__, "python": platform.python_version()}
    print(json.dumps(machine))
    print(f"{'width':>6} {'real':>6} {'fake':>6} {'FD s':>8} {'KD s':>8} "
          f"{'P/R/D/C s':>10} {'radii once s':>13}")
    rows = []
    for width in FLAGS.widths:
        row = measure(FLAGS.num_real, FLAGS.num_fake, int(width), FLAGS.repeats)
        rows.append(row)
        print(f"{row['width']:>6} {row['num_real']:>6} {row['num_fake']:>6} "
              f"{row['fd_s']:>8.2f} {row['kd_s']:>8.2f} {row['prdc_s']:>10.2f} "
              f"{row['real_radii_once_s']:>13.2f}")
    peak_mb = _peak_rss_mb()
    print(f"peak RSS {peak_mb:.0f} MB ({baseline_mb:.0f} MB with TensorFlow loaded, before "
          "any metric)")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({"machine": machine, "rows": rows, "peak_rss_mb": peak_mb,
                       "baseline_rss_mb": baseline_mb}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
