"""The GAN training step and the loop that owns its state (checkpoints, summaries, intervals).

`GAN` holds both networks and optimizers and one `tf.function` step: `n_dis`
discriminator updates on fresh real batches (fakes stopped), then one generator update,
as in the SN-GAN authors' updater. It runs under any `tf.distribute` strategy: losses are
averaged over the global batch, latent codes are a pure function of (seed, step) sliced
per replica, so a mirrored step equals the single-device step on the same global batch.

`Trainer` owns the loop (the role of Orbit's Controller): step counter, CheckpointManager,
summary writer, console progress, sample grids, the evaluation hook and preemption. It
reads no flags, and reads and writes its run directory only through `sngan_tf.rundir`,
which lets only the chief of a multi-worker run write. `make_strategy` builds the
tf.distribute strategy, multi-worker included.
"""
import contextlib
import dataclasses
import io
import json
import os
import re
import signal
import time
from typing import Callable, Dict, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from sngan_tf import data as data_lib
from sngan_tf import layers as sn_layers
from sngan_tf import lipschitz as lipschitz_lib
from sngan_tf import losses as losses_lib
from sngan_tf import models
from sngan_tf import rundir as rundir_lib
# Raised by the Trainer; defined with the run directory they are about.
from sngan_tf.rundir import ConfigMismatchError, RunNotFoundError  # pylint: disable=unused-import

# float64: slow (no oneDNN kernels); for numerical checks, where float32 rounding noise
# would hide the maths (tests/multiworker_test.py).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "float64")
# Settings that change the variables of a run: a resume with different values would
# restore half a model, so it is refused.
_ARCH_KEYS = ("arch", "norm", "g_batchnorm", "image_size", "z_dim", "cnn_variant")


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
        if self.eval_every < 0:
            raise ValueError(f"--eval_every must be >= 0, got {self.eval_every}.")
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


STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """A tf.distribute strategy by name: the default (one device), MirroredStrategy over
    this machine's GPUs (or CPUs), MultiWorkerMirroredStrategy (reads TF_CONFIG; create it
    before any other TensorFlow work; its coordination service aborts the collectives
    when a worker misses its heartbeats, about 10 s, see `describe_worker_failure`), or
    TPUStrategy for the TPU named by `tpu` ('' = the local one)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"--strategy={name!r} is not one of {', '.join(STRATEGIES)}.")


def describe_worker_failure(error: tf.errors.OpError) -> str:
    """One line naming the lost worker from the error a multi-worker collective raised.

    TensorFlow's coordination service (started by MultiWorkerMirroredStrategy) aborts every
    collective when a worker misses its heartbeats (about 10 s) or its connection drops;
    the message names the task, e.g. `/job:worker/replica:0/task:1`.
    """
    text = error.message or str(error)
    task = r"/job:\w+/(?:replica:\d+/)?task:(\d+)"
    # The peer, not this worker's own devices (also named in the message).
    # TF 2.15 said "Task ... heartbeat timeout"; 2.21 "tasks are unhealthy (stopped
    # sending heartbeats):" followed by the task.
    for pattern in (rf"Task ({task}) heartbeat timeout",
                    rf"unhealthy \(stopped sending heartbeats\):\s*({task})",
                    rf"remote target ({task})", rf"Error reported from ({task})"):
        match = re.search(pattern, text)
        if match:
            break
    who = f"worker {match.group(2)} ({match.group(1)})" if match else "a worker"
    if "heartbeat timeout" in text or "stopped sending heartbeats" in text:
        why = "it stopped sending heartbeats: it crashed, was killed or preempted"
    elif "Connection reset" in text or "failed to connect" in text or "Socket closed" in text:
        why = "its connection was lost: it crashed, was killed or preempted"
    else:
        why = text.strip().splitlines()[0]
    return f"lost {who}: {why} ({type(error).__name__})"


class NonFiniteError(RuntimeError):
    """A loss or weight became NaN or infinite; the last good checkpoint is kept."""


def epoch_at(step: int, config: TrainConfig, num_images: int) -> float:
    """Passes of D over the `num_images` training images after `step` generator steps."""
    return step * config.n_dis / data_lib.num_batches_per_epoch(num_images, config.batch_size)


def _format_time(seconds):
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


class Trainer:
    """Owns a run's loop state: step, checkpoints, summaries, intervals, evaluation hook.

    Every process of a run builds one, multi-worker runs included: all workers run the same
    loop (samples, evaluations and checkpoints read batch-norm statistics, which is a
    collective), and the run directory (`sngan_tf.rundir.RunDir`) lets only the chief write.

    Args:
      config: the run's settings.
      logdir: where checkpoints, events, `config.json`, `metrics.csv` and sample PNGs go;
        a second run on the same logdir resumes from its latest checkpoint.
      images: uint8 NHWC training images (from `sngan_tf.data.load_images`).
      strategy: a tf.distribute strategy (default: the current one).
      evaluator: optional `f(gan) -> {metric: value}` run every `eval_every` steps and at
        the end; values go to TensorBoard (`eval/<metric>`) and `metrics.csv`.
      run_info: extra text for TensorBoard (e.g. the full flag set).
    """

    def __init__(self, config: TrainConfig, logdir: str, images: np.ndarray,
                 strategy: Optional[tf.distribute.Strategy] = None,
                 evaluator: Optional[Callable] = None, run_info: str = ""):
        self.config, self.logdir, self.images = config, logdir, images
        self.evaluator, self.run_info = evaluator, run_info
        data_lib.num_batches_per_epoch(len(images), config.batch_size)  # batch <= images, or fail now
        strategy = strategy or tf.distribute.get_strategy()
        self.rundir = rundir_lib.RunDir(logdir, is_chief=strategy.extended.should_checkpoint)
        self.rundir.check_and_write_config(config.to_dict(), _ARCH_KEYS)
        self.gan = GAN(config, strategy)
        self.fixed_z = tf.Variable(
            models.sample_z(config.model, config.num_grid_samples, [config.seed, -1]),
            trainable=False, name="fixed_z")
        self.checkpoint = tf.train.Checkpoint(
            generator=self.gan.generator, discriminator=self.gan.discriminator,
            g_opt=self.gan.g_opt, d_opt=self.gan.d_opt, step=self.gan.step, fixed_z=self.fixed_z)
        self.manager = self.rundir.checkpoint_manager(self.checkpoint, config.keep_checkpoints)
        self.writer = self.rundir.writer
        self._stop_signal = None
        self.lipschitz = (lipschitz_lib.LipschitzMonitor(self.gan.discriminator)
                          if config.lipschitz_interval else None)
        # Fixed real images for the Lipschitz probes (as many as the sample grid), so the
        # curves follow the network, not a changing batch.
        pick = np.random.default_rng(config.seed).choice(
            len(images), min(config.num_grid_samples, len(images)), replace=False)
        self._probe_real = tf.constant(images[np.sort(pick)], tf.uint8)
        self._saved_step = None  # the step of the last checkpoint saved or restored

    @property
    def multi_worker(self) -> bool:
        """Whether this is one of several worker processes (MultiWorkerMirroredStrategy)."""
        strategy = self.gan.strategy
        return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and bool(strategy.cluster_resolver.cluster_spec().jobs))

    # -- loop ----------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return int(self.gan.step.numpy())

    def epoch(self, step=None) -> float:
        step = self.step if step is None else step
        return epoch_at(step, self.config, len(self.images))

    def restore(self) -> int:
        """Restores the run's newest readable checkpoint, if any; returns the step it starts from.

        Every worker reads the chief's checkpoints. A checkpoint damaged by a kill during
        its write is skipped with a warning, so the run goes on from the one before.

        Raises:
          ConfigMismatchError: checkpoints exist but none fits this model.
        """
        try:
            paths = self.rundir.checkpoints()
        except rundir_lib.RunNotFoundError:
            paths = []
        errors = []
        for path in reversed(paths):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError) as e:
                errors.append(f"{path}: {str(e).strip().splitlines()[0]}")
                logging.warning("Skipping unreadable checkpoint %s", errors[-1])
                continue
            # Keras checkpoints the learning rate; the current settings win on resume.
            self.gan.g_opt.learning_rate = self.config.lr_g
            self.gan.d_opt.learning_rate = self.config.lr_d
            self._saved_step = self.step
            logging.info("Resumed from %s at step %d.", path, self.step)
            return self.step
        if errors:
            raise ConfigMismatchError(
                f"--logdir={self.logdir}: no checkpoint fits this model; the newest says "
                f"{errors[0]}. Use a new --logdir, or the settings it was trained with "
                "(checkpoints of sngan_tf's TensorFlow 2.15 / Keras 2 versions do not restore "
                "into its Keras 3 models).")
        return self.step

    def _iterator(self):
        """Data positioned where the run stands: batch step·n_dis of the seeded stream.

        Each input pipeline (one per worker) builds the same seeded stream of global
        batches and keeps only its own replicas' slices of each, in replica order, so the
        replicas together see exactly the global batch a single device would; no
        auto-sharding is involved (`data.make_dataset`).
        """
        cfg = self.config

        def dataset_fn(input_context):
            return data_lib.make_dataset(self.images, cfg.batch_size, cfg.seed,
                                         start_batch=self.step * cfg.n_dis,
                                         input_context=input_context)
        return iter(self.gan.strategy.distribute_datasets_from_function(dataset_fn))

    def run(self) -> Dict[str, float]:
        """Trains until `train_steps`; returns the last logged scalars."""
        cfg = self.config
        self.restore()
        if self.step == 0:
            self.rundir.write_text("config", "```\n" + json.dumps(cfg.to_dict(), indent=2)
                                   + "\n```\n" + self.run_info)
        if self.step >= cfg.train_steps:
            logging.info("Nothing to do: step %d >= --train_steps=%d.", self.step, cfg.train_steps)
            return {}
        iterator = self._iterator()
        images_per_step = cfg.batch_size * cfg.n_dis
        last = {}
        t_log, s_log, t_start, s_start = time.time(), self.step, time.time(), self.step
        with self._signals() as preemption:
            while self.step < cfg.train_steps:
                out = self.gan.train_step(iterator)
                step = self.step
                if not bool(out["finite"]):
                    bad = [k for k, v in out.items() if k != "finite" and not np.isfinite(v)]
                    raise NonFiniteError(
                        f"Non-finite {', '.join(bad)} at step {step}; stopped without saving. "
                        f"Last good checkpoint: {self._latest_checkpoint()}.")
                if step % cfg.log_every == 0 or step == cfg.train_steps:
                    now = time.time()
                    rate = images_per_step * (step - s_log) / max(now - t_log, 1e-9)
                    eta = (cfg.train_steps - step) * (now - t_start) / max(step - s_start, 1)
                    last = {k: float(v) for k, v in out.items() if k != "finite"}
                    self._log(step, last, rate, eta)
                    t_log, s_log = now, step
                side_work = time.time()  # samples, evaluation, checkpoints: not in img/s
                if step % cfg.sample_every == 0 or step == cfg.train_steps:
                    self.write_samples(step)
                if self.lipschitz is not None and step % cfg.lipschitz_interval == 0:
                    self.measure_lipschitz(step)
                if (self.evaluator is not None and cfg.eval_every and step % cfg.eval_every == 0
                        and step != cfg.train_steps):
                    self.evaluate(step)
                if step % cfg.checkpoint_every == 0 or step == cfg.train_steps:
                    self.save()
                t_log += time.time() - side_work
                if preemption is not None:
                    # Saves (through `save`) and exits (`_preempted`) at the step all
                    # workers agreed on, if any of them received SIGTERM.
                    preemption.save_checkpoint_if_preempted()
                if self._stop_signal is not None:
                    self.save()
                    logging.info("Stopped by signal %d at step %d; checkpoint saved.",
                                 self._stop_signal, step)
                    raise SystemExit(128 + self._stop_signal)
        if self.evaluator is not None:
            self.evaluate(self.step)
        if self.lipschitz is not None:
            self.write_spectra()
        self.writer.flush()
        return last

    def _log(self, step, scalars, rate, eta):
        epoch = self.epoch(step)
        sigmas = self.gan.sigmas()
        with self.writer.as_default(step=step):
            for k, v in scalars.items():
                tf.summary.scalar(k, v)
            for name, v in sigmas.items():
                tf.summary.scalar(f"sigma/{name}", v)
            tf.summary.scalar("perf/images_per_sec", rate)
            tf.summary.scalar("perf/epoch", epoch)
        logging.info("step %d/%d  epoch %.2f  d %.4f  g %.4f  D(x) %.3f  D(G(z)) %.3f  "
                     "%.0f img/s  ETA %s", step, self.config.train_steps, epoch,
                     scalars["loss/d"], scalars["loss/g"], scalars["d_out/real"],
                     scalars["d_out/fake"], rate, _format_time(eta))

    def write_samples(self, step):
        """Sample grid from the fixed codes: TensorBoard `samples` and samples/step_N.png."""
        path = self.rundir.write_samples(step, self.gan.generate(self.fixed_z).numpy())
        logging.info("Sample grid at step %d: %s", step, path)
        return path

    def measure_lipschitz(self, step) -> Dict[str, float]:
        """Lower and upper bounds of D's Lipschitz constant and each layer's operator norm
        (sngan_tf.lipschitz), on fixed real images, the fixed-code samples and their
        interpolates; TensorBoard `lipschitz/<name>`. Reads D in inference mode only."""
        real = tf.cast(self._probe_real, tf.float32) / 127.5 - 1.0
        fake = self.gan.generate(self.fixed_z[:len(real)])
        out = self.lipschitz.measure(real, fake, seed=(self.config.seed, step))
        with self.writer.as_default(step=step):
            for k, v in out.items():
                if np.isfinite(v):
                    tf.summary.scalar(f"lipschitz/{k}", v)
        logging.info("Lipschitz at step %d: |grad D| real %.3g fake %.3g interp %.3g "
                     "(max %.3g) <= layer product %.3g", step, out["grad_norm_real"],
                     out["grad_norm_fake"], out["grad_norm_interp"],
                     max(out[f"grad_norm_{k}_max"] for k in ("real", "fake", "interp")),
                     out["upper_bound"])
        return out

    def write_spectra(self):
        """Singular values of each D layer's used kernel, as the paper's reshaped matrix,
        into `<logdir>/spectra.npz` (one array per layer name, and `step`)."""
        buffer = io.BytesIO()
        np.savez(buffer, step=np.array(self.step), **self.lipschitz.spectra())
        return self.rundir.write_file(rundir_lib.SPECTRA_FILE, buffer.getvalue())

    def _latest_checkpoint(self):
        try:
            return self.rundir.checkpoints(all_checkpoints=False)[-1]
        except rundir_lib.RunNotFoundError:
            return None

    def save(self):
        """Saves a checkpoint, refusing non-finite weights (every worker calls it)."""
        if not self.gan.all_finite():
            raise NonFiniteError(f"Non-finite weights at step {self.step}; not saved. Last good "
                                 f"checkpoint: {self._latest_checkpoint()}.")
        if self._saved_step != self.step:  # the same decision on every worker
            self.rundir.save_checkpoint(self.manager, self.step)
            self._saved_step = self.step
        return self.rundir.path(rundir_lib.CHECKPOINT_DIR, f"ckpt-{self.step}")

    def evaluate(self, step):
        """Runs the evaluator on the current generator and records its results."""
        results = self.evaluator(self.gan)
        self.rundir.write_eval_results(step, self.epoch(step), results)
        return results

    def _preempted(self):
        logging.info("Preempted (SIGTERM to a worker) at step %d; all workers saved a "
                     "checkpoint.", self.step)
        raise SystemExit(128 + signal.SIGTERM)

    @contextlib.contextmanager
    def _signals(self):
        """Yields the preemption handler of a multi-worker run, else None.

        One process: SIGINT/SIGTERM finish the current step, save a checkpoint and exit.
        Several workers: saving is a collective, so they must all save at the same step;
        TensorFlow's `PreemptionCheckpointHandler` agrees on that step through the
        coordination service when any worker receives SIGTERM, then calls `save` and
        `_preempted` on every worker. It is given its own empty checkpoint (its run counter
        starts at 0 on every worker at each start); the run's state is saved by `save`
        and restored by `restore`.
        """
        if self.multi_worker:
            strategy = self.gan.strategy
            handler = tf.distribute.experimental.PreemptionCheckpointHandler(
                strategy.cluster_resolver,
                # A folder that never exists: the handler restores nothing of its own.
                tf.train.CheckpointManager(tf.train.Checkpoint(), os.path.join(
                    self.logdir, "no_preemption_handler_checkpoints"), 1),
                termination_config=tf.distribute.experimental.TerminationConfig(
                    exit_fn=self._preempted, save_fn=self.save))
            yield handler
            return
        def handler(signum, _):
            self._stop_signal = signum
        try:
            previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield None
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
