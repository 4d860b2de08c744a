"""Two configurations of a study compared seed by seed, with rank tests.

For A/B questions of one recipe (e.g. `--init=normal` against `--init=torch`): each seed's
final metric, class entropy of its samples and D's logits, then two exact rank tests of
the compared metric: Mann-Whitney U (the two groups as independent samples) and the
Wilcoxon signed-rank test on the per-seed differences (the seeds as pairs: a seed fixes
the data order and latent codes in both configurations). With 5 seeds the signed-rank
test cannot go below p = 0.0625 two-sided, the U test below 0.0079.
"""
import math

import numpy as np
from scipy import stats as scipy_stats

from sngan_tf.study import runs as runs_lib


def _final_metric(run, name):
    value = run.final_metric(name)
    return math.nan if value is None else value


def seed_rows(group, metric):
    """Per seed: (seed, step, metric, class entropy, final mean logits real/fake, largest
    |mean logit| over the run)."""
    entropy = runs_lib.class_entropy_key(metric)
    rows = []
    for run in sorted(group.runs, key=lambda r: r.seed):
        finals = [run.final(t) for t in runs_lib.LOGIT_TAGS]
        logits = [abs(v) for t in runs_lib.LOGIT_TAGS if t in run.scalars for v in run.scalars[t][1]]
        rows.append((run.seed, run.steps_trained, _final_metric(run, metric),
                     _final_metric(run, entropy), *(f[1] if f else math.nan for f in finals),
                     max(logits) if logits else math.nan))
    return rows


def rank_tests(a, b):
    """Exact two-sided p-values: Mann-Whitney U of a vs b, Wilcoxon signed-rank of a - b
    (pairs in order; NaN when the groups differ in length)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    u = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="exact")
    w = (scipy_stats.wilcoxon(a - b, alternative="two-sided", method="exact").pvalue
         if len(a) == len(b) else math.nan)
    return {"U": float(u.statistic), "p_mannwhitney": float(u.pvalue), "p_wilcoxon": float(w)}


def _format(value, digits=2):
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def compare_markdown(groups, metric):
    """The comparison of `groups` (two `runs.Group`s) on `metric` as markdown."""
    a, b = groups
    rows = {g.label: seed_rows(g, metric) for g in groups}
    header = ("| configuration | seed | step | " + metric + " | class entropy (nats) | "
              "D logit real | D logit fake | max abs mean logit |")
    lines = [header, "|" + "---|" * 8]
    for label, group_rows in rows.items():
        for seed, step, value, ent, real, fake, peak in group_rows:
            lines.append(f"| {label} | {seed} | {step} | {_format(value)} | {_format(ent)} | "
                         f"{_format(real)} | {_format(fake)} | {_format(peak, 1)} |")
    lines += ["", "| configuration | " + metric + " mean ± std | median | class entropy mean |",
              "|---|---|---|---|"]
    for label, group_rows in rows.items():
        v = np.array([r[2] for r in group_rows])
        e = np.array([r[3] for r in group_rows])
        lines.append(f"| {label} | {v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0:.2f} | "
                     f"{np.median(v):.2f} | {_format(float(e.mean()))} |")
    paired = _paired(rows[a.label], rows[b.label])
    tests = rank_tests(*paired)
    diffs = paired[0] - paired[1]
    seeds = ", ".join(str(r[0]) for r in rows[a.label] if r[0] in {s[0] for s in rows[b.label]})
    lines += ["", f"{a.label} − {b.label}, seed by seed (seeds {seeds}): "
              + ", ".join(f"{d:+.2f}" for d in diffs) + ".",
              f"Mann-Whitney U = {tests['U']:.0f}, exact two-sided p = "
              f"{tests['p_mannwhitney']:.4f}; Wilcoxon signed-rank (paired by seed), exact "
              f"two-sided p = {tests['p_wilcoxon']:.4f}."]
    return "\n".join(lines) + "\n", tests


def _paired(rows_a, rows_b):
    """The metric of the seeds both groups have, in seed order."""
    by_seed_b = {r[0]: r[2] for r in rows_b}
    pairs = [(r[2], by_seed_b[r[0]]) for r in rows_a if r[0] in by_seed_b]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def compare_study(study_dir, labels, metric="auto"):
    """(markdown, tests) comparing the two configurations `labels` of a study folder."""
    groups, _ = runs_lib.find_runs(study_dir)
    by_label = {g.label: g for g in groups}
    missing = [label for label in labels if label not in by_label]
    if missing:
        raise ValueError(f"--configs: no runs of {', '.join(missing)} in {study_dir} "
                         f"(found: {', '.join(by_label) or 'none'})")
    chosen = [by_label[label] for label in labels]
    metric = runs_lib.choose_metric([r for g in chosen for r in g.runs], metric)
    if metric is None:
        raise ValueError(f"no evaluated metric in the runs of {', '.join(labels)}")
    return compare_markdown(chosen, metric)
