"""Tests of the Lipschitz measurements against explicit matrices, SVDs and finite differences."""
import math

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from sngan_tf import layers as sn_layers
from sngan_tf import lipschitz
from sngan_tf import models


def _explicit_matrix(fn, input_shape, dtype=np.float32):
    """The matrix of a linear map, built column by column from the unit vectors."""
    n = int(np.prod(input_shape))
    columns = []
    for i in range(n):
        e = np.zeros(n, dtype)
        e[i] = 1.0
        columns.append(np.ravel(fn(tf.constant(e.reshape(input_shape)))))
    return np.stack(columns, axis=1).astype(np.float64)


def _top_sv(matrix):
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


def _conv(kernel_size, strides, padding, filters=3, in_ch=2, size=6, seed=0, cls=None):
    layer = (cls or keras.layers.Conv2D)(filters, kernel_size, strides=strides,
                                            padding=padding)
    layer.build((None, size, size, in_ch))
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(size=layer.kernel.shape).astype(np.float32))
    return layer


class OperatorNormTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.parameters((3, 1, "same"), (3, 1, "valid"), (4, 2, "same"), (4, 2, "valid"),
                              (3, 2, "same"), (1, 1, "valid"))
    def test_conv_operator_norm_equals_svd_of_explicit_matrix(self, k, stride, padding):
        layer = _conv(k, stride, padding)
        shape = (1, 6, 6, 2)
        fn = lipschitz.linear_map(layer)
        exact = _top_sv(_explicit_matrix(fn, shape))
        sigma, _ = lipschitz.operator_norm(fn, shape, tol=1e-9, max_iters=5000)
        self.assertAllClose(sigma, exact, rtol=1e-4)
        # And the operator is not the reshaped kernel: their norms differ in general.
        reshaped = _top_sv(np.reshape(layer.kernel.numpy(), (-1, 3)))
        if k > stride:  # overlapping windows
            self.assertNotAllClose(sigma, reshaped, rtol=1e-2)

    def test_dense_operator_norm_equals_svd(self):
        layer = keras.layers.Dense(7)
        layer.build((None, 11))
        sigma, _ = lipschitz.operator_norm(lipschitz.linear_map(layer), (1, 11), tol=1e-9,
                                           max_iters=5000)
        self.assertAllClose(sigma, _top_sv(layer.kernel.numpy()), rtol=1e-4)

    def test_sn_layer_is_measured_with_its_normalised_kernel(self):
        layer = _conv(4, 2, "same", cls=sn_layers.SNConv2D)
        x = tf.zeros((1, 6, 6, 2))
        for _ in range(300):  # converge u: the used kernel is then W / σ_svd(W)
            layer(x, training=True)
        w = layer.kernel.numpy()
        w_bar = w / _top_sv(np.reshape(w, (-1, 3)))
        exact = _top_sv(_explicit_matrix(
            lambda v: tf.nn.conv2d(v, w_bar, 2, "SAME"), (1, 6, 6, 2)))
        sigma, _ = lipschitz.operator_norm(lipschitz.linear_map(layer), (1, 6, 6, 2),
                                           tol=1e-9, max_iters=5000)
        self.assertAllClose(sigma, exact, rtol=1e-3)
        # The raw kernel's operator norm is σ(W) times larger.
        raw, _ = lipschitz.operator_norm(lipschitz.linear_map(layer, layer.kernel),
                                         (1, 6, 6, 2), tol=1e-9, max_iters=5000)
        self.assertAllClose(raw / sigma, _top_sv(np.reshape(w, (-1, 3))), rtol=1e-3)

    def test_warm_start_needs_fewer_iterations(self):
        layer = _conv(3, 1, "same")
        fn = lipschitz.linear_map(layer)
        sigma, x = lipschitz.operator_norm(fn, (1, 6, 6, 2), tol=1e-9, max_iters=5000)
        again, _ = lipschitz.operator_norm(fn, (1, 6, 6, 2), x0=x, max_iters=10)
        self.assertAllClose(again, sigma, rtol=1e-5)


def _tiny_chain(dtype="float32", spectral=False, slope=0.2):
    """conv(stride 2) -> batch norm -> leaky relu -> flatten -> dense, on 6x6x2 images."""
    conv = sn_layers.SNConv2D if spectral else keras.layers.Conv2D
    dense = sn_layers.SNDense if spectral else keras.layers.Dense
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype)  # the Model too, or it casts inputs
    try:
        x = keras.Input((6, 6, 2), dtype=dtype)
        h = conv(4, 3, strides=2, padding="same", name="conv")(x)
        h = keras.layers.BatchNormalization(name="bn")(h)
        h = keras.layers.LeakyReLU(negative_slope=slope)(h)
        model = keras.Model(x, dense(1, name="dense")(keras.layers.Flatten()(h)))
    finally:
        keras.config.set_dtype_policy(previous)
    rng = np.random.default_rng(1)
    bn = model.get_layer("bn")
    bn.gamma.assign(rng.uniform(0.5, 3.0, 4))
    bn.moving_variance.assign(rng.uniform(0.1, 2.0, 4))
    bn.moving_mean.assign(rng.normal(size=4))
    return model


class BoundsTest(tf.test.TestCase):

    def test_gradient_norms_match_finite_differences(self):
        model = _tiny_chain("float64")
        rng = np.random.default_rng(0)
        images = rng.normal(size=(3, 6, 6, 2))
        norms = lipschitz.input_gradient_norms(model, tf.constant(images)).numpy()
        h = 1e-6
        for b in range(3):
            grad = np.zeros(images[b].size)
            for i in range(images[b].size):
                d = np.zeros(images[b].size)
                d[i] = h
                plus = images[b] + d.reshape(images[b].shape)
                minus = images[b] - d.reshape(images[b].shape)
                out = model(np.stack([plus, minus]), training=False).numpy()
                grad[i] = (out[0, 0] - out[1, 0]) / (2 * h)
            self.assertAllClose(norms[b], np.linalg.norm(grad), rtol=1e-5)

    def test_upper_bound_is_product_of_exact_layer_norms(self):
        model = _tiny_chain()
        monitor = lipschitz.LipschitzMonitor(model, tol=1e-9, max_iters=5000)
        norms = monitor.layer_norms()
        conv_exact = _top_sv(_explicit_matrix(lipschitz.linear_map(model.get_layer("conv")),
                                              (1, 6, 6, 2)))
        bn = model.get_layer("bn")
        bn_exact = np.max(np.abs(bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy()
                                                            + bn.epsilon)))
        dense_exact = _top_sv(model.get_layer("dense").kernel.numpy())
        self.assertAllClose(norms["conv"], conv_exact, rtol=1e-4)
        self.assertAllClose(norms["bn"], bn_exact, rtol=1e-6)
        self.assertAllClose(norms["dense"], dense_exact, rtol=1e-4)
        self.assertAllClose(monitor.upper_bound(norms), conv_exact * bn_exact * dense_exact,
                            rtol=1e-4)

    def test_steep_activation_enters_the_bound(self):
        flat, steep = _tiny_chain(slope=0.2), _tiny_chain(slope=2.0)  # same seeded weights
        steep.set_weights(flat.get_weights())
        bounds = []
        for model in (flat, steep):
            monitor = lipschitz.LipschitzMonitor(model, tol=1e-9, max_iters=5000)
            bounds.append(monitor.upper_bound(monitor.layer_norms()))
        self.assertAllClose(bounds[1], 2.0 * bounds[0], rtol=1e-4)

    def test_lower_bound_never_exceeds_upper_bound_on_sn_discriminator(self):
        for norm in ("spectral", "batch"):
            d = models.make_discriminator(models.ModelConfig(norm=norm))
            rng = np.random.default_rng(0)
            real = tf.constant(rng.uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32))
            fake = tf.constant(rng.normal(0, 0.3, (16, 32, 32, 3)).astype(np.float32))
            for _ in range(20):
                d(real, training=True)  # move u and the batch-norm averages
            monitor = lipschitz.LipschitzMonitor(d)
            self.assertTrue(monitor.has_upper_bound)
            out = monitor.measure(real, fake, seed=(0, 1))
            for kind in ("real", "fake", "interp"):
                self.assertGreater(out[f"grad_norm_{kind}"], 0.0)
                self.assertLessEqual(out[f"grad_norm_{kind}"], out[f"grad_norm_{kind}_max"])
                self.assertLessEqual(out[f"grad_norm_{kind}_max"], out["upper_bound"])
            expected_layers = {f"layer/conv{i}" for i in range(4)}
            if norm == "batch":
                expected_layers |= {"layer/bn1", "layer/bn2"}
            self.assertEqual({k for k in out if k.startswith("layer/")}, expected_layers)

    def test_measuring_leaves_the_discriminator_unchanged(self):
        d = models.make_discriminator(models.ModelConfig(norm="spectral"))
        before = [v.numpy().copy() for v in d.variables]
        x = tf.random.stateless_uniform((4, 32, 32, 3), [0, 0], -1, 1)
        lipschitz.LipschitzMonitor(d).measure(x, -x)
        for b, v in zip(before, d.variables):
            self.assertAllEqual(b, v.numpy(), msg=v.name)  # u and sigma included

    def test_resnet_has_no_product_bound_but_layer_norms(self):
        d = models.make_discriminator(models.ModelConfig(arch="resnet", norm="spectral"))
        monitor = lipschitz.LipschitzMonitor(d, max_iters=20)
        self.assertFalse(monitor.has_upper_bound)
        norms = monitor.layer_norms()
        self.assertTrue(math.isnan(monitor.upper_bound(norms)))
        self.assertIn("block0_shortcut", norms)

    def test_spectra_match_numpy_svd(self):
        model = _tiny_chain(spectral=True)
        for _ in range(200):
            model(tf.zeros((1, 6, 6, 2)), training=True)
        spectra = lipschitz.LipschitzMonitor(model).spectra()
        self.assertEqual(set(spectra), {"conv", "dense"})
        for name, values in spectra.items():
            layer = model.get_layer(name)
            w_bar = layer.normalized_kernel(training=False).numpy()
            expected = np.linalg.svd(np.reshape(w_bar, (-1, w_bar.shape[-1])).T,
                                     compute_uv=False)
            self.assertAllClose(values, expected, rtol=1e-5)
            self.assertAllClose(values[0], 1.0, rtol=1e-3)  # SN: the top one is 1
            self.assertTrue(np.all(np.diff(values) <= 0))


if __name__ == "__main__":
    tf.test.main()
