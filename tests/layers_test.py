"""Tests of the spectral normalization layers against exact SVDs and closed forms."""
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from conftest import mirrored_strategy
from sngan_tf import layers


def _top_singular_value(kernel):
    mat = np.reshape(kernel, (-1, kernel.shape[-1]))
    return float(tf.linalg.svd(tf.constant(mat, tf.float64), compute_uv=False)[0])


def _make(kind, shape, **kwargs):
    """An SN layer built for `shape` = kernel shape, with a seeded random kernel."""
    if kind == "dense":
        layer = layers.SNDense(shape[-1], **kwargs)
        layer.build((None, shape[0]))
    else:
        layer = layers.SNConv2D(shape[-1], shape[:2], padding="same", **kwargs)
        layer.build((None, 8, 8, shape[2]))
    rng = np.random.default_rng(sum(shape))
    layer.kernel.assign(rng.normal(size=shape).astype(np.float32))
    return layer


def _input(kind, shape, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    size = (batch, shape[0]) if kind == "dense" else (batch, 8, 8, shape[2])
    return tf.constant(rng.normal(size=size).astype(np.float32))


_SHAPES = [("dense", (10, 5)), ("dense", (64, 128)), ("dense", (300, 7)),
           ("conv", (3, 3, 4, 8)), ("conv", (4, 4, 16, 3)), ("conv", (3, 3, 32, 64))]


class SigmaTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters(*_SHAPES)
    def test_sigma_converges_to_svd(self, kind, shape):
        layer = _make(kind, shape)
        x = _input(kind, shape)
        exact = _top_singular_value(layer.kernel.numpy())
        step = tf.function(lambda: layer(x, training=True))
        iters = 0
        while abs(layer.sigma.numpy() - exact) / exact > 1e-3 and iters < 2000:
            step()
            iters += 1
        rel = abs(layer.sigma.numpy() - exact) / exact
        print(f"sigma {kind}{shape}: exact {exact:.5f}, rel err {rel:.2e} after {iters} calls")
        self.assertLess(rel, 1e-3)
        # The kernel actually used in the forward pass then has spectral norm 1.
        w_bar = layer.normalized_kernel(training=False).numpy()
        self.assertAllClose(_top_singular_value(w_bar), 1.0, rtol=1e-3)

    def test_lipschitz_coefficient_scales_norm(self):
        layer = _make("conv", (3, 3, 4, 8), lipschitz=2.0)
        x = _input("conv", (3, 3, 4, 8))
        for _ in range(200):
            layer(x, training=True)
        w_bar = layer.normalized_kernel(training=False).numpy()
        self.assertAllClose(_top_singular_value(w_bar), 2.0, rtol=1e-3)

    def test_all_ones_kernel_has_sigma_two(self):
        layer = layers.SNDense(2, use_bias=False)
        layer.build((None, 2))
        layer.kernel.assign(np.ones((2, 2), np.float32))
        out = layer(tf.constant([[1.0, 0.0]]), training=True)
        self.assertAllClose(layer.sigma.numpy(), 2.0)
        self.assertAllClose(out.numpy(), [[0.5, 0.5]])

    def test_power_iteration_matches_numpy(self):
        rng = np.random.default_rng(3)
        w_t = rng.normal(size=(6, 4))
        u0 = rng.normal(size=4)
        v = w_t @ u0 / (np.linalg.norm(w_t @ u0) + 1e-12)
        u = w_t.T @ v / (np.linalg.norm(w_t.T @ v) + 1e-12)
        got_u, got_v, got_sigma = layers.power_iteration(
            tf.constant(w_t, tf.float32), tf.constant(u0, tf.float32), 1)
        self.assertAllClose(got_v, v, atol=1e-6)
        self.assertAllClose(got_u, u, atol=1e-6)
        self.assertAllClose(got_sigma, u @ w_t.T @ v, rtol=1e-6)


class StateTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("dense", "conv")
    def test_u_is_a_nontrainable_unit_vector_named_u(self, kind):
        shape = (5, 7) if kind == "dense" else (3, 3, 2, 7)
        layer = _make(kind, shape)
        self.assertEqual(layer.u.shape, (7,))
        self.assertEqual(layer.u.name, "u")
        self.assertEqual(layer.sigma.name, "sigma")
        self.assertAllClose(np.linalg.norm(layer.u.numpy()), 1.0, rtol=1e-6)
        trainable = {id(w) for w in layer.trainable_weights}
        self.assertNotIn(id(layer.u), trainable)
        self.assertNotIn(id(layer.sigma), trainable)
        self.assertIn(id(layer.u), {id(w) for w in layer.non_trainable_weights})
        self.assertEqual(len(layer.trainable_weights), 2)  # kernel and bias only

    @parameterized.parameters("dense", "conv")
    def test_u_updates_in_training_only(self, kind):
        shape = (5, 7) if kind == "dense" else (3, 3, 2, 7)
        layer = _make(kind, shape)
        x = _input(kind, shape)
        u0 = layer.u.numpy()
        y1 = layer(x, training=False).numpy()
        y2 = layer(x).numpy()
        self.assertAllEqual(layer.u.numpy(), u0)
        self.assertAllEqual(y1, y2)
        layer(x, training=True)
        self.assertNotAllClose(layer.u.numpy(), u0)

    def test_u_survives_checkpoint_bitwise(self):
        layer = _make("conv", (3, 3, 2, 7))
        x = _input("conv", (3, 3, 2, 7))
        for _ in range(3):
            layer(x, training=True)
        saved_u, saved_sigma = layer.u.numpy(), layer.sigma.numpy()
        path = tf.train.Checkpoint(layer=layer).save(os.path.join(self.get_temp_dir(), "ck"))
        fresh = _make("conv", (3, 3, 2, 7))
        self.assertNotAllClose(fresh.u.numpy(), saved_u)
        tf.train.Checkpoint(layer=fresh).restore(path).assert_consumed()
        self.assertAllEqual(fresh.u.numpy(), saved_u)
        self.assertAllEqual(fresh.sigma.numpy(), saved_sigma)
        self.assertAllEqual(fresh(x).numpy(), layer(x).numpy())


class GradientTest(tf.test.TestCase):

    def test_dense_gradient_matches_closed_form(self):
        layer = _make("dense", (6, 4))
        x = _input("dense", (6, 4))
        r = tf.constant(np.random.default_rng(1).normal(size=(3, 4)), tf.float32)
        k = layer.kernel.numpy().astype(np.float64)
        u0 = layer.u.numpy().astype(np.float64)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(r * layer(x, training=True))
        grad = tape.gradient(loss, layer.kernel).numpy()
        # One power-iteration step, then L = <r, x K/σ> with σ = vᵀ K u and u, v constant:
        # dL/dK = xᵀr/σ − <r, xK>/σ² · v uᵀ.
        v = k @ u0 / np.linalg.norm(k @ u0)
        u = k.T @ v / np.linalg.norm(k.T @ v)
        sigma = v @ k @ u
        xn, rn = x.numpy().astype(np.float64), r.numpy().astype(np.float64)
        expected = xn.T @ rn / sigma - np.sum(rn * (xn @ k)) / sigma**2 * np.outer(v, u)
        self.assertAllClose(layer.u.numpy(), u, atol=1e-6)
        self.assertAllClose(grad, expected, rtol=1e-4, atol=1e-6)

    def test_conv_gradient_matches_explicit_formula(self):
        shape = (3, 3, 2, 5)
        layer = _make("conv", shape)
        x = _input("conv", shape)
        r = tf.random.stateless_normal((3, 8, 8, 5), seed=[1, 2])
        u0 = layer.u.numpy()
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(r * layer(x, training=True))
        grad = tape.gradient(loss, layer.kernel)
        # The explicit formula with u, v from numpy treated as constants.
        w_t = np.reshape(layer.kernel.numpy(), (-1, 5)).astype(np.float64)
        v = w_t @ u0 / np.linalg.norm(w_t @ u0)
        u = w_t.T @ v / np.linalg.norm(w_t.T @ v)
        w = tf.Variable(layer.kernel.numpy())
        with tf.GradientTape() as tape:
            sigma = tf.tensordot(tf.constant(v, tf.float32),
                                 tf.linalg.matvec(tf.reshape(w, (-1, 5)), tf.constant(u, tf.float32)), 1)
            out = tf.nn.conv2d(x, w / sigma, 1, "SAME") + layer.bias
            expected_loss = tf.reduce_sum(r * out)
        expected = tape.gradient(expected_loss, w)
        self.assertAllClose(loss, expected_loss, rtol=1e-5)
        self.assertAllClose(grad, expected, rtol=1e-4, atol=1e-6)


class CompatibilityTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters("dense", "conv")
    def test_mixed_precision_keeps_power_iteration_in_float32(self, kind):
        policy = keras.DTypePolicy("mixed_bfloat16")
        if kind == "dense":
            layer = layers.SNDense(8, dtype=policy)
            x = tf.random.stateless_normal((2, 16), seed=[0, 1])
        else:
            layer = layers.SNConv2D(8, 3, padding="same", dtype=policy)
            x = tf.random.stateless_normal((2, 8, 8, 4), seed=[0, 1])
        y = layer(x, training=True)
        self.assertEqual(y.dtype, tf.bfloat16)
        self.assertEqual(layer.u.dtype, tf.float32)
        self.assertEqual(layer.sigma.dtype, tf.float32)
        self.assertEqual(layer.kernel.dtype, tf.float32)
        for _ in range(300):
            layer(x, training=True)
        # A bf16 power iteration could not get within 1e-3 (8-bit mantissa).
        exact = _top_singular_value(layer.kernel.numpy())
        self.assertAllClose(layer.sigma.numpy(), exact, rtol=1e-4)

    def test_config_round_trip(self):
        for layer in (layers.SNDense(4, power_iterations=2, lipschitz=3.0, use_bias=False),
                      layers.SNConv2D(4, 3, strides=2, power_iterations=2, lipschitz=3.0)):
            config = layer.get_config()
            clone = type(layer).from_config(config)
            self.assertEqual(clone.get_config(), config)
            self.assertEqual(clone.power_iterations, 2)
            self.assertEqual(clone.lipschitz, 3.0)

    @parameterized.parameters("sequential", "functional")
    def test_keras_file_round_trip_keeps_u(self, kind):
        if kind == "sequential":
            model = keras.Sequential([
                keras.Input((8, 8, 3)), layers.SNConv2D(4, 3, strides=2, padding="same"),
                keras.layers.Flatten(), layers.SNDense(1, power_iterations=2, lipschitz=2.0)])
        else:
            inputs = keras.Input((8, 8, 3))
            h = layers.SNConv2D(4, 3, strides=2, padding="same")(inputs)
            outputs = layers.SNDense(1, power_iterations=2, lipschitz=2.0)(
                keras.layers.Flatten()(h))
            model = keras.Model(inputs, outputs)
        x = tf.random.stateless_normal((2, 8, 8, 3), seed=[3, 4])
        u_init = [l.u.numpy().copy() for l in layers.spectral_layers(model)]
        for _ in range(3):
            model(x, training=True)
        path = os.path.join(self.get_temp_dir(), "m.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
        sn = layers.spectral_layers(loaded)
        self.assertEqual([type(l) for l in sn], [layers.SNConv2D, layers.SNDense])
        self.assertEqual(sn[1].power_iterations, 2)
        self.assertEqual(sn[1].lipschitz, 2.0)
        self.assertEqual([w.name for w in loaded.weights], [w.name for w in model.weights])
        for got, want in zip(loaded.weights, model.weights):  # u and sigma included
            self.assertAllEqual(got.numpy(), want.numpy(), msg=want.path)
        # What was saved is the trained u, not a new one (a 1-vector stays ±1).
        self.assertNotAllClose(sn[0].u, u_init[0])
        self.assertAllEqual(loaded(x, training=False), model(x, training=False))
        self.assertAllEqual(loaded(x, training=True), model(x, training=True))

    def test_model_fit_updates_u(self):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((8, 8, 3)), layers.SNConv2D(4, 3, padding="same"),
            keras.layers.Flatten(), layers.SNDense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype(np.float32)
        y = np.ones((16, 1), np.float32)
        sn = layers.spectral_layers(model)
        u0 = [l.u.numpy().copy() for l in sn]
        kernel0 = sn[0].kernel.numpy().copy()
        model.predict(x, verbose=0)  # inference: u unchanged
        for layer, u in zip(sn, u0):
            self.assertAllEqual(layer.u, u)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        self.assertNotAllClose(sn[0].u, u0[0])  # 4 training calls moved u
        self.assertNotAllClose(sn[0].kernel, kernel0)
        # After 4 steps of one power iteration each, sigma tracks the largest singular value.
        w = sn[0].kernel.numpy().reshape(-1, 4)
        self.assertAllClose(sn[0].sigma, np.linalg.svd(w, compute_uv=False)[0], rtol=0.05)

    def test_tf_function_matches_eager(self):
        eager, graph = _make("conv", (3, 3, 2, 4)), _make("conv", (3, 3, 2, 4))
        graph.u.assign(eager.u)
        x = _input("conv", (3, 3, 2, 4))
        step = tf.function(lambda: graph(x, training=True))
        for _ in range(3):
            y_eager = eager(x, training=True)
            y_graph = step()
        self.assertAllClose(y_eager, y_graph, rtol=1e-6)
        self.assertAllClose(eager.u, graph.u, rtol=1e-6)


class DistributeTest(tf.test.TestCase):

    def _run(self, strategy, x):
        with strategy.scope():
            keras.utils.set_random_seed(7)
            inputs = keras.Input((8, 8, 3))
            h = layers.SNConv2D(4, 3, strides=2, padding="same")(inputs)
            outputs = layers.SNDense(1)(keras.layers.Flatten()(h))
            model = keras.Model(inputs, outputs)
            opt = keras.optimizers.SGD(0.5)
        global_batch = x.shape[0]

        def replica_step(batch):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(batch, training=True))) / global_batch
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))

        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors(x).repeat(3))

        @tf.function
        def step(batch):
            strategy.run(replica_step, args=(batch,))

        for batch in dataset:
            step(batch)
        sn = layers.spectral_layers(model)
        for layer in sn:  # u is identical on every replica
            values = [v.numpy() for v in strategy.experimental_local_results(layer.u)]
            for value in values[1:]:
                self.assertAllEqual(value, values[0])
        return [w.numpy() for w in model.weights]

    def test_mirrored_matches_single_device(self):
        devices = tf.config.list_logical_devices("CPU")
        self.assertLen(devices, 2)
        x = tf.random.stateless_normal((4, 8, 8, 3), seed=[5, 6])
        single = self._run(tf.distribute.OneDeviceStrategy("/cpu:0"), x)
        mirrored = self._run(mirrored_strategy(), x)
        self.assertLen(mirrored, len(single))
        for a, b in zip(single, mirrored):
            self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)


class BatchNormalizationTest(tf.test.TestCase, parameterized.TestCase):
    """The fused batch norm against Keras 3's own: same outputs, gradients and moving
    statistics, computed by one FusedBatchNormV3 kernel."""

    @parameterized.parameters(((8, 4, 4, 6), True), ((8, 4, 4, 6), False), ((8, 6), True))
    def test_matches_keras(self, shape, scale):
        x = tf.random.stateless_normal(shape, [1, 2]) * 3.0 + 1.0
        results = []
        for cls in (keras.layers.BatchNormalization, layers.BatchNormalization):
            layer = cls(momentum=0.9, epsilon=1e-5, scale=scale)
            layer.build(shape)
            if scale:
                layer.gamma.assign(np.linspace(0.5, 2.0, 6))
            layer.beta.assign(np.linspace(-1.0, 1.0, 6))
            for _ in range(2):  # the second call starts from updated moving statistics
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = layer(x, training=True)
                    loss = tf.reduce_sum(y * tf.sin(y))
            grads = tape.gradient(loss, [x] + layer.trainable_variables)
            results.append([y, *grads, layer.moving_mean, layer.moving_variance,
                            layer(x, training=False)])
        for keras_value, fused_value in zip(*results):
            self.assertAllClose(fused_value, keras_value, rtol=1e-5, atol=1e-5)

    def test_uses_the_fused_kernel_except_when_synchronized(self):
        def op_types(layer):
            fn = tf.function(lambda x: layer(x, training=True))
            graph = fn.get_concrete_function(tf.TensorSpec((4, 2, 2, 3))).graph
            return {op.type for op in graph.get_operations()}
        self.assertIn("FusedBatchNormV3", op_types(layers.BatchNormalization()))
        self.assertNotIn("FusedBatchNormV3",
                         op_types(layers.BatchNormalization(synchronized=True)))

    def test_bfloat16_inputs_keep_float32_statistics(self):
        layer = layers.BatchNormalization(dtype=keras.DTypePolicy("mixed_bfloat16"))
        x = tf.random.stateless_normal((4, 2, 2, 3), [3, 4])
        y = layer(x, training=True)
        self.assertEqual(y.dtype, tf.bfloat16)
        self.assertEqual(layer.moving_mean.dtype, tf.float32)
        mean = tf.reduce_mean(tf.cast(tf.cast(x, tf.bfloat16), tf.float32), axis=(0, 1, 2))
        self.assertAllClose(layer.moving_mean, 0.01 * mean, rtol=1e-3, atol=1e-6)


if __name__ == "__main__":
    tf.test.main()
