"""`python -m sngan_tf.study run`: its training commands, and a run on a tiny generated folder
(three configurations, two seeds of one, figures, resume), plotted again by `... plot`."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from sngan_tf import rundir
from sngan_tf.study import runner

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flag(cmd, name):
    """The values of `--name=...` in a command, in order."""
    return [a.split("=", 1)[1] for a in cmd if a.startswith(f"--{name}=")]


class TrainCommandTest(tf.test.TestCase):

    def test_one_command_per_configuration_and_seed(self):
        settings = runner.StudySettings(output_dir="runs/s", epochs=8, eval_num_sets=5,
                                           classifier_path="classifiers/c")
        out = os.path.abspath("runs/s")
        for config in ("spectral", "nonorm"):
            for seed in (0, 2):
                cmd = runner.train_command(config, seed, settings, ["--batch_size=4"])
                self.assertEqual(cmd[1:4],
                                 ["-m", "sngan_tf.train", f"--flagfile=flags/{config}.cfg"])
                self.assertEqual(_flag(cmd, "seed"), [str(seed)])
                self.assertEqual(_flag(cmd, "logdir"), [os.path.join(out, config, f"seed_{seed}")])
                self.assertEqual(_flag(cmd, "eval_num_sets"), ["5"])
                self.assertEqual(_flag(cmd, "epochs"), ["8"])
                self.assertEqual(_flag(cmd, "checkpoint_every_epochs"), ["0.25"])
                self.assertEqual(_flag(cmd, "generator_every_epochs"), ["10"])
                self.assertEqual(_flag(cmd, "classifier_path"),
                                 [os.path.abspath("classifiers/c")])
                self.assertEqual(cmd[-1], "--batch_size=4")  # pass-through last: it wins

    def test_one_set_per_evaluation_leaves_the_flag_to_its_default(self):
        cmd = runner.train_command("batchnorm", 1, runner.StudySettings())
        self.assertEqual(_flag(cmd, "eval_num_sets"), [])
        self.assertEqual(_flag(cmd, "seed"), ["1"])

    def test_seeds_and_pass_through_are_checked(self):
        self.assertEqual(runner.parse_seeds(["2", "0", "1"]), [2, 0, 1])
        for bad in (["a"], ["-1"], ["1", "1"], []):
            with self.assertRaises(ValueError):
                runner.parse_seeds(bad)
        runner.check_extra(["--batch_size=4", "--seed_offset=1"])
        for bad in ("--seed=3", "--logdir=x", "--logdir"):
            with self.assertRaisesRegex(ValueError, "sets --seed and --logdir"):
                runner.check_extra(["--batch_size=4", bad])


class StudyTest(tf.test.TestCase):

    def _study_command(self, out, data, classifier, epochs, *study_flags, extra=()):
        return [sys.executable, "-m", "sngan_tf.study", "run", *study_flags,
                f"--output_dir={out}", f"--epochs={epochs}", "--dataset=image_folder",
                f"--data_dir={data}", "--eval_network=classifier",
                f"--classifier_path={classifier}", "--",
                "--batch_size=4", "--log_every=1", "--sample_every=1", "--checkpoint_every=1",
                "--eval_num_samples=8", "--eval_real_samples=8",
                f"--cache_dir={self.get_temp_dir()}/cache", *extra]

    def _study(self, out, data, classifier, epochs, *study_flags, extra=()):
        cmd = self._study_command(out, data, classifier, epochs, *study_flags, extra=extra)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        return result

    def _images(self, n=8):
        data = os.path.join(self.get_temp_dir(), "images")
        if not os.path.isdir(data):
            os.makedirs(data)
            rng = np.random.default_rng(0)
            for i in range(n):  # 8 images, batch 4: two steps per epoch
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    os.path.join(data, f"{i}.png"))
        return data

    def _classifier(self):
        """A tiny feature network with the classifier signature (pool_3, logits)."""
        path = os.path.join(self.get_temp_dir(), "tiny_classifier")

        class Net(tf.Module):
            def __init__(self):
                super().__init__()
                self.w = tf.Variable(tf.random.stateless_normal((3, 5), seed=[1, 2]))

            @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
            def __call__(self, images):
                pool = tf.reduce_mean(images, axis=[1, 2]) @ self.w
                return {"pool_3": pool, "logits": pool[:, :2]}

        net = Net()
        tf.saved_model.save(net, path, signatures={"serving_default": net.__call__})
        return path

    def test_three_configurations_then_a_second_seed_and_resume(self):
        data = self._images()
        out = os.path.join(self.get_temp_dir(), "study")
        classifier = self._classifier()
        self._study(out, data, classifier, epochs=1)  # --seeds defaults to 0
        for config in ("spectral", "batchnorm", "nonorm"):
            self.assertTrue(tf.train.latest_checkpoint(
                os.path.join(out, config, "seed_0", "checkpoints")).endswith("ckpt-2"))
            with open(os.path.join(out, config, "seed_0", "train.log")) as f:
                self.assertIn("Done: step 2.", f.read())  # each run's own log
        figures = os.path.join(out, "figures")
        for name in ("metric_per_epoch.png", "sigma.png", "results.md",
                     "losses_spectral.png", "samples_nonorm.png"):
            self.assertTrue(os.path.exists(os.path.join(figures, name)), name)

        # Two more epochs for seed 0 (resumed at step 2) and a new seed 1, of two configurations.
        result = self._study(out, data, classifier, 2, "--seeds=0,1", "--configs=spectral,nonorm",
                             "--generator_every_epochs=1", extra=["--metrics=fd,class_entropy"])
        self.assertEqual(result.stderr.count("Resumed from"), 2, result.stderr[-3000:])
        self.assertIn("[nonorm/seed_1] ", result.stderr)  # lines say which run
        generators = {seed: list(rundir.RunDir(os.path.join(out, "nonorm", f"seed_{seed}"))
                                 .generator_files()) for seed in (0, 1)}
        self.assertEqual(generators, {0: [4], 1: [2, 4]})  # seed 0 resumed at step 2
        # --metrics reaches the trainer's evaluations: seed 1 has only those two.
        self.assertEqual(set(rundir.RunDir(os.path.join(out, "nonorm", "seed_1")).read_metrics()),
                         {"fd_tiny_classifier", "class_entropy_tiny_classifier", "num_samples"})
        for seed in (0, 1):
            run = rundir.RunDir(os.path.join(out, "spectral", f"seed_{seed}"))
            self.assertEqual(run.read_config()["seed"], seed)
            steps, epochs, _ = run.read_metrics()["fd_tiny_classifier"]
            self.assertAllEqual(steps, [2, 4])
            self.assertAllEqual(epochs, [1.0, 2.0])
        self.assertTrue(tf.train.latest_checkpoint(
            os.path.join(out, "batchnorm", "seed_0", "checkpoints")).endswith("ckpt-2"))
        with open(os.path.join(figures, "results.md")) as f:
            results = f.read()
        self.assertIn("| spectral | 0, 1 | 1 |", results)
        self.assertIn("| batchnorm | 0 | 1 |", results)

        # The plot command alone draws the same report from the same runs.
        replot = os.path.join(self.get_temp_dir(), "replot")
        result = subprocess.run(
            [sys.executable, "-m", "sngan_tf.study", "plot", f"--study_dir={out}",
             f"--output_dir={replot}"], capture_output=True, text=True, timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(replot, "results.md")) as f:
            self.assertEqual(f.read(), results)

    def test_a_stopped_study_saves_every_run_and_resumes(self):
        """SIGTERM to the study reaches the runs side by side: each saves a checkpoint at the
        step it stopped, the study exits 143, and the next call resumes them there."""
        data, classifier = self._images(), self._classifier()
        out = os.path.join(self.get_temp_dir(), "stopped")
        cmd = self._study_command(out, data, classifier, 500, "--configs=spectral,nonorm",
                                  "--noplot")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        study = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        logs = [os.path.join(out, c, "seed_0", "train.log") for c in ("spectral", "nonorm")]
        deadline = time.time() + 300
        while time.time() < deadline and not all(
                os.path.exists(p) and "step 3/1000" in open(p).read() for p in logs):
            time.sleep(0.5)
        study.send_signal(signal.SIGTERM)
        self.assertEqual(study.wait(timeout=120), 128 + signal.SIGTERM)
        stopped = {}
        for config, log in zip(("spectral", "nonorm"), logs):
            with open(log) as f:
                self.assertIn("Stopped by signal 15", f.read())
            run = rundir.RunDir(os.path.join(out, config, "seed_0"))
            stopped[config] = int(run.checkpoints()[-1].rsplit("-", 1)[1])
            self.assertBetween(stopped[config], 3, 999)
        result = subprocess.run(
            self._study_command(out, data, classifier, 1, "--configs=spectral,nonorm",
                                "--noplot"), capture_output=True, text=True, env=env,
            timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        for config, step in stopped.items():  # past --epochs=1 already: nothing to do
            self.assertIn(f"[{config}/seed_0] ", result.stderr)
            self.assertIn(f"Resumed from", result.stderr)
            self.assertIn(f"Nothing to do: step {step} >= --train_steps=2.", result.stderr)

    def test_unknown_command_and_bad_flags_are_refused(self):
        for args, expected in ((["train"], "unknown command 'train'"), ([], "no command"),
                               (["run", "--seeds=0,0"], "--seeds: 0 given twice"),
                               (["run", "--configs=nope"], "--configs: no flags/nope.cfg"),
                               (["run", "--", "--seed=3"], "sets --seed and --logdir"),
                               (["plot", "--study_dir=.", "--appendix=no/such.md"],
                                "--appendix: no file no/such.md")):
            result = subprocess.run([sys.executable, "-m", "sngan_tf.study", *args],
                                    capture_output=True, text=True, timeout=120)
            self.assertNotEqual(result.returncode, 0, args)
            self.assertIn(expected, result.stderr, args)

if __name__ == "__main__":
    tf.test.main()
