"""Tests for scripts/plot_study.py on a synthetic three-run study written with tf.summary."""
import importlib.util
import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

_SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "plot_study.py")
_SPEC = importlib.util.spec_from_file_location("plot_study", _SCRIPT)
plot_study = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(plot_study)

_FD = "fd_cifar10_classifier"
_SIGMA_LAYERS = ("conv0", "conv1", "dense")


def _image(seed, size=32):
    """A random uint8 RGB image, shape (1, size, size, 3)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(1, size, size, 3), dtype=np.uint8)


def _write_events(logdir, steps, images_per_sec, loss_d=None, sigma=False):
    """Writes every scalar tag the trainer logs, plus a `samples` image at the last step."""
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for i, step in enumerate(steps):
            d = loss_d[i] if loss_d is not None else 1.0 + step / 1000
            tf.summary.scalar("loss/d", d, step=step)
            tf.summary.scalar("loss/g", 2.0 - step / 1000, step=step)
            tf.summary.scalar("loss/d_real", d / 2, step=step)
            tf.summary.scalar("loss/d_fake", d / 2, step=step)
            tf.summary.scalar("d_out/real", 0.5, step=step)
            tf.summary.scalar("d_out/fake", -0.5, step=step)
            tf.summary.scalar("perf/images_per_sec", images_per_sec[i], step=step)
            tf.summary.scalar("perf/epoch", step / 100, step=step)
            if sigma:
                for j, layer in enumerate(_SIGMA_LAYERS):
                    tf.summary.scalar(f"sigma/{layer}", 1.0 + j + step / 400, step=step)
        tf.summary.image("samples", _image(steps[-1]), step=steps[-1])
    writer.close()


def _write_run(study, folder, norm, metrics_rows=None, sample_steps=()):
    logdir = os.path.join(study, folder)
    os.makedirs(logdir)
    config = {"norm": norm, "arch": "dcgan", "batch_size": 64, "dataset": "cifar10"}
    with open(os.path.join(logdir, "config.json"), "w") as f:
        json.dump(config, f)
    if metrics_rows is not None:
        with open(os.path.join(logdir, "metrics.csv"), "w") as f:
            f.write("step,epoch,metric,value\n")
            f.writelines(",".join(str(x) for x in row) + "\n" for row in metrics_rows)
    if sample_steps:
        os.makedirs(os.path.join(logdir, "samples"))
        for step in sample_steps:
            png = tf.io.encode_png(_image(step, size=40)[0]).numpy()
            with open(os.path.join(logdir, "samples", f"step_{step:08d}.png"), "wb") as f:
                f.write(png)
    return logdir


def _build_study(study):
    """Three runs: a resumed spectral run, a one-evaluation batch run, a one-step `none` run."""
    spectral = _write_run(study, "spectral", "spectral", metrics_rows=[
        (100, 1, _FD, 50.0),
        (100, 1, "score_cifar10_classifier", 3.5),
        (200, 2, _FD, 30.0),  # Overwritten below by a resumed run: must not count as best.
        (200, 2, _FD, 41.5),
        (300, 3, _FD, 44.25),
    ], sample_steps=(100, 400, 50))
    # First file, then a resumed one re-logging steps 300 and 400: the later file must win.
    _write_events(spectral, [0, 100, 200, 300], [100, 300, 200, 10], sigma=True)
    _write_events(spectral, [300, 400], [1000, 50], loss_d=[5.0, 6.0], sigma=True)
    batch = _write_run(study, "bn_run", "batch", metrics_rows=[(100, 1, _FD, 77.75)],
                       sample_steps=(200,))
    _write_events(batch, [0, 100, 200], [400, 500, 600])
    # No metrics.csv and no samples/ folder yet: the event image is the fallback grid.
    none = _write_run(study, "none", "none")
    _write_events(none, [0], [700])
    os.makedirs(os.path.join(study, "not_a_run"))


class PlotStudyTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.study = tempfile.mkdtemp()
        _build_study(cls.study)
        cls.output_dir = os.path.join(cls.study, "figures")
        cls.written = plot_study.plot_study(cls.study, cls.output_dir)
        with open(cls.written["results"]) as f:
            cls.results = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.study, ignore_errors=True)
        super().tearDownClass()

    def test_writes_every_figure_as_a_readable_png(self):
        expected = {"metric_per_epoch", "losses_spectral", "losses_batch", "losses_none",
                    "samples_spectral", "samples_batch", "samples_none", "sigma", "results"}
        self.assertEqual(set(self.written), expected)
        for name, path in self.written.items():
            self.assertTrue(os.path.isfile(path), path)
            self.assertEqual(os.path.dirname(path), self.output_dir)
            if name == "results":
                continue
            self.assertEqual(os.path.basename(path), name + ".png")
            self.assertLess(os.path.getsize(path), 500_000, path)
            with open(path, "rb") as f:
                image = tf.io.decode_png(f.read()).numpy()
            self.assertGreaterEqual(min(image.shape[:2]), 100, path)
            self.assertGreater(image.std(), 5.0, path)  # Not a blank canvas.

    def test_results_table_has_final_best_and_epoch_of_best(self):
        self.assertIn(f"Metric: `{_FD}`, FD (cifar10_classifier features) — not an Inception FID;"
                      " lower is better.", self.results)
        self.assertIn(f"| configuration | final {_FD} | best {_FD} | epoch of best | images/s "
                      "| steps trained |", self.results)
        # Spectral: best is the re-logged 41.5 at epoch 2, final 44.25; images/s median with the
        # resumed file's 1000 at step 300 (the stale 10 would give 100); 400 steps.
        self.assertIn("| spectral | 44.25 | 41.50 | 2 | 200 | 400 |", self.results)
        self.assertIn("| batch | 77.75 | 77.75 | 1 | 500 | 200 |", self.results)
        self.assertIn("| none | — | — | — | 700 | 0 |", self.results)
        self.assertLess(self.results.index("| spectral"), self.results.index("| batch"))
        self.assertLess(self.results.index("| batch"), self.results.index("| none"))
        self.assertIn("(metric_per_epoch.png)", self.results)
        self.assertIn("(sigma.png)", self.results)

    def test_later_event_file_wins_and_sigma_tags_are_read(self):
        scalars, sample = plot_study.read_events(os.path.join(self.study, "spectral"))
        steps, values = scalars["loss/d"]
        self.assertAllEqual(steps, [0, 100, 200, 300, 400])
        self.assertAllClose(values, [1.0, 1.1, 1.2, 5.0, 6.0])
        self.assertAllClose(scalars["sigma/conv1"][1], 2.0 + steps / 400)
        self.assertEqual(sample[0], 400)
        self.assertNotIn("samples", scalars)

    def test_latest_sample_file_by_step(self):
        run = plot_study.read_run(os.path.join(self.study, "spectral"))
        self.assertEqual(run.sample_step, 400)
        run = plot_study.read_run(os.path.join(self.study, "none"))
        self.assertEqual(run.sample_step, 0)  # From the event file: no samples/ folder.
        self.assertEqual(run.metrics, {})

    def test_ema_smooth_matches_hand_computed_values(self):
        # w = 0.5: m1 = 1, s1 = 1 / 0.5 = 2; m2 = 0.5 + 2 = 2.5, s2 = 2.5 / 0.75 = 10/3;
        # nan passes through; m3 = 1.25 + 4 = 5.25, s3 = 5.25 / 0.875 = 6.
        smoothed = plot_study.ema_smooth([2.0, 4.0, np.nan, 8.0], weight=0.5)
        self.assertAllClose(smoothed, [2.0, 10.0 / 3.0, np.nan, 6.0])
        self.assertAllClose(plot_study.ema_smooth([3.0, -1.0], weight=0.0), [3.0, -1.0])
        with self.assertRaises(ValueError):
            plot_study.ema_smooth([1.0], weight=1.0)

    def test_summarize_metric_direction(self):
        epochs, values = [1, 2, 3], [3.0, 5.0, 4.0]
        self.assertEqual(plot_study.summarize_metric(epochs, values), (4.0, 3.0, 1.0))
        self.assertEqual(plot_study.summarize_metric(epochs, values, higher_better=True),
                         (4.0, 5.0, 2.0))

    def test_choose_metric_prefers_fid_then_first_fd(self):
        def run(*names):
            metrics = {n: (np.array([1]), np.array([1.0]), np.array([1.0])) for n in names}
            return plot_study.Run("dir", "x", {}, {}, metrics, None, None)

        self.assertEqual(plot_study.choose_metric([run("is", "fd_b"), run("fid", "fd_a")]), "fid")
        self.assertEqual(plot_study.choose_metric([run("is", "fd_b"), run("fd_a")]), "fd_b")
        self.assertIsNone(plot_study.choose_metric([run("is")]))
        self.assertEqual(plot_study.choose_metric([run("fid")], metric="kid"), "kid")


if __name__ == "__main__":
    tf.test.main()
