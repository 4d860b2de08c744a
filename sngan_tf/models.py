"""Generators and discriminators, one builder per architecture.

- `dcgan`: the DCGAN of the study this project reproduces (32x32).
- `cnn`: the SN-GAN paper's "standard CNN" (Table 3), 32x32 (CIFAR-10) or 48x48 (STL-10).
- `resnet`: the paper's ResNet for CIFAR-10 (appendix, Table 4).

The discriminator's normalisation is a parameter (`norm`: spectral, batch or none) that
picks the layer factory; there are no copied model variants. Layer names are explicit and
pinned by tests, since they are what keeps checkpoints loadable.

Note on padding: Keras 'same' for a 4x4 stride-2 (transposed) convolution on even sizes
pads one pixel on each side, exactly the authors' `(k=4, s=2, p=1)`.
"""
import dataclasses
from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from sngan_tf import layers as sn_layers

ARCHS = ("dcgan", "cnn", "resnet")
NORMS = ("spectral", "batch", "none")
Z_DISTRIBUTIONS = ("normal", "uniform")
CNN_VARIANTS = ("code", "paper")
# Weight initialisation: `normal` is the architecture's own (N(0, 0.02) for dcgan and cnn, as
# DCGAN and the authors' Chainer code; Glorot for resnet, as the authors' ResNet); `torch` is
# PyTorch's default for Conv2d/ConvTranspose2d/Linear, U(±1/sqrt(fan_in)) for weights and
# biases, which a PyTorch port that sets no initialisation trains with.
INITS = ("normal", "torch")

# The paper's Table 3 and the authors' chainer-gan-lib code (`common/net.py`,
# `SNDCGANDiscriminator`, behind the paper's CIFAR-10 standard-CNN score) disagree:
_CNN_D_WIDTHS = {
    "code": (64, 128, 128, 256, 256, 512, 512),  # authors' code (also compare_gan sndcgan.py)
    "paper": (64, 64, 128, 128, 256, 256, 512),  # paper, Table 3
}
_CNN_SLOPE = {"code": 0.2, "paper": 0.1}  # Chainer's leaky_relu default vs Table 3
_CNN_Z = {"code": "uniform", "paper": "normal"}  # DCGANGenerator default U(-1,1) vs N(0, I)
_Z_DIM = {"dcgan": 100, "cnn": 128, "resnet": 128}
_DCGAN_SLOPE = 0.2
_RESNET_CH = {"g": 256, "d": 128}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What defines the two networks; None fields take the architecture's default."""
    arch: str = "dcgan"
    norm: str = "spectral"  # discriminator normalisation
    g_batchnorm: bool = True  # batch norm in the generator
    image_size: int = 32
    z_dim: Optional[int] = None
    z_distribution: Optional[str] = None
    cnn_variant: str = "code"  # which source the `cnn` widths/slope/z follow
    lrelu_slope: Optional[float] = None
    sync_batchnorm: bool = False  # batch statistics over all replicas (tf.distribute)
    init: str = "normal"  # weight initialisation, one of INITS

    def __post_init__(self):
        _check_choice("arch", self.arch, ARCHS)
        _check_choice("init", self.init, INITS)
        if self.init == "torch" and self.arch == "resnet":
            raise ValueError("--init=torch applies to dcgan and cnn; resnet keeps the authors' "
                             "Glorot initialisation.")
        _check_choice("norm", self.norm, NORMS)
        _check_choice("cnn_variant", self.cnn_variant, CNN_VARIANTS)
        if self.z_distribution is not None:
            _check_choice("z_distribution", self.z_distribution, Z_DISTRIBUTIONS)
        sizes = {"dcgan": "32", "cnn": "a multiple of 8 (32 for CIFAR-10, 48 for STL-10)",
                 "resnet": "a multiple of 8 (32 for CIFAR-10)"}[self.arch]
        ok = self.image_size == 32 if self.arch == "dcgan" else (
            self.image_size >= 8 and self.image_size % 8 == 0)
        if not ok:
            raise ValueError(f"--image_size={self.image_size}: arch '{self.arch}' needs {sizes}.")
        if self.z_dim is not None and self.z_dim < 1:
            raise ValueError(f"--z_dim must be positive, got {self.z_dim}.")

    @property
    def latent_dim(self) -> int:
        return self.z_dim or _Z_DIM[self.arch]

    @property
    def latent_distribution(self) -> str:
        if self.z_distribution:
            return self.z_distribution
        return _CNN_Z[self.cnn_variant] if self.arch == "cnn" else "normal"


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"--{name}={value!r} is not one of {', '.join(allowed)}.")


def sample_z(config: ModelConfig, batch: int, seed) -> tf.Tensor:
    """Latent codes as a pure function of a stateless seed (shape [2] int)."""
    shape = (batch, config.latent_dim)
    if config.latent_distribution == "uniform":
        return tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0)
    return tf.random.stateless_normal(shape, seed)


class _Factory:
    """Makes the layers a network uses, so one builder serves every normalisation."""

    def __init__(self, spectral: bool, batchnorm: bool, sync: bool, init):
        # `init` makes a fresh initializer per layer: a Keras initializer instance reused
        # across layers returns identical values.
        self.spectral, self.batchnorm, self.sync, self.init = spectral, batchnorm, sync, init

    def conv(self, filters, kernel, strides, name, bias=True, padding="same", init=None):
        cls = sn_layers.SNConv2D if self.spectral else keras.layers.Conv2D
        return cls(filters, kernel, strides=strides, padding=padding, use_bias=bias,
                   kernel_initializer=(init or self.init)(), name=name)

    def deconv(self, filters, kernel, strides, name, bias=True, padding="same"):
        return keras.layers.Conv2DTranspose(filters, kernel, strides=strides, padding=padding,
                                               use_bias=bias, kernel_initializer=self.init(),
                                               name=name)

    def dense(self, units, name, bias=True, init=None):
        cls = sn_layers.SNDense if self.spectral else keras.layers.Dense
        return cls(units, use_bias=bias, kernel_initializer=(init or self.init)(), name=name)

    def norm(self, x, name, scale=True):
        """Batch norm when this network has it (PyTorch/Chainer momentum and epsilon)."""
        if not self.batchnorm:
            return x
        return sn_layers.BatchNormalization(momentum=0.9, epsilon=1e-5, scale=scale,
                                                  synchronized=self.sync, name=name)(x)


def _relu(x):
    return keras.layers.ReLU()(x)


def _leaky_relu(x, slope):
    return keras.layers.LeakyReLU(negative_slope=slope)(x)


def _normal_init():
    return keras.initializers.RandomNormal(stddev=0.02)  # DCGAN and the authors' code


def _torch_init():
    # PyTorch's kaiming_uniform_(a=sqrt(5)): bound sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in).
    # Keras's fan_in of a Conv2DTranspose kernel (kh, kw, out, in) is kh*kw*out, as PyTorch's
    # of a ConvTranspose2d weight (in, out, kh, kw).
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(model: keras.Model):
    """PyTorch's bias default, U(±1/sqrt(fan_in)) with the fan_in of the layer's kernel
    (Keras initialises biases knowing only their shape, so this runs once the model is built)."""
    for layer in model.layers:
        kernel, bias = getattr(layer, "kernel", None), getattr(layer, "bias", None)
        if kernel is None or bias is None:
            continue
        # Kernels are (in, units), (kh, kw, in, out) or transposed (kh, kw, out, in): fan_in is
        # everything but the last axis, as for the kernel's VarianceScaling (see _torch_init).
        fan_in = int(np.prod(kernel.shape[:-1]))
        bound = 1.0 / np.sqrt(fan_in)
        bias.assign(keras.random.uniform(bias.shape, -bound, bound, dtype=bias.dtype))


def _kernel_init(config, default):
    """The kernel initializer factory of `config.init` (`default`: the architecture's own)."""
    return _torch_init if config.init == "torch" else default


def _finish(model: keras.Model, config) -> keras.Model:
    if config.init == "torch":
        _torch_bias_init(model)
    return model


def _output(x, name):
    # The outputs (images, logits) come in the variable dtype: float32 under mixed precision.
    dtype = keras.config.dtype_policy().variable_dtype
    return keras.layers.Activation("linear", dtype=dtype, name=name)(x)


def make_generator(config: ModelConfig) -> keras.Model:
    """The generator: z of shape (B, latent_dim) -> images (B, S, S, 3) in [-1, 1]."""
    f = _Factory(spectral=False, batchnorm=config.g_batchnorm, sync=config.sync_batchnorm,
                 init=_kernel_init(config, _normal_init))
    z = keras.Input((config.latent_dim,), name="z")
    bn = config.g_batchnorm
    relu = _relu
    if config.arch == "dcgan":
        h = keras.layers.Reshape((1, 1, config.latent_dim))(z)
        h = f.deconv(512, 4, 1, "deconv0", bias=not bn, padding="valid")(h)  # 1x1 -> 4x4
        h = relu(f.norm(h, "bn0"))
        for i, ch in enumerate((256, 128), start=1):
            h = relu(f.norm(f.deconv(ch, 4, 2, f"deconv{i}", bias=not bn)(h), f"bn{i}"))
        h = f.deconv(3, 4, 2, "deconv3")(h)
    elif config.arch == "cnn":
        m = config.image_size // 8
        # As in the authors' DCGANGenerator: batch norm on the dense output, per unit.
        h = relu(f.norm(f.dense(m * m * 512, "dense0", bias=not bn)(z), "bn0"))
        h = keras.layers.Reshape((m, m, 512))(h)
        for i, ch in enumerate((256, 128, 64), start=1):
            h = relu(f.norm(f.deconv(ch, 4, 2, f"deconv{i}", bias=not bn)(h), f"bn{i}"))
        h = f.conv(3, 3, 1, "conv4")(h)
    else:
        h = _resnet_generator(f, z, config)
    return _finish(keras.Model(z, _output(keras.layers.Activation("tanh")(h), "images"),
                               name="generator"), config)


def make_discriminator(config: ModelConfig) -> keras.Model:
    """The discriminator: images (B, S, S, 3) -> logits (B, 1)."""
    spectral, batch = config.norm == "spectral", config.norm == "batch"
    s = config.image_size
    x = keras.Input((s, s, 3), name="images")
    if config.arch == "dcgan":
        f = _Factory(spectral, batch, config.sync_batchnorm, _kernel_init(config, _normal_init))
        slope = config.lrelu_slope or _DCGAN_SLOPE
        h = _leaky_relu(f.conv(64, 4, 2, "conv0")(x), slope)  # no batch norm on layer 1
        for i, ch in enumerate((128, 256), start=1):
            h = f.norm(f.conv(ch, 4, 2, f"conv{i}", bias=not batch)(h), f"bn{i}")
            h = _leaky_relu(h, slope)
        h = f.conv(1, 4, 1, "conv3", padding="valid")(h)  # 4x4 -> 1x1
        logits = keras.layers.Flatten()(h)
    elif config.arch == "cnn":
        f = _Factory(spectral, batch, config.sync_batchnorm, _kernel_init(config, _normal_init))
        widths = _CNN_D_WIDTHS[config.cnn_variant]
        slope = config.lrelu_slope or _CNN_SLOPE[config.cnn_variant]
        h = x
        for i, ch in enumerate(widths):
            k, st = (3, 1) if i % 2 == 0 else (4, 2)
            h = f.conv(ch, k, st, f"conv{i}", bias=not (batch and i > 0))(h)
            if i > 0:  # the authors' BN discriminator: no gamma, none on the first layer
                h = f.norm(h, f"bn{i}", scale=False)
            h = _leaky_relu(h, slope)
        logits = f.dense(1, "dense")(keras.layers.Flatten()(h))
    else:
        logits = _resnet_discriminator(x, spectral, batch, config)
    return _finish(keras.Model(x, _output(logits, "logits"), name="discriminator"), config)


# ResNet (paper appendix, Table 4; Miyato's sngan_projection `resnet_32.py`): Glorot
# uniform with gain sqrt(2) in residual branches and gain 1 on shortcuts and the output.
def _glorot(gain_squared):
    return lambda: keras.initializers.VarianceScaling(gain_squared, "fan_avg", "uniform")


def _up(x):
    return keras.layers.UpSampling2D(2, interpolation="nearest")(x)


def _down(x):
    return keras.layers.AveragePooling2D(2)(x)


def _resnet_generator(f, z, config):
    ch, m, relu = _RESNET_CH["g"], config.image_size // 8, _relu
    f.init = _glorot(1.0)
    h = keras.layers.Reshape((m, m, ch))(f.dense(m * m * ch, "dense0")(z))
    for b in range(3):
        f.init = _glorot(2.0)
        r = f.conv(ch, 3, 1, f"block{b}_conv0")(_up(relu(f.norm(h, f"block{b}_bn0"))))
        r = f.conv(ch, 3, 1, f"block{b}_conv1")(relu(f.norm(r, f"block{b}_bn1")))
        f.init = _glorot(1.0)
        h = r + f.conv(ch, 1, 1, f"block{b}_shortcut", padding="valid")(_up(h))
    return f.conv(3, 3, 1, "conv_out")(relu(f.norm(h, "bn_out")))


def _resnet_discriminator(x, spectral, batch, config):
    ch, relu = _RESNET_CH["d"], _relu
    f = _Factory(spectral, batch, config.sync_batchnorm, _glorot(2.0))
    shortcut_init = _glorot(1.0)
    # Block 0, "optimized": conv, relu, conv, pool; shortcut pool then 1x1 conv.
    r = f.conv(ch, 3, 1, "block0_conv0")(x)
    r = _down(f.conv(ch, 3, 1, "block0_conv1")(relu(f.norm(r, "block0_bn0"))))
    h = r + f.conv(ch, 1, 1, "block0_shortcut", padding="valid", init=shortcut_init)(_down(x))
    for b, down in ((1, True), (2, False), (3, False)):
        r = f.conv(ch, 3, 1, f"block{b}_conv0")(relu(f.norm(h, f"block{b}_bn0")))
        r = f.conv(ch, 3, 1, f"block{b}_conv1")(relu(f.norm(r, f"block{b}_bn1")))
        if down:
            r = _down(r)
            h = _down(f.conv(ch, 1, 1, f"block{b}_shortcut", padding="valid",
                             init=shortcut_init)(h))
        h = r + h
    h = keras.ops.sum(relu(h), axis=(1, 2))  # global sum pooling
    return f.dense(1, "dense", init=shortcut_init)(h)
