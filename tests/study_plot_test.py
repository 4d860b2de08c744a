"""Tests for `python -m sngan_tf.study plot` (sngan_tf.study: runs, stats, figures, report) on
synthetic studies written with tf.summary.

`PlotStudyTest`: the old layout, one run per configuration folder, no Lipschitz logging.
`MultiSeedStudyTest`: `<config>/seed_<s>` runs with lipschitz/* scalars, spectra.npz and K
generated sets per evaluation, beside an old single run, checked against numpy.
`ManifoldStudyTest`: runs evaluated with precision, recall, density and coverage.
"""
import json
import os
import shutil
import tempfile
import types

import numpy as np
import tensorflow as tf

from sngan_tf import rundir
from sngan_tf.study import figures
from sngan_tf.study import report
from sngan_tf.study import runs
from sngan_tf.study import stats

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


class _PlottedStudy(tf.test.TestCase):
    """A synthetic study, built by `build(study_dir)`, plotted once for the class."""
    build = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.study = tempfile.mkdtemp()
        cls.build(cls.study)
        cls.output_dir = os.path.join(cls.study, "figures")
        cls.written = report.plot_study(cls.study, cls.output_dir)
        with open(cls.written["results"]) as f:
            cls.results = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.study, ignore_errors=True)
        super().tearDownClass()


class PlotStudyTest(_PlottedStudy):
    build = staticmethod(_build_study)

    def test_writes_every_figure_as_a_readable_png(self):
        # Labels are the configuration folders (bn_run), not config.json's norm.
        expected = {"metric_per_epoch", "losses_spectral", "losses_bn_run", "losses_none",
                    "samples_spectral", "samples_bn_run", "samples_none", "sigma", "results"}
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

    def test_resumes_are_counted_with_the_steps_trained_again(self):
        # spectral: a second process logged from step 300, the first had logged up to 300.
        # Five logged values in all: too few to weigh the change of D's loss at the resume.
        self.assertIn("| spectral | 0 | 1 | 300 (0) | — |", self.results)
        self.assertNotIn("| bn_run | 0 | 1 |", self.results.split("## Resumes")[1])
        self.assertEqual(self.results.count("## Resumes"), 1)

    def test_appendix_files_end_the_results_in_order(self):
        paths = []
        for i, text in enumerate(("## Seed spread\n\n| a | b |\n", "\nLast words.\n")):
            paths.append(os.path.join(self.get_temp_dir(), f"appendix_{i}.md"))
            with open(paths[-1], "w") as f:
                f.write(text)
        written = report.plot_study(self.study, os.path.join(self.get_temp_dir(), "with"),
                                    appendix=paths)
        with open(written["results"]) as f:
            results = f.read()
        self.assertTrue(results.startswith(self.results.rstrip("\n")), "the report changed")
        self.assertTrue(results.endswith("\n\n## Seed spread\n\n| a | b |\n\nLast words.\n"),
                        results[-200:])

    def test_no_precision_recall_without_their_metrics(self):
        self.assertNotIn("precision_recall", self.written)
        self.assertNotIn("recall", self.results)

    def test_results_table_has_final_best_and_epoch_of_best(self):
        self.assertIn(f"Metric: `{_FD}`, FD (cifar10_classifier features) — not an Inception FID;"
                      " lower is better.", self.results)
        self.assertIn(f"| configuration | seeds | sets | final {_FD} | best {_FD} "
                      "| epoch of best (mean curve) | images/s (median of each process) "
                      "| steps trained |", self.results)
        # Spectral: best is the re-logged 41.5 at epoch 2, final 44.25; images/s: the first
        # process's median over steps 0-200 (100, 300, 200), the resumed one's over 300-400 with
        # its 1000 at step 300 (1000, 50; the stale 10 would give 30); 400 steps. One seed
        # (0, config.json has none), one set per evaluation: values alone, no ± std.
        self.assertIn("| spectral | 0 | 1 | 44.25 | 41.50 | 2 | 200–525 | 400 |", self.results)
        self.assertIn("| bn_run | 0 | 1 | 77.75 | 77.75 | 1 | 500 | 200 |", self.results)
        self.assertIn("| none | 0 | 1 | — | — | — | 700 | 0 |", self.results)
        # Ordered by normalisation (spectral, batch, none), not by folder name.
        self.assertLess(self.results.index("| spectral"), self.results.index("| bn_run"))
        self.assertLess(self.results.index("| bn_run"), self.results.index("| none"))
        self.assertIn(f"| epoch | spectral (1 seed, K=1) | bn_run (1 seed, K=1) "
                      "| none (1 seed, K=1) |", self.results)
        self.assertIn("| 1 | 50.00 | 77.75 | — |", self.results)
        self.assertIn("(metric_per_epoch.png)", self.results)
        self.assertIn("(sigma.png)", self.results)

    def test_runs_without_lipschitz_logging_are_noted_not_fatal(self):
        self.assertNotIn("lipschitz", self.written)
        self.assertNotIn("spectra", self.written)
        self.assertNotIn("operator_norm_vs_sigma", self.written)
        self.assertIn("- spectral: no lipschitz/* scalars", self.results)
        self.assertIn("- none: no spectra.npz", self.results)
        self.assertNotIn("## Lipschitz", self.results)
        # The SN table still lists sigma; the operator norm was not logged.
        self.assertIn("| spectral | conv1 | 3.00 | — | — | 400 / — |", self.results)

    def test_later_event_file_wins_and_sigma_tags_are_read(self):
        events = rundir.RunDir(os.path.join(self.study, "spectral")).read_events()
        scalars = events.scalars
        steps, values = scalars["loss/d"]
        self.assertAllEqual(steps, [0, 100, 200, 300, 400])
        self.assertAllClose(values, [1.0, 1.1, 1.2, 5.0, 6.0])
        self.assertAllClose(scalars["sigma/conv1"][1], 2.0 + steps / 400)
        self.assertEqual(max(events.samples), 400)
        self.assertNotIn("samples", scalars)

    def test_latest_sample_file_by_step(self):
        run = runs.read_run(os.path.join(self.study, "spectral"))
        self.assertEqual(run.sample_step, 400)
        run = runs.read_run(os.path.join(self.study, "none"))
        self.assertEqual(run.sample_step, 0)  # From the event file: no samples/ folder.
        self.assertEqual(run.metrics, {})

    def test_a_variant_keeps_its_normalisation_colour_with_another_line_style(self):
        groups = [types.SimpleNamespace(norm=n) for n in ("spectral", "spectral", "batch",
                                                          "none", "spectral")]
        styles = figures.group_styles(groups)
        colors = [c for c, _ in styles]
        self.assertEqual(colors[0], colors[1])
        self.assertEqual(colors[0], colors[4])
        self.assertLen({colors[0], colors[2], colors[3]}, 3)
        self.assertEqual([s for _, s in styles], ["-", "--", "-", "-", "-."])
        # Without a variant, colours are the cycle's in order, as before variants existed.
        plain = figures.group_styles(groups[1:4])
        self.assertEqual([c for c, _ in plain], figures._colors()[:3])

    def test_ema_smooth_matches_hand_computed_values(self):
        # w = 0.5: m1 = 1, s1 = 1 / 0.5 = 2; m2 = 0.5 + 2 = 2.5, s2 = 2.5 / 0.75 = 10/3;
        # nan passes through; m3 = 1.25 + 4 = 5.25, s3 = 5.25 / 0.875 = 6.
        smoothed = stats.ema_smooth([2.0, 4.0, np.nan, 8.0], weight=0.5)
        self.assertAllClose(smoothed, [2.0, 10.0 / 3.0, np.nan, 6.0])
        self.assertAllClose(stats.ema_smooth([3.0, -1.0], weight=0.0), [3.0, -1.0])
        with self.assertRaises(ValueError):
            stats.ema_smooth([1.0], weight=1.0)

    def test_change_shares_single_out_a_jump(self):
        # window 2: the means of pairs jump by 5 at step 6 and by 2.5 at steps 5 and 7 (the
        # pairs straddling it); every other change is 0. Step 3 is ordinary, step 11 too
        # close to the end.
        values = [0, 1, 0, 1, 0, 1, 5, 6, 5, 6, 5, 6]
        shares = stats.change_shares(np.arange(12) * 100, values, [300, 600, 1100], window=2)
        self.assertEqual(shares, [1.0, 0.0, None])
        # Without the jump at 600 it is as ordinary as any point (2 of 7 others change more).
        shares = stats.change_shares(np.arange(12) * 100, values, [300, 500], window=2)
        self.assertEqual(shares, [1.0, 2 / 7])
        self.assertEqual(stats.change_shares([0, 1], [1.0, 2.0], [1], window=2), [None])

    def test_summarize_metric_direction(self):
        epochs, values = [1, 2, 3], [3.0, 5.0, 4.0]
        self.assertEqual(stats.summarize_metric(epochs, values), (4.0, 3.0, 1.0))
        self.assertEqual(stats.summarize_metric(epochs, values, higher_better=True),
                         (4.0, 5.0, 2.0))

    def test_choose_metric_prefers_fid_then_first_fd(self):
        def run(*names):
            metrics = {n: (np.array([1]), np.array([1.0]), np.array([1.0])) for n in names}
            return runs.Run("dir", "x", {}, {}, metrics, None, None)

        self.assertEqual(runs.choose_metric([run("is", "fd_b"), run("fid", "fd_a")]), "fid")
        self.assertEqual(runs.choose_metric([run("num_sets", "fd_b_std", "fd_b")]), "fd_b")
        self.assertEqual(runs.choose_metric([run("is", "fd_b"), run("fd_a")]), "fd_b")
        self.assertIsNone(runs.choose_metric([run("is")]))
        self.assertEqual(runs.choose_metric([run("fid")], metric="kid"), "kid")


# The multi-seed study: FD per seed at epochs 1 and 2, and the final (step 200) Lipschitz values.
_SEEDS = {"spectral": (0, 1, 2), "batchnorm": (0, 1)}
_FD_BY_EPOCH = {"spectral": {1: (10.0, 12.0, 14.0), 2: (8.0, 9.0, 13.0)},
                "batchnorm": {1: (20.0, 22.0), 2: (18.0, 18.0)},
                "nonorm": {1: (30.0,), 2: (25.0,)}}
_UPPER = {"spectral": (100.0, 120.0, 140.0), "batchnorm": (1e4, 3e4)}
_REAL = {"spectral": (0.4, 0.6, 0.8), "batchnorm": (5.0, 7.0)}
_INTERP_MAX = {"spectral": (4.0, 5.0, 6.0), "batchnorm": (50.0, 70.0)}
_LAYER_NORM = {"spectral": {"conv0": (1.2, 1.4, 1.6), "conv1": (1.1, 1.1, 1.1)},
               "batchnorm": {"conv0": (3.0, 5.0), "conv1": (2.0, 2.0), "bn0": (9.0, 11.0)}}
_SPECTRA = {"conv0": np.array([1.0, 0.5, 0.25]), "conv1": np.linspace(1.0, 0.1, 10)}
_STEPS = (0, 100, 200)


def _write_seed_run(study, config, norm, seed, index, layout="seed"):
    """One run of the multi-seed study; `index` picks its values from the tables above."""
    logdir = os.path.join(study, config, f"seed_{seed}") if layout == "seed" else (
        os.path.join(study, config))
    os.makedirs(logdir)
    with open(os.path.join(logdir, "config.json"), "w") as f:
        json.dump({"model": {"norm": norm, "arch": "dcgan"}, "seed": seed, "batch_size": 64}, f)
    sets = 5 if config == "spectral" else 1
    with open(os.path.join(logdir, "metrics.csv"), "w") as f:
        f.write("step,epoch,metric,value\n")
        for epoch, values in _FD_BY_EPOCH[config].items():
            f.write(f"{100 * epoch},{epoch:.4f},{_FD},{values[index]}\n")
            if sets > 1:  # the trainer's rows with K > 1 sets: mean, std over sets, K
                f.write(f"{100 * epoch},{epoch:.4f},{_FD}_std,0.5\n")
                f.write(f"{100 * epoch},{epoch:.4f},num_sets,{sets}\n")
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for step in _STEPS:
            tf.summary.scalar("loss/d", 1.0 + 0.1 * seed, step=step)
            tf.summary.scalar("loss/g", 2.0 - step / 1000, step=step)
            tf.summary.scalar("perf/images_per_sec", 300.0, step=step)
            if config == "spectral":
                for j, layer in enumerate(("conv0", "conv1")):
                    tf.summary.scalar(f"sigma/{layer}", (1 + j) * (1 + step / 100) + 0.2 * seed,
                                      step=step)
            if config in _UPPER:
                # Grows to its final value at step 200 (log-scale figure: all positive).
                f = (1 + step / 100) / 3
                real = _REAL[config][index] * f
                tf.summary.scalar("lipschitz/grad_norm_real", real, step=step)
                tf.summary.scalar("lipschitz/grad_norm_fake", 0.5 * real, step=step)
                tf.summary.scalar("lipschitz/grad_norm_interp", 0.8 * real, step=step)
                tf.summary.scalar("lipschitz/grad_norm_real_max", 2 * real, step=step)
                tf.summary.scalar("lipschitz/grad_norm_fake_max", real, step=step)
                tf.summary.scalar("lipschitz/grad_norm_interp_max",
                                  _INTERP_MAX[config][index] * f, step=step)
                tf.summary.scalar("lipschitz/upper_bound", _UPPER[config][index] * f, step=step)
                for layer, values in _LAYER_NORM[config].items():
                    tf.summary.scalar(f"lipschitz/layer/{layer}", values[index] * f, step=step)
        tf.summary.image("samples", _image(seed), step=_STEPS[-1])
    writer.close()
    if config in _UPPER:
        # Written at a different step per seed, as runs stopped after their last finish.
        np.savez(os.path.join(logdir, "spectra.npz"), step=np.array(100 + 50 * index),
                 conv0=_SPECTRA["conv0"] * (1 + seed), conv1=_SPECTRA["conv1"][::-1])
    return logdir


def _build_multi_seed_study(study):
    """spectral: seeds 0-2, K = 5 sets; batchnorm: seeds 0-1; nonorm: an old single run."""
    for config, norm in (("spectral", "spectral"), ("batchnorm", "batch")):
        for index, seed in enumerate(_SEEDS[config]):
            _write_seed_run(study, config, norm, seed, index)
    # The layout of the study before --seeds, and no Lipschitz logging or spectra.npz.
    _write_seed_run(study, "nonorm", "none", 0, 0, layout="single")


def _mean_std(values):
    """Independent of plot_study: numpy's mean and sample std (ddof 1)."""
    return np.mean(values), np.std(values, ddof=1)


class MultiSeedStudyTest(_PlottedStudy):
    build = staticmethod(_build_multi_seed_study)

    def test_writes_every_figure(self):
        expected = {"metric_per_epoch", "lipschitz", "operator_norm_vs_sigma", "spectra",
                    "sigma", "results"}
        expected |= {f"{kind}_{c}" for kind in ("losses", "samples")
                     for c in ("spectral", "batchnorm", "nonorm")}
        self.assertEqual(set(self.written), expected)
        for name, path in self.written.items():
            if name == "results":
                continue
            with open(path, "rb") as f:
                image = tf.io.decode_png(f.read()).numpy()
            self.assertGreaterEqual(min(image.shape[:2]), 100, path)
            self.assertGreater(image.std(), 5.0, path)

    def test_groups_seeds_by_configuration_folder(self):
        groups, notes = runs.find_runs(self.study)
        self.assertEqual([(g.label, g.seeds) for g in groups],
                         [("spectral", [0, 1, 2]), ("batchnorm", [0, 1]), ("nonorm", [0])])
        self.assertEqual(notes, [])
        self.assertEqual([r.num_sets for r in groups[0].runs], [5, 5, 5])
        self.assertEqual(groups[2].first.logdir, os.path.join(self.study, "nonorm"))

    def test_metric_per_epoch_is_mean_and_std_over_seeds(self):
        self.assertEqual(_mean_std(_FD_BY_EPOCH["spectral"][1]), (12.0, 2.0))
        # One decimal: the second significant digit of the std (2.0, 1.4, 2.6).
        expected = {}
        for epoch in (1, 2):
            cells = []
            for config in ("spectral", "batchnorm"):
                mean, std = _mean_std(_FD_BY_EPOCH[config][epoch])
                cells.append(f"{mean:.1f} ± {std:.1f}" if std else f"{mean:.2f} ± 0")
            cells.append(f"{_FD_BY_EPOCH['nonorm'][epoch][0]:.2f}")  # one seed: no std
            expected[epoch] = f"| {epoch} | " + " | ".join(cells) + " |"
        self.assertEqual(expected[1], "| 1 | 12.0 ± 2.0 | 21.0 ± 1.4 | 30.00 |")
        self.assertEqual(expected[2], "| 2 | 10.0 ± 2.6 | 18.00 ± 0 | 25.00 |")
        self.assertIn(expected[1], self.results)
        self.assertIn(expected[2], self.results)
        self.assertIn("| epoch | spectral (3 seeds, K=5) | batchnorm (2 seeds, K=1) "
                      "| nonorm (1 seed, K=1) |", self.results)

    def test_summary_final_best_and_sets(self):
        self.assertIn(f"| configuration | seeds | sets | final {_FD} | best {_FD} "
                      "| epoch of best (mean curve) | std over the K sets (final, mean over "
                      "seeds) | images/s (median of each process) | steps trained |", self.results)
        # Final = best = epoch 2 for every spectral seed: 10.0 ± 2.6; std over sets 0.5.
        self.assertIn("| spectral | 0, 1, 2 | 5 | 10.0 ± 2.6 | 10.0 ± 2.6 | 2 | 0.500 | 300 "
                      "| 200 |", self.results)
        self.assertIn("| batchnorm | 0, 1 | 1 | 18.00 ± 0 | 18.00 ± 0 | 2 | — | 300 | 200 |",
                      self.results)
        self.assertIn("| nonorm | 0 | 1 | 25.00 | 25.00 | 2 | — | 300 | 200 |", self.results)

    def test_lipschitz_table_is_mean_and_std_of_final_values(self):
        self.assertEqual(_mean_std(_UPPER["spectral"]), (120.0, 20.0))
        self.assertAllClose(_mean_std(_REAL["spectral"]), (0.6, 0.2))
        self.assertAllClose(_mean_std(np.multiply(0.5, _REAL["spectral"])), (0.3, 0.1))
        self.assertAllClose(_mean_std(np.multiply(0.8, _REAL["spectral"])), (0.48, 0.16))
        self.assertAllClose(_mean_std(_INTERP_MAX["spectral"]), (5.0, 1.0))
        self.assertIn("| spectral | 200 | 0.60 ± 0.20 | 0.30 ± 0.10 | 0.48 ± 0.16 | 5.0 ± 1.0 "
                      "| 120 ± 20 |", self.results)
        self.assertAllClose(_mean_std(_UPPER["batchnorm"]), (2e4, 14142.1356))
        self.assertIn("| 20000 ± 14000 |", self.results)
        self.assertNotIn("| nonorm | 200 |", self.results)  # no lipschitz tags: no row
        self.assertIn("- nonorm: no lipschitz/* scalars", self.results)
        self.assertIn("- nonorm: no spectra.npz", self.results)

    def test_layer_tables(self):
        self.assertIn("| layer | spectral | batchnorm |", self.results)
        self.assertAllClose(_mean_std(_LAYER_NORM["spectral"]["conv0"]), (1.4, 0.2))
        self.assertAllClose(_mean_std(_LAYER_NORM["batchnorm"]["conv0"]), (4.0, 1.41421356))
        self.assertIn("| conv0 | 1.40 ± 0.20 | 4.0 ± 1.4 |", self.results)
        self.assertIn("| bn0 | — | 10.0 ± 1.4 |", self.results)
        # SN: sigma of conv0 ends at 3 + 0.2 * seed; the largest singular value of the
        # normalised conv1 kernel is 1 in every seed (conv0's is 1 + seed: 2.0 ± 1.0).
        self.assertAllClose(_mean_std([3.0, 3.2, 3.4]), (3.2, 0.2))
        # σ is read at the last logged step, the spectra where each seed's spectra.npz was.
        self.assertIn("| spectral | conv0 | 3.20 ± 0.20 | 1.40 ± 0.20 | 2.0 ± 1.0 "
                      "| 200 / 100–200 |", self.results)
        self.assertIn("| spectral | conv1 | 6.20 ± 0.20 | 1.10 ± 0 | 1.00 ± 0 | 200 / 100–200 |",
                      self.results)

    def test_mean_spectra_scale_each_seed_then_average(self):
        groups, _ = runs.find_runs(self.study)
        spectra = stats.mean_spectra(groups[0])
        self.assertEqual(list(spectra), ["conv0", "conv1"])
        scaled, top, seeds = spectra["conv0"]
        self.assertAllClose(scaled, [1.0, 0.5, 0.25])  # each seed is (1 + seed) times this
        self.assertAllClose(top, 2.0)
        self.assertEqual(seeds, 3)
        scaled, _, _ = spectra["conv1"]  # stored ascending: read back descending
        self.assertAllClose(scaled, np.linspace(1.0, 0.1, 10))
        self.assertEqual(stats.mean_spectra(groups[2]), {})


# A study evaluated with precision, recall, density and coverage on the classifier's
# features: per configuration, per seed, each metric at epochs 1, 2, 3.
_MANIFOLD_VALUES = {
    "spectral": {_FD: ((30, 20, 25), (32, 22, 21)),
                 "precision": ((0.5, 0.7, 0.6), (0.6, 0.8, 0.8)),
                 "recall": ((0.2, 0.4, 0.45), (0.3, 0.5, 0.55)),
                 "density": ((0.8, 1.1, 0.9), (1.0, 1.3, 1.1)),
                 "coverage": ((0.3, 0.5, 0.6), (0.4, 0.6, 0.7))},
    "nonorm": {_FD: ((40, 35, 50),), "precision": ((0.3, 0.4, 0.25),),
               "recall": ((0.1, 0.2, 0.125),), "density": ((0.4, 0.6, 0.5),),
               "coverage": ((0.2, 0.3, 0.375),)},
}


def _build_manifold_study(study):
    """spectral: seeds 0-1; nonorm: seed 0; metrics.csv rows only (no event files)."""
    for config, norm in (("spectral", "spectral"), ("nonorm", "none")):
        for seed in range(len(_MANIFOLD_VALUES[config][_FD])):
            logdir = os.path.join(study, config, f"seed_{seed}")
            os.makedirs(logdir)
            with open(os.path.join(logdir, "config.json"), "w") as f:
                json.dump({"model": {"norm": norm}, "seed": seed}, f)
            with open(os.path.join(logdir, "metrics.csv"), "w") as f:
                f.write("step,epoch,metric,value\n")
                for i, epoch in enumerate((1, 2, 3)):
                    for metric, per_seed in _MANIFOLD_VALUES[config].items():
                        key = metric if metric == _FD else f"{metric}_cifar10_classifier"
                        f.write(f"{100 * epoch},{epoch:.4f},{key},{per_seed[seed][i]}\n")
                    # The same run evaluated with Inception too: other keys, not shown.
                    f.write(f"{100 * epoch},{epoch:.4f},precision,0.01\n")


class ManifoldStudyTest(_PlottedStudy):
    build = staticmethod(_build_manifold_study)

    def test_precision_recall_figure(self):
        self.assertIn("precision_recall", self.written)
        with open(self.written["precision_recall"], "rb") as f:
            image = tf.io.decode_png(f.read()).numpy()
        self.assertGreater(image.shape[1], 800)  # two panels side by side
        self.assertGreater(image.std(), 5.0)
        self.assertIn("- [precision_recall](precision_recall.png)", self.results)

    def test_mean_path_over_seeds(self):
        groups, _ = runs.find_runs(self.study)
        keys = report.manifold_keys(_FD)
        epochs, x, y, x_std, y_std = figures._mean_path(  # pylint: disable=protected-access
            groups[0], keys["recall"], keys["precision"])
        self.assertAllEqual(epochs, [1, 2, 3])
        recall, precision = (np.array(_MANIFOLD_VALUES["spectral"][m])
                             for m in ("recall", "precision"))
        self.assertAllClose(x, recall.mean(axis=0))
        self.assertAllClose(y, precision.mean(axis=0))
        self.assertAllClose(x_std, recall.std(axis=0, ddof=1))
        self.assertAllClose(y_std, precision.std(axis=0, ddof=1))

    def test_keys_follow_the_compared_metric_network(self):
        self.assertEqual(report.manifold_keys(_FD)["coverage"], "coverage_cifar10_classifier")
        self.assertEqual(report.manifold_keys("fid")["precision"], "precision")
        self.assertEqual(report.manifold_keys(None)["recall"], "recall")

    def test_table_at_the_last_and_the_best_evaluation(self):
        self.assertIn("## Precision, recall, density and coverage", self.results)
        self.assertIn("| configuration | seeds | evaluation | epoch | precision | recall "
                      "| density | coverage |", self.results)
        # Means ± std (ddof 1) over seeds 0 and 1; std 0.14 of (0.6, 0.8), 0.071 of
        # (0.45, 0.55). The mean FD curve (31, 21, 23) is best at epoch 2.
        self.assertAllClose(_mean_std([0.6, 0.8]), (0.7, 0.1414214))
        self.assertIn("| spectral | 0, 1 | last | 3 | 0.70 ± 0.14 | 0.500 ± 0.071 "
                      "| 1.00 ± 0.14 | 0.650 ± 0.071 |", self.results)
        self.assertIn(f"| spectral | 0, 1 | best {_FD} | 2 | 0.750 ± 0.071 | 0.450 ± 0.071 "
                      "| 1.20 ± 0.14 | 0.550 ± 0.071 |", self.results)
        self.assertIn("| nonorm | 0 | last | 3 | 0.250 | 0.125 | 0.500 | 0.375 |", self.results)
        self.assertIn(f"| nonorm | 0 | best {_FD} | 2 | 0.400 | 0.200 | 0.600 | 0.300 |",
                      self.results)
        self.assertNotIn("0.01", self.results)  # Inception's precision: another network


# The original study's three configurations, seed 0: FD at epochs 2 and 4, class entropy,
# and D's batch-mean logits at steps 0, 100, 200 (nonorm's last real logit: nan).
_STABILITY = {
    "spectral": {"fd": (60.0, 48.0), "entropy": (1.5, 2.0), "real": (0.5, -3.0, 1.0),
                 "fake": (-0.5, -1.0, 2.5)},
    "batchnorm": {"fd": (50.0, 45.0), "entropy": (2.1, 2.2), "real": (1.0, 4.0, 2.0),
                  "fake": (-1.0, -6.0, -2.0)},
    "nonorm": {"fd": (70.0, 80.0), "entropy": (0.4, 0.9), "real": (2.0, 12.0, float("nan")),
               "fake": (-2.0, -30.0, -1.0)},
}


def _build_stability_study(study):
    """spectral, batchnorm and nonorm, seed 0, to epoch 4; batchnorm stopped on a NaN."""
    for config, values in _STABILITY.items():
        logdir = os.path.join(study, config, "seed_0")
        os.makedirs(logdir)
        with open(os.path.join(logdir, "config.json"), "w") as f:
            json.dump({"model": {"norm": config}, "seed": 0}, f)
        with open(os.path.join(logdir, "metrics.csv"), "w") as f:
            f.write("step,epoch,metric,value\n")
            for i, epoch in enumerate((2, 4)):
                f.write(f"{100 * epoch},{epoch:.4f},{_FD},{values['fd'][i]}\n")
                f.write(f"{100 * epoch},{epoch:.4f},class_entropy_cifar10_classifier,"
                        f"{values['entropy'][i]}\n")
        writer = tf.summary.create_file_writer(logdir)
        with writer.as_default():
            for i, step in enumerate((0, 100, 200)):
                tf.summary.scalar("loss/d", 1.0 + i, step=step)
                tf.summary.scalar("perf/epoch", step / 100, step=step)
                tf.summary.scalar("d_out/real", values["real"][i], step=step)
                tf.summary.scalar("d_out/fake", values["fake"][i], step=step)
        writer.close()
    with open(os.path.join(study, "batchnorm", "seed_0", "train.log"), "w") as f:
        f.write("I1206 step 200/400 ...\nerror: Non-finite loss/d at step 201; stopped "
                "without saving. Last good checkpoint: ckpt-200.\n")


class StabilityStudyTest(_PlottedStudy):
    build = staticmethod(_build_stability_study)

    def test_beside_the_original_with_rankings(self):
        self.assertIn("## Beside the original study", self.results)
        self.assertIn("ours batchnorm < spectral < nonorm; the original's batchnorm < spectral "
                      "< nonorm: the same. Ours stand at epoch 4 of 70", self.results)
        self.assertIn("(ours: `fd_cifar10_classifier`, FD (cifar10_classifier features) — not "
                      "an Inception FID); the rankings can.", self.results)
        self.assertIn("| spectral | 4 | 48.00 | 48.00 (epoch 4) | 128.9 |", self.results)
        self.assertIn("| nonorm | 4 | 80.00 | 70.00 (epoch 2) | 187.8 |", self.results)

    def test_ranking_that_differs_is_said(self):
        groups, _ = runs.find_runs(self.study)
        groups[0].runs[0].metrics[_FD][2][-1] = 90.0  # spectral now last
        text = report.results_markdown(groups, _FD, {})
        self.assertIn("ours batchnorm < nonorm < spectral; the original's batchnorm < "
                      "spectral < nonorm: different.", text)

    def test_largest_logits_first_nonfinite_and_lowest_entropy(self):
        self.assertIn("## Stability over training", self.results)
        self.assertIn("| spectral | 0 | 400 | 3.00 (100) | 2.50 (200) | none | 1.50 (epoch 2) "
                      "| 2.00 |", self.results)
        self.assertIn("| batchnorm | 0 | 400 | 4.00 (100) | 6.00 (100) | stopped: Non-finite "
                      "loss/d at step 201; stopped without saving. Last good checkpoint: "
                      "ckpt-200. | 2.10 (epoch 2) | 2.20 |", self.results)
        self.assertIn("| nonorm | 0 | 400 | 12.00 (100) | 30.00 (100) | d_out/real at step 200 "
                      "| 0.400 (epoch 2) | 0.900 |", self.results)

    def test_d_state_per_span_of_epochs(self):
        # Steps 0, 100, 200 are epochs 0, 1, 2: spans of 10 epochs hold all three, spans of
        # one epoch (0, 1] (step 0 counted in it) and (1, 2].
        self.assertIn("## D over training", self.results)
        self.assertIn("| spectral | 0–2 | 2.00 | -0.500 | 0.333 | — |", self.results)
        groups, _ = runs.find_runs(self.study)
        rows = [line for line in report._d_state_section(groups, width=1)
                if line.startswith("| spectral |") or line.startswith("| nonorm |")]
        self.assertEqual(rows, ["| spectral | 0–1 | 1.50 | -1.25 | -0.750 | — |",
                                "| spectral | 1–2 | 3.00 | 1.00 | 2.50 | — |",
                                "| nonorm | 0–1 | 1.50 | 7.00 | -16.00 | — |",
                                "| nonorm | 1–2 | 3.00 | non-finite | -1.00 | — |"])


class StatisticsTest(tf.test.TestCase):

    def test_mean_band_against_numpy(self):
        # Seed 1 is still training (no x = 200), seed 2 logged a nan at x = 100.
        series = [([0, 100, 200], [1.0, 2.0, 4.0]), ([0, 100], [3.0, 5.0]),
                  ([0, 100, 200], [2.0, np.nan, 7.0])]
        x, mean, std, count = stats.mean_band(series)
        table = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, np.nan], [2.0, np.nan, 7.0]])
        self.assertAllEqual(x, [0, 100, 200])
        self.assertAllEqual(count, [3, 2, 2])
        self.assertAllClose(mean, np.nanmean(table, axis=0))
        self.assertAllClose(std, np.nanstd(table, axis=0, ddof=1))
        x, mean, std, count = stats.mean_band([([1, 2], [5.0, 6.0])])
        self.assertAllClose(mean, [5.0, 6.0])
        self.assertTrue(np.all(np.isnan(std)))  # one seed: no band

    def test_mean_std_and_formatting(self):
        self.assertAllClose(stats.mean_std([10.0, 12.0, 14.0]), (12.0, 2.0, 3))
        mean, std, n = stats.mean_std([7.0, np.nan])
        self.assertEqual((mean, n), (7.0, 1))
        self.assertTrue(np.isnan(std))
        self.assertEqual(report.format_mean_std(12.0, 2.0), "12.0 ± 2.0")
        self.assertEqual(report.format_mean_std(0.3456, 0.0123), "0.346 ± 0.012")
        self.assertEqual(report.format_mean_std(123.4, 15.0), "123 ± 15")
        self.assertEqual(report.format_mean_std(20000.0, 14142.1), "20000 ± 14000")
        self.assertEqual(report.format_mean_std(3.1e7, 1.2e6), "3.1e+07 ± 1.2e+06")
        self.assertEqual(report.format_mean_std(1.00000024, 6.7e-7), "1.0000 ± 6.7e-07")
        self.assertEqual(report.format_mean_std(0.00796, 0.00079), "0.00796 ± 0.00079")
        self.assertEqual(report.format_mean_std(44.25), "44.25")
        self.assertEqual(report.format_values([10.0, None, 14.0]), "12.0 ± 2.8 (n=2)")
        self.assertEqual(report.format_values([None]), "—")
        self.assertEqual(report.format_value(0.7), "0.700")  # not "0.7": as precise as 0.701
        self.assertEqual(report.format_value(0.99999994), "1.00")  # float32 1, not "1"
        self.assertEqual(report.format_value(0.0000312), "3.12e-05")
        self.assertEqual(report.format_value(12.345), "12.35")

    def test_an_old_run_beside_a_seed_folder_of_the_same_seed(self):
        study = self.get_temp_dir()
        for folder, seed in (("spectral", 0), ("spectral/seed_0", 0), ("spectral/seed_1", 1)):
            os.makedirs(os.path.join(study, folder))
            with open(os.path.join(study, folder, "config.json"), "w") as f:
                json.dump({"model": {"norm": "spectral"}, "seed": seed}, f)
        groups, notes = runs.find_runs(study)
        self.assertEqual([(g.label, g.seeds) for g in groups], [("spectral", [0, 1])])
        self.assertEqual(groups[0].first.logdir, os.path.join(study, "spectral", "seed_0"))
        self.assertEqual(len(notes), 1)
        self.assertIn("both seed 0", notes[0])


if __name__ == "__main__":
    tf.test.main()
