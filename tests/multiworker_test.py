"""Multi-worker training with real worker processes, started by scripts/launch_workers.py.

Two local workers with one CPU replica each (MultiWorkerMirroredStrategy over gRPC on
localhost) train the DCGAN with SN in D and batch norm in G, global batch 8, on 64 random
images, in float64. The uninterrupted 2-worker run is compared with a single-process run on
the same global batch, then a second 2-worker run is preempted (SIGTERM), resumed, killed
(SIGKILL of a worker), resumed again and must end bitwise equal to the uninterrupted one.

Why float64: the two runs add the same numbers in a different order. In float32 Adam's
first updates magnify that rounding noise in gradient components near zero (m/√v is about
±1 whatever the gradient's size), and after 5 steps 57 variables differ by more than 1e-5
relative (up to 5e-3 in weights; measured with _PRECISION = "float32", see
docs/distributed.md, "Several machines"). In float64 the same noise is ~1e-9 times smaller, so what remains to
compare is the maths: which images each worker takes, the synchronised batch norm, u kept
identical on both workers.
"""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from conftest import read_scalars
from sngan_tf import distribute, loop, models, training

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STEPS = 6
_PRECISION = "float64"  # see the module docstring
_LAUNCH_TIMEOUT_S = 600  # generous: CI machines may be shared


def _checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "save_counter" not in name and name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


class _Launch:
    """scripts/launch_workers.py in its own process group, its output read line by line."""

    def __init__(self, train_args):
        cmd = [sys.executable, os.path.join(_ROOT, "scripts", "launch_workers.py"),
               "--num_workers=2", "--", *train_args]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(cmd, cwd=_ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines, self.pids = [], {}
        # Bounded: whatever happens, the launcher and its workers end by this deadline.
        self._watchdog = threading.Timer(_LAUNCH_TIMEOUT_S, self.kill_all)
        self._watchdog.start()

    def kill_all(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def read_until(self, pattern):
        """Reads output until a line matches `pattern`; returns the match (None at the end)."""
        for line in self.proc.stdout:
            self.lines.append(line)
            found = re.match(r"\[launcher\] worker (\d+): pid (\d+)", line)
            if found:
                self.pids[int(found.group(1))] = int(found.group(2))
            found = re.search(pattern, line)
            if found:
                return found
        return None

    def wait(self):
        """Reads the rest; returns (exit code, whole output)."""
        self.read_until(r"(?!)")
        code = self.proc.wait()
        self._watchdog.cancel()
        self.kill_all()  # nothing should be left; make sure
        return code, "".join(self.lines)


class DescribeWorkerFailureTest(tf.test.TestCase):
    """The lost peer is named, not this worker's own devices (messages seen in the tests)."""

    def test_names_the_peer(self):
        cases = {
            "Collective ops is aborted by: Error reported from /job:worker/task:1: Task "
            "/job:worker/replica:0/task:1 heartbeat timeout. [[{{node CollectiveReduceV2}}]] "
            "/job:worker/replica:0/task:0/device:CPU:0": ("worker 1", "heartbeats"),
            # TensorFlow 2.21, seen in this file's fault test:
            "Collective ops is aborted by: Error reported from /job:worker/task:1: The "
            "following tasks are unhealthy (stopped sending heartbeats):\n"
            "/job:worker/replica:0/task:1\nThe tasks have crashed. Check the task logs for "
            "an earlier error": ("worker 1", "heartbeats"),
            "Collective ops is aborted by: Connection reset by peer\nAdditional GRPC error "
            "information from remote target /job:worker/replica:0/task:1 while calling "
            "/tensorflow.WorkerService/RecvBuf /job:worker/replica:0/task:0/device:CPU:0":
                ("worker 1", "connection was lost"),
            "Collective ops is aborted by: Connection reset by peer\nAdditional GRPC error "
            "information from remote target /job:worker/replica:0/task:0 while calling "
            "/tensorflow.WorkerService/CompleteInstance": ("worker 0", "connection was lost"),
        }
        for message, (who, why) in cases.items():
            text = distribute.describe_worker_failure(
                tf.errors.UnavailableError(None, None, message))
            self.assertStartsWith(text, f"lost {who} (/job:worker/replica:0/task:{who[-1]})")
            self.assertIn(why, text)


class MultiWorkerTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
        cls.data = os.path.join(cls.root, "images")
        os.makedirs(cls.data)
        for i, image in enumerate(cls.images):
            Image.fromarray(image).save(os.path.join(cls.data, f"{i:02d}.png"))
        # The uninterrupted 2-worker run, a checkpoint after every step.
        cls.uninterrupted = os.path.join(cls.root, "uninterrupted")
        code, cls.uninterrupted_log = _Launch(
            cls._args(cls.uninterrupted, "--checkpoint_every=1",
                      f"--keep_checkpoints={_STEPS}")).wait()
        assert code == 0, cls.uninterrupted_log[-5000:]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    @classmethod
    def _args(cls, logdir, *extra):
        return ["--dataset=image_folder", f"--data_dir={cls.data}",
                f"--cache_dir={cls.root}/cache", f"--logdir={logdir}", "--arch=dcgan",
                "--norm=spectral", "--g_batchnorm", "--batch_size=8",
                f"--train_steps={_STEPS}", "--log_every=1", "--sample_every=1000",
                "--lipschitz_every=3",  # under several workers too, not at every step
                f"--precision={_PRECISION}", "--deterministic", "--seed=0", *extra]

    def test_two_workers_equal_one_process_on_the_same_global_batch(self):
        # Single process, one device, global batch 8. Its batch norm uses the synchronised
        # formula (E[x²] - E[x]², what the workers compute over 2 x 4 images): the same
        # maths, only the summation order differs.
        keras.utils.set_random_seed(0)  # as sngan_tf.train does before building
        config = training.TrainConfig(
            model=models.ModelConfig(arch="dcgan", norm="spectral", g_batchnorm=True,
                                     sync_batchnorm=True),
            batch_size=8, train_steps=_STEPS, log_every=1, sample_every=1000,
            checkpoint_every=1, keep_checkpoints=_STEPS, seed=0, precision=_PRECISION)
        single = os.path.join(self.root, "single")
        trainer = loop.Trainer(config, single, self.images,
                                   tf.distribute.OneDeviceStrategy("/cpu:0"))
        trainer.run()

        # After 5 and 6 D and G updates: every variable (weights, each u and sigma,
        # batch-norm statistics, Adam's m and v) within 1e-5 relative (norm of the
        # difference over the norm of the variable). A wrong slice of the batch, an
        # unsynchronised batch norm or a u that differs between the workers moves them by
        # 1e-3 or more (e.g. every Adam step moves a weight by ~lr).
        for step in (5, _STEPS):
            want = _checkpoint_values(os.path.join(single, "checkpoints", f"ckpt-{step}"))
            got = _checkpoint_values(os.path.join(self.uninterrupted, "checkpoints",
                                                  f"ckpt-{step}"))
            self.assertEqual(want.keys(), got.keys())
            self.assertGreater(len(want), 70)
            self.assertTrue(any(name.endswith("/u/.ATTRIBUTES/VARIABLE_VALUE")
                                for name in want))
            self.assertTrue(any("moving_variance" in name for name in want))
            relative = {}
            for name, value in want.items():
                if value.dtype.kind != "f":
                    self.assertAllEqual(value, got[name], msg=name)
                    continue
                self.assertEqual(got[name].dtype, value.dtype, name)
                value = value.astype(np.float64)
                relative[name] = (np.linalg.norm(value - got[name])
                                  / max(np.linalg.norm(value), 1e-300))
            worst = max(relative, key=relative.get)
            print(f"\n2 workers vs 1 process after {step} steps: max relative difference "
                  f"{relative[worst]:.3g} ({worst})")
            self.assertEmpty({n: r for n, r in relative.items() if r > 1e-5})
        # Every step's losses.
        for tag in ("loss/d", "loss/g", "d_out/real", "d_out/fake"):
            want_scalars = read_scalars(single, tag)
            got_scalars = read_scalars(self.uninterrupted, tag)
            self.assertEqual(sorted(got_scalars), list(range(1, _STEPS + 1)), tag)
            for step, value in want_scalars.items():
                self.assertAllClose(value, got_scalars[step], rtol=1e-6, atol=1e-9,
                                    msg=f"{tag} at step {step}")

        # Only the chief wrote the run directory: one config, one event file, no stray
        # folders or worker checkpoints.
        self.assertCountEqual(
            [f for f in os.listdir(self.uninterrupted) if not f.startswith("events.")],
            ["config.json", "checkpoints", "samples", "spectra.npz"])
        self.assertLen(glob.glob(os.path.join(self.uninterrupted, "events.*")), 1)
        self.assertCountEqual(
            os.listdir(os.path.join(self.uninterrupted, "samples")), ["step_00000006.png"])

    def test_preemption_and_a_killed_worker_then_resume_exactly(self):
        logdir = os.path.join(self.root, "faults")
        args = self._args(logdir, "--checkpoint_every=2")

        # SIGTERM to worker 1 (a preemption notice): both save at the step they agree on
        # through TensorFlow's PreemptionCheckpointHandler, then exit with 143.
        launch = _Launch(args)
        self.assertIsNotNone(launch.read_until(r"\[worker 0\].*step 1/"))
        os.kill(launch.pids[1], signal.SIGTERM)
        code, log = launch.wait()
        self.assertEqual(code, 143, log[-5000:])
        saved = [int(s) for s in re.findall(r"\[worker 0\].*Preempted.* at step (\d+)", log)]
        self.assertLen(saved, 1, log[-5000:])
        self.assertRegex(log, rf"\[worker 1\].*Preempted.* at step {saved[0]};")
        self.assertLess(saved[0], _STEPS - 1)
        self.assertTrue(os.path.exists(os.path.join(logdir, "checkpoints",
                                                    f"ckpt-{saved[0]}.index")))

        # Rerun: resumes there. SIGKILL worker 1 one step later: worker 0 must stop on its
        # own with an error naming the lost worker, within 60 s.
        launch = _Launch(args)
        self.assertIsNotNone(launch.read_until(rf"Resumed from .*ckpt-{saved[0]} "))
        self.assertIsNotNone(launch.read_until(r"\[worker 0\].*step \d+/"))
        os.kill(launch.pids[1], signal.SIGKILL)
        killed = time.time()
        code, log = launch.wait()
        seconds = time.time() - killed
        # The launcher exits with the code of the failure it saw first: the SIGKILL, or the
        # survivor's own error when that ends before the launcher polls the killed worker.
        self.assertIn(code, (1, 128 + signal.SIGKILL), log[-5000:])
        self.assertRegex(log, r"\[worker 0\] error: lost worker 1 \(/job:worker/replica:0/"
                              r"task:1\)")
        self.assertRegex(log, r"worker 0 ended: exit code 1")
        self.assertRegex(log, r"worker 1 ended: killed by SIGKILL")
        self.assertNotIn("killing it", log)  # the survivor stopped by itself
        self.assertLessEqual(seconds, 60)
        print(f"\nlauncher ended {seconds:.1f} s after the SIGKILL")

        # Rerun to the end: bitwise the uninterrupted run's final checkpoint.
        code, log = _Launch(args).wait()
        self.assertEqual(code, 0, log[-5000:])
        self.assertIn("Resumed from", log)
        want = _checkpoint_values(os.path.join(self.uninterrupted, "checkpoints",
                                               f"ckpt-{_STEPS}"))
        got = _checkpoint_values(os.path.join(logdir, "checkpoints", f"ckpt-{_STEPS}"))
        self.assertEqual(want.keys(), got.keys())
        for name in want:
            self.assertAllEqual(want[name], got[name], msg=name)


if __name__ == "__main__":
    tf.test.main()
