r"""Benchmarks training speed, spectral-normalization overhead, input pipeline and trainer overhead.

  python scripts/benchmark.py --output=bench.json                 # the README table
  python scripts/benchmark.py --archs=dcgan --norms=spectral,none --precisions=float32,mixed_bfloat16

Run it on a quiet machine: another busy process skews timings by up to 2x. Step variants
are timed interleaved (one step of each in turn, repeated) so drift hits all alike.
Prints a table and writes JSON with the machine's description.
"""
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

flags.DEFINE_list("archs", ["dcgan", "cnn"], "Architectures.")
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
flags.DEFINE_string("output", "benchmark.json", "JSON results.")
flags.DEFINE_list("sections", ["steps", "breakdown", "pipeline", "trainer"],
                  "What to measure: step timings, the parts of one step (a coarse profile), "
                  "the input pipeline, the trainer's overhead.")

FLAGS = flags.FLAGS


def _percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def _images(n=2048):
    import numpy as np  # pylint: disable=g-import-not-at-top
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _gan(arch, norm, precision, jit):
    from sngan_tf import data, models, training  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    config = training.TrainConfig(
        model=models.ModelConfig(arch=arch, norm=norm, g_batchnorm=norm != "none"),
        batch_size=FLAGS.batch_size, n_dis=FLAGS.n_dis, precision=precision, jit_compile=jit)
    gan = training.GAN(config)
    it = iter(gan.strategy.experimental_distribute_dataset(
        data.make_dataset(_images(), config.batch_size, 0)))
    return gan, it


def time_steps():
    """Median/p90 step time of every variant, interleaved."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    variants = {}
    for arch in FLAGS.archs:
        for precision in FLAGS.precisions:
            for jit in [j.lower() == "true" for j in FLAGS.jit]:
                for norm in FLAGS.norms:
                    variants[(arch, norm, precision, jit)] = _gan(arch, norm, precision, jit)
    for gan, it in variants.values():
        for _ in range(FLAGS.warmup):
            gan.train_step(it)["loss/g"].numpy()
    times = {k: [] for k in variants}
    for _ in range(FLAGS.steps):
        for key, (gan, it) in variants.items():
            start = time.perf_counter()
            gan.train_step(it)["loss/g"].numpy()
            times[key].append(time.perf_counter() - start)
    rows = []
    images = FLAGS.batch_size * FLAGS.n_dis
    for (arch, norm, precision, jit), t in times.items():
        med = statistics.median(t)
        rows.append({"arch": arch, "norm": norm, "precision": precision, "jit_compile": jit,
                     "median_ms": 1e3 * med, "p90_ms": 1e3 * _percentile(t, 90),
                     "images_per_sec": images / med,
                     "traces": variants[(arch, norm, precision, jit)][0]
                     .train_step.experimental_get_tracing_count()})
    for row in rows:  # SN overhead: spectral over none, same everything else
        if row["norm"] == "spectral":
            base = [r for r in rows if r["norm"] == "none" and all(
                r[k] == row[k] for k in ("arch", "precision", "jit_compile"))]
            if base:
                row["sn_overhead"] = row["median_ms"] / base[0]["median_ms"]
    del tf
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
    from sngan_tf import models, training  # pylint: disable=g-import-not-at-top
    steps, warm = FLAGS.trainer_steps, 20
    config = training.TrainConfig(model=models.ModelConfig(arch=arch, norm="spectral"),
                                  batch_size=FLAGS.batch_size, train_steps=warm + steps)
    with tempfile.TemporaryDirectory() as logdir:
        trainer = training.Trainer(config, logdir, _images())
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


def machine():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__, "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not tf.config.list_physical_devices("GPU") and "mixed_float16" in FLAGS.precisions:
        FLAGS.precisions = [p for p in FLAGS.precisions if p != "mixed_float16"]
    results = {"machine": machine(), "command": " ".join(sys.argv)}
    sections = set(FLAGS.sections)
    results["steps"] = time_steps() if "steps" in sections else []
    print(f"{'arch':6} {'norm':8} {'precision':15} {'xla':5} {'median ms':>10} {'p90 ms':>8} "
          f"{'img/s':>7} {'SN/none':>8}")
    for r in results["steps"]:
        print(f"{r['arch']:6} {r['norm']:8} {r['precision']:15} {str(r['jit_compile']):5} "
              f"{r['median_ms']:10.1f} {r['p90_ms']:8.1f} {r['images_per_sec']:7.0f} "
              f"{r.get('sn_overhead', float('nan')):8.3f}")
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
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {results['peak_rss_mb']:.0f} MB")
    with open(FLAGS.output, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
