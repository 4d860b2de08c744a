"""TF-GAN 2.1.0 on TensorFlow >= 2.16, which has no `tf.estimator`.

TF-GAN's only release subclasses three estimator classes when it is imported
(`tf.estimator.SessionRunHook` in `python/train.py`, `tf.estimator.Estimator` in the GAN
estimators, `tf.compat.v1.estimator.tpu.TPUEstimator`), and `tensorflow-estimator` itself
no longer imports. The evaluation metrics used here (`tfgan.eval`) are plain TF ops and
need none of it. So before importing TF-GAN this module installs a stand-in module as
`tf.estimator` and `tf.compat.v1.estimator` where they are missing (a real one is left
alone); the stand-in's classes can be subclassed but not instantiated.

The package imports TF-GAN only as `from sngan_tf.tfgan_compat import tfgan`.
(TF-GAN also needs setuptools on Python >= 3.12, for `distutils`, and tensorflow_hub
imports `pkg_resources`: hence `setuptools<81`.)
"""
import types
import warnings

import tensorflow as tf
# Importing tensorflow_hub (as TF-GAN does) imports this module, which then replaces the
# lazily loaded `tf.compat.v1`: import it first, so that the stand-in goes onto the
# `tf.compat.v1` TF-GAN will see.
import tensorflow.compat.v1 as _compat_v1  # pylint: disable=unused-import


class _Unavailable:
    """Base of every stand-in estimator class: subclassable, fails when instantiated."""

    def __init__(self, *args, **kwargs):
        del args, kwargs
        raise NotImplementedError(
            f"{type(self).__qualname__}: tf.estimator does not exist in TensorFlow "
            f"{tf.__version__}; sngan_tf.tfgan_compat only lets TF-GAN import.")


class EstimatorStandIn(types.ModuleType):
    """Stand-in for `tf.estimator`: a public CamelCase attribute is a placeholder class
    (made once), a lowercase one a nested stand-in (`tpu.TPUEstimator`)."""

    def __getattr__(self, name):
        if name.startswith("_"):  # keeps import machinery, pickling and mocks honest
            raise AttributeError(name)
        if name[0].isupper():
            value = type(name, (_Unavailable,), {"__module__": self.__name__})
        else:
            value = EstimatorStandIn(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value


def install_estimator_stand_in(tf_module=tf) -> list:
    """Sets `estimator` on `tf_module` and `tf_module.compat.v1` where it is missing.

    Args:
      tf_module: the `tensorflow` module (a parameter so tests can pass a fake).

    Returns:
      The modules that received the stand-in (empty when both already had one).
    """
    stand_in = EstimatorStandIn("tensorflow.estimator")
    patched = []
    for module in (tf_module, tf_module.compat.v1):
        if not hasattr(module, "estimator"):
            # On tf.compat.v1 (a lazy-loading wrapper) setattr reaches the wrapped module.
            setattr(module, "estimator", stand_in)
            patched.append(module)
    return patched


install_estimator_stand_in()

with warnings.catch_warnings():
    # tensorflow_hub (imported by TF-GAN) imports pkg_resources, whose import warns that it
    # is deprecated on every start: a note to tensorflow_hub's authors, not to our users.
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    import tensorflow_gan as tfgan  # pylint: disable=g-import-not-at-top,wrong-import-position

__all__ = ["tfgan", "install_estimator_stand_in", "EstimatorStandIn"]
