"""Custom Keras layers: local response normalization (AlexNet, ANet-c6).

``alpha`` follows TensorFlow's convention, which is also the formula as printed in the AlexNet
paper (Krizhevsky et al. 2012, section 3.3): it multiplies the plain sum of squares over the
``2 * depth_radius + 1`` neighbouring channels,

    b_c = a_c / (bias + alpha * sum_{c' = c-r}^{c+r} a_{c'}^2) ** beta.

Caffe's LRN divides alpha by n = 2r + 1, so Caffe's ``alpha=1e-4`` equals ``alpha=2e-5`` here.
We keep the paper's formula with its values n=5 (depth_radius=2), k=2, alpha=1e-4, beta=0.75.

The layer is backend-portable: on the TensorFlow backend (what ``anet train`` runs) it calls
``tf.nn.local_response_normalization``; on any other Keras backend (JAX, PyTorch; used by
``scripts/gpu_bench.py`` on machines without TensorFlow) :func:`lrn_ops` computes the same
formula with ``keras.ops``. TensorFlow is imported only when the TensorFlow backend runs.
"""

from __future__ import annotations

import keras

from anet.models import LRN_ARGS


@keras.saving.register_keras_serializable(package="anet")
class LocalResponseNormalization(keras.layers.Layer):
    """``tf.nn.local_response_normalization`` across channels (channels-last) as a Keras layer.

    Computes in float32 and casts back, so it is safe under mixed precision (the squared sums
    of float16 activations overflow easily); the op has an XLA kernel, so it compiles with
    ``jit_compile=True``. Other backends use :func:`lrn_ops`.
    """

    def __init__(self, depth_radius=LRN_ARGS["depth_radius"], bias=LRN_ARGS["bias"],
                 alpha=LRN_ARGS["alpha"], beta=LRN_ARGS["beta"], **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        x = keras.ops.cast(inputs, "float32")
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            y = tf.nn.local_response_normalization(
                x, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
                beta=self.beta)
        else:
            y = lrn_ops(x, self.depth_radius, self.bias, self.alpha, self.beta)
        return keras.ops.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius, "bias": self.bias,
            "alpha": self.alpha, "beta": self.beta,
        }


def lrn_ops(x, depth_radius: int, bias: float, alpha: float, beta: float):
    """The LRN formula above in ``keras.ops`` (any backend), channels-last.

    The window sum of squares over channels ``c-r .. c+r`` is a sum of ``2r + 1`` shifted
    slices of the zero-padded squares, so channels near either edge sum over fewer neighbours,
    exactly as TensorFlow's op does.
    """
    channels = x.shape[-1]
    squares = keras.ops.square(x)
    pad = [[0, 0]] * (len(x.shape) - 1) + [[depth_radius, depth_radius]]
    padded = keras.ops.pad(squares, pad)
    window = padded[..., 0:channels]
    for i in range(1, 2 * depth_radius + 1):
        window = window + padded[..., i:i + channels]
    return x / keras.ops.power(bias + alpha * window, beta)
