"""Crash and resume, signals, non-finite values and bad input: what a long run must survive."""
import contextlib
import io
import os
import signal
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl import flags
from absl.testing import parameterized
from PIL import Image

from sngan_tf import loop, models, rundir, train, training

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _folder(root, n=16, seed=0):
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            os.path.join(root, f"{i}.png"))
    return root


def _fresh_env():
    """The environment of a new user's shell: no TF_ENABLE_ONEDNN_OPTS (importing sngan_tf in
    this process set it), and oneDNN limited to AVX2 as on the CPUs where this project,
    not TensorFlow, turns oneDNN on (emulated here on an AVX-512 CPU)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    return env


def _checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "save_counter" not in name and name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


class CrashTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.data = _folder(os.path.join(self.get_temp_dir(), "images"))

    def _cmd(self, logdir, steps, checkpoint_every, norm="spectral"):
        return [sys.executable, "-m", "sngan_tf.train", f"--norm={norm}", "--dataset=image_folder",
                f"--data_dir={self.data}", f"--logdir={logdir}", "--batch_size=4",
                f"--train_steps={steps}", f"--checkpoint_every={checkpoint_every}",
                "--log_every=1", "--sample_every=100", "--deterministic", "--seed=5",
                f"--cache_dir={self.get_temp_dir()}/cache"]

    def _start_and_wait_for(self, cmd, line):
        """Starts the trainer and returns it once it has logged `line`."""
        proc = subprocess.Popen(cmd, cwd=_ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                text=True, env=_fresh_env())
        seen = []
        for text in proc.stderr:
            seen.append(text)
            if line in text:
                return proc
        proc.wait()
        self.fail(f"never saw {line!r}:\n{''.join(seen)[-3000:]}")

    # Batch norm too: its moving statistics and the Adam moments of its scale and offset must
    # come back as well (the 70-epoch study's batch-norm run collapsed within an epoch of a
    # resume; this is what rules the resume out).
    @parameterized.parameters("spectral", "batch")
    def test_sigkill_between_checkpoints_then_resume_is_bitwise_identical(self, norm):
        reference = os.path.join(self.get_temp_dir(), "reference")
        done = subprocess.run(self._cmd(reference, 8, 3, norm), cwd=_ROOT, capture_output=True,
                              text=True, env=_fresh_env())
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        self.assertIn("oneDNN CPU kernels on", done.stderr)  # determinism holds with oneDNN

        crashed = os.path.join(self.get_temp_dir(), "crashed")
        proc = self._start_and_wait_for(self._cmd(crashed, 8, 3, norm), "step 4/8")
        proc.kill()  # SIGKILL: after checkpoint 3, before checkpoint 6
        proc.wait()
        self.assertEqual(tf.train.latest_checkpoint(os.path.join(crashed, "checkpoints"))
                         .rsplit("-", 1)[1], "3")
        again = subprocess.run(self._cmd(crashed, 8, 3, norm), cwd=_ROOT, capture_output=True,
                               text=True, env=_fresh_env())
        self.assertEqual(again.returncode, 0, again.stderr[-3000:])
        self.assertIn("Resumed from", again.stderr)

        want = _checkpoint_values(os.path.join(reference, "checkpoints", "ckpt-8"))
        got = _checkpoint_values(os.path.join(crashed, "checkpoints", "ckpt-8"))
        self.assertEqual(want.keys(), got.keys())
        self.assertGreater(len(want), 50)  # both networks, optimizers, u, step, fixed z
        # Batch norm's moving statistics are among them (they do not change training, so a
        # checkpoint without them would still give bitwise-identical weights).
        moving = {name.split("/")[0] for name in want if "moving_mean" in name}
        self.assertEqual(moving, {"generator", "discriminator"} if norm == "batch"
                         else {"generator"})
        for name in want:
            self.assertAllEqual(want[name], got[name], msg=name)

    def test_sigterm_saves_a_checkpoint_and_exits(self):
        logdir = os.path.join(self.get_temp_dir(), "preempted")
        proc = self._start_and_wait_for(self._cmd(logdir, 10000, 10000), "step 2/10000")
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        self.assertEqual(proc.wait(), 128 + signal.SIGTERM, rest[-3000:])
        self.assertIn("Stopped by signal 15", rest)
        step = int(tf.train.latest_checkpoint(os.path.join(logdir, "checkpoints")).rsplit("-", 1)[1])
        self.assertGreaterEqual(step, 2)
        # The spectra are written for the state saved, not only at the end of training.
        self.assertEqual(rundir.RunDir(logdir).read_spectra()[0], step)


def _config(**kwargs):
    defaults = dict(model=models.ModelConfig(arch="dcgan", norm="spectral"), batch_size=4,
                    train_steps=4, log_every=1, sample_every=100, checkpoint_every=1)
    defaults.update(kwargs)
    return training.TrainConfig(**defaults)


def _images():
    return np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)


class CheckpointAndNaNTest(tf.test.TestCase):

    def test_damaged_newest_checkpoint_is_skipped(self):
        logdir = os.path.join(self.get_temp_dir(), "damaged")
        loop.Trainer(_config(train_steps=2), logdir, _images()).run()
        data = os.path.join(logdir, "checkpoints", "ckpt-2.data-00000-of-00001")
        with open(data, "r+b") as f:  # as if killed while writing
            f.truncate(100)
        trainer = loop.Trainer(_config(train_steps=3), logdir, _images())
        self.assertEqual(trainer.restore(), 1)
        trainer.run()
        self.assertEqual(trainer.step, 3)

    def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(self):
        logdir = os.path.join(self.get_temp_dir(), "nan")
        # No normalisation anywhere, so the absurd weights overflow the forward pass.
        model = models.ModelConfig(arch="dcgan", norm="none", g_batchnorm=False)
        loop.Trainer(_config(model=model, train_steps=1), logdir, _images()).run()
        trainer = loop.Trainer(_config(model=model, lr_d=1e38, lr_g=1e38), logdir, _images())
        with self.assertRaisesRegex(loop.NonFiniteError, r"Non-finite .* at step [234]"):
            trainer.run()
        latest = trainer.manager.latest_checkpoint
        self.assertEqual(latest.rsplit("-", 1)[1], "1")
        for name, value in _checkpoint_values(latest).items():
            if value.dtype.kind == "f":
                self.assertTrue(np.all(np.isfinite(value)), name)


class BadInputTest(tf.test.TestCase, parameterized.TestCase):
    """Each bad input: exit code 2 and one line naming the culprit, before any training."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = os.path.join(tf.compat.v1.test.get_temp_dir(), "bad_input")
        _folder(os.path.join(cls.root, "good"), n=8)
        os.makedirs(os.path.join(cls.root, "empty"), exist_ok=True)
        os.makedirs(os.path.join(cls.root, "text_only"), exist_ok=True)
        with open(os.path.join(cls.root, "text_only", "notes.txt"), "w") as f:
            f.write("no images here")
        _folder(os.path.join(cls.root, "corrupt"), n=4)
        with open(os.path.join(cls.root, "corrupt", "broken.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
        with open(os.path.join(cls.root, "a_file"), "w") as f:
            f.write("not a directory")

    def tearDown(self):
        flags.FLAGS.unparse_flags()
        super().tearDown()

    def _main(self, *args, logdir=None):
        logdir = logdir or os.path.join(self.root, "logs", self.id().rsplit(".", 1)[1])
        argv = ["train", f"--logdir={logdir}", "--batch_size=4", "--train_steps=1",
                f"--cache_dir={self.root}/cache", *args]
        stderr, code = io.StringIO(), 0
        flags.FLAGS.unparse_flags()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                train.main(flags.FLAGS(argv))
            except SystemExit as e:
                code = e.code
        return code, stderr.getvalue(), logdir

    @parameterized.named_parameters(
        ("lr_g", ["--lr_g=0"], "--lr_g"),
        ("lr_d", ["--lr_d=-1"], "--lr_d"),
        ("batch_size", ["--batch_size=0"], "--batch_size"),
        ("train_steps", ["--train_steps=0"], "--train_steps"),
        ("epochs", ["--epochs=0"], "--epochs"),
        ("image_size", ["--image_size=40"], "--image_size=40"),
        ("missing_folder", ["--dataset=image_folder", "--data_dir=/nonexistent/x"], "/nonexistent/x"),
        ("no_data_dir", ["--dataset=image_folder"], "--data_dir"),
        ("empty_folder", ["--dataset=image_folder", "--data_dir={root}/empty"], "empty"),
        ("no_images", ["--dataset=image_folder", "--data_dir={root}/text_only"], "text_only"),
        ("corrupt_image", ["--dataset=image_folder", "--data_dir={root}/corrupt"], "broken.png"),
        ("no_network", ["--dataset=cifar10", "--tfds_data_dir={root}/tfds"], "--tfds_data_dir"),
        ("classifier", ["--dataset=image_folder", "--data_dir={root}/good",
                        "--eval_network=classifier", "--classifier_path={root}/none"],
         "--classifier_path"),
    )
    def test_fails_with_one_line_naming_it(self, args, expected):
        code, err, logdir = self._main(*[a.format(root=self.root) for a in args])
        self.assertEqual(code, 2)
        lines = [l for l in err.splitlines() if l.startswith("error:")]
        self.assertLen(lines, 1, err)
        self.assertIn(expected, lines[0])
        # Nothing a later correct run could trip on.
        self.assertFalse(os.path.exists(os.path.join(logdir, "config.json")))

    def test_unwritable_logdir(self):
        code, err, _ = self._main("--dataset=image_folder", f"--data_dir={self.root}/good",
                                  logdir=os.path.join(self.root, "a_file", "run"))
        self.assertEqual(code, 2)
        self.assertIn("--logdir=", err)
        self.assertIn("cannot be written", err)

    def test_unknown_choice_and_missing_flag_file_are_rejected_when_parsing(self):
        for bad in ("--norm=layer", "--arch=vgg", "--loss=wgan", "--dataset=mnist",
                    "--flagfile=flags/missing.cfg"):
            with self.assertRaisesRegex(flags.Error, bad.split("=")[0].lstrip("-")):
                flags.FLAGS.unparse_flags()
                flags.FLAGS(["train", bad])

    def test_checkpoint_of_another_architecture(self):
        logdir = os.path.join(self.root, "logs", "other_arch")
        data = ["--dataset=image_folder", f"--data_dir={self.root}/good"]
        code, _, _ = self._main(*data, "--norm=spectral", logdir=logdir)
        self.assertEqual(code, 0)
        code, err, _ = self._main(*data, "--norm=batch", logdir=logdir)
        self.assertEqual(code, 2)
        self.assertIn("norm: 'spectral' in the logdir, 'batch' now", err)
        # Without config.json the checkpoint itself is checked.
        os.remove(os.path.join(logdir, "config.json"))
        code, err, _ = self._main(*data, "--norm=batch", logdir=logdir)
        self.assertEqual(code, 2)
        self.assertIn("no checkpoint fits this model", err)


if __name__ == "__main__":
    tf.test.main()
