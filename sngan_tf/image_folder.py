"""Image folders and zip archives as training images (`--dataset=image_folder`).

`sngan_tf.data.load_images` reads a folder searched recursively for PNG/JPEG files, a
`.zip` archive, or a folder inside one (`data.zip/cifar10/train`), through the two
functions here: `open_folder_source` lists the files in sorted path order (and what
identifies them for the decode cache), `decode_all` decodes them with a thread pool into
one uint8 (N, S, S, 3) RGB array: shorter side resized to S, then centre-cropped. Errors
are `DataError`s naming the folder, archive or file. A change to decoding (resampling,
colour conversion) must bump `sngan_tf.data._CACHE_VERSION`.

This module imports nothing of the package: `DataError` and `IMAGE_EXTENSIONS` live here,
and `sngan_tf.data` (which raises DataError for TFDS sources too) re-exports them.
"""
import concurrent.futures
import io
import os
import pathlib
import posixpath
import threading
import time
import zipfile
from typing import Callable, List, Optional, Tuple

import numpy as np
from absl import logging
from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
# The --data_dir that error messages suggest: the shared CIFAR-10 zip of this project.
SHARED_ZIP_EXAMPLE = "../shared/data/cifar10_jpg.zip/cifar10/train"


class DataError(ValueError):
    """Bad data source; message names the folder/file/flag and what was expected."""


# Files one decoding task reads; the tasks share a thread pool of up to 8 threads.
_DECODE_CHUNK = 512


class FolderSource:
    """Sorted image files of a folder or of a folder inside a zip archive.

    `names[i]` is what error messages call file i, `read(i)` its bytes, `key` what
    identifies the contents for the cache.
    """

    def __init__(self, names: List[str], read: Callable[[int], bytes], key: dict,
                 close: Callable[[], None] = lambda: None):
        self.names = names
        self.read = read
        self.key = key
        self._close = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close()


def open_folder_source(data_dir: Optional[str]) -> FolderSource:
    """The image files `data_dir` names: a folder, a .zip, or a folder inside a .zip."""
    if not data_dir:
        raise DataError("--dataset=image_folder needs --data_dir (a folder of PNG/JPEG "
                        f"images, or a .zip archive such as {SHARED_ZIP_EXAMPLE})")
    if os.path.isdir(data_dir):
        return _folder_source(data_dir)
    archive, inner = _split_archive_path(data_dir)
    if archive is None:
        problem = "is not a folder or a .zip" if os.path.exists(data_dir) else "does not exist"
        raise DataError(f"--data_dir={data_dir} {problem} (expected a folder of "
                        "PNG/JPEG images or a .zip archive, optionally followed by a "
                        "folder inside it)")
    return _zip_source(archive, inner)


def _split_archive_path(path: str) -> Tuple[Optional[str], str]:
    """Splits `a/b.zip/c/d` at the first existing .zip file: ("a/b.zip", "c/d")."""
    parts = pathlib.PurePath(path).parts
    for i in range(1, len(parts) + 1):
        prefix = os.path.join(*parts[:i])
        if prefix.lower().endswith(".zip") and os.path.isfile(prefix):
            return prefix, "/".join(parts[i:])
    return None, ""


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _no_images(where: str) -> DataError:
    return DataError(f"no images in {where}: looked recursively for files ending in "
                     f"{', '.join(IMAGE_EXTENSIONS)} (any case)")


def _folder_source(folder: str) -> FolderSource:
    root = os.path.realpath(folder)
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            if _is_image(filename):
                path = os.path.join(dirpath, filename)
                rel = pathlib.PurePath(os.path.relpath(path, root)).as_posix()
                stat = os.stat(path)
                entries.append((rel, stat.st_size, stat.st_mtime_ns))
    if not entries:
        raise _no_images(f"folder {folder}")
    entries.sort()
    paths = [os.path.join(root, rel) for rel, _, _ in entries]

    def read(i):
        with open(paths[i], "rb") as f:
            return f.read()

    key = {"kind": "folder", "path": root, "files": entries}
    return FolderSource(paths, read, key)


def _zip_source(archive: str, inner: str) -> FolderSource:
    """The image files of a zip archive, under its folder `inner` ("" for all of them)."""
    inner = posixpath.normpath(inner).strip("/") if inner else ""
    inner = "" if inner == "." else inner
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot open zip archive {archive}: {e}") from e
    try:
        members = _zip_members(zf, archive, inner)
    except BaseException:
        zf.close()
        raise
    root = os.path.realpath(archive)
    names = [f"{archive}:{m.filename}" for m in members]
    # One ZipFile per thread: threads must not share one. On Python 3.12 and 3.13 (seen on
    # 3.12.1 and 3.13.0), ZipFile.open skips a member's local extra field (which Info-ZIP's
    # `zip` writes) with a seek relative to wherever another thread last left the shared
    # file, so an intact archive reads as "Bad CRC-32". Each thread opens the archive once
    # (the central directory of 60k members parses in about 0.3 s); close() closes all.
    local = threading.local()
    local.zf = zf
    handles, handles_lock = [zf], threading.Lock()

    def read(i):
        handle = getattr(local, "zf", None)
        if handle is None:
            handle = local.zf = zipfile.ZipFile(archive)
            with handles_lock:
                handles.append(handle)
        return handle.read(members[i])

    def close():
        with handles_lock:
            for handle in handles:
                handle.close()
            handles.clear()

    key = {"kind": "zip", "path": root, "inner": inner,
           "files": [(m.filename, m.file_size, m.CRC) for m in members]}
    return FolderSource(names, read, key, close)


def _zip_members(zf: zipfile.ZipFile, archive: str, inner: str) -> List[zipfile.ZipInfo]:
    """The image members under the folder `inner`, sorted by name; DataError if none."""
    prefix = inner + "/" if inner else ""
    members = [m for m in zf.infolist()
               if not m.is_dir() and m.filename.startswith(prefix)]
    where = f"{archive}/{inner}" if inner else archive
    if not members:
        raise DataError(f"zip archive {archive} has no members under '{prefix}' "
                        f"(from --data_dir={where})")
    members = sorted((m for m in members if _is_image(m.filename)),
                     key=lambda m: m.filename)
    if not members:
        raise _no_images(f"zip archive {where}")
    return members


def decode_all(source: FolderSource, image_size: int) -> np.ndarray:
    """Decodes every file of `source` with a thread pool (PIL releases the GIL)."""
    count = len(source.names)
    out = np.empty((count, image_size, image_size, 3), np.uint8)
    start = time.perf_counter()

    def work(lo, hi):
        for i in range(lo, hi):
            out[i] = _decode_image(source.read(i), source.names[i], image_size)

    workers = max(1, min(8, 2 * _num_cpus()))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(work, lo, min(lo + _DECODE_CHUNK, count))
                   for lo in range(0, count, _DECODE_CHUNK)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    logging.info("Decoded %d images to %dx%d in %.1f s.", count, image_size, image_size,
                 time.perf_counter() - start)
    return out


def _num_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _decode_image(data: bytes, name: str, image_size: int) -> np.ndarray:
    """One encoded image as uint8 (S, S, 3): RGB, shorter side S, centre-cropped.

    Args:
      data: the file's bytes.
      name: what error messages call the file.
      image_size: S.

    Returns:
      uint8 array (S, S, 3).

    Raises:
      DataError: naming the file, if it is not a readable image (e.g. truncated).
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = _to_rgb(img)
            return np.asarray(_resize_and_crop(rgb, image_size), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot read image {name}: {e}") from e


def _to_rgb(img: Image.Image) -> Image.Image:
    """Grey, palette, 16-bit grey, CMYK and RGBA images as RGB (alpha is dropped)."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16"):  # 16-bit grey PNG: keep the high byte, not a clip.
        high = (np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(high, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL warns when a palette with alpha goes straight to RGB.
    return img.convert("RGB")


def _resize_and_crop(img: Image.Image, size: int) -> Image.Image:
    """Resizes so the shorter side is `size` (area when shrinking), then crops the centre."""
    width, height = img.size
    if (width, height) == (size, size):
        return img
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
        img = img.resize((new_w, new_h), resample)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))
