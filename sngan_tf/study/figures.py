"""The study's figures, one function per figure (Miyato et al., ICLR 2018, Figs. 1-3).

Each takes the study's `Group`s (or one `Run`) and a path, draws with matplotlib's Agg
backend and returns the path: lines are means over seeds, bands ±1 standard deviation.
"""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import matplotlib.ticker  # pylint: disable=g-import-not-at-top
import numpy as np

from sngan_tf.study import stats
from sngan_tf.study.runs import (LAYER_PREFIX, LOWER_BOUND_TAGS, SIGMA_PREFIX,
                                 UPPER_BOUND_TAG, describe_metric, higher_is_better)

_DPI = 100
_LOWER_BOUND_COLORS = ("tab:blue", "tab:orange", "tab:green")


def _save(fig, path):
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _colors():
    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


_VARIANT_STYLES = ("-", "--", "-.", ":")


def group_styles(groups):
    """(colour, line style) per group: one colour per normalisation, in order of first
    appearance, and a new line style for each further configuration of that normalisation,
    so a variant (spectral_torch beside spectral) keeps its family's colour and the other
    configurations keep theirs."""
    colors, count, styles = _colors(), {}, []  # count: norm -> groups so far, first-seen order
    for group in groups:
        k = count.get(group.norm, 0)
        count[group.norm] = k + 1
        styles.append((colors[list(count).index(group.norm) % len(colors)],
                       _VARIANT_STYLES[k % len(_VARIANT_STYLES)]))
    return styles


def _draw_mean(ax, series, color, label=None, log=False, **line_kw):
    """Draws the mean over seeds as a line and ±1 std across seeds as a band (where ≥ 2 seeds).

    Returns stats.mean_band(series), or None when there is nothing to draw.
    """
    x, mean, std, count = stats.mean_band(series)
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


def plot_metric(groups, metric, path):
    """Figure 1: the metric against epoch per configuration, mean over seeds ± 1 std band.

    A single-seed configuration is a plain line; when its evaluations used K > 1 generated
    sets, error bars show the standard deviation over those sets instead.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    higher = higher_is_better(metric)
    all_epochs, error_bars = [], False
    for group, (color, linestyle) in zip(groups, group_styles(groups)):
        series = [r.metrics[metric][1:] for r in group.runs if metric in r.metrics]
        if not series:
            ax.plot([], [], color=color, linestyle=linestyle,
                    label=f"{group.describe()}: no {metric} yet")
            continue
        drawn = _draw_mean(ax, series, color, label=group.describe(), marker="o", markersize=4,
                           linestyle=linestyle)
        x, mean = drawn[0], drawn[1]
        all_epochs.append(x)
        run = group.first
        if len(group.runs) == 1 and f"{metric}_std" in run.metrics:
            _, std_epochs, std = run.metrics[f"{metric}_std"]
            ax.errorbar(std_epochs, np.interp(std_epochs, x, mean), yerr=std, fmt="none",
                        ecolor=color, capsize=3, linewidth=1)
            error_bars = True
        _, best, best_epoch = stats.summarize_metric(x, mean, higher)
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


def _mean_path(group, x_key, y_key):
    """(epochs, x, y, x_std, y_std): two metrics' means over seeds at the epochs both have.

    None when no seed has logged both.
    """
    xs = [r.metrics[x_key][1:] for r in group.runs if x_key in r.metrics]
    ys = [r.metrics[y_key][1:] for r in group.runs if y_key in r.metrics]
    if not xs or not ys:
        return None
    x_epochs, x_mean, x_std, _ = stats.mean_band(xs)
    y_epochs, y_mean, y_std, _ = stats.mean_band(ys)
    epochs = np.intersect1d(x_epochs, y_epochs)
    x, y = x_mean[np.searchsorted(x_epochs, epochs)], y_mean[np.searchsorted(y_epochs, epochs)]
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return None
    return (epochs[keep], x[keep], y[keep], x_std[np.searchsorted(x_epochs, epochs)][keep],
            y_std[np.searchsorted(y_epochs, epochs)][keep])


def _epoch_label(epoch):
    return f"epoch {int(epoch)}" if float(epoch).is_integer() else f"epoch {epoch:.2f}"


# (x metric, y metric, axis labels, panel title) of the two panels of plot_precision_recall.
_MANIFOLD_PANELS = (
    ("recall", "precision",
     "recall (diversity): share of real samples\ninside the generated k-NN manifold",
     "precision (quality): share of generated samples\ninside the real k-NN manifold",
     "improved precision and recall, k = 3 (Kynkäänniemi et al., 2019)"),
    ("coverage", "density",
     "coverage (diversity): share of real k-NN balls\nholding a generated sample",
     "density (quality): real k-NN balls holding\na generated sample, divided by k",
     "density and coverage, k = 5 (Naeem et al., 2020)"))


def plot_precision_recall(groups, keys, features, path):
    """Precision against recall, and density against coverage, per configuration over training.

    Each configuration's path joins its evaluations in order (means over seeds), from a hollow
    circle at the first to a star at the last, both labelled with their epoch; at the last,
    bars show ±1 std across seeds. Up and right is better in both panels.

    Args:
      groups: the study's `Group`s.
      keys: {metric: metrics.csv key} for precision, recall, density and coverage.
      features: the feature network's description, for the title.
      path: the PNG to write.
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, (x_metric, y_metric, x_label, y_label, title) in zip(axes, _MANIFOLD_PANELS):
        top = 1.0
        for group, (color, linestyle) in zip(groups, group_styles(groups)):
            found = _mean_path(group, keys[x_metric], keys[y_metric])
            if found is None:
                ax.plot([], [], color=color, linestyle=linestyle,
                        label=f"{group.describe()}: no {y_metric} yet")
                continue
            epochs, x, y, x_std, y_std = found
            top = max(top, float(np.max(y + np.nan_to_num(y_std))))
            ax.plot(x, y, color=color, linestyle=linestyle, marker="o", markersize=3,
                    linewidth=1, label=group.describe())
            ax.plot(x[0], y[0], "o", markerfacecolor="none", markeredgecolor=color,
                    markersize=10)
            ax.plot(x[-1], y[-1], "*", color=color, markersize=14, markeredgecolor="k")
            if np.isfinite(x_std[-1]) or np.isfinite(y_std[-1]):
                ax.errorbar(x[-1], y[-1], xerr=np.nan_to_num(x_std[-1]),
                            yerr=np.nan_to_num(y_std[-1]), fmt="none", ecolor=color, capsize=3)
            for j in sorted({0, len(x) - 1}):
                ax.annotate(_epoch_label(epochs[j]), (x[j], y[j]), textcoords="offset points",
                            xytext=(6, 6), fontsize=8, color=color)
        if y_metric == "density":
            ax.axhline(1.0, color="0.5", linestyle=":", linewidth=1,
                       label="density 1: as dense as the real data")
        ax.set_xlim(0.0, 1.02)
        ax.set_ylim(0.0, 1.05 * top if y_metric == "density" else 1.02)
        ax.set_xlabel(x_label, fontsize=9)
        ax.set_ylabel(y_label, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(title="configuration", fontsize=8, title_fontsize=8)
    fig.suptitle(f"Quality against diversity over training, on {features} features: means over "
                 "seeds at each evaluation,\nfrom ○ (first) to ★ (last; bars ±1 std across "
                 "seeds); up and right is better", fontsize=10)
    fig.tight_layout()
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
        ax.plot(steps, stats.ema_smooth(values, smoothing), color=color, label=f"{name} ({tag})",
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
        layers = group.tags(SIGMA_PREFIX)
        for j, layer in enumerate(layers):
            _draw_mean(ax, group.series(SIGMA_PREFIX + layer), colors[j % len(colors)],
                       label=layer)
        ax.set_xlabel("generator step")
        ax.set_ylabel("σ (power-iteration estimate of the raw kernel's spectral norm)",
                      fontsize=9)
        band = ", band ±1 std across seeds" if len(group.runs) > 1 else ""
        ax.set_title(f"{group.describe()}: σ per discriminator layer{band}", fontsize=10)
        ax.grid(alpha=0.3)
        _layer_legend(ax, len(layers))
    return _save(fig, path)


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
            _draw_mean(ax, group.series(tag), color, log=True,
                       label=f"‖∇ₓD‖ at {name}: batch mean")
            _draw_mean(ax, group.series(tag + "_max"), color, log=True,
                       label=f"‖∇ₓD‖ at {name}: batch max", linestyle=":", linewidth=1)
        _draw_mean(ax, group.series(UPPER_BOUND_TAG), "k", log=True,
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


def plot_operator_norms(groups, path):
    """SN configurations: each layer's exact operator norm as applied, beside the σ it uses.

    Left: ‖layer‖₂ = ‖conv(W/σ)‖₂ with the layer's stride, padding and input shape, i.e. the
    ratio of the raw kernel's operator norm to σ; SN sets the *reshaped kernel's* spectral
    norm to 1, the grey line. Right: σ, the power-iteration estimate SN divides by.
    """
    fig, axes = plt.subplots(len(groups), 2, figsize=(13, 4.2 * len(groups)), squeeze=False)
    colors = _colors()
    for (left, right), group in zip(axes, groups):
        layers = group.sn_layers
        for j, layer in enumerate(layers):
            color = colors[j % len(colors)]
            _draw_mean(left, group.series(LAYER_PREFIX + layer), color, label=layer)
            _draw_mean(right, group.series(SIGMA_PREFIX + layer), color, label=layer)
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
        spectra = stats.mean_spectra(group)
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

