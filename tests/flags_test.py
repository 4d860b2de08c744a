"""Every experiment flag file parses into a valid configuration (a stale flag fails CI)."""
import dataclasses
import glob
import os

import tensorflow as tf
from absl import flags
from absl.testing import parameterized

from sngan_tf import train  # defines the flags

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FILES = sorted(glob.glob(os.path.join(_ROOT, "flags", "*.cfg")))


class FlagFilesTest(tf.test.TestCase, parameterized.TestCase):

    def tearDown(self):
        flags.FLAGS.unparse_flags()
        super().tearDown()

    def _parse(self, path):
        cwd = os.getcwd()
        os.chdir(_ROOT)  # nested --flagfile paths are relative to the repository root
        try:
            flags.FLAGS.unparse_flags()
            flags.FLAGS(["train", f"--flagfile={path}", "--logdir=/unused"])
        finally:
            os.chdir(cwd)
        return train.config_from_flags()

    @parameterized.parameters(*_FILES)
    def test_parses_and_names_what_it_reproduces(self, path):
        with open(path) as f:
            first = f.readline()
        self.assertTrue(first.startswith("# "), f"{path} must open with a comment line")
        self._parse(path)  # raises on an unknown flag or a bad value

    def test_study_files_differ_only_in_normalisation(self):
        configs = {n: self._parse(os.path.join(_ROOT, "flags", f"{n}.cfg"))
                   for n in ("spectral", "batchnorm", "nonorm")}
        self.assertEqual({n: (c.model.norm, c.model.g_batchnorm) for n, c in configs.items()},
                         {"spectral": ("spectral", True), "batchnorm": ("batch", True),
                          "nonorm": ("none", False)})
        self.assertEqual(flags.FLAGS.epochs, 70)
        for c in configs.values():
            self.assertEqual((c.model.arch, c.loss, c.lr_g, c.lr_d, c.beta1, c.beta2, c.batch_size),
                             ("dcgan", "non_saturating", 1e-4, 4e-4, 0.5, 0.999, 64))

    def test_fourth_study_run_is_spectral_with_torch_init(self):
        spectral = self._parse(os.path.join(_ROOT, "flags", "spectral.cfg"))
        torch_init = self._parse(os.path.join(_ROOT, "flags", "spectral_torch.cfg"))
        self.assertEqual((spectral.model.init, torch_init.model.init), ("normal", "torch"))
        self.assertEqual(dataclasses.replace(torch_init, model=dataclasses.replace(
            torch_init.model, init="normal")), spectral)

    def test_authors_rates_arm_differs_from_spectral_only_in_rates(self):
        spectral = self._parse(os.path.join(_ROOT, "flags", "spectral.cfg"))
        authors = self._parse(os.path.join(_ROOT, "flags", "spectral_authors_lr.cfg"))
        self.assertEqual((authors.lr_g, authors.lr_d), (2e-4, 2e-4))
        self.assertEqual(dataclasses.replace(authors, lr_g=1e-4, lr_d=4e-4), spectral)

    def test_paper_cnn_follows_the_authors_code(self):
        c = self._parse(os.path.join(_ROOT, "flags", "cnn_cifar10.cfg"))
        self.assertEqual((c.model.arch, c.model.cnn_variant, c.lr_g, c.lr_d, c.n_dis,
                          c.train_steps), ("cnn", "code", 2e-4, 2e-4, 1, 100000))
        d = self._parse(os.path.join(_ROOT, "flags", "table1_d.cfg"))
        self.assertEqual((d.lr_d, d.beta1, d.beta2, d.n_dis), (1e-3, 0.5, 0.9, 5))


class ModelChoicesTest(tf.test.TestCase):
    """train.py repeats the model's choices (its flags are checked before TensorFlow is
    imported); a choice added to one side only would be refused or fail late."""

    def test_enum_flags_offer_exactly_the_models_choices(self):
        from sngan_tf import models  # pylint: disable=g-import-not-at-top
        for flag, choices in (("arch", models.ARCHS), ("norm", models.NORMS),
                              ("z_distribution", models.Z_DISTRIBUTIONS),
                              ("cnn_variant", models.CNN_VARIANTS), ("init", models.INITS)):
            self.assertEqual(flags.FLAGS[flag].parser.enum_values, list(choices), flag)


if __name__ == "__main__":
    tf.test.main()
