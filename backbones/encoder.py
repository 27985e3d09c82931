"""The encoder contract: a functional Keras model from images to depth + 1 feature maps."""

import keras

from backbones import registry
from backbones.layers import ReleasingGraph, channel_axis, empty_feature, identity, standardize_data_format


@keras.saving.register_keras_serializable(package="keras_seg")
class Encoder(ReleasingGraph, keras.Model):
    """Maps an image batch to ``depth + 1`` features at strides 1, 2, 4, ..., 2**depth.

    Attributes: ``out_channels`` (list, one per feature), ``output_stride``
    (``min(output_stride, 2**depth)``, as SMP reports it) and ``depth``. The first
    feature is the input itself (a stride-1 feature of the encoder's own for VGG: the
    spec's ``input_feature``); a 0-channel stride-2 feature (``out_channels[1] == 0``, SMP's
    transformer-style encoders) is an empty map, as SMP's ``torch.empty(B, 0, H // 2, W // 2)``.
    Layer names are SMP's torch module paths, so ``weight_ports`` ports SMP encoder
    checkpoints to it key by key.
    """

    def __init__(
        self,
        encoder_name,
        in_channels=3,
        depth=5,
        output_stride=32,
        data_format=None,
        name="encoder",
        **kwargs,
    ):
        spec = registry.validate(encoder_name, depth, output_stride)
        data_format = standardize_data_format(data_format)
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}.")
        h, w = spec.image_size or (None, None)  # fixed for an encoder built for one size
        shape = (h, w, in_channels) if data_format == "channels_last" else (in_channels, h, w)
        inputs = keras.Input(shape, name="image")
        features = spec.builder(inputs, depth=depth, output_stride=output_stride, data_format=data_format, **spec.params)
        if spec.input_feature:
            features = [identity(inputs, name="input_feature")] + list(features[1:])
        if spec.out_channels[1] == 0:  # no stride-2 feature (transformer-style): SMP's 0-channel dummy
            features = [features[0], empty_feature(inputs, 2, data_format=data_format, name="empty_stride2")] + list(features[2:])
        outputs = features[: depth + 1]
        dormant = find_dormant_layers(inputs, outputs, features[depth + 1 :])
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        # Layers past `depth` are not computed but keep the weights SMP's state_dict holds.
        self.dormant_layers = dormant
        self.encoder_name = encoder_name
        self.in_channels = in_channels
        self.depth = depth
        self.data_format = data_format
        self._output_stride_arg = output_stride
        first = in_channels if spec.input_feature else spec.out_channels[0]
        self.out_channels = [first] + list(spec.out_channels[1 : depth + 1])
        self.output_stride = min(output_stride, 2**depth)
        self.spec = spec

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder_name": self.encoder_name,
            "in_channels": self.in_channels,
            "depth": self.depth,
            "output_stride": self._output_stride_arg,
            "data_format": self.data_format,
            **({"_spec": self.spec.portable} if self.spec.portable is not None else {}),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        with registry.restored_encoder(config["encoder_name"], config.pop("_spec", None)):
            return cls(**config)


def find_dormant_layers(inputs, outputs, extra_tensors):
    """Layers with weights that feed ``extra_tensors`` but not ``outputs``, frozen.

    SMP modules sometimes hold parameters that their forward never uses (a ResNet's
    deeper stages at a small depth, an attention on a missing skip). keras-seg builds
    them too, so checkpoints round-trip key for key, but leaves them out of the graph.
    """
    extra_tensors = [t for t in extra_tensors if t is not None]
    if not extra_tensors:
        return []
    used = {id(layer) for layer in keras.Model(inputs, outputs).layers}
    full = keras.Model(inputs, list(outputs) + list(extra_tensors))
    dormant = [layer for layer in full.layers if id(layer) not in used and layer.weights]
    for layer in dormant:
        layer.trainable = False
    return dormant


def get_encoder(name, in_channels=3, depth=5, weights=None, output_stride=32, data_format=None, **kwargs):
    """Build encoder ``name``; with ``weights`` (e.g. "imagenet") load its pretrained weights
    through the spec's ``load_weights`` hook (default: SMP's smp-hub checkpoints).

    Extra keyword arguments are accepted and ignored, as SMP does for its native encoders.
    """
    encoder = Encoder(name, in_channels=in_channels, depth=depth, output_stride=output_stride, data_format=data_format)
    if weights is not None:
        (encoder.spec.load_weights or load_smp_hub_weights)(encoder, weights)
    return encoder


def load_smp_hub_weights(encoder, weights):
    """Download (or take from the cache) SMP's checkpoint ``weights`` for ``encoder`` and load it.

    Classifier keys are dropped; 3-channel first-conv weights are adapted to
    ``in_channels`` by SMP's rule.
    """
    from weight_ports import hub
    from weight_ports.readers import read_state_dict

    spec = encoder.spec
    entry = registry.weights_entry(spec.name, weights)
    path = hub.download_file(entry["repo_id"], "model.safetensors", revision=entry.get("revision"), what=f"encoder {spec.name!r} weights {weights!r}")
    load_torch_weights(encoder, read_state_dict(path))
    return encoder


def load_torch_weights(encoder, state):
    """Load a torch encoder state_dict: classifier keys dropped, first conv adapted (SMP's rule)."""
    from weight_ports.first_conv import adapt_first_conv
    from weight_ports.translate import load_state_dict

    spec = encoder.spec
    state = {k: v for k, v in state.items() if not k.startswith(tuple(spec.classifier_keys))}
    key = f"{spec.first_conv}.weight"
    if spec.first_conv and encoder.in_channels != 3 and key in state:
        state[key] = adapt_first_conv(state[key], encoder.in_channels)
    load_state_dict(encoder, state, strict=True)
    return encoder


def feature_channel_axis(encoder):
    return channel_axis(encoder.data_format)
