"""The feed-forward networks: Johnson et al.'s image transformer (one style, or many
with conditional instance norm) and Ulyanov et al.'s texture generator. Both are fully
convolutional: any image size (a multiple of 4 for the transformer, which
:func:`tfviz.stylize.stylize` pads to), pixels in 0..1 in and out."""
from __future__ import annotations

import keras
from keras import layers

from .layers import ChannelSlice, ConditionalInstanceNormalization, InstanceNormalization, ReflectionPadding2D, \
    StylizeError


def _check(num_styles, width):
    if not isinstance(num_styles, int) or isinstance(num_styles, bool) or num_styles < 1:
        raise StylizeError(f"num_styles must be a positive integer, got {num_styles!r}")
    if not width > 0:
        raise StylizeError(f"width must be positive, got {width!r}")


def transformer_network(num_styles: int = 1, width: float = 1.0, name: str | None = None):
    """Johnson et al. 2016's image transformation network.

    9x9 conv (32), two stride-2 3x3 convs (64, 128), five residual blocks (128), two
    upsampling stages (nearest-neighbour x2 then a 3x3 conv: resize-convolution, no
    checkerboard artifacts), a 9x9 conv to RGB and a sigmoid; reflection padding
    everywhere; instance norm after every conv but the last. ``width`` scales the
    channel counts. With ``num_styles > 1`` every instance norm is conditional and the
    model takes ``[images, style_weights]`` (``[N, num_styles]``); otherwise ``images``
    alone. Images are float RGB in 0..1, ``[N, H, W, 3]`` with H and W multiples of 4."""
    _check(num_styles, width)
    ch = [max(1, int(round(c * width))) for c in (32, 64, 128)]
    img = keras.Input((None, None, 3), name="image")
    inputs = [img]
    if num_styles > 1:
        style = keras.Input((num_styles,), name="style")
        inputs.append(style)

    def norm(x, nm):
        if num_styles > 1:
            return ConditionalInstanceNormalization(num_styles, name=nm)([x, style])
        return InstanceNormalization(name=nm)(x)

    def conv(x, filters, k, stride, nm, relu=True):
        x = ReflectionPadding2D(k // 2, name=nm + "_pad")(x)
        x = layers.Conv2D(filters, k, stride, padding="valid", name=nm)(x)
        x = norm(x, nm + "_norm")
        return layers.ReLU(name=nm + "_relu")(x) if relu else x

    x = conv(img, ch[0], 9, 1, "down1")
    x = conv(x, ch[1], 3, 2, "down2")
    x = conv(x, ch[2], 3, 2, "down3")
    for i in range(1, 6):
        h = conv(x, ch[2], 3, 1, f"res{i}a")
        h = conv(h, ch[2], 3, 1, f"res{i}b", relu=False)
        x = layers.Add(name=f"res{i}")([x, h])
    x = layers.UpSampling2D(2, interpolation="nearest", name="up1_resize")(x)
    x = conv(x, ch[1], 3, 1, "up1")
    x = layers.UpSampling2D(2, interpolation="nearest", name="up2_resize")(x)
    x = conv(x, ch[0], 3, 1, "up2")
    x = ReflectionPadding2D(4, name="out_pad")(x)
    x = layers.Conv2D(3, 9, padding="valid", name="out")(x)
    out = layers.Activation("sigmoid", name="rgb")(x)
    return keras.Model(inputs, out, name=name or f"transformer_{num_styles}style{'s' if num_styles > 1 else ''}")


def texture_network(scales: int = 5, width: float = 1.0, noise_channels: int = 3, name: str = "texture_network"):
    """Ulyanov et al. 2016's texture generator: noise at ``scales`` resolutions (each
    half the last) goes through conv blocks and is joined coarse to fine (upsample,
    instance-normalize, concatenate, convolve) into an RGB image in 0..1.

    The model's one input is full-resolution noise with ``scales * noise_channels``
    channels (:func:`tfviz.stylize.texture_noise` makes it); scale ``k`` averages its
    slice over ``2^k x 2^k`` blocks (rescaled to unit variance), so one noise tensor of
    any size (a multiple of ``2^(scales-1)``) gives a texture of that size."""
    if not isinstance(scales, int) or scales < 1:
        raise StylizeError(f"scales must be a positive integer, got {scales!r}")
    if not width > 0:
        raise StylizeError(f"width must be positive, got {width!r}")
    c = max(1, int(round(8 * width)))
    noise = keras.Input((None, None, scales * noise_channels), name="noise")

    def block(x, filters, nm):
        for j, k in enumerate((3, 3, 1)):
            if k > 1:
                x = ReflectionPadding2D(1, name=f"{nm}_pad{j}")(x)
            x = layers.Conv2D(filters, k, padding="valid", name=f"{nm}_conv{j}")(x)
            x = InstanceNormalization(name=f"{nm}_norm{j}")(x)
            x = layers.LeakyReLU(0.01, name=f"{nm}_act{j}")(x)
        return x

    joined, filters = None, c
    for k in reversed(range(scales)):
        z = ChannelSlice(k * noise_channels, (k + 1) * noise_channels, name=f"noise{k}_slice")(noise)
        if k:
            z = layers.AveragePooling2D(2 ** k, name=f"noise{k}_pool")(z)
            z = layers.Rescaling(float(2 ** k), name=f"noise{k}_unit")(z)   # back to unit variance
        z = block(z, c, f"scale{k}")
        if joined is None:
            joined = z
        else:
            up = layers.UpSampling2D(2, interpolation="nearest", name=f"join{k}_up")(joined)
            up = InstanceNormalization(name=f"join{k}_norm_coarse")(up)
            z = InstanceNormalization(name=f"join{k}_norm_fine")(z)
            filters += c
            joined = block(layers.Concatenate(name=f"join{k}")([up, z]), filters, f"join{k}")
    x = layers.Conv2D(3, 1, name="out")(joined)
    out = layers.Activation("sigmoid", name="rgb")(x)
    return keras.Model(noise, out, name=name)
