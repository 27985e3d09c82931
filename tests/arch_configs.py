"""Small configurations of every architecture, shared by tests that loop over all of them."""

ARCH_CONFIGS = {
    "unet": dict(encoder_depth=3, decoder_channels=(32, 16, 8)),
    "unetplusplus": dict(encoder_depth=3, decoder_channels=(32, 16, 8)),
    "manet": dict(encoder_depth=3, decoder_channels=(32, 16, 8), decoder_pab_channels=8),
    "linknet": dict(encoder_depth=3),
    "fpn": dict(decoder_pyramid_channels=32, decoder_segmentation_channels=32),  # depth < 4: SMP outputs 4x the input
    "pspnet": dict(encoder_depth=3, psp_out_channels=32),
    "deeplabv3": dict(encoder_depth=4, decoder_channels=32),
    "deeplabv3plus": dict(encoder_depth=4, decoder_channels=32),
    "pan": dict(decoder_channels=16),
    "upernet": dict(encoder_depth=4, decoder_channels=32),
    "segformer": dict(encoder_depth=4, decoder_segmentation_channels=32),
}

# Input sizes other than 64: PAN's FPA block needs at least 8 x its encoder's output stride (16).
INPUT_SIZES = {"pan": 128}
