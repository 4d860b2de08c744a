r"""Starts a multi-worker training run as N local worker processes.

  python scripts/launch_workers.py --num_workers=2 -- --logdir=runs/mw --batch_size=64 \
      --dataset=image_folder --data_dir=../shared/data/cifar10_jpg.zip/cifar10/train

Arguments after `--` go to every worker's `python -m sngan_tf.train`, with
`--strategy=multiworker` added. Each worker gets a `TF_CONFIG` naming all N workers on
free localhost ports and its own index; worker 0 is the chief (the only one writing the
run directory). Their output is streamed line by line, prefixed with `[worker i]`.

The launcher exits 0 when every worker did, else with the exit code of the first worker
that failed (128 + signal for a killed one). Once a worker has failed, the others get
--grace_seconds to stop by themselves (TensorFlow's coordination service notices the lost
peer) before they are killed, so the launcher always ends. SIGINT or SIGTERM to the
launcher is passed on as SIGTERM to every worker: a preemption, after which they save a
checkpoint together and exit. Rerunning the same command resumes from the last checkpoint.

On several machines, start `python -m sngan_tf.train --strategy=multiworker ...` on each
with the `TF_CONFIG` this script prints (docs/distributed.md, "Several machines").
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app
from absl import flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_integer("num_workers", 2, "Worker processes to start.")
flags.DEFINE_string("host", "localhost", "Address the workers listen on.")
flags.DEFINE_float("grace_seconds", 90, "After a worker fails, seconds the others get to "
                   "stop by themselves before they are killed.")

FLAGS = flags.FLAGS


def free_ports(n):
    """n distinct free TCP ports (bound together, then released for the workers)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses, index):
    """The TF_CONFIG of worker `index` of a cluster of workers at `addresses`."""
    return json.dumps({"cluster": {"worker": list(addresses)},
                       "task": {"type": "worker", "index": index}})


def _say(text):
    print(f"[launcher] {text}", flush=True)


def _describe(code):
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    if code == 128 + signal.SIGTERM:
        return f"exit code {code} (preempted: stopped after saving a checkpoint)"
    return f"exit code {code}"


def _stream(index, pipe):
    for line in pipe:
        sys.stdout.write(f"[worker {index}] {line}")
        sys.stdout.flush()


def launch(num_workers, train_args, host="localhost", grace_seconds=90.0):
    """Runs the workers to the end; returns the launcher's exit code."""
    if num_workers < 1:
        _say(f"--num_workers must be positive, got {num_workers}")
        return 2
    if any(a.startswith("--strategy") for a in train_args):
        _say("do not pass --strategy: the workers run --strategy=multiworker")
        return 2
    addresses = [f"{host}:{port}" for port in free_ports(num_workers)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    procs, threads = [], []
    for i in range(num_workers):
        env["TF_CONFIG"] = tf_config(addresses, i)
        cmd = [sys.executable, "-m", "sngan_tf.train", "--strategy=multiworker", *train_args]
        proc = subprocess.Popen(cmd, env=dict(env), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        procs.append(proc)
        _say(f"worker {i}: pid {proc.pid}, TF_CONFIG={env['TF_CONFIG']}")
        threads.append(threading.Thread(target=_stream, args=(i, proc.stdout), daemon=True))
        threads[-1].start()

    def forward(signum, _):
        _say(f"received {signal.Signals(signum).name}; sending SIGTERM to every worker")
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}

    first_failure, failed_at, reported = None, None, set()
    try:
        while any(p.poll() is None for p in procs):
            for i, proc in enumerate(procs):
                code = proc.poll()
                if code is None or i in reported:
                    continue
                reported.add(i)
                late = "" if failed_at is None else f", {time.time() - failed_at:.1f} s after " \
                    f"worker {first_failure} failed"
                _say(f"worker {i} ended: {_describe(code)}{late}")
                if code != 0 and first_failure is None:
                    first_failure, failed_at = i, time.time()
            if failed_at is not None and time.time() - failed_at > grace_seconds:
                for i, proc in enumerate(procs):
                    if proc.poll() is None:
                        _say(f"worker {i} still running {grace_seconds:.0f} s after worker "
                             f"{first_failure} failed; killing it")
                        proc.kill()
            time.sleep(0.1)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    for thread in threads:
        thread.join(timeout=5)
    for i, proc in enumerate(procs):
        if i not in reported:
            late = "" if failed_at is None else f", {time.time() - failed_at:.1f} s after " \
                f"worker {first_failure} failed"
            _say(f"worker {i} ended: {_describe(proc.returncode)}{late}")
            if proc.returncode != 0 and first_failure is None:
                first_failure = i
    if first_failure is None:
        _say(f"all {num_workers} workers finished")
        return 0
    code = procs[first_failure].returncode
    _say(f"failed: worker {first_failure} ({_describe(code)}); rerun the same command to "
         "resume from the last checkpoint")
    return 128 - code if code < 0 else code


def main(argv):
    return launch(FLAGS.num_workers, argv[1:], FLAGS.host, FLAGS.grace_seconds)


if __name__ == "__main__":
    app.run(main)
