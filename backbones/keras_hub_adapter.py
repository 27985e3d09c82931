"""keras-hub backbones as keras-seg encoders: ``encoder_name="keras_hub:<preset>"``.

``<preset>`` is anything ``keras_hub.models.Backbone.from_preset`` accepts: a local preset
folder (``save_to_preset``), ``kaggle://...``, ``hf://...`` (timm checkpoints included, which
keras-hub converts on the fly), a built-in preset name. ``register_keras_hub_backbone`` puts a
Backbone instance under a name of one's choice. ``encoder_weights=None`` builds the backbone from
the preset's config with random weights; any other value loads the preset's (the instance's) weights.

The contract (``backbones.encoder``): for strides 2, 4, ..., 32 the feature whose spatial size is
the input's divided by the stride, taken from ``pyramid_outputs`` (keras-hub's level labels are not
strides: MiT labels its stride-4 map P1, ResNet starts at P2) or else from the backbone's last layer
with that size (ResNet's stem, backbones without a pyramid such as MobileNet); with no stride-2 map at
all (transformer-style MiT) SMP's 0-channel dummy takes its place. Sizes are measured on the
backbone's graph (``compute_output_spec``), never read from labels. Output stride 8/16: the built
backbone's graph dilated by SMP's rule (``backbones.keras_hub_dilation``).

keras_hub is optional (``pip install keras-hub``); it is imported only when such an encoder is used.
"""

import collections
import contextlib
import json

import keras
import numpy as np

from backbones import registry
from backbones.keras_hub_dilation import DilationError, dilate, plan_dilation
from backbones.layers import channel_axis, move_channels_back, move_channels_last, spatial_axes
from weight_ports.first_conv import adapt_first_conv
from weight_ports.naming import torch_path

PREFIX = "keras_hub:"
KIND = "keras_hub"
FEATURES_NAME = "keras_hub_backbone"
STRIDES = (2, 4, 8, 16, 32)
PROBE_SIZE = 256  # spatial size at which a backbone with a dynamic input is measured
SHAPE_KEYS = ("image_shape", "input_shape")  # what keras-hub backbones call their input shape
# Backbones that compute channels_last only (their own code fixes the layout): a channels_first
# encoder runs them between two transposes.
CHANNELS_LAST_ONLY = ("MiTBackbone", "EfficientNetBackbone")


def import_keras_hub():
    """The keras_hub module; an ImportError saying how to install it when it is missing."""
    try:
        import keras_hub
    except ImportError as e:
        raise ImportError(
            "keras-hub encoders (encoder_name='keras_hub:<preset>') need the keras-hub package: "
            "pip install keras-hub (or pip install 'keras-seg[hub]')."
        ) from e
    return keras_hub


@contextlib.contextmanager
def _building(data_format):
    """While a backbone is built: a fresh counter for Keras's automatic names, so that every build
    of one config names its layers alike (features are picked by layer name), and the global image
    data format set to ``data_format`` (DenseNet and MobileNet read it instead of an argument)."""
    from keras.src.backend.common import global_state

    outer = global_state.get_global_attribute("object_name_uids")
    previous_format = keras.config.image_data_format()
    inner = collections.defaultdict(int)
    global_state.set_global_attribute("object_name_uids", inner)
    keras.config.set_image_data_format(data_format)
    try:
        yield
    finally:
        keras.config.set_image_data_format(previous_format)
        merged = collections.defaultdict(int, outer or {})
        for key, count in inner.items():  # names used inside stay taken outside
            merged[key] = max(merged[key], count)
        global_state.set_global_attribute("object_name_uids", merged)


def _layout(class_name, data_format):
    return "channels_last" if class_name in CHANNELS_LAST_ONLY else data_format


def _input_shape(config, base_format):
    """``(key, channels, (H, W))`` of a serialized backbone config's input shape (key None: it has none)."""
    inner = config["config"]
    key = next((k for k in SHAPE_KEYS if isinstance(inner.get(k), (list, tuple)) and len(inner[k]) == 3), None)
    if key is None:
        return None, 3, (None, None)
    shape = list(inner[key])
    c, h, w = shape if base_format == "channels_first" else (shape[2], shape[0], shape[1])
    return key, c, (h, w)


def build_backbone(backbone, base_format, data_format, in_channels=None, image_size=None):
    """A fresh keras-hub backbone from ``backbone`` (its serialized config, JSON), random weights,
    in ``data_format`` (channels_last for CHANNELS_LAST_ONLY), with ``in_channels`` input channels,
    input ``image_size`` (H, W) (None: any size), under the current dtype policy; and its layout."""
    import_keras_hub()
    config = json.loads(backbone)
    inner = config["config"]
    layout = _layout(config["class_name"], data_format)
    key, c, _ = _input_shape(config, base_format)
    if key is not None:
        c = in_channels or c
        h, w = image_size or (None, None)
        inner[key] = [h, w, c] if layout == "channels_last" else [c, h, w]
    elif (in_channels is not None and in_channels != 3) or layout != base_format:
        raise ValueError(
            f"keras-hub backbone {config['class_name']} has no input-shape setting ({' or '.join(SHAPE_KEYS)}), "
            f"so keras-seg cannot build it with in_channels={in_channels} or data_format={data_format!r}."
        )
    if "data_format" in inner:
        inner["data_format"] = layout
    inner["dtype"] = keras.config.dtype_policy().name  # as every keras-seg encoder: the global policy
    with _building(layout):
        return keras.saving.deserialize_keras_object(config), layout


def _base_build(backbone, base_format):
    """The backbone built in its own layout for any input size, or, when it cannot be (MiT computes
    static shapes), for its config's size; returns ``(backbone, layout, image_size)``."""
    _, _, size = _input_shape(json.loads(backbone), base_format)
    try:
        return (*build_backbone(backbone, base_format, base_format), None)
    except Exception:
        if None in size:
            raise
    return (*build_backbone(backbone, base_format, base_format, image_size=size), size)


def _operation(backbone, name):
    found = [op for op in backbone.operations if op.name == name]
    if len(found) != 1:
        raise ValueError(f"keras-hub backbone {backbone.name} has no single layer {name!r} (its feature at one stride).")
    return found[0]


def _feature_maps(backbone, layout):
    """``{stride: (layer name, channels)}`` for strides 2 ... 32, measured on ``backbone``'s graph."""
    pyramid = getattr(backbone, "pyramid_outputs", None) or {}
    pyramid_ids = {id(t) for t in pyramid.values()}
    candidates = []  # (name, tensor, from the pyramid): every rank-4 output of a layer called once
    for op in backbone.operations:
        if len(getattr(op, "_inbound_nodes", [])) != 1:
            continue
        out = op._inbound_nodes[0].output_tensors
        if len(out) == 1 and len(out[0].shape) == 4 and out[0] is not backbone.input:
            candidates.append((op.name, out[0], id(out[0]) in pyramid_ids))
    shape = list(backbone.input.shape[1:])
    h_axis, w_axis = (a - 1 for a in spatial_axes(layout))
    shape[h_axis] = shape[h_axis] or PROBE_SIZE
    shape[w_axis] = shape[w_axis] or PROBE_SIZE
    probe = keras.Model(backbone.input, [t for _, t, _ in candidates])
    specs = probe.compute_output_spec(keras.KerasTensor((1, *shape), dtype=backbone.input.dtype))
    specs = specs if isinstance(specs, (list, tuple)) else [specs]
    found = {}
    for (name, tensor, in_pyramid), spec in zip(candidates, specs):
        h, w = spec.shape[h_axis + 1], spec.shape[w_axis + 1]
        stride = shape[h_axis] // h if h else 0
        if stride in STRIDES and h * stride == shape[h_axis] and w * stride == shape[w_axis]:
            channels = spec.shape[channel_axis(layout)]
            best = found.get(stride)
            if best is None or in_pyramid or not best[2]:  # the last one, pyramid outputs first
                found[stride] = (name, channels, in_pyramid)
    return {s: (n, c) for s, (n, c, _) in found.items()}


class BackboneFeatures(keras.Model):
    """A keras-hub backbone's graph from its input to the selected feature maps.

    ``source_index[i]`` is the position of this model's i-th layer with weights among the full
    backbone's layers with weights (where pretrained weights come from). Its variables map to
    checkpoint keys ``<prefix>.<source index>.<variable index>`` in Keras layout (``smp_params``):
    keras-seg reads them back, SMP has no such encoder.
    """

    def __init__(self, backbone, outputs, name=FEATURES_NAME):
        super().__init__(inputs=backbone.input, outputs=outputs, name=name)
        position = {id(layer): i for i, layer in enumerate(layer for layer in backbone.layers if layer.weights)}
        self.source_index = tuple(position[id(layer)] for layer in self.layers if layer.weights)

    def smp_params(self, prefix):
        from weight_ports.translate import Param

        same = lambda a: a  # noqa: E731
        layers = [layer for layer in self.layers if layer.weights]
        return [
            Param(f"{torch_path(prefix)}.{index}.{j}", variable, same, same)
            for layer, index in zip(layers, self.source_index)
            for j, variable in enumerate(layer.weights)
        ]


def build_features(x, *, depth, output_stride, data_format, backbone, base_format, features, image_size):
    """The encoder builder: ``[x, stride-2 map or None, stride-4 map, ...]`` (depth + 1 entries)."""
    names = features[:depth]
    if all(n is None for n in names):  # depth 1 of a backbone without a stride-2 map: nothing to build
        return [x] + [None] * depth
    in_channels = x.shape[channel_axis(data_format)]
    net, layout = build_backbone(backbone, base_format, data_format, in_channels, image_size)
    if output_stride < STRIDES[-1]:
        with _building(layout):
            net = dilate(net, output_stride, layout, FEATURES_NAME)
    model = BackboneFeatures(net, [_operation(net, n).output for n in names if n is not None])
    maps = model(move_channels_last(x, data_format) if layout != data_format else x)
    maps = list(maps) if isinstance(maps, (list, tuple)) else [maps]
    if layout != data_format:
        maps = [move_channels_back(m, data_format) for m in maps]
    maps = iter(maps)
    return [x] + [next(maps) if n is not None else None for n in names]


def copy_backbone_weights(source, features):
    """Load the weights of ``source`` (a full keras-hub backbone of the same config) into the
    ``BackboneFeatures`` model ``features``; a 3-channel first conv meeting other input channels is
    adapted by SMP's rule."""
    weighted = [layer for layer in source.layers if layer.weights]
    targets = [layer for layer in features.layers if layer.weights]
    for layer, index in zip(targets, features.source_index):
        origin = weighted[index] if index < len(weighted) else None
        if origin is None or type(origin) is not type(layer) or len(origin.weights) != len(layer.weights):
            raise ValueError(f"The pretrained backbone {source.name} does not have the structure of encoder layer {layer.name!r}.")
        for variable, weight in zip(layer.weights, origin.weights):
            value = keras.ops.convert_to_numpy(weight)
            if tuple(value.shape) != tuple(variable.shape):
                value = _adapt_kernel(value, tuple(variable.shape), layer.name)
            variable.assign(value.astype(keras.backend.standardize_dtype(variable.dtype)))


def _adapt_kernel(kernel, shape, name):
    """A Keras conv kernel (kh, kw, 3, O) for ``shape`` (kh, kw, C, O), by SMP's first-conv rule."""
    if kernel.ndim != 4 or kernel.shape[2] != 3 or kernel.shape[:2] + kernel.shape[3:] != shape[:2] + shape[3:]:
        raise ValueError(f"Pretrained weight of {name!r} has shape {kernel.shape}, the encoder's is {shape}.")
    torch_layout = np.transpose(kernel, (3, 2, 0, 1))
    return np.transpose(adapt_first_conv(torch_layout, shape[2]), (2, 3, 1, 0))


def _dilation_error(name, net, layout):
    """None when ``net`` (the built backbone) can be dilated (planned for output stride 8: every
    layer past stride 8 one that keras-seg can rewrite); else why not."""
    try:
        plan_dilation(net, 8, layout, name)
    except DilationError as e:
        return str(e)
    return None


def _spec(name, backbone, base_format, load_pretrained, preprocessing=None):
    """The EncoderSpec fields for ``backbone`` (the serialized config, JSON); ``load_pretrained()``
    returns the full backbone whose weights ``encoder_weights`` loads (None: they come with a save)."""
    net, layout, size = _base_build(backbone, base_format)
    found = _feature_maps(net, layout)
    config = json.loads(backbone)
    depth = 1
    while depth < len(STRIDES) and STRIDES[depth] in found:
        depth += 1
    if STRIDES[1] not in found:
        depth = 1 if STRIDES[0] in found else 0
    if depth == 0:
        raise ValueError(
            f"keras-hub backbone {config['class_name']} ({name!r}) has no feature map at stride 2 or 4; "
            "it is not an image backbone keras-seg can use."
        )
    features = [found[s][0] if s in found else None for s in STRIDES[:depth]]
    channels = [found[s][1] if s in found else 0 for s in STRIDES[:depth]]
    dilation_error = _dilation_error(name, net, layout)

    def load_weights(encoder, weights):
        if load_pretrained is not None and any(layer.name == FEATURES_NAME for layer in encoder.layers):
            copy_backbone_weights(load_pretrained(), encoder.get_layer(FEATURES_NAME))
        return encoder

    return dict(
        builder=build_features,
        out_channels=[_input_shape(config, base_format)[1]] + channels,
        params=dict(backbone=backbone, base_format=base_format, features=features, image_size=size),
        first_conv=None,
        dilation_error=dilation_error,
        max_depth=depth,
        stride2_feature=STRIDES[0] in found,
        load_weights=load_weights,
        preprocessing=preprocessing or {},
        portable={"kind": KIND, "backbone": backbone, "data_format": base_format, "preprocessing": preprocessing or {}},
        image_size=size,
    )


def _serialize(backbone):
    return json.dumps(keras.saving.serialize_keras_object(backbone))


def resolve(name):
    """The spec of ``keras_hub:<preset>``: the preset's config (no weights read), its features measured."""
    preset = name[len(PREFIX):]
    if not preset:
        raise ValueError(
            f"Encoder {name!r} names no preset: use keras_hub:<preset> with a local preset folder, kaggle://..., "
            "hf://... or a built-in keras-hub preset name."
        )
    keras_hub = import_keras_hub()

    def from_preset(load_weights):
        with _building("channels_last"):
            try:
                return keras_hub.models.Backbone.from_preset(preset, load_weights=load_weights)
            except Exception as e:  # keras-hub's errors vary by source (missing folder, network, format)
                raise ValueError(f"Encoder {name!r}: keras-hub cannot load preset {preset!r}: {e}") from e

    net = from_preset(False)
    base_format = getattr(net, "data_format", None) or "channels_last"
    fields = _spec(name, _serialize(net), base_format, lambda: from_preset(True), _preprocessing(keras_hub, preset))
    return registry.EncoderSpec(name=name, **fields)


def _preprocessing(keras_hub, preset):
    """SMP's preprocessing settings, ``{"imagenet": {mean, std, input_range, input_space}}``, from the
    preset's image converter (``x * scale + offset`` on 0-255 images: std = 1 / (255 scale), mean =
    -offset std, in SMP's [0, 1] units); {} when the preset has none (a bare ``save_to_preset``)."""
    try:
        converter = keras_hub.layers.ImageConverter.from_preset(preset)
    except Exception:  # no image converter in this preset
        return {}
    if converter is None:
        return {}
    scale = np.broadcast_to(np.asarray(1.0 if converter.scale is None else converter.scale, "float64"), (3,))
    offset = np.broadcast_to(np.asarray(0.0 if converter.offset is None else converter.offset, "float64"), (3,))
    std = 1.0 / (255.0 * scale)
    mean = -offset * std
    settings = {"input_space": "RGB", "input_range": [0, 1], "mean": [float(m) for m in mean], "std": [float(v) for v in std]}
    return {"imagenet": settings}


def restore(name, portable):
    """The spec of a saved model's keras-hub encoder (weights come with the save)."""
    fields = _spec(name, portable["backbone"], portable["data_format"], None, portable.get("preprocessing"))
    return registry.EncoderSpec(name=name, **fields)


def register_keras_hub_backbone(name, backbone, overwrite=False):
    """Register the keras-hub ``backbone`` (a ``keras_hub.models.Backbone``) as encoder ``name``.

    Models on it build the backbone's config afresh (any in_channels, data_format, depth);
    ``encoder_weights=None`` leaves the weights random, any other value copies ``backbone``'s.
    """
    keras_hub = import_keras_hub()
    if not isinstance(backbone, keras_hub.models.Backbone):
        raise TypeError(f"register_keras_hub_backbone needs a keras_hub.models.Backbone, got {type(backbone).__name__}.")
    if not isinstance(name, str) or not name or name.startswith(PREFIX):
        raise ValueError(f"Encoder name must be a non-empty string not starting with {PREFIX!r}, got {name!r}.")
    base_format = getattr(backbone, "data_format", None) or keras.config.image_data_format()
    spec = _spec(name, _serialize(backbone), base_format, lambda: backbone)
    return registry.register_encoder(name, spec.pop("builder"), spec.pop("out_channels"), overwrite=overwrite, **spec)


registry.register_resolver(PREFIX, resolve, kind=KIND, restore=restore)
