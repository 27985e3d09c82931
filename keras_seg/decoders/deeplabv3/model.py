"""DeepLabV3 (Chen et al., 2017) and DeepLabV3+ (Chen et al., 2018) with SMP's constructors and defaults."""

import functools

import keras

from keras_seg.base import SegmentationModel, build_encoder, check_model_arguments, constructor_config, split_model_kwargs
from keras_seg.decoders.deeplabv3.decoder import OUTPUT_STRIDES, deeplabv3_decoder, deeplabv3plus_decoder


def _check_output_stride(model_name, output_stride):
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(
            f"{model_name} supports encoder_output_stride 8 or 16 (valid choices: {OUTPUT_STRIDES}), got {output_stride!r}."
        )


def _check_atrous_rates(atrous_rates):
    try:
        rates = [int(r) for r in atrous_rates]
    except (TypeError, ValueError):
        rates = None
    if rates is None or len(rates) != 3 or min(rates) < 1:
        raise ValueError(f"decoder_atrous_rates must be 3 positive integers, e.g. (12, 24, 36), got {atrous_rates!r}.")
    return rates


@keras.saving.register_keras_serializable(package="keras_seg")
class DeepLabV3(SegmentationModel):
    """DeepLabV3: dilated encoder (output stride 8 or 16), ASPP on its deepest feature, head x``upsampling``.

    ``upsampling=None`` (SMP's default) means ``2**encoder_depth`` for depth <= 3, else
    ``encoder_output_stride``, so the output has the input's size. Arguments are SMP's;
    ``data_format`` picks channels_last (default from ``keras.config.image_data_format()``)
    or channels_first. Like SMP, the decoder and heads keep PyTorch's default init.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "deeplabv3"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        encoder_output_stride=8,
        decoder_channels=256,
        decoder_atrous_rates=(12, 24, 36),
        decoder_aspp_separable=False,
        decoder_aspp_dropout=0.5,
        in_channels=3,
        classes=1,
        activation=None,
        upsampling=None,
        aux_params=None,
        *,
        data_format=None,
        name=None,
        **kwargs,
    ):
        model_kwargs = split_model_kwargs(kwargs, type(self).__name__)
        check_model_arguments(encoder_name, encoder_depth, in_channels, classes, aux_params, decoder_channels=decoder_channels)
        _check_output_stride("DeepLabV3", encoder_output_stride)
        decoder_atrous_rates = _check_atrous_rates(decoder_atrous_rates)
        encoder = build_encoder(
            encoder_name, in_channels, encoder_depth, encoder_weights, output_stride=encoder_output_stride, data_format=data_format
        )
        if upsampling is None:
            scale_factor = 2**encoder_depth if encoder_depth <= 3 else encoder_output_stride
        else:
            scale_factor = upsampling
        decoder = functools.partial(
            deeplabv3_decoder,
            out_channels=decoder_channels,
            atrous_rates=decoder_atrous_rates,
            aspp_separable=decoder_aspp_separable,
            aspp_dropout=decoder_aspp_dropout,
            data_format=encoder.data_format,
        )
        config = constructor_config(DeepLabV3, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=1, head_upsampling=scale_factor, head_init="torch", name=name,
            **model_kwargs,
        )

    def load_torch_state_dict(self, state, strict=True):
        """As SMP's DeepLabV3.load_state_dict: legacy ``decoder.0/1/2.`` keys become ``decoder.aspp/conv/bn.``."""
        legacy = {"decoder.0.": "decoder.aspp.", "decoder.1.": "decoder.conv.", "decoder.2.": "decoder.bn."}
        renamed = {}
        for key, value in state.items():
            for old, new in legacy.items():
                if key.startswith(old):
                    key = new + key[len(old):]
                    break
            renamed[key] = value
        return super().load_torch_state_dict(renamed, strict=strict)


@keras.saving.register_keras_serializable(package="keras_seg")
class DeepLabV3Plus(SegmentationModel):
    """DeepLabV3+: DeepLabV3's ASPP (separable by default) plus a decoder fusing the stride-4 feature.

    ``encoder_depth`` is 3, 4 or 5 and ``encoder_output_stride`` 8 or 16. Arguments are
    SMP's; ``data_format`` picks channels_last (default from
    ``keras.config.image_data_format()``) or channels_first. Like SMP, the decoder and
    heads keep PyTorch's default init.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "deeplabv3plus"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        encoder_output_stride=16,
        decoder_channels=256,
        decoder_atrous_rates=(12, 24, 36),
        decoder_aspp_separable=True,
        decoder_aspp_dropout=0.5,
        in_channels=3,
        classes=1,
        activation=None,
        upsampling=4,
        aux_params=None,
        *,
        data_format=None,
        name=None,
        **kwargs,
    ):
        model_kwargs = split_model_kwargs(kwargs, type(self).__name__)
        _check_output_stride("DeepLabV3Plus", encoder_output_stride)
        decoder_atrous_rates = _check_atrous_rates(decoder_atrous_rates)
        check_model_arguments(
            encoder_name, encoder_depth, in_channels, classes, aux_params, min_depth=3, decoder="DeepLabV3Plus",
            decoder_channels=decoder_channels,
        )
        encoder = build_encoder(
            encoder_name, in_channels, encoder_depth, encoder_weights, output_stride=encoder_output_stride, data_format=data_format
        )
        decoder = functools.partial(
            deeplabv3plus_decoder,
            encoder_depth=encoder_depth,
            out_channels=decoder_channels,
            atrous_rates=decoder_atrous_rates,
            output_stride=encoder_output_stride,
            aspp_separable=decoder_aspp_separable,
            aspp_dropout=decoder_aspp_dropout,
            data_format=encoder.data_format,
        )
        config = constructor_config(DeepLabV3Plus, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=1, head_upsampling=upsampling, head_init="torch", name=name,
            **model_kwargs,
        )
