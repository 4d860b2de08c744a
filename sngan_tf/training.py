"""A run's settings (`TrainConfig`) and the GAN training step (`GAN`).

`GAN` holds both networks and optimizers and one `tf.function` step: `n_dis`
discriminator updates on fresh real batches (fakes stopped), then one generator update,
as in the SN-GAN authors' updater. It runs under any `tf.distribute` strategy: losses are
averaged over the global batch, latent codes are a pure function of (seed, step) sliced
per replica, so a mirrored step equals the single-device step on the same global batch.

The loop around the step is `sngan_tf.loop.Trainer`; strategies come from
`sngan_tf.distribute`.
"""
import contextlib
import dataclasses
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from sngan_tf import data as data_lib
from sngan_tf import layers as sn_layers
from sngan_tf import losses as losses_lib
from sngan_tf import models

# float64: slow (no oneDNN kernels); for numerical checks, where float32 rounding noise
# would hide the maths (tests/multiworker_test.py).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "float64")
# Settings that change the variables of a run: a resume with different values would
# restore half a model, so it is refused.
ARCH_KEYS = ("arch", "norm", "g_batchnorm", "image_size", "z_dim", "cnn_variant")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides its data and logdir."""
    model: models.ModelConfig = models.ModelConfig()
    loss: str = "non_saturating"
    batch_size: int = 64  # global batch, split across replicas
    train_steps: int = 1000  # generator updates
    n_dis: int = 1  # discriminator updates per generator update
    lr_g: float = 1e-4
    lr_d: float = 4e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    precision: str = "float32"
    jit_compile: bool = False
    log_every: int = 100
    sample_every: int = 1000
    checkpoint_every: int = 1000
    eval_every: int = 0  # 0: only at the end (when an evaluator is given)
    lipschitz_every: Optional[int] = None  # None: every log_every steps; 0: never
    keep_checkpoints: int = 3
    generator_every: int = 0  # steps between kept generator weights (0: never)
    num_grid_samples: int = 64

    def __post_init__(self):
        if self.loss not in losses_lib.LOSSES:
            raise ValueError(f"--loss={self.loss!r} is not one of {', '.join(losses_lib.LOSSES)}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision={self.precision!r} is not one of {', '.join(PRECISIONS)}.")
        for name in ("batch_size", "train_steps", "n_dis", "log_every", "sample_every",
                     "checkpoint_every", "keep_checkpoints", "num_grid_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}.")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name} must be positive, got {getattr(self, name)}.")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"--{name} must be in [0, 1), got {getattr(self, name)}.")
        for name in ("eval_every", "generator_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}.")
        if self.lipschitz_every is not None and self.lipschitz_every < 0:
            raise ValueError(f"--lipschitz_every must be >= 0, got {self.lipschitz_every}.")

    @property
    def lipschitz_interval(self) -> int:
        """Steps between Lipschitz measurements (0: none)."""
        return self.log_every if self.lipschitz_every is None else self.lipschitz_every

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["model"] = models.ModelConfig(**d["model"])
        return cls(**d)


def epoch_at(step: int, config: TrainConfig, num_images: int) -> float:
    """Passes of D over the `num_images` training images after `step` generator steps."""
    return step * config.n_dis / data_lib.num_batches_per_epoch(num_images, config.batch_size)


@contextlib.contextmanager
def _dtype_policy(name):
    """Builds layers under a Keras dtype policy, restoring the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class GAN(tf.Module):
    """Generator, discriminator, their Adam optimizers and the distributed training step."""

    def __init__(self, config: TrainConfig, strategy: Optional[tf.distribute.Strategy] = None):
        super().__init__(name="gan")
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        replicas = self.strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ValueError(f"--batch_size={config.batch_size} is not divisible by the "
                             f"{replicas} replicas of the strategy.")
        self.local_batch = config.batch_size // replicas
        self.loss = losses_lib.LOSSES[config.loss]
        with self.strategy.scope(), _dtype_policy(config.precision):
            self.generator = models.make_generator(config.model)
            self.discriminator = models.make_discriminator(config.model)
            self.g_opt = self._optimizer(config.lr_g)
            self.d_opt = self._optimizer(config.lr_d)
            # Build the slots now so that a checkpoint restores into existing variables.
            self.g_opt.build(self.generator.trainable_variables)
            self.d_opt.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.sn_layers = sn_layers.spectral_layers(self.discriminator)
        self.train_step = tf.function(self._train_step)
        self._d_update, self._g_update = self._d_update_fn, self._g_update_fn
        if config.jit_compile:
            # The updates, not the whole step, are compiled: XLA cannot take the input
            # iterator. Not under several replicas: a nested tf.function traced by one
            # replica is reused by the others, and their collectives (sync batch norm,
            # gradient all-reduce) then pair up wrongly.
            if replicas > 1:
                raise ValueError("--jit_compile works with one replica per process only; "
                                 "for several GPUs use TF_XLA_FLAGS=--tf_xla_auto_jit=2.")
            self._d_update = tf.function(self._d_update_fn, jit_compile=True)
            self._g_update = tf.function(self._g_update_fn, jit_compile=True)

    def _optimizer(self, lr):
        opt = keras.optimizers.Adam(lr, beta_1=self.config.beta1, beta_2=self.config.beta2)
        if self.config.precision == "mixed_float16":
            # Dynamic loss scaling; its apply_gradients unscales and skips overflowing steps.
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    def _seed(self, offset):
        """Stateless seed for the latent codes of update `offset` of the current step."""
        per_step = self.config.n_dis + 1
        return tf.stack([tf.constant(self.config.seed, tf.int64),
                         self.step * per_step + offset])

    def _local_z(self, seed):
        # The global batch of codes is the same on every replica; each takes its slice, so
        # the replicas together see exactly the codes a single device would.
        z = models.sample_z(self.config.model, self.config.batch_size, seed)
        rid = tf.distribute.get_replica_context().replica_id_in_sync_group
        return z[rid * self.local_batch:(rid + 1) * self.local_batch]

    def _scale(self, opt, loss):
        """The loss whose gradient, summed over replicas, is that of the global-batch mean
        (times the loss scale for fp16). Call inside the tape."""
        scaled = loss / self.strategy.num_replicas_in_sync
        if isinstance(opt, keras.optimizers.LossScaleOptimizer):
            scaled = opt.scale_loss(scaled)
        return scaled

    @staticmethod
    def _apply(opt, scaled_loss, variables, tape):
        # A LossScaleOptimizer unscales the gradients itself.
        opt.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))

    def _d_update_fn(self, real, seed):
        fake = tf.stop_gradient(self.generator(self._local_z(seed), training=True))
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss, d_real, d_fake = self.loss.discriminator(real_logits, fake_logits)
            scaled = self._scale(self.d_opt, d_loss)
        self._apply(self.d_opt, scaled, variables, tape)
        return {"loss/d": d_loss, "loss/d_real": d_real, "loss/d_fake": d_fake,
                "d_out/real": tf.reduce_mean(tf.cast(real_logits, tf.float32)),
                "d_out/fake": tf.reduce_mean(tf.cast(fake_logits, tf.float32))}

    def _g_update_fn(self, seed):
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = self.generator(self._local_z(seed), training=True)
            g_loss = self.loss.generator(self.discriminator(fake, training=True))
            scaled = self._scale(self.g_opt, g_loss)
        self._apply(self.g_opt, scaled, variables, tape)
        return {"loss/g": g_loss}

    def _train_step(self, iterator):
        """n_dis discriminator updates, one generator update; returns mean scalars."""
        run = self.strategy.run
        for i in range(self.config.n_dis):
            d_out = run(self._d_update, args=(next(iterator), self._seed(i)))
        out = {**d_out, **run(self._g_update, args=(self._seed(self.config.n_dis),))}
        self.step.assign_add(1)
        out = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
               for k, v in out.items()}
        out["finite"] = tf.reduce_all([tf.math.is_finite(v) for v in out.values()])
        return out

    def generate(self, z):
        """float32 images from codes with the generator in inference mode (batch-norm
        averages)."""
        return tf.cast(self.generator(z, training=False), tf.float32)  # a no-op but in float64

    def sigmas(self) -> Dict[str, float]:
        """The latest σ estimate of every SN layer of the discriminator."""
        return {l.name: float(l.sigma.numpy()) for l in self.sn_layers}

    def all_finite(self) -> bool:
        variables = self.generator.variables + self.discriminator.variables
        values = (v.numpy() for v in variables)
        return all(bool(np.all(np.isfinite(x))) for x in values
                   if np.issubdtype(x.dtype, np.floating))
