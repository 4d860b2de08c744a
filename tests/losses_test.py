"""Losses against hand-computed values, with different real and fake logits."""
import numpy as np
import tensorflow as tf

from sngan_tf import losses


def _softplus(x):
    return np.log1p(np.exp(x))


class LossesTest(tf.test.TestCase):
    real = np.array([[2.0], [-1.0], [0.5]], np.float32)
    fake = np.array([[-3.0], [0.25], [1.5]], np.float32)

    def test_non_saturating_closed_form(self):
        d, d_real, d_fake = losses.non_saturating_discriminator(self.real, self.fake)
        # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f).
        self.assertAllClose(d_real, np.mean(_softplus(-self.real)))
        self.assertAllClose(d_fake, np.mean(_softplus(self.fake)))
        self.assertAllClose(d, d_real + d_fake)
        sig = 1 / (1 + np.exp(-self.fake))
        self.assertAllClose(losses.non_saturating_generator(self.fake), np.mean(-np.log(sig)))

    def test_hinge_closed_form(self):
        d, d_real, d_fake = losses.hinge_discriminator(self.real, self.fake)
        self.assertAllClose(d_real, np.mean([0.0, 2.0, 0.5]))
        self.assertAllClose(d_fake, np.mean([0.0, 1.25, 2.5]))
        self.assertAllClose(d, d_real + d_fake)
        self.assertAllClose(losses.hinge_generator(self.fake), -np.mean(self.fake))

    def test_finite_and_exact_at_extreme_logits(self):
        big = np.array([[1e4], [-1e4]], np.float32)
        for name, loss in losses.LOSSES.items():
            d, d_real, d_fake = loss.discriminator(big, -big)
            g = loss.generator(big)
            for v in (d, d_real, d_fake, g):
                self.assertTrue(np.isfinite(v.numpy()), name)
        d, d_real, d_fake = losses.non_saturating_discriminator(big, -big)
        self.assertAllClose(d_real, 5e3)  # mean(softplus(-1e4), softplus(1e4)) = 1e4 / 2
        self.assertAllClose(losses.non_saturating_generator(big), 5e3)

    def test_low_precision_logits_give_float32_losses(self):
        for loss in losses.LOSSES.values():
            d, _, _ = loss.discriminator(tf.constant(self.real, tf.bfloat16),
                                         tf.constant(self.fake, tf.bfloat16))
            self.assertEqual(d.dtype, tf.float32)


if __name__ == "__main__":
    tf.test.main()
