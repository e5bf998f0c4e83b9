"""Feed-forward stylization (Johnson et al. 2016; Ulyanov et al. 2016; Dumoulin et al.
2017): instance-norm layers, the image transformer and the texture generator, and
running them (:func:`stylize`, :func:`generate_texture`). Training them with the
perceptual losses of :mod:`tfviz.synthesis.style` is not built yet."""
from .inference import StylizeError, generate_texture, num_styles, style_vector, stylize, texture_noise
from .layers import ChannelSlice, ConditionalInstanceNormalization, InstanceNormalization, ReflectionPadding2D
from .networks import texture_network, transformer_network

__all__ = ["InstanceNormalization", "ConditionalInstanceNormalization", "ReflectionPadding2D", "ChannelSlice",
           "transformer_network", "texture_network", "stylize", "generate_texture", "texture_noise", "style_vector",
           "num_styles", "StylizeError"]
