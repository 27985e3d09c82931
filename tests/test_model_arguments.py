"""Bad model arguments and bad input shapes give one ValueError naming the argument (or the
shape), the value and what is valid, for every architecture. The argument checks run before
anything is built, so these cases cost milliseconds."""

import numpy as np
import pytest

import keras_seg

ARCHS = ["unet", "unetplusplus", "manet", "linknet", "fpn", "pspnet", "deeplabv3", "deeplabv3plus", "pan",
         "upernet", "segformer"]
MIN_DEPTH = {"fpn": 3, "deeplabv3plus": 3, "pan": 3, "upernet": 3, "segformer": 3}
SMP_DEPTH_NAME = {"fpn": "FPN", "deeplabv3plus": "DeepLabV3Plus", "pan": "PAN", "upernet": "UPerNet",
                  "segformer": "Segformer"}
CHANNEL_ARGS = {
    "unet": {"decoder_channels": (16, 8, 0, 8, 8)},
    "unetplusplus": {"decoder_channels": (16, 8, 8, -4, 8)},
    "manet": {"decoder_channels": (16, 8, 8, 8, 0), "decoder_pab_channels": 0},
    "fpn": {"decoder_pyramid_channels": 0, "decoder_segmentation_channels": -32},
    "pspnet": {"psp_out_channels": 0},
    "deeplabv3": {"decoder_channels": 0},
    "deeplabv3plus": {"decoder_channels": -1},
    "pan": {"decoder_channels": 0},
    "upernet": {"decoder_channels": 0},
    "segformer": {"decoder_segmentation_channels": 0},
}


def build(arch, **kwargs):
    return keras_seg.create_model(arch, encoder_name="resnet18", encoder_weights=None, **kwargs)


def positive_int_message(name, value):
    return rf"`{name}` must be a positive integer \(>= 1\), got {value!r}"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name,value", [("classes", 0), ("classes", -2), ("classes", "3"), ("classes", 2.5),
                                        ("in_channels", 0)])
def test_classes_and_in_channels(arch, name, value):
    with pytest.raises(ValueError, match=positive_int_message(name, value)):
        build(arch, **{name: value})


@pytest.mark.parametrize("arch", ARCHS)
def test_aux_classes(arch):
    with pytest.raises(ValueError, match=positive_int_message("aux_params['classes']", 0).replace("[", r"\[")):
        build(arch, aux_params={"classes": 0})


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("depth", ["3", 3.0, True, -1, 0, 6])
def test_encoder_depth(arch, depth):
    low = MIN_DEPTH.get(arch, 1)
    if isinstance(depth, int) and not isinstance(depth, bool) and depth < low and arch in SMP_DEPTH_NAME:
        # SMP's own message first, then the valid range
        pattern = (rf"Encoder depth for {SMP_DEPTH_NAME[arch]} decoder cannot be less than {low}, got {depth}: "
                   rf"encoder_depth must be at least {low}, one of \(3, 4, 5\)")
    else:
        pattern = rf"encoder_depth should be in range \[{low}, 5\].*got {depth!r}"
    kwargs = {"encoder_depth": depth}
    if arch in ("unet", "unetplusplus", "manet"):
        kwargs["decoder_channels"] = (8,) * 5  # the depth is checked first, whatever the channels
    with pytest.raises(ValueError, match=pattern):
        build(arch, **kwargs)


@pytest.mark.parametrize("arch,name", [(a, n) for a, args in CHANNEL_ARGS.items() for n in args])
def test_channels(arch, name):
    value = CHANNEL_ARGS[arch][name]
    if isinstance(value, tuple):
        index = next(i for i, v in enumerate(value) if v < 1)
        pattern = positive_int_message(f"decoder_channels[{index}]", value[index]).replace("[", r"\[")
    else:
        pattern = positive_int_message(name, value)
    with pytest.raises(ValueError, match=pattern):
        build(arch, **{name: value})


@pytest.mark.parametrize("arch", ["unet", "unetplusplus", "manet"])
def test_decoder_channels_not_a_list_or_wrong_length(arch):
    with pytest.raises(ValueError, match=r"`decoder_channels` must be a list of 5 positive integers.*got 16"):
        build(arch, decoder_channels=16)
    with pytest.raises(ValueError, match=r"Model depth is 3, but you provide `decoder_channels` for 5 blocks"):
        build(arch, encoder_depth=3)  # SMP's message, now only for a valid depth


# -- input shapes -----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["unet", "pan"])
def model(request):
    if request.param == "pan":
        return build("pan", encoder_depth=3, decoder_channels=8, encoder_output_stride=32, data_format="channels_last")
    return build("unet", encoder_depth=1, decoder_channels=(8,), data_format="channels_last")


@pytest.mark.parametrize("shape,problem", [
    ((64, 64, 3), r"got a rank-3 input \(add the batch axis for one image: x\[None\]\) of shape \(64, 64, 3\)"),
    ((1, 1, 64, 64, 3), r"got a rank-5 input of shape \(1, 1, 64, 64, 3\)"),
    ((0, 64, 64, 3), r"got an empty batch \(N = 0\) of shape \(0, 64, 64, 3\)"),
    ((1, 64, 64, 4), r"got 4 channels of shape \(1, 64, 64, 4\)"),
])
@pytest.mark.parametrize("how", ["call", "predict"])
def test_input_shape_errors(model, shape, problem, how):
    x = np.zeros(shape, "float32")
    expected = rf"{type(model).__name__} expects a batch of images of shape \(N, H, W, 3\) \(channels_last, in_channels=3\), "
    with pytest.raises(ValueError, match=expected + problem):
        model(x) if how == "call" else model.predict(x, verbose=0)
