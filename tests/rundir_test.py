"""The run directory: what `RunDir` writes, its readers give back (sngan_tf.rundir)."""
import os

import numpy as np
import tensorflow as tf

from sngan_tf import rundir


class RunDirRoundTripTest(tf.test.TestCase):

    def test_files_of_one_second_follow_the_writer_counter_as_a_number(self):
        logdir = os.path.join(self.get_temp_dir(), "counters")
        os.makedirs(logdir)
        for counter, value in ((9, 1.0), (10, 2.0)):  # "10" sorts before "9" as text
            path = os.path.join(logdir, f"events.out.tfevents.100.host.7.{counter}.v2")
            with tf.io.TFRecordWriter(path) as writer:
                event = tf.compat.v1.Event(wall_time=100.0, step=2)
                event.summary.value.add(tag="loss/d", simple_value=value)
                writer.write(event.SerializeToString())
        self.assertAllClose(rundir.RunDir(logdir).read_events().scalars["loss/d"][1], [2.0])

    def _write_run(self, logdir):
        """A run written only through RunDir, resumed once (two event files)."""
        config = {"model": {"arch": "dcgan", "norm": "spectral"}, "seed": 3}
        grids = {}
        for first, last in ((0, 2), (2, 4)):  # the second "process" re-logs step 2
            run = rundir.RunDir(logdir)
            run.check_and_write_config(config, ("arch", "norm"))
            with run.writer.as_default():
                for step in range(first, last + 1):
                    tf.summary.scalar("loss/d", 10.0 * first + step, step=step)
                    tf.summary.scalar("sigma/conv0", 1.0 + step / 8, step=step)
            for step in (first, last):
                images = np.random.default_rng(step).uniform(-1, 1, (4, 8, 8, 3))
                grids[step] = rundir.image_grid(images)
                run.write_samples(step, images.astype(np.float32))
            run.write_eval_results(last, last / 2, {"fd_net": 50.0 - last + first,
                                                   "score_net": 2.0})
            run.close()
        run = rundir.RunDir(logdir)
        run.write_eval_results(4, 2.0, {"fd_net": 7.5})  # evaluated again: the last row wins
        spectra = {"conv0": np.array([0.5, 2.0, 1.0]), "dense": np.array([1.0])}
        run.write_spectra(4, spectra)
        return config, grids, spectra

    def test_every_part_reads_back(self):
        logdir = os.path.join(self.get_temp_dir(), "run")
        config, grids, spectra = self._write_run(logdir)
        run = rundir.RunDir(logdir)

        self.assertEqual(run.read_config(), config)
        events = run.read_events()
        steps, values = events.scalars["loss/d"]
        self.assertAllEqual(steps, [0, 1, 2, 3, 4])
        self.assertAllClose(values, [0, 1, 22, 23, 24])  # step 2: the later file's value
        self.assertAllClose(events.scalars["sigma/conv0"][1], 1.0 + steps / 8)
        self.assertIn("eval/fd_net", events.scalars)
        self.assertEqual(sorted(events.samples), [0, 2, 4])
        self.assertAllEqual(tf.io.decode_png(events.samples[4]).numpy(), grids[4])
        # Each training process's steps, in order; the third writer (an evaluation) trains none.
        self.assertEqual(events.spans, ((0, 2), (2, 4)))

        metrics = run.read_metrics()
        self.assertEqual(list(metrics), ["fd_net", "score_net"])  # order of first appearance
        steps, epochs, values = metrics["fd_net"]
        self.assertAllEqual(steps, [2, 4])
        self.assertAllClose(epochs, [1.0, 2.0])
        self.assertAllClose(values, [48.0, 7.5])

        self.assertEqual(list(run.sample_files()), [0, 2, 4])
        step, png = run.latest_sample()
        self.assertEqual(step, 4)
        self.assertAllEqual(tf.io.decode_png(png).numpy(), grids[4])

        step, read = run.read_spectra()
        self.assertEqual(step, 4)
        self.assertEqual(sorted(read), ["conv0", "dense"])
        self.assertAllClose(read["conv0"], [2.0, 1.0, 0.5])  # sorted, largest first
        self.assertAllClose(read["dense"], spectra["dense"])

    def test_a_run_without_files_and_a_truncated_events_file(self):
        logdir = os.path.join(self.get_temp_dir(), "empty")
        run = rundir.RunDir(logdir)
        with self.assertRaises(rundir.RunNotFoundError):
            run.read_config()
        os.makedirs(logdir)
        self.assertEqual(run.read_metrics(), {})
        self.assertEqual(run.read_spectra(), (None, {}))
        self.assertIsNone(run.latest_sample())
        with run.writer.as_default():
            for step in range(3):
                tf.summary.scalar("loss/g", float(step), step=step)
        run.close()
        (path,) = tf.io.gfile.glob(os.path.join(logdir, "events.out.tfevents.*"))
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:-5])  # the last record cut: a trainer still writing
        self.assertAllEqual(run.read_events().scalars["loss/g"][0], [0, 1])

    def test_find_runs(self):
        root = self.get_temp_dir()
        for folder in ("study/b/seed_1", "study/a", "study/b/seed_0", "study/figures"):
            os.makedirs(os.path.join(root, folder))
        for folder in ("study/b/seed_1", "study/a", "study/b/seed_0"):
            rundir.RunDir(os.path.join(root, folder)).check_and_write_config(
                {"model": {}}, ())
        found = rundir.find_runs(os.path.join(root, "study"))
        self.assertEqual([os.path.relpath(f, root) for f in found],
                         ["study/a", "study/b/seed_0", "study/b/seed_1"])
        self.assertEqual(rundir.find_runs(os.path.join(root, "study", "a")),
                         [os.path.join(root, "study", "a")])
        self.assertEqual(rundir.find_runs(os.path.join(root, "study", "figures")), [])


if __name__ == "__main__":
    tf.test.main()
