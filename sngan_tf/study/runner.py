"""The study's runner: each configuration (a flag file under `flags/`) trained once per seed.

Each configuration (flags/spectral.cfg, batchnorm.cfg, nonorm.cfg) trains once per seed, with
the same data and budget, into <output_dir>/<config>/seed_<seed>, each as its own
`python -m sngan_tf.train` process (a crash or kill stops one run, never the study). Seeds
are the outer loop, so a study stopped half way has every configuration at the first
seeds; rerunning resumes unfinished runs from their checkpoints and skips finished ones.
"""
import dataclasses
import os
import subprocess
import sys
from typing import Optional, Sequence

from absl import logging

# The repository root: the flag files' nested paths (`--flagfile=flags/...`) resolve there.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = ("spectral", "batchnorm", "nonorm")
# Set by the study for each run: a copy after `--` would silently merge the seeds' runs.
_RESERVED = ("--seed", "--logdir")


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What every training run of the study shares (the `run` command's flags, resolved)."""
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


def check_configs(configs: Sequence[str]):
    """Refuses a configuration without its flag file under flags/."""
    for config in configs:
        if config not in CONFIGS and not os.path.exists(
                os.path.join(ROOT, "flags", f"{config}.cfg")):
            raise ValueError(f"--configs: no flags/{config}.cfg")


def run_study(settings: StudySettings, configs: Sequence[str], seeds: Sequence[int],
              extra: Sequence[str] = ()) -> int:
    """Trains every configuration once per seed (seeds outer); returns the first failing
    run's exit code, else 0."""
    os.makedirs(settings.output_dir, exist_ok=True)
    for seed in seeds:
        for config in configs:
            cmd = train_command(config, seed, settings, extra)
            logging.info("%s seed %d: %s", config, seed, " ".join(cmd))
            # Training runs from the repository root, where the flag files' nested paths resolve.
            result = subprocess.run(cmd, cwd=ROOT)
            if result.returncode:
                logging.error("%s seed %d failed with exit code %d; rerun to resume.", config,
                              seed, result.returncode)
                return result.returncode
    return 0
