"""PSPNet (Zhao et al., 2017) with SMP's constructor and defaults."""

import functools

import keras

from keras_seg.base import SegmentationModel, build_encoder, check_model_arguments, constructor_config, pop_deprecated, split_model_kwargs
from keras_seg.decoders.pspnet.decoder import psp_decoder


@keras.saving.register_keras_serializable(package="keras_seg")
class PSPNet(SegmentationModel):
    """PSPNet: encoder (default depth 3), pyramid pooling on its deepest feature, head x``upsampling``.

    Arguments are SMP's, in SMP's order (``encoder_weights`` comes before
    ``encoder_depth``); ``data_format`` picks channels_last (default from
    ``keras.config.image_data_format()``) or channels_first. Input height and width
    must be multiples of ``2**encoder_depth`` (capped at 32).
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "psp"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_weights="imagenet",
        encoder_depth=3,
        psp_out_channels=512,
        decoder_use_norm="batchnorm",
        psp_dropout=0.2,
        in_channels=3,
        classes=1,
        activation=None,
        upsampling=8,
        aux_params=None,
        *,
        data_format=None,
        name=None,
        **kwargs,
    ):
        decoder_use_norm = pop_deprecated(kwargs, "psp_use_batchnorm", "decoder_use_norm", decoder_use_norm)
        model_kwargs = split_model_kwargs(kwargs, type(self).__name__)
        check_model_arguments(encoder_name, encoder_depth, in_channels, classes, aux_params, psp_out_channels=psp_out_channels)
        encoder = build_encoder(encoder_name, in_channels, encoder_depth, encoder_weights, data_format=data_format)
        decoder = functools.partial(
            psp_decoder,
            encoder_channels=encoder.out_channels,
            use_norm=decoder_use_norm,
            out_channels=psp_out_channels,
            dropout=psp_dropout,
            data_format=encoder.data_format,
        )
        config = constructor_config(PSPNet, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            # SMP tests aux_params for truthiness here: {} builds no classification head.
            aux_params=aux_params if aux_params else None,
            head_kernel_size=3, head_upsampling=upsampling, name=name, **model_kwargs,
        )
