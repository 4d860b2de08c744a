"""Architecture inventory: shapes, parameter counts from the architecture tables, SN/BN layers."""
import keras
import tensorflow as tf
from absl.testing import parameterized

from sngan_tf import layers, models


def _trainable(model):
    return sum(int(tf.size(w)) for w in model.trainable_weights)


def _conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def _bn(c, scale=True):
    return c * (2 if scale else 1)


class ModelsTest(tf.test.TestCase, parameterized.TestCase):

    @parameterized.product(arch=["dcgan", "cnn", "resnet"], norm=["spectral", "batch", "none"])
    def test_shapes_and_layer_inventory(self, arch, norm):
        config = models.ModelConfig(arch=arch, norm=norm, g_batchnorm=norm != "none")
        g, d = models.make_generator(config), models.make_discriminator(config)
        z = models.sample_z(config, 2, [0, 0])
        x = g(z, training=True)
        self.assertEqual(x.shape, (2, 32, 32, 3))
        self.assertEqual(x.dtype, tf.float32)
        self.assertAllInRange(x, -1.0, 1.0)
        self.assertEqual(d(x, training=True).shape, (2, 1))
        sn = layers.spectral_layers(d)
        convs_and_dense = [l for l in d.layers
                           if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
        bn_d = [l for l in d.layers if isinstance(l, keras.layers.BatchNormalization)]
        bn_g = [l for l in g.layers if isinstance(l, keras.layers.BatchNormalization)]
        self.assertEmpty(layers.spectral_layers(g))
        if norm == "spectral":  # every weight layer of D is normalised, and no batch norm
            self.assertLen(sn, len(convs_and_dense))
            self.assertEmpty(bn_d)
        else:
            self.assertEmpty(sn)
            self.assertEqual(bool(bn_d), norm == "batch")
        self.assertEqual(bool(bn_g), norm != "none")

    def test_dcgan_parameter_counts(self):
        config = models.ModelConfig(arch="dcgan", norm="none", g_batchnorm=True)
        g = models.make_generator(config)
        # z(100) -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x3; no bias before batch norm.
        expected_g = (_conv(4, 100, 512, False) + _bn(512) + _conv(4, 512, 256, False) + _bn(256)
                      + _conv(4, 256, 128, False) + _bn(128) + _conv(4, 128, 3))
        self.assertEqual(_trainable(g), expected_g)
        d = models.make_discriminator(config)
        expected_d = _conv(4, 3, 64) + _conv(4, 64, 128) + _conv(4, 128, 256) + _conv(4, 256, 1)
        self.assertEqual(_trainable(d), expected_d)
        d_bn = models.make_discriminator(models.ModelConfig(arch="dcgan", norm="batch"))
        self.assertEqual(_trainable(d_bn), _conv(4, 3, 64) + _conv(4, 64, 128, False) + _bn(128)
                         + _conv(4, 128, 256, False) + _bn(256) + _conv(4, 256, 1))

    @parameterized.parameters(("code", (64, 128, 128, 256, 256, 512, 512)),
                              ("paper", (64, 64, 128, 128, 256, 256, 512)))
    def test_cnn_discriminator_widths(self, variant, widths):
        config = models.ModelConfig(arch="cnn", norm="spectral", cnn_variant=variant)
        d = models.make_discriminator(config)
        expected, cin = 0, 3
        for i, w in enumerate(widths):
            expected += _conv(3 if i % 2 == 0 else 4, cin, w)
            cin = w
        expected += 4 * 4 * widths[-1] + 1  # dense to one logit
        self.assertEqual(_trainable(d), expected)
        self.assertEqual([l.u.shape[0] for l in layers.spectral_layers(d)], list(widths) + [1])

    def test_cnn_variant_defaults(self):
        code = models.ModelConfig(arch="cnn", cnn_variant="code")
        paper = models.ModelConfig(arch="cnn", cnn_variant="paper")
        self.assertEqual((code.latent_distribution, paper.latent_distribution), ("uniform", "normal"))
        z = models.sample_z(code, 256, [1, 2])
        self.assertAllInRange(z, -1.0, 1.0)
        self.assertEqual(z.shape, (256, 128))

    def test_cnn_generator_for_stl10(self):
        config = models.ModelConfig(arch="cnn", image_size=48)
        g = models.make_generator(config)
        self.assertEqual(g(models.sample_z(config, 1, [0, 0])).shape, (1, 48, 48, 3))
        # As the authors' DCGANGenerator: dense to 6x6x512 with per-unit batch norm.
        self.assertEqual(g.get_layer("dense0").kernel.shape, (128, 6 * 6 * 512))

    def test_dcgan_discriminator_variable_names_are_pinned(self):
        d = models.make_discriminator(models.ModelConfig(arch="dcgan", norm="spectral"))
        got = {w.path: tuple(w.shape) for w in d.weights}
        expected = {}
        for i, (cin, cout) in enumerate([(3, 64), (64, 128), (128, 256), (256, 1)]):
            expected[f"conv{i}/kernel"] = (4, 4, cin, cout)
            expected[f"conv{i}/bias"] = (cout,)
            expected[f"conv{i}/u"] = (cout,)
            expected[f"conv{i}/sigma"] = ()
        self.assertEqual(got, expected)

    def test_bad_settings_name_the_flag(self):
        with self.assertRaisesRegex(ValueError, "--norm='layer'"):
            models.ModelConfig(norm="layer")
        with self.assertRaisesRegex(ValueError, "--image_size=48.*dcgan"):
            models.ModelConfig(arch="dcgan", image_size=48)
        with self.assertRaisesRegex(ValueError, "--arch"):
            models.ModelConfig(arch="vgg")

    # PyTorch's fan_in of each DCGAN layer, written out from its weight shape: Conv2d (out, in,
    # kh, kw) -> in*kh*kw; ConvTranspose2d (in, out, kh, kw) -> out*kh*kw.
    _TORCH_FAN_IN = {"generator": {"deconv0": 512 * 16, "deconv1": 256 * 16,
                                   "deconv2": 128 * 16, "deconv3": 3 * 16},
                     "discriminator": {"conv0": 3 * 16, "conv1": 64 * 16, "conv2": 128 * 16,
                                       "conv3": 256 * 16}}

    @parameterized.parameters("spectral", "none")
    def test_torch_init_is_pytorch_default(self, norm):
        keras.utils.set_random_seed(0)
        config = models.ModelConfig(arch="dcgan", norm=norm, g_batchnorm=norm != "none",
                                    init="torch")
        for net in (models.make_generator(config), models.make_discriminator(config)):
            for name, fan_in in self._TORCH_FAN_IN[net.name].items():
                bound = fan_in ** -0.5
                layer = net.get_layer(name)
                for var in (layer.kernel, layer.bias):
                    if var is None:  # a generator layer followed by batch norm has no bias
                        continue
                    w = var.numpy()
                    self.assertLessEqual(abs(w).max(), bound, f"{name} {var.path}")
                    if w.size >= 64:  # the largest of >= 64 uniform draws is near the bound
                        self.assertGreater(abs(w).max(), 0.9 * bound, f"{name} {var.path}")
                    self.assertGreater((w != 0).mean(), 0.99, f"{name} {var.path}")  # not zeros
                if layer.kernel.shape.num_elements() > 10000:  # U(-b, b): std b/sqrt(3)
                    self.assertAllClose(layer.kernel.numpy().std(), bound / 3 ** 0.5, rtol=0.05)

    def test_normal_init_is_dcgan(self):
        keras.utils.set_random_seed(0)
        config = models.ModelConfig(arch="dcgan", norm="none", g_batchnorm=False)
        d = models.make_discriminator(config)
        self.assertAllClose(d.get_layer("conv2").kernel.numpy().std(), 0.02, rtol=0.05)
        self.assertAllEqual(d.get_layer("conv0").bias.numpy(), tf.zeros(64))
        with self.assertRaisesRegex(ValueError, "--init=torch.*resnet"):
            models.ModelConfig(arch="resnet", init="torch")
        with self.assertRaisesRegex(ValueError, "--init='he'"):
            models.ModelConfig(init="he")

    def test_mixed_precision_outputs_float32(self):
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            config = models.ModelConfig(arch="dcgan", norm="spectral")
            g, d = models.make_generator(config), models.make_discriminator(config)
        finally:
            keras.config.set_dtype_policy("float32")
        x = g(models.sample_z(config, 2, [0, 0]), training=True)
        self.assertEqual(x.dtype, tf.float32)
        self.assertEqual(d(x, training=True).dtype, tf.float32)
        self.assertEqual(d.get_layer("conv1").compute_dtype, "bfloat16")


if __name__ == "__main__":
    tf.test.main()
