r"""Trains a small CIFAR-10 CNN and exports it as an offline feature network for eval.

TF-GAN's Inception (the network behind FID and the Inception score) comes from TF-Hub,
which machines without internet cannot reach. This script trains a small classifier on
the real CIFAR-10 images instead and exports it as a SavedModel with the Inception
module's interface: float32 images in [-1, 1] of shape [None, 32, 32, 3] in,
{"pool_3": penultimate features [None, 256], "logits": [None, 10]} out. Loaded with
`sngan_tf.feature_networks.load_classifier`, it gives a Fréchet distance `fd_<name>` (and
a class score and kernel distance): useful for comparing runs offline, never comparable
with published FIDs.

  python scripts/train_classifier.py \
      --data_dir=../shared/data/cifar10_jpg.zip/cifar10 \
      --output_dir=classifiers/cifar10_classifier
"""
import json
import os
import pathlib
import shutil
import tempfile
import time
import zipfile

from absl import app, flags, logging
import keras
import numpy as np
import tensorflow as tf

from sngan_tf import data
from sngan_tf import eval as eval_lib
from sngan_tf import feature_networks

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", "../shared/data/cifar10_jpg.zip/cifar10",
                    "Folder (or .zip archive followed by a folder inside it) holding "
                    "train/<class>/*.jpg and test/<class>/*.jpg.")
flags.DEFINE_string("output_dir", "classifiers/cifar10_classifier",
                    "Where the SavedModel goes; its basename names the metric (fd_<name>).")
flags.DEFINE_integer("epochs", 6, "Training epochs.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_integer("seed", 0, "Random seed.")

IMAGE_SIZE = 32
FEATURE_DIM = 256
LEARNING_RATE = 2e-3


def folder_labels(split_dir):
    """Class index of every image of `split_dir`, in the sorted path order of load_images.

    Labels are the names of the class folders (`<split_dir>/<class>/NNNN.jpg`), numbered
    in sorted order.

    Args:
      split_dir: a folder, or a .zip archive followed by a folder inside it.

    Returns:
      (labels int32 [N], class names).
    """
    parts = pathlib.PurePath(split_dir).parts
    archives = [i for i in range(1, len(parts) + 1)
                if os.path.join(*parts[:i]).lower().endswith(".zip")]
    if os.path.isdir(split_dir) or not archives:
        root = pathlib.Path(split_dir)
        paths = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    else:
        archive, inner = os.path.join(*parts[:archives[0]]), "/".join(parts[archives[0]:])
        prefix = inner.strip("/") + "/"
        with zipfile.ZipFile(archive) as zf:
            paths = [n[len(prefix):] for n in zf.namelist()
                     if n.startswith(prefix) and not n.endswith("/")]
    paths = sorted(p for p in paths if p.lower().endswith(data.IMAGE_EXTENSIONS))
    classes = sorted({p.split("/")[0] for p in paths})
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[p.split("/")[0]] for p in paths], np.int32), classes


def load_split(data_dir, split):
    """uint8 images [N, 32, 32, 3] and int32 labels [N] of one split."""
    split_dir = f"{data_dir.rstrip('/')}/{split}"
    images = data.load_images("image_folder", data_dir=split_dir, image_size=IMAGE_SIZE,
                              split=split)
    labels, classes = folder_labels(split_dir)
    if len(labels) != len(images):
        raise ValueError(f"{split_dir}: {len(images)} images but {len(labels)} labels")
    return images, labels, classes


def build_classifier(num_classes):
    """A small VGG-style CNN.

    Returns:
      (classifier: images -> logits, for training;
       features_and_logits: images -> [pool_3 [B, 256], logits], sharing its layers).
    """
    def block(x, filters, convs):
        for _ in range(convs):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        return keras.layers.MaxPool2D()(x)

    images = keras.Input([IMAGE_SIZE, IMAGE_SIZE, 3])
    x = block(images, 32, 1)  # 16x16
    x = block(x, 64, 2)  # 8x8
    x = block(x, 128, 2)  # 4x4
    x = keras.layers.GlobalAveragePooling2D()(x)
    pool = keras.layers.Dense(FEATURE_DIM, activation="relu")(x)
    logits = keras.layers.Dense(num_classes)(keras.layers.Dropout(0.3)(pool))
    return (keras.Model(images, logits, name="classifier"),
            keras.Model(images, [pool, logits], name="features_and_logits"))


class _Exported(tf.Module):
    """The serving function: the Inception module's interface ({pool_3, logits}).

    A plain tf.Module around the Keras 3 model, so `tf.saved_model.load` alone reads the
    export (no Keras): callable, with the same `serving_default` signature.
    """

    def __init__(self, features_and_logits):
        super().__init__()
        self.model = features_and_logits

    @tf.function(input_signature=[
        tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name="images")])
    def __call__(self, images):
        pool, logits = self.model(images, training=False)
        return {feature_networks.POOL_KEY: pool, feature_networks.LOGITS_KEY: logits}


def export(features_and_logits, output_dir, summary):
    """Saves the SavedModel to a temporary sibling directory, then swaps it in."""
    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-")
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would survive the rename
    module = _Exported(features_and_logits)
    tf.saved_model.save(module, tmp, signatures={"serving_default": module.__call__})
    with open(os.path.join(tmp, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if os.path.exists(output_dir):
        shutil.rmtree(output_dir)
    os.replace(tmp, output_dir)


def train_dataset(images, labels, batch_size, seed):
    """Shuffled float batches in [-1, 1] with random horizontal flips."""
    def prepare(x, y):
        x = tf.image.random_flip_left_right(tf.cast(x, tf.float32) / 127.5 - 1.0, seed=seed)
        return x, y
    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=True)
            .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def main(argv):
    del argv
    keras.utils.set_random_seed(FLAGS.seed)
    start = time.perf_counter()
    train_x, train_y, classes = load_split(FLAGS.data_dir, "train")
    test_x, test_y, test_classes = load_split(FLAGS.data_dir, "test")
    if test_classes != classes:
        raise ValueError(f"train classes {classes} != test classes {test_classes}")
    logging.info("Loaded %d train / %d test images in %.0f s.", len(train_x), len(test_x),
                 time.perf_counter() - start)

    classifier, features_and_logits = build_classifier(len(classes))
    steps = FLAGS.epochs * (len(train_x) // FLAGS.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)
    classifier.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    train_start = time.perf_counter()
    classifier.fit(train_dataset(train_x, train_y, FLAGS.batch_size, FLAGS.seed),
                   epochs=FLAGS.epochs, verbose=2)
    train_seconds = time.perf_counter() - train_start

    summary = {"classes": classes, "epochs": FLAGS.epochs, "batch_size": FLAGS.batch_size,
               "train_seconds": round(train_seconds, 1),
               "parameters": int(classifier.count_params())}
    export(features_and_logits, FLAGS.output_dir, summary)

    # Test accuracy of the exported model, loaded the way evaluation loads it.
    net = feature_networks.load_classifier(FLAGS.output_dir)
    eval_start = time.perf_counter()
    batches = (test_x[i:i + 500] for i in range(0, len(test_x), 500))
    _, logits = eval_lib.compute_activations(net, batches)
    eval_seconds = time.perf_counter() - eval_start
    accuracy = float(np.mean(np.argmax(logits, axis=1) == test_y))
    summary.update(test_accuracy=round(accuracy, 4),
                   activation_seconds_per_10k=round(eval_seconds * 1e4 / len(test_x), 1))
    with open(os.path.join(FLAGS.output_dir, "training_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"test accuracy {accuracy:.4f} on {len(test_x)} images; training "
          f"{train_seconds:.0f} s for {FLAGS.epochs} epochs; activations "
          f"{summary['activation_seconds_per_10k']} s per 10,000 images; "
          f"exported {net.metric_name} network to {FLAGS.output_dir}")


if __name__ == "__main__":
    app.run(main)
