"""Figures and a results table for a normalisation study (Miyato et al., ICLR 2018, Figs. 1-3).

A study folder holds one training logdir per configuration (e.g. `spectral`, `batch`, `none`);
every subfolder with a `config.json` is a run, labelled by its `"norm"` value. From each run's
TensorBoard event files, `metrics.csv` and `samples/step_*.png` this writes:

  metric_per_epoch.png   the chosen metric against epoch, all runs on one chart (Figure 1)
  losses_<norm>.png      G and D loss against step, EMA-smoothed over the raw curve (Figs. 2-3)
  samples_<norm>.png     the final sample grid of each run
  sigma.png              sigma of each spectrally normalised D layer (spectral runs only)
  results.md             final / best metric, epoch of best, images/s, steps trained

Usage:
  python scripts/plot_study.py --study_dir=runs/study [--output_dir=runs/study/figures] \
      [--metric=auto] [--smoothing=0.9]
"""
import csv
import glob
import io
import json
import math
import os
import re

from absl import app
from absl import flags
from absl import logging
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import matplotlib.ticker  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

_DPI = 100
_DASH = "—"
# Known configurations first, in this order, so colours match across studies.
_NORM_ORDER = ("spectral", "batch", "layer", "weight", "none")
_SAMPLE_RE = re.compile(r"step_(\d+)\.png$")


# ---------------------------------------------------------------------------------------------
# Reading a run.
# ---------------------------------------------------------------------------------------------


class Run:
    """One training logdir: its label, config, scalars, metrics and latest sample grid."""

    def __init__(self, logdir, label, config, scalars, metrics, sample_png, sample_step):
        self.logdir = logdir
        self.label = label
        self.config = config
        self.scalars = scalars  # tag -> (steps, values), sorted by step.
        self.metrics = metrics  # metric -> (steps, epochs, values), sorted by step.
        self.sample_png = sample_png  # PNG bytes of the final sample grid, or None.
        self.sample_step = sample_step

    @property
    def steps_trained(self):
        """The largest step logged by the run, or None when it has logged nothing."""
        steps = [s[-1] for s, _ in self.scalars.values() if len(s)]
        steps += [m[0][-1] for m in self.metrics.values() if len(m[0])]
        return int(max(steps)) if steps else None


def _scalar_from_value(value):
    """Returns the float in a summary value (TF1 `simple_value` or TF2 scalar tensor), or None."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        dtype = tf.dtypes.as_dtype(value.tensor.dtype)
        if dtype.is_floating or dtype.is_integer or dtype.is_bool:
            array = tf.make_ndarray(value.tensor)
            if array.size == 1:
                return float(array.reshape(()))
    return None


def _png_from_value(value):
    """Returns the first encoded image of an image summary (TF1 or TF2 form), or None."""
    if value.HasField("image"):
        return value.image.encoded_image_string
    if value.HasField("tensor") and value.tensor.dtype == tf.string.as_datatype_enum:
        # TF2 `tf.summary.image` stores [width, height, png_0, png_1, ...].
        encoded = value.tensor.string_val
        if len(encoded) > 2:
            return encoded[2]
    return None


def _read_event_file(path):
    """Reads one event file into (first wall time, {tag: {step: value}}, {step: sample png})."""
    scalars, images, first_wall_time = {}, {}, math.inf
    try:
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            first_wall_time = min(first_wall_time, event.wall_time)
            for value in event.summary.value:
                if value.tag == "samples":
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
    return first_wall_time, scalars, images


def read_events(logdir):
    """Reads every event file of a logdir; a step logged twice keeps the later file's value.

    Args:
      logdir: a training logdir holding `events.out.tfevents.*` files.

    Returns:
      (scalars, sample): scalars maps tag -> (steps, values) numpy arrays sorted by step;
      sample is (step, png bytes) of the latest `samples` image, or None.
    """
    files = []
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        first_wall_time, scalars, images = _read_event_file(path)
        files.append((first_wall_time, path, scalars, images))
    # A resumed run opens a new file: order files by when they were started.
    files.sort(key=lambda f: (f[0], f[1]))
    merged, images = {}, {}
    for _, _, scalars, file_images in files:
        for tag, points in scalars.items():
            merged.setdefault(tag, {}).update(points)
        images.update(file_images)
    out = {}
    for tag, points in merged.items():
        steps = np.array(sorted(points), dtype=np.int64)
        out[tag] = (steps, np.array([points[s] for s in steps], dtype=np.float64))
    sample = None
    if images:
        step = max(images)
        sample = (int(step), images[step])
    return out, sample


def read_metrics(logdir):
    """Reads `metrics.csv` (step,epoch,metric,value); a repeated (metric, step) keeps the last row.

    Returns:
      metric name -> (steps, epochs, values) numpy arrays sorted by step, in the order metrics
      first appear in the file; {} when the file does not exist yet.
    """
    path = os.path.join(logdir, "metrics.csv")
    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
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


def _latest_sample_file(logdir):
    """Returns (step, path) of the highest-step `samples/step_*.png`, or None."""
    best = None
    for path in glob.glob(os.path.join(logdir, "samples", "step_*.png")):
        match = _SAMPLE_RE.search(os.path.basename(path))
        if match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), path)
    return best


def read_run(logdir):
    """Reads one run logdir into a `Run`; the label is config.json's "norm" or the folder name."""
    with open(os.path.join(logdir, "config.json")) as f:
        config = json.load(f)
    label = str(config.get("norm") or os.path.basename(os.path.normpath(logdir)))
    scalars, event_sample = read_events(logdir)
    sample_step, sample_png = event_sample if event_sample else (None, None)
    sample_file = _latest_sample_file(logdir)
    # The PNG files are the trainer's own record of the grid; the event image is the fallback.
    if sample_file is not None:
        sample_step = sample_file[0]
        with open(sample_file[1], "rb") as f:
            sample_png = f.read()
    return Run(logdir, label, config, scalars, read_metrics(logdir), sample_png, sample_step)


def find_runs(study_dir):
    """Returns a `Run` for every subfolder of study_dir with a config.json (or study_dir itself).

    Runs come in a fixed order (spectral, batch, ..., none, then others by name); a label used by
    two runs gets the folder name appended so output files do not collide.
    """
    dirs = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(study_dir, "*", "config.json")))
    if not dirs and os.path.exists(os.path.join(study_dir, "config.json")):
        dirs = [study_dir]
    runs = [read_run(d) for d in dirs]
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label}_{os.path.basename(os.path.normpath(run.logdir))}"

    def order(run):
        norm = str(run.config.get("norm", ""))
        rank = _NORM_ORDER.index(norm) if norm in _NORM_ORDER else len(_NORM_ORDER)
        return rank, run.label

    return sorted(runs, key=order)


# ---------------------------------------------------------------------------------------------
# Metrics.
# ---------------------------------------------------------------------------------------------


def choose_metric(runs, metric=None):
    """Picks the metric to compare: `metric` if given, else `fid`, else the first `fd_*`.

    Returns the metric name, or None when no run has logged a suitable metric.
    """
    names = []
    for run in runs:
        names += [n for n in run.metrics if n not in names]
    if metric and metric != "auto":
        return metric
    if "fid" in names:
        return "fid"
    return next((n for n in names if n.startswith("fd_")), None)


def higher_is_better(metric):
    """Inception Score and classifier scores grow with quality; the distances shrink."""
    return metric == "is" or metric.startswith("score_")


def describe_metric(metric):
    """Names the metric and the network whose features it uses, e.g. for an axis label."""
    if metric == "fid":
        return "FID (Inception-v3 pool3 features)"
    if metric == "kid":
        return "KID (Inception-v3 pool3 features)"
    if metric == "is":
        return "Inception Score (Inception-v3 logits)"
    for prefix, text in (("fd_", "FD ({} features) — not an Inception FID"),
                         ("kd_", "KD ({} features) — not an Inception KID"),
                         ("score_", "Classifier score ({} logits) — not an Inception Score")):
        if metric.startswith(prefix):
            return text.format(metric[len(prefix):])
    return metric


def summarize_metric(epochs, values, higher_better=False):
    """Returns (final value, best value, epoch of best); ties keep the earliest evaluation.

    Args:
      epochs, values: one evaluation per entry, ordered by step.
      higher_better: whether the best value is the largest rather than the smallest.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return (values[-1] if len(values) else None), None, None
    masked = np.where(finite, values, -np.inf if higher_better else np.inf)
    best = int(np.argmax(masked) if higher_better else np.argmin(masked))
    return float(values[-1]), float(values[best]), float(epochs[best])


def format_value(value):
    """Two decimals for distances and scores; three significant digits below 1 (KID)."""
    if value is None:
        return _DASH
    if not math.isfinite(value) or abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _format_epoch(epoch):
    if epoch is None:
        return _DASH
    return str(int(epoch)) if float(epoch).is_integer() else f"{epoch:.2f}"


# ---------------------------------------------------------------------------------------------
# Smoothing.
# ---------------------------------------------------------------------------------------------


def ema_smooth(values, weight=0.9):
    """TensorBoard's scalar smoothing: an exponential moving average with debiasing.

    s_t = (w * m_{t-1} + (1 - w) * x_t) / (1 - w^t), with m the un-debiased average, so the first
    point is not pulled towards zero. Non-finite values pass through and do not update the average,
    as in TensorBoard.

    Args:
      values: 1-D sequence of raw values.
      weight: smoothing weight w in [0, 1); 0 returns the raw curve.

    Returns:
      A float64 numpy array of the same length.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    last, count = 0.0, 0
    for i, x in enumerate(values):
        if not np.isfinite(x):
            out[i] = x
            continue
        last = last * weight + (1.0 - weight) * x
        count += 1
        out[i] = last / (1.0 - weight ** count) if weight > 0 else last
    return out


# ---------------------------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------------------------


def _safe(label):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def _save(fig, path):
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_metric(runs, metric, path):
    """Figure 1: the metric against epoch, one line per configuration, best point starred."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    higher = higher_is_better(metric)
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        if metric not in run.metrics:
            ax.plot([], [], color=color, label=f"{run.label} (no {metric} yet)")
            continue
        _, epochs, values = run.metrics[metric]
        ax.plot(epochs, values, "o-", color=color, markersize=4, label=run.label)
        _, best, best_epoch = summarize_metric(epochs, values, higher)
        if best is not None:
            ax.plot([best_epoch], [best], "*", color=color, markersize=12, markeredgecolor="k")
    direction = "higher is better" if higher else "lower is better"
    epochs = np.concatenate([r.metrics[metric][1] for r in runs if metric in r.metrics])
    if np.all(np.mod(epochs, 1) == 0):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{describe_metric(metric)}\n({direction})", fontsize=9)
    ax.set_title(f"{metric} per epoch (star: best)")
    ax.grid(alpha=0.3)
    ax.legend(title="configuration")
    return _save(fig, path)


def plot_losses(run, smoothing, path):
    """Figures 2-3: G and D loss against step, smoothed, with the raw curve faint behind."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for tag, name, color in (("loss/d", "discriminator", "tab:blue"),
                             ("loss/g", "generator", "tab:orange")):
        if tag not in run.scalars:
            continue
        steps, values = run.scalars[tag]
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, ema_smooth(values, smoothing), color=color, label=f"{name} ({tag})",
                marker="o" if len(steps) == 1 else None)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.set_title(f"{run.label}: losses (EMA smoothing {smoothing:g}; raw curve faint)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_samples(run, path):
    """The run's final sample grid, re-rendered with a title naming configuration and step."""
    image = plt.imread(io.BytesIO(run.sample_png), format="png")
    height, width = image.shape[:2]
    # Upscale small grids (nearest neighbour, so pixels stay sharp) to about 400 px wide.
    scale = max(1.0, 400.0 / max(width, 1))
    fig, ax = plt.subplots(figsize=(width * scale / _DPI, height * scale / _DPI))
    ax.imshow(image, interpolation="nearest", cmap="gray" if image.ndim == 2 else None)
    ax.set_axis_off()
    step = "" if run.sample_step is None else f", step {run.sample_step}"
    ax.set_title(f"{run.label}: final samples{step}", fontsize=10)
    return _save(fig, path)


def _natural_key(text):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def plot_sigma(runs, path):
    """Sigma of each spectrally normalised D layer against step, one panel per spectral run."""
    fig, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 4.5), squeeze=False)
    for ax, run in zip(axes[0], runs):
        tags = sorted((t for t in run.scalars if t.startswith("sigma/")), key=_natural_key)
        for tag in tags:
            steps, values = run.scalars[tag]
            ax.plot(steps, values, marker="o" if len(steps) == 1 else None,
                    label=tag[len("sigma/"):])
        ax.set_xlabel("generator step")
        ax.set_ylabel("σ (power-iteration estimate of the spectral norm)")
        ax.set_title(f"{run.label}: spectral norm per discriminator layer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(tags) > 6 else 1, title="layer")
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Results table.
# ---------------------------------------------------------------------------------------------


def results_markdown(runs, metric, figures, notes=()):
    """The study's results table in Markdown, with the metric named above and figures below."""
    lines = ["# Study results", ""]
    if metric is None:
        lines.append("Metric: none logged yet (no `fid` or `fd_*` in any metrics.csv).")
        head = "metric"
    else:
        direction = "higher" if higher_is_better(metric) else "lower"
        lines.append(f"Metric: `{metric}`, {describe_metric(metric)}; {direction} is better.")
        head = metric
    lines += ["",
              f"| configuration | final {head} | best {head} | epoch of best | images/s "
              "| steps trained |",
              "|---|---|---|---|---|---|"]
    for run in runs:
        final = best = best_epoch = None
        if metric in run.metrics:
            _, epochs, values = run.metrics[metric]
            final, best, best_epoch = summarize_metric(epochs, values, higher_is_better(metric))
        speed = _DASH
        if "perf/images_per_sec" in run.scalars:
            speed = f"{np.median(run.scalars['perf/images_per_sec'][1]):.0f}"
        steps = run.steps_trained
        lines.append(f"| {run.label} | {format_value(final)} | {format_value(best)} "
                     f"| {_format_epoch(best_epoch)} | {speed} "
                     f"| {_DASH if steps is None else steps} |")
    lines += ["", "Figures:", ""]
    lines += [f"- [{name}]({os.path.basename(path)})" for name, path in figures.items()]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def plot_study(study_dir, output_dir, metric=None, smoothing=0.9):
    """Writes the study's figures and results.md into output_dir.

    Args:
      study_dir: folder whose subfolders with a config.json are training logdirs.
      output_dir: where to write; created if missing. None means <study_dir>/figures.
      metric: metric name from metrics.csv; None or "auto" picks `fid`, else the first `fd_*`.
      smoothing: EMA weight for the loss curves, as TensorBoard's smoothing slider.

    Returns:
      dict of output name (file name without extension) -> path written.
    """
    output_dir = output_dir or os.path.join(study_dir, "figures")
    os.makedirs(output_dir, exist_ok=True)
    runs = find_runs(study_dir)
    if not runs:
        raise ValueError(f"No run (subfolder with config.json) in {study_dir}")
    metric = choose_metric(runs, metric)
    figures, notes = {}, []

    def out(name):
        return os.path.join(output_dir, name + ".png")

    if metric is not None and any(metric in r.metrics for r in runs):
        figures["metric_per_epoch"] = plot_metric(runs, metric, out("metric_per_epoch"))
    else:
        notes.append(f"metric_per_epoch.png not written: no run has logged "
                     f"{metric or 'a fid or fd_* metric'} yet.")
    for run in runs:
        name = f"losses_{_safe(run.label)}"
        if "loss/d" in run.scalars or "loss/g" in run.scalars:
            figures[name] = plot_losses(run, smoothing, out(name))
        else:
            notes.append(f"{name}.png not written: {run.label} has logged no losses yet.")
    for run in runs:
        name = f"samples_{_safe(run.label)}"
        if run.sample_png is not None:
            figures[name] = plot_samples(run, out(name))
        else:
            notes.append(f"{name}.png not written: {run.label} has no sample grid yet.")
    spectral = [r for r in runs if any(t.startswith("sigma/") for t in r.scalars)]
    if spectral:
        figures["sigma"] = plot_sigma(spectral, out("sigma"))
    else:
        notes.append("sigma.png not written: no run logged sigma/<layer> (no spectral run).")
    for note in notes:
        logging.info(note)
    written = dict(figures)
    written["results"] = os.path.join(output_dir, "results.md")
    with open(written["results"], "w") as f:
        f.write(results_markdown(runs, metric, figures, notes))
    return written


def _define_flags():
    # Defined only when run as a script, so importing this module (tests) registers no flags.
    flags.DEFINE_string("study_dir", None, "Folder holding one training logdir per configuration.")
    flags.DEFINE_string("output_dir", None, "Where to write figures; default <study_dir>/figures.")
    flags.DEFINE_string("metric", "auto", "metrics.csv metric to compare; auto: fid, else fd_*.")
    flags.DEFINE_float("smoothing", 0.9, "TensorBoard-style EMA weight for loss curves, [0, 1).")
    flags.mark_flag_as_required("study_dir")


def main(argv):
    del argv  # Unused.
    f = flags.FLAGS
    written = plot_study(f.study_dir, f.output_dir, metric=f.metric, smoothing=f.smoothing)
    for name, path in written.items():
        logging.info("wrote %s: %s", name, path)
    with open(written["results"]) as results:
        print(results.read())


if __name__ == "__main__":
    _define_flags()
    app.run(main)
