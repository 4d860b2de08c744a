"""Training images for SN-GAN (Miyato et al., "Spectral Normalization for GANs", ICLR 2018).

Two halves:

* `load_images` turns a source into one uint8 NHWC RGB array: TFDS `cifar10` (32x32),
  TFDS `stl10` (the 100k unlabelled images, 96x96 averaged down to 48x48 as in the paper),
  or `image_folder`, any folder or `.zip` archive of PNG/JPEG files (shorter side resized
  to `image_size`, then centre-cropped; read by `sngan_tf.image_folder`). Decoded arrays
  can be cached as `.npy`.
* `make_dataset` turns that array into an infinite stream of float32 batches in [-1, 1]
  whose order is a pure function of (seed, batch index), so a run restarted from a
  checkpoint at step k reads exactly the batches it would have read without the crash.

The machines this project runs on have no internet, so the TFDS path checks that the data
is prepared (and, failing that, that the download host is reachable) before TFDS starts
its minutes-long download retries, and fails within seconds with what to do instead.
"""
import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import threading
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from sngan_tf import image_folder
# Defined in image_folder (the lower layer, which raises DataError too) and re-exported:
# callers write data.DataError and data.IMAGE_EXTENSIONS.
from sngan_tf.image_folder import (  # pylint: disable=unused-import
    IMAGE_EXTENSIONS, SHARED_ZIP_EXAMPLE, DataError)

DATASETS = ("cifar10", "stl10", "image_folder")

# Bump when decoding changes (resampling, colour conversion in sngan_tf.image_folder) so
# old caches are ignored.
_CACHE_VERSION = 1
_PROBE_TIMEOUT_S = 3.0

@dataclasses.dataclass(frozen=True)
class _TfdsSource:
    """A TFDS data set: its stored and training resolutions and where it downloads from."""

    name: str
    stored_size: int
    image_size: int
    host: str
    port: int
    splits: Dict[str, str] = dataclasses.field(default_factory=dict)


_TFDS_SOURCES = {
    "cifar10": _TfdsSource("cifar10", 32, 32, "www.cs.toronto.edu", 443),
    # The paper trains on the 100k unlabelled STL-10 images downsampled to 48x48.
    "stl10": _TfdsSource("stl10", 96, 48, "ai.stanford.edu", 80, {"train": "unlabelled"}),
}


def load_images(dataset: str, *, data_dir: Optional[str] = None,
                tfds_data_dir: Optional[str] = None, image_size: Optional[int] = None,
                split: str = "train", cache_dir: Optional[str] = None) -> np.ndarray:
    """All images of a source as one uint8 RGB array.

    Args:
      dataset: "cifar10", "stl10" (TFDS) or "image_folder".
      data_dir: for "image_folder": a folder searched recursively for .png/.jpg/.jpeg
        files, or a `.zip` archive optionally followed by a folder inside it
        (`data.zip/cifar10/train`). Files are read in sorted path order.
      tfds_data_dir: TFDS data directory (TFDS's default when None).
      image_size: output side S. Required for "image_folder"; must be None or the
        data set's own size (32 for cifar10, 48 for stl10) otherwise.
      split: TFDS split ("train" means the unlabelled split for stl10). "image_folder"
        only uses it in its cache key.
      cache_dir: if given, the decoded array is stored there as `.npy`, keyed by the
        source (paths, sizes, mtimes or CRCs), image_size and split, and reused.

    Returns:
      uint8 array of shape (N, S, S, 3).

    Raises:
      DataError: unknown dataset, missing or empty source, unreadable image, or a TFDS
        data set that is not prepared on a machine without network.
    """
    if dataset == "image_folder":
        if image_size is None:
            raise DataError("--dataset=image_folder needs --image_size (the side, in pixels, "
                            "images are resized and centre-cropped to)")
        if image_size <= 0:
            raise DataError(f"--image_size must be positive, got {image_size}")
        source = image_folder.open_folder_source(data_dir)
        with source:
            key = dict(source.key, image_size=image_size, split=split)
            return _cached(cache_dir, f"image_folder_{image_size}", key,
                           lambda: image_folder.decode_all(source, image_size))
    if dataset in _TFDS_SOURCES:
        spec = _TFDS_SOURCES[dataset]
        if image_size not in (None, spec.image_size):
            raise DataError(f"--dataset={dataset} gives {spec.image_size}x{spec.image_size} "
                            f"images; got --image_size={image_size} (use {spec.image_size}, "
                            "or --dataset=image_folder to resize freely)")
        return _load_tfds(spec, split, tfds_data_dir, cache_dir)
    raise DataError(f"--dataset={dataset!r} is not one of {', '.join(DATASETS)}")


def num_batches_per_epoch(num_images: int, batch_size: int) -> int:
    """Whole batches in one pass over the data; the remainder of each epoch is dropped.

    Args:
      num_images: N, images in the data set.
      batch_size: B.

    Returns:
      N // B.

    Raises:
      DataError: B is not positive or larger than N.
    """
    if batch_size <= 0:
        raise DataError(f"--batch_size must be positive, got {batch_size}")
    if num_images // batch_size == 0:
        raise DataError(f"--batch_size={batch_size} is larger than the data set "
                        f"({num_images} images): not one whole batch per epoch")
    return num_images // batch_size


def make_dataset(images: np.ndarray, batch_size: int, seed: int, start_batch: int = 0,
                 input_context: Optional[tf.distribute.InputContext] = None
                 ) -> tf.data.Dataset:
    """Infinite dataset of float32 batches (B, S, S, 3) in [-1, 1], in an order fixed by seed.

    Epoch e visits the images in the order of
    `stateless_shuffle(range(N), seed=[seed, e], alg="philox")`, cut into N // B batches
    (the last N % B images of that order are skipped). Batch k of the stream is batch
    k % (N // B) of epoch k // (N // B), whatever `start_batch` was, so resuming a run at
    step k with `start_batch=k` reproduces the uninterrupted run exactly.

    Args:
      images: uint8 array (N, S, S, 3), e.g. from `load_images`. Copied once into a
        CPU tensor; batches are gathered from it, never held as float32 in full.
      batch_size: B.
      seed: shuffling seed.
      start_batch: index of the first batch to yield; earlier batches are not computed.
      input_context: given by `strategy.distribute_datasets_from_function`: this input
        pipeline (worker) p of P yields, for each global batch, the slices of its R/P
        replicas p·R/P ... (p+1)·R/P - 1, each B/R images, in replica order (the strategy
        hands them round-robin to its local replicas, whose global ids follow the same
        order). The R replicas together see exactly the global batch above, whatever the
        number of workers; only the slices' images are gathered.

    Returns:
      A `tf.data.Dataset` of float32 tensors with the static shape (B, S, S, 3), or
      (B/R, S, S, 3) with an `input_context`.
    """
    images = _checked_images(images, start_batch)
    per_epoch = num_batches_per_epoch(images.shape[0], batch_size)
    columns, per_replica = _pipeline_columns(batch_size, input_context)
    shape = (per_replica,) + images.shape[1:]
    with tf.device("/cpu:0"):
        # tf.identity keeps one copy of the data; tf.constant(numpy) was measured to keep two.
        pixels = tf.identity(images)

    def to_float(indices):
        batch = tf.cast(tf.gather(pixels, indices), tf.float32) / 127.5 - 1.0
        return tf.ensure_shape(batch, shape)

    ds = _index_batches(images.shape[0], per_epoch, batch_size, seed, start_batch, columns,
                        per_replica)
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # tf.data's default graph rewrites serialise the captured pixel tensor, which would keep
    # a second copy of the whole data set alive for as long as the iterator.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def _checked_images(images, start_batch: int) -> np.ndarray:
    """`images` as a numpy array; DataError unless uint8 (N, S, S, 3) and start_batch >= 0."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DataError(f"images must be a uint8 array (N, S, S, 3), got {images.dtype} "
                        f"{images.shape}")
    if start_batch < 0:
        raise DataError(f"start_batch must be >= 0, got {start_batch}")
    return images


def _pipeline_columns(batch_size: int, input_context: Optional[tf.distribute.InputContext]
                      ) -> Tuple[slice, int]:
    """(this input pipeline's columns of each global batch, images per replica)."""
    if input_context is None:
        return slice(0, batch_size), batch_size  # one pipeline, one replica
    per_replica = input_context.get_per_replica_batch_size(batch_size)
    local = input_context.num_replicas_in_sync // input_context.num_input_pipelines
    first = input_context.input_pipeline_id * local * per_replica
    return slice(first, first + local * per_replica), per_replica


def _index_batches(num_images: int, per_epoch: int, batch_size: int, seed: int,
                   start_batch: int, columns: slice, per_replica: int) -> tf.data.Dataset:
    """Image indices of this pipeline's batches (rows), from global batch `start_batch` on."""
    start_epoch, start_offset = divmod(start_batch, per_epoch)

    def epoch_batches(epoch):
        order = epoch_permutation(num_images, seed, epoch)
        batches = tf.reshape(order[:per_epoch * batch_size], (per_epoch, batch_size))
        first = tf.where(tf.equal(epoch, start_epoch), tf.constant(start_offset, tf.int64),
                         tf.constant(0, tf.int64))
        mine = batches[first:, columns]  # this pipeline's part of each global batch
        return tf.data.Dataset.from_tensor_slices(tf.reshape(mine, (-1, per_replica)))

    return tf.data.Dataset.range(start_epoch, np.iinfo(np.int64).max).flat_map(epoch_batches)


def epoch_permutation(num_images: int, seed: int, epoch) -> tf.Tensor:
    """The order in which epoch `epoch` visits the images: a pure function of (seed, epoch).

    Args:
      num_images: N.
      seed: the run's data seed.
      epoch: epoch index (int or int64 scalar tensor).

    Returns:
      int64 tensor (N,), a permutation of range(N).
    """
    # Philox pinned: the default algorithm is chosen per device, so the order could differ.
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(
        tf.range(num_images, dtype=tf.int64), seed=key, alg="philox")


# ----------------------------------------------------------------------------------------
# TFDS.


@contextlib.contextmanager
def _gcs_disabled():
    """Stops TFDS looking up dataset metadata on GCS, which hangs for a while offline."""
    from tensorflow_datasets.core.utils import gcs_utils  # pylint: disable=g-import-not-at-top
    previous = getattr(gcs_utils, "_is_gcs_disabled", False)
    gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access
    try:
        yield
    finally:
        gcs_utils._is_gcs_disabled = previous  # pylint: disable=protected-access


def _reachable(host: str, port: int, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to host:port opens within `timeout` (DNS included)."""
    result = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)  # create_connection's timeout does not cover DNS.
    return bool(result)


def _load_tfds(spec: _TfdsSource, split: str, tfds_data_dir: Optional[str],
               cache_dir: Optional[str]) -> np.ndarray:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    tfds_split = spec.splits.get(split, split)
    with _gcs_disabled():
        builder = tfds.builder(spec.name, data_dir=tfds_data_dir)
    if not builder.is_prepared():
        if not _reachable(spec.host, spec.port):
            raise DataError(
                f"TFDS data set '{spec.name}' is not prepared in {builder.data_dir} and "
                f"there is no network ({spec.host} is unreachable). Either prepare it on a "
                f"machine with network (`tfds build {spec.name} --data_dir=DIR`), copy DIR "
                f"here and pass --tfds_data_dir=DIR, or read image files instead: "
                f"--dataset=image_folder --data_dir=<folder or .zip> --image_size=N, e.g. "
                f"--data_dir={SHARED_ZIP_EXAMPLE} --image_size=32")
        builder.download_and_prepare()
    if tfds_split not in builder.info.splits:
        raise DataError(f"{spec.name} has no split '{tfds_split}' (from split={split!r}); "
                        f"it has {', '.join(sorted(builder.info.splits))}")
    key = {"kind": "tfds", "name": spec.name, "version": str(builder.version),
           "path": os.path.realpath(builder.data_dir), "split": tfds_split,
           "image_size": spec.image_size}
    return _cached(cache_dir, f"{spec.name}_{tfds_split}_{spec.image_size}", key,
                   lambda: _read_tfds(builder, spec, tfds_split))


def _read_tfds(builder, spec: _TfdsSource, split: str) -> np.ndarray:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    count = builder.info.splits[split].num_examples
    out = np.empty((count, spec.image_size, spec.image_size, 3), np.uint8)
    ds = builder.as_dataset(split=split, batch_size=1000, shuffle_files=False)
    filled = 0
    for batch in tfds.as_numpy(ds):
        images = _downsample(batch["image"], spec.stored_size // spec.image_size)
        out[filled:filled + len(images)] = images
        filled += len(images)
    if filled != count:
        raise DataError(f"{spec.name} split {split} in {builder.data_dir}: expected {count} "
                        f"images, read {filled}")
    return out


def _downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Averages factor x factor blocks (area resize by an integer factor), rounding."""
    if factor == 1:
        return images
    n, h, w, c = images.shape
    blocks = images.reshape(n, h // factor, factor, w // factor, factor, c)
    total = blocks.sum(axis=(2, 4), dtype=np.uint32)
    return ((total + factor * factor // 2) // (factor * factor)).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# Cache.


def _cached(cache_dir: Optional[str], tag: str, key: dict,
            build: Callable[[], np.ndarray]) -> np.ndarray:
    """`build()`, stored as `<cache_dir>/<tag>-<hash of key>.npy` and reused when present."""
    if not cache_dir:
        return build()
    blob = json.dumps(dict(key, cache_version=_CACHE_VERSION), sort_keys=True).encode()
    path = os.path.join(cache_dir, f"{tag}-{hashlib.sha256(blob).hexdigest()[:20]}.npy")
    if os.path.exists(path):
        try:
            images = np.load(path)
            logging.info("Loaded %s images from the cache %s.", images.shape, path)
            return images
        except (OSError, ValueError) as e:
            logging.warning("Ignoring unreadable cache %s: %s", path, e)
    images = build()
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{tag}-", suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, images)
        os.replace(tmp, path)  # Atomic: a crash never leaves a half-written cache.
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return images
