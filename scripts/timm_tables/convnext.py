"""backbones/timm_configs/convnext.py: timm's convnext module as backbones.timm_convnext's settings."""

import inspect

import timm
from timm.models import convnext as timm_convnext

from timm_tables import INFERENCE_NEUTRAL, captured_args, tag_entries

CONST = "CONVNEXT_MODELS"
# ConvNeXt constructor arguments the features_only model keeps (its defaults read from timm's signature).
FEATURE_ARGS = ("depths", "dims", "kernel_sizes", "ls_init_value", "stem_type", "patch_size", "conv_mlp", "conv_bias",
                "use_grn", "act_layer", "norm_layer", "norm_eps")
# Arguments of the classifier head only (norm_pre / head come after the last feature).
HEAD_ARGS = ("head_norm_first", "head_hidden_size", "head_init_scale")
# timm's norm_layer names -> the builder's norm kind (both the NCHW and channels-last forms).
NORMS = {"layernorm": "layernorm", "layernorm2d": "layernorm", "rmsnorm": "rmsnorm", "rmsnorm2d": "rmsnorm",
         "simplenorm": "simplenorm", "simplenorm2d": "simplenorm"}
NORM_DEFAULT_EPS = 1e-6  # timm's LayerNorm2d / LayerNorm / RmsNorm2d / SimpleNorm2d default


def convnext_params(kwargs):
    """backbones.timm_convnext's settings from the ConvNeXt constructor arguments ``kwargs``."""
    defaults = {k: p.default for k, p in inspect.signature(timm_convnext.ConvNeXt).parameters.items()}
    kwargs = dict(kwargs)
    args = {k: kwargs.pop(k, defaults[k]) for k in FEATURE_ARGS}
    for k in HEAD_ARGS + INFERENCE_NEUTRAL:
        kwargs.pop(k, None)
    assert not kwargs, kwargs
    kernel_sizes = args["kernel_sizes"]
    act = args["act_layer"]
    assert isinstance(act, str), act
    return dict(
        depths=list(args["depths"]), dims=list(args["dims"]),
        kernel_sizes=[kernel_sizes] * 4 if isinstance(kernel_sizes, int) else list(kernel_sizes),
        ls_init_value=args["ls_init_value"], stem_type=args["stem_type"], patch_size=args["patch_size"],
        conv_mlp=args["conv_mlp"], conv_bias=args["conv_bias"], use_grn=args["use_grn"], act=act,
        norm=NORMS[args["norm_layer"] or "layernorm"],
        norm_eps=NORM_DEFAULT_EPS if args["norm_eps"] is None else args["norm_eps"],
    )


def table():
    table = {}
    for name in timm.list_models(module="convnext"):
        params = convnext_params(captured_args(name, timm_convnext, "_create_convnext"))
        tags, default = tag_entries(name)
        table[name] = dict(params=params, tags=tags, default_tag=default)
    return table
