"""The study's runner: each configuration (a flag file under `flags/`) trained once per seed.

Each configuration (flags/spectral.cfg, batchnorm.cfg, nonorm.cfg) trains once per seed, with
the same data and budget, into <output_dir>/<config>/seed_<seed>, each as its own
`python -m sngan_tf.train` process (a crash or kill stops one run, never the study). Seeds
are the outer loop; the configurations of a seed train side by side (`parallel`, one CPU
thread each: on 2 cores three side by side made 1.04x the images/s of one after the other),
so a study stopped half way has its curves at the same epoch. Rerunning resumes unfinished
runs from their checkpoints and skips finished ones; a larger `epochs` brings every run
further, so a long study advances in pieces.
"""
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from typing import List, Optional, Sequence

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
    checkpoint_every_epochs: float = 0.25  # at most ~1/4 epoch of work lost to a kill
    generator_every_epochs: float = 10  # generator weights kept at these epochs
    parallel: int = 0  # runs trained side by side; 0: all configurations of a seed


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
           f"--eval_every_epochs={settings.eval_every_epochs}",
           f"--checkpoint_every_epochs={settings.checkpoint_every_epochs}",
           f"--generator_every_epochs={settings.generator_every_epochs}"]
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


def existing_configs(output_dir: str) -> List[str]:
    """Configurations with a run folder in `output_dir` and a flag file under flags/."""
    if not os.path.isdir(output_dir):
        return []
    return sorted(c for c in os.listdir(output_dir)
                  if os.path.isdir(os.path.join(output_dir, c))
                  and os.path.exists(os.path.join(ROOT, "flags", f"{c}.cfg")))


def _threads_env(parallel: int):
    """Environment of a run sharing the CPU with `parallel - 1` others: its share of threads."""
    threads = str(max(1, (os.cpu_count() or 1) // parallel))
    return dict(os.environ, TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS=threads,
                OMP_NUM_THREADS=threads)


class _Run:
    """One training process: its lines go to <run_dir>/train.log and, prefixed, to stderr."""

    def __init__(self, name: str, cmd: Sequence[str], logdir: str, env):
        self.name = name
        os.makedirs(logdir, exist_ok=True)
        # rundir.TRAIN_LOG (not imported: this process never loads TensorFlow).
        self.log = open(os.path.join(logdir, "train.log"), "a")  # one log across resumes
        # Training runs from the repository root, where the flag files' nested paths resolve.
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in self.process.stdout:
            self.log.write(line)
            self.log.flush()
            sys.stderr.write(f"[{self.name}] {line}")

    def wait(self) -> int:
        code = self.process.wait()
        self.thread.join()
        self.log.close()
        return code


def _run_together(jobs, settings, parallel) -> int:
    """Trains `jobs` ((config, seed, cmd) triples) `parallel` at a time; SIGINT/SIGTERM reach
    every run (each saves a checkpoint and exits). Returns the first failing exit code."""
    env = _threads_env(parallel) if parallel > 1 else None
    failed, running = 0, []
    stop = []

    def forward(signum, _):
        stop.append(signum)
        for run in running:
            if run.process.poll() is None:
                run.process.send_signal(signum)
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for start in range(0, len(jobs), parallel):
            running = []
            for config, seed, cmd in jobs[start:start + parallel]:
                logging.info("%s seed %d: %s", config, seed, " ".join(cmd))
                running.append(_Run(f"{config}/seed_{seed}", cmd,
                                    run_dir(settings.output_dir, config, seed), env))
            for run in running:
                code = run.wait()
                if code:
                    logging.error("%s failed with exit code %d; rerun to resume.", run.name,
                                  code)
                    failed = failed or code
            if failed or stop:
                return failed or 128 + stop[0]
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return 0


def run_study(settings: StudySettings, configs: Sequence[str], seeds: Sequence[int],
              extra: Sequence[str] = ()) -> int:
    """Trains every configuration once per seed (seeds outer, the configurations of a seed
    side by side); returns the first failing run's exit code, else 0."""
    os.makedirs(settings.output_dir, exist_ok=True)
    jobs = [(config, seed, train_command(config, seed, settings, extra))
            for seed in seeds for config in configs]
    parallel = settings.parallel or len(configs)
    return _run_together(jobs, settings, max(1, parallel))
