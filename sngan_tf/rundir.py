"""The run directory: the one module that reads and writes a run's files.

A run directory (`--logdir`) holds

  config.json              the resolved `TrainConfig`
  checkpoints/ckpt-<step>  both networks, both optimizers, every `u`, the step, the fixed z
  events.out.tfevents.*    TensorBoard scalars, sample grids, the flags as text
  metrics.csv              `step,epoch,metric,value`, one row per metric and evaluation
  samples/step_<N>.png     sample grids from the fixed codes
  spectra.npz              singular values of D's kernels at the end of training or a stop
  train.log                the training processes' output (runs of `sngan_tf.study run`)

This module is the format's only writer and only reader (STYLE.md item 14): the trainer,
the evaluate and sample binaries and the study (`sngan_tf.study`) reach these files only
through `RunDir` and `find_runs`, so a change of layout is one change here, and who may
write is decided here, once. Under
`tf.distribute.MultiWorkerMirroredStrategy` every worker runs the same program, and on the
usual shared file system (GCS, NFS) their writes to one `--logdir` would overwrite each
other; so only the chief writes (`is_chief`): the other workers get a no-op summary writer
and every other write is skipped. Checkpoints are the exception TensorFlow's multi-worker
guide prescribes: saving reads variables such as batch-norm statistics, which is a
collective, so every worker must save; the others save to a private temporary directory
and delete it at once. Every worker reads the chief's `config.json` and checkpoints.
"""
import csv
import io
import json
import math
import os
import re
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"
SAMPLES_DIR = "samples"
GENERATORS_DIR = "generators"  # the generator's weights at chosen steps (Trainer)
SPECTRA_FILE = "spectra.npz"  # singular values of D's kernels at the end or a stop (Trainer)
TRAIN_LOG = "train.log"  # the training processes' output, across resumes (study runner)
# How sngan_tf.train reports a sngan_tf.loop.NonFiniteError (cli.fail: "error: <message>").
_NONFINITE_LINE = "error: Non-finite"
SAMPLES_TAG = "samples"  # the TensorBoard image tag of the sample grids
_EVENTS_GLOB = "events.out.tfevents.*"
_TRAINING_TAG = "loss/d"  # logged by every training process, at its log steps
_SAMPLE_RE = re.compile(r"step_(\d+)\.png$")
_GENERATOR_RE = re.compile(r"step_(\d+)\.weights\.h5")  # a kept generator's file name


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
        """Loads the generator and step of checkpoint `path`, or of a kept
        `generators/step_<N>.weights.h5` (`write_generator`); returns the step.

        The discriminator and optimizers are left alone (`expect_partial`), but every
        generator variable must be in the checkpoint.

        Raises:
          RunNotFoundError: `path` is not a checkpoint or kept generator.
        """
        match = _GENERATOR_RE.fullmatch(os.path.basename(path))
        if match:
            if not tf.io.gfile.exists(path):
                raise RunNotFoundError(f"{path}: no such generator file")
            generator.load_weights(path)
            step.assign(int(match.group(1)))
            return int(match.group(1))
        if not tf.io.gfile.exists(path + ".index"):
            raise RunNotFoundError(f"{path} is not a checkpoint (no {path}.index)")
        status = tf.train.Checkpoint(generator=generator, step=step).restore(path)
        status.expect_partial().assert_existing_objects_matched()
        return int(step.numpy())

    # -- events, metrics, samples, other files -----------------------------------------
    def write_text(self, tag: str, text: str, step: int = 0):
        with self.writer.as_default():
            tf.summary.text(tag, text, step=step)

    def write_eval_results(self, step: int, epoch: float, results: Dict[str, float],
                           aliases: Optional[Dict[str, str]] = None):
        """Records one evaluation: `eval/<metric>` scalars and rows of `metrics.csv`.

        The trainer and the evaluate binary both call it, so their files have one format.
        `aliases` ({tag name: result key}) adds `eval/<tag name>` scalars only (the trainer's
        bare manifold-metric tags, `sngan_tf.metric_keys.tensorboard_aliases`).
        """
        with self.writer.as_default(step=step):
            for k, v in results.items():
                tf.summary.scalar(f"eval/{k}", v)
            for alias, k in (aliases or {}).items():
                tf.summary.scalar(f"eval/{alias}", results[k],
                                  description=f"the values of eval/{k}")
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
            tf.summary.image(SAMPLES_TAG, grid[None], step=step)
        path = self.path(SAMPLES_DIR, f"step_{step:08d}.png")
        if self.is_chief:
            tf.io.gfile.makedirs(os.path.dirname(path))
            tf.io.write_file(path, tf.io.encode_png(grid))
        return path

    def write_spectra(self, step: int, spectra: Dict[str, np.ndarray]) -> str:
        """`spectra.npz`: one array of singular values per layer name, and `step`."""
        buffer = io.BytesIO()
        np.savez(buffer, step=np.array(step), **spectra)
        return self.write_file(SPECTRA_FILE, buffer.getvalue())

    def write_generator(self, step: int, generator) -> str:
        """The generator's weights (Keras `.weights.h5`, no optimizer, ~1/10 of a checkpoint)
        as `generators/step_<N>.weights.h5`, kept for metrics added after the run."""
        path = self.path(GENERATORS_DIR, f"step_{step:08d}.weights.h5")
        if self.is_chief:
            tf.io.gfile.makedirs(os.path.dirname(path))
            generator.save_weights(path + ".tmp.weights.h5")
            tf.io.gfile.rename(path + ".tmp.weights.h5", path, overwrite=True)
        return path

    def generator_files(self) -> Dict[int, str]:
        """`generators/step_<N>.weights.h5` files: step -> path, by step."""
        found = {}
        for path in tf.io.gfile.glob(self.path(GENERATORS_DIR, "step_*.weights.h5")):
            match = _GENERATOR_RE.fullmatch(os.path.basename(path))
            if match:
                found[int(match.group(1))] = path
        return dict(sorted(found.items()))

    def write_file(self, name: str, data: bytes) -> str:
        """Writes `data` to `<logdir>/<name>` (chief only), through a temporary file."""
        path = self.path(name)
        if self.is_chief:
            tf.io.gfile.makedirs(os.path.dirname(path))
            with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
                f.write(data)
            tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
        return path

    # -- readers (the study, tests, any tool) ------------------------------------------------
    def read_events(self) -> "Events":
        """Every event file of the run, merged: a step logged twice keeps the later file's value.

        A resumed run opens a new file, so files are merged in the order they were started. A
        file cut short (the trainer still writing) gives the records before the cut.
        """
        files = [_read_event_file(path)
                 for path in tf.io.gfile.glob(self.path(_EVENTS_GLOB))]
        # First wall times have whole seconds: files of one second are ordered by their
        # writer's counter (`events.out.tfevents.<s>.<host>.<pid>.<counter>.v2`), as numbers.
        files.sort(key=lambda f: (f[0], _writer_counter(f[1]), f[1]))
        merged, samples, starts = {}, {}, []
        for _, _, scalars, images in files:
            for tag, points in scalars.items():
                merged.setdefault(tag, {}).update(points)
            samples.update(images)
            steps = scalars.get(_TRAINING_TAG)  # a training process; not `evaluate`'s rows
            if steps:
                starts.append((min(steps), max(steps)))
        out = {}
        for tag, points in merged.items():
            steps = np.array(sorted(points), dtype=np.int64)
            out[tag] = (steps, np.array([points[s] for s in steps], dtype=np.float64))
        return Events(out, dict(sorted(samples.items())), tuple(starts))

    def read_metrics(self) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """`metrics.csv` (see `read_metrics_file`); {} without a file."""
        return read_metrics_file(self.path(METRICS_FILE))

    def sample_files(self) -> Dict[int, str]:
        """`samples/step_<N>.png` files: step -> path, by step."""
        found = {}
        for path in tf.io.gfile.glob(self.path(SAMPLES_DIR, "step_*.png")):
            match = _SAMPLE_RE.search(os.path.basename(path))
            if match:
                found[int(match.group(1))] = path
        return dict(sorted(found.items()))

    def latest_sample(self, events: Optional["Events"] = None) -> Optional[Tuple[int, bytes]]:
        """(step, PNG bytes) of the run's latest sample grid, or None.

        The PNG files are the trainer's own record; the `samples` images of the events (pass
        `read_events()` to avoid reading them twice) are the fallback.
        """
        files = self.sample_files()
        if files:
            step = max(files)
            with tf.io.gfile.GFile(files[step], "rb") as f:
                return step, f.read()
        events = self.read_events() if events is None else events
        if events.samples:
            step = max(events.samples)
            return step, events.samples[step]
        return None

    def read_nonfinite_stops(self) -> List[str]:
        """Lines of `train.log` where training stopped on a non-finite loss, logit or weight
        (`sngan_tf.loop.NonFiniteError`, which logs nothing to TensorBoard); [] without a log."""
        path = self.path(TRAIN_LOG)
        if not tf.io.gfile.exists(path):
            return []
        with tf.io.gfile.GFile(path) as f:
            return [line.strip() for line in f if line.startswith(_NONFINITE_LINE)]

    def read_spectra(self) -> Tuple[Optional[int], Dict[str, np.ndarray]]:
        """`spectra.npz`: (step or None, {layer: singular values sorted descending}); (None, {})
        when the file is missing (runs from before it existed) or unreadable."""
        path = self.path(SPECTRA_FILE)
        if not tf.io.gfile.exists(path):
            return None, {}
        try:
            with tf.io.gfile.GFile(path, "rb") as f, np.load(io.BytesIO(f.read())) as npz:
                arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files}
        except (OSError, ValueError, EOFError) as e:
            logging.warning("Cannot read %s (%s); no spectra for this run.", path, e)
            return None, {}
        step = arrays.pop("step", None)
        step = int(step.reshape(-1)[0]) if step is not None and step.size else None
        return step, {k: np.sort(v.reshape(-1))[::-1] for k, v in arrays.items() if v.size}


class Events(NamedTuple):
    """What a run's event files hold (`RunDir.read_events`)."""
    scalars: Dict[str, Tuple[np.ndarray, np.ndarray]]  # tag -> (steps, values), by step
    samples: Dict[int, bytes]  # step -> PNG of the `samples` grid logged then, by step
    # (first, last) step of `loss/d` logged by each training process of the run, in start
    # order: a resumed run has several; a first step at or below the previous last is
    # re-trained work.
    spans: Tuple[Tuple[int, int], ...] = ()


def read_metrics_file(path: str) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A `metrics.csv` (or a published copy of one): metric -> (steps, epochs, values) sorted
    by step, in the order the metrics first appear; a repeated (metric, step) keeps the last
    row; {} without the file."""
    if not tf.io.gfile.exists(path):
        return {}
    rows = {}
    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    for row in csv.DictReader(io.StringIO(text, newline="")):
        try:
            step, epoch = int(float(row["step"])), float(row["epoch"])
            value = float(row["value"])
        except (KeyError, TypeError, ValueError):
            logging.warning("Skipping malformed row in %s: %s", path, row)
            continue
        rows.setdefault(row["metric"], {})[step] = (epoch, value)
    out = {}
    for name, points in rows.items():
        steps = sorted(points)
        out[name] = (np.array(steps, dtype=np.int64),
                     np.array([points[s][0] for s in steps], dtype=np.float64),
                     np.array([points[s][1] for s in steps], dtype=np.float64))
    return out


def find_runs(folder: str, max_depth: int = 2) -> List[str]:
    """The run directories (folders with a config.json) 1 to `max_depth` levels below
    `folder`, sorted by the path of their config.json; `[folder]` when there is none below
    and `folder` is a run itself."""
    folder = os.path.normpath(folder)
    configs = []
    for depth in range(1, max_depth + 1):
        configs += tf.io.gfile.glob(os.path.join(folder, *["*"] * depth, CONFIG_FILE))
    if not configs and tf.io.gfile.exists(os.path.join(folder, CONFIG_FILE)):
        return [folder]
    return [os.path.dirname(path) for path in sorted(configs)]


def _scalar_from_value(value) -> Optional[float]:
    """The float in a summary value (TF1 `simple_value` or TF2 scalar tensor), or None."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        dtype = tf.dtypes.as_dtype(value.tensor.dtype)
        if dtype.is_floating or dtype.is_integer or dtype.is_bool:
            array = tf.make_ndarray(value.tensor)
            if array.size == 1:
                return float(array.reshape(()))
    return None


def _png_from_value(value) -> Optional[bytes]:
    """The first encoded image of an image summary (TF1 or TF2 form), or None."""
    if value.HasField("image"):
        return value.image.encoded_image_string
    if value.HasField("tensor") and value.tensor.dtype == tf.string.as_datatype_enum:
        # TF2 `tf.summary.image` stores [width, height, png_0, png_1, ...].
        encoded = value.tensor.string_val
        if len(encoded) > 2:
            return encoded[2]
    return None


def _writer_counter(path: str) -> int:
    """The writer counter in an event file's name (-1 if none): 10 comes after 9."""
    match = re.search(r"\.(\d+)\.v2$", os.path.basename(path))
    return int(match.group(1)) if match else -1


def _read_event_file(path: str):
    """One event file -> (first wall time, path, {tag: {step: value}}, {step: sample PNG})."""
    scalars, images, first_wall_time = {}, {}, math.inf
    try:
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            first_wall_time = min(first_wall_time, event.wall_time)
            for value in event.summary.value:
                if value.tag == SAMPLES_TAG:
                    png = _png_from_value(value)
                    if png is not None:
                        images[event.step] = png
                    continue
                scalar = _scalar_from_value(value)
                if scalar is not None:
                    scalars.setdefault(value.tag, {})[event.step] = scalar
    except tf.errors.DataLossError:
        # The trainer may still be writing: keep the complete records read so far.
        logging.warning("Truncated event file %s; using the records before the cut.", path)
    return first_wall_time, path, scalars, images
