"""Receptive fields: published VGG16 numbers, and a brute-force check (perturb one input
pixel, see which output units change) on hand-built stacks with 'valid' padding, a
dilated conv, a stride-3 pool, TensorFlow's asymmetric 'same' padding, explicit
ZeroPadding2D, depthwise/separable convs, a residual Add, a Concatenate of branches with
different fields and a nested model."""
import numpy as np
import pytest

import tfviz
from tfviz.inspect import receptive_field
from tfviz.utils import ModelError, LayerKindError


def _bundle(model):
    return tfviz.load_model(model, preprocess="raw")


def test_vgg16_published_fields():
    import keras
    b = _bundle(keras.applications.VGG16(weights=None))
    got = {n: (receptive_field(b, n).size, receptive_field(b, n).stride)
           for n in ("block1_conv1", "block3_conv3", "block5_conv3", "block5_pool")}
    assert got == {"block1_conv1": ((3, 3), (1, 1)), "block3_conv3": ((40, 40), (4, 4)),
                   "block5_conv3": ((196, 196), (16, 16)), "block5_pool": ((212, 212), (32, 32))}
    size, stride, offset = receptive_field(b, "block5_pool")   # unpacks as a triple
    assert offset == (-90, -90)   # 'same' 3x3 convs pad one pixel: 1 + 2 + 4 + 8 * 3 + 16 * 3 ... = 90


def _positive(seed):
    import keras
    return keras.initializers.RandomUniform(0.1, 1.0, seed=seed)


def _stack():
    """'valid', dilation, stride-3 pool, 'same' stride 2 on an odd size, ZeroPadding2D,
    depthwise and separable convs, batch norm, a residual Add, a Concatenate of branches
    whose fields differ, and a nested Sequential -- all with positive weights so every
    input pixel inside a field changes the unit."""
    import keras
    from keras import layers as L
    inp = keras.Input((45, 38, 3))
    x = L.Conv2D(2, 3, padding="valid", use_bias=False, kernel_initializer=_positive(1), name="valid3")(inp)
    x = L.Conv2D(2, 3, dilation_rate=2, padding="valid", use_bias=False, kernel_initializer=_positive(2),
                 name="dilated")(x)
    x = L.AveragePooling2D(3, strides=3, name="pool3")(x)
    x = L.Conv2D(2, 3, strides=2, padding="same", use_bias=False, kernel_initializer=_positive(3),
                 name="same_s2")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ZeroPadding2D(((1, 0), (1, 1)), name="zpad")(x)
    x = L.DepthwiseConv2D(2, padding="valid", use_bias=False, depthwise_initializer=_positive(4), name="dw")(x)
    a = L.Conv2D(2, 3, padding="same", use_bias=False, kernel_initializer=_positive(5), name="branch_a")(x)
    res = L.Add(name="add")([a, x])
    b = L.SeparableConv2D(2, 3, padding="same", use_bias=False, depthwise_initializer=_positive(6),
                          pointwise_initializer=_positive(7), name="branch_sep")(res)
    c = L.ZeroPadding2D(1, name="c_pad")(res)
    c = L.Conv2D(1, (3, 1), padding="valid", use_bias=False, kernel_initializer=_positive(8), name="c_conv")(c)
    c = L.Cropping2D(((0, 0), (1, 1)), name="c_crop")(c)
    cat = L.Concatenate(name="cat")([b, c])
    inner = keras.Sequential([L.Conv2D(2, 2, padding="valid", use_bias=False, kernel_initializer=_positive(9),
                                       name="inner_conv"),
                              L.MaxPooling2D(1, name="inner_id")], name="inner")
    out = inner(cat)
    return keras.Model(inp, out)


def _brute_boxes(model, layer_name):
    """For every output unit of the layer, the bounding box of the input pixels whose
    perturbation changes it."""
    import keras
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output if "/" not in layer_name
                      else model.get_layer("inner").output)
    h, w = model.inputs[0].shape[1:3]
    base = np.zeros((1, h, w, 3), np.float32)
    pert = np.zeros((h * w, h, w, 3), np.float32)  # one pixel of the first channel at a time
    pert[np.arange(h * w), np.repeat(np.arange(h), w), np.tile(np.arange(w), h), 0] = 1.0
    y0 = sub.predict(base, verbose=0)
    ys = sub.predict(pert, batch_size=256, verbose=0)
    changed = np.abs(ys - y0).max(-1) > 1e-6                     # [h*w, oh, ow]
    oh, ow = changed.shape[1:]
    boxes = np.full((oh, ow, 4), -1, int)   # -1: a unit of pure padding, no pixel reaches it
    for i in range(oh):
        for j in range(ow):
            pix = np.flatnonzero(changed[:, i, j])
            if len(pix):
                ry, rx = pix // w, pix % w
                boxes[i, j] = (ry.min(), rx.min(), ry.max() + 1, rx.max() + 1)
    return boxes, (h, w)


@pytest.mark.parametrize("layer", ["valid3", "dilated", "pool3", "same_s2", "zpad", "dw", "add", "cat",
                                   "inner_conv"])
def test_fields_match_brute_force(layer):
    model = _stack()
    b = _bundle(model)
    rf = receptive_field(b, layer)
    brute, (h, w) = _brute_boxes(model, layer if layer != "inner_conv" else "inner/")
    assert brute.shape[:2] == rf.output_shape
    interior = 0
    for i in range(brute.shape[0]):
        for j in range(brute.shape[1]):
            exact = rf.box(i, j, clip=True)
            if brute[i, j, 0] < 0:   # only the zeros ZeroPadding2D adds see nothing
                assert layer == "zpad" and (i == 0 or j in (0, brute.shape[1] - 1)), (layer, i, j)
                continue
            assert tuple(brute[i, j]) == exact, (layer, i, j, rf)
            box = rf.box(i, j)
            (y0, y1), (x0, x1) = rf.extent
            if box[0] >= y0 and box[1] >= x0 and box[2] <= y1 and box[3] <= x1:
                interior += 1
                assert tuple(brute[i, j]) == box   # away from borders the plain field is exact
    if layer in ("valid3", "dilated", "pool3", "same_s2"):   # later fields cover the whole small image
        assert interior > 0


def test_stack_numbers_by_hand():
    b = _bundle(_stack())
    # valid 3x3: 3/1/0; dilated 3x3 (d=2) adds 4: 7/1/0; pool 3/3 adds 2: 9/3/0;
    # 'same' 3x3 stride 2: on 13 rows TF pads 2 (1 before): offset -3; on 10 columns it
    # pads 1, all after: offset 0.
    assert tuple(receptive_field(b, "pool3")) == ((9, 9), (3, 3), (0, 0))
    assert receptive_field(b, "pool3").output_shape == (13, 10)
    assert tuple(receptive_field(b, "same_s2")) == ((15, 15), (6, 6), (-3, 0))
    # ZeroPadding2D ((1, 0), (1, 1)) shifts the offset by 1 row and 1 column of stride 6.
    assert tuple(receptive_field(b, "zpad")) == ((15, 15), (6, 6), (-9, -6))


def test_efficientnet_lite0_explicit_padding():
    """efficientnet_lite0 pads explicitly (ZeroPadding2D k//2) before 'valid' convs."""
    from tfviz.zoo import efficientnet_lite0 as lite
    b = tfviz.load_model(lite.build(), preprocess="torch")
    assert tuple(receptive_field(b, "stem_conv")) == ((3, 3), (2, 2), (-1, -1))
    # stem 3/2/-1 -> block1a 3x3 dw: 7/2/-3 -> block2a 3x3 stride 2 dw: 11/4/-5
    assert tuple(receptive_field(b, "block2a_dwconv")) == ((11, 11), (4, 4), (-5, -5))
    assert receptive_field(b, "top_conv").output_shape == (7, 7)
    assert receptive_field(b, "top_conv").stride == (32, 32)


def test_not_spatial_and_unsupported_layers():
    import keras
    from keras import layers as L
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, name="c")(inp)
    u = L.UpSampling2D(2, name="up")(x)
    u = L.Conv2D(4, 3, name="after_up")(u)
    g = L.GlobalAveragePooling2D(name="gap")(u)
    out = L.Dense(3, name="dense")(g)
    b = _bundle(keras.Model(inp, out))
    with pytest.raises(LayerKindError, match="spatial layers: .*c"):
        receptive_field(b, "dense")
    assert tuple(receptive_field(b, "c")) == ((3, 3), (1, 1), (0, 0))   # before the upsampling: fine
    with pytest.raises(ModelError, match="after_up.*upsampling layer 'up'"):
        receptive_field(b, "after_up")
