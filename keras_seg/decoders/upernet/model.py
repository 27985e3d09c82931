"""UPerNet (Xiao et al., 2018) with SMP's constructor and defaults."""

import functools

import keras

from keras_seg.base import SegmentationModel, build_encoder, check_model_arguments, constructor_config, split_model_kwargs
from keras_seg.decoders.upernet.decoder import upernet_decoder


@keras.saving.register_keras_serializable(package="keras_seg")
class UPerNet(SegmentationModel):
    """UPerNet: PSP module on the deepest feature, FPN over the rest, fused at stride 4, head x``upsampling``.

    ``encoder_depth`` must be at least 3. Arguments are SMP's; ``data_format`` picks
    channels_last (default from ``keras.config.image_data_format()``) or channels_first.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "upernet"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        decoder_channels=256,
        decoder_use_norm="batchnorm",
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
        check_model_arguments(
            encoder_name, encoder_depth, in_channels, classes, aux_params, min_depth=3, decoder="UPerNet",
            decoder_channels=decoder_channels,
        )
        encoder = build_encoder(encoder_name, in_channels, encoder_depth, encoder_weights, data_format=data_format)
        decoder = functools.partial(
            upernet_decoder, decoder_channels=decoder_channels, use_norm=decoder_use_norm, data_format=encoder.data_format
        )
        config = constructor_config(UPerNet, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=1, head_upsampling=upsampling, name=name, **model_kwargs,
        )
