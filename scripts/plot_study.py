"""Figures and results for a normalisation study (Miyato et al., ICLR 2018, Figs. 1-3).

A study folder holds one folder per configuration (e.g. `spectral`, `batchnorm`, `nonorm`),
each either a training logdir itself (a single run, the old layout) or holding one logdir
per seed (`<config>/seed_<s>`, written by scripts/run_study.py --seeds). Every folder with a
`config.json` is a run; runs are grouped by the configuration folder they sit in and curves
are averaged over the seeds of a group, with a band of ±1 standard deviation across seeds.
From each run's TensorBoard event files, `metrics.csv`, `spectra.npz` and `samples/step_*.png`
this writes:

  metric_per_epoch.png        the chosen metric against epoch per configuration (Figure 1)
  lipschitz.png               D's Lipschitz constant: gradient-norm lower bounds and the
                              product-of-layer-norms upper bound against step (log scale)
  operator_norm_vs_sigma.png  SN runs: each layer's exact operator norm as applied (W/σ, with
                              its stride and padding) and the σ it is divided by
  spectra.png                 final singular values of each layer's normalised reshaped
                              kernel, scaled to a largest value of 1 (as in Figure 3)
  losses_<config>.png         G and D loss against step of the first seed, EMA-smoothed
  samples_<config>.png        the final sample grid of the first seed
  sigma.png                   σ of each spectrally normalised D layer (SN runs only)
  results.md                  the tables: metric per epoch, final / best, the Lipschitz
                              bounds and per-layer norms, as mean ± std over seeds

Runs from before the Lipschitz logging (no `lipschitz/*` tags, no spectra.npz) still give
every figure their data allow; the others are skipped with a note in results.md.

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
_SEED_DIR_RE = re.compile(r"seed_(\d+)$")

SPECTRA_FILE = "spectra.npz"
SIGMA_PREFIX = "sigma/"
LAYER_PREFIX = "lipschitz/layer/"
UPPER_BOUND_TAG = "lipschitz/upper_bound"
# Per-example ‖∇ₓD(x)‖₂ averaged over a batch: lower bounds of D's Lipschitz constant.
LOWER_BOUND_TAGS = (("lipschitz/grad_norm_real", "real x"),
                    ("lipschitz/grad_norm_fake", "fake G(z)"),
                    ("lipschitz/grad_norm_interp", "interpolates"))
_LOWER_BOUND_COLORS = ("tab:blue", "tab:orange", "tab:green")


# ---------------------------------------------------------------------------------------------
# Reading a run.
# ---------------------------------------------------------------------------------------------


class Run:
    """One training logdir: its label, seed, config, scalars, metrics, spectra and samples."""

    def __init__(self, logdir, label, config, scalars, metrics, sample_png, sample_step,
                 seed=0, spectra=None, spectra_step=None):
        self.logdir = logdir
        self.label = label  # the configuration: runs with one label are seeds of it
        self.config = config
        self.scalars = scalars  # tag -> (steps, values), sorted by step.
        self.metrics = metrics  # metric -> (steps, epochs, values), sorted by step.
        self.sample_png = sample_png  # PNG bytes of the final sample grid, or None.
        self.sample_step = sample_step
        self.seed = seed
        self.spectra = spectra or {}  # layer -> singular values, descending.
        self.spectra_step = spectra_step

    @property
    def steps_trained(self):
        """The largest step logged by the run, or None when it has logged nothing."""
        steps = [s[-1] for s, _ in self.scalars.values() if len(s)]
        steps += [m[0][-1] for m in self.metrics.values() if len(m[0])]
        return int(max(steps)) if steps else None

    @property
    def num_sets(self):
        """Generated sets per evaluation (metrics.csv `num_sets`; 1 when not logged)."""
        if "num_sets" in self.metrics and len(self.metrics["num_sets"][2]):
            return int(self.metrics["num_sets"][2][-1])
        return 1

    def final(self, tag):
        """(step, value) of the last logged point of a scalar tag, or None."""
        if tag not in self.scalars or not len(self.scalars[tag][0]):
            return None
        steps, values = self.scalars[tag]
        return int(steps[-1]), float(values[-1])

    def tags(self, prefix):
        """Names after `prefix` of the scalar tags starting with it, in natural order."""
        return sorted((t[len(prefix):] for t in self.scalars if t.startswith(prefix)),
                      key=_natural_key)


def _natural_key(text):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


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


def read_spectra(logdir):
    """Reads `<logdir>/spectra.npz`: one array of singular values per layer, plus `step`.

    Returns:
      (step or None, {layer: singular values sorted descending}); (None, {}) when the file is
      missing (runs from before it existed) or unreadable.
    """
    path = os.path.join(logdir, SPECTRA_FILE)
    if not os.path.exists(path):
        return None, {}
    try:
        with np.load(path) as npz:
            arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in npz.files}
    except (OSError, ValueError, EOFError) as e:
        logging.warning("Cannot read %s (%s); no spectra for this run.", path, e)
        return None, {}
    step = arrays.pop("step", None)
    step = int(step.reshape(-1)[0]) if step is not None and step.size else None
    spectra = {k: np.sort(v.reshape(-1))[::-1] for k, v in arrays.items() if v.size}
    return step, spectra


def config_norm(config):
    """The run's D normalisation from config.json (`model.norm`, or top-level `norm`), or ''."""
    model = config.get("model")
    norm = model.get("norm") if isinstance(model, dict) else None
    return str(norm or config.get("norm") or "")


def _run_seed(config, logdir):
    """config.json's seed; else the `seed_<s>` folder name; else 0."""
    if isinstance(config.get("seed"), int):
        return config["seed"]
    match = _SEED_DIR_RE.fullmatch(os.path.basename(os.path.normpath(logdir)))
    return int(match.group(1)) if match else 0


def read_run(logdir, label=None):
    """Reads one run logdir into a `Run`; the label defaults to the folder name."""
    with open(os.path.join(logdir, "config.json")) as f:
        config = json.load(f)
    label = label or os.path.basename(os.path.normpath(logdir))
    scalars, event_sample = read_events(logdir)
    sample_step, sample_png = event_sample if event_sample else (None, None)
    sample_file = _latest_sample_file(logdir)
    # The PNG files are the trainer's own record of the grid; the event image is the fallback.
    if sample_file is not None:
        sample_step = sample_file[0]
        with open(sample_file[1], "rb") as f:
            sample_png = f.read()
    spectra_step, spectra = read_spectra(logdir)
    return Run(logdir, label, config, scalars, read_metrics(logdir), sample_png, sample_step,
               seed=_run_seed(config, logdir), spectra=spectra, spectra_step=spectra_step)


class Group:
    """The runs of one configuration, one per seed, ordered by seed."""

    def __init__(self, label, runs):
        self.label = label
        self.runs = sorted(runs, key=lambda r: (r.seed, r.logdir))

    @property
    def seeds(self):
        return [r.seed for r in self.runs]

    @property
    def first(self):
        """The lowest seed's run: the one whose samples and losses are drawn."""
        return self.runs[0]

    @property
    def norm(self):
        return config_norm(self.first.config)

    def describe(self):
        """E.g. `spectral (3 seeds)` or `spectral (seed 0)`."""
        if len(self.runs) == 1:
            return f"{self.label} (seed {self.first.seed})"
        return f"{self.label} ({len(self.runs)} seeds)"


def find_runs(study_dir):
    """Finds the study's runs and groups them by configuration.

    A run is a folder with a config.json: `<study>/<config>/` (one run) or
    `<study>/<config>/<anything>/` (e.g. `seed_<s>`), or study_dir itself. Its label is the
    `<config>` folder. Two runs of one configuration with the same seed (an old single run
    beside a new `seed_<s>` folder) keep the one in the deeper folder.

    Returns:
      (groups, notes): `Group`s in a fixed order (spectral, batch, ..., none by the runs'
      normalisation, then others by name), and notes on runs left out.
    """
    study_dir = os.path.normpath(study_dir)
    paths = glob.glob(os.path.join(study_dir, "*", "config.json"))
    paths += glob.glob(os.path.join(study_dir, "*", "*", "config.json"))
    found = []
    for path in sorted(paths):
        logdir = os.path.dirname(path)
        label = os.path.relpath(logdir, study_dir).split(os.sep)[0]
        found.append(read_run(logdir, label))
    if not found and os.path.exists(os.path.join(study_dir, "config.json")):
        found = [read_run(study_dir)]
    by_label, notes = {}, []
    for run in found:
        seeds = by_label.setdefault(run.label, {})
        other = seeds.get(run.seed)
        if other is not None:
            keep, drop = sorted((run, other), key=lambda r: -r.logdir.count(os.sep))
            notes.append(f"{run.label}: {drop.logdir} and {keep.logdir} are both seed "
                         f"{run.seed}; using {keep.logdir}.")
            run = keep
        seeds[run.seed] = run
    groups = [Group(label, list(seeds.values())) for label, seeds in by_label.items()]

    def order(group):
        rank = _NORM_ORDER.index(group.norm) if group.norm in _NORM_ORDER else len(_NORM_ORDER)
        return rank, group.label

    return sorted(groups, key=order), notes


# ---------------------------------------------------------------------------------------------
# Metrics.
# ---------------------------------------------------------------------------------------------


def is_metric(name):
    """Whether a metrics.csv name is a metric, not `num_sets` or a `<metric>_std` beside one."""
    return name != "num_sets" and not name.endswith("_std")


def choose_metric(runs, metric=None):
    """Picks the metric to compare: `metric` if given, else `fid`, else the first `fd_*`.

    Returns the metric name, or None when no run has logged a suitable metric.
    """
    names = []
    for run in runs:
        names += [n for n in run.metrics if n not in names and is_metric(n)]
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
    """Two decimals for distances and scores; three significant digits below 1 (KID), four
    from 1e5 (the Lipschitz upper bound of an unnormalised D)."""
    if value is None:
        return _DASH
    if math.isfinite(value) and abs(value) >= 1e5:
        return f"{value:.4g}"
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
# Statistics across seeds.
# ---------------------------------------------------------------------------------------------


def mean_std(values):
    """Mean and standard deviation (ddof 1, the sample std) of the finite values.

    Returns:
      (mean, std, n): n the number of finite values; std is nan when n < 2 and mean is nan
      when n == 0.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    std = float(np.std(values, ddof=1)) if n >= 2 else math.nan
    return float(np.mean(values)), std, n


def mean_band(series):
    """Averages curves of several seeds point by point: the line and ±1 std band of a figure.

    Args:
      series: one (x, y) pair of 1-D arrays per seed; the x values need not be shared (a
        seed still training has fewer points).

    Returns:
      (x, mean, std, count) numpy arrays: x the sorted union of the x values; mean and std
      (ddof 1) over the seeds with a finite y at that x; std is nan where count < 2.
    """
    series = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
              for x, y in series]
    if not series:
        empty = np.zeros(0)
        return empty, empty, empty, np.zeros(0, dtype=np.int64)
    xs = np.unique(np.concatenate([x for x, _ in series]))
    table = np.full((len(series), len(xs)), np.nan)
    for i, (x, y) in enumerate(series):
        table[i, np.searchsorted(xs, x)] = y
    finite = np.isfinite(table)
    count = finite.sum(axis=0)
    total = np.where(finite, table, 0.0).sum(axis=0)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    squares = np.where(finite, (table - mean) ** 2, 0.0).sum(axis=0)
    std = np.where(count >= 2, np.sqrt(squares / np.maximum(count - 1, 1)), np.nan)
    return xs, mean, std, count


def format_mean_std(mean, std=math.nan):
    """`mean ± std` rounded to the std's second significant digit; the mean alone without a std.

    E.g. (12, 2) -> "12.0 ± 2.0", (0.3456, 0.0123) -> "0.346 ± 0.012", (20000, 14142) ->
    "20000 ± 14000", (3.1e7, 1.2e6) -> "3.1e+07 ± 1.2e+06", (1.00000024, 6.7e-7) ->
    "1.0000 ± 6.7e-07" (at most 5 significant digits of the mean), (44.25, nan) -> "44.25".
    """
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return _DASH
    if std is None or not math.isfinite(std) or not math.isfinite(mean):
        return format_value(mean)
    if std == 0:
        return f"{format_value(mean)} ± 0"
    if max(abs(mean), std) >= 1e5:  # e.g. the upper bound of an unnormalised D
        return f"{mean:.3g} ± {std:.2g}"
    decimals = 1 - math.floor(math.log10(std))
    if decimals < 0:  # 20000 ± 14142 -> 20000 ± 14000
        return f"{round(mean, decimals):.0f} ± {round(std, decimals):.0f}"
    cap = 4 - math.floor(math.log10(abs(mean))) if mean else decimals
    if decimals > max(cap, 0):  # a std far below the mean: 5 significant digits of the mean
        return f"{mean:.{max(cap, 0)}f} ± {std:.2g}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def format_values(values):
    """Mean ± std over the finite values, with `(n=k)` when some are missing; — for none."""
    total = len(values)
    mean, std, n = mean_std([math.nan if v is None else v for v in values])
    text = format_mean_std(mean, std)
    if 0 < n < total:
        text += f" (n={n})"
    return text


# ---------------------------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------------------------


def _safe(label):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def _save(fig, path):
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _colors():
    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _draw_mean(ax, series, color, label=None, log=False, **line_kw):
    """Draws the mean over seeds as a line and ±1 std across seeds as a band (where ≥ 2 seeds).

    Returns mean_band(series), or None when there is nothing to draw.
    """
    x, mean, std, count = mean_band(series)
    if not len(x):
        return None
    if len(x) == 1:
        line_kw.setdefault("marker", "o")
    ax.plot(x, mean, color=color, label=label, **line_kw)
    spread = count >= 2
    if spread.any():
        low = mean - std
        if log:  # a band reaching zero or below has no place on a log axis
            low = np.maximum(low, 0.05 * mean)
        ax.fill_between(x, np.where(spread, low, mean), np.where(spread, mean + std, mean),
                        where=spread, color=color, alpha=0.15, linewidth=0)
    return x, mean, std, count


def _scalar_series(group, tag):
    return [run.scalars[tag] for run in group.runs if tag in run.scalars]


def _group_tags(group, prefix):
    tags = []
    for run in group.runs:
        tags += [t for t in run.tags(prefix) if t not in tags]
    return sorted(tags, key=_natural_key)


def plot_metric(groups, metric, path):
    """Figure 1: the metric against epoch per configuration, mean over seeds ± 1 std band.

    A single-seed configuration is a plain line; when its evaluations used K > 1 generated
    sets, error bars show the standard deviation over those sets instead.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = _colors()
    higher = higher_is_better(metric)
    all_epochs, error_bars = [], False
    for i, group in enumerate(groups):
        color = colors[i % len(colors)]
        series = [r.metrics[metric][1:] for r in group.runs if metric in r.metrics]
        if not series:
            ax.plot([], [], color=color, label=f"{group.describe()}: no {metric} yet")
            continue
        drawn = _draw_mean(ax, series, color, label=group.describe(), marker="o", markersize=4)
        x, mean = drawn[0], drawn[1]
        all_epochs.append(x)
        run = group.first
        if len(group.runs) == 1 and f"{metric}_std" in run.metrics:
            _, std_epochs, std = run.metrics[f"{metric}_std"]
            ax.errorbar(std_epochs, np.interp(std_epochs, x, mean), yerr=std, fmt="none",
                        ecolor=color, capsize=3, linewidth=1)
            error_bars = True
        _, best, best_epoch = summarize_metric(x, mean, higher)
        if best is not None:
            ax.plot([best_epoch], [best], "*", color=color, markersize=12, markeredgecolor="k")
    direction = "higher is better" if higher else "lower is better"
    epochs = np.concatenate(all_epochs) if all_epochs else np.zeros(0)
    if np.all(np.mod(epochs, 1) == 0):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{describe_metric(metric)}\n({direction})", fontsize=9)
    how = "line: mean over seeds, band: ±1 std across seeds"
    if error_bars:
        how += ",\nerror bars (one seed): ±1 std over the generated sets"
    ax.set_title(f"{metric} per epoch ({how}; star: best)", fontsize=10)
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
    ax.set_title(f"{run.label} (seed {run.seed}): losses (EMA smoothing {smoothing:g}; "
                 "raw curve faint)", fontsize=10)
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
    ax.set_title(f"{run.label} (seed {run.seed}): final samples{step}", fontsize=10)
    return _save(fig, path)


def _layer_legend(ax, count):
    ax.legend(fontsize=7, ncol=2 if count > 6 else 1, title="layer", title_fontsize=8)


def plot_sigma(groups, path):
    """σ of each spectrally normalised D layer against step, one panel per SN configuration."""
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 4.5), squeeze=False)
    colors = _colors()
    for ax, group in zip(axes[0], groups):
        layers = _group_tags(group, SIGMA_PREFIX)
        for j, layer in enumerate(layers):
            _draw_mean(ax, _scalar_series(group, SIGMA_PREFIX + layer), colors[j % len(colors)],
                       label=layer)
        ax.set_xlabel("generator step")
        ax.set_ylabel("σ (power-iteration estimate of the raw kernel's spectral norm)",
                      fontsize=9)
        band = ", band ±1 std across seeds" if len(group.runs) > 1 else ""
        ax.set_title(f"{group.describe()}: σ per discriminator layer{band}", fontsize=10)
        ax.grid(alpha=0.3)
        _layer_legend(ax, len(layers))
    return _save(fig, path)


def has_lipschitz(group):
    tags = [t for t, _ in LOWER_BOUND_TAGS] + [UPPER_BOUND_TAG]
    return any(t in r.scalars for r in group.runs for t in tags)


def plot_lipschitz(groups, path):
    """D's Lipschitz constant against step, bracketed, one panel per configuration (log y).

    Below: ‖∇ₓD(x)‖₂ per example at real, fake and interpolated inputs, the batch mean solid
    and the batch maximum dotted (any gradient norm is a lower bound of the constant). Above:
    the product of the layers' operator norms, dashed. Lines are means over seeds, bands ±1 std.
    """
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.5), squeeze=False,
                             sharey=True)
    for ax, group in zip(axes[0], groups):
        for (tag, name), color in zip(LOWER_BOUND_TAGS, _LOWER_BOUND_COLORS):
            _draw_mean(ax, _scalar_series(group, tag), color, log=True,
                       label=f"‖∇ₓD‖ at {name}: batch mean")
            _draw_mean(ax, _scalar_series(group, tag + "_max"), color, log=True,
                       label=f"‖∇ₓD‖ at {name}: batch max", linestyle=":", linewidth=1)
        _draw_mean(ax, _scalar_series(group, UPPER_BOUND_TAG), "k", log=True,
                   label="upper bound: ∏ layer operator norms", linestyle="--")
        ax.set_yscale("log")
        ax.set_xlabel("generator step")
        ax.set_title(group.describe(), fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("Lipschitz constant of D: bounds (log scale)")
    handles, labels = {}, []
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = handle
                labels.append(label)
    fig.suptitle("Lipschitz constant of D: gradient norms (lower bounds) and the product of "
                 "layer norms (upper bound); band: ±1 std across seeds", fontsize=10)
    # Drawn in pairs (batch mean, batch max) and the bound last: with 4 columns filled column
    # by column, each input kind gets a column and the upper bound the last one.
    fig.legend([handles[l] for l in labels], labels, loc="upper center", ncol=4, fontsize=8,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout()
    return _save(fig, path)


def sn_layers(group):
    """The layers of a configuration with both `sigma/` and `lipschitz/layer/` tags."""
    sigma = _group_tags(group, SIGMA_PREFIX)
    return [layer for layer in _group_tags(group, LAYER_PREFIX) if layer in sigma]


def plot_operator_norms(groups, path):
    """SN configurations: each layer's exact operator norm as applied, beside the σ it uses.

    Left: ‖layer‖₂ = ‖conv(W/σ)‖₂ with the layer's stride, padding and input shape, i.e. the
    ratio of the raw kernel's operator norm to σ; SN sets the *reshaped kernel's* spectral
    norm to 1, the grey line. Right: σ, the power-iteration estimate SN divides by.
    """
    fig, axes = plt.subplots(len(groups), 2, figsize=(13, 4.2 * len(groups)), squeeze=False)
    colors = _colors()
    for (left, right), group in zip(axes, groups):
        layers = sn_layers(group)
        for j, layer in enumerate(layers):
            color = colors[j % len(colors)]
            _draw_mean(left, _scalar_series(group, LAYER_PREFIX + layer), color, label=layer)
            _draw_mean(right, _scalar_series(group, SIGMA_PREFIX + layer), color, label=layer)
        left.axhline(1.0, color="0.5", linestyle="--", linewidth=1,
                     label="1: SN's target for the reshaped kernel")
        left.set_ylabel("‖conv(W/σ)‖₂ = ‖conv(W)‖₂ / σ\n(exact operator norm as applied)",
                        fontsize=9)
        right.set_ylabel("σ (power-iteration estimate\nof the raw kernel's spectral norm)",
                         fontsize=9)
        band = "; band ±1 std across seeds" if len(group.runs) > 1 else ""
        left.set_title(f"{group.describe()}: operator norm of each layer{band}", fontsize=10)
        right.set_title(f"{group.describe()}: σ each layer divides by", fontsize=10)
        for ax in (left, right):
            ax.set_xlabel("generator step")
            ax.grid(alpha=0.3)
        # One legend for both panels (same colours), outside, so it hides no curve.
        right.legend(*left.get_legend_handles_labels(), fontsize=7, title="layer",
                     title_fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def mean_spectra(group):
    """Per layer, the mean over seeds of the singular values scaled to a largest value of 1.

    Returns:
      {layer: (scaled mean spectrum, mean largest singular value, number of seeds)}; a seed
      whose spectrum has another length than the first seed's is left out.
    """
    out = {}
    layers = []
    for run in group.runs:
        layers += [k for k in run.spectra if k not in layers]
    for layer in sorted(layers, key=_natural_key):
        spectra = [r.spectra[layer] for r in group.runs if layer in r.spectra]
        spectra = [s for s in spectra if len(s) == len(spectra[0]) and s[0] > 0]
        if not spectra:
            continue
        scaled = np.mean([s / s[0] for s in spectra], axis=0)
        out[layer] = (scaled, float(np.mean([s[0] for s in spectra])), len(spectra))
    return out


def plot_spectra(groups, path):
    """Figure 3 of the paper: singular values of each layer's kernel at the end of training.

    One panel per configuration; x is the index of the singular value scaled to [0, 1], y the
    singular value divided by the largest (the legend gives the largest, s₁); the kernel is the
    one D applies (W/σ for SN layers) reshaped to (out, kh·kw·in); mean over seeds.
    """
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.5), squeeze=False,
                             sharey=True)
    colors = _colors()
    for ax, group in zip(axes[0], groups):
        spectra = mean_spectra(group)
        for j, (layer, (scaled, top, _)) in enumerate(spectra.items()):
            x = np.linspace(0.0, 1.0, len(scaled)) if len(scaled) > 1 else np.zeros(1)
            ax.plot(x, scaled, color=colors[j % len(colors)], marker="o" if len(x) == 1 else None,
                    label=f"{layer} (s₁ = {top:.3g})")
        steps = sorted({r.spectra_step for r in group.runs if r.spectra_step is not None})
        at = f", step {steps[-1]}" if steps else ""
        seeds = max((n for _, _, n in spectra.values()), default=0)
        mean = f", mean of {seeds} seeds" if seeds > 1 else ""
        ax.set_title(f"{group.label}{at}{mean}", fontsize=10)
        ax.set_xlabel("rank of the singular value, scaled to [0, 1]")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        _layer_legend(ax, len(spectra))
    axes[0][0].set_ylabel("singular value / largest singular value")
    fig.suptitle("Final singular values of each layer's kernel as applied (W/σ with SN), "
                 "reshaped to (out, kh·kw·in),\neach divided by its largest singular value s₁ "
                 "(in the legend)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Results tables.
# ---------------------------------------------------------------------------------------------


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _span(values):
    """`400`, or `300–400` when the runs of a configuration stand at different steps."""
    values = sorted({int(v) for v in values if v is not None})
    if not values:
        return _DASH
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _num_sets(group):
    """K, the generated sets per evaluation, e.g. `5`, or `1, 5` if the seeds differ."""
    return ", ".join(str(k) for k in sorted({r.num_sets for r in group.runs}))


def _final_values(group, tag):
    return [None if r.final(tag) is None else r.final(tag)[1] for r in group.runs]


def _largest_grad_norm(run):
    finals = [run.final(tag + "_max") for tag, _ in LOWER_BOUND_TAGS]
    finals = [f[1] for f in finals if f is not None]
    return max(finals) if finals else None


def _summary_rows(groups, metric):
    higher = metric is not None and higher_is_better(metric)
    with_sets_std = metric is not None and any(
        f"{metric}_std" in r.metrics for g in groups for r in g.runs)
    rows = []
    for group in groups:
        finals, bests, series = [], [], []
        for run in group.runs:
            final = best = None
            if metric in run.metrics:
                _, epochs, values = run.metrics[metric]
                final, best, _ = summarize_metric(epochs, values, higher)
                series.append((epochs, values))
            finals.append(final)
            bests.append(best)
        best_epoch = None
        if series:
            x, mean, _, _ = mean_band(series)
            best_epoch = summarize_metric(x, mean, higher)[2]
        speeds = [np.median(r.scalars["perf/images_per_sec"][1]) for r in group.runs
                  if "perf/images_per_sec" in r.scalars]
        row = [group.label, ", ".join(str(s) for s in group.seeds),
               _num_sets(group),
               format_values(finals), format_values(bests), _format_epoch(best_epoch)]
        if with_sets_std:
            stds = [r.metrics[f"{metric}_std"][2][-1] for r in group.runs
                    if f"{metric}_std" in r.metrics]
            row.append(format_value(float(np.mean(stds))) if stds else _DASH)
        row += [f"{np.median(speeds):.0f}" if speeds else _DASH,
                _span(r.steps_trained for r in group.runs)]
        rows.append(row)
    return rows, with_sets_std


def _per_epoch_rows(groups, metric):
    epochs = sorted({float(e) for g in groups for r in g.runs if metric in r.metrics
                     for e in r.metrics[metric][1]})
    rows = []
    for epoch in epochs:
        row = [_format_epoch(epoch)]
        for group in groups:
            values = []
            for run in group.runs:
                value = None
                if metric in run.metrics:
                    _, run_epochs, run_values = run.metrics[metric]
                    hit = np.flatnonzero(np.isclose(run_epochs, epoch))
                    value = float(run_values[hit[-1]]) if len(hit) else None
                values.append(value)
            row.append(format_values(values))
        rows.append(row)
    return rows


def results_markdown(groups, metric, figures, notes=()):
    """The study's results in Markdown: metric summary and per epoch, Lipschitz bounds, layers.

    Every number of a configuration is the mean ± standard deviation (ddof 1) over its seeds.
    """
    lines = ["# Study results", ""]
    if metric is None:
        lines.append("Metric: none logged yet (no `fid` or `fd_*` in any metrics.csv).")
        head = "metric"
    else:
        direction = "higher" if higher_is_better(metric) else "lower"
        lines.append(f"Metric: `{metric}`, {describe_metric(metric)}; {direction} is better.")
        head = metric
    lines += ["", "Each value of a configuration is the mean ± standard deviation across its "
              "seeds (ddof 1; a single seed shows its value alone; `(n=k)`: only k seeds have "
              "it). *seeds*: the seeds trained; *sets*: the independent generated sets each "
              "evaluation averages over (K).", ""]
    rows, with_sets_std = _summary_rows(groups, metric)
    header = ["configuration", "seeds", "sets", f"final {head}", f"best {head}",
              "epoch of best (mean curve)"]
    if with_sets_std:
        header.append("std over the K sets (final, mean over seeds)")
    lines += _table(header + ["images/s", "steps trained"], rows)

    if metric is not None and any(metric in r.metrics for g in groups for r in g.runs):
        lines += ["", f"## {head} per epoch", ""]
        lines += _table(["epoch"] + [f"{g.label} ({len(g.runs)} seed{'s' * (len(g.runs) > 1)}, "
                                     f"K={_num_sets(g)})" for g in groups],
                        _per_epoch_rows(groups, metric))

    lipschitz = [g for g in groups if has_lipschitz(g)]
    if lipschitz:
        lines += ["", "## Lipschitz constant of D at the last logged step", "",
                  "‖∇ₓD(x)‖₂ per example, averaged over a batch of real, generated or "
                  "interpolated inputs: each is a lower bound of D's Lipschitz constant, the "
                  "largest over the batch the tightest. The product of the layers' operator "
                  "norms is an upper bound.", ""]
        rows = []
        for group in lipschitz:
            steps = [r.final(UPPER_BOUND_TAG) or r.final(LOWER_BOUND_TAGS[0][0])
                     for r in group.runs]
            rows.append([group.label, _span(s[0] for s in steps if s is not None)]
                        + [format_values(_final_values(group, tag)) for tag, _ in LOWER_BOUND_TAGS]
                        + [format_values([_largest_grad_norm(r) for r in group.runs]),
                           format_values(_final_values(group, UPPER_BOUND_TAG))])
        lines += _table(["configuration", "step"]
                        + [f"‖∇ₓD‖ {name} (batch mean)" for _, name in LOWER_BOUND_TAGS]
                        + ["largest ‖∇ₓD‖ in a batch", "upper bound ∏ ‖layer‖₂"], rows)

    layered = [g for g in groups if _group_tags(g, LAYER_PREFIX)]
    if layered:
        layers = []
        for group in layered:
            layers += [l for l in _group_tags(group, LAYER_PREFIX) if l not in layers]
        lines += ["", "## Operator norm of each layer at the last logged step", "",
                  "‖layer‖₂: the exact operator norm of the linear map each layer applies "
                  "(convolutions with their stride and padding on their input shape; SN layers "
                  "with W/σ; batch norm as its affine map).", ""]
        lines += _table(["layer"] + [g.label for g in layered],
                        [[layer] + [format_values(_final_values(g, LAYER_PREFIX + layer))
                                    if layer in _group_tags(g, LAYER_PREFIX) else _DASH
                                    for g in layered] for layer in layers])

    spectral = [g for g in groups if _group_tags(g, SIGMA_PREFIX)]
    if spectral:
        lines += ["", "## Spectral normalization per layer at the end", "",
                  "σ: the power-iteration estimate of the raw kernel's spectral norm that SN "
                  "divides by. ‖conv(W/σ)‖₂ = ‖conv(W)‖₂ / σ: the layer's exact operator norm as "
                  "applied, the ratio of the raw layer's norm to σ. SN makes the largest "
                  "singular value of the reshaped kernel W/σ (from spectra.npz) 1, not the "
                  "convolution's operator norm.", ""]
        rows = []
        for group in spectral:
            for layer in _group_tags(group, SIGMA_PREFIX):
                tops = [r.spectra[layer][0] if layer in r.spectra else None for r in group.runs]
                rows.append([group.label, layer,
                             format_values(_final_values(group, SIGMA_PREFIX + layer)),
                             format_values(_final_values(group, LAYER_PREFIX + layer)),
                             format_values(tops)])
        lines += _table(["configuration", "layer", "σ (raw kernel)",
                         "‖conv(W/σ)‖₂ = ‖conv(W)‖₂ / σ",
                         "largest singular value of reshaped W/σ"], rows)

    lines += ["", "Figures:", ""]
    lines += [f"- [{name}]({os.path.basename(path)})" for name, path in figures.items()]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def plot_study(study_dir, output_dir, metric=None, smoothing=0.9):
    """Writes the study's figures and results.md into output_dir.

    Args:
      study_dir: folder of configuration folders, each a training logdir or a folder of
        logdirs, one per seed (see `find_runs`).
      output_dir: where to write; created if missing. None means <study_dir>/figures.
      metric: metric name from metrics.csv; None or "auto" picks `fid`, else the first `fd_*`.
      smoothing: EMA weight for the loss curves, as TensorBoard's smoothing slider.

    Returns:
      dict of output name (file name without extension) -> path written.
    """
    output_dir = output_dir or os.path.join(study_dir, "figures")
    os.makedirs(output_dir, exist_ok=True)
    groups, notes = find_runs(study_dir)
    if not groups:
        raise ValueError(f"No run (folder with config.json) in {study_dir}")
    runs = [r for g in groups for r in g.runs]
    metric = choose_metric(runs, metric)
    figures = {}

    def out(name):
        return os.path.join(output_dir, name + ".png")

    if metric is not None and any(metric in r.metrics for r in runs):
        figures["metric_per_epoch"] = plot_metric(groups, metric, out("metric_per_epoch"))
    else:
        notes.append(f"metric_per_epoch.png not written: no run has logged "
                     f"{metric or 'a fid or fd_* metric'} yet.")
    def plot_those_with(name, has, plot, missing):
        """`plot` of the groups that `has` the data; a note for each that lacks it."""
        chosen = [g for g in groups if has(g)]
        if chosen:
            figures[name] = plot(chosen, out(name))
        notes.extend(f"{g.label}: {missing}; left out of {name}.png." for g in groups
                     if g not in chosen)

    plot_those_with("lipschitz", has_lipschitz, plot_lipschitz,
                    "no lipschitz/* scalars (a run from before they were logged)")
    operator = [g for g in groups if sn_layers(g)]
    if operator:
        figures["operator_norm_vs_sigma"] = plot_operator_norms(
            operator, out("operator_norm_vs_sigma"))
    else:
        notes.append("operator_norm_vs_sigma.png not written: no run logged both sigma/<layer> "
                     "and lipschitz/layer/<layer>.")
    plot_those_with("spectra", mean_spectra, plot_spectra,
                    f"no {SPECTRA_FILE} (written at the end of training)")
    for group in groups:
        run, name = group.first, f"losses_{_safe(group.label)}"
        if "loss/d" in run.scalars or "loss/g" in run.scalars:
            figures[name] = plot_losses(run, smoothing, out(name))
        else:
            notes.append(f"{name}.png not written: {group.label} seed {run.seed} has logged no "
                         "losses yet.")
    for group in groups:
        run, name = group.first, f"samples_{_safe(group.label)}"
        if run.sample_png is not None:
            figures[name] = plot_samples(run, out(name))
        else:
            notes.append(f"{name}.png not written: {group.label} seed {run.seed} has no sample "
                         "grid yet.")
    spectral = [g for g in groups if _group_tags(g, SIGMA_PREFIX)]
    if spectral:
        figures["sigma"] = plot_sigma(spectral, out("sigma"))
    else:
        notes.append("sigma.png not written: no run logged sigma/<layer> (no spectral run).")
    for note in notes:
        logging.info(note)
    written = dict(figures)
    written["results"] = os.path.join(output_dir, "results.md")
    with open(written["results"], "w") as f:
        f.write(results_markdown(groups, metric, figures, notes))
    return written


def _define_flags():
    # Defined only when run as a script, so importing this module (tests) registers no flags.
    flags.DEFINE_string("study_dir", None, "Folder holding one folder per configuration.")
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
