"""The training step, its distribution, and the loop's checkpoints, summaries and resume."""
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from tensorboard.backend.event_processing import event_accumulator

from conftest import mirrored_strategy
from sngan_tf import lipschitz, loop, models, rundir, training

_STUDY = {"spectral": True, "batch": True, "none": False}  # norm -> batch norm in G


def _config(norm="spectral", **kwargs):
    model = models.ModelConfig(arch="dcgan", norm=norm, g_batchnorm=_STUDY[norm],
                               sync_batchnorm=kwargs.pop("sync_batchnorm", False))
    defaults = dict(batch_size=4, train_steps=2, log_every=1, sample_every=1, checkpoint_every=1,
                    num_grid_samples=4)
    defaults.update(kwargs)
    return training.TrainConfig(model=model, **defaults)


def _images(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _scalar_tags(logdir):
    acc = event_accumulator.EventAccumulator(logdir, size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    return acc


class StepTest(tf.test.TestCase):

    def _gan_and_iterator(self, config, images=None):
        from sngan_tf import data  # pylint: disable=g-import-not-at-top
        gan = training.GAN(config)
        dataset = data.make_dataset(_images() if images is None else images,
                                    config.batch_size, config.seed)
        return gan, iter(gan.strategy.experimental_distribute_dataset(dataset))

    def test_variable_sets_are_disjoint_and_complete(self):
        gan = training.GAN(_config("batch"))
        g = {id(v) for v in gan.generator.trainable_variables}
        d = {id(v) for v in gan.discriminator.trainable_variables}
        self.assertEmpty(g & d)
        # Every trainable variable the GAN holds (what a checkpoint of it would save).
        everything = {id(x) for x in tf.train.TrackableView(gan).descendants()
                      if isinstance(x, keras.Variable) and x.trainable}
        self.assertEqual(g | d, everything)

    def test_n_dis_bookkeeping_and_no_retracing(self):
        gan, it = self._gan_and_iterator(_config(n_dis=3))
        for _ in range(4):
            out = gan.train_step(it)
        self.assertEqual(int(gan.d_opt.iterations), 12)
        self.assertEqual(int(gan.g_opt.iterations), 4)
        self.assertEqual(int(gan.step), 4)
        self.assertEqual(gan.train_step.experimental_get_tracing_count(), 1)
        self.assertTrue(bool(out["finite"]))
        self.assertCountEqual(out.keys(), ["loss/d", "loss/d_real", "loss/d_fake", "loss/g",
                                           "d_out/real", "d_out/fake", "finite"])

    def test_discriminator_separates_an_easy_split(self):
        # Real images are bright, the (untrained) generator's are not: D must learn that.
        images = np.full((64, 32, 32, 3), 250, np.uint8)
        gan, it = self._gan_and_iterator(_config(lr_g=1e-12, batch_size=8), images)
        for _ in range(15):
            gan.train_step(it)
        real = gan.discriminator(images[:8].astype(np.float32) / 127.5 - 1.0, training=False)
        fake = gan.discriminator(gan.generate(models.sample_z(gan.config.model, 8, [9, 9])),
                                 training=False)
        self.assertGreater(float(tf.reduce_min(real)), float(tf.reduce_max(fake)))


class DistributeTest(tf.test.TestCase, parameterized.TestCase):

    def _run(self, strategy, norm):
        from sngan_tf import data  # pylint: disable=g-import-not-at-top
        keras.utils.set_random_seed(3)
        config = _config(norm, sync_batchnorm=True)
        gan = training.GAN(config, strategy)
        dataset = data.make_dataset(_images(), config.batch_size, config.seed)
        out = gan.train_step(iter(gan.strategy.experimental_distribute_dataset(dataset)))
        variables = gan.generator.weights + gan.discriminator.weights
        slots = gan.g_opt.variables + gan.d_opt.variables
        return ({v.name: v.numpy() for v in variables + slots},
                {k: float(v) for k, v in out.items()})

    @parameterized.parameters("spectral", "batch", "none")
    def test_mirrored_equals_single_device(self, norm):
        # One step (a D then a G update) on a global batch of 4, split 2 + 2. Only one
        # step: after it, Adam's sign-like update of near-zero gradients makes the two
        # runs drift apart by up to 2·lr per weight, whatever the implementation.
        self.assertLen(tf.config.list_logical_devices("CPU"), 2)
        single = self._run(tf.distribute.OneDeviceStrategy("/cpu:0"), norm)
        mirrored = self._run(mirrored_strategy(), norm)
        self.assertEqual(single[0].keys(), mirrored[0].keys())
        for name in single[0]:  # weights, u, batch-norm statistics, Adam's m and v
            self.assertAllClose(single[0][name], mirrored[0][name], rtol=1e-4, atol=1e-5,
                                msg=name)
        for k in single[1]:
            self.assertAllClose(single[1][k], mirrored[1][k], rtol=1e-5, atol=1e-6, msg=k)


class TrainerTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("spectral", "batch", "none")
    def test_end_to_end_then_resume(self, norm):
        logdir = os.path.join(self.get_temp_dir(), norm)
        trainer = loop.Trainer(_config(norm), logdir, _images())
        last = trainer.run()
        self.assertEqual(trainer.step, 2)
        self.assertTrue(np.isfinite(last["loss/d"]))
        self.assertEqual(os.path.basename(trainer.manager.latest_checkpoint), "ckpt-2")
        self.assertTrue(os.path.exists(os.path.join(logdir, "samples", "step_00000002.png")))
        with open(os.path.join(logdir, "config.json")) as f:
            self.assertEqual(json.load(f)["model"]["norm"], norm)
        acc = _scalar_tags(logdir)
        tags = set(acc.Tags()["tensors"])
        expected = {"loss/d", "loss/g", "loss/d_real", "loss/d_fake", "d_out/real", "d_out/fake",
                    "perf/images_per_sec", "perf/epoch"}
        self.assertContainsSubset(expected, tags)
        sigma_tags = {t for t in tags if t.startswith("sigma/")}
        if norm == "spectral":
            self.assertEqual(sigma_tags, {f"sigma/conv{i}" for i in range(4)})
        else:
            self.assertEmpty(sigma_tags)
        self.assertIn("samples", tags)
        # Lipschitz probes at every log step (default interval), one scalar per D layer.
        layers = {f"conv{i}" for i in range(4)} | ({"bn1", "bn2"} if norm == "batch" else set())
        self.assertContainsSubset(
            {f"lipschitz/grad_norm_{k}{m}" for k in ("real", "fake", "interp")
             for m in ("", "_max")} | {"lipschitz/upper_bound"}
            | {f"lipschitz/layer/{n}" for n in layers}, tags)
        self.assertLen([e for e in acc.Tensors("lipschitz/upper_bound")], 2)
        with np.load(os.path.join(logdir, "spectra.npz")) as spectra:
            self.assertEqual(set(spectra.files), {"step"} | {f"conv{i}" for i in range(4)})
            self.assertEqual(int(spectra["step"]), 2)
            self.assertLen(spectra["conv1"], 128)  # min(out 128, 4*4*64)
            # Those of the kernels the final D uses (W/σ with SN), not of the raw ones.
            conv1 = trainer.gan.discriminator.get_layer("conv1")
            self.assertAllClose(spectra["conv1"], lipschitz.kernel_spectrum(conv1), rtol=1e-5)
        g_before = [v.numpy() for v in trainer.gan.generator.weights]

        resumed = loop.Trainer(_config(norm, train_steps=3), logdir, _images())
        self.assertEqual(resumed.restore(), 2)
        for a, b in zip(g_before, resumed.gan.generator.weights):
            self.assertAllEqual(a, b.numpy())
        resumed.run()
        self.assertEqual(resumed.step, 3)
        self.assertEqual(int(resumed.gan.g_opt.iterations), 3)

    def test_trainer_under_mirrored_strategy_checkpoints_and_resumes(self):
        logdir = os.path.join(self.get_temp_dir(), "mirrored")
        config = _config("batch", sync_batchnorm=True)
        trainer = loop.Trainer(config, logdir, _images(), mirrored_strategy())
        self.assertEqual(trainer.gan.strategy.num_replicas_in_sync, 2)
        trainer.run()
        resumed = loop.Trainer(_config("batch", sync_batchnorm=True, train_steps=3), logdir,
                                   _images(), mirrored_strategy())
        self.assertEqual(resumed.restore(), 2)
        for a, b in zip(trainer.gan.discriminator.weights, resumed.gan.discriminator.weights):
            self.assertAllEqual(a.numpy(), b.numpy())
        resumed.run()
        self.assertEqual(resumed.step, 3)

    def test_lipschitz_interval(self):
        self.assertEqual(_config(log_every=7).lipschitz_interval, 7)
        self.assertEqual(_config(log_every=7, lipschitz_every=3).lipschitz_interval, 3)
        logdir = os.path.join(self.get_temp_dir(), "no_lipschitz")
        trainer = loop.Trainer(_config(lipschitz_every=0), logdir, _images())
        trainer.run()
        self.assertIsNone(trainer.lipschitz)
        self.assertFalse(any(t.startswith("lipschitz/")
                             for t in _scalar_tags(logdir).Tags()["tensors"]))
        self.assertFalse(os.path.exists(os.path.join(logdir, "spectra.npz")))

    def test_resume_with_other_architecture_is_refused(self):
        logdir = os.path.join(self.get_temp_dir(), "mismatch")
        loop.Trainer(_config("spectral", train_steps=1), logdir, _images()).run()
        with self.assertRaisesRegex(rundir.ConfigMismatchError, "norm: 'spectral'.*'batch'"):
            loop.Trainer(_config("batch"), logdir, _images())
        # The logdir is still usable by the right settings.
        self.assertEqual(loop.Trainer(_config("spectral"), logdir, _images()).restore(), 1)

    def test_bad_config_values_name_the_flag(self):
        for kwargs, flag in [({"lr_d": 0.0}, "--lr_d"), ({"batch_size": 0}, "--batch_size"),
                             ({"loss": "wgan"}, "--loss"), ({"train_steps": -1}, "--train_steps"),
                             ({"precision": "fp8"}, "--precision"),
                             ({"lipschitz_every": -1}, "--lipschitz_every")]:
            with self.assertRaisesRegex(ValueError, flag):
                _config(**kwargs)

    def test_tensorboard_server_lists_tags(self):
        logdir = os.path.join(self.get_temp_dir(), "tb")
        loop.Trainer(_config(train_steps=1), logdir, _images()).run()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        tb = os.path.join(os.path.dirname(sys.executable), "tensorboard")
        proc = subprocess.Popen([tb, "--logdir", logdir, "--host", "127.0.0.1", "--port",
                                 str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            scalars = images = None
            # TensorBoard takes seconds to start on a quiet machine; on a loaded one it took
            # over 60 s (the CI run beside two training jobs), hence the generous deadline.
            deadline = time.time() + 240
            while time.time() < deadline and not (scalars and images):
                try:
                    base = f"http://127.0.0.1:{port}/data/plugin"
                    scalars = json.load(urllib.request.urlopen(f"{base}/scalars/tags", timeout=5))
                    images = json.load(urllib.request.urlopen(f"{base}/images/tags", timeout=5))
                except OSError:
                    time.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(10)
        self.assertTrue(scalars and images, "TensorBoard did not answer within 240 s")
        self.assertIn("loss/d", scalars["."])
        self.assertIn("sigma/conv0", scalars["."])
        self.assertIn("samples", images["."])


class CommandLineTest(tf.test.TestCase):

    def _train(self, *args):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        return subprocess.run([sys.executable, "-m", "sngan_tf.train", *args], env=env,
                              capture_output=True, text=True, timeout=300,
                              cwd=os.path.dirname(os.path.dirname(__file__)))

    def test_trains_from_an_image_folder(self):
        from PIL import Image  # pylint: disable=g-import-not-at-top
        folder = os.path.join(self.get_temp_dir(), "images", "sub")
        os.makedirs(folder)
        for i, img in enumerate(_images(10)):
            Image.fromarray(img).save(os.path.join(folder, f"{i}.png"))
        logdir = os.path.join(self.get_temp_dir(), "cli")
        result = self._train("--dataset=image_folder", f"--data_dir={os.path.dirname(folder)}",
                             f"--logdir={logdir}", "--batch_size=4", "--epochs=1",
                             "--norm=none", "--nog_batchnorm", "--log_every=1",
                             f"--cache_dir={self.get_temp_dir()}/cache")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("Done: step 2.", result.stdout)  # 10 images / batch 4 = 2 steps per epoch
        self.assertRegex(result.stderr, r"step 1/2 .* img/s  ETA")
        self.assertTrue(glob.glob(os.path.join(logdir, "checkpoints", "ckpt-2*")))

    def test_bad_flag_fails_before_work_and_names_it(self):
        result = self._train("--norm=layer", f"--logdir={self.get_temp_dir()}/x")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--norm", result.stderr)
        self.assertFalse(os.path.exists(f"{self.get_temp_dir()}/x"))


if __name__ == "__main__":
    tf.test.main()
