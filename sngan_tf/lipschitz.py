"""How Lipschitz is the discriminator? Lower and upper bounds, and each layer's true norm.

Spectral normalization (Miyato et al., ICLR 2018) divides each kernel by the largest
singular value of its reshaped matrix (out, kh·kw·in) and argues that D's Lipschitz
constant is then at most the product of the layers' norms, i.e. 1. Two gaps make this
worth measuring rather than assuming:

* a convolution, as the linear operator it applies to an image (with its stride and
  padding), has a spectral norm different from the reshaped kernel's σ: overlapping
  windows can make it larger, strides smaller;
* the product of per-layer norms is only an upper bound of D's Lipschitz constant; the
  per-example input-gradient norm ‖∇ₓD(x)‖₂ is a lower bound.

Everything here is a pure function of a Keras model and tensors, with no flags and no
side effects on the model: SN layers are read with `training=False` (their `u` is never
written) and batch norm runs in inference mode, where it is the affine map counted by
the upper bound. `LipschitzMonitor` keeps warm-started power-iteration vectors so that
measuring during training costs a few iterations per layer.
"""
import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from sngan_tf import layers as sn_layers

_LINEAR = (keras.layers.Conv2D, keras.layers.Dense)  # SN layers subclass these
# Activations that are 1-Lipschitz elementwise: they multiply the product bound by 1.
_ONE_LIPSCHITZ = (keras.activations.linear, keras.activations.relu, keras.activations.tanh,
                  keras.activations.sigmoid)


def used_kernel(layer) -> tf.Tensor:
    """The kernel a Conv2D/Dense layer applies, in float32: K·W/σ for SN layers (read
    with training=False, so `u` is not updated), the raw kernel otherwise."""
    if isinstance(layer, sn_layers._SpectralNormMixin):  # pylint: disable=protected-access
        kernel = layer.normalized_kernel(training=False)
    else:
        kernel = tf.convert_to_tensor(layer.kernel)
    return tf.cast(kernel, tf.float32)


def linear_map(layer, kernel: Optional[tf.Tensor] = None) -> Callable[[tf.Tensor], tf.Tensor]:
    """The linear part of a Conv2D or Dense layer (no bias, no activation) as x -> A x.

    Args:
      layer: a built `Conv2D`/`SNConv2D` or `Dense`/`SNDense`.
      kernel: the kernel to apply (default: `used_kernel(layer)`); pass the raw
        `layer.kernel` to measure an SN layer before normalisation.
    """
    def get_kernel():  # read at every call, so a traced function follows training
        return used_kernel(layer) if kernel is None else tf.cast(kernel, tf.float32)

    if isinstance(layer, keras.layers.Conv2D):
        # Keras's own op: same strides, padding and dilation as the layer's forward pass.
        return lambda x: layer.convolution_op(x, get_kernel())
    if isinstance(layer, keras.layers.Dense):
        return lambda x: tf.matmul(x, get_kernel())
    raise TypeError(f"{layer.name}: not a Conv2D or Dense layer")


def _normalize(x):
    return x / (tf.norm(x) + 1e-30)


def _power_iterations(fn, x, num_iters):
    """`num_iters` steps of x <- AᵀA x / ‖AᵀA x‖, with Aᵀ from autodiff.

    Returns (x, ‖Ax‖ at the new x, ‖Ax‖ at the start vector)."""
    start = tf.norm(fn(x))
    for _ in tf.range(num_iters):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        x = _normalize(tape.gradient(y, x, output_gradients=y))  # AᵀA x
    return x, tf.norm(fn(x)), start


def power_iteration_step(fn):
    """A traced `(x, n) -> (x, ‖Ax‖, ‖Ax₀‖)`: n power iterations of the map `fn`."""
    return tf.function(lambda x, n: _power_iterations(fn, x, n))


def operator_norm(fn: Callable[[tf.Tensor], tf.Tensor], input_shape: Sequence[int],
                  x0: Optional[tf.Tensor] = None, tol: float = 1e-6, max_iters: int = 2000,
                  chunk: int = 10, seed: int = 0,
                  step: Optional[Callable] = None) -> Tuple[float, tf.Tensor]:
    """Spectral norm of a linear map on inputs of one shape, by power iteration on AᵀA.

    Args:
      fn: a linear function of a float32 tensor (e.g. `linear_map(layer)`).
      input_shape: the shape of one input, batch included (e.g. (1, 32, 32, 3)).
      x0: start vector (warm start); default a seeded random normal one.
      tol: stop when ‖Ax‖ changes by less than this, relatively, over `chunk` iterations.
      max_iters: iteration cap.
      chunk: iterations per check (run in one graph call).
      seed: seed of the default start vector.
      step: `power_iteration_step(fn)`, to reuse one traced function across calls.

    Returns:
      (σ, x): the estimate ‖Ax‖ ≤ σ_max(A), which increases towards it, and the unit
      vector reached (to warm-start the next call).
    """
    x = _normalize(tf.random.stateless_normal(input_shape, [seed, 0]) if x0 is None else x0)
    step = step or power_iteration_step(fn)
    iters = 0
    while iters < max_iters:
        x, sigma, previous = step(x, tf.constant(min(chunk, max_iters - iters)))
        iters += chunk
        sigma = float(sigma)
        if abs(sigma - float(previous)) <= tol * sigma:  # a warm start may stop at once
            break
    return sigma, x


def batchnorm_scale(layer: keras.layers.BatchNormalization) -> np.ndarray:
    """Per-channel slope γ/√(var+ε) of a batch-norm layer in inference mode."""
    var = layer.moving_variance.numpy().astype(np.float64)
    gamma = layer.gamma.numpy().astype(np.float64) if layer.scale else np.ones_like(var)
    return gamma / np.sqrt(var + layer.epsilon)


def kernel_spectrum(layer, kernel: Optional[tf.Tensor] = None) -> np.ndarray:
    """Singular values (descending) of the layer's kernel as the paper's matrix
    (out, kh·kw·in): the kernel used (W/σ for SN layers) unless `kernel` is given."""
    kernel = used_kernel(layer) if kernel is None else kernel
    matrix = np.asarray(sn_layers.kernel_matrix(kernel), np.float64)
    return np.linalg.svd(matrix, compute_uv=False)


def input_gradient_norms(discriminator: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """Per-example ‖∇ₓD(x)‖₂ in inference mode, shape (batch,): a lower bound of D's
    Lipschitz constant at each x (inference mode makes the examples independent)."""
    images = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = discriminator(images, training=False)
    grads = tape.gradient(logits, images)  # of the sum over the batch: examples independent
    return tf.norm(tf.reshape(grads, [tf.shape(grads)[0], -1]), axis=1)


def interpolates(real: tf.Tensor, fake: tf.Tensor, seed) -> tf.Tensor:
    """ε·real + (1-ε)·fake with ε ~ U(0, 1) per example (WGAN-GP's sampling)."""
    eps = tf.random.stateless_uniform([tf.shape(real)[0], 1, 1, 1], seed)
    return eps * real + (1.0 - eps) * fake


def _chain_factor(layer):
    """The Lipschitz constant a layer without weights adds to the product bound: 1 for
    reshapes and 1-Lipschitz activations, max(1, α) for LeakyReLU, None (no bound known)
    for anything else (including Keras ops such as an addition)."""
    if isinstance(layer, (keras.layers.InputLayer, keras.layers.Flatten,
                          keras.layers.Reshape)):
        return 1.0
    if isinstance(layer, keras.layers.Activation) and layer.activation in _ONE_LIPSCHITZ:
        return 1.0
    if (isinstance(layer, keras.layers.ReLU) and layer.max_value is None
            and not layer.negative_slope and not layer.threshold):
        return 1.0
    if isinstance(layer, keras.layers.LeakyReLU):
        return max(1.0, float(layer.negative_slope))
    return None


def is_chain(model: keras.Model) -> bool:
    """True if every operation takes the output of exactly one other (no residual adds)."""
    for operation in model.operations:
        for node in operation._inbound_nodes:  # pylint: disable=protected-access
            if len(node.parent_nodes) > 1:
                return False
    return True


class LipschitzMonitor:
    """Measures a discriminator's Lipschitz bounds during training.

    Keeps one warm-started power-iteration vector per linear layer, so that a
    measurement after a few hundred optimizer steps needs only a few iterations.

    Args:
      discriminator: a functional Keras model (sngan_tf.models.make_discriminator).
      tol: relative tolerance of each operator-norm estimate.
      max_iters: iteration cap per layer and measurement.
    """

    def __init__(self, discriminator: keras.Model, tol: float = 1e-4,
                 max_iters: int = 500):
        self.discriminator, self.tol, self.max_iters = discriminator, tol, max_iters
        self.linear = [l for l in discriminator.layers if isinstance(l, _LINEAR)]
        self.batchnorm = [l for l in discriminator.layers
                          if isinstance(l, keras.layers.BatchNormalization)]
        self._x = {}
        self._steps = {l.name: power_iteration_step(linear_map(l)) for l in self.linear}
        self._reason = self._bound_unavailable_reason()
        self._other_factors = 1.0 if self._reason else float(np.prod([
            _chain_factor(l) for l in discriminator.operations
            if not isinstance(l, _LINEAR + (keras.layers.BatchNormalization,))]))
        self._grad_norms = tf.function(lambda x: input_gradient_norms(discriminator, x))

    def _bound_unavailable_reason(self) -> Optional[str]:
        if not is_chain(self.discriminator):
            return "not a chain of layers (residual connections)"
        for layer in self.discriminator.operations:  # layers and ops alike
            if (not isinstance(layer, _LINEAR + (keras.layers.BatchNormalization,))
                    and _chain_factor(layer) is None):
                return f"layer {layer.name} ({type(layer).__name__}) has no known bound"
        return None

    @property
    def has_upper_bound(self) -> bool:
        return self._reason is None

    def layer_norms(self) -> Dict[str, float]:
        """Operator norm of each linear layer (kernel used, on its real input shape) and of
        each batch-norm layer (inference mode), by layer name."""
        norms = {}
        for layer in self.linear:
            shape = (1,) + tuple(layer.input.shape[1:])
            sigma, self._x[layer.name] = operator_norm(
                None, shape, self._x.get(layer.name), self.tol, self.max_iters,
                step=self._steps[layer.name])
            norms[layer.name] = sigma
        for layer in self.batchnorm:
            norms[layer.name] = float(np.max(np.abs(batchnorm_scale(layer))))
        return norms

    def upper_bound(self, norms: Dict[str, float]) -> float:
        """Product of the per-layer norms: a bound of D's Lipschitz constant (NaN when the
        network is not a chain of layers with known norms, e.g. the ResNet)."""
        if self._reason is not None:
            return math.nan
        return self._other_factors * float(
            np.prod([norms[l.name] for l in self.linear + self.batchnorm]))

    def measure(self, real: tf.Tensor, fake: tf.Tensor, seed=(0, 0)) -> Dict[str, float]:
        """All scalars, keyed by their TensorBoard tag (without the `lipschitz/` prefix):
        grad_norm_{real,fake,interp} (batch mean) and their _max, upper_bound, and
        layer/<name> for every linear and batch-norm layer."""
        out = {}
        for name, x in (("real", real), ("fake", fake),
                        ("interp", interpolates(real, fake, seed))):
            g = self._grad_norms(tf.convert_to_tensor(x, tf.float32)).numpy()
            out[f"grad_norm_{name}"] = float(np.mean(g))
            out[f"grad_norm_{name}_max"] = float(np.max(g))
        norms = self.layer_norms()
        out["upper_bound"] = self.upper_bound(norms)
        out.update({f"layer/{k}": v for k, v in norms.items()})
        return out

    def spectra(self) -> Dict[str, np.ndarray]:
        """Singular values of every linear layer's used kernel, reshaped (out, kh·kw·in)."""
        return {l.name: kernel_spectrum(l) for l in self.linear}
