r"""Benchmarks training speed beside PyTorch, SN overhead, input pipeline and trainer overhead.

From the repository root, in the .venv that `bash scripts/run.sh bench` makes (that job also
installs torch and runs `benchmarks/benchmark.py --peer=torch ARGS`):
  .venv/bin/python benchmarks/benchmark.py                 # everything, JSON in runs/benchmark.json
  .venv/bin/python benchmarks/benchmark.py --archs=dcgan,cnn,cnn_paper --norms=spectral,none \
      --precisions=float32,mixed_bfloat16 --jit=false --sections=steps --peer=torch
  .venv/bin/python benchmarks/benchmark.py ... --isa=avx2   # oneDNN (ours, PyTorch's) on AVX2

Run it on a quiet machine: another busy process skews timings by up to 2x. Step variants,
ours and PyTorch's (`--peer=torch`, from `benchmarks/torch_peer.py`; `bash scripts/run.sh
bench` installs torch), are timed interleaved (one step of each in turn, repeated) so drift hits
all alike. `--archs`: dcgan, cnn (the authors' code widths, our default) and cnn_paper (Table
3 widths). Prints the machine line and a table, and writes JSON with the machine's
description (CPU model and flags, cores, oneDNN on/off, threads, versions).

GFLOP/s are analytic FLOPs per step over the median step time, also given as a fraction of
the matmul peak measured in the same run (`peak` in the JSON). Counting rule (see
`step_flops`): convolutions, transposed convolutions and dense layers only, 2 FLOPs per
multiply-add; a forward pass costs F; its backward costs F for the weight gradients and F
for the input gradients, each only where needed (no input gradient for the first layer of
the network being updated from data or z; no weight gradients for D in the G update).
Batch norm, activations, SN's power iteration and Adam are memory-bound and not counted.

The emulation (`--isa=avx2`) limits oneDNN's kernels to AVX2 (ONEDNN_MAX_CPU_ISA, and
ATEN_CPU_CAPABILITY for PyTorch's own kernels); it approximates, and is labelled as, an
AVX2 CPU: the cache sizes and clock stay this machine's. TensorFlow's non-oneDNN (Eigen)
path is the same either way; `TF_ENABLE_ONEDNN_OPTS=0` selects it, TensorFlow's default on
AVX2 CPUs before this project turned oneDNN on.
"""
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

# TensorFlow's C++ info and warning lines drown the program's own; TF_CPP_MIN_LOG_LEVEL=0
# brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)  # sngan_tf
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # torch_peer, beside this file
import sngan_tf  # pylint: disable=g-import-not-at-top,unused-import  # oneDNN on, before TF

flags.DEFINE_list("archs", ["dcgan", "cnn"], "Architectures: dcgan, cnn (the authors' code "
                  "widths) and cnn_paper (Table 3 widths).")
flags.DEFINE_list("norms", ["spectral", "batch", "none"], "Discriminator normalisations.")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], "Keras dtype policies "
                  "(mixed_float16 only where a GPU is present).")
flags.DEFINE_list("jit", ["false", "true"], "XLA settings to time (--jit_compile).")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_integer("n_dis", 1, "Discriminator updates per step.")
flags.DEFINE_integer("steps", 30, "Timed steps per variant.")
flags.DEFINE_integer("warmup", 5, "Untimed steps per variant (tracing, compilation).")
flags.DEFINE_integer("trainer_steps", 300, "Steps for the trainer-overhead measurement.")
flags.DEFINE_string("data_dir", None, "Image folder or zip for the input-pipeline timing "
                    "(default: ../shared CIFAR-10 when present).")
flags.DEFINE_string("output", os.path.join(_ROOT, "runs", "benchmark.json"),
                    "JSON results (runs/ is not tracked by git).")
flags.DEFINE_enum("peer", "none", ["none", "torch"], "Time the same step in PyTorch, "
                  "interleaved with ours (float32 and bf16 autocast for mixed_bfloat16).")
flags.DEFINE_enum("isa", "native", ["native", "avx2"], "avx2: limit oneDNN (TensorFlow's and "
                  "PyTorch's) to AVX2, emulating an AVX2-only CPU; labelled as emulation.")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: its default, "
                     "the core count).")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads (0: its default).")
flags.DEFINE_integer("torch_threads", 0, "PyTorch threads (0: its default, the core count).")
flags.DEFINE_list("sections", ["steps", "breakdown", "pipeline", "trainer"],
                  "What to measure: step timings, the parts of one step (a coarse profile), "
                  "the input pipeline, the trainer's overhead (Lipschitz probes included), "
                  "lipschitz: one Lipschitz measurement against --lipschitz_every=100 steps.")

FLAGS = flags.FLAGS


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def _images(n=2048):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _model_config(arch, norm):
    from sngan_tf import models  # pylint: disable=g-import-not-at-top
    arch, _, variant = arch.partition("_")
    return models.ModelConfig(arch=arch, norm=norm, g_batchnorm=norm != "none",
                              cnn_variant=variant or "code")


def _gan(arch, norm, precision, jit):
    from sngan_tf import data, training  # pylint: disable=g-import-not-at-top
    config = training.TrainConfig(
        model=_model_config(arch, norm),
        batch_size=FLAGS.batch_size, n_dis=FLAGS.n_dis, precision=precision, jit_compile=jit)
    gan = training.GAN(config)
    it = iter(gan.strategy.experimental_distribute_dataset(
        data.make_dataset(_images(), config.batch_size, 0)))
    return gan, it


def _layer_macs(model):
    """(multiply-adds per image, whether it is the first weighted layer) of each conv,
    transposed conv and dense layer of a built Keras model."""
    import keras  # pylint: disable=g-import-not-at-top
    result = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, cin = layer.input.shape
            macs = h * w * cin * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            macs = h * w * cout * int(np.prod(layer.kernel.shape[:3]))
        elif isinstance(layer, keras.layers.Dense):
            macs = int(np.prod(layer.kernel.shape))
        else:
            continue
        result.append((int(macs), not result))
    return result


def step_flops(generator, discriminator, batch_size, n_dis=1):
    """Analytic FLOPs of one training step (n_dis D updates, one G update); see the module
    docstring for the counting rule."""
    def fwd(model, skip_first=False):
        return 2 * batch_size * sum(m for m, first in _layer_macs(model)
                                    if not (skip_first and first))
    g, d = fwd(generator), fwd(discriminator)
    d_update = g + 2 * d + 2 * d + 2 * fwd(discriminator, skip_first=True)
    g_update = g + d + d + g + fwd(generator, skip_first=True)
    return n_dis * d_update + g_update


def matmul_peak(n=2048, repeats=5):
    """Best GFLOP/s of an n x n tf.matmul in float32 (and bfloat16 where the CPU has BF16),
    and PyTorch's with --peer=torch."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    dtypes = ["float32"] + (["bfloat16"] if _has_bf16() else [])
    peak = {}
    for dtype in dtypes:
        a = tf.random.normal((n, n), dtype=tf.float32)
        a = tf.cast(a, dtype)
        fn = tf.function(lambda x: tf.matmul(x, x))
        fn(a).numpy()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn(a).numpy()
            best = min(best, time.perf_counter() - start)
        peak[f"tensorflow_{dtype}"] = 2 * n ** 3 / best / 1e9
    if FLAGS.peer == "torch":
        import torch  # pylint: disable=g-import-not-at-top
        import torch_peer  # pylint: disable=g-import-not-at-top
        peak["torch_float32"] = torch_peer.matmul_gflops(n, torch.float32, repeats)
        if _has_bf16():
            peak["torch_bfloat16"] = torch_peer.matmul_gflops(n, torch.bfloat16, repeats)
    return peak


def _has_bf16():
    """BF16 instructions usable: on the CPU and not hidden by the AVX2 emulation."""
    from sngan_tf import cpu  # pylint: disable=g-import-not-at-top
    return cpu.cpu_description()["bf16"] and FLAGS.isa == "native"


class _TorchStep:
    """A PyTorch peer step with the interface the timing loop uses."""

    def __init__(self, arch, norm, precision):
        import torch_peer  # pylint: disable=g-import-not-at-top
        arch, _, variant = arch.partition("_")
        self.step = torch_peer.Step(arch, norm, "bfloat16" if precision == "mixed_bfloat16"
                                    else "float32", FLAGS.batch_size, variant or "code")

    def __call__(self):
        self.step()


def time_steps(peak):
    """Median/p90 step time of every variant, ours and PyTorch's, interleaved."""
    variants, flops, gans = {}, {}, {}
    for arch in FLAGS.archs:
        for precision in FLAGS.precisions:
            for jit in [j.lower() == "true" for j in FLAGS.jit]:
                for norm in FLAGS.norms:
                    gan, it = _gan(arch, norm, precision, jit)
                    key = ("tensorflow", arch, norm, precision, jit)
                    variants[key] = lambda gan=gan, it=it: gan.train_step(it)["loss/g"].numpy()
                    gans[key] = gan
                    flops[arch] = step_flops(gan.generator, gan.discriminator,
                                             FLAGS.batch_size, FLAGS.n_dis)
                    if FLAGS.peer == "torch" and not jit:
                        variants[("torch", arch, norm, precision, jit)] = _TorchStep(
                            arch, norm, precision)
    for fn in variants.values():
        for _ in range(FLAGS.warmup):
            fn()
    times = {k: [] for k in variants}
    for _ in range(FLAGS.steps):
        for key, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    rows = []
    images = FLAGS.batch_size * FLAGS.n_dis
    for (framework, arch, norm, precision, jit), t in times.items():
        med = statistics.median(t)
        dtype = "bfloat16" if precision == "mixed_bfloat16" else "float32"
        row = {"framework": framework, "arch": arch, "norm": norm, "precision": precision,
               "jit_compile": jit, "median_ms": 1e3 * med, "p90_ms": 1e3 * _percentile(t, 90),
               "images_per_sec": images / med, "gflop_per_step": flops[arch] / 1e9,
               "gflops": flops[arch] / med / 1e9}
        if f"tensorflow_{dtype}" in peak:
            row["fraction_of_peak"] = row["gflops"] / peak[f"tensorflow_{dtype}"]
        if framework == "tensorflow":
            row["traces"] = gans[(framework, arch, norm, precision, jit)].train_step \
                .experimental_get_tracing_count()
        rows.append(row)
    same = ("framework", "arch", "precision", "jit_compile")
    for row in rows:  # SN overhead: spectral over none, same everything else
        if row["norm"] == "spectral":
            base = [r for r in rows if r["norm"] == "none" and all(r[k] == row[k] for k in same)]
            if base:
                row["sn_overhead"] = row["median_ms"] / base[0]["median_ms"]
    for row in rows:  # ours over PyTorch's, same model and precision
        peer = [r for r in rows if r["framework"] == "torch" and row["framework"] == "tensorflow"
                and all(r[k] == row[k] for k in ("arch", "norm", "precision"))]
        if peer:
            row["over_torch"] = row["median_ms"] / peer[0]["median_ms"]
    return rows


def time_breakdown(arch, norm="spectral", repeats=20):
    """Where one step's time goes: G and D forward passes, and each update alone."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from sngan_tf import models  # pylint: disable=g-import-not-at-top
    gan, it = _gan(arch, norm, "float32", False)
    real = next(it)
    z = models.sample_z(gan.config.model, FLAGS.batch_size, [0, 0])
    seed = tf.constant([0, 0], tf.int64)
    fake = gan.generator(z, training=True)
    parts = {
        "G forward": tf.function(lambda: gan.generator(z, training=True)),
        "D forward": tf.function(lambda: gan.discriminator(real, training=True)),
        "D update (G fwd + 2 D fwd/bwd + Adam)": tf.function(
            lambda: gan._d_update_fn(real, seed)),  # pylint: disable=protected-access
        "G update (G fwd/bwd + D fwd/bwd + Adam)": tf.function(
            lambda: gan._g_update_fn(seed)),  # pylint: disable=protected-access
        "full step": lambda: gan.train_step(it),
    }
    del fake
    result = {}
    for name, fn in parts.items():
        for _ in range(3):
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn())
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, fn())
            times.append(time.perf_counter() - start)
        result[name] = 1e3 * statistics.median(times)
    return {"arch": arch, "norm": norm, "median_ms": result}


def time_pipeline():
    """Input pipeline alone: first load (decode) and cached load, then batches/s in memory."""
    from sngan_tf import data  # pylint: disable=g-import-not-at-top
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = FLAGS.data_dir or os.path.join(root, "..", "shared", "data",
                                            "cifar10_jpg.zip", "cifar10", "train")
    result = {}
    if os.path.exists(source.split(".zip")[0] + ".zip" if ".zip" in source else source):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            images = data.load_images("image_folder", data_dir=source, image_size=32,
                                      cache_dir=cache)
            first = time.perf_counter() - start
            start = time.perf_counter()
            data.load_images("image_folder", data_dir=source, image_size=32, cache_dir=cache)
            cached = time.perf_counter() - start
        result.update({"source": source, "num_images": len(images),
                       "decode_images_per_sec": len(images) / first,
                       "cached_load_images_per_sec": len(images) / cached})
    else:
        images = _images(50000)
    it = iter(data.make_dataset(images, FLAGS.batch_size, 0))
    for _ in range(20):
        next(it)
    n = 1000
    start = time.perf_counter()
    for _ in range(n):
        next(it)
    result["batches_images_per_sec"] = n * FLAGS.batch_size / (time.perf_counter() - start)
    return result


def time_trainer_overhead(arch="dcgan"):
    """Steady-state step time inside Trainer.run (default intervals) over a bare loop."""
    from sngan_tf import loop, models, training  # pylint: disable=g-import-not-at-top
    steps, warm = FLAGS.trainer_steps, 20
    config = training.TrainConfig(model=models.ModelConfig(arch=arch, norm="spectral"),
                                  batch_size=FLAGS.batch_size, train_steps=warm + steps)
    with tempfile.TemporaryDirectory() as logdir:
        trainer = loop.Trainer(config, logdir, _images())
        stamps = []
        step_fn = trainer.gan.train_step

        def timed(iterator):
            stamps.append(time.perf_counter())
            return step_fn(iterator)

        trainer.gan.train_step = timed
        start = time.perf_counter()
        trainer.run()
        end = time.perf_counter()
        in_trainer = (end - stamps[warm]) / steps
        # The same step in a bare loop, on the same GAN and a fresh iterator.
        it = trainer._iterator()  # pylint: disable=protected-access
        for _ in range(warm):
            step_fn(it)["loss/g"].numpy()
        start = time.perf_counter()
        for _ in range(steps):
            step_fn(it)["loss/g"].numpy()
        bare = (time.perf_counter() - start) / steps
    return {"arch": arch, "steps": steps, "trainer_ms": 1e3 * in_trainer, "bare_ms": 1e3 * bare,
            "trainer_overhead": in_trainer / bare}


def time_lipschitz(arch, interval=100, repeats=5):
    """Cost of one warm Lipschitz measurement (sngan_tf.lipschitz, as the trainer runs it
    every --lipschitz_every steps: 64 real, fake and interpolated probes, every layer's
    operator norm) against `interval` training steps of the same GAN."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from sngan_tf import lipschitz, models  # pylint: disable=g-import-not-at-top
    gan, it = _gan(arch, "spectral", "float32", False)
    monitor = lipschitz.LipschitzMonitor(gan.discriminator)
    real = tf.cast(_images(64), tf.float32) / 127.5 - 1.0
    z = models.sample_z(gan.config.model, 64, [0, -1])
    measure_s, step_s = [], []
    for i in range(repeats + 1):
        for _ in range(10):  # the weights move between measurements, as in training
            start = time.perf_counter()
            gan.train_step(it)["loss/g"].numpy()
            step_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        monitor.measure(real, gan.generate(z), seed=(0, i))
        if i:  # the first one traces and converges from a random start
            measure_s.append(time.perf_counter() - start)
    step, meas = statistics.median(step_s[10:]), statistics.median(measure_s)
    return {"arch": arch, "interval": interval, "measure_ms": 1e3 * meas,
            "step_ms": 1e3 * step, "cost_fraction": meas / (interval * step)}


def machine():
    """What the numbers were measured on: CPU model and flags, cores, oneDNN, threads,
    versions, and whether an AVX2 CPU was emulated."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from sngan_tf import cpu  # pylint: disable=g-import-not-at-top
    info = cpu.cpu_description()
    info.update({
        "emulated": "AVX2 CPU (oneDNN limited to AVX2)" if FLAGS.isa == "avx2" else None,
        "onednn": cpu.onednn_enabled(), cpu.ONEDNN_VAR: os.environ.get(cpu.ONEDNN_VAR),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "gpus": len(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__,
        "python": platform.python_version(), "load_average_at_start": os.getloadavg()})
    if FLAGS.peer == "torch":
        import torch  # pylint: disable=g-import-not-at-top
        info.update({"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                     "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")})
    return info


def machine_line(m):
    """One line naming the machine, for the printed table and the README."""
    threads = "default" if not (m["intra_op_threads"] or m["inter_op_threads"]) else (
        f"intra {m['intra_op_threads']}, inter {m['inter_op_threads']}")
    cpu = m["cpu"] + (f" {m['cpu_family_model']}" if m.get("cpu_family_model") else "")
    line = (f"{cpu} ({', '.join(m['cpu_flags']) or 'no AVX2'}), {m['cores']} cores, "
            f"TensorFlow {m['tensorflow']} oneDNN {'on' if m['onednn'] else 'off'}, TF threads "
            f"{threads}")
    if "torch" in m:
        line += f", PyTorch {m['torch']} ({m['torch_threads']} threads)"
    if m["emulated"]:
        line += f"; EMULATED {m['emulated']}"
    return line


def main(argv):
    del argv
    if FLAGS.isa == "avx2":  # read by oneDNN and ATen when they first run: set before import
        os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
        os.environ["ATEN_CPU_CAPABILITY"] = "avx2"
    if FLAGS.peer == "torch":
        # PyTorch's OpenMP threads otherwise spin after each op and take the cores from
        # TensorFlow's next step. Set before torch (libgomp) loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch  # pylint: disable=g-import-not-at-top
        if FLAGS.torch_threads:
            torch.set_num_threads(FLAGS.torch_threads)
    from sngan_tf import tfstart  # pylint: disable=g-import-not-at-top
    tf = tfstart.start()  # before any TensorFlow work: its start-up lines, filtered
    if FLAGS.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    if FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    if not tf.config.list_physical_devices("GPU") and "mixed_float16" in FLAGS.precisions:
        FLAGS.precisions = [p for p in FLAGS.precisions if p != "mixed_float16"]
    if "mixed_bfloat16" in FLAGS.precisions and not _has_bf16():
        print("This CPU" + (" (as emulated)" if FLAGS.isa != "native" else "") + " has no BF16 "
              "instructions: mixed_bfloat16 (and PyTorch's bf16) skipped.")
        FLAGS.precisions = [p for p in FLAGS.precisions if p != "mixed_bfloat16"]
    results = {"machine": machine(), "command": " ".join(sys.argv)}
    print("machine:", machine_line(results["machine"]))
    sections = set(FLAGS.sections)
    results["peak_gflops"] = matmul_peak() if "steps" in sections else {}
    if results["peak_gflops"]:
        print("matmul peak, GFLOP/s:", ", ".join(
            f"{k} {v:.0f}" for k, v in results["peak_gflops"].items()))
    results["steps"] = time_steps(results["peak_gflops"]) if "steps" in sections else []
    if results["steps"]:  # again after the steps: a peak taken while busy would flatter us
        again = matmul_peak()
        results["peak_gflops"] = {k: max(v, again[k]) for k, v in results["peak_gflops"].items()}
        for r in results["steps"]:
            dtype = "bfloat16" if r["precision"] == "mixed_bfloat16" else "float32"
            r["fraction_of_peak"] = r["gflops"] / results["peak_gflops"][f"tensorflow_{dtype}"]
        print("matmul peak (best of before and after), GFLOP/s:", ", ".join(
            f"{k} {v:.0f}" for k, v in results["peak_gflops"].items()))
    print(f"{'framework':10} {'arch':9} {'norm':8} {'precision':14} {'xla':5} {'median ms':>9} "
          f"{'p90 ms':>7} {'img/s':>6} {'GFLOP/s':>7} {'%peak':>5} {'SN/none':>7} {'/torch':>6}")
    for r in results["steps"]:
        print(f"{r['framework']:10} {r['arch']:9} {r['norm']:8} {r['precision']:14} "
              f"{str(r['jit_compile']):5} {r['median_ms']:9.1f} {r['p90_ms']:7.1f} "
              f"{r['images_per_sec']:6.0f} {r['gflops']:7.1f} "
              f"{100 * r.get('fraction_of_peak', float('nan')):5.0f} "
              f"{r.get('sn_overhead', float('nan')):7.3f} {r.get('over_torch', float('nan')):6.2f}")
    if "breakdown" in sections:
        results["breakdown"] = [time_breakdown(arch) for arch in FLAGS.archs]
        for b in results["breakdown"]:
            print(f"{b['arch']} {b['norm']}: " + ", ".join(
                f"{k} {v:.0f} ms" for k, v in b["median_ms"].items()))
    if "pipeline" in sections:
        results["pipeline"] = time_pipeline()
        print("input pipeline:", json.dumps(results["pipeline"]))
    if "trainer" in sections:
        results["trainer"] = time_trainer_overhead()
        print("trainer overhead:", json.dumps(results["trainer"]))
    if "lipschitz" in sections:
        results["lipschitz"] = [time_lipschitz(a) for a in FLAGS.archs if a.startswith(
            ("dcgan", "cnn"))]
        for r in results["lipschitz"]:
            print(f"lipschitz {r['arch']}: {r['measure_ms']:.0f} ms per measurement, step "
                  f"{r['step_ms']:.0f} ms, every {r['interval']} steps: "
                  f"{100 * r['cost_fraction']:.2f}% of training time")
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {results['peak_rss_mb']:.0f} MB")
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "w") as f:
        json.dump(results, f, indent=2)
    print("wrote", FLAGS.output)


if __name__ == "__main__":
    app.run(main)
