"""MobileNetV4's blocks of timm's EfficientNet builder (``timm.models._efficientnet_blocks``), built for
``backbones.timm_efficientnet_builder.block`` (which adds the residual):

- ``uir``: UniversalInvertedResidual: an optional depthwise ``dw_start`` (conv + norm, no act), the 1x1
  ``pw_exp`` (conv + norm + act), an optional depthwise ``dw_mid`` (conv + norm + act), SE, the 1x1 ``pw_proj``
  (conv + norm), an optional depthwise ``dw_end`` (conv + norm), LayerScale2d. The stride sits on the first
  depthwise conv present in mid, start, end order; anti-aliasing (timm's ConvNormAct ``aa``) follows the strided
  dw_start / dw_mid's norm + act, their conv then at stride 1.
- ``mqa``: MobileAttention with timm's MultiQueryAttention2d: ``norm`` (norm, no act), then ``num_heads`` query
  heads (1x1 ``attn.query.proj``) over one key and one value head (``attn.key`` / ``attn.value``: a depthwise
  ``down_conv`` + ``norm`` where ``kv_stride`` > 1, then a 1x1 ``proj``), ``softmax(q k^T / sqrt(key_dim)) v``, the
  1x1 ``attn.output.proj``, LayerScale2d. (timm's query strides stay at MobileAttention's default 1.)

``mha`` (MobileAttention with Attention2d) is decoded by timm but used by none of its models: refused.
Layer names are timm's module paths (``net.name``); LayerScale2d is the kit's ``channel_scale`` (``gamma``).
"""

from backbones.layers import channels, concat_channels, dot_product_attention, move_channels_back, move_channels_last
from backbones.layers.channel_ops import channel_scale

# Block args that plan keeps in Block.options for these blocks.
OPTIONS = {"uir": ("dw_kernel_size_start", "dw_kernel_size_end"),
           "mqa": ("num_heads", "key_dim", "value_dim", "kv_stride")}


def _layer_scale(net, x, blk):
    if net.layer_scale is None:
        return x
    return channel_scale(x, net.name(f"{blk.path}.layer_scale"), data_format=net.data_format, init_value=net.layer_scale)


def _dw_conv_norm(net, x, blk, kernel, path, stride, act):
    """timm's ConvNormAct(groups=num_groups(group_size, C)) at ``path`` (``.conv`` / ``.bn`` / ``.aa``)."""
    from backbones.timm_efficientnet_builder import num_groups

    chs = channels(x, net.data_format)
    use_aa = net.aa is not None and stride > 1
    x = net.conv(x, chs, kernel, f"{path}.conv", 1 if use_aa else stride, blk.dilation, num_groups(blk.group_size, chs),
                 depthwise=blk.group_size == 1)
    x = net.norm_act(x, f"{path}.bn", act)
    return net.anti_alias(x, stride) if use_aa else x


def universal_inverted_residual(net, x, blk):
    from backbones.timm_efficientnet_builder import make_divisible

    p, start, mid, end = blk.path, blk.options.get("dw_kernel_size_start", 0), blk.kernel, blk.options.get("dw_kernel_size_end", 0)
    if start:
        x = _dw_conv_norm(net, x, blk, start, f"{p}.dw_start", 1 if mid else blk.stride, None)
    x = net.conv_norm_act(x, make_divisible(blk.in_chs * blk.exp_ratio), 1, f"{p}.pw_exp.conv", f"{p}.pw_exp.bn", blk.act)
    if mid:
        x = _dw_conv_norm(net, x, blk, mid, f"{p}.dw_mid", blk.stride, blk.act)
    if blk.se_ratio:
        x = net.squeeze_excite(x, f"{p}.se", blk.se_ratio, blk.act)
    x = net.conv_norm_act(x, blk.out_chs, 1, f"{p}.pw_proj.conv", f"{p}.pw_proj.bn", None)
    if end:
        stride = blk.stride if not (start or mid) else 1
        if stride > 1 and net.aa is not None:
            raise ValueError("timm's UniversalInvertedResidual refuses anti-aliasing on a strided dw_end")
        x = _dw_conv_norm(net, x, blk, end, f"{p}.dw_end", stride, None)
    return _layer_scale(net, x, blk)


def _kv(net, x, blk, dim, path):
    """MultiQueryAttention2d's ``key`` / ``value``: [depthwise down_conv + norm,] 1x1 proj to one head."""
    o = blk.options
    if o.get("kv_stride", 1) > 1:
        x = net.conv(x, channels(x, net.data_format), blk.kernel, f"{path}.down_conv", o["kv_stride"], blk.dilation,
                     depthwise=True)
        x = net.norm_act(x, f"{path}.norm", None)
    return net.conv(x, dim, 1, f"{path}.proj")


def mobile_attention(net, x, blk):
    p, o, fmt = blk.path, blk.options, net.data_format
    if blk.stride != 1:
        raise NotImplementedError("MobileAttention with a stride (timm's query strides) is not ported")
    heads, key_dim, value_dim = o["num_heads"], o["key_dim"], o["value_dim"]
    if key_dim != value_dim:
        raise NotImplementedError("multi-query attention with key_dim != value_dim is not ported")
    x = net.norm_act(x, f"{p}.norm", None)
    q = net.conv(x, heads * key_dim, 1, f"{p}.attn.query.proj")
    # One key / value head shared by every query head: repeated per head, the kit's multi-head attention.
    k = concat_channels([_kv(net, x, blk, key_dim, f"{p}.attn.key")] * heads, data_format=fmt)
    v = concat_channels([_kv(net, x, blk, value_dim, f"{p}.attn.value")] * heads, data_format=fmt)
    q, k, v = (move_channels_last(t, fmt) for t in (q, k, v))
    x = move_channels_back(dot_product_attention(q, k, v, heads, key_dim**-0.5), fmt)
    x = net.conv(x, blk.out_chs, 1, f"{p}.attn.output.proj")
    return _layer_scale(net, x, blk)


def mobilenetv4_block(net, x, blk):
    """The body of a ``uir`` / ``mqa`` block (``blk`` from the builder's ``plan``)."""
    if blk.kind == "uir":
        return universal_inverted_residual(net, x, blk)
    if blk.kind == "mqa":
        return mobile_attention(net, x, blk)
    raise NotImplementedError(f"block type {blk.kind!r} is not ported (timm's 'mha' is used by none of its models)")
