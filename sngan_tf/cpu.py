"""The CPU path: oneDNN kernels on by default, and a description of the machine.

TensorFlow 2.21 (as 2.15 did) decides whether its oneDNN (MKL) kernels are on in
`IsMklEnabled` (tensorflow/core/util/port.cc): `TF_ENABLE_ONEDNN_OPTS` when set, else
`DefaultOneDnnPolicy()`, which on Linux is true only for x86 CPUs with AVX-512 VNNI,
AVX-512 BF16, AVX-VNNI or AMX (and Arm Neoverse V1), and on Windows x86 always true. On
AVX2-only Linux CPUs (many laptops and desktops, AMD Zen 1-3, older Xeons) every
convolution therefore runs on the Eigen path, measured 2.3x slower (with TensorFlow 2.15)
for this project's DCGAN step on a 2-core AVX2 EPYC. `prefer_onednn` sets
`TF_ENABLE_ONEDNN_OPTS=1` unless the user set it (their choice wins); TensorFlow reads the
variable once, when it first asks whether oneDNN is on, so it must run before TensorFlow is
imported. The package's `__init__` calls it, so every `python -m sngan_tf.<program>` gets
the fast path.

Nothing here imports TensorFlow at module level.
"""
import os
import platform

ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
# /proc/cpuinfo flags worth naming for the speed of convolutions and matmuls.
_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16",
          "amx_tile")


def prefer_onednn(environ=None):
    """Sets TF_ENABLE_ONEDNN_OPTS=1 on x86 CPUs unless it is already set.

    Args:
      environ: the environment to change (default `os.environ`).

    Returns:
      The variable's value afterwards, or None (not x86 and not set by the user).
    """
    environ = os.environ if environ is None else environ
    if ONEDNN_VAR not in environ and platform.machine().lower() in _X86:
        environ[ONEDNN_VAR] = "1"
    return environ.get(ONEDNN_VAR)


def onednn_enabled():
    """Whether this TensorFlow process uses its oneDNN kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_description():
    """The CPU's model name, family and model numbers (virtual machines often name only
    "AMD EPYC"; the numbers tell its generations apart), the speed-relevant flags it has,
    and the cores this process may use (its affinity mask, which containers and `taskset`
    narrow)."""
    model, flags, fields = None, None, {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and flags is None:
                    flags = set(value.split())
                elif key in ("cpu family", "model"):
                    fields.setdefault(key, value.strip())
    except OSError:
        pass
    family_model = (f"family {fields['cpu family']} model {fields['model']}"
                    if len(fields) == 2 else None)
    model, flags = model or platform.processor() or "unknown", flags or set()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": model, "cpu_family_model": family_model,
            "cpu_flags": [f for f in _FLAGS if f in flags],
            "bf16": "avx512_bf16" in flags or "amx_bf16" in flags, "cores": cores,
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}
