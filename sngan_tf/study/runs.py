"""A study's runs: each run directory read once, grouped by configuration, seeds ordered.

A study folder holds one folder per configuration (e.g. `spectral`, `batchnorm`, `nonorm`),
each either a run directory itself (a single run, the old layout) or holding one run
directory per seed (`<config>/seed_<s>`, written by `python -m sngan_tf.study run`). Runs
are read through `sngan_tf.rundir`, the only reader of the run-directory format; this module
adds what the study needs on top: labels, seeds, groups, and which metric to compare.
"""
import os
import re

from sngan_tf import metric_keys
from sngan_tf import rundir

# Known configurations first, in this order, so colours match across studies.
NORM_ORDER = ("spectral", "batch", "layer", "weight", "none")
_SEED_DIR_RE = re.compile(r"seed_(\d+)$")

# Tags the trainer logs (sngan_tf.loop) that the study reads.
SIGMA_PREFIX = "sigma/"
LAYER_PREFIX = "lipschitz/layer/"
UPPER_BOUND_TAG = "lipschitz/upper_bound"
# Per-example ‖∇ₓD(x)‖₂ averaged over a batch: lower bounds of D's Lipschitz constant.
LOWER_BOUND_TAGS = (("lipschitz/grad_norm_real", "real x"),
                    ("lipschitz/grad_norm_fake", "fake G(z)"),
                    ("lipschitz/grad_norm_interp", "interpolates"))
LOGIT_TAGS = ("d_out/real", "d_out/fake")  # batch means of D's logits, every log step


class Run:
    """One training logdir: its label, seed, config, scalars, metrics, spectra and samples."""

    def __init__(self, logdir, label, config, scalars, metrics, sample_png, sample_step,
                 seed=0, spectra=None, spectra_step=None, spans=(), nonfinite_stops=()):
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
        self.spans = spans  # (first, last) logged step of each process, in start order
        self.nonfinite_stops = list(nonfinite_stops)  # train.log lines of non-finite stops

    @property
    def steps_trained(self):
        """The largest step logged by the run, or None when it has logged nothing."""
        steps = [s[-1] for s, _ in self.scalars.values() if len(s)]
        steps += [m[0][-1] for m in self.metrics.values() if len(m[0])]
        return int(max(steps)) if steps else None

    @property
    def num_sets(self):
        """Generated sets per evaluation (metrics.csv `num_sets`; 1 when not logged)."""
        num_sets = self.final_metric("num_sets")
        return 1 if num_sets is None else int(num_sets)

    def final(self, tag):
        """(step, value) of the last logged point of a scalar tag, or None."""
        if tag not in self.scalars or not len(self.scalars[tag][0]):
            return None
        steps, values = self.scalars[tag]
        return int(steps[-1]), float(values[-1])

    def final_metric(self, name):
        """The last evaluated value of a metrics.csv column, or None."""
        if name not in self.metrics or not len(self.metrics[name][2]):
            return None
        return float(self.metrics[name][2][-1])

    def tags(self, prefix):
        """Names after `prefix` of the scalar tags starting with it, in natural order."""
        return sorted((t[len(prefix):] for t in self.scalars if t.startswith(prefix)),
                      key=natural_key)


def natural_key(text):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


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
    """Reads one run directory into a `Run`; the label defaults to the folder name."""
    run_dir = rundir.RunDir(logdir)
    config = run_dir.read_config()
    label = label or os.path.basename(os.path.normpath(logdir))
    events = run_dir.read_events()
    sample = run_dir.latest_sample(events)
    sample_step, sample_png = sample if sample else (None, None)
    spectra_step, spectra = run_dir.read_spectra()
    return Run(logdir, label, config, events.scalars, run_dir.read_metrics(), sample_png,
               sample_step, seed=_run_seed(config, logdir), spectra=spectra,
               spectra_step=spectra_step, spans=events.spans,
               nonfinite_stops=run_dir.read_nonfinite_stops())


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

    def tags(self, prefix):
        """The union over seeds of `Run.tags(prefix)`, in natural order."""
        tags = []
        for run in self.runs:
            tags += [t for t in run.tags(prefix) if t not in tags]
        return sorted(tags, key=natural_key)

    def series(self, tag):
        """(steps, values) of a scalar tag, one per seed that logged it."""
        return [run.scalars[tag] for run in self.runs if tag in run.scalars]

    @property
    def has_lipschitz(self):
        tags = [t for t, _ in LOWER_BOUND_TAGS] + [UPPER_BOUND_TAG]
        return any(t in r.scalars for r in self.runs for t in tags)

    @property
    def sn_layers(self):
        """The layers with both `sigma/` and `lipschitz/layer/` tags."""
        sigma = self.tags(SIGMA_PREFIX)
        return [layer for layer in self.tags(LAYER_PREFIX) if layer in sigma]


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
    found = []
    for logdir in rundir.find_runs(study_dir):
        label = (None if logdir == study_dir
                 else os.path.relpath(logdir, study_dir).split(os.sep)[0])
        found.append(read_run(logdir, label))
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
        rank = NORM_ORDER.index(group.norm) if group.norm in NORM_ORDER else len(NORM_ORDER)
        return rank, group.label

    return sorted(groups, key=order), notes


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


def class_entropy_key(metric):
    """The metrics.csv key of the class entropy on the network of `metric` (e.g. fd_net ->
    class_entropy_net)."""
    parsed = metric_keys.parse(metric) if metric else None
    return metric_keys.key(metric_keys.CLASS_ENTROPY, parsed[1] if parsed else None)


def higher_is_better(metric):
    """Scores, class entropy, precision, recall, density and coverage grow with quality; the
    distances shrink."""
    parsed = metric_keys.parse(metric)
    return bool(parsed) and parsed[0] not in (metric_keys.FRECHET, metric_keys.KERNEL)


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

