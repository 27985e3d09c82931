"""timm's VisionTransformer family (``tu-vit_*``) as SMP's ``TimmViTEncoder``, the encoder of DPT.

A plain ViT has no feature pyramid: every block sees the same ``H / patch x W / patch`` grid of
tokens, so ``ViTEncoder`` returns the outputs of ``depth`` blocks (``output_indices``, SMP's uniform
sampling by default) as maps at the patch stride, and with class / register tokens those blocks'
prefix tokens ``(B, P, C)``, as timm's ``forward_intermediates(..., return_prefix_tokens=True)``.
The registry's pyramid architectures refuse these names (``EncoderSpec.pyramid_error``).

Layers are named after timm's module paths under SMP's ``model.`` (``model-blocks-0-attn-qkv``),
so SMP's DPT checkpoints port key for key, and timm's own checkpoints (the hub's
``timm/<arch>.<tag>`` model.safetensors) with a ``model.`` prefix. Blocks are timm's pre-norm
``Block``: LayerNorm -> Attention (one qkv Linear, heads of ``C / num_heads``) -> LayerScale ->
residual, LayerNorm -> Mlp (GELU exact or tanh-approximated, or QuickGELU) -> LayerScale -> residual. Blocks past the
last output index, the final norm and the classifier are built (their weights are in SMP's
state_dict) but not computed.

Names: ``tu-<arch>`` (timm's default pretrained tag) and ``tu-<arch>.<tag>``, for every architecture
of ``vit_configs.VIT_ARCHS`` (generated from timm). ``encoder_weights`` not None loads the tag's
weights; the tag sets the classifier size and, for fixed-size models, ``img_size``. With
``dynamic_img_size=True`` any input size (a multiple of the patch) runs, the position embedding
resampled to the patch grid as timm does (``backbones.pos_embed``, bicubic, antialiased).
"""

import numbers

import keras
import numpy as np
from keras import ops

from backbones import registry
from backbones.encoder import find_dormant_layers
from backbones.layers import (
    ReleasingGraph,
    activation,
    channels,
    conv2d,
    dot_product_attention,
    drop_path,
    layer_norm,
    linear,
    move_channels_back,
    move_channels_last,
    split_channels,
    standardize_data_format,
    torch_default_bias_init,
    torch_default_init,
    trunc_normal_init,
)
from backbones.layers.initializers import HostDrawnWeights
from backbones.pos_embed import resample_abs_pos_embed
from backbones.timm_universal import read_timm_checkpoint, timm_name, timm_weights_entry  # shared by every tu- encoder
from backbones.vit_configs import VIT_ARCHS

# timm's resample_abs_pos_embed default (VisionTransformer._pos_embed and checkpoint_filter_fn pass none).
POS_EMBED_ANTIALIAS = True
# timm constructor arguments SMP's DPT may forward (its **kwargs) that this module builds.
TIMM_KWARGS = ("img_size", "dynamic_img_size", "patch_size", "embed_dim", "num_heads", "mlp_ratio", "qkv_bias",
               "init_values", "class_token", "reg_tokens", "no_embed_class", "drop_path_rate", "global_pool")
GLOBAL_POOLS = ("", "token", "avg", "avgmax", "max")
PYRAMID_ERROR = (
    "Unsupported model downsampling pattern. ({name!r} is a plain vision transformer: all its features are at "
    "stride {stride}, not a pyramid of strides 2 ... 32; use it with DPT.)"
)


def _param(layer, prefix, attr):
    from weight_ports.naming import torch_path
    from weight_ports.translate import Param

    def same(a):
        return a

    return Param(f"{torch_path(prefix)}.{attr}", getattr(layer, attr), same, same)




@keras.saving.register_keras_serializable(package="keras_seg")
class LayerScale(HostDrawnWeights, keras.layers.Layer):
    """timm's LayerScale: ``x * gamma`` over the last axis; ``gamma`` starts at ``init_values``."""

    def __init__(self, init_values=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.init_values = float(init_values)

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(self.init_values), name="gamma")

    def call(self, x):
        return x * ops.cast(self.gamma, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def smp_params(self, prefix):
        return [_param(self, prefix, "gamma")]

    def get_config(self):
        return {**super().get_config(), "init_values": self.init_values}


@keras.saving.register_keras_serializable(package="keras_seg")
class TokenEmbedding(HostDrawnWeights, keras.layers.Layer):
    """timm's ``VisionTransformer._pos_embed`` on the patch grid ``(B, h, w, C)``: class and register
    tokens prepended, the learned position embedding (``grid_size`` positions, plus the prefix
    tokens' unless ``no_embed_class``) added; returns ``(B, P + h * w, C)``. With
    ``dynamic_img_size`` the embedding is resampled to the grid as timm does. Weights
    ``cls_token``, ``reg_token``, ``pos_embed`` are timm's parameters of the same names."""

    def __init__(self, grid_size, class_token=True, reg_tokens=0, no_embed_class=False, dynamic_img_size=False,
                 antialias=POS_EMBED_ANTIALIAS, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = tuple(int(g) for g in grid_size)
        self.class_token = bool(class_token)
        self.reg_tokens = int(reg_tokens)
        self.no_embed_class = bool(no_embed_class)
        self.dynamic_img_size = bool(dynamic_img_size)
        self.antialias = bool(antialias)
        self.num_prefix_tokens = int(self.class_token) + self.reg_tokens
        self.cls_token = self.reg_token = None

    def build(self, input_shape):
        dim = input_shape[-1]
        tiny = keras.initializers.RandomNormal(stddev=1e-6)  # timm: normal_(std=1e-6)
        if self.class_token:
            self.cls_token = self.add_weight(shape=(1, 1, dim), initializer=tiny, name="cls_token")
        if self.reg_tokens:
            self.reg_token = self.add_weight(shape=(1, self.reg_tokens, dim), initializer=tiny, name="reg_token")
        length = self.grid_size[0] * self.grid_size[1] + (0 if self.no_embed_class else self.num_prefix_tokens)
        self.pos_embed = self.add_weight(shape=(1, length, dim), initializer=trunc_normal_init(0.02), name="pos_embed")

    def call(self, x):
        shape = ops.shape(x)
        batch, dim = shape[0], x.shape[-1]
        tokens = ops.reshape(x, (batch, -1, dim))
        pos = ops.cast(self.pos_embed, x.dtype)
        if self.dynamic_img_size:
            pos = resample_abs_pos_embed(
                pos, (shape[1], shape[2]), self.grid_size, 0 if self.no_embed_class else self.num_prefix_tokens, self.antialias
            )
        prefix = [ops.broadcast_to(ops.cast(t, x.dtype), (batch, t.shape[1], dim)) for t in (self.cls_token, self.reg_token) if t is not None]
        if self.no_embed_class:  # deit-3 / DINOv2-with-registers: position added to the patches only
            tokens = tokens + pos
            return ops.concatenate(prefix + [tokens], axis=1) if prefix else tokens
        if prefix:
            tokens = ops.concatenate(prefix + [tokens], axis=1)
        return tokens + pos

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None or w is None else h * w + self.num_prefix_tokens, c)

    def smp_params(self, prefix):
        return [_param(self, prefix, a) for a in ("cls_token", "reg_token", "pos_embed") if getattr(self, a) is not None]

    def get_config(self):
        return {
            **super().get_config(), "grid_size": list(self.grid_size), "class_token": self.class_token,
            "reg_tokens": self.reg_tokens, "no_embed_class": self.no_embed_class,
            "dynamic_img_size": self.dynamic_img_size, "antialias": self.antialias,
        }


@keras.saving.register_keras_serializable(package="keras_seg")
class TokenMap(keras.layers.Layer):
    """The patch tokens of ``tokens`` ``(B, P + h * w, C)`` as a map shaped like ``grid`` ``(B, h, w, C)``
    (timm's NCHW intermediates, channels last)."""

    def __init__(self, num_prefix_tokens=0, **kwargs):
        super().__init__(**kwargs)
        self.num_prefix_tokens = int(num_prefix_tokens)

    def call(self, inputs):
        tokens, grid = inputs
        return ops.reshape(tokens[:, self.num_prefix_tokens :], ops.shape(grid))

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[1])

    def get_config(self):
        return {**super().get_config(), "num_prefix_tokens": self.num_prefix_tokens}


@keras.saving.register_keras_serializable(package="keras_seg")
class PrefixTokens(keras.layers.Layer):
    """The first ``num_prefix_tokens`` tokens (class, registers): ``(B, P, C)``."""

    def __init__(self, num_prefix_tokens, **kwargs):
        super().__init__(**kwargs)
        self.num_prefix_tokens = int(num_prefix_tokens)

    def call(self, tokens):
        return tokens[:, : self.num_prefix_tokens]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_prefix_tokens, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_prefix_tokens": self.num_prefix_tokens}


def drop_path_rates(rate, depth):
    """timm's calculate_drop_path_rates: ``torch.linspace(0, rate, depth)``."""
    return [float(r) for r in np.linspace(0.0, rate, depth, dtype=np.float32)]


def vit_block(x, dim, num_heads, hidden, qkv_bias, init_values, eps, act_layer, drop_rate, prefix):
    """timm's ``Block``: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))`` (drop-path on both)."""
    y = layer_norm(x, f"{prefix}-norm1", eps=eps)
    q, k, v = split_channels(linear(y, 3 * dim, f"{prefix}-attn-qkv", use_bias=qkv_bias), [dim] * 3, data_format="channels_last")
    y = linear(dot_product_attention(q, k, v, num_heads), dim, f"{prefix}-attn-proj")
    if init_values:
        y = LayerScale(init_values, name=f"{prefix}-ls1")(y)
    x = keras.layers.Add()([x, drop_path(y, drop_rate, name=f"{prefix}-drop_path1")])
    y = linear(layer_norm(x, f"{prefix}-norm2", eps=eps), hidden, f"{prefix}-mlp-fc1")
    y = activation(y, act_layer)
    y = linear(y, dim, f"{prefix}-mlp-fc2")
    if init_values:
        y = LayerScale(init_values, name=f"{prefix}-ls2")(y)
    return keras.layers.Add()([x, drop_path(y, drop_rate, name=f"{prefix}-drop_path2")])


def vit_tokens(x, *, data_format, patch_size, embed_dim, depth, num_heads, mlp_ratio, qkv_bias, init_values, class_token,
               reg_tokens, no_embed_class, pre_norm, final_norm, fc_norm, norm_eps, act_layer, dynamic_img_size, img_size,
               num_classes, drop_path_rate=0.0):
    """timm's VisionTransformer on image ``x``: ``(grid, block outputs, head tensors)``: the patch grid
    ``(B, h, w, C)``, every block's tokens ``(B, P + h * w, C)``, and tensors that only hold the weights
    of the final norm / fc_norm / classifier (built, never computed)."""
    fan_in = channels(x, data_format) * patch_size**2
    x = conv2d(
        x, embed_dim, patch_size, "model-patch_embed-proj", data_format=data_format, stride=patch_size, use_bias=not pre_norm,
        kernel_initializer=torch_default_init(), bias_initializer=torch_default_bias_init(fan_in),
    )
    grid = move_channels_last(x, data_format)
    tokens = TokenEmbedding(
        (img_size[0] // patch_size, img_size[1] // patch_size), class_token, reg_tokens, no_embed_class, dynamic_img_size, name="model",
    )(grid)
    if pre_norm:
        tokens = layer_norm(tokens, "model-norm_pre", eps=norm_eps)
    hidden = int(embed_dim * mlp_ratio)
    blocks = []
    for i, rate in enumerate(drop_path_rates(drop_path_rate, depth)):
        tokens = vit_block(tokens, embed_dim, num_heads, hidden, qkv_bias, init_values, norm_eps, act_layer, rate, f"model-blocks-{i}")
        blocks.append(tokens)
    head = tokens
    if final_norm:
        head = layer_norm(head, "model-norm", eps=norm_eps)
    if fc_norm:
        head = layer_norm(head, "model-fc_norm", eps=norm_eps)
    if num_classes:
        head = linear(head, num_classes, "model-head")
    return grid, blocks, [head]


# -- names, settings and SMP's argument checks ---------------------------------------------------------


def _pair(value, what):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, numbers.Integral) and v > 0 for v in value)):
        raise ValueError(f"`{what}` must be a positive integer or a pair (height, width), got {value!r}.")
    return tuple(int(v) for v in value)


def vit_params(spec, timm_kwargs):
    """The builder settings of ``spec`` with timm's constructor ``timm_kwargs`` (SMP's DPT **kwargs) applied."""
    duplicates = set(timm_kwargs) & {"in_chans", "pretrained"}
    if duplicates:
        raise ValueError(f"'{duplicates}' already specified internally")  # SMP's _merge_kwargs_no_duplicates
    unknown = sorted(set(timm_kwargs) - set(TIMM_KWARGS))
    if unknown:
        raise TypeError(f"Unsupported timm arguments {unknown} for encoder {spec.name!r}; supported: {list(TIMM_KWARGS)}.")
    timm_kwargs = {k: v for k, v in timm_kwargs.items() if v is not None}  # SMP prunes None-valued kwargs
    params = dict(spec.params)
    pool = timm_kwargs.pop("global_pool", None)
    if pool is not None:  # where timm puts its final norm: after the pooling (fc_norm) for avg / max pools
        if pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool={pool!r} is not supported; supported: {list(GLOBAL_POOLS)} (attention pools are not).")
        final = params["final_norm"] or params["fc_norm"]
        use_fc = pool in ("avg", "avgmax", "max")
        params.update(final_norm=final and not use_fc, fc_norm=final and use_fc)
    params.update(timm_kwargs)
    params["img_size"] = _pair(params["img_size"], "img_size")
    patch = params["patch_size"]
    if isinstance(patch, (list, tuple)):
        patch = _pair(patch, "patch_size")
        if patch[0] != patch[1]:
            raise ValueError(f"Only square patches are supported, got patch_size={params['patch_size']!r}.")
        patch = patch[0]
    params["patch_size"] = int(patch)
    if params["embed_dim"] % params["num_heads"]:
        raise ValueError(f"embed_dim {params['embed_dim']} is not divisible by num_heads {params['num_heads']}.")
    return params


def uniform_indices(n, total):
    """SMP's sample_block_indices_uniformly."""
    return [int(total / n * d) - 1 for d in range(1, n + 1)]


def output_block_indices(output_indices, depth, num_blocks):
    """SMP's checks of ``encoder_depth`` / ``encoder_output_indices`` (its messages), then timm's
    ``feature_take_indices``: absolute block indices, in the order forward_intermediates returns them."""
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise ValueError(f"`encoder_depth` must be an integer, got {depth!r}.")
    if depth < 1:
        raise ValueError(f"`encoder_depth` should be greater than 1, got {depth}.")
    if isinstance(output_indices, (list, tuple)) and len(output_indices) != depth:
        raise ValueError(
            f"Length of output indices for feature extraction should be equal to the depth of the encoder "
            f"architecture, got output indices length - {len(output_indices)}, encoder depth - {depth}"
        )
    if depth > num_blocks:
        raise ValueError(
            f"Depth of the encoder cannot exceed the number of blocks in the model "
            f"got {depth} depth, model has {num_blocks} blocks"
        )
    if output_indices is None:
        output_indices = uniform_indices(depth, num_blocks)
    elif not isinstance(output_indices, (list, tuple)):
        raise ValueError(f"`output_indices` for encoder should be a list/tuple/None, got {type(output_indices)}")
    for index in output_indices:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise ValueError(f"Output indices must be integers, got {index!r}.")
        if index < -num_blocks or index >= num_blocks:
            raise ValueError(
                f"Output indices for feature extraction should be in range "
                f"[-{num_blocks}, {num_blocks}), because the model has {num_blocks} blocks, "
                f"got index = {index}."
            )
    absolute = [int(i) % num_blocks for i in output_indices]
    if len(set(absolute)) != len(absolute):
        raise ValueError(
            f"Output indices {list(output_indices)} name block(s) {sorted({i for i in absolute if absolute.count(i) > 1})} "
            "twice; timm returns each block once, so give distinct blocks."
        )
    return sorted(absolute)


def get_vit_spec(encoder_name):
    """The registry spec of ViT ``encoder_name`` (``tu-<arch>[.<tag>]``); a ValueError naming the ViT encoders otherwise."""
    spec = registry.find_spec(encoder_name)
    if spec is None or spec.builder is not vit_tokens:
        raise ValueError(
            f"Wrong encoder name {encoder_name!r}: not a ViT encoder. Supported ViT encoders: {vit_encoder_names()} "
            "(optionally with a timm pretrained tag, e.g. 'tu-vit_base_patch16_224.augreg_in21k')."
        )
    return spec


def vit_encoder_names():
    return [n for n in registry.list_encoders() if registry.ENCODERS[n].builder is vit_tokens]


@keras.saving.register_keras_serializable(package="keras_seg")
class ViTEncoder(ReleasingGraph, keras.Model):
    """SMP's TimmViTEncoder: outputs the maps of ``depth`` blocks (at stride ``patch_size``, in the model's
    data format), then, when the model has class / register tokens, those blocks' prefix tokens.

    Attributes as SMP's: ``out_channels``, ``output_strides``, ``output_stride``, ``has_prefix_tokens``,
    ``input_size`` (the tag's ``(C, H, W)``) and ``is_fixed_input_size``; also ``output_indices`` (the
    absolute block indices), ``num_prefix_tokens``, ``img_size`` and ``dynamic_img_size``. ``timm_kwargs``
    are timm constructor arguments (``TIMM_KWARGS``), as SMP forwards them.
    """

    def __init__(self, encoder_name, in_channels=3, depth=4, output_indices=None, data_format=None, name="encoder", **kwargs):
        timm_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in ("trainable", "dtype")}
        if timm_kwargs.pop("output_stride", None) is not None:
            raise ValueError("Dilated mode not supported, set output stride to None")
        spec = get_vit_spec(encoder_name)
        params = vit_params(spec, timm_kwargs)
        take = output_block_indices(output_indices, depth, params["depth"])
        data_format = standardize_data_format(data_format)
        if isinstance(in_channels, bool) or not isinstance(in_channels, numbers.Integral) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}.")
        size = (None, None) if params["dynamic_img_size"] else params["img_size"]
        shape = (*size, in_channels) if data_format == "channels_last" else (in_channels, *size)
        inputs = keras.Input(shape, name="image")
        grid, blocks, heads = vit_tokens(inputs, data_format=data_format, **params)
        prefix = int(params["class_token"]) + params["reg_tokens"]
        features = [move_channels_back(TokenMap(prefix, name=f"block{i}_map")([blocks[i], grid]), data_format) for i in take]
        tokens = [PrefixTokens(prefix, name=f"block{i}_prefix_tokens")(blocks[i]) for i in take] if prefix else []
        outputs = features + tokens
        dormant = find_dormant_layers(inputs, outputs, blocks[take[-1] + 1 :] + heads)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.dormant_layers = dormant
        self.spec = spec
        self.encoder_name = encoder_name
        self.in_channels = in_channels
        self.depth = depth
        self._output_indices_arg = None if output_indices is None else list(output_indices)
        self.timm_kwargs = dict(timm_kwargs)
        self.data_format = data_format
        self.params = params
        self.output_indices = take
        self.num_prefix_tokens = prefix
        self.has_prefix_tokens = prefix > 0
        self.out_channels = [params["embed_dim"]] * len(take)
        self.output_strides = [params["patch_size"]] * len(take)
        self.output_stride = params["patch_size"]
        self.img_size = params["img_size"]
        self.dynamic_img_size = params["dynamic_img_size"]
        entry = spec.pretrained_weights.get(spec.pretrained_tag, {}) if spec.pretrained_tag else {}
        self.input_size = tuple(entry["input_size"]) if entry else None
        self.is_fixed_input_size = bool(entry.get("fixed_input_size", False))

    def split_outputs(self, outputs):
        """``(features, prefix_tokens)`` of this encoder's output list (prefix tokens None without them), as SMP's forward."""
        n = len(self.output_indices)
        features = list(outputs[:n])
        return features, (list(outputs[n:]) if self.has_prefix_tokens else [None] * n)

    def get_config(self):
        return {
            "name": self.name, "trainable": self.trainable, "encoder_name": self.encoder_name, "in_channels": self.in_channels,
            "depth": self.depth, "output_indices": self._output_indices_arg, "data_format": self.data_format, **self.timm_kwargs,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def get_vit_encoder(name, in_channels=3, depth=4, weights=None, output_indices=None, data_format=None, **timm_kwargs):
    """``ViTEncoder(name, ...)``; with ``weights`` not None the pretrained weights of the name's tag
    (SMP's ``pretrained=encoder_weights is not None``), from the hub's ``timm/<arch>.<tag>``."""
    if weights is not None:
        timm_weights_entry(get_vit_spec(name))  # no weights for this tag: say so before building
    encoder = ViTEncoder(name, in_channels=in_channels, depth=depth, output_indices=output_indices, data_format=data_format, **timm_kwargs)
    if weights is not None:
        load_timm_weights(encoder, weights)
    return encoder


# -- timm checkpoints -------------------------------------------------------------------------------------


def timm_state_to_encoder(state, encoder):
    """A timm VisionTransformer state_dict as ``encoder`` (SMP's ``model.`` keys) takes it: timm's
    ``checkpoint_filter_fn`` (position embedding resampled to the model's grid, bicubic, antialiased;
    ``pre_logits`` dropped) and its ``adapt_input_conv`` for ``in_channels != 3``."""
    from weight_ports.first_conv import adapt_first_conv

    params, spec = encoder.params, encoder.spec
    out = {}
    for key, value in state.items():
        value = np.asarray(value)
        if "pre_logits" in key:
            continue
        if key == "patch_embed.proj.weight":
            if value.shape[-2:] != (params["patch_size"],) * 2:
                raise ValueError(
                    f"The pretrained patch embedding of {timm_name(spec)} has {value.shape[-2:]} patches, the model "
                    f"{params['patch_size']}: resampling patch embeddings is not supported; keep the tag's patch_size."
                )
            if encoder.in_channels != value.shape[1]:
                value = adapt_first_conv(value, encoder.in_channels)
        if key == "pos_embed":
            value = _resampled_pos_embed(value, encoder)
        out[f"model.{key}"] = value
    return out


def _resampled_pos_embed(value, encoder):
    """The checkpoint's position embedding on the model's grid (timm's checkpoint_filter_fn)."""
    params = encoder.params
    prefix = 0 if params["no_embed_class"] else encoder.num_prefix_tokens
    patch = params["patch_size"]
    new = (params["img_size"][0] // patch, params["img_size"][1] // patch)
    source = encoder.input_size[-2:] if encoder.input_size else (224, 224)
    old = (source[0] // patch, source[1] // patch)
    if old[0] * old[1] != value.shape[1] - prefix:  # timm's fallback: a square grid
        side = int(np.sqrt(value.shape[1] - prefix))
        old = (side, side)
    if value.shape[1] == new[0] * new[1] + prefix and old == new:
        return value
    resampled = resample_abs_pos_embed(ops.convert_to_tensor(value.astype("float32")), new, old, prefix, POS_EMBED_ANTIALIAS)
    return ops.convert_to_numpy(resampled).astype(value.dtype)


def load_timm_weights(encoder, weights=True):
    """Download (or take from the cache) timm's checkpoint of the encoder's name and tag, and load it."""
    from weight_ports.translate import load_state_dict

    load_state_dict(encoder, timm_state_to_encoder(read_timm_checkpoint(encoder.spec), encoder), strict=True)
    return encoder


# -- registration ---------------------------------------------------------------------------------------


def _register():
    for arch, table in VIT_ARCHS.items():
        params = dict(table["params"], drop_path_rate=0.0)
        depth, stride = params["depth"], params["patch_size"]
        weights = {
            tag: dict(repo_id=e["repo_id"], revision=None, params=dict(e["params"]), input_size=list(e["input_size"]),
                      fixed_input_size=e["fixed_input_size"])
            for tag, e in table["tags"].items()
        }
        preprocessing = {
            tag: dict(mean=list(e["mean"]), std=list(e["std"]), input_range=[0, 1], input_space="RGB")
            for tag, e in table["tags"].items() if e["repo_id"]
        }
        default = table["default_tag"]
        if default:
            params.update(weights[default]["params"])
        name = f"tu-{arch}"
        registry.register_encoder(
            name, vit_tokens, out_channels=[3] + [params["embed_dim"]] * depth, params=params, pretrained_weights=weights,
            preprocessing=preprocessing, first_conv="model.patch_embed.proj", max_depth=depth, stride2_feature=False,
            dilation_error="Dilated mode not supported, set output stride to None", classifier_keys=(),
            pyramid_error=PYRAMID_ERROR.format(name=name, stride=stride), timm_tags=True, pretrained_tag=default,
            load_weights=load_timm_weights,
        )


_register()
