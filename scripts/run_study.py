r"""Runs the study: three DCGAN configurations, once per seed, evaluated every epoch; then figures.

  python scripts/run_study.py --output_dir=runs/study --epochs=8 --seeds=0,1,2 \
      --dataset=image_folder --data_dir=../shared/data/cifar10_jpg.zip/cifar10/train \
      --eval_network=classifier --classifier_path=classifiers/cifar10_classifier

Each configuration (flags/spectral.cfg, batchnorm.cfg, nonorm.cfg) trains once per seed of
`--seeds` (passed as `--seed`), with the same data and budget, into
<output_dir>/<config>/seed_<seed>; seeds are the outer loop, so a study stopped half way has
every configuration at the first seeds. Rerunning resumes unfinished runs from their
checkpoints and skips finished ones. `--eval_num_sets=K` asks each evaluation for K
independent generated sets (metrics.csv then holds their mean and `<metric>_std`).
Arguments after `--` go to every training run (they may not set --seed or --logdir).
Figures and results.md go to <output_dir>/figures.
"""
import dataclasses
import os
import subprocess
import sys
from typing import Optional, Sequence

from absl import app
from absl import flags
from absl import logging

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, "scripts"))

CONFIGS = ("spectral", "batchnorm", "nonorm")
# Set by the study for each run: a copy after `--` would silently merge the seeds' runs.
_RESERVED = ("--seed", "--logdir")


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What every training run of the study shares (the flags of this script, resolved)."""
    output_dir: str = "runs/study"
    epochs: float = 70
    dataset: str = "cifar10"
    data_dir: Optional[str] = None
    eval_network: str = "classifier"
    classifier_path: Optional[str] = None
    inception_path: Optional[str] = None
    eval_every_epochs: float = 1.0
    eval_num_sets: int = 1


def run_dir(output_dir, config, seed):
    """Logdir of one run: <output_dir>/<config>/seed_<seed> (absolute)."""
    return os.path.join(os.path.abspath(output_dir), config, f"seed_{seed}")


def parse_seeds(values: Sequence[str]):
    """Parses `--seeds` entries into distinct non-negative ints, in the order given."""
    seeds = []
    for value in values:
        try:
            seed = int(value)
        except ValueError:
            raise ValueError(f"--seeds: {value!r} is not an integer") from None
        if seed < 0:
            raise ValueError(f"--seeds: {seed} is negative")
        if seed in seeds:
            raise ValueError(f"--seeds: {seed} given twice")
        seeds.append(seed)
    if not seeds:
        raise ValueError("--seeds: give at least one seed")
    return seeds


def check_extra(extra: Sequence[str]):
    """Refuses pass-through arguments that would override the study's --seed or --logdir."""
    for arg in extra:
        if arg.split("=", 1)[0] in _RESERVED:
            raise ValueError(f"{arg!r} after `--`: the study sets --seed and --logdir per run "
                             "(use --seeds and --output_dir)")


def train_command(config: str, seed: int, settings: StudySettings, extra: Sequence[str] = ()):
    """The sngan_tf.train command of one configuration and seed.

    The flag file comes first and the arguments after `--` last, so both the study's
    settings and the pass-through arguments override the flag file (absl: the last wins).
    """
    cmd = [sys.executable, "-m", "sngan_tf.train", f"--flagfile=flags/{config}.cfg",
           f"--logdir={run_dir(settings.output_dir, config, seed)}", f"--seed={seed}",
           f"--epochs={settings.epochs}", f"--dataset={settings.dataset}",
           f"--eval_network={settings.eval_network}",
           f"--eval_every_epochs={settings.eval_every_epochs}"]
    if settings.eval_num_sets != 1:
        # Only when asked for: K = 1 is the trainer's default, and leaving it out keeps the
        # study usable with a trainer from before the flag existed.
        cmd.append(f"--eval_num_sets={settings.eval_num_sets}")
    if settings.data_dir:
        cmd.append(f"--data_dir={os.path.abspath(settings.data_dir)}")
    if settings.eval_network == "classifier" and settings.classifier_path:
        cmd.append(f"--classifier_path={os.path.abspath(settings.classifier_path)}")
    if settings.eval_network == "inception" and settings.inception_path:
        cmd.append(f"--inception_path={os.path.abspath(settings.inception_path)}")
    return cmd + list(extra)


def _define_flags():
    # Defined only when run as a script, so importing this module (tests) registers no flags.
    flags.DEFINE_string("output_dir", "runs/study", "Folder of the runs and figures.")
    flags.DEFINE_float("epochs", 70, "Epochs per run (the study: 70).")
    flags.DEFINE_list("configs", list(CONFIGS), "Flag files under flags/ to run.")
    flags.DEFINE_list("seeds", ["0"], "Seeds: each configuration trains once per seed, into "
                      "<output_dir>/<config>/seed_<seed>.")
    flags.DEFINE_string("dataset", "cifar10", "Passed to sngan_tf.train.")
    flags.DEFINE_string("data_dir", None, "Passed to sngan_tf.train.")
    flags.DEFINE_enum("eval_network", "classifier", ["inception", "classifier", "none"],
                      "Features of the per-epoch Fréchet distance.")
    flags.DEFINE_string("classifier_path",
                        os.path.join(_ROOT, "classifiers", "cifar10_classifier"),
                        "With --eval_network=classifier.")
    flags.DEFINE_string("inception_path", None, "With --eval_network=inception.")
    flags.DEFINE_float("eval_every_epochs", 1.0, "Evaluation interval in epochs.")
    flags.DEFINE_integer("eval_num_sets", 1, "Independent generated sets per evaluation "
                         "(metrics.csv: mean and <metric>_std over them).", lower_bound=1)
    flags.DEFINE_boolean("plot", True, "Draw the figures and results.md at the end.")


def main(argv):
    f = flags.FLAGS
    extra = argv[1:]
    try:
        seeds = parse_seeds(f.seeds)
        check_extra(extra)
    except ValueError as e:
        raise app.UsageError(str(e))
    for config in f.configs:
        if config not in CONFIGS and not os.path.exists(os.path.join(_ROOT, "flags", f"{config}.cfg")):
            raise app.UsageError(f"--configs: no flags/{config}.cfg")
    settings = StudySettings(
        output_dir=f.output_dir, epochs=f.epochs, dataset=f.dataset, data_dir=f.data_dir,
        eval_network=f.eval_network, classifier_path=f.classifier_path,
        inception_path=f.inception_path, eval_every_epochs=f.eval_every_epochs,
        eval_num_sets=f.eval_num_sets)
    os.makedirs(f.output_dir, exist_ok=True)
    for seed in seeds:
        for config in f.configs:
            cmd = train_command(config, seed, settings, extra)
            logging.info("%s seed %d: %s", config, seed, " ".join(cmd))
            # Training runs from the repository root, where the flag files' nested paths resolve.
            result = subprocess.run(cmd, cwd=_ROOT)
            if result.returncode:
                logging.error("%s seed %d failed with exit code %d; rerun to resume.", config,
                              seed, result.returncode)
                return result.returncode
    if f.plot:
        import plot_study  # pylint: disable=g-import-not-at-top
        written = plot_study.plot_study(f.output_dir, os.path.join(f.output_dir, "figures"))
        print("\n".join(f"{k}: {v}" for k, v in sorted(written.items())))
    return 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
