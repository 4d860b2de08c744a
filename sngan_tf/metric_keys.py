"""The evaluation metrics by name: what `--metrics` may ask for, and each result's key.

A result's key is also its metrics.csv name and its TensorBoard tag `eval/<key>`
(`sngan_tf.rundir.RunDir.write_eval_results`). On Inception's features the keys are the
published names (fid, is, kid, class_entropy, precision, recall, density, coverage); on any other network
they carry its name (fd_<name>, score_<name>, kd_<name>, precision_<name>, ...), so that
values of two networks never share a row or a curve, even in a run evaluated with both.
The trainer also writes the four manifold metrics of its one network under the bare tags
`eval/precision`, `eval/recall`, `eval/density`, `eval/coverage` (`tensorboard_aliases`), the
names dashboards look for; metrics.csv keeps only the network-named rows.
No TensorFlow here: the binaries check `--metrics` before TensorFlow starts.
"""
from typing import Dict, Iterable, Optional, Tuple

FRECHET = "fd"  # Fréchet distance of pool features (FID on Inception)
SCORE = "score"  # classifier score of logits (Inception score on Inception)
KERNEL = "kd"  # kernel distance of pool features (KID on Inception)
# Entropy (nats) of the generated images' predicted classes (argmax of the logits): ln K when
# every class is drawn equally, 0 when the generator draws one class; a collapse detector.
CLASS_ENTROPY = "class_entropy"
# k-NN manifold metrics of pool features (sngan_tf.manifold_metrics).
MANIFOLD = ("precision", "recall", "density", "coverage")
ALL = (FRECHET, SCORE, KERNEL, CLASS_ENTROPY) + MANIFOLD

_INCEPTION_KEYS = {FRECHET: "fid", SCORE: "is", KERNEL: "kid"}


def key(metric: str, network: Optional[str] = None) -> str:
    """The result key of `metric` (one of `ALL`) on `network`'s features (None: Inception).

    E.g. key("fd") == "fid", key("fd", "cifar10_classifier") == "fd_cifar10_classifier",
    key("precision") == "precision".
    """
    if metric not in ALL:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(ALL)}")
    if network is None:
        return _INCEPTION_KEYS.get(metric, metric)
    return f"{metric}_{network}"


def parse(result_key: str) -> Optional[Tuple[str, Optional[str]]]:
    """(metric, network) of a result key, the inverse of `key`; None for other names.

    Takes a metric's key, not its `<key>_std` companion (`sngan_tf.eval.mean_and_spread`).
    """
    for metric, inception_key in _INCEPTION_KEYS.items():
        if result_key == inception_key:
            return metric, None
    for metric in ALL:
        if result_key == metric and metric not in _INCEPTION_KEYS:
            return metric, None
        if result_key.startswith(metric + "_") and len(result_key) > len(metric) + 1:
            return metric, result_key[len(metric) + 1:]
    return None


def tensorboard_aliases(result_keys: Iterable[str]) -> Dict[str, str]:
    """{bare manifold-metric name: its network-named key} among `result_keys`.

    E.g. {"precision": "precision_cifar10_classifier", ...}, spreads (`<key>_std`) left out;
    a metric found on two networks gets no alias (its bare tag would mix them); Inception's
    keys are bare already.
    """
    result_keys = list(result_keys)
    found = {}
    for result_key in result_keys:
        if result_key.endswith("_std") and result_key[:-len("_std")] in result_keys:
            continue  # the spread over K sets (sngan_tf.eval.mean_and_spread)
        parsed = parse(result_key)
        if parsed and parsed[0] in MANIFOLD and parsed[1] is not None:
            found.setdefault(parsed[0], []).append(result_key)
    return {metric: keys[0] for metric, keys in found.items() if len(keys) == 1}


def check(metrics) -> Tuple[str, ...]:
    """`metrics` in the order of `ALL`, or a ValueError naming the unknown ones."""
    unknown = [m for m in metrics if m not in ALL]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {', '.join(unknown) or '(none given)'}; choose "
                         f"from {', '.join(ALL)}")
    return tuple(m for m in ALL if m in metrics)
