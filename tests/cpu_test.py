"""oneDNN on by default (the user's TF_ENABLE_ONEDNN_OPTS wins) and the machine description."""
import os
import subprocess
import sys
from unittest import mock

import tensorflow as tf

from sngan_tf import cpu

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PRINT = ("from tensorflow.python.util import _pywrap_util_port as p; "
          "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), p.IsMklEnabled())")
_PROBE = "import os, sngan_tf.train, tensorflow as tf; " + _PRINT
# TensorFlow alone, without the package.
_TF_PROBE = "import os, tensorflow as tf; " + _PRINT
# /proc/cpuinfo names of the features that turn TensorFlow's own default on
# (`DefaultOneDnnPolicy` in tensorflow/core/util/port.cc, TensorFlow 2.15 to 2.21).
_ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
                         "amx_bf16")


def _fresh_process(probe=_PROBE, **env):
    """A new Python importing the package first, as the programs do; the test process's
    own TF_ENABLE_ONEDNN_OPTS (set by importing sngan_tf) is removed unless given."""
    environ = {k: v for k, v in os.environ.items() if k != cpu.ONEDNN_VAR}
    environ.update(env, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", probe], env=environ, cwd=_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


class PreferOneDnnTest(tf.test.TestCase):

    def test_sets_the_variable_when_absent_on_x86(self):
        with mock.patch("platform.machine", return_value="x86_64"):
            environ = {}
            self.assertEqual(cpu.prefer_onednn(environ), "1")
            self.assertEqual(environ, {cpu.ONEDNN_VAR: "1"})

    def test_the_users_choice_wins(self):
        with mock.patch("platform.machine", return_value="x86_64"):
            environ = {cpu.ONEDNN_VAR: "0"}
            self.assertEqual(cpu.prefer_onednn(environ), "0")
            self.assertEqual(environ, {cpu.ONEDNN_VAR: "0"})

    def test_other_architectures_keep_tensorflows_default(self):
        with mock.patch("platform.machine", return_value="aarch64"):
            environ = {}
            self.assertIsNone(cpu.prefer_onednn(environ))
            self.assertEqual(environ, {})

    def test_fresh_process_without_the_variable_uses_onednn(self):
        if not cpu.cpu_description()["cpu_flags"]:
            self.skipTest("not an x86 CPU")
        # oneDNN limited to AVX2 as on an AVX2-only CPU (TF's default reads CPUID, not this
        # variable; the package turns oneDNN on whatever the CPU).
        self.assertEqual(_fresh_process(ONEDNN_MAX_CPU_ISA="AVX2"), ["1", "True"])

    def test_fresh_process_keeps_the_users_off(self):
        self.assertEqual(_fresh_process(TF_ENABLE_ONEDNN_OPTS="0"), ["0", "False"])

    def test_tensorflows_own_default_is_the_documented_one(self):
        # What cpu.py says TensorFlow does without the package: on x86 Linux, oneDNN on
        # only with AVX-512 VNNI/BF16, AVX-VNNI or AMX. On AVX2-only CPUs this is False,
        # which is why the package sets the variable.
        if not sys.platform.startswith("linux") or not cpu.cpu_description()["cpu_flags"]:
            self.skipTest("the documented default is for x86 Linux")
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split())
        expected = any(flag in flags for flag in _ONEDNN_DEFAULT_FLAGS)
        self.assertEqual(_fresh_process(_TF_PROBE), ["None", str(expected)])


class CpuDescriptionTest(tf.test.TestCase):

    def test_names_model_flags_and_cores(self):
        info = cpu.cpu_description()
        self.assertGreaterEqual(info["cores"], 1)
        self.assertLessEqual(info["cores"], os.cpu_count())
        self.assertTrue(set(info["cpu_flags"]) <= {"avx2", "fma", "avx512f", "avx512_vnni",
                                                   "avx512_bf16", "avx_vnni", "amx_bf16",
                                                   "amx_tile"})
        if os.path.exists("/proc/cpuinfo"):
            with open("/proc/cpuinfo") as f:
                text = f.read()
            self.assertIn(info["cpu"], text)
            if info["cpu_family_model"] is not None:
                family, number = info["cpu_family_model"].split()[1::2]
                self.assertRegex(text, rf"cpu family\s*: {family}\n")
                self.assertRegex(text, rf"\nmodel\s*: {number}\n")
            self.assertEqual("avx2" in info["cpu_flags"], " avx2" in text)
            self.assertEqual(info["bf16"], "avx512_bf16" in text or "amx_bf16" in text)


if __name__ == "__main__":
    tf.test.main()
