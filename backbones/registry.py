"""The encoder registry: one ``EncoderSpec`` per encoder name, and its validation.

A spec carries what the architectures need to know about an encoder (capabilities),
so that no decoder matches encoder-name prefixes: whether it can be dilated (and
SMP's error when not), its maximum depth, whether it has a stride-2 feature (SMP's
transformer-style encoders do not: they get a 0-channel dummy there), whether SMP's
Unet adds a center block on it (VGG), whether its first feature is the input (VGG's is
its own full-resolution stage), and how its pretrained weights load.
"""

import contextlib
import copy
import dataclasses
from typing import Callable, Optional

ENCODERS = {}

VALID_OUTPUT_STRIDES = (8, 16, 32)

# Classifier heads that SMP's encoders drop from their pretrained checkpoints.
CLASSIFIER_PREFIXES = ("fc.", "last_linear.", "classifier.", "_fc.", "head.", "linear.")


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """One registered encoder.

    builder: ``builder(x, *, depth, output_stride, data_format, **params)`` takes the
        symbolic input tensor and returns the list of feature tensors at strides
        1, 2, 4, 8, 16, 32 (the input itself first). It should build every layer
        whose weights the torch encoder's state_dict holds, even those past ``depth``;
        ``Encoder`` keeps only the first ``depth + 1`` features (and replaces the first by
        the input unless ``input_feature`` is False).
    out_channels: the channels of those six features (the first is the input's, 3, unless
        ``input_feature`` is False; 0 for a missing stride-2 feature).
    pretrained_weights: ``{weights_name: {"repo_id": ..., "revision": ...}}`` on the
        Hugging Face hub, in SMP's format (config.json + model.safetensors).
    preprocessing: ``{weights_name: {"mean", "std", "input_range", "input_space"}}``.
    first_conv: torch state_dict key prefix of the first conv, adapted by SMP's rule
        when pretrained weights meet ``in_channels != 3`` (None: no adaptation).
    dilation_error: None when the encoder supports output_stride 8/16; otherwise the
        message SMP raises for it.
    max_depth: the deepest ``depth`` accepted.
    stride2_feature: False for transformer-style encoders (no stride-2 feature).
    unet_center_block: SMP's Unet / Unet++ add a center block on this encoder (VGG).
    input_feature: True when the first feature is the input itself (``Encoder`` puts the
        input there and reports ``in_channels`` for it, SMP's ``out_channels[0] == 3`` rule);
        False when it is the builder's own stride-1 feature with ``out_channels[0]`` channels (VGG).
    classifier_keys: key prefixes dropped from pretrained checkpoints.
    load_weights: ``load_weights(encoder, weights)`` loads pretrained ``weights``; None
        is SMP's smp-hub checkpoints through the generic translator.
    pyramid_error: None for an encoder of features at strides 1 ... 32 (what ``Encoder`` builds);
        otherwise the error ``Encoder`` raises for it (a plain ViT's features are all at one
        stride: it has its own encoder class, for DPT).
    timm_tags: names also take timm's pretrained tags, ``<name>.<tag>``; ``pretrained_weights``
        is then keyed by tag (its entry's ``params`` update the spec's), and ``pretrained_tag`` is
        the tag this name loads (timm's default tag for the bare name; None: no pretrained tag).
    portable: for an encoder described by data rather than code (a keras-hub backbone), a
        JSON-ready dict that ``restored_encoder`` turns back into this spec, so a saved model
        rebuilds without the original source; None for encoders registered in code.
    image_size: a fixed input ``(H, W)`` for an encoder built for one size (keras-hub's MiT); None: any size.
    """

    name: str
    builder: Callable
    out_channels: tuple
    params: dict = dataclasses.field(default_factory=dict)
    pretrained_weights: dict = dataclasses.field(default_factory=dict)
    preprocessing: dict = dataclasses.field(default_factory=dict)
    first_conv: Optional[str] = "conv1"
    dilation_error: Optional[str] = None
    max_depth: int = 5
    stride2_feature: bool = True
    unet_center_block: bool = False
    input_feature: bool = True
    classifier_keys: tuple = CLASSIFIER_PREFIXES
    load_weights: Optional[Callable] = None
    pyramid_error: Optional[str] = None
    timm_tags: bool = False
    pretrained_tag: Optional[str] = None
    portable: Optional[dict] = None
    image_size: Optional[tuple] = None

    @property
    def supports_dilation(self):
        return self.dilation_error is None


def register_encoder(name, builder, out_channels, *, supports_dilation=True, overwrite=False, **capabilities):
    """Register encoder ``name``; ``capabilities`` are ``EncoderSpec`` fields.

    ``supports_dilation=False`` without a ``dilation_error`` gives a generic message.
    """
    if name in ENCODERS and not overwrite:
        raise ValueError(f"Encoder {name!r} is already registered; pass overwrite=True to replace it.")
    unknown = set(capabilities) - {f.name for f in dataclasses.fields(EncoderSpec)}
    if unknown:
        raise TypeError(f"register_encoder got unknown capabilities {sorted(unknown)}.")
    if not supports_dilation and capabilities.get("dilation_error") is None:
        capabilities["dilation_error"] = f"Encoder {name!r} does not support dilated mode; use output_stride=32."
    out_channels = tuple(out_channels)
    if len(out_channels) != capabilities.get("max_depth", 5) + 1:
        raise ValueError(f"Encoder {name!r}: out_channels needs max_depth + 1 entries, got {list(out_channels)}.")
    for key in ("params", "pretrained_weights", "preprocessing"):
        capabilities[key] = dict(capabilities.get(key) or {})
    spec = EncoderSpec(name=name, builder=builder, out_channels=out_channels, **capabilities)
    ENCODERS[name] = spec
    return spec


# Name prefixes resolved on demand (e.g. "keras_hub:<preset>"): prefix -> resolve(name) -> EncoderSpec,
# cached once resolved; and portable kinds: kind -> restore(name, portable) -> EncoderSpec.
RESOLVERS = {}
RESTORERS = {}
_RESOLVED = {}
_RESTORED = {}
_UNCACHED = set()  # resolver prefixes called on every lookup


def register_resolver(prefix, resolve, kind=None, restore=None, cache=True):
    """Make every name starting with ``prefix`` an encoder whose spec ``resolve(name)`` builds (once, unless
    ``cache=False``: a resolver that warns on every use); ``restore(name, portable)`` rebuilds specs whose
    ``portable["kind"]`` is ``kind``."""
    RESOLVERS[prefix] = resolve
    if not cache:
        _UNCACHED.add(prefix)
    if kind is not None:
        RESTORERS[kind] = restore


def _resolver(name):
    return next((r for prefix, r in RESOLVERS.items() if isinstance(name, str) and name.startswith(prefix)), None)


@contextlib.contextmanager
def restored_encoder(name, portable):
    """Within the block, encoder ``name`` is the spec ``portable`` describes (a saved model's
    own encoder, whatever ``name`` means in this process); nothing changes when it is None."""
    if portable is None:
        yield
        return
    kind = portable.get("kind")
    restore = RESTORERS.get(kind)
    if restore is None:
        raise ValueError(f"Cannot rebuild encoder {name!r}: no resolver for encoders of kind {kind!r} is registered.")
    previous = _RESTORED.get(name)
    _RESTORED[name] = restore(name, portable)
    try:
        yield
    finally:
        if previous is None:
            _RESTORED.pop(name, None)
        else:
            _RESTORED[name] = previous


def list_encoders():
    """Names of all registered encoders, sorted."""
    return sorted(ENCODERS)


def get_spec(name):
    """The ``EncoderSpec`` of ``name`` (a copy); a ValueError listing valid names otherwise."""
    spec = find_spec(name)
    if spec is None:
        raise ValueError(f"Wrong encoder name {name!r}; supported encoders: {list_encoders()}")
    return spec


def find_spec(name):
    """The ``EncoderSpec`` of ``name`` (a copy), ``<name>.<tag>`` of a ``timm_tags`` encoder included;
    None for an unknown name. An unknown tag of a known name raises timm's error, listing the tags."""
    if not isinstance(name, str):
        return None
    if name in _RESTORED:
        return copy.deepcopy(_RESTORED[name])
    if name in ENCODERS:
        return copy.deepcopy(ENCODERS[name])
    base, _, tag = name.partition(".")
    spec = ENCODERS.get(base)
    if spec is not None and spec.timm_tags and tag:
        if tag not in spec.pretrained_weights:
            raise ValueError(f"Invalid pretrained tag ({tag}) for {base[3:] if base.startswith('tu-') else base}; valid tags: {sorted(spec.pretrained_weights)}.")
        params = {**spec.params, **spec.pretrained_weights[tag].get("params", {})}
        return copy.deepcopy(dataclasses.replace(spec, name=name, params=params, pretrained_tag=tag))
    resolve = _resolver(name)  # e.g. keras_hub:<preset>, resolved once; a resolver may raise for a name it refuses
    if resolve is None:
        return None
    if any(name.startswith(prefix) for prefix in _UNCACHED):
        return resolve(name)
    if name not in _RESOLVED:
        _RESOLVED[name] = resolve(name)
    return copy.deepcopy(_RESOLVED[name])


def transformer_style(name):
    """True for an encoder without a stride-2 feature (SMP's MiT and transformer-style timm models).
    An encoder without a feature pyramid (a plain ViT) raises its ``pyramid_error``, SMP's first error."""
    spec = get_spec(name)
    if spec.pyramid_error is not None:
        raise ValueError(spec.pyramid_error)
    return not spec.stride2_feature


def validate(name, depth, output_stride):
    """The spec of ``name`` once ``depth`` and ``output_stride`` are known to suit it."""
    spec = get_spec(name)
    if spec.pyramid_error is not None:
        raise ValueError(spec.pyramid_error)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= spec.max_depth:
        raise ValueError(f"Encoder {name!r}: depth should be in range [1, {spec.max_depth}], got {depth!r}.")
    if output_stride not in VALID_OUTPUT_STRIDES:
        raise ValueError(f"output_stride should be one of {VALID_OUTPUT_STRIDES}, got {output_stride!r}.")
    if output_stride != 32 and not spec.supports_dilation:
        raise ValueError(spec.dilation_error)
    return spec


def weights_entry(name, weights):
    """The hub entry for pretrained ``weights`` of encoder ``name``; a ValueError listing valid names."""
    available = get_spec(name).pretrained_weights
    if weights not in available:
        raise ValueError(
            f"Wrong pretrained weights {weights!r} for encoder {name!r}. Available options are: {sorted(available)} (or None)."
        )
    return available[weights]
