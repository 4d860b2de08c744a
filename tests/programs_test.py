"""The sample and evaluate programs on a tiny run with two checkpoints.

The run is made in-process by `loop.Trainer` (dcgan, batch 4, 2 steps, a checkpoint
per step); evaluation uses a tiny stand-in classifier SavedModel (8x8 input, 12-d
`pool_3`) and an image folder, so everything runs offline in seconds.
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf
from PIL import Image

from conftest import read_scalars
from sngan_tf import eval as eval_lib
from sngan_tf import evaluate
from sngan_tf import feature_networks
from sngan_tf import loop
from sngan_tf import models
from sngan_tf import rundir
from sngan_tf import sample
from sngan_tf import training

_METRIC = "fd_toy_classifier"


class _ToyClassifier(tf.Module):
    """Classifier-shaped SavedModel: 8x8 images -> {pool_3: 2x2 block means, logits}."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.random.default_rng(1).standard_normal((12, 10)), dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 3], tf.float32)])
    def __call__(self, x):
        pool = tf.reshape(tf.nn.avg_pool2d(x, 4, 4, "VALID"), [tf.shape(x)[0], 12])
        return {"pool_3": pool, "logits": tf.matmul(pool, self.w)}


class ProgramsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.logdir = os.path.join(cls.root, "run")
        cls.config = training.TrainConfig(
            model=models.ModelConfig(arch="dcgan", norm="spectral"), batch_size=4,
            train_steps=2, log_every=1, sample_every=1, checkpoint_every=1, num_grid_samples=4,
            generator_every=1)
        images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
        cls.images = images
        cls.trainer = loop.Trainer(cls.config, cls.logdir, images)
        cls.trainer.run()
        cls.ckpt1 = os.path.join(cls.logdir, "checkpoints", "ckpt-1")
        cls.folder = os.path.join(cls.root, "images")
        os.makedirs(cls.folder)
        for i, image in enumerate(images):
            Image.fromarray(image).save(os.path.join(cls.folder, f"{i:02d}.png"))
        cls.classifier = os.path.join(cls.root, "toy_classifier")
        tf.saved_model.save(_ToyClassifier(), cls.classifier)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def _out(self, name):
        return os.path.join(self.get_temp_dir(), name)

    # -- sample ----------------------------------------------------------------------------
    def test_sample_writes_npz_and_png_grid(self):
        result = sample.sample(self.logdir, num_images=5, output=self._out("a.npz"))
        self.assertEqual((result.step, os.path.basename(result.checkpoint)), (2, "ckpt-2"))
        with np.load(self._out("a.npz")) as f:
            images = f["images"]
        self.assertEqual(images.shape, (5, 32, 32, 3))
        self.assertEqual(images.dtype, np.uint8)
        self.assertGreater(len(np.unique(images)), 1)
        self.assertAllEqual(images, result.images)

        sample.sample(self.logdir, num_images=5, output=self._out("a.png"))
        grid = tf.io.decode_png(tf.io.read_file(self._out("a.png"))).numpy()
        self.assertEqual(grid.shape, (2 * 32, 3 * 32, 3))  # 5 images: 2 rows of 3
        self.assertAllEqual(grid[32:, 32:64], images[4])

    def test_sample_depends_on_seed_and_checkpoint_only(self):
        first = sample.sample(self.logdir, num_images=5, output=self._out("b.npz")).images
        again = sample.sample(self.logdir, num_images=3, output=self._out("c.npz")).images
        self.assertAllEqual(again, first[:3])  # same seed, fewer images: the same ones
        other_seed = sample.sample(self.logdir, num_images=5, output=self._out("d.npz"),
                                   seed=1).images
        self.assertFalse(np.array_equal(other_seed, first))
        older = sample.sample(self.logdir, num_images=5, output=self._out("e.npz"),
                              checkpoint=self.ckpt1)
        self.assertEqual(older.step, 1)
        self.assertFalse(np.array_equal(older.images, first))

    def test_exported_signature_matches_generate(self):
        export_dir = self._out("export")
        result = sample.sample(self.logdir, export_dir=export_dir)
        self.assertIsNone(result.images)
        self.assertIn("input  z: float32 [None, 100]", result.signature)
        self.assertIn("output images: float32 [None, 32, 32, 3]", result.signature)
        serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        z = models.sample_z(self.config.model, 3, [7, 7])
        expected = self.trainer.gan.generate(z)  # the trained generator, still in memory
        self.assertAllClose(serve(z=z)["images"], expected, atol=1e-5)
        self.assertGreater(float(tf.math.reduce_std(expected)), 1e-3)
        # A fresh process without sngan_tf (nor Keras layers of ours) loads and runs it.
        code = ("import sys, numpy as np, tensorflow as tf\n"
                f"serve = tf.saved_model.load({export_dir!r}).signatures['serving_default']\n"
                "z = tf.constant(np.load(sys.argv[1]))\n"
                "np.save(sys.argv[2], serve(z=z)['images'].numpy())\n"
                "assert not [m for m in sys.modules if m.startswith('sngan_tf')]\n")
        np.save(self._out("z.npy"), z.numpy())
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([sys.executable, "-c", code, self._out("z.npy"), self._out("x.npy")],
                       cwd=tempfile.gettempdir(), env=env, check=True, timeout=120,
                       capture_output=True)
        self.assertAllClose(np.load(self._out("x.npy")), expected, atol=1e-5)

    def test_sample_errors_name_the_flags(self):
        with self.assertRaisesRegex(ValueError, "--output.*--export_dir"):
            sample.sample(self.logdir)
        with self.assertRaisesRegex(rundir.RunNotFoundError, "--logdir"):
            sample.sample(self._out("missing"), output=self._out("x.npz"))
        with self.assertRaisesRegex(rundir.RunNotFoundError, "--checkpoint"):
            sample.sample(self.logdir, output=self._out("x.npz"), checkpoint=self.ckpt1 + "9")

    # -- evaluate --------------------------------------------------------------------------
    def _evaluate(self, logdirs, **kwargs):
        args = dict(eval_network="classifier", classifier_path=self.classifier,
                    dataset="image_folder", data_dir=self.folder,
                    cache_dir=os.path.join(self.root, "cache"), num_samples=8,
                    num_real_samples=16)
        args.update(kwargs)
        return evaluate.evaluate_runs(logdirs, **args)

    def _second_run(self):
        """A run whose only checkpoint is the first run's ckpt-1 (no second training)."""
        logdir = self._out("second_run")
        os.makedirs(os.path.join(logdir, "checkpoints"))
        shutil.copy(os.path.join(self.logdir, "config.json"), logdir)
        with open(os.path.join(logdir, "checkpoints", "checkpoint"), "w") as f:
            f.write(f'model_checkpoint_path: "{self.ckpt1}"\n'
                    f'all_model_checkpoint_paths: "{self.ckpt1}"\n')
        return logdir

    def test_evaluate_all_checkpoints_of_two_runs_loading_once(self):
        logdir, second = self.logdir, self._second_run()
        loaded = []

        def load(*args):
            loaded.append(real_load(*args))
            return loaded[-1]
        real_load = feature_networks.load_feature_network
        with mock.patch.object(feature_networks, "load_feature_network", side_effect=load), \
                mock.patch.object(eval_lib, "training_statistics",
                                  wraps=eval_lib.training_statistics) as statistics:
            both = self._evaluate([logdir, second], all_checkpoints=True)
        self.assertLen(loaded, 1)
        self.assertEqual(statistics.call_count, 1)
        # Real statistics once (16 images), then 8 generated images per checkpoint.
        self.assertEqual(loaded[0].num_images, 16 + 3 * 8)
        results = both[logdir]
        self.assertEqual([step for step, _ in results], [1, 2])
        fd = {step: scores[_METRIC] for step, scores in results}
        self.assertNotAlmostEqual(fd[1], fd[2])
        self.assertEqual([step for step, _ in both[second]], [1])
        self.assertAllClose(both[second][0][1], results[0][1])  # same checkpoint, same codes

        # The trainer's evaluator, on its in-memory generator, gives the same step-2 scores.
        stats = eval_lib.training_statistics(
            loaded[0], self.images, dataset="image_folder", data_dir=self.folder,
            image_size=32, num_samples=16, cache_dir=os.path.join(self.root, "cache"))
        trainer_eval = eval_lib.make_run_evaluator(loaded[0], stats, self.config, 8)
        self.assertAllClose(trainer_eval(self.trainer.gan), results[1][1], rtol=1e-5)

        with open(os.path.join(logdir, "metrics.csv")) as f:
            rows = [r for r in csv.DictReader(f) if r["metric"] == _METRIC]
        self.assertEqual([(r["step"], r["epoch"]) for r in rows],
                         [("1", "0.2500"), ("2", "0.5000")])  # 16 images / batch 4
        self.assertAllClose([float(r["value"]) for r in rows], [fd[1], fd[2]], rtol=1e-5)
        self.assertAllClose(read_scalars(logdir, f"eval/{_METRIC}"), fd, rtol=1e-6)
        self.assertAllClose(read_scalars(second, f"eval/{_METRIC}"), {1: fd[1]}, rtol=1e-6)

    def test_evaluate_kept_generators_scores_as_their_checkpoints(self):
        copy = self._out("generators_run")  # its own metrics.csv
        shutil.copytree(self.logdir, copy)
        shutil.rmtree(os.path.join(copy, "checkpoints"))  # the generators alone suffice
        kept = self._evaluate([copy], generators=True, metrics=["fd", "precision"])[copy]
        self.assertEqual([step for step, _ in kept], [1, 2])
        ckpt1_run = self._second_run()  # ckpt-1 only
        from_checkpoint = self._evaluate([ckpt1_run], metrics=["fd", "precision"])[ckpt1_run]
        self.assertAllClose(kept[0][1], from_checkpoint[0][1], rtol=1e-5)
        self.assertNotAlmostEqual(kept[0][1][_METRIC], kept[1][1][_METRIC])
        self.assertEqual(list(rundir.RunDir(copy).read_metrics()[_METRIC][0]), [1, 2])
        with self.assertRaisesRegex(rundir.RunNotFoundError, "--generators: .*keeps no"):
            self._evaluate([ckpt1_run], generators=True)

    def test_evaluate_errors_come_before_any_loading(self):
        no_checkpoint = self._out("no_checkpoint")
        os.makedirs(no_checkpoint)
        shutil.copy(os.path.join(self.logdir, "config.json"), no_checkpoint)
        with mock.patch.object(feature_networks, "load_feature_network") as load:
            with self.assertRaisesRegex(rundir.RunNotFoundError, "no checkpoint"):
                self._evaluate([self.logdir, no_checkpoint])
            with self.assertRaisesRegex(rundir.RunNotFoundError, "--logdir=.*no such"):
                self._evaluate([self._out("missing")])
        load.assert_not_called()
        with self.assertRaisesRegex(feature_networks.FeatureNetworkUnavailable,
                                    "--classifier_path"):
            self._evaluate([self.logdir], classifier_path=self._out("no_classifier"))

    def test_command_line_missing_logdir_exits_2(self):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        missing = self._out("missing")
        result = subprocess.run(
            [sys.executable, "-m", "sngan_tf.evaluate", f"--logdir={missing}",
             "--eval_network=classifier", f"--classifier_path={self.classifier}"],
            env=env, capture_output=True, text=True, timeout=120,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.assertEqual(result.returncode, 2, result.stderr[-2000:])
        self.assertIn(f"error: --logdir={missing}: no such directory", result.stderr)


if __name__ == "__main__":
    tf.test.main()
