"""The loop's periodic actions: which steps each runs at, and each one called alone."""
import os

import keras
import numpy as np
import tensorflow as tf

from sngan_tf import loop, models, rundir, training


def _config(**kwargs):
    defaults = dict(model=models.ModelConfig(arch="dcgan", norm="spectral"), batch_size=4,
                    num_grid_samples=4, train_steps=7, log_every=2, sample_every=3,
                    lipschitz_every=3, eval_every=2, checkpoint_every=5, keep_checkpoints=5)
    defaults.update(kwargs)
    return training.TrainConfig(**defaults)


def _images(n=16):
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _evaluator(gan):
    del gan
    return {"fd_x": 1.5, "precision_x": 0.75}


class ActionsTest(tf.test.TestCase):

    def test_every(self):
        due = loop.every(3, last_step=7)
        self.assertEqual([s for s in range(1, 10) if due(s)], [3, 6, 7, 9])
        self.assertFalse(any(loop.every(0)(s) for s in range(1, 10)))

    def test_each_action_runs_at_its_steps(self):
        logdir = os.path.join(self.get_temp_dir(), "run")
        trainer = loop.Trainer(_config(generator_every=3), logdir, _images(),
                               evaluator=_evaluator)
        due = {a.name: [s for s in range(1, 8) if a.due(s)] for a in trainer.actions()}
        self.assertEqual(due, {"log": [2, 4, 6, 7], "samples": [3, 6, 7], "lipschitz": [3, 6],
                               "evaluate": [2, 4, 6], "generator": [3, 6],
                               "checkpoint": [5, 7]})
        trainer.run()
        # What the run directory holds matches: the last step's evaluation runs after the loop.
        run = rundir.RunDir(logdir)
        scalars = run.read_events().scalars
        self.assertAllEqual(scalars["loss/d"][0], [2, 4, 6, 7])
        self.assertAllEqual(scalars["lipschitz/upper_bound"][0], [3, 6])
        self.assertEqual(list(run.sample_files()), [3, 6, 7])
        self.assertAllEqual(run.read_metrics()["fd_x"][0], [2, 4, 6, 7])
        self.assertEqual([os.path.basename(p) for p in run.checkpoints()], ["ckpt-5", "ckpt-7"])
        self.assertEqual(run.read_spectra()[0], 7)
        self.assertEqual(list(run.generator_files()), [3, 6])

    def test_without_evaluator_or_lipschitz_there_is_no_such_action(self):
        trainer = loop.Trainer(_config(lipschitz_every=0),
                               os.path.join(self.get_temp_dir(), "bare"), _images())
        self.assertEqual([a.name for a in trainer.actions()], ["log", "samples", "checkpoint"])

    def test_each_action_alone(self):
        logdir = os.path.join(self.get_temp_dir(), "alone")
        trainer = loop.Trainer(_config(), logdir, _images(), evaluator=_evaluator)
        run = rundir.RunDir(logdir)
        out = {"loss/d": 1.25, "loss/g": 0.5, "d_out/real": 0.25, "d_out/fake": -0.25,
               "finite": True}
        self.assertEqual(trainer.log(0, out), {k: v for k, v in out.items() if k != "finite"})
        path = trainer.write_samples(0)
        bounds = trainer.measure_lipschitz(0)
        self.assertEqual(trainer.evaluate(0), {"fd_x": 1.5, "precision_x": 0.75})
        trainer.save()
        kept = trainer.keep_generator(0)
        trainer.write_spectra()
        trainer.writer.flush()

        scalars = run.read_events().scalars
        self.assertAllClose(scalars["loss/d"][1], [1.25])
        self.assertAllClose(scalars["perf/epoch"][1], [0.0])
        self.assertLen([t for t in scalars if t.startswith("sigma/")], 4)
        self.assertEqual(run.sample_files(), {0: path})
        self.assertGreater(bounds["upper_bound"], 0)
        self.assertAllClose(scalars["lipschitz/upper_bound"][1], [bounds["upper_bound"]])
        self.assertAllClose(run.read_metrics()["fd_x"][2], [1.5])
        # The bare tags the issue names, TensorBoard only; metrics.csv keeps the network's name.
        self.assertAllClose(scalars["eval/precision"][1], [0.75])
        self.assertAllClose(scalars["eval/precision_x"][1], [0.75])
        self.assertNotIn("precision", run.read_metrics())
        self.assertEqual([os.path.basename(p) for p in run.checkpoints()], ["ckpt-0"])
        step, spectra = run.read_spectra()
        self.assertEqual(step, 0)
        self.assertLen(spectra, 4)
        self.assertEqual(run.generator_files(), {0: kept})
        keras.utils.set_random_seed(1)
        fresh = models.make_generator(trainer.config.model)  # other initial weights...
        z = models.sample_z(trainer.config.model, 2, [0, 0])
        before = fresh(z, training=False)
        fresh.load_weights(kept)  # ...replaced by the kept ones
        self.assertNotAllClose(before, trainer.gan.generator(z, training=False))
        self.assertAllClose(fresh(z, training=False), trainer.gan.generator(z, training=False))
        self.assertEqual(trainer.step, 0)  # no action trains


if __name__ == "__main__":
    tf.test.main()
