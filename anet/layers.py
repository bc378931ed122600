"""Custom Keras layers: local response normalization (AlexNet, ANet-c6).

``alpha`` follows TensorFlow's convention, which is also the formula as printed in the AlexNet
paper (Krizhevsky et al. 2012, section 3.3): it multiplies the plain sum of squares over the
``2 * depth_radius + 1`` neighbouring channels,

    b_c = a_c / (bias + alpha * sum_{c' = c-r}^{c+r} a_{c'}^2) ** beta.

Caffe's LRN divides alpha by n = 2r + 1, so Caffe's ``alpha=1e-4`` equals ``alpha=2e-5`` here.
We keep the paper's formula with its values n=5 (depth_radius=2), k=2, alpha=1e-4, beta=0.75.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from anet.models import LRN_ARGS


@keras.saving.register_keras_serializable(package="anet")
class LocalResponseNormalization(keras.layers.Layer):
    """``tf.nn.local_response_normalization`` across channels (channels-last) as a Keras layer.

    Computes in float32 and casts back, so it is safe under mixed precision (the squared sums
    of float16 activations overflow easily); the op has an XLA kernel, so it compiles with
    ``jit_compile=True``.
    """

    def __init__(self, depth_radius=LRN_ARGS["depth_radius"], bias=LRN_ARGS["bias"],
                 alpha=LRN_ARGS["alpha"], beta=LRN_ARGS["beta"], **kwargs):
        super().__init__(**kwargs)
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        y = tf.nn.local_response_normalization(
            tf.cast(inputs, tf.float32), depth_radius=self.depth_radius,
            bias=self.bias, alpha=self.alpha, beta=self.beta,
        )
        return tf.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius, "bias": self.bias,
            "alpha": self.alpha, "beta": self.beta,
        }
