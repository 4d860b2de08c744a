r"""Step time and images/s of multi-worker training for 1, 2, ... local workers.

From the repository root (relative --output paths are taken from the working directory):
  .venv/bin/python benchmarks/benchmark_workers.py --workers=1,2 --per_worker_batch=32 \
      --steps=40 --output=docs/benchmarks/bench_workers.json

Each configuration is a real run through scripts/launch_workers.py (MultiWorkerMirroredStrategy
over gRPC on localhost, one CPU replica per worker) with the per-worker batch fixed, so
the global batch grows with the workers (weak scaling). The rate is read from worker 0's
progress lines (images/s over each `--log_every` interval, samples and checkpoints
excluded); the first interval (tracing, cluster start) is dropped and the median of the
others reported. With `--threads_per_worker=1` every worker computes on one core, so as
long as workers <= cores the step-time growth over 1 worker is the cost of the
collectives (gradient all-reduce, synchronised batch norm) plus contention for memory
and the loopback network. Local workers share one machine: this is not a measurement
of several machines, GPUs or a real network.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from absl import app
from absl import flags
from PIL import Image

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository root
sys.path.insert(0, _ROOT)
from sngan_tf import cpu  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_list("workers", ["1", "2"], "Numbers of local workers to measure.")
flags.DEFINE_integer("per_worker_batch", 32, "Batch per worker (global = this x workers).")
flags.DEFINE_integer("steps", 40, "Training steps per configuration.")
flags.DEFINE_integer("log_every", 5, "Steps per measured interval.")
flags.DEFINE_integer("threads_per_worker", 1, "TensorFlow intra- and inter-op threads per "
                     "worker (0: TensorFlow's default, all cores).")
flags.DEFINE_enum("norm", "spectral", ["spectral", "batch", "none"], "D normalisation.")
flags.DEFINE_string("output", None, "Also write the results here as JSON.")

FLAGS = flags.FLAGS
_RATE = re.compile(r"\[worker 0\].* step (\d+)/\d+ .* (\d+) img/s")


def measure(num_workers, data_dir, root):
    """Runs one configuration; returns its figures."""
    batch = FLAGS.per_worker_batch * num_workers
    logdir = os.path.join(root, f"workers{num_workers}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if FLAGS.threads_per_worker:
        env["TF_NUM_INTRAOP_THREADS"] = env["TF_NUM_INTEROP_THREADS"] = str(
            FLAGS.threads_per_worker)
    cmd = [sys.executable, os.path.join(_ROOT, "scripts", "launch_workers.py"),
           f"--num_workers={num_workers}", "--", "--dataset=image_folder",
           f"--data_dir={data_dir}", f"--cache_dir={root}/cache", f"--logdir={logdir}",
           f"--norm={FLAGS.norm}", f"--batch_size={batch}", f"--train_steps={FLAGS.steps}",
           f"--log_every={FLAGS.log_every}", "--sample_every=1000000",
           "--checkpoint_every=1000000"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, cwd=_ROOT)
    if out.returncode:
        raise RuntimeError(f"{num_workers} workers failed:\n{out.stdout[-3000:]}")
    rates = [int(m.group(2)) for m in map(_RATE.search, out.stdout.splitlines()) if m]
    rates = rates[1:]  # the first interval holds tracing and the cluster start
    rate = statistics.median(rates)
    return {"workers": num_workers, "global_batch": batch, "images_per_sec": rate,
            "step_ms": 1000.0 * batch / rate, "intervals": rates}


def main(argv):
    del argv
    root = tempfile.mkdtemp(prefix="bench_workers_")
    counts = [int(w) for w in FLAGS.workers]
    data_dir = os.path.join(root, "images")
    os.makedirs(data_dir)
    rng = np.random.default_rng(0)
    for i in range(max(256, 2 * FLAGS.per_worker_batch * max(counts))):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            os.path.join(data_dir, f"{i:04d}.png"))
    results = [measure(n, data_dir, root) for n in counts]
    base = results[0]
    machine = cpu.cpu_description()
    print(f"machine: {machine['cpu']} {machine['cpu_family_model'] or ''} "
          f"({', '.join(machine['cpu_flags']) or 'no AVX2'}), {machine['cores']} cores")
    print(f"dcgan, {FLAGS.norm} D, {FLAGS.per_worker_batch} images per worker per step, "
          f"{FLAGS.threads_per_worker or 'default'} thread(s) per worker")
    print("workers  global batch  step ms  images/s  step time vs 1 worker")
    for r in results:
        r["step_ratio"] = r["step_ms"] / base["step_ms"] if base["workers"] == 1 else None
        ratio = f"{r['step_ratio']:.2f}x" if r["step_ratio"] else "-"
        print(f"{r['workers']:7d}  {r['global_batch']:12d}  {r['step_ms']:7.0f}  "
              f"{r['images_per_sec']:8.0f}  {ratio}")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({"per_worker_batch": FLAGS.per_worker_batch, "steps": FLAGS.steps,
                       "log_every": FLAGS.log_every, "norm": FLAGS.norm,
                       "threads_per_worker": FLAGS.threads_per_worker,
                       "machine": machine, "results": results}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
