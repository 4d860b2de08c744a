"""mixed_float16 (the GPU policy) as far as CPU kernels allow: loss scaling applied and undone,
SN's power iteration and σ in float32, a training step that runs and stays finite."""
import numpy as np
import tensorflow as tf

from sngan_tf import data, models, training


class MixedFloat16Test(tf.test.TestCase):

    def _gan(self):
        config = training.TrainConfig(model=models.ModelConfig(arch="dcgan", norm="spectral"),
                                      batch_size=4, precision="mixed_float16")
        return training.GAN(config)

    def test_loss_scaling_is_applied_and_undone(self):
        gan = self._gan()
        opt = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.SGD(1.0))
        x = tf.Variable(1.0)
        with tf.GradientTape() as tape:
            loss = x * x
            scaled = gan._scale(opt, loss)  # pylint: disable=protected-access
        self.assertAllClose(scaled / loss, opt.loss_scale)
        self.assertGreater(float(opt.loss_scale), 1.0)
        gan._apply(opt, scaled, [x], tape)  # pylint: disable=protected-access
        self.assertAllClose(x, -1.0)  # 1 - lr * d(x²)/dx: the gradient was unscaled

    def test_step_runs_finite_with_float32_sn_state(self):
        gan = self._gan()
        self.assertIsInstance(gan.g_opt, tf.keras.mixed_precision.LossScaleOptimizer)
        self.assertIsInstance(gan.d_opt, tf.keras.mixed_precision.LossScaleOptimizer)
        sn = gan.sn_layers
        self.assertLen(sn, 4)
        for layer in sn:
            self.assertEqual(layer.compute_dtype, "float16")
            self.assertEqual(layer.kernel.dtype, tf.float32)
            self.assertEqual(layer.u.dtype, tf.float32)
            self.assertEqual(layer.sigma.dtype, tf.float32)
            self.assertEqual(layer.normalized_kernel().dtype, tf.float16)
        u_before = [l.u.numpy().copy() for l in sn]
        kernel_before = [l.kernel.numpy().copy() for l in sn]
        images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        out = gan.train_step(iter(data.make_dataset(images, 4, 0)))
        self.assertTrue(bool(out["finite"]))
        self.assertEqual(int(gan.step.numpy()), 1)
        self.assertTrue(gan.all_finite())
        for layer, u, k in zip(sn, u_before, kernel_before):
            if layer.u.shape[0] > 1:  # a 1-vector stays ±1
                self.assertNotAllClose(layer.u, u)  # the power iteration ran (in float32)
            self.assertNotAllClose(layer.kernel, k, msg=layer.name)  # applied, not skipped
            w = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
            self.assertAllClose(layer.sigma, np.linalg.svd(w, compute_uv=False)[0], rtol=0.5)
        self.assertEqual(gan.generator(tf.zeros((2, 100))).dtype, tf.float32)


if __name__ == "__main__":
    tf.test.main()
