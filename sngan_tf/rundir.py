"""The run directory: the one module that reads and writes a run's files.

A run directory (`--logdir`) holds

  config.json              the resolved `TrainConfig`
  checkpoints/ckpt-<step>  both networks, both optimizers, every `u`, the step, the fixed z
  events.out.tfevents.*    TensorBoard scalars, sample grids, the flags as text
  metrics.csv              `step,epoch,metric,value`, one row per metric and evaluation
  samples/step_<N>.png     sample grids from the fixed codes

The trainer, the evaluate binary and the sample binary reach these files only through
`RunDir`, so who may write them is decided here, once. Under
`tf.distribute.MultiWorkerMirroredStrategy` every worker runs the same program, and on the
usual shared file system (GCS, NFS) their writes to one `--logdir` would overwrite each
other; so only the chief writes (`is_chief`): the other workers get a no-op summary writer
and every other write is skipped. Checkpoints are the exception TensorFlow's multi-worker
guide prescribes: saving reads variables such as batch-norm statistics, which is a
collective, so every worker must save; the others save to a private temporary directory
and delete it at once. Every worker reads the chief's `config.json` and checkpoints.
"""
import json
import math
import os
import tempfile
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"
SAMPLES_DIR = "samples"
SPECTRA_FILE = "spectra.npz"  # singular values of D's kernels at the end (Trainer)


class ConfigMismatchError(ValueError):
    """The logdir holds a run with another architecture or normalisation."""


class RunNotFoundError(ValueError):
    """A logdir that is not a usable run: no directory, no config.json or no checkpoint."""


def to_uint8(images) -> np.ndarray:
    """Float images in [-1, 1] -> uint8 pixels in [0, 255] (rounded, clipped)."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) images, float in [-1, 1] or uint8 -> one uint8 grid, as square as possible."""
    n, h, w, c = images.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    pixels = images if images.dtype == np.uint8 else to_uint8(images)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = pixels[i]
    return grid


class RunDir:
    """Reads and writes one run directory; only the chief writes.

    Args:
      logdir: the run directory.
      is_chief: whether this process writes. False for the non-chief workers of a
        multi-worker run (`strategy.extended.should_checkpoint`); the evaluate and sample
        binaries, and single-process training, are chiefs.
    """

    def __init__(self, logdir: str, is_chief: bool = True):
        self.logdir, self.is_chief = logdir, is_chief
        self._writer = None

    def path(self, *parts) -> str:
        return os.path.join(self.logdir, *parts)

    @property
    def writer(self):
        """The TensorBoard writer: the run's events for the chief, a no-op for the others."""
        if self._writer is None:
            self._writer = (tf.summary.create_file_writer(self.logdir) if self.is_chief
                            else tf.summary.create_noop_writer())
        return self._writer

    def close(self):
        if self._writer is not None:
            self._writer.close()

    # -- config.json ---------------------------------------------------------------------
    def read_config(self) -> dict:
        """The run's config.json as a dict (`TrainConfig.from_dict` makes it a config).

        Raises:
          RunNotFoundError: no such directory, or no config.json in it.
        """
        if not tf.io.gfile.isdir(self.logdir):
            raise RunNotFoundError(f"--logdir={self.logdir}: no such directory")
        path = self.path(CONFIG_FILE)
        if not tf.io.gfile.exists(path):
            raise RunNotFoundError(f"--logdir={self.logdir} has no {CONFIG_FILE}: not a "
                                   "sngan_tf run")
        with tf.io.gfile.GFile(path) as f:
            return json.load(f)

    def check_and_write_config(self, config: dict, arch_keys: Sequence[str]):
        """Refuses a run whose model differs from the one in the logdir, then records `config`.

        Every worker checks (so all fail alike); the chief writes, atomically.

        Args:
          config: `TrainConfig.to_dict()`.
          arch_keys: keys of `config["model"]` that change the variables.

        Raises:
          ConfigMismatchError: naming every differing key.
        """
        path = self.path(CONFIG_FILE)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                saved = json.load(f)
            diffs = [f"{k}: {saved['model'].get(k)!r} in the logdir, {config['model'][k]!r} now"
                     for k in arch_keys if saved["model"].get(k) != config["model"][k]]
            if diffs:
                raise ConfigMismatchError(
                    f"--logdir={self.logdir} holds a run with different settings ("
                    + "; ".join(diffs) + "). Use a new --logdir, or the same settings to resume.")
        if self.is_chief:
            tf.io.gfile.makedirs(self.logdir)
            with tf.io.gfile.GFile(path + ".tmp", "w") as f:
                json.dump(config, f, indent=2, sort_keys=True)
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)

    # -- checkpoints ---------------------------------------------------------------------
    def checkpoint_manager(self, checkpoint: tf.train.Checkpoint,
                           keep: int) -> tf.train.CheckpointManager:
        """The manager `save_checkpoint` saves with: the run's `checkpoints/` for the chief,
        a private temporary directory for the other workers."""
        directory = (self.path(CHECKPOINT_DIR) if self.is_chief
                     else os.path.join(tempfile.gettempdir(),
                                       f"sngan_worker_checkpoint_{os.getpid()}"))
        return tf.train.CheckpointManager(checkpoint, directory, keep)

    def save_checkpoint(self, manager: tf.train.CheckpointManager, step: int) -> str:
        """Saves checkpoint `ckpt-<step>`.

        Every worker must call it at the same steps (saving is a collective), so whether to
        save is decided by the caller, identically on all workers, never here.

        Returns:
          The checkpoint path in the run directory, whoever saved.
        """
        if not self.is_chief:
            tf.io.gfile.makedirs(manager.directory)
        manager.save(checkpoint_number=step)
        if not self.is_chief:
            tf.io.gfile.rmtree(manager.directory)
        return self.path(CHECKPOINT_DIR, f"ckpt-{step}")

    def checkpoints(self, all_checkpoints: bool = True) -> List[str]:
        """The chief's checkpoints (oldest first), or only the latest.

        Raises:
          RunNotFoundError: the run has no checkpoint yet.
        """
        directory = self.path(CHECKPOINT_DIR)
        state = tf.train.get_checkpoint_state(directory) if tf.io.gfile.isdir(directory) else None
        if state is None or not state.model_checkpoint_path:
            raise RunNotFoundError(f"--logdir={self.logdir} has no checkpoint in {directory}")
        if all_checkpoints:
            return list(state.all_model_checkpoint_paths)
        return [state.model_checkpoint_path]

    def resolve_checkpoint(self, checkpoint: str = None) -> str:
        """A checkpoint prefix from a prefix, a folder, or None (the run's latest).

        Raises:
          RunNotFoundError: no checkpoint there.
        """
        if checkpoint is None:
            return self.checkpoints(all_checkpoints=False)[-1]
        path = (tf.train.latest_checkpoint(checkpoint) if tf.io.gfile.isdir(checkpoint)
                else checkpoint)
        if not path or not tf.io.gfile.exists(path + ".index"):
            raise RunNotFoundError(
                f"--checkpoint={checkpoint}: no checkpoint there (give a prefix such as "
                f"{self.path(CHECKPOINT_DIR, 'ckpt-1000')})")
        return path

    @staticmethod
    def restore_generator(generator: "keras.Model", step: tf.Variable, path: str) -> int:
        """Loads the generator and step of checkpoint `path`; returns the step.

        The discriminator and optimizers are left alone (`expect_partial`), but every
        generator variable must be in the checkpoint.

        Raises:
          RunNotFoundError: `path` is not a checkpoint.
        """
        if not tf.io.gfile.exists(path + ".index"):
            raise RunNotFoundError(f"{path} is not a checkpoint (no {path}.index)")
        status = tf.train.Checkpoint(generator=generator, step=step).restore(path)
        status.expect_partial().assert_existing_objects_matched()
        return int(step.numpy())

    # -- events, metrics, samples, other files -----------------------------------------
    def write_text(self, tag: str, text: str, step: int = 0):
        with self.writer.as_default():
            tf.summary.text(tag, text, step=step)

    def write_eval_results(self, step: int, epoch: float, results: Dict[str, float]):
        """Records one evaluation: `eval/<metric>` scalars and rows of `metrics.csv`.

        The trainer and the evaluate binary both call it, so their files have one format.
        """
        with self.writer.as_default(step=step):
            for k, v in results.items():
                tf.summary.scalar(f"eval/{k}", v)
        self.writer.flush()
        logging.info("eval at step %d (epoch %.2f): %s", step, epoch,
                     ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
        if not self.is_chief:
            return
        path = self.path(METRICS_FILE)
        new = not tf.io.gfile.exists(path)
        with tf.io.gfile.GFile(path, "a") as f:
            if new:
                f.write("step,epoch,metric,value\n")
            for k, v in results.items():
                f.write(f"{step},{epoch:.4f},{k},{v:.6g}\n")

    def write_samples(self, step: int, images: np.ndarray) -> str:
        """One grid of `images`: TensorBoard `samples` and `samples/step_<N>.png`."""
        grid = image_grid(images)
        with self.writer.as_default(step=step):
            tf.summary.image("samples", grid[None], step=step)
        path = self.path(SAMPLES_DIR, f"step_{step:08d}.png")
        if self.is_chief:
            tf.io.gfile.makedirs(os.path.dirname(path))
            tf.io.write_file(path, tf.io.encode_png(grid))
        return path

    def write_file(self, name: str, data: bytes) -> str:
        """Writes `data` to `<logdir>/<name>` (chief only), through a temporary file."""
        path = self.path(name)
        if self.is_chief:
            tf.io.gfile.makedirs(os.path.dirname(path))
            with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
                f.write(data)
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
        return path
