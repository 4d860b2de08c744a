r"""Runs the study: the three DCGAN configurations, evaluated every epoch, then its figures.

  python scripts/run_study.py --output_dir=runs/study --epochs=8 \
      --dataset=image_folder --data_dir=../shared/data/cifar10_jpg.zip/cifar10/train \
      --eval_network=classifier --classifier_path=classifiers/cifar10_classifier

Each configuration (flags/spectral.cfg, batchnorm.cfg, nonorm.cfg) trains with the same
seed, data and budget into <output_dir>/<config>; rerunning resumes unfinished runs from
their checkpoints and skips finished ones. Arguments after `--` go to every training run.
Figures and results.md go to <output_dir>/figures.
"""
import os
import subprocess
import sys

from absl import app
from absl import flags
from absl import logging

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, "scripts"))

CONFIGS = ("spectral", "batchnorm", "nonorm")

flags.DEFINE_string("output_dir", "runs/study", "Folder of the runs and figures.")
flags.DEFINE_float("epochs", 70, "Epochs per configuration (the study: 70).")
flags.DEFINE_list("configs", list(CONFIGS), "Flag files under flags/ to run.")
flags.DEFINE_string("dataset", "cifar10", "Passed to sngan_tf.train.")
flags.DEFINE_string("data_dir", None, "Passed to sngan_tf.train.")
flags.DEFINE_enum("eval_network", "classifier", ["inception", "classifier", "none"],
                  "Features of the per-epoch Fréchet distance.")
flags.DEFINE_string("classifier_path", os.path.join(_ROOT, "classifiers", "cifar10_classifier"),
                    "With --eval_network=classifier.")
flags.DEFINE_string("inception_path", None, "With --eval_network=inception.")
flags.DEFINE_float("eval_every_epochs", 1.0, "Evaluation interval in epochs.")
flags.DEFINE_boolean("plot", True, "Draw the figures and results.md at the end.")

FLAGS = flags.FLAGS


def train_command(config, extra):
    """The sngan_tf.train command of one configuration."""
    cmd = [sys.executable, "-m", "sngan_tf.train", f"--flagfile=flags/{config}.cfg",
           f"--logdir={os.path.join(os.path.abspath(FLAGS.output_dir), config)}",
           f"--epochs={FLAGS.epochs}", f"--dataset={FLAGS.dataset}",
           f"--eval_network={FLAGS.eval_network}",
           f"--eval_every_epochs={FLAGS.eval_every_epochs}"]
    if FLAGS.data_dir:
        cmd.append(f"--data_dir={os.path.abspath(FLAGS.data_dir)}")
    if FLAGS.eval_network == "classifier":
        cmd.append(f"--classifier_path={os.path.abspath(FLAGS.classifier_path)}")
    if FLAGS.eval_network == "inception" and FLAGS.inception_path:
        cmd.append(f"--inception_path={os.path.abspath(FLAGS.inception_path)}")
    return cmd + list(extra)


def main(argv):
    extra = argv[1:]
    for config in FLAGS.configs:
        if config not in CONFIGS and not os.path.exists(os.path.join(_ROOT, "flags", f"{config}.cfg")):
            raise app.UsageError(f"--configs: no flags/{config}.cfg")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    for config in FLAGS.configs:
        cmd = train_command(config, extra)
        logging.info("%s: %s", config, " ".join(cmd))
        # Training runs from the repository root, where the flag files' nested paths resolve.
        result = subprocess.run(cmd, cwd=_ROOT)
        if result.returncode:
            logging.error("%s failed with exit code %d; rerun to resume.", config,
                          result.returncode)
            return result.returncode
    if FLAGS.plot:
        import plot_study  # pylint: disable=g-import-not-at-top
        written = plot_study.plot_study(FLAGS.output_dir, os.path.join(FLAGS.output_dir, "figures"))
        print("\n".join(f"{k}: {v}" for k, v in sorted(written.items())))
    return 0


if __name__ == "__main__":
    app.run(main)
