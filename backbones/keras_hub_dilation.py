"""Dilate a keras-hub backbone's graph to output stride 8 or 16, by SMP's rule.

SMP (``EncoderMixin.make_dilated``) takes every stage whose stride exceeds the output stride and
gives all its convolutions stride 1 and dilation ``stage stride / output stride`` with padding
``(k // 2) * dilation``. Here the stage of a layer is its output's stride, measured on the graph
(the map sizes at a probe input), and the graph is cloned with, for every layer past the output
stride: convolutions and poolings at stride 1, spatial convolutions dilated (their dilation times the
rate) and padded ``same`` (the ``ZeroPadding2D`` that fed them, keras-hub's torch-style padding, pads
nothing), weights copied. Layers whose effect on the map size keras-seg does not know (attention,
token reshapes: MiT) refuse with an error naming them; the result's feature sizes are checked.
"""

import math

import keras

from backbones.layers import spatial_axes

CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
# Layers and ops past the output stride that leave the grid alone (or reduce it globally)
NEUTRAL = (
    keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
    keras.layers.PReLU, keras.layers.ELU, keras.layers.Add, keras.layers.Multiply, keras.layers.Subtract,
    keras.layers.Concatenate, keras.layers.Maximum, keras.layers.Average, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D, keras.layers.Dropout, keras.layers.SpatialDropout2D, keras.layers.Identity,
    keras.layers.ZeroPadding2D, *CONVS, *POOLS,
)
NEUTRAL_OPS = ("Split", "Add", "Multiply", "Subtract", "Concatenate", "Sigmoid", "Relu", "Cast")
INITIALIZERS = ("kernel_initializer", "depthwise_initializer", "pointwise_initializer")
# SMP refuses these families too (its DenseNet encoders raise for output_stride 8/16)
REFUSED = {"DenseNetBackbone": "SMP's DenseNet encoders cannot be dilated either"}


class DilationError(ValueError):
    """The backbone's graph cannot be dilated; the message says which layer stops it."""


def _is_neutral(op):
    """True for a layer that dilating may pass through or rewrite: a known grid-preserving layer,
    a (1, 1, C) reshape (squeeze-and-excite), or a block made only of such layers."""
    if not isinstance(op, keras.layers.Layer):
        return type(op).__name__ in NEUTRAL_OPS
    if isinstance(op, keras.layers.Reshape):
        return tuple(op.target_shape[:-1]) == (1, 1) or tuple(op.target_shape[1:]) == (1, 1)
    inner = op._flatten_layers(include_self=False, recursive=True)
    if not inner:
        return isinstance(op, NEUTRAL)
    return all(_is_neutral(layer) for layer in inner if not layer._flatten_layers(include_self=False))


def _producers(op):
    return [t._keras_history.operation for t in op._inbound_nodes[0].input_tensors]


def _strides(backbone, layout, probe):
    """``{id(op): output stride}`` of every operation with a rank-4 output, at a ``probe`` input."""
    ops = [op for op in backbone.operations if len(op._inbound_nodes) == 1]
    outs = [(op, op._inbound_nodes[0].output_tensors) for op in ops]
    outs = [(op, t[0]) for op, t in outs if len(t) == 1 and len(t[0].shape) == 4]
    specs = keras.Model(backbone.input, [t for _, t in outs]).compute_output_spec(probe)
    h_axis = spatial_axes(layout)[0]
    size = probe.shape[h_axis]
    return {id(op): size / spec.shape[h_axis] for (op, _), spec in zip(outs, specs)}


def _rewrite(layer, rate):
    """Stride 1 for the convolutions/poolings of ``layer`` (its sublayers for a block), spatial
    ones padded ``same`` and convolutions dilated by ``rate``; ZeroPadding2D pads nothing (its
    consumers pad)."""
    leaves = layer._flatten_layers(include_self=True, recursive=True)
    for leaf in leaves:
        if isinstance(leaf, CONVS):
            leaf.strides = (1, 1)
            if max(leaf.kernel_size) > 1:
                leaf.dilation_rate = tuple(d * rate for d in leaf.dilation_rate)
                leaf.padding = "same"
        elif isinstance(leaf, POOLS):
            leaf.strides = (1, 1)
            leaf.padding = "same"
        elif isinstance(leaf, keras.layers.ZeroPadding2D):
            leaf.padding = ((0, 0), (0, 0))


def plan_dilation(backbone, output_stride, layout, name, probe_size=256):
    """``({id(layer): dilation rate}, probe, strides)`` of the layers to rewrite for ``output_stride``;
    a DilationError naming the layer that stops it."""
    class_name = type(backbone).__name__
    if class_name in REFUSED:
        raise DilationError(f"keras-hub backbone {class_name} ({name!r}) cannot be dilated: {REFUSED[class_name]}.")
    shape = list(backbone.input.shape)
    for axis in spatial_axes(layout):
        shape[axis] = shape[axis] or probe_size
    probe = keras.KerasTensor((1, *shape[1:]), dtype=backbone.input.dtype)
    strides = _strides(backbone, layout, probe)
    consumers = {}
    for op in backbone.operations:
        if len(op._inbound_nodes) == 1:
            for producer in _producers(op):
                consumers.setdefault(id(producer), []).append(op)

    def late(op):  # past the output stride: a rate above 1
        return strides.get(id(op), 0) > output_stride * 1.01

    rates = {}
    for op in backbone.operations:
        if isinstance(op, keras.layers.ZeroPadding2D):
            fed = consumers.get(id(op), [])
            spatial = [late(c) and isinstance(c, CONVS + POOLS) and c.padding == "valid" for c in fed]
            if any(spatial) and not all(spatial):
                raise DilationError(f"keras-hub backbone {class_name} ({name!r}) cannot be dilated: "
                                    f"its padding layer {op.name!r} feeds both dilated and plain layers.")
            if fed and all(spatial):
                rates[id(op)] = 1
        elif late(op):
            if len(op._inbound_nodes) != 1 or not _is_neutral(op):
                raise DilationError(
                    f"keras-hub backbone {class_name} ({name!r}) cannot be dilated: keras-seg cannot rebuild its "
                    f"layer {op.name!r} ({type(op).__name__}) without stride; use encoder_output_stride=32."
                )
            rates[id(op)] = 2 ** round(math.log2(strides[id(op)] / output_stride))

    return rates, probe, strides


def _no_random_init(layer):
    """Zeros for the kernels of ``layer`` (and its sublayers) when built: its weights are copied in."""
    for leaf in layer._flatten_layers(include_self=True, recursive=True):
        for attr in INITIALIZERS:
            if getattr(leaf, attr, None) is not None and not leaf.built:
                setattr(leaf, attr, keras.initializers.Zeros())


def dilate(backbone, output_stride, layout, name):
    """A functional copy of ``backbone`` (same layer names, same weights) at ``output_stride`` 8 or 16."""
    rates, probe, strides = plan_dilation(backbone, output_stride, layout, name)
    pairs = []

    def clone(layer):
        copy = layer.__class__.from_config(layer.get_config())
        copy.name = layer.name  # some keras-hub blocks drop the name their config holds
        if isinstance(copy, keras.layers.Layer):
            _no_random_init(copy)
        if id(layer) in rates and isinstance(layer, keras.layers.Layer):
            _rewrite(copy, rates[id(layer)])
        pairs.append((layer, copy))
        return copy

    try:
        net = keras.models.clone_model(backbone, clone_function=clone)
    except Exception as e:  # a layer's own shape logic refuses the new grid
        raise DilationError(f"keras-hub backbone {type(backbone).__name__} ({name!r}) cannot be dilated: {e}") from e
    for layer, copy in pairs:
        if isinstance(layer, keras.layers.Layer) and layer.weights:
            copy.set_weights(layer.get_weights())
    _check(backbone, net, strides, output_stride, layout, probe, name)
    return net


def _check(backbone, net, strides, output_stride, layout, probe, name):
    """Every map of the copy whose original stride is 2 ... 32 is at that stride capped at ``output_stride``."""
    original = {op.name: strides[id(op)] for op in backbone.operations if id(op) in strides}
    after = _strides(net, layout, probe)
    for op in net.operations:
        before = original.get(op.name)
        if id(op) in after and before in (2, 4, 8, 16, 32) and after[id(op)] != min(before, output_stride):
            raise DilationError(
                f"keras-hub backbone {type(backbone).__name__} ({name!r}) cannot be dilated: its layer {op.name!r} "
                f"gives stride {after[id(op)]:g} instead of {min(before, output_stride)} when rebuilt; "
                "use encoder_output_stride=32."
            )
