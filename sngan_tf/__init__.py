"""sngan_tf: Spectral Normalization GANs (Miyato et al., ICLR 2018) in TensorFlow 2 / Keras.

Importing the package turns TensorFlow's oneDNN CPU kernels on (unless TF_ENABLE_ONEDNN_OPTS
is set): see `sngan_tf.cpu`. It has effect only when the package is imported before
TensorFlow, as every program of the package (`python -m sngan_tf.train`, ...) does.
"""
from sngan_tf import cpu as _cpu

_cpu.prefer_onednn()
