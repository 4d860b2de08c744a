r"""Scores the checkpoints of finished (or running) runs, as the trainer's evaluation would.

  python -m sngan_tf.evaluate --logdir=runs/sn,runs/bn --all_checkpoints \
      --eval_network=classifier --classifier_path=classifiers/cifar10_classifier \
      --dataset=image_folder --data_dir=../shared/data/cifar10_jpg.zip/cifar10/train \
      --metrics=fd,precision,recall,density,coverage

Each run is rebuilt from its `config.json`; its generator is restored from the latest
checkpoint (or each kept one, or with --generators each generator the trainer kept under
`<run>/generators/`, e.g. every 10 epochs of the study) and scored with the evaluator the
trainer uses, on the same latent codes, with the metrics --metrics names (default all: the Fréchet distance, the
classifier score, the kernel distance, precision, recall, density and coverage). Results go
where the trainer puts them: `eval/<metric>` TensorBoard scalars in the run's logdir and
rows of its `metrics.csv`. The feature network is loaded once and the real statistics are
computed once per image size, however many checkpoints there are.
--dataset/--data_dir must name the run's training data: they give the reference
statistics and the epoch column.
"""
import os
from typing import Dict, List, Optional, Sequence, Tuple

# TensorFlow's C++ info and warning lines drown the program's own; TF_CPP_MIN_LOG_LEVEL=0
# brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags

from sngan_tf import cli
from sngan_tf import eval_flags

FLAGS = flags.FLAGS


def define_flags():
    """This binary's flags; called once, by `run`."""
    flags.DEFINE_list("logdir", None, "Run directories to evaluate, comma-separated.")
    flags.DEFINE_boolean("all_checkpoints", False, "Evaluate every kept checkpoint, not only "
                         "the latest.")
    flags.DEFINE_boolean("generators", False, "Evaluate the generator weights the trainer "
                         "kept (--generator_every_epochs: <run>/generators/step_N.weights.h5) "
                         "instead of checkpoints, oldest first.")
    eval_flags.define_data_flags()
    eval_flags.define_eval_flags()
    eval_flags.define_metrics_flag()
    flags.adopt_module_key_flags(eval_flags)


def evaluate_runs(logdirs: Sequence[str], *, eval_network: str,
                  classifier_path: Optional[str] = None, inception_path: Optional[str] = None,
                  dataset: str = "cifar10", data_dir: Optional[str] = None,
                  tfds_data_dir: Optional[str] = None, cache_dir: str,
                  num_samples: int = 10000, num_real_samples: int = 50000,
                  all_checkpoints: bool = False, generators: bool = False,
                  num_sets: int = 1, metrics: Optional[Sequence[str]] = None
                  ) -> Dict[str, List[Tuple[int, dict]]]:
    """Evaluates checkpoints of runs; appends the results to each run's records.

    Args:
      logdirs: run directories (of `sngan_tf.loop.Trainer`).
      eval_network, classifier_path, inception_path: the feature network
        (`sngan_tf.feature_networks.load_feature_network`).
      dataset, data_dir, tfds_data_dir, cache_dir: the runs' training images
        (`sngan_tf.data.load_images`) and the statistics cache.
      num_samples: generated images per evaluation.
      num_real_samples: real images behind the reference statistics.
      all_checkpoints: every checkpoint the run keeps, oldest first, else the latest.
      generators: the kept generator weights (`generators/`) instead of checkpoints.
      num_sets: independent generated sets per evaluation (mean and `_std` when > 1).
      metrics: names from `sngan_tf.metric_keys.ALL`; None means all.

    Returns:
      {logdir: [(step, {metric: value}), ...]}.

    Raises:
      sngan_tf.rundir.RunNotFoundError: a logdir without config or checkpoint (or kept
        generator, with `generators`), checked for every run before any work.
      sngan_tf.feature_networks.FeatureNetworkUnavailable: the network cannot be loaded.
      sngan_tf.data.DataError: the training images cannot be loaded.
    """
    from sngan_tf import feature_networks, metric_keys  # pylint: disable=g-import-not-at-top
    metrics = metric_keys.check(metric_keys.ALL if metrics is None else metrics)
    runs = _open_runs(logdirs, all_checkpoints, generators)
    net = feature_networks.load_feature_network(eval_network, inception_path, classifier_path)
    reference = _reference_statistics(net, dataset=dataset, data_dir=data_dir,
                                      tfds_data_dir=tfds_data_dir, cache_dir=cache_dir,
                                      num_real_samples=num_real_samples)
    results = {}
    for run_dir, config, checkpoints in runs:
        results[run_dir.logdir] = _evaluate_checkpoints(
            run_dir, config, checkpoints, net, reference, num_samples, num_sets, metrics)
    return results


def _open_runs(logdirs, all_checkpoints, generators):
    """Each run once, as (RunDir, TrainConfig, checkpoint or generator paths); fails
    before any work."""
    from sngan_tf import rundir, training  # pylint: disable=g-import-not-at-top
    runs = []
    for logdir in dict.fromkeys(logdirs):  # each run once
        run_dir = rundir.RunDir(logdir)
        config = training.TrainConfig.from_dict(run_dir.read_config())
        if generators:
            paths = list(run_dir.generator_files().values())
            if not paths:
                raise rundir.RunNotFoundError(
                    f"--generators: --logdir={logdir} keeps no generator in "
                    f"{run_dir.path(rundir.GENERATORS_DIR)} (the trainer keeps them with "
                    "--generator_every_epochs)")
        else:
            paths = run_dir.checkpoints(all_checkpoints)
        runs.append((run_dir, config, paths))
    return runs


def _reference_statistics(net, *, dataset, data_dir, tfds_data_dir, cache_dir,
                          num_real_samples):
    """`reference(image_size)`: (training images, real statistics), computed once per size."""
    from sngan_tf import data  # pylint: disable=g-import-not-at-top
    from sngan_tf import eval as eval_lib  # pylint: disable=g-import-not-at-top
    references = {}  # image size -> (number of training images, real statistics)

    def reference(image_size):
        if image_size not in references:
            images = data.load_images(dataset, data_dir=data_dir, tfds_data_dir=tfds_data_dir,
                                      image_size=image_size, cache_dir=cache_dir)
            stats = eval_lib.training_statistics(
                net, images, dataset=dataset, data_dir=data_dir, image_size=image_size,
                num_samples=num_real_samples, cache_dir=cache_dir)
            references[image_size] = len(images), stats
        return references[image_size]

    return reference


def _evaluate_checkpoints(run_dir, config, checkpoints, net, reference, num_samples,
                          num_sets, metrics):
    """Scores one run's checkpoints in turn, recording each; returns [(step, scores)]."""
    from sngan_tf import eval as eval_lib  # pylint: disable=g-import-not-at-top
    from sngan_tf import training  # pylint: disable=g-import-not-at-top
    num_images, stats = reference(config.model.image_size)
    gan = training.GAN(config)
    evaluator = eval_lib.make_run_evaluator(net, stats, config, num_samples,
                                            num_sets=num_sets, metrics=metrics)
    rows = []
    for path in checkpoints:
        step = run_dir.restore_generator(gan.generator, gan.step, path)
        scores = evaluator(gan)
        run_dir.write_eval_results(step, training.epoch_at(step, config, num_images),
                                   scores)
        rows.append((step, scores))
    run_dir.close()
    return rows


def main(argv):
    cli.check_args(argv, FLAGS.logdir)
    if FLAGS.eval_network == "none":
        cli.fail("--eval_network=inception or --eval_network=classifier is required")
    if FLAGS.generators and FLAGS.all_checkpoints:
        cli.fail("--generators and --all_checkpoints: choose one (kept generators or "
                 "checkpoints)")
    from sngan_tf import tfstart  # pylint: disable=g-import-not-at-top
    tfstart.start()
    from sngan_tf import data, feature_networks, rundir  # pylint: disable=g-import-not-at-top
    try:
        results = evaluate_runs(
            FLAGS.logdir, eval_network=FLAGS.eval_network, classifier_path=FLAGS.classifier_path,
            inception_path=FLAGS.inception_path, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
            tfds_data_dir=FLAGS.tfds_data_dir, cache_dir=FLAGS.cache_dir,
            num_samples=FLAGS.eval_num_samples, num_real_samples=FLAGS.eval_real_samples,
            all_checkpoints=FLAGS.all_checkpoints, generators=FLAGS.generators,
            num_sets=FLAGS.eval_num_sets,
            metrics=FLAGS.metrics)
    except (rundir.RunNotFoundError, feature_networks.FeatureNetworkUnavailable,
            data.DataError) as e:
        cli.fail(str(e))
    for logdir, rows in results.items():
        for step, scores in rows:
            print(f"{logdir} step {step}: "
                  + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
        print(f"  appended to {os.path.join(logdir, rundir.METRICS_FILE)} and TensorBoard "
              "(eval/*)")


def run():
    """Console entry point (`sngan-evaluate`)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
