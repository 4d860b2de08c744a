"""tf.distribute strategies by name, and what a lost worker's error means.

`make_strategy` builds the strategy a run asks for (`--strategy`), multi-worker included;
`describe_worker_failure` turns the error a multi-worker collective raises when a peer dies
into one line naming the worker.
"""
import re

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """A tf.distribute strategy by name: the default (one device), MirroredStrategy over
    this machine's GPUs (or CPUs), MultiWorkerMirroredStrategy (reads TF_CONFIG; create it
    before any other TensorFlow work; its coordination service aborts the collectives
    when a worker misses its heartbeats, about 10 s, see `describe_worker_failure`), or
    TPUStrategy for the TPU named by `tpu` ('' = the local one)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"--strategy={name!r} is not one of {', '.join(STRATEGIES)}.")


def describe_worker_failure(error: tf.errors.OpError) -> str:
    """One line naming the lost worker from the error a multi-worker collective raised.

    TensorFlow's coordination service (started by MultiWorkerMirroredStrategy) aborts every
    collective when a worker misses its heartbeats (about 10 s) or its connection drops;
    the message names the task, e.g. `/job:worker/replica:0/task:1`.
    """
    text = error.message or str(error)
    task = r"/job:\w+/(?:replica:\d+/)?task:(\d+)"
    # The peer, not this worker's own devices (also named in the message).
    # TF 2.15 said "Task ... heartbeat timeout"; 2.21 "tasks are unhealthy (stopped
    # sending heartbeats):" followed by the task.
    for pattern in (rf"Task ({task}) heartbeat timeout",
                    rf"unhealthy \(stopped sending heartbeats\):\s*({task})",
                    rf"remote target ({task})", rf"Error reported from ({task})"):
        match = re.search(pattern, text)
        if match:
            break
    who = f"worker {match.group(2)} ({match.group(1)})" if match else "a worker"
    if "heartbeat timeout" in text or "stopped sending heartbeats" in text:
        why = "it stopped sending heartbeats: it crashed, was killed or preempted"
    elif "Connection reset" in text or "failed to connect" in text or "Socket closed" in text:
        why = "its connection was lost: it crashed, was killed or preempted"
    else:
        why = text.strip().splitlines()[0]
    return f"lost {who}: {why} ({type(error).__name__})"
