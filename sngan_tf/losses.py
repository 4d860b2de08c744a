"""GAN losses as pure functions of discriminator logits.

`non_saturating` is the loss of Goodfellow et al. used by the study and the SN-GAN paper's
eq. (3) with -log D(G(z)) for the generator; `hinge` is the paper's hinge variant
(eq. 16). Both work on logits with softplus/relu, never sigmoid-then-log, so they stay
finite for logits of any magnitude (the study's no-normalisation run overflowed).
"""
import dataclasses
from typing import Callable

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A loss as two pure functions: D's from real and fake logits, G's from fake logits.

    `discriminator(real_logits, fake_logits)` returns (d_loss, d_loss_real, d_loss_fake);
    `generator(fake_logits)` returns g_loss. All are means over the batch, in float32
    (float64 under the float64 policy).
    """
    discriminator: Callable
    generator: Callable


def _logits(x):
    x = tf.convert_to_tensor(x)
    if x.dtype in (tf.bfloat16, tf.float16):  # logits under mixed precision
        x = tf.cast(x, tf.float32)
    x.shape.assert_has_rank(2)
    return x


def non_saturating_discriminator(real_logits, fake_logits):
    """-log D(x) - log(1 - D(G(z))), with log D(x) = -softplus(-logit)."""
    real, fake = _logits(real_logits), _logits(fake_logits)
    d_loss_real = tf.reduce_mean(tf.nn.softplus(-real))
    d_loss_fake = tf.reduce_mean(tf.nn.softplus(fake))
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake


def non_saturating_generator(fake_logits):
    """-log D(G(z)), the non-saturating generator loss."""
    return tf.reduce_mean(tf.nn.softplus(-_logits(fake_logits)))


def hinge_discriminator(real_logits, fake_logits):
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    real, fake = _logits(real_logits), _logits(fake_logits)
    d_loss_real = tf.reduce_mean(tf.nn.relu(1.0 - real))
    d_loss_fake = tf.reduce_mean(tf.nn.relu(1.0 + fake))
    return d_loss_real + d_loss_fake, d_loss_real, d_loss_fake


def hinge_generator(fake_logits):
    """-E[D(G(z))]."""
    return -tf.reduce_mean(_logits(fake_logits))


LOSSES = {
    "non_saturating": GANLoss(non_saturating_discriminator, non_saturating_generator),
    "hinge": GANLoss(hinge_discriminator, hinge_generator),
}
