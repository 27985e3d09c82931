"""SegmentationModel: encoder -> decoder -> segmentation head [-> classification head].

Every architecture subclasses it and only supplies its decoder; the pipeline, the
heads, the input check, encoder freezing, configs and SMP checkpoint I/O live here.
"""

import inspect
import numbers
import re

import keras

from backbones.encoder import find_dormant_layers, get_encoder
from backbones.registry import get_spec, restored_encoder
from backbones.layers import ReleasingGraph, spatial_axes, standardize_data_format
from keras_seg.heads import classification_head, segmentation_head, validate_aux_params


class InputShapeError(ValueError, RuntimeError):
    """Input height/width not divisible as the architecture needs (SMP raises RuntimeError)."""


class SegmentationModel(ReleasingGraph, keras.Model):
    """A functional Keras segmentation model built from SMP-style parts.

    Subclasses call ``super().__init__`` with the built ``encoder``, a ``decoder``
    function ``decoder(features, dormant) -> tensor`` (append tensors that only exist to
    hold SMP weights to ``dormant``), the head settings, and ``config``: the
    constructor arguments, returned by ``get_config`` and written to SMP's config.json.
    An architecture with its own segmentation head passes ``head(x) -> masks``; one whose
    encoder outputs more than feature maps passes ``aux_feature(features) -> tensor``, the
    classification head's input (default: the last feature).
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "model"

    def __init__(
        self,
        *,
        encoder,
        decoder,
        config,
        classes,
        activation=None,
        aux_params=None,
        head_kernel_size=3,
        head_upsampling=1,
        head_init="smp",
        head=None,
        aux_feature=None,
        name=None,
        **kwargs,
    ):
        data_format = encoder.data_format
        aux_params = validate_aux_params(aux_params)
        inputs = keras.Input(encoder.input.shape[1:], name="image")
        features = encoder(inputs)
        dormant = []
        x = decoder(features, dormant)
        if head is not None:
            masks = head(x)
        else:
            masks = segmentation_head(
                x, classes, data_format, kernel_size=head_kernel_size, activation=activation, upsampling=head_upsampling, init=head_init
            )
        outputs = masks
        if aux_params is not None:
            deepest = features[-1] if aux_feature is None else aux_feature(features)
            outputs = [masks, classification_head(deepest, aux_params, data_format, init=head_init)]
        dormant_layers = find_dormant_layers(inputs, outputs if isinstance(outputs, list) else [outputs], dormant)
        super().__init__(inputs=inputs, outputs=outputs, name=name or _default_name(self.smp_name_prefix, config["encoder_name"]), **kwargs)
        self.encoder = encoder
        self.dormant_layers = dormant_layers
        self.data_format = data_format
        self._smp_config = dict(config)
        self._is_encoder_frozen = False

    # -- configuration -----------------------------------------------------------------
    @property
    def config(self):
        """SMP's constructor arguments of this model (what config.json holds)."""
        return dict(self._smp_config)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "data_format": self.data_format, **self.config}
        portable = getattr(getattr(self.encoder, "spec", None), "portable", None)
        if portable is not None:  # an encoder described by data (keras-hub): saved with the model
            config["_encoder_spec"] = portable
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        with restored_encoder(config.get("encoder_name"), config.pop("_encoder_spec", None)):
            return cls(**config)

    # -- input check ---------------------------------------------------------------------
    def input_size(self, x):
        """``(H, W)`` of an input batch (None where not statically known).

        A ValueError saying what is expected when ``x`` is not a non-empty batch
        ``(N, H, W, C)`` (``(N, C, H, W)`` channels_first) with ``C = in_channels``.
        """
        shape = _static_shape(x)
        if shape is None:
            return None  # unknown rank inside a traced graph
        c_axis = 1 if self.data_format == "channels_first" else 3
        c = self.encoder.in_channels
        expected = f"(N, {c}, H, W)" if c_axis == 1 else f"(N, H, W, {c})"
        problem = None
        if len(shape) != 4:
            problem = f"a rank-{len(shape)} input" + (" (add the batch axis for one image: x[None])" if len(shape) == 3 else "")
        elif shape[0] == 0:
            problem = "an empty batch (N = 0)"
        elif shape[c_axis] is not None and shape[c_axis] != c:
            problem = f"{shape[c_axis]} channels"
        if problem:
            raise ValueError(
                f"{type(self).__name__} expects a batch of images of shape {expected} ({self.data_format}, "
                f"in_channels={c}), got {problem} of shape {shape}."
            )
        h, w = (shape[a] for a in spatial_axes(self.data_format))
        if not isinstance(h, int) or not isinstance(w, int):
            return None  # dynamic sizes inside a traced graph: checked where they are known
        return h, w

    def check_input_shape(self, x):
        """``input_size``'s checks, then InputShapeError when H or W is not a multiple of the
        encoder's output stride."""
        size = self.input_size(x)
        if size is None or not self.requires_divisible_input_shape:
            return
        h, w = size
        stride = self.encoder.output_stride
        if h % stride or w % stride:
            new_h = (h // stride + 1) * stride if h % stride else h
            new_w = (w // stride + 1) * stride if w % stride else w
            raise InputShapeError(
                f"Wrong input shape height={h}, width={w}. Expected image height and width divisible by "
                f"{stride}. Consider pad your images to shape ({new_h}, {new_w})."
            )

    def __call__(self, *args, **kwargs):
        # before Keras's own input checks, whose messages do not say what is expected
        inputs = args[0] if args else kwargs.get("inputs")
        if inputs is not None:
            self.check_input_shape(inputs)
        return super().__call__(*args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        self.check_input_shape(inputs)  # also where Keras calls `call` directly (JAX training)
        return super().call(inputs, training=training, mask=mask)

    def predict(self, x, *args, **kwargs):
        self.check_input_shape(x)  # an empty array fails inside Keras's predict loop otherwise
        return super().predict(x, *args, **kwargs)

    # -- encoder freezing ----------------------------------------------------------------
    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras's ``model.export`` through ``keras_seg.export.export_model`` (checked on every backend).

        ``format``: "tf_saved_model" (default), "litert" or "onnx". ``input_signature``: one
        spec with a ``shape`` (``keras.InputSpec``, ``tf.TensorSpec``, a tensor), e.g.
        ``[keras.InputSpec((1, 256, 256, 3))]``; None dimensions are dynamic (litert needs a
        fixed height and width). Without it, the model's own input shape (dynamic batch).
        Unlike Keras, an existing ``filepath`` is refused unless ``overwrite=True``, and then
        only a previous export of the same format is replaced. Other keyword arguments:
        ``overwrite``, ``quantize`` and ``calibration`` (litert) as in ``export_model``.
        """
        from keras_seg.export import export_model, signature_size

        unknown = sorted(set(kwargs) - {"overwrite", "quantize", "calibration"})
        if unknown:
            raise TypeError(f"{type(self).__name__}.export got unexpected keyword arguments {unknown}; "
                            "valid ones are overwrite, quantize and calibration.")
        input_size, batch_size = signature_size(self, input_signature)
        export_model(self, filepath, format, input_size=input_size, batch_size=batch_size, **kwargs)
        if verbose:
            print(f"Saved artifact at '{filepath}'.")

    def freeze_encoder(self):
        """Stop training the encoder: no weight updates, BatchNorm in inference mode (as SMP).

        Recompile the model afterwards for model.fit to pick the change up.
        """
        self.encoder.trainable = False
        self._is_encoder_frozen = True

    def unfreeze_encoder(self):
        """Undo ``freeze_encoder``."""
        self.encoder.trainable = True
        for layer in getattr(self.encoder, "dormant_layers", []):
            layer.trainable = False
        self._is_encoder_frozen = False

    # -- SMP checkpoints -------------------------------------------------------------------
    def save_pretrained(self, save_directory, dataset=None, metrics=None, push_to_hub=False, repo_id=None, **kwargs):
        """Write SMP's format (config.json, model.safetensors, README.md) to ``save_directory``."""
        from keras_seg.hub import save_pretrained

        return save_pretrained(self, save_directory, dataset=dataset, metrics=metrics, push_to_hub=push_to_hub, repo_id=repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, path_or_repo_id, strict=True, **overrides):
        """Load an SMP checkpoint folder or hub repository into this architecture."""
        from keras_seg.hub import from_pretrained

        return from_pretrained(path_or_repo_id, strict=strict, expected_class=cls, **overrides)

    def torch_state_dict(self):
        """SMP-layout state_dict (``{key: numpy array}``) of this model."""
        from weight_ports.translate import state_dict

        return state_dict(self)

    def load_torch_state_dict(self, state, strict=True):
        """Load an SMP-layout state_dict; see ``weight_ports.translate.load_state_dict``."""
        from weight_ports.translate import load_state_dict

        return load_state_dict(self, state, strict=strict)


def _default_name(prefix, encoder_name):
    """SMP's model name, ``<prefix>-<encoder>``, with characters Keras names cannot hold (a keras-hub
    preset's "/" and ":") replaced by "_"."""
    return re.sub(r"[^\w.-]", "_", f"{prefix}-{encoder_name}")


def _static_shape(x):
    """``x.shape`` as a tuple of ints / None, or None when ``x`` has no shape or an unknown rank."""
    shape = getattr(x, "shape", None)
    if shape is None or getattr(shape, "rank", 0) is None:  # TF TensorShape of unknown rank
        return None
    return tuple(None if d is None else int(d) for d in shape)


def build_encoder(encoder_name, in_channels, depth, weights, output_stride=32, data_format=None):
    """The encoder for a model; validates arguments with messages naming them."""
    data_format = standardize_data_format(data_format)
    return get_encoder(encoder_name, in_channels=in_channels, depth=depth, weights=weights, output_stride=output_stride, data_format=data_format)


def pop_deprecated(kwargs, old, new, value):
    """SMP's deprecated keyword ``old`` renamed to ``new``: when given (not None), warn and use it."""
    import warnings

    old_value = kwargs.pop(old, None)
    if old_value is None:
        return value
    warnings.warn(f"`{old}` is deprecated and will be removed; use `{new}` instead.", DeprecationWarning, stacklevel=3)
    return old_value


def constructor_config(cls, values):
    """SMP's constructor arguments of ``cls`` (its ``__init__`` parameters less data_format,
    name and kwargs), read from ``values`` (the constructor's ``locals()`` once normalised);
    tuples become lists, as config.json stores them."""
    skip = ("self", "kwargs", "data_format", "name")
    names = [p for p in inspect.signature(cls.__init__).parameters if p not in skip]
    return {n: list(values[n]) if isinstance(values[n], tuple) else values[n] for n in names}


def check_positive_int(value, name):
    """``value`` if it is an integer >= 1 (not a bool or a string); a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer (>= 1), got {value!r}.")
    return value


def check_encoder_depth(encoder_name, encoder_depth, minimum=1, decoder=None):
    """``encoder_depth`` if it is an integer in ``[minimum, the encoder's max depth]``.

    Below ``minimum`` the error starts with SMP's message for ``decoder`` (e.g. "PAN").
    """
    maximum = get_spec(encoder_name).max_depth
    valid = f"encoder_depth should be in range [{minimum}, {maximum}]"
    if isinstance(encoder_depth, bool) or not isinstance(encoder_depth, numbers.Integral):
        raise ValueError(f"{valid} as an integer, got {encoder_depth!r}.")
    if encoder_depth < minimum and decoder is not None:
        raise ValueError(
            f"Encoder depth for {decoder} decoder cannot be less than {minimum}, got {encoder_depth}: "
            f"encoder_depth must be at least {minimum}, one of {tuple(range(minimum, maximum + 1))}."
        )
    if not minimum <= encoder_depth <= maximum:
        raise ValueError(f"{valid} for encoder {encoder_name!r}, got {encoder_depth!r}.")
    return encoder_depth


def check_model_arguments(encoder_name, encoder_depth, in_channels, classes, aux_params=None, min_depth=1,
                          decoder=None, **channels):
    """The checks every architecture runs first, before building anything.

    ``encoder_depth`` (see ``check_encoder_depth``), ``in_channels``, ``classes``,
    ``aux_params["classes"]`` and each of ``channels`` (name -> value) must be positive
    integers; each error names the argument, the value and the valid range.
    """
    check_encoder_depth(encoder_name, encoder_depth, min_depth, decoder)
    check_positive_int(in_channels, "in_channels")
    check_positive_int(classes, "classes")
    if isinstance(aux_params, dict) and "classes" in aux_params:
        check_positive_int(aux_params["classes"], "aux_params['classes']")
    for name, value in channels.items():
        check_positive_int(value, name)


def check_decoder_channels(decoder_channels, encoder_depth):
    """One decoder block per encoder stage, as SMP's U-Net family requires; returns a list."""
    if isinstance(decoder_channels, (str, bytes)) or not hasattr(decoder_channels, "__len__"):
        raise ValueError(
            f"`decoder_channels` must be a list of {encoder_depth} positive integers (one per decoder block), "
            f"got {decoder_channels!r}."
        )
    decoder_channels = list(decoder_channels)
    if len(decoder_channels) != encoder_depth:
        raise ValueError(
            f"Model depth is {encoder_depth}, but you provide `decoder_channels` for {len(decoder_channels)} blocks."
        )
    for i, value in enumerate(decoder_channels):
        check_positive_int(value, f"decoder_channels[{i}]")
    return decoder_channels


def split_model_kwargs(kwargs, model_name):
    """Keep Keras Model kwargs (trainable, dtype); drop SMP's private '_' keys; reject the rest."""
    keep = {k: kwargs.pop(k) for k in ("trainable", "dtype") if k in kwargs}
    for k in [k for k in kwargs if k.startswith("_")]:
        kwargs.pop(k)
    if kwargs:
        raise TypeError(f"{model_name} got unexpected keyword arguments {sorted(kwargs)}.")
    return keep
