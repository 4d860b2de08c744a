"""The study's report: its figures and `results.md` (tables of mean ± std over seeds).

`plot_study` reads a study folder (`sngan_tf.study.runs`), draws every figure its data
allow (`sngan_tf.study.figures`) and writes the tables; runs from before the Lipschitz
logging (no `lipschitz/*` tags, no spectra.npz) give what they can, with a note. Runs
evaluated with precision, recall, density and coverage (on the compared metric's network)
add their figure and table; runs without them leave the report as it was.
"""
import math
import os
import re

from absl import logging
import numpy as np

from sngan_tf import metric_keys
from sngan_tf import rundir
from sngan_tf.study import figures as figures_lib
from sngan_tf.study import runs as runs_lib
from sngan_tf.study import stats
from sngan_tf.study.runs import (LAYER_PREFIX, LOWER_BOUND_TAGS, SIGMA_PREFIX,
                                 UPPER_BOUND_TAG, describe_metric, higher_is_better)

_DASH = "—"

# The study this project reproduces (a PyTorch DCGAN on CIFAR-10, non-saturating loss, Adam
# lr_G 1e-4, lr_D 4e-4, betas (0.5, 0.999)): Inception FID after 70 epochs, by configuration
# (the flag file each corresponds to). Its no-normalisation loss overflowed.
ORIGINAL_FID_70_EPOCHS = {"batchnorm": 115.8, "spectral": 128.9, "nonorm": 187.8}  # as reported
ORIGINAL_EPOCHS = 70


def format_value(value):
    """Two decimals for distances and scores; three significant digits below 1 (KID, recall),
    trailing zeros kept (0.700, and 0.99999994 as 1.00, not 1); four from 1e5 (the Lipschitz
    upper bound of an unnormalised D)."""
    if value is None:
        return _DASH
    if math.isfinite(value) and abs(value) >= 1e5:
        return f"{value:.4g}"
    if not math.isfinite(value) or abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:#.3g}"


def _format_epoch(epoch):
    if epoch is None:
        return _DASH
    return str(int(epoch)) if float(epoch).is_integer() else f"{epoch:.2f}"


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
    mean, std, n = stats.mean_std([math.nan if v is None else v for v in values])
    text = format_mean_std(mean, std)
    if 0 < n < total:
        text += f" (n={n})"
    return text


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _span(values, text=lambda v: str(int(v))):
    """`400`, or `300–400` when the runs of a configuration stand at different steps (or
    epochs, with `text=_format_epoch`)."""
    values = sorted({float(v) for v in values if v is not None})
    if not values:
        return _DASH
    first, last = text(values[0]), text(values[-1])
    return first if first == last else f"{first}–{last}"


def _num_sets(group):
    """K, the generated sets per evaluation, e.g. `5`, or `1, 5` if the seeds differ."""
    return ", ".join(str(k) for k in sorted({r.num_sets for r in group.runs}))


def _final_values(group, tag):
    return [None if r.final(tag) is None else r.final(tag)[1] for r in group.runs]


def _largest_grad_norm(run):
    finals = [run.final(tag + "_max") for tag, _ in LOWER_BOUND_TAGS]
    finals = [f[1] for f in finals if f is not None]
    return max(finals) if finals else None


def _process_speeds(run):
    """The median images/s of each training process of the run (a step counts for the last
    process that logged it), in start order: a resume on other hardware or beside other
    jobs shows as a range instead of skewing one median."""
    if "perf/images_per_sec" not in run.scalars:
        return []
    steps, values = run.scalars["perf/images_per_sec"]
    firsts = [first for first, _ in run.spans] or [steps[0]]
    ends = firsts[1:] + [math.inf]
    masks = [(steps >= first) & (steps < end) for first, end in zip(firsts, ends)]
    return [float(np.median(values[mask])) for mask in masks if mask.any()]


def _best_epoch(group, metric):
    """The epoch where the group's mean curve of `metric` is best, or None."""
    series = [r.metrics[metric][1:] for r in group.runs if metric in r.metrics]
    if not series:
        return None
    x, mean, _, _ = stats.mean_band(series)
    return stats.summarize_metric(x, mean, higher_is_better(metric))[2]


def _value_at(run, metric, epoch):
    """The run's value of `metric` at `epoch` (its last row there), or None."""
    if metric not in run.metrics:
        return None
    _, epochs, values = run.metrics[metric]
    hit = np.flatnonzero(np.isclose(epochs, epoch))
    return float(values[hit[-1]]) if len(hit) else None


def _summary_rows(groups, metric):
    higher = metric is not None and higher_is_better(metric)
    with_sets_std = metric is not None and any(
        f"{metric}_std" in r.metrics for g in groups for r in g.runs)
    rows = []
    for group in groups:
        finals, bests = [], []
        for run in group.runs:
            final = best = None
            if metric in run.metrics:
                _, epochs, values = run.metrics[metric]
                final, best, _ = stats.summarize_metric(epochs, values, higher)
            finals.append(final)
            bests.append(best)
        best_epoch = None if metric is None else _best_epoch(group, metric)
        speeds = [speed for r in group.runs for speed in _process_speeds(r)]
        row = [group.label, ", ".join(str(s) for s in group.seeds),
               _num_sets(group),
               format_values(finals), format_values(bests), _format_epoch(best_epoch)]
        if with_sets_std:
            stds = [r.final_metric(f"{metric}_std") for r in group.runs]
            stds = [s for s in stds if s is not None]
            row.append(format_value(float(np.mean(stds))) if stds else _DASH)
        row += [_span(speeds, lambda v: f"{v:.0f}"),
                _span(r.steps_trained for r in group.runs)]
        rows.append(row)
    return rows, with_sets_std


def _per_epoch_rows(groups, metric):
    epochs = sorted({float(e) for g in groups for r in g.runs if metric in r.metrics
                     for e in r.metrics[metric][1]})
    rows = []
    for epoch in epochs:
        rows.append([_format_epoch(epoch)] + [
            format_values([_value_at(run, metric, epoch) for run in group.runs])
            for group in groups])
    return rows


def results_markdown(groups, metric, figures, notes=(), appendix=()):
    """The study's results in Markdown: metric summary and per epoch, precision, recall,
    density and coverage, Lipschitz bounds, layers, then the `appendix` texts verbatim.

    Every number of a configuration is the mean ± standard deviation (ddof 1) over its seeds.
    """
    lines = _metric_section(groups, metric)
    lines += _original_section(groups, metric)
    lines += _manifold_section(groups, metric)
    lines += _stability_section(groups, metric)
    lines += _d_state_section(groups)
    lines += _lipschitz_section([g for g in groups if g.has_lipschitz])
    lines += _layer_section([g for g in groups if g.tags(LAYER_PREFIX)])
    lines += _spectral_section([g for g in groups if g.tags(SIGMA_PREFIX)])
    lines += _resume_section(groups)
    lines += ["", "Figures:", ""]
    lines += [f"- [{name}]({os.path.basename(path)})" for name, path in figures.items()]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    for text in appendix:
        lines += ["", text.strip("\n")]
    return "\n".join(lines) + "\n"


def _resume_section(groups):
    """Each resumed run's process starts: where each began and the steps trained again since
    the previous process's last logged step (at most a checkpoint interval); none: nothing."""
    rows = []
    for group in groups:
        for run in group.runs:
            if len(run.spans) < 2:
                continue
            starts = ", ".join(f"{first} ({max(0, last - first)})" for (_, last), (first, _)
                               in zip(run.spans, run.spans[1:]))
            shares = (stats.change_shares(*run.scalars["loss/d"], [f for f, _ in run.spans[1:]])
                      if "loss/d" in run.scalars else [])
            rows.append([group.label, str(run.seed), str(len(run.spans) - 1), starts,
                         ", ".join(_DASH if v is None else f"{v:.2f}" for v in shares) or _DASH])
    if not rows:
        return []
    return _heading("Resumes", "Each resume: the first step the new process logged, and in "
                    "brackets how many steps the previous process had logged past it (work "
                    "lost since its last checkpoint, to the log interval). A resume restores "
                    "the step, both networks and optimizers and u from the checkpoint; the data "
                    "order and the latent draws are functions of the seed and the step, so "
                    "they continue. On one machine a run killed and resumed ends "
                    "bitwise identical to one never stopped (tests/reliability_test.py). "
                    "The last column checks the curve itself: for each resume, the share of the "
                    "other log points where D's loss, averaged over the 5 logged values after "
                    "against the 5 before, changed at least as much. A jump at resumes would "
                    "show as shares near 0; by chance 1 in 20 is at most 0.05.") + _table(
        ["configuration", "seed", "resumes", "resumed at (steps trained again)",
         "D-loss change at each resume: share of other points changing as much"], rows)


def _metric_section(groups, metric):
    """The title, the summary table and the metric per epoch."""
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
              "evaluation averages over (K); *images/s*: the median of each training process "
              "of the seeds, a range when they differ (resumed beside other jobs, on other "
              "threads or hardware).", ""]
    rows, with_sets_std = _summary_rows(groups, metric)
    header = ["configuration", "seeds", "sets", f"final {head}", f"best {head}",
              "epoch of best (mean curve)"]
    if with_sets_std:
        header.append("std over the K sets (final, mean over seeds)")
    lines += _table(header + ["images/s (median of each process)", "steps trained"], rows)

    if metric is not None and any(metric in r.metrics for g in groups for r in g.runs):
        lines += ["", f"## {head} per epoch", ""]
        lines += _table(["epoch"] + [f"{g.label} ({len(g.runs)} seed{'s' * (len(g.runs) > 1)}, "
                                     f"K={_num_sets(g)})" for g in groups],
                        _per_epoch_rows(groups, metric))
    return lines


def _ranking(labels_values, higher):
    """`a < b < c`: labels from best to worst ('<' reads 'better than')."""
    ordered = sorted(labels_values, key=lambda lv: (not math.isfinite(lv[1]),
                                                    -lv[1] if higher else lv[1]))
    return " < ".join(label for label, _ in ordered)


def _original_section(groups, metric):
    """Ours beside the original study's 70-epoch values, and whether the rankings match."""
    mine = [g for g in groups if g.label in ORIGINAL_FID_70_EPOCHS]
    if metric is None or len(mine) < 2 or not all(
            metric in r.metrics for g in mine for r in g.runs):
        return []
    higher = higher_is_better(metric)
    rows, finals, last_epochs = [], [], []
    for group in mine:
        final_values, epochs = [], []
        for run in group.runs:
            _, run_epochs, values = run.metrics[metric]
            final_values.append(float(values[-1]))
            epochs.append(run_epochs[-1])
        final = stats.mean_std(final_values)[0]
        finals.append((group.label, final))
        last_epochs += epochs
        best_epoch = _best_epoch(group, metric)
        best = [_value_at(r, metric, best_epoch) for r in group.runs]
        rows.append([group.label, _span(epochs, _format_epoch), format_values(final_values),
                     f"{format_values(best)} (epoch {_format_epoch(best_epoch)})",
                     str(ORIGINAL_FID_70_EPOCHS[group.label])])
    ours = _ranking(finals, higher)
    original = _ranking([(g.label, ORIGINAL_FID_70_EPOCHS[g.label]) for g in mine], False)
    reached = min(last_epochs)
    text = (f"The original study's Inception FID after {ORIGINAL_EPOCHS} epochs beside ours. "
            f"The values cannot be compared (ours: `{metric}`, {describe_metric(metric)}); "
            "the rankings can. Ranking by final value (best first): ours "
            f"{ours}; the original's {original}: "
            + ("the same." if ours == original else "different."))
    if reached < ORIGINAL_EPOCHS:
        text += (f" Ours stand at epoch {_format_epoch(reached)} of {ORIGINAL_EPOCHS}: the "
                 "ranking can still change.")
    return _heading("Beside the original study", text) + _table(
        ["configuration", "epoch", f"final {metric}", f"best {metric} (epoch, mean curve)",
         f"original: Inception FID at epoch {ORIGINAL_EPOCHS}"], rows)


def _largest_abs(run, tag):
    """(largest |value| of a scalar over the run, its step), or None."""
    if tag not in run.scalars or not len(run.scalars[tag][1]):
        return None
    steps, values = run.scalars[tag]
    finite = np.where(np.isfinite(values), np.abs(values), -1.0)
    i = int(np.argmax(finite))
    return float(np.abs(values[i])), int(steps[i])


def _first_nonfinite(run):
    """A description of the first non-finite logged loss or logit, or of a stop on one; None
    when there was none."""
    firsts = []
    for tag, (steps, values) in run.scalars.items():
        if tag.startswith(("loss/",) + runs_lib.LOGIT_TAGS) and not np.all(np.isfinite(values)):
            firsts.append((int(steps[np.flatnonzero(~np.isfinite(values))[0]]), tag))
    if firsts:
        step, tag = min(firsts)
        return f"{tag} at step {step}"
    if run.nonfinite_stops:
        return "stopped: " + run.nonfinite_stops[0][len("error: "):]
    return None


def _stability_section(groups, metric):
    """Per run: D's largest logits, any non-finite value, the class entropy's lowest point."""
    if not any(t in r.scalars for g in groups for r in g.runs for t in runs_lib.LOGIT_TAGS):
        return []
    entropy = runs_lib.class_entropy_key(metric)
    lines = _heading(
        "Stability over training",
        "Per run, over every logged step: the largest |batch mean of D's logits| on real and "
        "on generated images (and its step); the first non-finite loss or logit (a non-finite "
        "value stops training without saving, `train.log` says where; none: every logged value "
        f"was finite); the class entropy of the samples (`{entropy}`, nats; ln 10 = 2.30 when a "
        "CIFAR-10 generator draws every class equally, near 0 when it collapses to one): its "
        "lowest value over the evaluations and its last.")
    rows = []
    for group in groups:
        for run in group.runs:
            cells = [group.label, str(run.seed), str(run.steps_trained or _DASH)]
            for tag in runs_lib.LOGIT_TAGS:
                top = _largest_abs(run, tag)
                cells.append(_DASH if top is None else f"{format_value(top[0])} ({top[1]})")
            cells.append(_first_nonfinite(run) or "none")
            if entropy in run.metrics and len(run.metrics[entropy][2]):
                _, epochs, values = run.metrics[entropy]
                i = int(np.nanargmin(values))
                cells += [f"{format_value(values[i])} (epoch {_format_epoch(epochs[i])})",
                          format_value(values[-1])]
            else:
                cells += [_DASH, _DASH]
            rows.append(cells)
    return lines + _table(["configuration", "seed", "steps", "largest abs. mean D(x) (step)",
                           "largest abs. mean D(G(z)) (step)", "first non-finite",
                           "lowest class entropy (epoch)", "last class entropy"], rows)


# D's state over training: the tags averaged per span of epochs, and their column names.
D_STATE_TAGS = (("loss/d", "D loss"), ("d_out/real", "D(x)"), ("d_out/fake", "D(G(z))"),
                (LOWER_BOUND_TAGS[0][0], "‖∇ₓD(x)‖ real x"))
_EPOCH_TAG = "perf/epoch"  # logged with the losses at every log step


def _span_means(run, tag, width):
    """{i: mean of `tag` over the run's logged steps at epochs in (width·i, width·(i+1)]}
    (the steps before epoch 0 count in span 0); {} without the tag or epochs logged."""
    if tag not in run.scalars or _EPOCH_TAG not in run.scalars:
        return {}
    steps, values = run.scalars[tag]
    epoch = np.interp(steps, *run.scalars[_EPOCH_TAG])
    spans = np.maximum(np.ceil(epoch / width) - 1, 0).astype(int)
    return {int(i): float(np.mean(values[spans == i])) for i in np.unique(spans)}


def _d_state_cell(values):
    """The seeds' span averages as mean ± std; `non-finite` if any seed logged a nan or inf
    in the span (format_values would drop it as missing)."""
    if any(v is not None and not math.isfinite(v) for v in values):
        return "non-finite"
    return format_values(values)


def _d_state_section(groups, width=10):
    """Per configuration and span of `width` epochs: D's loss, logits and input-gradient norm."""
    rows = []
    for group in groups:
        means = {tag: [_span_means(run, tag, width) for run in group.runs]
                 for tag, _ in D_STATE_TAGS}
        spans = sorted({i for per_run in means["loss/d"] for i in per_run})
        finals = [r.final(_EPOCH_TAG) for r in group.runs]
        reached = max((f[1] for f in finals if f), default=None)
        for i in spans:
            end = width * (i + 1) if reached is None else min(width * (i + 1), reached)
            rows.append([group.label, f"{_format_epoch(width * i)}–{_format_epoch(end)}"]
                        + [_d_state_cell([m.get(i) for m in means[tag]])
                           for tag, _ in D_STATE_TAGS])
    if not rows:
        return []
    return _heading(
        "D over training",
        f"Batch means at every logged step, averaged over each {width} epochs: D's loss "
        "(ln 4 = 1.39 when D cannot tell real from generated images, the non-saturating "
        "loss's chance level), its logits on real and on generated images, and ‖∇ₓD(x)‖₂ on "
        "fixed real images (a lower bound of its Lipschitz constant); over seeds, mean ± std "
        "of the seeds' averages. A D near chance separates the two barely and gives G a weak "
        "signal.") + _table(
        ["configuration", "epochs"] + [name for _, name in D_STATE_TAGS], rows)


def manifold_keys(metric):
    """{precision, recall, density, coverage: metrics.csv key} on the network of `metric`.

    E.g. "fid" -> {"precision": "precision", ...}, "fd_net" -> {"precision":
    "precision_net", ...}: the four on the features of the compared Fréchet distance.
    """
    parsed = metric_keys.parse(metric) if metric else None
    network = parsed[1] if parsed else None
    return {m: metric_keys.key(m, network) for m in metric_keys.MANIFOLD}


def _has_manifold(groups, keys):
    return any(key in r.metrics for g in groups for r in g.runs for key in keys.values())


def _features(metric):
    """The features of `metric`, as the report names them."""
    parsed = metric_keys.parse(metric) if metric else None
    return parsed[1] if parsed and parsed[1] else "Inception-v3 pool3"


def _manifold_section(groups, metric):
    """Precision, recall, density and coverage at the last evaluation and the best one."""
    keys = manifold_keys(metric)
    if not _has_manifold(groups, keys):
        return []
    lines = _heading(
        "Precision, recall, density and coverage",
        f"On the {_features(metric)} features of the Fréchet distance (metrics.csv: "
        + ", ".join(f"`{k}`" for k in keys.values()) + "). Precision: the share of generated "
        "samples inside the real data's k-NN manifold (quality); recall: the share of real "
        "samples inside the generated one (diversity); k = 3 (Kynkäänniemi et al., 2019). "
        "Density: the real k-NN balls holding a generated sample, averaged and divided by k "
        "(about 1 when the two sets match; above 1, samples bunched where real data is "
        "dense); coverage: the share of real balls holding a generated sample; k = 5 (Naeem "
        "et al., 2020). Higher is better for all four. Each configuration at its last "
        f"evaluation and at the epoch of its best mean `{metric}`.")
    rows = []
    for group in groups:
        last_epochs = [r.metrics[k][1][-1] for r in group.runs for k in keys.values()
                       if k in r.metrics]
        rows.append([group.label, ", ".join(str(s) for s in group.seeds), "last",
                     _span(last_epochs, _format_epoch)]
                    + [format_values([r.final_metric(keys[m]) for r in group.runs])
                       for m in metric_keys.MANIFOLD])
        best = None if metric is None else _best_epoch(group, metric)
        if best is not None:
            rows.append([group.label, ", ".join(str(s) for s in group.seeds),
                         f"best {metric}", _format_epoch(best)]
                        + [format_values([_value_at(r, keys[m], best) for r in group.runs])
                           for m in metric_keys.MANIFOLD])
    return lines + _table(["configuration", "seeds", "evaluation", "epoch"]
                          + list(metric_keys.MANIFOLD), rows)


def _heading(title, text):
    """A `##` section's first lines: its title and the paragraph saying what it shows."""
    return ["", f"## {title}", "", text, ""]


def _lipschitz_section(groups):
    """Lower bounds (gradient norms) and the upper bound of D's Lipschitz constant."""
    if not groups:
        return []
    lines = _heading("Lipschitz constant of D at the last logged step",
                     "‖∇ₓD(x)‖₂ per example, averaged over a batch of real, generated or "
                     "interpolated inputs: each is a lower bound of D's Lipschitz constant, the "
                     "largest over the batch the tightest. The product of the layers' operator "
                     "norms is an upper bound.")
    rows = []
    for group in groups:
        steps = [r.final(UPPER_BOUND_TAG) or r.final(LOWER_BOUND_TAGS[0][0])
                 for r in group.runs]
        rows.append([group.label, _span(s[0] for s in steps if s is not None)]
                    + [format_values(_final_values(group, tag)) for tag, _ in LOWER_BOUND_TAGS]
                    + [format_values([_largest_grad_norm(r) for r in group.runs]),
                       format_values(_final_values(group, UPPER_BOUND_TAG))])
    return lines + _table(["configuration", "step"]
                          + [f"‖∇ₓD‖ {name} (batch mean)" for _, name in LOWER_BOUND_TAGS]
                          + ["largest ‖∇ₓD‖ in a batch", "upper bound ∏ ‖layer‖₂"], rows)


def _layer_section(groups):
    """Each layer's exact operator norm, one column per configuration."""
    if not groups:
        return []
    layers = []
    for group in groups:
        layers += [l for l in group.tags(LAYER_PREFIX) if l not in layers]
    lines = _heading("Operator norm of each layer at the last logged step",
                     "‖layer‖₂: the exact operator norm of the linear map each layer applies "
                     "(convolutions with their stride and padding on their input shape; SN "
                     "layers with W/σ; batch norm as its affine map).")
    return lines + _table(["layer"] + [g.label for g in groups],
                          [[layer] + [format_values(_final_values(g, LAYER_PREFIX + layer))
                                      if layer in g.tags(LAYER_PREFIX) else _DASH
                                      for g in groups] for layer in layers])


def _spectral_section(groups):
    """σ, the operator norm as applied and the top singular value of each SN layer."""
    if not groups:
        return []
    lines = _heading("Spectral normalization per layer at the end",
                     "σ: the power-iteration estimate of the raw kernel's spectral norm that SN "
                     "divides by. ‖conv(W/σ)‖₂ = ‖conv(W)‖₂ / σ: the layer's exact operator "
                     "norm as applied, the ratio of the raw layer's norm to σ. SN makes the "
                     "largest singular value of the reshaped kernel W/σ (from spectra.npz) 1, "
                     "not the convolution's operator norm. σ and the operator norm are the "
                     "last logged values; spectra.npz is written when a run finishes or is "
                     "stopped by a signal, so the two steps can differ (last column).")
    rows = []
    for group in groups:
        for layer in group.tags(SIGMA_PREFIX):
            tops = [r.spectra[layer][0] if layer in r.spectra else None for r in group.runs]
            finals = [r.final(SIGMA_PREFIX + layer) for r in group.runs]
            steps = (_span(f[0] for f in finals if f is not None) + " / "
                     + _span(r.spectra_step for r in group.runs if layer in r.spectra))
            rows.append([group.label, layer,
                         format_values(_final_values(group, SIGMA_PREFIX + layer)),
                         format_values(_final_values(group, LAYER_PREFIX + layer)),
                         format_values(tops), steps])
    return lines + _table(["configuration", "layer", "σ (raw kernel)",
                           "‖conv(W/σ)‖₂ = ‖conv(W)‖₂ / σ",
                           "largest singular value of reshaped W/σ",
                           "step of σ / of spectra.npz"], rows)


def _safe(label):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def plot_study(study_dir, output_dir, metric=None, smoothing=0.9, appendix=()):
    """Writes the study's figures and results.md into output_dir.

    Args:
      study_dir: folder of configuration folders, each a run directory or a folder of
        run directories, one per seed (see `sngan_tf.study.runs.find_runs`).
      output_dir: where to write; created if missing. None means <study_dir>/figures.
      metric: metric name from metrics.csv; None or "auto" picks `fid`, else the first `fd_*`.
      smoothing: EMA weight for the loss curves, as TensorBoard's smoothing slider.
      appendix: paths of Markdown files appended to results.md in order: context the runs
        do not hold (other studies' seed spreads, say), kept through every redraw.

    Returns:
      dict of output name (file name without extension) -> path written.
    """
    output_dir = output_dir or os.path.join(study_dir, "figures")
    texts = []
    for path in appendix:  # read first: a missing file fails before any drawing
        with open(path) as f:
            texts.append(f.read())
    os.makedirs(output_dir, exist_ok=True)
    groups, notes = runs_lib.find_runs(study_dir)
    if not groups:
        raise ValueError(f"No run (folder with config.json) in {study_dir}")
    metric = runs_lib.choose_metric([r for g in groups for r in g.runs], metric)
    figures = _draw_figures(groups, metric, smoothing, output_dir, notes)
    for note in notes:
        logging.info(note)
    written = dict(figures)
    written["results"] = os.path.join(output_dir, "results.md")
    with open(written["results"], "w") as f:
        f.write(results_markdown(groups, metric, figures, notes, texts))
    return written


def _draw_figures(groups, metric, smoothing, output_dir, notes):
    """Every figure the runs have data for, as {name: path}; a note for each left out."""
    figures = {}

    def out(name):
        return os.path.join(output_dir, name + ".png")

    def plot_those_with(name, has, plot, missing):
        """`plot` of the groups that `has` the data; a note for each that lacks it."""
        chosen = [g for g in groups if has(g)]
        if chosen:
            figures[name] = plot(chosen, out(name))
        notes.extend(f"{g.label}: {missing}; left out of {name}.png." for g in groups
                     if g not in chosen)

    if metric is not None and any(metric in r.metrics for g in groups for r in g.runs):
        figures["metric_per_epoch"] = figures_lib.plot_metric(groups, metric,
                                                              out("metric_per_epoch"))
    else:
        notes.append(f"metric_per_epoch.png not written: no run has logged "
                     f"{metric or 'a fid or fd_* metric'} yet.")
    keys = manifold_keys(metric)
    if _has_manifold(groups, keys):
        figures["precision_recall"] = figures_lib.plot_precision_recall(
            groups, keys, _features(metric), out("precision_recall"))
    plot_those_with("lipschitz", lambda g: g.has_lipschitz, figures_lib.plot_lipschitz,
                    "no lipschitz/* scalars (a run from before they were logged)")
    operator = [g for g in groups if g.sn_layers]
    if operator:
        figures["operator_norm_vs_sigma"] = figures_lib.plot_operator_norms(
            operator, out("operator_norm_vs_sigma"))
    else:
        notes.append("operator_norm_vs_sigma.png not written: no run logged both sigma/<layer> "
                     "and lipschitz/layer/<layer>.")
    plot_those_with("spectra", stats.mean_spectra, figures_lib.plot_spectra,
                    f"no {rundir.SPECTRA_FILE} (written at the end of training)")
    figures.update(_draw_run_figures(groups, smoothing, out, notes))
    spectral = [g for g in groups if g.tags(SIGMA_PREFIX)]
    if spectral:
        figures["sigma"] = figures_lib.plot_sigma(spectral, out("sigma"))
    else:
        notes.append("sigma.png not written: no run logged sigma/<layer> (no spectral run).")
    return figures


def _draw_run_figures(groups, smoothing, out, notes):
    """The losses, then the samples, of each configuration's first seed."""
    figures = {}
    for group in groups:
        run, name = group.first, f"losses_{_safe(group.label)}"
        if "loss/d" in run.scalars or "loss/g" in run.scalars:
            figures[name] = figures_lib.plot_losses(run, smoothing, out(name))
        else:
            notes.append(f"{name}.png not written: {group.label} seed {run.seed} has logged no "
                         "losses yet.")
    for group in groups:
        run, name = group.first, f"samples_{_safe(group.label)}"
        if run.sample_png is not None:
            figures[name] = figures_lib.plot_samples(run, out(name))
        else:
            notes.append(f"{name}.png not written: {group.label} seed {run.seed} has no sample "
                         "grid yet.")
    return figures
