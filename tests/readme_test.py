"""The README's "SN layers in your own Keras model" example, executed as written."""
import os
import re

import keras
import numpy as np
import tensorflow as tf

_README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
_HEADING = "### SN layers in your own Keras model"


def readme_example() -> str:
    """The first ```python block after the example's heading."""
    text = open(_README, encoding="utf-8").read()
    section = text[text.index(_HEADING):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


class ReadmeExampleTest(tf.test.TestCase):

    def test_example_trains_saves_and_restores_u(self):
        self.addCleanup(os.chdir, os.getcwd())  # later tests use paths relative to the root
        os.chdir(self.get_temp_dir())  # the example writes d.keras where it runs
        namespace = {}
        exec(compile(readme_example(), _README, "exec"), namespace)  # pylint: disable=exec-used
        model, restored = namespace["discriminator"], namespace["restored"]
        self.assertTrue(os.path.exists("d.keras"))
        sn = [l for l in model.layers if hasattr(l, "u")]
        self.assertLen(sn, 3)
        self.assertEqual([w.name for w in restored.weights], [w.name for w in model.weights])
        for got, want in zip(restored.weights, model.weights):  # u and sigma among them
            self.assertAllEqual(got.numpy(), want.numpy())
        # fit ran the power iteration: each sigma (1 before training) is an estimate
        # uᵀWv (from below, of the kernel one update ago) of the largest singular value.
        for layer in sn:
            w = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
            top = np.linalg.svd(w, compute_uv=False)[0]
            self.assertBetween(float(layer.sigma), 0.8 * top, 1.02 * top)  # W moved since
        x = keras.random.uniform((4, 32, 32, 3), -1, 1, seed=0)
        self.assertAllEqual(restored(x), model(x))


if __name__ == "__main__":
    tf.test.main()
