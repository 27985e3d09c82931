"""SMP's ``tu-`` encoders (``TimmUniversalEncoder`` over timm's ``features_only`` models), natively.

A ported timm module (a *builder*: ``backbones.timm_resnet`` ...) registers every model it builds as
``tu-<model>`` through ``register_timm_models``, from a table generated from timm once
(``backbones/timm_configs``). What SMP's TimmUniversalEncoder decides, this module decides the same way:

* names ``tu-<model>`` (timm's default pretrained tag) and ``tu-<model>.<tag>`` (``registry.find_spec``);
  a ``tu-`` name outside the ported builders is an error naming them;
* feature alignment from the model's feature reductions: (2, 4, 8, 16, 32) traditional, (4, ..., 32)
  transformer-style (SMP's 0-channel stride-2 dummy), (1, 2, ..., 32) VGG-style (its own stride-1
  feature first); anything else SMP's "Unsupported model downsampling pattern.";
* weights: ``encoder_weights`` None is random init; anything else loads timm's checkpoint of the tag
  (``timm/<model>.<tag>``, model.safetensors) with SMP's UserWarning for a non-bool value; the first
  conv adapted to ``in_channels`` by timm's ``adapt_input_conv`` (timm's rule, applied to timm's
  ``first_conv`` key); classifier and layers past ``depth`` dropped, as timm's features_only model does;
* preprocessing of each tag from timm's pretrained config, shipped in the table;
* SMP 0.6's deprecated ``timm-regnet*``, ``timm-res2*``, ``timm-resnest*``, ``timm-gernet*`` and
  ``timm-mobilenetv3*`` names redirect to their ``tu-`` names (``tu-tf_`` for mobilenetv3) with SMP's
  DeprecationWarning;
* timm constructor arguments SMP forwards (``get_timm_encoder(**kwargs)``): those that change nothing at
  inference are accepted, others refused with the list of accepted ones.
"""

import functools
import warnings

import numpy as np

from backbones import registry

PREFIX = "tu-"
# timm module -> the model names it registered here (for listings and the unknown-name error).
BUILDERS = {}
# SMP 0.6 encoders/__init__.py is_equivalent_to_timm_universal.
DEPRECATED_PATTERNS = ("timm-regnet", "timm-res2", "timm-resnest", "timm-mobilenetv3", "timm-gernet")
DEPRECATION_MESSAGE = (
    "`timm-` encoders are deprecated and will be removed in the future. "
    "Please use `tu-` equivalent encoders instead (see 'Timm encoders' section in the documentation)."
)
# timm constructor arguments that change nothing at inference (stochastic depth, dropout, init, head).
INFERENCE_NEUTRAL_KWARGS = ("drop_rate", "drop_path_rate", "drop_block_rate", "zero_init_last", "num_classes", "global_pool")
UNSUPPORTED_PATTERN = "Unsupported model downsampling pattern."


def weights_warning(weights):
    """SMP's UserWarning for a tu- ``encoder_weights`` that is neither None nor a bool."""
    if not isinstance(weights, (type(None), bool)):
        warnings.warn(
            "For 'tu-' (timm universal) encoders, `encoder_weights` should be set to True "
            "to download pretrained weights or None for random initialization. "
            "The pretrained variant is defined in the encoder name i.e 'tu-<model_name>.<pretrained_tag>'. "
            f"Got encoder_weights='{weights}'.",
            UserWarning,
            stacklevel=3,
        )


def feature_style(reductions):
    """'traditional', 'transformer' or 'vgg' for timm's ``feature_info.reduction()``, as SMP decides it."""
    reductions, n = list(reductions), len(reductions)
    if reductions == [2 ** (i + 2) for i in range(n)]:
        return "transformer"
    if reductions == [2 ** (i + 1) for i in range(n)]:
        return "traditional"
    if reductions == [2**i for i in range(n)]:
        return "vgg"
    raise ValueError(UNSUPPORTED_PATTERN)


def aligned_out_channels(style, channels):
    """SMP's ``out_channels`` (input channels 3 first) for a model of ``style`` with feature ``channels``."""
    if style == "transformer":
        return [3, 0] + list(channels)
    if style == "vgg":
        return list(channels)
    return [3] + list(channels)


def timm_name(spec):
    """timm's ``<model>.<tag>`` (``<model>`` without a tag) of a tu- spec."""
    base = spec.name[len(PREFIX):].split(".")[0]
    return f"{base}.{spec.pretrained_tag}" if spec.pretrained_tag else base


def timm_weights_entry(spec):
    """The hub entry of the tag ``spec`` loads; timm's error (with the tags that have weights) when it has none."""
    entry = spec.pretrained_weights.get(spec.pretrained_tag) if spec.pretrained_tag else None
    if not entry or not entry.get("repo_id"):
        raise ValueError(
            f"No pretrained weights exist for {timm_name(spec)}. Use `pretrained=False` for random init "
            f"(encoder_weights=None); tags with weights: {sorted(t for t, e in spec.pretrained_weights.items() if e.get('repo_id'))}."
        )
    return entry


def adapt_input_conv(in_chans, weight):
    """timm's ``_manipulate.adapt_input_conv``: a pretrained first-conv weight ``(O, I, kh, kw)`` for
    ``in_chans`` inputs (1: the sum over the input filters, or over RGB triples when I > 3; other
    counts: RGB repeated and cut to ``in_chans``, scaled by ``3 / in_chans``), computed in float32."""
    dtype = weight.dtype
    weight = np.asarray(weight, np.float32)
    o, i, kh, kw = weight.shape
    if in_chans == 1:
        if i > 3:
            if i % 3:
                raise ValueError(f"Cannot adapt a first conv of {i} input channels to 1 (not RGB triples).")
            weight = weight.reshape(o, i // 3, 3, kh, kw).sum(axis=2)
        else:
            weight = weight.sum(axis=1, keepdims=True)
    elif in_chans != 3:
        if i != 3:
            raise NotImplementedError("Weight format not supported by conversion.")
        repeat = -(-in_chans // 3)
        weight = np.tile(weight, (1, repeat, 1, 1))[:, :in_chans] * np.float32(3 / float(in_chans))
    return weight.astype(dtype)


def flatten_key(key, flattened=()):
    """A full timm model's state_dict key as its features_only model names it: timm flattens the top-level
    ``nn.Sequential`` children ``flattened`` (``stem.conv1.w`` -> ``stem_conv1.w``, ``stages.0.x`` -> ``stages_0.x``)."""
    head, dot, rest = key.partition(".")
    if head in flattened and dot:
        child, dot2, tail = rest.partition(".")
        return f"{head}_{child}{dot2}{tail}"
    return key


def timm_state_to_encoder(state, encoder, flattened=()):
    """timm's full-model ``state`` as ``encoder`` holds it: SMP's ``model.`` prefix, the features_only model's
    names (``flattened`` Sequentials), only the keys it keeps (no classifier, nothing past ``depth``), the
    first conv adapted."""
    from weight_ports.translate import collect_params

    spec = encoder.spec
    wanted = {p.key for p in collect_params(encoder)}
    first = f"{spec.first_conv}.weight" if spec.first_conv else None
    out = {}
    for key, value in state.items():
        key = f"model.{flatten_key(key, flattened)}"
        if key not in wanted:
            continue
        value = np.asarray(value)
        if key == first and value.shape[1] != encoder.in_channels:
            value = adapt_input_conv(encoder.in_channels, value)
        out[key] = value
    return out


def read_timm_checkpoint(spec):
    """timm's state_dict for the tag ``spec`` loads, downloaded (or from the cache) from ``timm/<model>.<tag>``."""
    from weight_ports import hub
    from weight_ports.readers import read_state_dict

    entry = timm_weights_entry(spec)
    path = hub.download_file(entry["repo_id"], "model.safetensors", revision=entry.get("revision"),
                             what=f"encoder {spec.name!r} pretrained weights")
    return read_state_dict(path)


def load_timm_checkpoint(encoder, weights=True, flattened=()):
    """Load timm's checkpoint of the encoder's model and tag (SMP's warning for a non-bool ``weights``)."""
    from weight_ports.translate import load_state_dict

    weights_warning(weights)
    load_state_dict(encoder, timm_state_to_encoder(read_timm_checkpoint(encoder.spec), encoder, flattened), strict=True)
    return encoder


def register_timm_models(module, table, builder, feature_info, dilation_error=None, flattened=()):
    """Register ``tu-<model>`` for every model of ``table`` (a generated ``backbones/timm_configs`` table).

    ``feature_info(params)`` gives timm's ``(channels, reductions)`` of the model's five features;
    ``dilation_error`` is None where timm's ``output_stride`` 8 / 16 works for the module; ``flattened``
    names the top-level Sequentials timm's features_only model flattens (layers ``stem_0``, ``stages_1``...:
    checkpoint keys and the first conv are renamed so).
    """
    names = BUILDERS.setdefault(module, [])
    for model, entry in table.items():
        params = entry["params"]
        channels, reductions = feature_info(params)
        style = feature_style(reductions)
        tags = entry["tags"]
        weights = {tag: dict(repo_id=e["repo_id"], revision=None) for tag, e in tags.items()}
        preprocessing = {
            tag: dict(mean=list(e["mean"]), std=list(e["std"]), input_range=[0, 1], input_space="RGB")
            for tag, e in tags.items() if e["repo_id"]
        }
        first_convs = {e["first_conv"] for e in tags.values()} or {"conv1"}
        assert len(first_convs) == 1, (model, first_convs)
        registry.register_encoder(
            f"{PREFIX}{model}", builder, out_channels=aligned_out_channels(style, channels), params=params,
            pretrained_weights=weights, preprocessing=preprocessing, first_conv=f"model.{flatten_key(first_convs.pop(), flattened)}",
            dilation_error=dilation_error, stride2_feature=style != "transformer", input_feature=style != "vgg",
            classifier_keys=(), timm_tags=True, pretrained_tag=entry["default_tag"],
            load_weights=functools.partial(load_timm_checkpoint, flattened=tuple(flattened)),
        )
        names.append(model)


def timm_encoder_names():
    """Every registered ``tu-`` name (bare model names; ``.<tag>`` variants come on top), sorted."""
    return sorted(n for n in registry.ENCODERS if n.startswith(PREFIX))


def _unknown_tu_name(name):
    """The resolver of ``tu-`` names that no builder registered: the error naming the ported builders."""
    builders = ", ".join(f"{m} ({len(n)} models)" for m, n in sorted(BUILDERS.items()))
    raise ValueError(
        f"Encoder {name!r}: timm model {name[len(PREFIX):].split('.')[0]!r} is not ported to keras-seg. "
        f"tu- encoders come from these ported timm modules: {builders}, and timm's ViTs (tu-vit_*, for DPT); "
        "see backbones.timm_universal.timm_encoder_names()."
    )


def deprecated_target(name):
    """SMP 0.6's ``tu-`` name for a deprecated ``timm-`` name (None when it has none)."""
    if not name.startswith(DEPRECATED_PATTERNS):
        return None
    target = name.replace("timm-", PREFIX, 1)
    return target.replace(PREFIX, f"{PREFIX}tf_", 1) if "mobilenetv3" in target else target


def _deprecated_timm_name(name):
    """The resolver of ``timm-`` names SMP 0.6 redirects: its DeprecationWarning, then the tu- spec."""
    target = deprecated_target(name)
    if target is None:
        return None
    warnings.warn(DEPRECATION_MESSAGE, DeprecationWarning, stacklevel=4)
    return registry.get_spec(target)


def check_timm_kwargs(name, kwargs):
    """timm constructor arguments SMP forwards for ``name``: those without effect at inference pass,
    others (or ones keras-seg sets itself) are refused, naming the accepted ones."""
    internal = sorted(set(kwargs) & {"in_chans", "features_only", "pretrained", "out_indices", "output_stride"})
    if internal:
        raise ValueError(f"'{set(internal)}' already specified internally")
    unknown = sorted(set(kwargs) - set(INFERENCE_NEUTRAL_KWARGS))
    if unknown:
        raise TypeError(
            f"Encoder {name!r}: timm arguments {unknown} change the model and are not supported natively; "
            f"accepted (no effect at inference): {list(INFERENCE_NEUTRAL_KWARGS)}."
        )


def get_timm_encoder(name, in_channels=3, depth=5, weights=None, output_stride=32, data_format=None, **kwargs):
    """SMP's ``get_encoder`` for a ``tu-`` (or redirected ``timm-``) name, timm kwargs checked."""
    from backbones.encoder import get_encoder

    check_timm_kwargs(name, kwargs)
    return get_encoder(name, in_channels=in_channels, depth=depth, weights=weights, output_stride=output_stride,
                       data_format=data_format)


registry.register_resolver(PREFIX, _unknown_tu_name)
registry.register_resolver("timm-", _deprecated_timm_name, cache=False)  # SMP warns on every call
