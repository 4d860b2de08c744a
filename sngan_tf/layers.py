"""Spectrally normalised Keras layers (Miyato et al., "Spectral Normalization for GANs", 2018).

`SNDense` and `SNConv2D` keep the raw kernel W as their trainable variable and use
K·W/σ(W) in the forward pass, where σ(W) is estimated by power iteration with a
persistent vector `u` (Algorithm 1 of the paper; the authors' Chainer `SNConvolution2D`).
Unlike Keras's `SpectralNormalization` wrapper (Keras 2 and 3 alike) they never write
W/σ back into the kernel, so the gradient flows through σ as in the original and
inference never sees a stale kernel. They are Keras 3 layers: usable in any Keras model,
saved with `u` in `.keras` files.
"""
import keras
import tensorflow as tf

_EPS = 1e-12  # Chainer's `_l2normalize` epsilon in the authors' code.


def l2_normalize(x, eps=_EPS):
    """x / (‖x‖ + eps), the authors' normalisation (not tf's rsqrt(max(‖x‖², eps)))."""
    return x / (tf.norm(x) + eps)


def power_iteration(w_t, u, num_iters=1, eps=_EPS):
    """Power iteration for the largest singular value of W, given Wᵀ.

    Args:
      w_t: matrix of shape (fan_in, out), the paper's Wᵀ (see `kernel_matrix`), float32
        (float64 under the float64 policy).
      u: vector of shape (out,) of w_t's dtype, the current left singular vector estimate.
      num_iters: iterations to run (the paper uses 1 per training step).
      eps: epsilon of the normalisation.

    Returns:
      (u, v, sigma): the new u (out,), v (fan_in,) — both with gradients stopped — and
      σ = uᵀWv, which is differentiable with respect to W (as in the original).
    """
    u = tf.stop_gradient(u)
    for _ in range(num_iters):
        v = tf.stop_gradient(l2_normalize(tf.linalg.matvec(w_t, u), eps))  # v <- Wᵀu/‖Wᵀu‖
        wv = tf.linalg.matvec(w_t, v, transpose_a=True)
        u = tf.stop_gradient(l2_normalize(wv, eps))  # u <- Wv / ‖Wv‖
    # σ = uᵀWv reuses the last Wv: differentiable in W only, since u and v are constants.
    sigma = tf.tensordot(u, wv, 1)
    return u, v, sigma


def kernel_matrix(kernel):
    """Reshapes a Keras kernel to the paper's Wᵀ, shape (fan_in, out).

    Keras stores Dense kernels as (in, out) and Conv2D kernels as (kh, kw, in, out);
    flattening all but the last axis gives (kh·kw·in, out), the transpose of the paper's
    W of shape (out_channels, kh·kw·in_channels).
    """
    return tf.reshape(kernel, [-1, kernel.shape[-1]])


@keras.saving.register_keras_serializable(package="sngan_tf")
class UnitNormal(keras.initializers.Initializer):
    """A random unit vector: an isotropic normal sample, normalised (the initial `u`)."""

    def __call__(self, shape, dtype=None):
        x = tf.random.normal(shape, dtype=dtype or tf.float32)
        return l2_normalize(x)


class _SpectralNormMixin:
    """Shared state and maths of the SN layers: `u`, `sigma` and the normalised kernel.

    The raw kernel stays the trainable variable; W/σ is computed in `call`, never
    written back. `u` and `sigma` are non-trainable weights, written only by a call with
    `training=True` (eval mode reads `u`), saved by checkpoints and in `.keras` files.
    """

    def _init_sn(self, power_iterations, lipschitz, eps):
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
        if lipschitz <= 0:
            raise ValueError(f"lipschitz must be > 0, got {lipschitz}")
        self.power_iterations = int(power_iterations)
        self.lipschitz = float(lipschitz)
        self.eps = float(eps)

    def add_weight(self, *args, **kwargs):
        # The power iteration and σ run in the variable dtype (float32 under mixed
        # precision), so the kernel must not be auto-cast to bf16/fp16 on read; `call`
        # casts W/σ instead.
        if kwargs.get("name") == "kernel":
            kwargs["autocast"] = False
        return super().add_weight(*args, **kwargs)

    def _build_sn(self):
        if self.quantization_mode or self.lora_enabled:
            raise ValueError(f"{self.name}: SN layers support neither quantization nor LoRA.")
        out = self._kernel.shape[-1]
        # "only_first_replica": u depends on W alone, identical on every replica; under
        # tf.distribute the first replica's value is written to all, keeping them in step.
        common = dict(trainable=False, dtype=self.dtype, autocast=False,
                      aggregation="only_first_replica")
        self.u = self.add_weight(name="u", shape=(out,), initializer=UnitNormal(), **common)
        self.sigma = self.add_weight(name="sigma", shape=(), initializer="ones", **common)

    def normalized_kernel(self, training=False):
        """K·W/σ(W) in the compute dtype; with training=True also updates u and sigma.

        With training False/None, u is only read (like the authors' code in test mode):
        the same power iteration runs from the stored u but nothing is written, so
        inference is deterministic.
        """
        w = tf.convert_to_tensor(self._kernel)
        u, _, sigma = power_iteration(kernel_matrix(w), tf.convert_to_tensor(self.u),
                                      self.power_iterations, self.eps)
        if training:
            self.u.assign(u)
            self.sigma.assign(tf.stop_gradient(sigma))
        return tf.cast(w * (self.lipschitz / sigma), self.compute_dtype)  # one pass over W

    def _own_variables(self):
        """What a `.keras` file holds, in order: Keras's Dense/Conv save only kernel and
        bias, which would lose `u` (and restart the power iteration) on load."""
        return [self._kernel] + ([self.bias] if self.use_bias else []) + [self.u, self.sigma]

    def save_own_variables(self, store):
        if self.built:
            for i, variable in enumerate(self._own_variables()):
                store[str(i)] = variable

    def load_own_variables(self, store):
        if not self.built:
            return
        variables = self._own_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(f"Layer '{self.name}' expects {len(variables)} variables "
                             f"(kernel, bias, u, sigma), the file has {len(store.keys())}.")
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])

    def _sn_config(self):
        return {"power_iterations": self.power_iterations, "lipschitz": self.lipschitz,
                "eps": self.eps}


def _check_training(training):
    if training is not None and not isinstance(training, bool):
        # Keras passes Python booleans in eager, tf.function and Model.fit alike; a
        # symbolic flag would need tf.cond around the assignment.
        training = tf.get_static_value(training)
        if training is None:
            raise ValueError("SN layers need a static `training` flag (a Python bool).")
        training = bool(training)
    return bool(training)


@keras.saving.register_keras_serializable(package="sngan_tf")
class SNDense(_SpectralNormMixin, keras.layers.Dense):
    """`keras.layers.Dense` with spectral normalization of its kernel.

    Args: those of `Dense`, plus `power_iterations` (per training call, default 1),
    `lipschitz` (the K of K·W/σ, default 1) and `eps` (normalisation epsilon).
    """

    def __init__(self, units, power_iterations=1, lipschitz=1.0, eps=_EPS, **kwargs):
        super().__init__(units, **kwargs)
        self._init_sn(power_iterations, lipschitz, eps)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_sn()

    def call(self, inputs, training=None):
        kernel = self.normalized_kernel(_check_training(training))
        if inputs.shape.rank == 2:
            outputs = tf.matmul(inputs, kernel)
        else:
            outputs = tf.tensordot(inputs, kernel, [[inputs.shape.rank - 1], [0]])
            outputs.set_shape(inputs.shape[:-1].concatenate([self.units]))
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        return {**super().get_config(), **self._sn_config()}


@keras.saving.register_keras_serializable(package="sngan_tf")
class SNConv2D(_SpectralNormMixin, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with spectral normalization of its kernel.

    The kernel (kh, kw, in, out) is normalised as the matrix (out, kh·kw·in), as in the
    paper. Args: those of `Conv2D` (groups must be 1), plus `power_iterations`,
    `lipschitz` and `eps` as in `SNDense`.
    """

    def __init__(self, filters, kernel_size, power_iterations=1, lipschitz=1.0, eps=_EPS,
                 **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.groups != 1:
            raise ValueError("SNConv2D supports groups=1 only.")
        self._init_sn(power_iterations, lipschitz, eps)

    def build(self, input_shape):
        super().build(input_shape)
        self._build_sn()

    def call(self, inputs, training=None):
        kernel = self.normalized_kernel(_check_training(training))
        outputs = self.convolution_op(inputs, kernel)
        if self.use_bias:
            data_format = "NHWC" if self.data_format == "channels_last" else "NCHW"
            outputs = tf.nn.bias_add(outputs, self.bias, data_format=data_format)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        return {**super().get_config(), **self._sn_config()}


def spectral_layers(model):
    """The SN layers of a model (recursively), for logging σ or inspection."""
    return [l for l in model._flatten_layers() if isinstance(l, _SpectralNormMixin)]  # pylint: disable=protected-access


@keras.saving.register_keras_serializable(package="sngan_tf")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused kernel where it can.

    Keras 3 composes batch norm from moments and elementwise ops (several passes over the
    activations, and float32 copies of them under mixed precision); Keras 2 used
    TensorFlow's `FusedBatchNormV3`, one kernel (oneDNN on CPU, cuDNN on GPU). This layer
    keeps Keras 3's variables and maths, moving averages of the biased batch variance
    included, and runs the fused kernel for NHWC or 2-D float32/bfloat16/float16 inputs;
    anything else (synchronized batch norm across replicas, float64, masks, renorm, another
    axis) takes Keras's own path.
    """

    def _fusable(self, inputs, mask):
        rank = inputs.shape.rank
        return (mask is None and not self.synchronized and not self.renorm
                and rank in (2, 4) and self.axis in (-1, rank - 1)
                and inputs.dtype in (tf.float32, tf.bfloat16, tf.float16))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = inputs if inputs.shape.rank == 4 else tf.reshape(inputs, [-1, 1, 1, channels])
        gamma = (tf.convert_to_tensor(self.gamma) if self.scale
                 else tf.ones([channels], tf.float32))
        beta = tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels])
        moving_mean = tf.convert_to_tensor(self.moving_mean)
        moving_variance = tf.convert_to_tensor(self.moving_variance)
        training = bool(training) and self.trainable
        y, mean, variance = tf.raw_ops.FusedBatchNormV3(
            x=tf.cast(x, self.compute_dtype), scale=gamma, offset=beta,
            mean=tf.constant([], tf.float32) if training else moving_mean,
            variance=tf.constant([], tf.float32) if training else moving_variance,
            epsilon=self.epsilon, data_format="NHWC", is_training=training)[:3]
        if training:
            # The kernel returns the unbiased variance (n/(n-1)); Keras averages the biased.
            n = tf.cast(tf.size(x) // channels, tf.float32)
            variance = variance * ((n - 1.0) / n)
            m = self.momentum
            self.moving_mean.assign(moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(moving_variance * m + variance * (1.0 - m))
        return y if inputs.shape.rank == 4 else tf.reshape(y, tf.shape(inputs))
