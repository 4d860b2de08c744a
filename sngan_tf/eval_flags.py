"""Flags shared by the train and evaluate binaries: the training data and the feature network.

Both binaries must name the data and the network the same way, because the reference
statistics are cached under those names (`sngan_tf.eval.training_statistics`). Each binary
calls the `define_*` functions once (the pattern of Model Garden's
`official/common/flags.py`) and adopts the flags as its own for `--help`. No TensorFlow
here: a bad flag fails before TensorFlow starts.
"""
import os

from absl import flags

from sngan_tf import metric_keys


def define_data_flags():
    """--dataset, --data_dir, --tfds_data_dir, --cache_dir: the run's training images."""
    flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "stl10", "image_folder"],
                      "Training data.")
    flags.DEFINE_string("data_dir", None, "Image folder, or a .zip optionally followed by a "
                        "path inside it, for --dataset=image_folder.")
    flags.DEFINE_string("tfds_data_dir", None, "Where TFDS finds prepared datasets.")
    flags.DEFINE_string("cache_dir", os.path.join(os.path.expanduser("~"), ".cache", "sngan_tf"),
                        "Cache of decoded image folders and of real-image statistics.")


def define_eval_flags():
    """--eval_network and its paths, --eval_num_samples, --eval_real_samples."""
    flags.DEFINE_enum("eval_network", "none", ["none", "inception", "classifier"],
                      "Features for the Fréchet distance: TF-GAN's Inception (FID), a "
                      "classifier SavedModel (reported as fd_<name>, not FID), or no "
                      "evaluation.")
    flags.DEFINE_string("inception_path", None, "Local copy of TF-GAN's Inception module "
                        "(else TF-Hub, honouring TFHUB_CACHE_DIR).")
    flags.DEFINE_string("classifier_path", None, "SavedModel with outputs pool_3 and logits "
                        "(e.g. classifiers/cifar10_classifier) for --eval_network=classifier.")
    flags.DEFINE_integer("eval_num_samples", 10000, "Generated images per evaluation "
                         "(authors' protocol: 10,000).")
    flags.DEFINE_integer("eval_num_sets", 1, "Independent generated sets per evaluation; "
                         "with more than 1, each metric is their mean and <metric>_std their "
                         "standard deviation.", lower_bound=1)
    flags.DEFINE_integer("eval_real_samples", 50000, "Real training images behind the "
                         "reference statistics (authors' protocol: all 50,000).")


def define_metrics_flag():
    """--metrics: which metrics each evaluation computes (default all)."""
    flags.DEFINE_list(
        "metrics", list(metric_keys.ALL),
        "Metrics to compute, comma-separated: fd (Fréchet distance: fid on Inception, "
        "fd_<name> on another network), score (is / score_<name>), kd (kid / kd_<name>), "
        "class_entropy (of the predicted classes), precision and recall (k = 3), density "
        "and coverage (k = 5), each named "
        "<metric>_<name> on a network other than Inception.")

    @flags.validator("metrics")
    def _known(names):
        try:
            metric_keys.check(names)
        except ValueError as e:
            raise flags.ValidationError(f"--metrics: {e}") from e
        return True
