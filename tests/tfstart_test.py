"""TensorFlow's start-up lines: dropped below TF_CPP_MIN_LOG_LEVEL, errors kept, the spurious
cuInit failure of CPU-only machines replaced by one line of ours."""
import os
import subprocess
import sys

import tensorflow as tf

from sngan_tf import tfstart

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796284842.232173   12967 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796284842.641571   12967 cpu_feature_guard.cc:227] This TensorFlow binary\n",
    "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n",  # continues it
    "/x/site-packages/foo.py:3: DeprecationWarning: a Python warning\n",
    "W0000 00:00:1796284842.7   12967 some.cc:1] a warning\n",
    "E0000 00:00:1796284845.088366   12967 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    "E0000 00:00:1796284845.1   12967 other.cc:9] a real error\n",
    "  its second line\n",
]


class FilterLinesTest(tf.test.TestCase):

    def test_level_2_keeps_errors_and_python_lines(self):
        kept, cuinit = tfstart.filter_lines(_LINES, min_level=2, found_gpu=False)
        self.assertEqual(kept, [_LINES[4], _LINES[7], _LINES[8]])
        self.assertTrue(cuinit)

    def test_level_0_keeps_all_but_the_cuinit_failure_without_gpu(self):
        kept, cuinit = tfstart.filter_lines(_LINES, min_level=0, found_gpu=False)
        self.assertEqual(kept, _LINES[:6] + _LINES[7:])
        self.assertTrue(cuinit)

    def test_cuinit_failure_is_kept_when_a_gpu_was_found(self):
        kept, cuinit = tfstart.filter_lines(_LINES, min_level=2, found_gpu=True)
        self.assertIn(_LINES[6], kept)
        self.assertFalse(cuinit)


class StartTest(tf.test.TestCase):

    def test_a_fresh_process_prints_only_what_passes_the_filter(self):
        code = ("import os, sys\n"
                "from sngan_tf import tfstart\n"
                "tf = tfstart.start()\n"
                "os.write(2, b'E0000 00:00:1.0 1 x.cc:1] after the start\\n')\n"
                "print(tf.reduce_sum(tf.ones(3)).numpy())\n")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=_ROOT)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120, check=True)
        self.assertEqual(out.stdout.strip(), "3.0")
        lines = out.stderr.splitlines()
        self.assertNotIn(tfstart._BANNER, lines)  # pylint: disable=protected-access
        self.assertEqual([l for l in lines if l.startswith(("I0000", "W0000"))], [])
        self.assertEqual([l for l in lines if "cuInit" in l and l.startswith("E")], [])
        self.assertIn("E0000 00:00:1.0 1 x.cc:1] after the start", lines)


if __name__ == "__main__":
    tf.test.main()
