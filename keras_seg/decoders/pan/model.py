"""PAN, Pyramid Attention Network (Li et al., 2018), with SMP's constructor and defaults."""

import functools

import keras

from keras_seg.base import InputShapeError, SegmentationModel, build_encoder, check_model_arguments, constructor_config, pop_deprecated, split_model_kwargs
from keras_seg.decoders.pan.decoder import FPA_POOLS, pan_decoder
from backbones.layers import spatial_axes

OUTPUT_STRIDES = (16, 32)


@keras.saving.register_keras_serializable(package="keras_seg")
class PAN(SegmentationModel):
    """PAN: feature pyramid attention on the deepest (dilated, by default 1/16) feature and
    global attention upsampling; the head upsamples the 1/4-scale output by ``upsampling``.

    Input height and width must be divisible by the encoder's output stride, as in SMP, and
    at least 8 times it (the FPA block max-pools the deepest map three times; SMP fails
    inside torch there). Arguments are SMP's; ``data_format`` picks channels_last (default
    from ``keras.config.image_data_format()``) or channels_first.
    """

    requires_divisible_input_shape = True
    smp_name_prefix = "pan"

    def __init__(
        self,
        encoder_name="resnet34",
        encoder_depth=5,
        encoder_weights="imagenet",
        encoder_output_stride=16,
        decoder_channels=32,
        decoder_interpolation="bilinear",
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
        if encoder_output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"PAN support output stride 16 or 32, got {encoder_output_stride}")
        decoder_interpolation = pop_deprecated(kwargs, "upscale_mode", "decoder_interpolation", decoder_interpolation)
        model_kwargs = split_model_kwargs(kwargs, type(self).__name__)
        check_model_arguments(
            encoder_name, encoder_depth, in_channels, classes, aux_params, min_depth=3, decoder="PAN",
            decoder_channels=decoder_channels,
        )
        encoder = build_encoder(
            encoder_name, in_channels, encoder_depth, encoder_weights, output_stride=encoder_output_stride, data_format=data_format
        )
        decoder = functools.partial(
            pan_decoder,
            encoder_depth=encoder_depth,
            decoder_channels=decoder_channels,
            interpolation=decoder_interpolation,
            data_format=encoder.data_format,
        )
        config = constructor_config(PAN, locals())
        super().__init__(
            encoder=encoder, decoder=decoder, config=config, classes=classes, activation=activation,
            aux_params=aux_params, head_kernel_size=3, head_upsampling=upsampling, name=name, **model_kwargs,
        )

    def check_input_shape(self, x):
        super().check_input_shape(x)
        size = self.input_size(x)
        if size is None:
            return
        h, w = size
        minimum = self.encoder.output_stride * 2**FPA_POOLS
        if h < minimum or w < minimum:
            raise InputShapeError(
                f"Wrong input shape height={h}, width={w}. PAN needs height and width of at least {minimum} "
                f"(8 x the encoder's output stride {self.encoder.output_stride}: its FPA block max-pools the deepest "
                f"feature three times). Consider pad your images to shape ({max(h, minimum)}, {max(w, minimum)})."
            )
