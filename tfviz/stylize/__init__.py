"""Feed-forward stylization (Johnson et al. 2016; Ulyanov et al. 2016; Dumoulin et al.
2017): instance-norm layers, the image transformer and the texture generator, and
training them with the perceptual losses of :mod:`tfviz.synthesis.style`
(:func:`train_stylizer`, :func:`train_texture_network`: tf.data, tf.distribute,
checkpoints with resume) and running them (:func:`stylize`, :func:`generate_texture`)."""
from .inference import StylizeError, generate_texture, num_styles, style_vector, stylize, texture_noise
from .layers import ChannelSlice, ConditionalInstanceNormalization, InstanceNormalization, ReflectionPadding2D
from .networks import texture_network, transformer_network
from .training import content_dataset, content_files, noise_dataset, train_stylizer, train_texture_network

__all__ = ["InstanceNormalization", "ConditionalInstanceNormalization", "ReflectionPadding2D", "ChannelSlice",
           "transformer_network", "texture_network", "stylize", "generate_texture", "texture_noise", "style_vector",
           "num_styles", "StylizeError", "train_stylizer", "train_texture_network", "content_files",
           "content_dataset", "noise_dataset"]
