"""The training loop and the state it owns (the role of Orbit's Controller).

`Trainer` owns a run: the step counter, the CheckpointManager, the summary writer, console
progress and preemption. `Trainer.run` is the loop: a `GAN` step, then the periodic duties
of `Trainer.actions` (log, samples, Lipschitz probes, evaluation, checkpoint), each a named
`PeriodicAction` with its interval, each callable alone. It reads no flags, and reads and
writes its run directory only through `sngan_tf.rundir`, which lets only the chief of a
multi-worker run write.
"""
import contextlib
import dataclasses
import json
import os
import signal
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from sngan_tf import data as data_lib
from sngan_tf import lipschitz as lipschitz_lib
from sngan_tf import metric_keys
from sngan_tf import models
from sngan_tf import rundir as rundir_lib
from sngan_tf.rundir import ConfigMismatchError
from sngan_tf.training import ARCH_KEYS, GAN, TrainConfig, epoch_at


class NonFiniteError(RuntimeError):
    """A loss or weight became NaN or infinite; the last good checkpoint is kept."""


def _format_time(seconds):
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def every(interval: int, last_step: Optional[int] = None) -> Callable[[int], bool]:
    """`due` of an action run at the multiples of `interval` (0: never) and at `last_step`."""
    return lambda step: (interval > 0 and step % interval == 0) or step == last_step


@dataclasses.dataclass(frozen=True)
class PeriodicAction:
    """A duty of the loop: `fn(step)` after each step for which `due(step)` holds."""
    name: str
    due: Callable[[int], bool]
    fn: Callable[[int], object]


class _Progress:
    """Images/s and ETA of the log lines; time in the loop's other duties is not training."""

    def __init__(self, step: int, images_per_step: int, train_steps: int):
        self.images_per_step, self.train_steps = images_per_step, train_steps
        self.t_log = self.t_start = time.time()
        self.s_log = self.s_start = step

    def tick(self, step: int):
        """(images/s since the previous tick, seconds left at the mean pace so far)."""
        now = time.time()
        rate = self.images_per_step * (step - self.s_log) / max(now - self.t_log, 1e-9)
        eta = (self.train_steps - step) * (now - self.t_start) / max(step - self.s_start, 1)
        self.t_log, self.s_log = now, step
        return rate, eta

    @contextlib.contextmanager
    def paused(self):
        start = time.time()
        yield
        self.t_log += time.time() - start


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
        self.rundir.check_and_write_config(config.to_dict(), ARCH_KEYS)
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
        self._progress = _Progress(0, config.batch_size * config.n_dis, config.train_steps)
        self._out, self._logged = {}, {}  # the last step's outputs, the last logged scalars

    @property
    def multi_worker(self) -> bool:
        """Whether this is one of several worker processes (MultiWorkerMirroredStrategy)."""
        strategy = self.gan.strategy
        return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and bool(strategy.cluster_resolver.cluster_spec().jobs))

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

    # -- the loop --------------------------------------------------------------------------
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
        iterator, actions = self._iterator(), self.actions()
        self._progress = _Progress(self.step, cfg.batch_size * cfg.n_dis, cfg.train_steps)
        with self._signals() as preemption:
            while self.step < cfg.train_steps:
                self._out = self.gan.train_step(iterator)
                step = self.step
                self._check_finite(step)
                with self._progress.paused():  # samples, evaluation...: not in images/s
                    for action in actions:
                        if action.due(step):
                            action.fn(step)
                self._stop_if_asked(preemption, step)
        self._finish()
        return self._logged

    def actions(self) -> List[PeriodicAction]:
        """The duties after a step, in order: log, samples, Lipschitz, evaluate, generator
        weights, checkpoint.

        Log, samples and checkpoint also run at the last step; the evaluation of the last
        step runs after the loop (`_finish`), once the final checkpoint is saved.
        """
        cfg, last = self.config, self.config.train_steps
        actions = [PeriodicAction("log", every(cfg.log_every, last), self.log),
                   PeriodicAction("samples", every(cfg.sample_every, last), self.write_samples)]
        if self.lipschitz is not None:
            actions.append(PeriodicAction("lipschitz", every(cfg.lipschitz_interval),
                                          self.measure_lipschitz))
        if self.evaluator is not None:
            periodic = every(cfg.eval_every)
            actions.append(PeriodicAction("evaluate", lambda step: step != last and periodic(step),
                                          self.evaluate))
        if cfg.generator_every:
            actions.append(PeriodicAction("generator", every(cfg.generator_every),
                                          self.keep_generator))
        actions.append(PeriodicAction("checkpoint", every(cfg.checkpoint_every, last),
                                      lambda step: self.save()))
        return actions

    def _check_finite(self, step):
        if not bool(self._out["finite"]):
            bad = [k for k, v in self._out.items() if k != "finite" and not np.isfinite(v)]
            raise NonFiniteError(
                f"Non-finite {', '.join(bad)} at step {step}; stopped without saving. "
                f"Last good checkpoint: {self._latest_checkpoint()}.")

    def _stop_if_asked(self, preemption, step):
        """Saves and exits after a SIGINT/SIGTERM (or a worker's preemption)."""
        if preemption is not None:
            # Saves (through `save`) and exits (`_preempted`) at the step all workers
            # agreed on, if any of them received SIGTERM.
            preemption.save_checkpoint_if_preempted()
        if self._stop_signal is not None:
            self.save()
            if self.lipschitz is not None:  # the spectra of the state just saved
                self.write_spectra()
            logging.info("Stopped by signal %d at step %d; checkpoint saved.",
                         self._stop_signal, step)
            raise SystemExit(128 + self._stop_signal)

    def _finish(self):
        """After the last step: the final evaluation and the singular-value spectra."""
        if self.evaluator is not None:
            self.evaluate(self.step)
        if self.lipschitz is not None:
            self.write_spectra()
        self.writer.flush()

    # -- the actions -----------------------------------------------------------------------
    def log(self, step, out=None):
        """A step's scalars (`out`, default the last step's), σ of each SN layer, images/s and
        epoch: TensorBoard and a console line with the ETA."""
        rate, eta = self._progress.tick(step)
        out = self._out if out is None else out
        scalars = {k: float(v) for k, v in out.items() if k != "finite"}
        self._logged = scalars
        epoch = self.epoch(step)
        with self.writer.as_default(step=step):
            for k, v in scalars.items():
                tf.summary.scalar(k, v)
            for name, v in self.gan.sigmas().items():
                tf.summary.scalar(f"sigma/{name}", v)
            tf.summary.scalar("perf/images_per_sec", rate)
            tf.summary.scalar("perf/epoch", epoch)
        logging.info("step %d/%d  epoch %.2f  d %.4f  g %.4f  D(x) %.3f  D(G(z)) %.3f  "
                     "%.0f img/s  ETA %s", step, self.config.train_steps, epoch,
                     scalars["loss/d"], scalars["loss/g"], scalars["d_out/real"],
                     scalars["d_out/fake"], rate, _format_time(eta))
        return scalars

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

    def keep_generator(self, step):
        """The generator's weights at this step, kept beside the rotating checkpoints
        (`generators/step_N.weights.h5`): metrics added later can score past epochs."""
        path = self.rundir.write_generator(step, self.gan.generator)
        logging.info("Generator weights at step %d (epoch %.2f): %s", step, self.epoch(step), path)
        return path

    def write_spectra(self):
        """Singular values of each D layer's used kernel, as the paper's reshaped matrix,
        into `<logdir>/spectra.npz` (one array per layer name, and `step`)."""
        return self.rundir.write_spectra(self.step, self.lipschitz.spectra())

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
        self.rundir.write_eval_results(step, self.epoch(step), results,
                                       aliases=metric_keys.tensorboard_aliases(results))
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
