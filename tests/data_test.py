"""Tests of image loading (folders, zips, TFDS offline), the decode cache and the batch stream."""
import concurrent.futures
import io
import os
import pathlib
import posixpath
import shutil
import struct
import tempfile
import time
import types
import zipfile
from unittest import mock

import numpy as np
import tensorflow as tf
from absl.testing import parameterized
from PIL import Image

from sngan_tf import data
from sngan_tf import image_folder

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_ZIP = _REPO / ".." / "shared" / "data" / "cifar10_jpg.zip"

_RED = (200, 30, 90)


class _TempDirMixin:
    """A fresh temporary directory per call, removed after the test (absl's
    `create_tempdir` needs parsed flags, which pytest does not provide)."""

    def _new_temp_dir(self):
        path = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path


def _thirds(width, height, vertical=False):
    """An image whose outer thirds (along its long side) are black and middle third white."""
    pixels = np.zeros((height, width, 3), np.uint8)
    if vertical:
        pixels[height // 3:2 * height // 3] = 255
    else:
        pixels[:, width // 3:2 * width // 3] = 255
    return Image.fromarray(pixels)


def _noise(height, width, seed, mode="RGB"):
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def _write_mixed_folder(root):
    """Images of every supported kind; returns {relative path: source image}."""
    palette = _noise(8, 8, seed=3).quantize(colors=16)
    images = {
        "a/red.png": Image.new("RGB", (20, 12), _RED),         # solid, resized 12 -> 8
        "a/thirds.png": _thirds(24, 8),                         # 3:1, centre crop only
        "b/deep/grey.PNG": _noise(8, 8, seed=1, mode="L"),     # grey, upper-case extension
        "b/rgba.png": _noise(8, 8, seed=2, mode="RGBA"),
        "b/palette.png": palette,
        "c/photo.JPG": _noise(16, 16, seed=4),                  # JPEG, resized 16 -> 8
        "c/grey.jpeg": _noise(8, 8, seed=5, mode="L"),
    }
    for rel, img in images.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        img.save(path, format="JPEG" if rel.lower().endswith((".jpg", ".jpeg")) else "PNG")
    with open(os.path.join(root, "a", "notes.txt"), "w") as f:
        f.write("not an image")
    return images


def _zip_folder(folder, archive, prefix=""):
    """Zips `folder` with member names under `prefix`, directory entries included."""
    with zipfile.ZipFile(archive, "w") as zf:
        for dirpath, _, filenames in os.walk(folder):
            rel_dir = os.path.relpath(dirpath, folder)
            arc_dir = posixpath.normpath(posixpath.join(prefix, rel_dir.replace(os.sep, "/")))
            if arc_dir != ".":
                zf.writestr(arc_dir + "/", "")
            for name in filenames:
                member = name if arc_dir == "." else f"{arc_dir}/{name}"
                zf.write(os.path.join(dirpath, name), member)


class ImageFolderTest(_TempDirMixin, tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self._new_temp_dir()
        self.folder = os.path.join(self.root, "images")
        self.sources = _write_mixed_folder(self.folder)
        # The documented order: sorted relative paths.
        self.order = sorted(self.sources)

    def _image(self, images, rel):
        return images[self.order.index(rel)]

    def test_shapes_colours_and_modes(self):
        images = data.load_images("image_folder", data_dir=self.folder, image_size=8)
        self.assertEqual(images.shape, (len(self.sources), 8, 8, 3))
        self.assertEqual(images.dtype, np.uint8)
        self.assertAllEqual(self._image(images, "a/red.png"), np.broadcast_to(_RED, (8, 8, 3)))
        self.assertAllEqual(self._image(images, "a/thirds.png"), np.full((8, 8, 3), 255))
        grey = self._image(images, "b/deep/grey.PNG")
        self.assertAllEqual(grey, np.repeat(np.asarray(self.sources["b/deep/grey.PNG"])[..., None],
                                            3, axis=-1))
        rgba = np.asarray(self.sources["b/rgba.png"])
        self.assertAllEqual(self._image(images, "b/rgba.png"), rgba[..., :3])
        palette = np.asarray(self.sources["b/palette.png"].convert("RGB"))
        self.assertAllEqual(self._image(images, "b/palette.png"), palette)
        jpeg_grey = self._image(images, "c/grey.jpeg")
        self.assertAllEqual(jpeg_grey[..., 0], jpeg_grey[..., 1])
        self.assertAllEqual(jpeg_grey[..., 0], jpeg_grey[..., 2])
        # JPEG is lossy: compare with the file as decoded by PIL and area-resized 16 -> 8.
        with Image.open(os.path.join(self.folder, "c/photo.JPG")) as photo:
            expected = np.asarray(photo.convert("RGB").resize((8, 8), Image.Resampling.BOX))
        self.assertAllEqual(self._image(images, "c/photo.JPG"), expected)

    @parameterized.named_parameters(("wide", False), ("tall", True))
    def test_centre_crop_after_resize(self, vertical):
        folder = os.path.join(self.root, "crop")
        os.makedirs(folder)
        size = (16, 48) if vertical else (48, 16)
        _thirds(*size, vertical=vertical).save(os.path.join(folder, "x.png"))
        images = data.load_images("image_folder", data_dir=folder, image_size=8)
        self.assertAllEqual(images, np.full((1, 8, 8, 3), 255))

    def test_zip_matches_folder(self):
        expected = data.load_images("image_folder", data_dir=self.folder, image_size=8)
        flat = os.path.join(self.root, "flat.zip")
        _zip_folder(self.folder, flat)
        nested = os.path.join(self.root, "nested.zip")
        _zip_folder(self.folder, nested, prefix="inner/dir")
        # A sibling folder whose name extends the prefix must not be included.
        with zipfile.ZipFile(nested, "a") as zf:
            zf.writestr("inner/dir2/extra.png", b"not read")
        self.assertAllEqual(data.load_images("image_folder", data_dir=flat, image_size=8), expected)
        for inner in ("inner/dir", "inner/dir/"):
            got = data.load_images("image_folder", data_dir=os.path.join(nested, inner),
                                   image_size=8)
            self.assertAllEqual(got, expected)
        sub = data.load_images("image_folder", data_dir=os.path.join(nested, "inner/dir/b"),
                               image_size=8)
        self.assertAllEqual(sub, expected[[self.order.index(r) for r in self.order
                                           if r.startswith("b/")]])

    def test_decoding_is_parallel_safe_and_ordered(self):
        # Enough files for several thread-pool chunks; file i is solid grey i.
        folder = os.path.join(self.root, "many")
        os.makedirs(folder)
        for i in range(600):
            Image.new("L", (2, 2), i % 256).save(os.path.join(folder, f"{i:04d}.png"))
        images = data.load_images("image_folder", data_dir=folder, image_size=2)
        self.assertAllEqual(images[:, 0, 0, 0], np.arange(600) % 256)


class ZipThreadsTest(_TempDirMixin, tf.test.TestCase):
    """Many threads reading one archive get the bytes a single thread reads.

    With one ZipFile shared by the threads, Python 3.12 and 3.13.0 fail this ("Bad CRC-32"
    on an intact archive) for members with a local extra field, as Info-ZIP's `zip` writes.
    """

    N = 2000

    def setUp(self):
        super().setUp()
        self.archive = os.path.join(self._new_temp_dir(), "many.zip")
        # Member i: a 2x2 PNG of one colour, a function of i and different for every i.
        self.colours = [(i % 256, i // 256, 7 * i % 256) for i in range(self.N)]
        with zipfile.ZipFile(self.archive, "w") as zf:
            for i, colour in enumerate(self.colours):
                png = io.BytesIO()
                Image.new("RGB", (2, 2), colour).save(png, format="PNG")
                info = zipfile.ZipInfo(f"d/{i:04d}.png", date_time=(2020, 1, 1, 0, 0, 0))
                # Info-ZIP's extended timestamp field, as in the shared CIFAR-10 zip.
                info.extra = struct.pack("<HHBL", 0x5455, 5, 1, 1577836800)
                zf.writestr(info, png.getvalue())
        with zipfile.ZipFile(self.archive) as zf:
            self.expected = [zf.read(name) for name in sorted(zf.namelist())]

    def _track_zipfiles(self):
        """Patches data's ZipFile so the test sees every handle it opens."""
        opened, real_zipfile = [], zipfile.ZipFile

        def open_zip(*args, **kwargs):
            opened.append(real_zipfile(*args, **kwargs))
            return opened[-1]

        patcher = mock.patch.object(image_folder.zipfile, "ZipFile", side_effect=open_zip)
        patcher.start()
        self.addCleanup(patcher.stop)
        return opened

    def test_bytes_from_8_threads_equal_a_sequential_read(self):
        opened = self._track_zipfiles()
        with image_folder.open_folder_source(self.archive) as source:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                got = list(pool.map(source.read, range(self.N)))
        self.assertEqual(got, self.expected)
        self.assertBetween(len(opened), 2, 9)  # The listing's handle, then one per thread.
        self.assertTrue(all(zf.fp is None for zf in opened), "a ZipFile was left open")

    def test_decoding_with_8_threads_equals_a_sequential_read(self):
        opened = self._track_zipfiles()
        # 8 decoding threads (2 per CPU, at most 8) and many small chunks.
        with mock.patch.object(image_folder, "_num_cpus", return_value=4), \
                mock.patch.object(image_folder, "_DECODE_CHUNK", 16):
            images = data.load_images("image_folder", data_dir=self.archive, image_size=2)
        self.assertAllEqual(images, np.broadcast_to(
            np.array(self.colours, np.uint8)[:, None, None, :], (self.N, 2, 2, 3)))
        self.assertTrue(all(zf.fp is None for zf in opened), "a ZipFile was left open")


class ErrorTest(_TempDirMixin, tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self._new_temp_dir()

    def _assert_error(self, pattern, **kwargs):
        kwargs.setdefault("dataset", "image_folder")
        kwargs.setdefault("image_size", 8)
        with self.assertRaisesRegex(data.DataError, pattern):
            data.load_images(**kwargs)

    def test_missing_and_empty_sources(self):
        missing = os.path.join(self.root, "nope")
        self._assert_error("--data_dir=.*nope.* does not exist", data_dir=missing)
        self._assert_error("needs --data_dir", data_dir=None)
        empty = os.path.join(self.root, "empty")
        os.makedirs(empty)
        self._assert_error(r"no images in folder .*empty.*\.png, \.jpg, \.jpeg", data_dir=empty)
        with open(os.path.join(empty, "readme.txt"), "w") as f:
            f.write("hello")
        self._assert_error(r"no images in folder .*empty", data_dir=empty)

    def test_zip_errors(self):
        archive = os.path.join(self.root, "a.zip")
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("x/readme.txt", "hello")
            zf.writestr("y/one.png", b"")
        self._assert_error(r"a\.zip has no members under 'z/'", data_dir=archive + "/z")
        self._assert_error(r"no images in zip archive .*a\.zip/x", data_dir=archive + "/x")
        self._assert_error(r"cannot read image .*a\.zip:y/one\.png", data_dir=archive + "/y")

    def test_truncated_jpeg_names_the_file(self):
        folder = os.path.join(self.root, "jpegs")
        os.makedirs(folder)
        _noise(32, 32, seed=0).save(os.path.join(folder, "good.jpg"))
        _noise(32, 32, seed=1).save(os.path.join(folder, "broken.jpg"))
        path = os.path.join(folder, "broken.jpg")
        with open(path, "rb") as f:
            head = f.read()[:600]
        with open(path, "wb") as f:
            f.write(head)
        self._assert_error(r"cannot read image .*broken\.jpg", data_dir=folder)

    def test_bad_flags(self):
        folder = os.path.join(self.root, "ok")
        os.makedirs(folder)
        Image.new("RGB", (4, 4)).save(os.path.join(folder, "a.png"))
        self._assert_error("needs --image_size", data_dir=folder, image_size=None)
        self._assert_error(r"--dataset='mnist' is not one of cifar10, stl10, image_folder",
                           dataset="mnist")
        self._assert_error("--image_size=64", dataset="cifar10", image_size=64)
        self._assert_error("--image_size=32", dataset="stl10", image_size=32)


class _FakeBuilder:
    """The part of a prepared `tfds.core.DatasetBuilder` that `load_images` uses."""

    def __init__(self, split, images, data_dir):
        self.split = split
        self.images = images
        self.data_dir = data_dir
        self.version = "1.0.0"
        self.info = types.SimpleNamespace(
            splits={split: types.SimpleNamespace(num_examples=len(images))})

    def is_prepared(self):
        return True

    def as_dataset(self, split, batch_size, shuffle_files):
        assert split == self.split and not shuffle_files, (split, shuffle_files)
        labels = np.zeros(len(self.images), np.int64)
        return tf.data.Dataset.from_tensor_slices(
            {"image": self.images, "label": labels}).batch(batch_size)


class TfdsTest(_TempDirMixin, tf.test.TestCase):

    def _assert_offline_failure(self, dataset):
        tfds_dir = self._new_temp_dir()
        start = time.monotonic()
        with self.assertRaises(data.DataError) as caught:
            data.load_images(dataset, tfds_data_dir=tfds_dir)
        self.assertLess(time.monotonic() - start, 30)
        message = str(caught.exception)
        self.assertIn(f"'{dataset}' is not prepared in {tfds_dir}", message)
        self.assertIn("--tfds_data_dir", message)
        self.assertIn("--dataset=image_folder", message)
        self.assertIn("cifar10_jpg.zip", message)

    def test_not_prepared_offline_fails_fast(self):
        if data._reachable("www.cs.toronto.edu", 443):  # pylint: disable=protected-access
            self.skipTest("the CIFAR-10 host is reachable; this test needs an offline machine")
        self._assert_offline_failure("cifar10")

    def test_unreachable_host_fails_fast(self):
        with mock.patch.object(data, "_reachable", return_value=False) as probe:
            self._assert_offline_failure("stl10")
        probe.assert_called_once_with("ai.stanford.edu", 80)

    def _load_fake(self, dataset, tfds_split, images, **kwargs):
        builder = _FakeBuilder(tfds_split, images, self._new_temp_dir())
        with mock.patch("tensorflow_datasets.builder", return_value=builder) as make:
            got = data.load_images(dataset, **kwargs)
        self.assertEqual(make.call_args.args, (dataset,))
        return got

    def test_stl10_reads_unlabelled_and_halves_by_area(self):
        images = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), np.uint8)
        got = self._load_fake("stl10", "unlabelled", images)
        self.assertEqual(got.shape, (3, 48, 48, 3))
        self.assertEqual(got.dtype, np.uint8)
        area = tf.image.resize(images, (48, 48), method="area").numpy()
        self.assertAllClose(got, area, atol=0.5 + 1e-4)

    def test_cifar10_split_passes_through(self):
        images = np.random.default_rng(1).integers(0, 256, (1001, 32, 32, 3), np.uint8)
        self.assertAllEqual(self._load_fake("cifar10", "test", images, split="test"), images)
        with self.assertRaisesRegex(data.DataError, "cifar10 has no split 'validation'"):
            self._load_fake("cifar10", "test", images, split="validation")


class CacheTest(_TempDirMixin, tf.test.TestCase):

    def setUp(self):
        super().setUp()
        root = self._new_temp_dir()
        self.folder = os.path.join(root, "images")
        self.cache = os.path.join(root, "cache")
        os.makedirs(self.folder)
        for i in range(3):
            _noise(8, 8, seed=i).save(os.path.join(self.folder, f"{i}.png"))

    def _load(self, image_size=8):
        return data.load_images("image_folder", data_dir=self.folder, image_size=image_size,
                                cache_dir=self.cache)

    def test_second_load_does_not_decode(self):
        first = self._load()
        self.assertLen([f for f in os.listdir(self.cache) if f.endswith(".npy")], 1)
        with mock.patch.object(image_folder, "_decode_image",
                               side_effect=AssertionError("decoded")):
            second = self._load()
            with self.assertRaisesRegex(AssertionError, "decoded"):
                self._load(image_size=4)  # A different size is a different cache entry.
        self.assertAllEqual(first, second)
        self.assertEqual(first.shape, (3, 8, 8, 3))
        self.assertEmpty([f for f in os.listdir(self.cache) if f.endswith(".tmp")])

    def test_changed_folder_invalidates(self):
        self._load()
        _noise(8, 8, seed=9).save(os.path.join(self.folder, "3.png"))
        with mock.patch.object(image_folder, "_decode_image",
                               side_effect=AssertionError("decoded")):
            with self.assertRaisesRegex(AssertionError, "decoded"):
                self._load()
        self.assertEqual(self._load().shape, (4, 8, 8, 3))
        # Rewritten content under the same name is picked up (size and mtime are keyed).
        path = os.path.join(self.folder, "0.png")
        stat = os.stat(path)
        _noise(8, 8, seed=10).save(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        self.assertAllEqual(self._load()[0], np.asarray(_noise(8, 8, seed=10)))


class MakeDatasetTest(tf.test.TestCase):

    N, S = 10, 2

    def setUp(self):
        super().setUp()
        i, h, w, c = np.meshgrid(np.arange(self.N), np.arange(self.S), np.arange(self.S),
                                 np.arange(3), indexing="ij")
        # Pixel (0, 0, 0) of image i is 7i, so a batch tells which images it holds.
        self.images = ((i * 7 + h * 3 + w * 5 + c * 11) % 256).astype(np.uint8)
        # Two images at the ends of the range, still identifiable by pixel (0, 0, 0).
        self.images[-1] = 255
        self.images[-1, 0, 0, 0] = 7 * (self.N - 1)
        self.images[-2] = 0
        self.images[-2, 0, 0, 0] = 7 * (self.N - 2)

    def _ids(self, batch):
        return np.rint((batch[:, 0, 0, 0] + 1.0) * 127.5).astype(int) // 7

    def _stream(self, batch_size, seed, count, start_batch=0, images=None):
        images = self.images if images is None else images
        ds = data.make_dataset(images, batch_size, seed, start_batch=start_batch)
        return [b.numpy() for b in ds.take(count)]

    def test_values_and_static_shape(self):
        ds = data.make_dataset(self.images, 3, seed=0)
        self.assertEqual(ds.element_spec, tf.TensorSpec((3, self.S, self.S, 3), tf.float32))
        stream = self._stream(5, seed=0, count=4)  # Two whole epochs: every image seen.
        for batch in stream:
            self.assertAllClose(batch, self.images[self._ids(batch)] / 127.5 - 1.0, atol=1e-6)
        values = np.concatenate(stream)
        self.assertEqual(values.min(), -1.0)
        self.assertEqual(values.max(), 1.0)

    def test_order_is_the_documented_permutation(self):
        batch_size, seed = 3, 5
        stream = self._stream(batch_size, seed, count=7)
        for k, batch in enumerate(stream):
            epoch, pos = divmod(k, self.N // batch_size)
            perm = tf.random.experimental.stateless_shuffle(
                tf.range(self.N, dtype=tf.int64), seed=[seed, epoch], alg="philox").numpy()
            self.assertAllEqual(self._ids(batch), perm[pos * batch_size:(pos + 1) * batch_size])

    def test_every_image_once_per_epoch(self):
        stream = self._stream(2, seed=1, count=15)  # 3 epochs of 5 batches.
        epochs = np.concatenate([self._ids(b) for b in stream]).reshape(3, self.N)
        for ids in epochs:
            self.assertAllEqual(np.sort(ids), np.arange(self.N))
        self.assertNotAllEqual(epochs[0], epochs[1])  # Each epoch reshuffles.

    def test_remainder_dropped_per_epoch(self):
        stream = self._stream(4, seed=2, count=6)  # 2 batches (8 of 10 images) an epoch.
        epochs = np.concatenate([self._ids(b) for b in stream]).reshape(3, 8)
        for ids in epochs:
            self.assertLen(set(ids.tolist()), 8)

    def test_seed_determines_order(self):
        first = np.concatenate(self._stream(3, seed=7, count=6))
        again = np.concatenate(self._stream(3, seed=7, count=6))
        other = np.concatenate(self._stream(3, seed=8, count=6))
        self.assertAllEqual(first, again)
        self.assertNotAllEqual(first, other)

    def test_start_batch_resumes_the_stream(self):
        full = self._stream(3, seed=3, count=12)  # 3 batches an epoch.
        for start in (1, 2, 3, 5, 7):
            resumed = self._stream(3, seed=3, count=4, start_batch=start)
            self.assertAllEqual(np.stack(resumed), np.stack(full[start:start + 4]))

    def test_start_batch_skips_without_iterating(self):
        # Far into the stream: only the start epoch's permutation is computed.
        start_batch = 10**9 + 4
        epoch, pos = divmod(start_batch, 3)
        start = time.monotonic()
        batch = self._stream(3, seed=3, count=1, start_batch=start_batch)[0]
        self.assertLess(time.monotonic() - start, 10)
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(self.N, dtype=tf.int64), seed=[3, epoch], alg="philox").numpy()
        self.assertAllEqual(self._ids(batch), perm[pos * 3:pos * 3 + 3])

    def test_num_batches_per_epoch(self):
        self.assertEqual(data.num_batches_per_epoch(10, 3), 3)
        self.assertEqual(data.num_batches_per_epoch(10, 10), 1)
        with self.assertRaisesRegex(data.DataError, "--batch_size=11 is larger"):
            data.num_batches_per_epoch(10, 11)
        with self.assertRaisesRegex(data.DataError, "--batch_size must be positive"):
            data.num_batches_per_epoch(10, 0)
        with self.assertRaisesRegex(data.DataError, "uint8"):
            data.make_dataset(self.images.astype(np.float32), 2, seed=0)


class SharedCifarTest(tf.test.TestCase):

    def test_loads_a_class_folder_from_the_shared_zip(self):
        if not _SHARED_ZIP.is_file():
            self.skipTest(f"{_SHARED_ZIP} is absent (the shared CIFAR-10 zip)")
        images = data.load_images("image_folder", image_size=32,
                                  data_dir=os.path.join(_SHARED_ZIP, "cifar10/test/airplane"))
        self.assertEqual(images.shape, (1000, 32, 32, 3))
        self.assertEqual(images.dtype, np.uint8)
        # Real photographs: neither blank nor the same image repeated.
        self.assertGreater(images.std(), 30)
        self.assertNotAllEqual(images[0], images[1])


if __name__ == "__main__":
    tf.test.main()
