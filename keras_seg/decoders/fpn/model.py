"""FPN (Lin et al., 2017) for segmentation, with SMP's constructor and defaults."""

import functools

import keras

from backbones.registry import transformer_style
from keras_seg.base import SegmentationModel, build_encoder, check_model_arguments, constructor_config, split_model_kwargs
from keras_seg.decoders.fpn.decoder import fpn_decoder, validate_fpn_arguments


@keras.saving.register_keras_serializable(package="keras_seg")
class FPN(SegmentationModel):
    """FPN: a feature pyramid decoder; the head upsamples its 1/4-scale output by ``upsampling``.

    Input height and width must be divisible by the encoder's output stride
    (``2**encoder_depth``), as in SMP. Arguments are SMP's; ``data_format`` picks
    channels_last (default from ``keras.config.image_data_format()``) or channels_first.
    As in SMP, the output matches the input size only at encoder_depth 5 (with
    upsampling 4); depth 3 and 4 give 4x and 2x larger outputs.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "fpn"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        decoder_pyramid_channels=256,
        decoder_segmentation_channels=128,
        decoder_merge_policy="add",
        decoder_dropout=0.2,
        decoder_interpolation="nearest",
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
        if transformer_style(encoder_name) and encoder_depth != 5:
            raise ValueError(f"Encoder {encoder_name} support only encoder_depth=5")
        model_kwargs = split_model_kwargs(kwargs, type(self).__name__)
        check_model_arguments(
            encoder_name, encoder_depth, in_channels, classes, aux_params, min_depth=3, decoder="FPN",
            decoder_pyramid_channels=decoder_pyramid_channels, decoder_segmentation_channels=decoder_segmentation_channels,
        )
        validate_fpn_arguments(encoder_depth, decoder_segmentation_channels, decoder_merge_policy, decoder_dropout, decoder_interpolation)
        encoder = build_encoder(encoder_name, in_channels, encoder_depth, encoder_weights, data_format=data_format)
        decoder = functools.partial(
            fpn_decoder,
            encoder_depth=encoder_depth,
            pyramid_channels=decoder_pyramid_channels,
            segmentation_channels=decoder_segmentation_channels,
            dropout=decoder_dropout,
            merge_policy=decoder_merge_policy,
            interpolation=decoder_interpolation,
            data_format=encoder.data_format,
        )
        config = constructor_config(FPN, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=1, head_upsampling=upsampling, name=name, **model_kwargs,
        )
