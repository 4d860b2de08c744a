"""The study command on a tiny generated folder: three configurations, figures, resume."""
import csv
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StudyTest(tf.test.TestCase):

    def _study(self, out, data, classifier, epochs):
        cmd = [sys.executable, os.path.join(_ROOT, "scripts", "run_study.py"),
               f"--output_dir={out}", f"--epochs={epochs}", "--dataset=image_folder",
               f"--data_dir={data}", "--eval_network=classifier",
               f"--classifier_path={classifier}", "--",
               "--batch_size=4", "--log_every=1", "--sample_every=1", "--checkpoint_every=1",
               "--eval_num_samples=8", "--eval_real_samples=8",
               f"--cache_dir={self.get_temp_dir()}/cache"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        return result

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

    def test_three_configurations_then_resume(self):
        data = os.path.join(self.get_temp_dir(), "images")
        os.makedirs(data)
        rng = np.random.default_rng(0)
        for i in range(8):  # 8 images, batch 4: two steps per epoch
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                os.path.join(data, f"{i}.png"))
        out = os.path.join(self.get_temp_dir(), "study")
        classifier = self._classifier()
        self._study(out, data, classifier, epochs=1)
        for config in ("spectral", "batchnorm", "nonorm"):
            self.assertTrue(tf.train.latest_checkpoint(os.path.join(out, config, "checkpoints"))
                            .endswith("ckpt-2"))
        figures = os.path.join(out, "figures")
        for name in ("metric_per_epoch.png", "sigma.png", "results.md",
                     "losses_spectral.png", "samples_nonorm.png"):
            self.assertTrue(os.path.exists(os.path.join(figures, name)), name)

        result = self._study(out, data, classifier, epochs=2)  # resumes each run at step 2
        self.assertEqual(result.stderr.count("Resumed from"), 3, result.stderr[-3000:])
        with open(os.path.join(out, "spectral", "metrics.csv")) as f:
            rows = [r for r in csv.DictReader(f) if r["metric"] == "fd_tiny_classifier"]
        self.assertEqual([(r["step"], r["epoch"]) for r in rows],
                         [("2", "1.0000"), ("4", "2.0000")])


if __name__ == "__main__":
    tf.test.main()
