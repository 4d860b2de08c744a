r"""Trains an SN-GAN, DCGAN-BN or unnormalised DCGAN.

  python -m sngan_tf.train --norm=spectral --logdir=runs/sn
  python -m sngan_tf.train --flagfile=flags/spectral.cfg --dataset=image_folder \
      --data_dir=../shared/data/cifar10_jpg.zip/cifar10/train

Rerunning with the same --logdir resumes from its latest checkpoint. This binary only
defines flags, validates them and hands a frozen config to `sngan_tf.training`.
"""
import os
import sys

# TensorFlow's C++ info and warning lines drown the program's own; TF_CPP_MIN_LOG_LEVEL=0
# brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app
from absl import flags
from absl import logging

from sngan_tf import cli
from sngan_tf import eval_flags

_NORMS = ("spectral", "batch", "none")

# Models.
flags.DEFINE_enum("arch", "dcgan", ["dcgan", "cnn", "resnet"],
                  "dcgan: the study's DCGAN; cnn: the paper's standard CNN; resnet: its ResNet.")
flags.DEFINE_enum("norm", "spectral", list(_NORMS), "Discriminator normalisation.")
flags.DEFINE_boolean("g_batchnorm", True, "Batch norm in the generator (off for --norm=none "
                     "in the study).")
flags.DEFINE_integer("z_dim", None, "Latent size (default: 100 dcgan, 128 cnn/resnet).")
flags.DEFINE_enum("z_distribution", None, ["normal", "uniform"],
                  "Latent distribution (default: normal; cnn follows --cnn_variant).")
flags.DEFINE_enum("cnn_variant", "code", ["code", "paper"],
                  "Which source the cnn follows where they differ: 'code' = the authors' "
                  "chainer-gan-lib (D widths 64,128,128,256,256,512,512, LeakyReLU 0.2, "
                  "z~U(-1,1)); 'paper' = Table 3 (64,64,128,128,256,256,512, 0.1, z~N(0,I)).")
flags.DEFINE_float("lrelu_slope", None, "LeakyReLU slope in D (default by arch/variant).")
flags.DEFINE_enum("init", "normal", ["normal", "torch"],
                  "Weight initialisation: 'normal' = N(0, 0.02) (DCGAN, the authors' code; "
                  "resnet: Glorot); 'torch' = PyTorch's default U(±1/sqrt(fan_in)) for weights "
                  "and biases (dcgan, cnn).")
# Objective and optimisation.
flags.DEFINE_enum("loss", "non_saturating", ["non_saturating", "hinge"], "GAN loss.")
flags.DEFINE_integer("batch_size", 64, "Global batch size (split across replicas).")
flags.DEFINE_integer("train_steps", None, "Generator updates (default 1000 unless --epochs); "
                     "overrides --epochs.")
flags.DEFINE_float("epochs", None, "Train for this many passes of D over the data instead.")
flags.DEFINE_integer("n_dis", 1, "Discriminator updates per generator update.")
flags.DEFINE_float("lr_g", 1e-4, "Generator Adam learning rate.")
flags.DEFINE_float("lr_d", 4e-4, "Discriminator Adam learning rate.")
flags.DEFINE_float("beta1", 0.5, "Adam beta1.")
flags.DEFINE_float("beta2", 0.999, "Adam beta2.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, data order and latent codes.")
flags.DEFINE_enum("precision", "float32",
                  ["float32", "mixed_bfloat16", "mixed_float16", "float64"],
                  "Keras dtype policy; SN power iteration stays float32 under the mixed ones; "
                  "float64 is slow, for numerical checks.")
flags.DEFINE_boolean("jit_compile", False, "Compile the D and G updates with XLA.")
flags.DEFINE_boolean("deterministic", False, "TensorFlow op determinism (exact resume).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker", "tpu"],
                  "tf.distribute strategy; --batch_size is the global batch, split across "
                  "replicas, and batch norm is synchronised across them.")
flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu ('' = local).")
# Data (--dataset, --data_dir, --tfds_data_dir, --cache_dir: eval_flags).
eval_flags.define_data_flags()
flags.DEFINE_integer("image_size", None, "Image size (default: 32, or 48 for stl10).")
# Run.
flags.DEFINE_string("logdir", None, "Run directory: checkpoints, TensorBoard events, samples.")
flags.DEFINE_integer("log_every", 100, "Steps between console lines and scalar summaries.")
flags.DEFINE_integer("sample_every", 1000, "Steps between sample grids.")
flags.DEFINE_integer("checkpoint_every", 1000, "Steps between checkpoints.")
flags.DEFINE_float("checkpoint_every_epochs", None, "Checkpoint every this many epochs "
                   "(overrides --checkpoint_every).")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
flags.DEFINE_float("generator_every_epochs", 0, "Keep the generator's weights every this many "
                   "epochs in <logdir>/generators/step_N.weights.h5, never deleted (0: never).")
flags.DEFINE_integer("lipschitz_every", None, "Steps between measurements of D's Lipschitz "
                     "bounds and layer operator norms (TensorBoard lipschitz/*; default: "
                     "--log_every; 0: never).")
# Evaluation during training (--eval_network, its paths and sample counts: eval_flags).
eval_flags.define_eval_flags()
eval_flags.define_metrics_flag()
flags.DEFINE_integer("eval_every", 0, "Steps between evaluations (0: at the end only).")
flags.DEFINE_float("eval_every_epochs", None, "Evaluate every this many epochs (overrides "
                   "--eval_every).")
flags.adopt_module_key_flags(eval_flags)

FLAGS = flags.FLAGS


def config_from_flags():
    """Freezes the flags into a TrainConfig (raises ValueError naming a bad flag)."""
    from sngan_tf import models, training  # pylint: disable=g-import-not-at-top
    image_size = FLAGS.image_size or (48 if FLAGS.dataset == "stl10" else 32)
    model = models.ModelConfig(
        arch=FLAGS.arch, norm=FLAGS.norm, g_batchnorm=FLAGS.g_batchnorm, image_size=image_size,
        z_dim=FLAGS.z_dim, z_distribution=FLAGS.z_distribution, cnn_variant=FLAGS.cnn_variant,
        lrelu_slope=FLAGS.lrelu_slope, init=FLAGS.init)
    return training.TrainConfig(
        model=model, loss=FLAGS.loss, batch_size=FLAGS.batch_size,
        train_steps=1000 if FLAGS.train_steps is None else FLAGS.train_steps, n_dis=FLAGS.n_dis, lr_g=FLAGS.lr_g,
        lr_d=FLAGS.lr_d, beta1=FLAGS.beta1, beta2=FLAGS.beta2, seed=FLAGS.seed,
        precision=FLAGS.precision, jit_compile=FLAGS.jit_compile, log_every=FLAGS.log_every,
        sample_every=FLAGS.sample_every, checkpoint_every=FLAGS.checkpoint_every,
        eval_every=FLAGS.eval_every, keep_checkpoints=FLAGS.keep_checkpoints,
        lipschitz_every=FLAGS.lipschitz_every)


def _make_evaluator(config, images):
    """Loads the feature network and real statistics before training, or fails naming why."""
    if FLAGS.eval_network == "none":
        return None
    from sngan_tf import eval as eval_lib  # pylint: disable=g-import-not-at-top
    from sngan_tf import feature_networks  # pylint: disable=g-import-not-at-top
    try:
        net = feature_networks.load_feature_network(FLAGS.eval_network, FLAGS.inception_path,
                                                    FLAGS.classifier_path)
    except feature_networks.FeatureNetworkUnavailable as e:
        cli.fail(str(e))
    stats = eval_lib.training_statistics(
        net, images, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
        image_size=config.model.image_size, num_samples=FLAGS.eval_real_samples,
        cache_dir=FLAGS.cache_dir)
    logging.info("Evaluating with %s (%s) on %d x %d generated images against %d real ones.",
                 net.name, net.metric_name, FLAGS.eval_num_sets, FLAGS.eval_num_samples,
                 stats.num_samples)
    return eval_lib.make_run_evaluator(net, stats, config, FLAGS.eval_num_samples,
                                       num_sets=FLAGS.eval_num_sets, metrics=FLAGS.metrics)


def _check_writable(logdir):
    """Fails at once, naming --logdir, if the run directory cannot be created or written."""
    probe = os.path.join(logdir, f".write_test_{os.getpid()}")  # workers probe together
    try:
        os.makedirs(logdir, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        cli.fail(f"--logdir={logdir} cannot be written: {e.strerror or e}")


def main(argv):
    cli.check_args(argv, FLAGS.logdir)
    from sngan_tf import tfstart  # pylint: disable=g-import-not-at-top
    tf = tfstart.start()  # before any TensorFlow work: its start-up lines, filtered
    config = _config()
    _check_writable(FLAGS.logdir)
    import dataclasses  # pylint: disable=g-import-not-at-top
    import keras  # pylint: disable=g-import-not-at-top

    # First TensorFlow work of the program: a multi-worker strategy must configure the
    # runtime (collectives, coordination service) before anything initialises it.
    strategy = _strategy(tf)
    images = _images(config)
    config = _in_steps(config, len(images))
    evaluator = _make_evaluator(config, images)
    logging.info("%d training images of %s; %d generator steps.", len(images),
                 images.shape[1:], config.train_steps)
    if FLAGS.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    if strategy.num_replicas_in_sync > 1:
        config = dataclasses.replace(
            config, model=dataclasses.replace(config.model, sync_batchnorm=True))
    logging.info("Strategy %s with %d replica(s).", type(strategy).__name__,
                 strategy.num_replicas_in_sync)
    trainer = _train(tf, config, images, strategy, evaluator)
    samples = os.path.join(FLAGS.logdir, "samples")
    print(f"Done: step {trainer.step}. Samples in {samples}/, checkpoints in "
          f"{FLAGS.logdir}/checkpoints/.\nTensorBoard: tensorboard --logdir {FLAGS.logdir}"
          " (then open http://localhost:6006)")


def _config():
    """The run's config from the flags; --epochs becomes steps once the data is loaded."""
    if FLAGS.epochs is not None and FLAGS.epochs <= 0:
        cli.fail(f"--epochs must be positive, got {FLAGS.epochs}")
    if FLAGS.train_steps is not None and FLAGS.epochs is not None:
        # Flag files give --epochs; a --train_steps on the command line overrides it.
        logging.info("--train_steps=%d overrides --epochs=%g.", FLAGS.train_steps, FLAGS.epochs)
        FLAGS.epochs = None
    try:
        return config_from_flags()
    except ValueError as e:
        cli.fail(str(e))


def _strategy(tf):
    """The tf.distribute strategy of --strategy (a bad one: exit 2 naming the flag)."""
    from sngan_tf import distribute  # pylint: disable=g-import-not-at-top
    try:
        strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)
    except ValueError as e:
        cli.fail(str(e))
    if FLAGS.strategy == "multiworker":
        # Its collectives log a line per eager all-reduce at INFO; warnings and errors
        # (a lost worker) still show.
        tf.get_logger().setLevel("WARNING")
    return strategy


def _images(config):
    """The training images of the data flags (missing data: exit 2 naming the flag)."""
    from sngan_tf import cpu, data  # pylint: disable=g-import-not-at-top
    logging.info("oneDNN CPU kernels %s (%s=%s).", "on" if cpu.onednn_enabled() else "off",
                 cpu.ONEDNN_VAR, os.environ.get(cpu.ONEDNN_VAR))
    try:
        return data.load_images(FLAGS.dataset, data_dir=FLAGS.data_dir,
                                tfds_data_dir=FLAGS.tfds_data_dir,
                                image_size=config.model.image_size, cache_dir=FLAGS.cache_dir)
    except data.DataError as e:
        cli.fail(str(e))


def _in_steps(config, num_images):
    """--epochs and the --*_every_epochs intervals as generator steps on `num_images` images."""
    import dataclasses  # pylint: disable=g-import-not-at-top
    from sngan_tf import data  # pylint: disable=g-import-not-at-top
    per_epoch = data.num_batches_per_epoch(num_images, config.batch_size) / config.n_dis
    # config field <- the flag giving it in epochs
    for field, flag in (("train_steps", "epochs"), ("eval_every", "eval_every_epochs"),
                        ("checkpoint_every", "checkpoint_every_epochs"),
                        ("generator_every", "generator_every_epochs")):
        epochs = FLAGS[flag].value
        if epochs is not None and epochs < 0:
            cli.fail(f"--{flag} must be >= 0, got {epochs}")
        if epochs:  # None or 0: the config's own value
            config = dataclasses.replace(config, **{field: max(1, round(epochs * per_epoch))})
    return config


def _train(tf, config, images, strategy, evaluator):
    """Builds and runs the Trainer; a refused logdir, NaNs or a lost worker end the program
    with one line saying why."""
    from sngan_tf import distribute, loop, rundir  # pylint: disable=g-import-not-at-top
    try:
        try:
            trainer = loop.Trainer(config, FLAGS.logdir, images, strategy,
                                   evaluator=evaluator, run_info=FLAGS.flags_into_string())
        except (rundir.ConfigMismatchError, ValueError) as e:
            cli.fail(str(e))
        try:
            trainer.run()
        except (loop.NonFiniteError, rundir.ConfigMismatchError) as e:
            cli.fail(str(e))
    except (tf.errors.UnavailableError, tf.errors.AbortedError,
            tf.errors.DeadlineExceededError, tf.errors.CancelledError) as e:
        if FLAGS.strategy != "multiworker":
            raise
        print(f"error: {distribute.describe_worker_failure(e)}. Rerun to resume from the "
              "last checkpoint.", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # Now: a normal exit would wait in TensorFlow's shutdown barrier for the lost peer
        # (measured 13-33 s more), and the runtime cannot recover in-process anyway.
        os._exit(1)
    return trainer


def run():
    """Console entry point (`sngan-train`)."""
    app.run(main)


if __name__ == "__main__":
    run()
