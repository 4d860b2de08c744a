"""sngan_tf: Spectral Normalization GANs (Miyato et al., ICLR 2018) in TensorFlow 2 / Keras."""
import pathlib

from setuptools import find_packages, setup

_HERE = pathlib.Path(__file__).parent


def _requirements(name):
    lines = (_HERE / name).read_text().splitlines()
    return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


setup(
      name="sngan_tf",
      version="0.1.0",
      description="Spectral Normalization GANs in TensorFlow 2 / Keras, with TF-GAN evaluation.",
      long_description=(_HERE / "README.md").read_text(),
      long_description_content_type="text/markdown",
      packages=find_packages(include=["sngan_tf", "sngan_tf.*"]),
      python_requires=">=3.10,<3.14",
      install_requires=_requirements("requirements.txt"),
      extras_require={
          "test": _requirements("requirements-test.txt"),
          # The CUDA build of the same TensorFlow (pulls the NVIDIA CUDA/cuDNN wheels; Linux).
          "gpu": ["tensorflow[and-cuda]==2.21.0"],
      },
      entry_points={
          "console_scripts": [
              "sngan-train=sngan_tf.train:run",
              "sngan-evaluate=sngan_tf.evaluate:run",
              "sngan-sample=sngan_tf.sample:run",
          ],
      },
)
