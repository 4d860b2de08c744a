"""Feature networks for GAN evaluation: TF-GAN's Inception, or any classifier SavedModel.

The metrics of `sngan_tf.eval` are pure functions of activations; this module holds the
other half (STYLE.md item 8), the network that computes them, loaded once per process and
called on float images in [-1, 1]:

* `load_inception`: TF-GAN's Inception (`tfgan.eval.INCEPTION_TFHUB`) from a local copy,
  the TF-Hub cache or the network; offline it fails within seconds, saying how to get it.
* `load_classifier`: any SavedModel with the same `{"pool_3", "logits"}` outputs (e.g. one
  exported by scripts/train_classifier.py), for machines without internet.
* `load_feature_network`: the one a binary's evaluation flags ask for.

A Fréchet distance measured with a network other than Inception is named `fd_<name>`,
never `fid`: its values are not comparable with published FIDs
(`FeatureNetwork.metric_name`).
"""
import hashlib
import os
import socket
import tempfile
import threading
import urllib.parse
import urllib.request

import numpy as np
import tensorflow as tf

from sngan_tf import metric_keys
from sngan_tf.tfgan_compat import tfgan

INCEPTION_HANDLE = tfgan.eval.INCEPTION_TFHUB
INCEPTION_NAME = "inception"
INCEPTION_DOWNLOAD_URL = INCEPTION_HANDLE + "?tf-hub-format=compressed"
POOL_KEY = tfgan.eval.INCEPTION_FINAL_POOL  # "pool_3"
LOGITS_KEY = tfgan.eval.INCEPTION_OUTPUT  # "logits"
_PROBE_TIMEOUT_S = 3.0


class FeatureNetworkUnavailable(RuntimeError):
    """The feature network (TF-GAN's Inception) can be neither found locally nor downloaded."""


def _unavailable_message(reason: str) -> str:
    cache_subdir = hashlib.sha1(INCEPTION_HANDLE.encode("utf8")).hexdigest()
    return (
        f"TF-GAN's Inception network is unavailable: {reason}\n"
        f"To get it, on a machine with network download\n"
        f"  {INCEPTION_DOWNLOAD_URL}\n"
        f"and unpack it (tar xzf) into a directory, then either pass "
        f"--inception_path DIR (load_inception(path=DIR)), or unpack it into "
        f"$TFHUB_CACHE_DIR/{cache_subdir} and set TFHUB_CACHE_DIR.\n"
        f"Offline alternative: --classifier_path DIR (e.g. a classifier exported by "
        f"scripts/train_classifier.py) gives the Fréchet distance of that network, "
        f"reported as fd_<name>, not as FID.")


class FeatureNetwork:
    """A loaded feature network: float images in [-1, 1] -> (pool features, logits).

    Attributes:
      name: network name ("inception" or the classifier directory's basename).
      metric_name: "fid" for Inception, "fd_<name>" for any other network.
      input_size: side length the images are resized to before the network.
      fingerprint: short hash of the SavedModel files (part of the statistics cache key).
      num_calls / num_images: how often the network ran (tests use it to see cache hits).
    """

    def __init__(self, module, name: str, input_size: int, is_inception: bool,
                 fingerprint: str = ""):
        self._module = module
        self._fn = _module_callable(module)
        self.name = name
        self.is_inception = is_inception
        self.metric_name = metric_keys.key(metric_keys.FRECHET, None if is_inception else name)
        self.input_size = int(input_size)
        self.fingerprint = fingerprint
        self.num_calls = 0
        self.num_images = 0
        # One trace for every batch size and input resolution. No autograph (no Python
        # control flow here): it reads the source from disk at the first call, often an
        # hour into a run, by when the file may have been edited.
        self._forward = tf.function(
            self._forward_impl,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
            autograph=False)

    def _forward_impl(self, images):
        # TF-GAN's Inception usage (examples/cifar/util.py): bilinear resize of [-1, 1]
        # images to 299x299; other networks get their own input size.
        size = self.input_size
        images = tf.image.resize(images, [size, size], method=tf.image.ResizeMethod.BILINEAR)
        outputs = self._fn(images)
        flat = lambda t: tf.reshape(tf.cast(t, tf.float32), [tf.shape(t)[0], -1])
        return flat(outputs[POOL_KEY]), flat(outputs[LOGITS_KEY])

    def __call__(self, images):
        """Runs the network on one batch.

        Args:
          images: [B, H, W, C] float images in [-1, 1] (uint8 in [0, 255] is converted),
            any H, W; C is 3 or 1 (tiled to RGB).

        Returns:
          (pool [B, D], logits [B, K]) as float32 numpy arrays.
        """
        images = np.asarray(images)
        if images.dtype == np.uint8:
            images = uint8_to_float(images)
        if images.ndim != 4:
            raise ValueError(f"expected NHWC images, got shape {images.shape}")
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        self.num_calls += 1
        self.num_images += images.shape[0]
        pool, logits = self._forward(tf.convert_to_tensor(images, tf.float32))
        return pool.numpy(), logits.numpy()


def uint8_to_float(images):
    """Maps uint8 images in [0, 255] to float32 in [-1, 1] (the generator's range)."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def _module_callable(module):
    """The loaded module's call: `module(x)` (TF2 SavedModel) or its serving signature."""
    if callable(module):
        return module
    signatures = getattr(module, "signatures", {})
    for key in ("serving_default", "default"):
        if key in signatures:
            sig = signatures[key]
            (arg_name,) = sig.structured_input_signature[1].keys()
            return lambda x: sig(**{arg_name: x})
    raise ValueError("the SavedModel is neither callable nor has a serving signature")


def _signature_input_size(module):
    """Input side length declared by the module's call/serving signature, or None."""
    specs = []
    signatures = getattr(module, "signatures", {})
    if "serving_default" in signatures:
        specs += list(signatures["serving_default"].structured_input_signature[1].values())
    call = getattr(module, "__call__", None)
    for concrete in getattr(call, "concrete_functions", []) or []:
        args, kwargs = concrete.structured_input_signature
        specs += [s for s in list(args) + list(kwargs.values()) if isinstance(s, tf.TensorSpec)]
    for spec in specs:
        shape = spec.shape
        if shape.rank == 4 and shape[1] is not None and shape[1] == shape[2]:
            return int(shape[1])
    return None


def _fingerprint(path: str) -> str:
    """Hash of saved_model.pb and the variables index (which holds tensor checksums)."""
    digest = hashlib.sha1()
    for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
        full = os.path.join(path, name)
        if tf.io.gfile.exists(full):
            with tf.io.gfile.GFile(full, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:10]


def _hub_cache_module_dir(handle: str) -> str:
    """Where tensorflow_hub caches `handle` (its compressed resolver's layout)."""
    cache_dir = os.environ.get("TFHUB_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "tfhub_modules")
    return os.path.join(cache_dir, hashlib.sha1(handle.encode("utf8")).hexdigest())


def _is_cached(module_dir: str) -> bool:
    return (os.path.isfile(os.path.join(module_dir, "saved_model.pb"))
            and not os.path.exists(module_dir + ".lock"))


def _probe(url: str, timeout: float = _PROBE_TIMEOUT_S):
    """Returns None if a TCP connection to url's host (or the https proxy) opens in time.

    Runs in a thread so that a hanging DNS lookup cannot block past the timeout either.

    Returns:
      None on success, otherwise a string describing the failure.
    """
    proxy = urllib.request.getproxies().get("https")
    parsed = urllib.parse.urlparse(proxy or url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    result = ["timed out after %.0f s" % timeout]

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result[0] = None
        except OSError as e:
            result[0] = f"{type(e).__name__}: {e}"

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return None if result[0] is None else f"cannot reach {host}:{port} ({result[0]})"


def load_inception(path: str | None = None, *,
                   input_size: int = tfgan.eval.INCEPTION_DEFAULT_IMAGE_SIZE) -> FeatureNetwork:
    """Loads TF-GAN's Inception (`pool_3` 2048-d, `logits` 1008-d) once.

    Args:
      path: a local TF-Hub module / SavedModel directory (the unpacked download). If None,
        the TF-Hub handle `tfgan.eval.INCEPTION_TFHUB` is used, from TFHUB_CACHE_DIR when
        cached, otherwise downloaded (needs network).
      input_size: resize target; 299 for the real network (tests pass a stand-in's size).

    Returns:
      A `FeatureNetwork` with metric_name "fid".

    Raises:
      FeatureNetworkUnavailable: within seconds if the module is neither local, cached,
        nor downloadable.
    """
    import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top

    if path:
        if not tf.io.gfile.isdir(path):
            raise FeatureNetworkUnavailable(_unavailable_message(f"{path} is not a directory."))
        module_dir = path
        module = hub.load(path)
    else:
        module_dir = _hub_cache_module_dir(INCEPTION_HANDLE)
        if not _is_cached(module_dir):
            # tensorflow_hub would retry and wait on locks; fail fast when offline.
            failure = _probe(INCEPTION_HANDLE)
            if failure:
                raise FeatureNetworkUnavailable(_unavailable_message(
                    f"not in the TF-Hub cache ({module_dir}) and {failure}."))
        try:
            module = hub.load(INCEPTION_HANDLE)
        except Exception as e:  # pylint: disable=broad-except
            raise FeatureNetworkUnavailable(_unavailable_message(
                f"tensorflow_hub failed: {type(e).__name__}: {e}")) from e
    return FeatureNetwork(module, INCEPTION_NAME, input_size, is_inception=True,
                          fingerprint=_fingerprint(module_dir))


def load_classifier(path: str, *, input_size: int | None = None) -> FeatureNetwork:
    """Loads another feature network: a SavedModel mapping images to {pool_3, logits}.

    Args:
      path: SavedModel directory; its basename names the network (and the metric,
        `fd_<name>`).
      input_size: resize target; by default the side length of the model's input signature.

    Returns:
      A `FeatureNetwork` whose metrics are named after the network, never "fid".
    """
    path = os.path.normpath(path)
    module = tf.saved_model.load(path)
    size = input_size or _signature_input_size(module)
    if size is None:
        raise ValueError(f"{path}: input signature has no fixed image size; pass input_size")
    return FeatureNetwork(module, os.path.basename(path), size, is_inception=False,
                          fingerprint=_fingerprint(path))


def load_feature_network(kind: str, inception_path: str | None = None,
                         classifier_path: str | None = None) -> FeatureNetwork:
    """The feature network a binary's evaluation flags ask for, loaded once.

    Args:
      kind: "inception" (TF-GAN's Inception, FID) or "classifier" (a SavedModel, fd_<name>).
      inception_path: local Inception module for "inception" (else TF-Hub).
      classifier_path: SavedModel directory for "classifier".

    Raises:
      FeatureNetworkUnavailable: the network cannot be loaded; the message names the flag.
    """
    if kind == "inception":
        return load_inception(inception_path)
    if kind != "classifier":
        raise ValueError(f"--eval_network={kind!r} is not one of inception, classifier")
    if not classifier_path:
        raise FeatureNetworkUnavailable("--eval_network=classifier needs --classifier_path")
    if not tf.io.gfile.exists(os.path.join(classifier_path, "saved_model.pb")):
        raise FeatureNetworkUnavailable(
            f"--classifier_path={classifier_path}: no such SavedModel folder")
    return load_classifier(classifier_path)
