"""TensorFlow's start without its noise: the import and device discovery, with the C++ lines
that TF_CPP_MIN_LOG_LEVEL asks to drop actually dropped.

TensorFlow 2.21 logs from C++ through absl, and absl writes every message logged before
`absl::InitializeLog()` (those of `import tensorflow`) to stderr whatever the level, after a
banner line; and the PyPI wheel, built with CUDA, logs `E ... failed call to cuInit` on every
machine without an NVIDIA driver (tensorflow/tensorflow#105022). `start()` runs the import
and the device discovery with file descriptor 2 captured, then writes back every line but:
absl's banner, C++ lines below TF_CPP_MIN_LOG_LEVEL (the programs default it to 2: warnings
are dropped, errors kept), and the cuInit failure when no GPU was found, which becomes one
INFO line of ours. Any other error line, and whatever Python printed, is written back as it
was.

Nothing here imports TensorFlow at module level.
"""
import os
import re
import sys
import tempfile
from typing import List, Tuple

from absl import logging

_CPP_LINE = re.compile(r"^([IWEF])\d{4} ")  # absl/glog: severity, then MMDD
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_CUINIT = re.compile(r"\] failed call to cuInit")
_PYTHON_WARNING = re.compile(r"^\S+\.py:\d+: ")


def filter_lines(lines: List[str], min_level: int, found_gpu: bool) -> Tuple[List[str], bool]:
    """The start-up lines worth showing, and whether a cuInit failure was dropped.

    Args:
      lines: what was written to stderr, one line per item.
      min_level: TF_CPP_MIN_LOG_LEVEL (0 info, 1 warning, 2 error, 3 fatal only).
      found_gpu: whether TensorFlow found a GPU (then a cuInit failure is news, and kept).

    A line without a severity prefix continues the C++ message before it (TensorFlow's
    messages span lines), unless it looks like a Python warning.
    """
    kept, cuinit, dropping = [], False, False
    for line in lines:
        match = _CPP_LINE.match(line)
        if match:
            level = _SEVERITY[match.group(1)]
            is_cuinit = bool(_CUINIT.search(line)) and not found_gpu
            cuinit = cuinit or is_cuinit
            dropping = level < min_level or is_cuinit
        elif line.strip() == _BANNER:
            dropping = min_level > 0
        elif _PYTHON_WARNING.match(line) or not line.strip():
            dropping = False
        if not dropping:
            kept.append(line)
    return kept, cuinit


def _min_log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (0 when unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def start():
    """Imports TensorFlow and lists its devices with the start-up lines filtered; returns
    the `tensorflow` module. Call it before any other TensorFlow work (device discovery
    does not configure the runtime, so a multi-worker strategy may still be created)."""
    if "tensorflow" in sys.modules:  # already started: nothing left to capture
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        gpus = []
        try:
            import tensorflow as tf  # pylint: disable=g-import-not-at-top
            gpus = tf.config.list_physical_devices("GPU")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept, cuinit = filter_lines(lines, _min_log_level(), bool(gpus))
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
    if cuinit:
        logging.info("No GPU: TensorFlow's CUDA initialisation failed (cuInit), as it does "
                     "on machines without an NVIDIA driver; running on the CPU.")
    return tf
