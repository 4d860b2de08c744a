"""`python -m sngan_tf.study compare`: two configurations seed by seed, with exact rank tests."""
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from sngan_tf import rundir
from sngan_tf.study import compare

_FD = "fd_net"


def _write_run(study, config, seed, fd, entropy, logits):
    """A run as the trainer leaves it: config.json, logit scalars, a final evaluation."""
    run = rundir.RunDir(os.path.join(study, config, f"seed_{seed}"))
    run.check_and_write_config({"model": {"norm": "spectral", "arch": "dcgan"}, "seed": seed},
                               arch_keys=())
    with run.writer.as_default():
        for step, (real, fake) in zip((100, 200), logits):
            tf.summary.scalar("d_out/real", real, step=step)
            tf.summary.scalar("d_out/fake", fake, step=step)
    run.write_eval_results(200, 1.0, {_FD: fd, "class_entropy_net": entropy})
    run.writer.close()


class CompareTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.study = os.path.join(self.get_temp_dir(), "study")
        # b is lower on every seed: U = 25 of 25, the most extreme of C(10, 5) = 252 orders.
        for seed, (fd_a, fd_b) in enumerate([(40, 30), (45, 38), (50, 33), (42, 35), (48, 39)]):
            _write_run(self.study, "a", seed, fd_a, 1.5, [(2.0, -1.0), (17.0, -3.0)])
            _write_run(self.study, "b", seed, fd_b, 2.0, [(1.0, -1.0), (0.5, -0.25)])

    def test_table_and_exact_rank_tests(self):
        text, tests = compare.compare_study(self.study, ["a", "b"])
        self.assertEqual(tests["U"], 25)
        self.assertAllClose(tests["p_mannwhitney"], 2 / 252)  # both tails of 1 / C(10, 5)
        self.assertAllClose(tests["p_wilcoxon"], 2 / 32)  # all 5 differences positive: 2 / 2^5
        self.assertIn("| a | 0 | 200 | 40.00 | 1.50 | 17.00 | -3.00 | 17.0 |", text)
        self.assertIn("| b | 4 | 200 | 39.00 | 2.00 | 0.50 | -0.25 | 1.0 |", text)
        self.assertIn("| a | 45.00 ± 4.12 | 45.00 | 1.50 |", text)
        self.assertIn("+10.00, +7.00, +17.00, +7.00, +9.00", text)

    def test_which_metrics_grow_with_quality(self):
        from sngan_tf.study import runs  # pylint: disable=g-import-not-at-top
        for metric in ("is", "score_net", "precision", "recall_net", "density", "coverage_net",
                       "class_entropy_net"):
            self.assertTrue(runs.higher_is_better(metric), metric)
        for metric in ("fid", "fd_net", "kid", "kd_net", "loss/d"):
            self.assertFalse(runs.higher_is_better(metric), metric)

    def test_mixed_signs_are_not_significant(self):
        a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 1.5, 3.5, 3.5, 5.5]
        tests = compare.rank_tests(a, b)
        self.assertGreater(tests["p_mannwhitney"], 0.5)
        self.assertGreater(tests["p_wilcoxon"], 0.5)

    def test_command_writes_the_table_and_names_missing_configurations(self):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        out = os.path.join(self.get_temp_dir(), "compare.md")
        result = subprocess.run(
            [sys.executable, "-m", "sngan_tf.study", "compare", f"--study_dir={self.study}",
             "--configs=a,b", f"--output={out}"], capture_output=True, text=True, env=env,
            timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        with open(out) as f:
            self.assertIn("exact two-sided p = 0.0079", f.read())
        result = subprocess.run(
            [sys.executable, "-m", "sngan_tf.study", "compare", f"--study_dir={self.study}",
             "--configs=a,c"], capture_output=True, text=True, env=env, timeout=120)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--configs: no runs of c", result.stderr)


if __name__ == "__main__":
    tf.test.main()
