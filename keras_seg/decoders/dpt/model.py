"""DPT (Ranftl et al., 2021) on a timm ViT encoder (``tu-vit_*``), with SMP 0.6's constructor and defaults."""

import functools
import warnings

import keras

from backbones.vit import get_vit_encoder
from keras_seg.base import InputShapeError, SegmentationModel, check_positive_int, constructor_config
from keras_seg.decoders.dpt.decoder import READOUTS, dpt_decoder, dpt_segmentation_head, fusion_input_multiple, fusion_mismatch
from keras_seg.heads import validate_aux_params


@keras.saving.register_keras_serializable(package="keras_seg")
class DPT(SegmentationModel):
    """DPT: the ViT's block outputs (``encoder_output_indices``, sampled uniformly by default) with their
    prefix tokens read out (``decoder_readout``), reassembled to strides 4 ... 2**(depth + 1), fused from
    the deepest up, DPT's head x2. Arguments are SMP's; extra keyword arguments are timm's
    VisionTransformer arguments that SMP forwards (``backbones.vit.TIMM_KWARGS``: ``img_size``,
    ``dynamic_img_size=True`` for inputs of other sizes, ...). ``encoder_weights`` not None loads the
    pretrained weights of the tag in ``encoder_name``. ``data_format`` as every architecture.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "dpt"

    def __init__(
        self,
        encoder_name="tu-vit_base_patch16_224.augreg_in21k",
        encoder_depth=4,
        encoder_weights="imagenet",
        encoder_output_indices=None,
        decoder_readout="cat",
        decoder_intermediate_channels=(256, 512, 1024, 1024),
        decoder_fusion_channels=256,
        in_channels=3,
        classes=1,
        activation=None,
        aux_params=None,
        *,
        data_format=None,
        name=None,
        **kwargs,
    ):
        model_kwargs = {k: kwargs.pop(k) for k in ("trainable", "dtype") if k in kwargs}
        timm_kwargs = {k: v for k, v in kwargs.items() if not k.startswith("_") and v is not None}  # SMP prunes these
        if not isinstance(encoder_name, str) or not encoder_name.startswith("tu-"):
            raise ValueError(f"Only Timm encoders are supported for DPT. Encoder name must start with 'tu-', got {encoder_name}")
        if decoder_readout not in READOUTS:
            raise ValueError(f"Invalid decoder readout mode. Must be one of: 'ignore', 'add', 'cat'. Got: {decoder_readout}")
        check_positive_int(in_channels, "in_channels")
        check_positive_int(classes, "classes")
        check_positive_int(decoder_fusion_channels, "decoder_fusion_channels")
        aux_params = validate_aux_params(aux_params)
        if aux_params is not None:
            check_positive_int(aux_params["classes"], "aux_params['classes']")
        if isinstance(decoder_intermediate_channels, (str, bytes)) or not hasattr(decoder_intermediate_channels, "__len__"):
            raise ValueError(f"`decoder_intermediate_channels` must be a sequence of positive integers, got {decoder_intermediate_channels!r}.")
        for i, value in enumerate(decoder_intermediate_channels):
            check_positive_int(value, f"decoder_intermediate_channels[{i}]")
        encoder = get_vit_encoder(
            encoder_name, in_channels=in_channels, depth=encoder_depth, weights=encoder_weights,
            output_indices=encoder_output_indices, data_format=data_format, **timm_kwargs,
        )
        if not encoder.has_prefix_tokens and decoder_readout != "ignore":
            warnings.warn(
                f"Encoder does not have prefix tokens (e.g. cls_token), but `decoder_readout` is set to '{decoder_readout}'. "
                f"It's recommended to set `decoder_readout='ignore'` when using a encoder without prefix tokens.",
                UserWarning,
                stacklevel=2,
            )
        if len(decoder_intermediate_channels) != len(encoder.out_channels):
            raise ValueError(
                "encoder_out_channels, encoder_output_strides and intermediate_channels must have the same length "
                f"(encoder_depth={encoder_depth}, decoder_intermediate_channels has {len(decoder_intermediate_channels)})."
            )

        if not encoder.dynamic_img_size:
            problem = _fusion_problem(encoder, encoder.img_size, "an img_size whose height and width are")
            if problem:
                raise ValueError(problem)

        def decoder(outputs, dormant):
            features, prefix_tokens = encoder.split_outputs(outputs)
            return dpt_decoder(
                features, prefix_tokens, output_strides=encoder.output_strides, readout=decoder_readout,
                intermediate_channels=list(decoder_intermediate_channels), fusion_channels=decoder_fusion_channels,
                data_format=encoder.data_format,
            )

        config = {**constructor_config(DPT, locals()), **timm_kwargs}
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation, aux_params=aux_params,
            head=functools.partial(dpt_segmentation_head, classes=classes, activation_name=activation, data_format=encoder.data_format),
            aux_feature=lambda outputs: encoder.split_outputs(outputs)[0][-1],
            name=name or f"dpt-{encoder_name[3:]}", **model_kwargs,
        )

    def check_input_shape(self, x):
        """SMP's check (height and width multiples of the patch size), then timm's PatchEmbed check of a
        fixed-size model (``dynamic_img_size=False``): the input is the encoder's ``img_size``."""
        super().check_input_shape(x)
        size = self.input_size(x)
        if size is None:
            return
        if self.encoder.dynamic_img_size:
            problem = _fusion_problem(self.encoder, size, "inputs whose height and width are")
            if problem:
                raise InputShapeError(problem)
            return
        for axis, got, expected in zip(("height", "width"), size, self.encoder.img_size):
            if got != expected:
                raise InputShapeError(
                    f"Input {axis} ({got}) doesn't match model ({expected}). The encoder takes {tuple(self.encoder.img_size)} "
                    "images (its img_size); build the model with dynamic_img_size=True for other sizes."
                )


def _fusion_problem(encoder, size, what):
    """Why the fusion blocks cannot add up the features of an input of ``size`` (H, W), or None."""
    patch = encoder.output_stride
    for axis, length in zip(("height", "width"), size):
        sizes = fusion_mismatch(length // patch, encoder.output_strides)
        if sizes is not None:
            step = fusion_input_multiple(patch, encoder.output_strides)
            hint = f"use {what} multiples of {step}" if step else "no input size fuses with this patch size (a power of two does)"
            return (
                f"DPT's fusion blocks add each reassembled feature to the fused one below it, twice its size, but an input "
                f"{axis} of {length} ({length // patch} patches of {patch}) gives features of {sizes} pixels (SMP's DPT "
                f"fails on it in its forward); {hint}."
            )
    return None
