"""The benchmark's PyTorch peer builds the same networks as sngan_tf (skipped without torch)."""
import importlib.util
import os
import sys

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from sngan_tf import models

_BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "benchmarks")
_HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _trainable(model):
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


@parameterized.product(arch=["dcgan", "cnn_code", "cnn_paper"], norm=["spectral", "batch", "none"])
class TorchPeerTest(tf.test.TestCase, parameterized.TestCase):

    def setUp(self):
        super().setUp()
        if not _HAVE_TORCH:
            self.skipTest("torch is not installed (bash scripts/run.sh bench installs it)")
        sys.path.insert(0, _BENCHMARKS)
        self.addCleanup(sys.path.remove, _BENCHMARKS)
        import torch_peer  # pylint: disable=g-import-not-at-top
        self.peer = torch_peer

    def _both(self, arch, norm):
        arch, _, variant = arch.partition("_")
        config = models.ModelConfig(arch=arch, norm=norm, g_batchnorm=norm != "none",
                                    cnn_variant=variant or "code")
        ours = (models.make_generator(config), models.make_discriminator(config))
        theirs = (self.peer.make_generator(arch, batchnorm=norm != "none"),
                  self.peer.make_discriminator(arch, norm, variant or "code"))
        return config, ours, theirs

    def test_same_trainable_parameter_counts_and_shapes(self, arch, norm):
        import torch  # pylint: disable=g-import-not-at-top
        config, (g, d), (tg, td) = self._both(arch, norm)
        self.assertEqual(self.peer.trainable_parameters(tg), _trainable(g))
        self.assertEqual(self.peer.trainable_parameters(td), _trainable(d))
        tg.eval(), td.eval()
        with torch.no_grad():
            images = tg(torch.zeros(2, config.latent_dim))
            self.assertEqual(tuple(images.shape), (2, 3, 32, 32))
            self.assertEqual(tuple(td(images).shape), (2, 1))
        self.assertEqual(
            sum(isinstance(m, torch.nn.utils.parametrize.ParametrizationList)
                for m in td.modules()),
            len([l for l in d.layers if hasattr(l, "u")]))  # SN on the same layers

    def test_one_step_updates_both_networks(self, arch, norm):
        import torch  # pylint: disable=g-import-not-at-top
        arch, _, variant = arch.partition("_")
        step = self.peer.Step(arch, norm, batch_size=4, cnn_variant=variant or "code")
        before = [p.detach().clone() for p in step.generator.parameters()] + [
            p.detach().clone() for p in step.discriminator.parameters()]
        self.assertTrue(np.isfinite(step()))
        after = list(step.generator.parameters()) + list(step.discriminator.parameters())
        self.assertTrue(all(not torch.equal(a, b) for a, b in zip(before, after)))


if __name__ == "__main__":
    tf.test.main()
