"""Segformer's decoder (Xie et al., 2021) on any encoder, with SMP's constructor and defaults."""

import functools

import keras

from keras_seg.base import SegmentationModel, build_encoder, check_model_arguments, constructor_config, split_model_kwargs
from keras_seg.decoders.segformer.decoder import segformer_decoder


@keras.saving.register_keras_serializable(package="keras_seg")
class Segformer(SegmentationModel):
    """Segformer: per-level MLPs, all resized to 1/4 of the input, fused, head x``upsampling``.

    ``encoder_depth`` must be at least 3. Arguments are SMP's; ``data_format`` picks
    channels_last (default from ``keras.config.image_data_format()``) or channels_first.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "segformer"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        decoder_segmentation_channels=256,
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
            encoder_name, encoder_depth, in_channels, classes, aux_params, min_depth=3, decoder="Segformer",
            decoder_segmentation_channels=decoder_segmentation_channels,
        )
        encoder = build_encoder(encoder_name, in_channels, encoder_depth, encoder_weights, data_format=data_format)
        decoder = functools.partial(
            segformer_decoder,
            encoder_channels=encoder.out_channels,
            segmentation_channels=decoder_segmentation_channels,
            data_format=encoder.data_format,
        )
        config = constructor_config(Segformer, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=1, head_upsampling=upsampling, name=name, **model_kwargs,
        )
