"""mixed_float16 (the GPU policy) as far as CPU kernels allow: loss scaling applied and undone,
SN's power iteration and σ in float32, a training step that runs and stays finite. float64
(for numerical checks): nothing in the step is rounded to float32."""
import keras
import numpy as np
import tensorflow as tf

from sngan_tf import data, losses, models, training


class MixedFloat16Test(tf.test.TestCase):

    def _gan(self):
        config = training.TrainConfig(model=models.ModelConfig(arch="dcgan", norm="spectral"),
                                      batch_size=4, precision="mixed_float16")
        return training.GAN(config)

    def test_loss_scaling_is_applied_and_undone(self):
        gan = self._gan()
        opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1.0))
        x = keras.Variable(1.0)
        opt.build([x])  # creates the dynamic scale
        with tf.GradientTape() as tape:
            loss = x * x
            scaled = gan._scale(opt, loss)  # pylint: disable=protected-access
        self.assertAllClose(scaled / loss, opt.dynamic_scale)
        self.assertGreater(float(opt.dynamic_scale), 1.0)
        gan._apply(opt, scaled, [x], tape)  # pylint: disable=protected-access
        self.assertAllClose(x, -1.0)  # 1 - lr * d(x²)/dx: the gradient was unscaled

    def test_step_runs_finite_with_float32_sn_state(self):
        gan = self._gan()
        self.assertIsInstance(gan.g_opt, keras.optimizers.LossScaleOptimizer)
        self.assertIsInstance(gan.d_opt, keras.optimizers.LossScaleOptimizer)
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


class Float64Test(tf.test.TestCase):

    def test_every_variable_and_output_is_float64_and_a_step_runs(self):
        config = training.TrainConfig(
            model=models.ModelConfig(arch="dcgan", norm="spectral", g_batchnorm=True),
            batch_size=4, precision="float64")
        gan = training.GAN(config)
        images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
        out = gan.train_step(iter(data.make_dataset(images, 4, 0)))
        self.assertTrue(bool(out["finite"]))
        # u and sigma too: the power iteration does not round W to float32.
        sn = gan.sn_layers
        self.assertLen(sn, 4)
        for layer in sn:
            self.assertEqual(layer.u.dtype, tf.float64, layer.name)
            self.assertEqual(layer.sigma.dtype, tf.float64, layer.name)
        variables = (gan.generator.variables + gan.discriminator.variables
                     + gan.g_opt.variables + gan.d_opt.variables)
        # Keras 3 keeps the learning rate a float32 variable whatever the policy (a fixed
        # rounding of the rate, cast once per update; not noise).
        dtypes = {tf.as_dtype(v.dtype) for v in variables if v.name != "learning_rate"}
        self.assertEqual({d for d in dtypes if d.is_floating}, {tf.float64})
        z = models.sample_z(config.model, 2, [0, 0])
        images = gan.generator(z, training=False)
        self.assertEqual(images.dtype, tf.float64)
        self.assertEqual(gan.discriminator(images, training=False).dtype, tf.float64)
        # The loss keeps float64: a difference float32 would round away survives.
        logits = tf.constant([[1.0], [1.0 + 1e-12]], tf.float64)
        self.assertEqual(losses.non_saturating_generator(logits).dtype, tf.float64)
        self.assertNotEqual(float(losses.non_saturating_generator(logits[1:])),
                            float(losses.non_saturating_generator(logits[:1])))


if __name__ == "__main__":
    tf.test.main()
