"""LinkNet (Chaurasia and Culurciello, 2017) with SMP's constructor and defaults."""

import functools

import keras

from backbones.registry import transformer_style
from keras_seg.base import SegmentationModel, build_encoder, check_model_arguments, constructor_config, pop_deprecated, split_model_kwargs
from keras_seg.decoders.linknet.decoder import linknet_decoder


@keras.saving.register_keras_serializable(package="keras_seg")
class Linknet(SegmentationModel):
    """Linknet: an encoder and a light decoder whose blocks are summed with the skips.

    Input height and width must be divisible by the encoder's output stride
    (``2**encoder_depth``), as in SMP. Arguments are SMP's; ``data_format`` picks
    channels_last (default from ``keras.config.image_data_format()``) or channels_first.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "link"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        decoder_use_norm="batchnorm",
        in_channels=3,
        classes=1,
        activation=None,
        aux_params=None,
        *,
        data_format=None,
        name=None,
        **kwargs,
    ):
        if transformer_style(encoder_name):
            raise ValueError(f"Encoder `{encoder_name}` is not supported for Linknet")
        decoder_use_norm = pop_deprecated(kwargs, "decoder_use_batchnorm", "decoder_use_norm", decoder_use_norm)
        model_kwargs = split_model_kwargs(kwargs, type(self).__name__)
        check_model_arguments(encoder_name, encoder_depth, in_channels, classes, aux_params)
        encoder = build_encoder(encoder_name, in_channels, encoder_depth, encoder_weights, data_format=data_format)
        decoder = functools.partial(
            linknet_decoder,
            encoder_channels=encoder.out_channels,
            n_blocks=encoder_depth,
            use_norm=decoder_use_norm,
            data_format=encoder.data_format,
        )
        config = constructor_config(Linknet, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=1, head_upsampling=1, name=name, **model_kwargs,
        )
