"""UNet++ (Zhou et al., 2018) with SMP's constructor and defaults."""

import functools

import keras

from keras_seg.base import SegmentationModel, build_encoder, check_decoder_channels, check_model_arguments, constructor_config, pop_deprecated, split_model_kwargs
from keras_seg.decoders.unetplusplus.decoder import unetplusplus_decoder


@keras.saving.register_keras_serializable(package="keras_seg")
class UnetPlusPlus(SegmentationModel):
    """Unet++: an encoder and a decoder of nested, densely connected skip pathways.

    Input height and width must be divisible by the encoder's output stride
    (``2**encoder_depth``), as in SMP. Arguments are SMP's; ``data_format`` picks
    channels_last (default from ``keras.config.image_data_format()``) or channels_first.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "unetplusplus"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        decoder_use_norm="batchnorm",
        decoder_channels=(256, 128, 64, 32, 16),
        decoder_attention_type=None,
        decoder_interpolation="nearest",
        in_channels=3,
        classes=1,
        activation=None,
        aux_params=None,
        *,
        data_format=None,
        name=None,
        **kwargs,
    ):
        if isinstance(encoder_name, str) and encoder_name.startswith("mit_b"):  # SMP's rule: other transformer-style
            raise ValueError(f"UnetPlusPlus is not support encoder_name={encoder_name}")  # encoders (tu-convnext*) build
        decoder_use_norm = pop_deprecated(kwargs, "decoder_use_batchnorm", "decoder_use_norm", decoder_use_norm)
        model_kwargs = split_model_kwargs(kwargs, type(self).__name__)
        check_model_arguments(encoder_name, encoder_depth, in_channels, classes, aux_params)
        decoder_channels = check_decoder_channels(decoder_channels, encoder_depth)
        if encoder_depth == 1:
            # SMP builds this model but its forward fails (KeyError 'x_0_-1'): the nested
            # decoder needs at least two levels.
            raise ValueError("UnetPlusPlus needs encoder_depth >= 2 (its nested decoder has no level at depth 1), got 1.")
        encoder = build_encoder(encoder_name, in_channels, encoder_depth, encoder_weights, data_format=data_format)
        decoder = functools.partial(
            unetplusplus_decoder,
            encoder_channels=encoder.out_channels,
            decoder_channels=decoder_channels,
            use_norm=decoder_use_norm,
            attention_type=decoder_attention_type,
            interpolation=decoder_interpolation,
            add_center_block=encoder.spec.unet_center_block,
            data_format=encoder.data_format,
        )
        config = constructor_config(UnetPlusPlus, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=3, head_upsampling=1, name=name, **model_kwargs,
        )
