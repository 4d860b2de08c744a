"""The demo shows something soon: an early first sample grid, its path printed, a short run."""
import os
import re

import numpy as np
import tensorflow as tf

from sngan_tf import loop, models, training

_DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts",
                     "demo.sh")


class DemoTest(tf.test.TestCase):

    def test_trainer_names_each_sample_grid(self):
        config = training.TrainConfig(model=models.ModelConfig(arch="dcgan", norm="spectral"),
                                      batch_size=4, train_steps=3, sample_every=2,
                                      num_grid_samples=4)
        images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        logdir = self.get_temp_dir()
        with self.assertLogs("absl", "INFO") as logs:
            loop.Trainer(config, logdir, images).run()
        named = re.findall(r"Sample grid at step (\d+): (\S+)", "\n".join(logs.output))
        self.assertEqual([int(step) for step, _ in named], [2, 3])  # every 2 steps and the end
        for _, path in named:
            self.assertTrue(os.path.exists(path), path)
            self.assertEqual(os.path.dirname(path), os.path.join(logdir, "samples"))

    def test_demo_samples_early_and_stays_short(self):
        with open(_DEMO) as f:
            script = f.read()
        # 50 steps take well under a minute on 2 AVX2 cores with oneDNN; 600 steps under 10.
        self.assertLessEqual(int(re.search(r"--sample_every=(\d+)", script).group(1)), 50)
        self.assertLessEqual(int(re.search(r"--log_every=(\d+)", script).group(1)), 50)
        self.assertLessEqual(int(re.search(r'steps="\$\{1:-(\d+)\}"', script).group(1)), 600)


if __name__ == "__main__":
    tf.test.main()
