"""Test setup: quiet TensorFlow and two logical CPU devices for the tf.distribute tests.

The logical devices must be configured before TensorFlow initialises its runtime, so it
happens here, before any test module runs an op.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # pylint: disable=g-import-not-at-top

tf.get_logger().setLevel("ERROR")
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


_MIRRORED = []


def read_scalars(logdir, tag):
    """{step: value} of a scalar tag over every event file of `logdir` (sngan_tf.rundir)."""
    from sngan_tf import rundir  # pylint: disable=g-import-not-at-top
    steps, values = rundir.RunDir(logdir).read_events().scalars.get(tag, ((), ()))
    return {int(s): float(v) for s, v in zip(steps, values)}


def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs, shared by every test: a second
    instance in the same process restarts the collective keys and its all-reduces can
    pair with the first one's (tensorflow/tensorflow#62790)."""
    if not _MIRRORED:
        _MIRRORED.append(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    return _MIRRORED[0]


def pytest_collection_modifyitems(config, items):
    """Drops tf.test.TestCase's inherited `test_session`, a context manager that pytest
    would otherwise report as a skipped test in every class."""
    del config
    items[:] = [item for item in items if item.name != "test_session"]
