"""keras-hub backbones as encoders: ``encoder_name="keras_hub:<preset>"`` (issue 14).

Each family's backbone is built tiny with random weights (BatchNorm statistics randomised) and
saved with keras-hub's own ``save_to_preset`` to a temporary folder, the preset the encoder reads.
The reference is keras-hub itself: the encoder's features must be the backbone's pyramid outputs
(and, for strides the pyramid lacks, the backbone's own layers at that size). The ``hf://timm/...``
path reads a timm checkpoint from a Hugging Face cache the test writes (offline) and is compared
with timm's own features, and, dilated to output stride 16/8, with SMP's dilated resnet18 holding the
same weights. Numerics run on every backend; backend-independent checks on torch.
"""

import json
import os
import shutil
import sys

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import backbones  # noqa: E402
import keras_seg  # noqa: E402
from backbones import keras_hub_adapter as adapter  # noqa: E402
from backbones.registry import ENCODERS, get_spec  # noqa: E402
from tests.parity import BACKEND, image, infer, offline_hub_snapshot, relative_error, to_format, to_nchw  # noqa: E402
from weight_ports.first_conv import adapt_first_conv  # noqa: E402

torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent: checked on the torch backend")
SIZE = 64

_MOBILENET_BLOCKS = dict(
    stackwise_num_blocks=[1, 1, 2],
    stackwise_expansion=[[16], [16], [16, 16]],
    stackwise_num_filters=[[8], [8], [8, 8]],
    stackwise_kernel_size=[[3], [3], [3, 3]],
    stackwise_num_strides=[[2], [2], [2, 1]],
    stackwise_se_ratio=[[None], [0.25], [0.25, None]],
    stackwise_activation=[["relu"], ["hard_swish"], ["hard_swish", "hard_swish"]],
    stackwise_padding=[[1], [1], [1, 1]],
)
# family -> (keras-hub class, tiny constructor arguments)
FAMILIES = {
    "resnet": ("ResNetBackbone", dict(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 8, 16, 16],
        stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block")),
    "resnetv2": ("ResNetBackbone", dict(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 8, 16, 16],
        stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
        use_pre_activation=True)),
    "cspnet": ("CSPNetBackbone", dict(
        stem_filters=8, stem_kernel_size=3, stem_strides=1, stackwise_depth=[1, 1, 1, 1, 1],
        stackwise_num_filters=[8, 8, 8, 8, 8], stackwise_strides=[2, 2, 2, 2, 2], bottle_ratio=(0.5, 1.0),
        block_ratio=(1.0, 0.5), expand_ratio=(2.0, 1.0), stem_padding="same", stage_type="csp",
        block_type="dark_block", down_growth=True)),
    "densenet": ("DenseNetBackbone", dict(stackwise_num_repeats=[1, 1, 1, 1], growth_rate=4, compression_ratio=0.5)),
    "efficientnet": ("EfficientNetBackbone", dict(
        stackwise_kernel_sizes=[3, 3, 3, 3, 3], stackwise_num_repeats=[1, 1, 1, 1, 1],
        stackwise_input_filters=[8] * 5, stackwise_output_filters=[8] * 5, stackwise_expansion_ratios=[1, 2, 2, 2, 2], stackwise_squeeze_and_excite_ratios=[0.25] * 5,
        stackwise_strides=[1, 2, 2, 2, 2], stackwise_block_types=["v1"] * 5, stackwise_width_coefficients=[1.0] * 5,
        stackwise_depth_coefficients=[1.0] * 5, stackwise_force_input_filters=[0] * 5,
        stackwise_nores_option=[False] * 5, min_depth=None, use_depth_divisor_as_min_depth=True,
        cap_round_filter_decrease=True, dropout=0.0)),  # num_features: not in its get_config (keras-hub 0.32)
    "mobilenetv3": ("MobileNetBackbone", dict(
        **_MOBILENET_BLOCKS, output_num_filters=32, input_num_filters=8, depthwise_filters=8, depthwise_stride=2,
        depthwise_residual=False, squeeze_and_excite=0.5, last_layer_filter=32)),
    "mit": ("MiTBackbone", dict(
        layerwise_depths=[1, 1, 1, 1], num_layers=4, layerwise_num_heads=[1, 1, 2, 2], layerwise_sr_ratios=[4, 2, 1, 1],
        max_drop_path_rate=0.0, layerwise_patch_sizes=[7, 3, 3, 3], layerwise_strides=[4, 2, 2, 2],
        hidden_dims=[8, 8, 8, 8], image_shape=(SIZE, SIZE, 3))),
}
_PRESETS = {}


def randomize(backbone, seed=0):
    """Give every BatchNormalization (nested ones included) non-default statistics and affine
    parameters, so that loading pretrained weights is visible in the outputs."""
    rng = np.random.RandomState(seed)
    for layer in backbone._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.rand(n).astype("float32") - 0.5)
            layer.moving_variance.assign(rng.rand(n).astype("float32") + 0.5)
            if layer.gamma is not None:
                layer.gamma.assign(rng.rand(n).astype("float32") + 0.5)
                layer.beta.assign(rng.rand(n).astype("float32") * 0.4 - 0.2)
    return backbone


def tiny_backbone(family, **overrides):
    cls, kwargs = FAMILIES[family]
    keras.utils.set_random_seed(0)
    with adapter._building("channels_last"):
        return randomize(getattr(keras_hub.models, cls)(**{**kwargs, **overrides}))


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    """``preset_dir(family)``: a local keras-hub preset of the family's tiny backbone (built once)."""
    root = tmp_path_factory.mktemp("keras_hub_presets")

    def make(family):
        if family not in _PRESETS:
            path = str(root / family)
            tiny_backbone(family).save_to_preset(path)
            _PRESETS[family] = path
        return _PRESETS[family]

    return make


def encoder_name(preset_dir, family):
    return f"keras_hub:{preset_dir(family)}"


def x_image(data_format="channels_last", channels=3, seed=0):
    return to_format(image((1, channels, SIZE, SIZE), seed), data_format)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_features_are_the_backbone_pyramid(preset_dir, family):
    """Features ordered by their measured stride equal keras-hub's pyramid outputs (any labels);
    strides the pyramid lacks come from the backbone's last layer of that size, or SMP's 0-channel
    dummy (MiT's stride 2). Pretrained (preset) weights are loaded for any encoder_weights but None."""
    name = encoder_name(preset_dir, family)
    spec = get_spec(name)
    encoder = backbones.get_encoder(name, depth=spec.max_depth, weights="imagenet")
    reference = keras_hub.models.Backbone.from_preset(preset_dir(family))
    x = x_image()
    features = [keras.ops.convert_to_numpy(f) for f in infer(encoder, x)]
    assert len(features) == spec.max_depth + 1 == 6
    np.testing.assert_array_equal(features[0], x)
    for i, f in enumerate(features[1:], start=1):
        assert f.shape[1:3] == (SIZE >> i, SIZE >> i), (i, f.shape)
        assert f.shape[-1] == encoder.out_channels[i]
    pyramid = dict(getattr(reference, "pyramid_outputs", None) or {})
    if not pyramid:  # MobileNet has no pyramid: its output is its last stride-32 map
        pyramid = {"output": reference.output}
    expected = infer(keras.Model(reference.input, pyramid), x)
    matched = set()
    for key, value in expected.items():
        value = keras.ops.convert_to_numpy(value)
        level = int(np.log2(SIZE // value.shape[1]))
        if level > 5:
            continue
        err = relative_error(features[level], value)
        print(f"keras-hub {family} {key} (stride {2 ** level}) {BACKEND}: {err:.1e}")
        assert err <= 1e-6, (key, err)
        matched.add(level)
    if family == "mit":
        assert encoder.out_channels[1] == 0 and features[1].shape[-1] == 0 and matched == {2, 3, 4, 5}
    elif family == "resnet":  # stride 2: the stem's last map (keras-hub labels no stride-2 level)
        stem = infer(keras.Model(reference.input, reference.get_layer("conv1_relu").output), x)
        assert relative_error(features[1], keras.ops.convert_to_numpy(stem)) <= 1e-6
        assert matched == {2, 3, 4, 5}
    elif family == "mobilenetv3":
        assert matched == {5}
    if BACKEND == "torch":  # encoder_weights=None: random weights (backend-independent)
        random = infer(backbones.get_encoder(name, depth=5, weights=None), x)
        assert relative_error(keras.ops.convert_to_numpy(random[-1]), features[-1]) > 1e-2


@torch_only
@pytest.mark.parametrize("family", ["resnet", "mit"])
def test_depths(preset_dir, family):
    """depth 1 ... 5: depth + 1 features, out_channels as SMP reports them, only the stages needed
    built (fewer weights), pretrained weights equal to the full encoder's."""
    name = encoder_name(preset_dir, family)
    full = backbones.get_encoder(name, depth=5, weights="imagenet")
    x = x_image()
    expected = [keras.ops.convert_to_numpy(f) for f in infer(full, x)]
    sizes = []
    for depth in range(1, 6):
        encoder = backbones.get_encoder(name, depth=depth, weights="imagenet")
        features = infer(encoder, x)
        assert len(features) == depth + 1 and encoder.out_channels == full.out_channels[: depth + 1]
        assert encoder.output_stride == 2**depth
        for f, e in zip(features, expected):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(f), e)
        sizes.append(sum(int(np.prod(v.shape)) for v in encoder.weights))
    assert sizes == sorted(sizes) and sizes[-2] < sizes[-1]
    with pytest.raises(ValueError, match=r"depth should be in range \[1, 5\]"):
        backbones.get_encoder(name, depth=6)


ARCH_CASES = [
    ("unet", "resnet", {}), ("unet", "mit", {}), ("fpn", "resnet", {}), ("fpn", "mit", {}),
    ("segformer", "resnet", {}), ("segformer", "mit", {}), ("upernet", "resnetv2", {}), ("upernet", "mit", {}),
    ("unet", "mobilenetv3", {}), ("fpn", "efficientnet", {}), ("unet", "densenet", {}),
]


@torch_only
@pytest.mark.parametrize("arch,family,kwargs", ARCH_CASES, ids=[f"{a}-{f}-{k}" for a, f, k in ARCH_CASES])
def test_architectures_keep_the_input_size(preset_dir, arch, family, kwargs):
    model = keras_seg.create_model(arch, encoder_name(preset_dir, family), encoder_weights="imagenet", classes=2, **kwargs)
    out = keras.ops.convert_to_numpy(model(x_image(), training=False))
    assert out.shape == (1, SIZE, SIZE, 2) and np.all(np.isfinite(out))


@torch_only
def test_refusals(preset_dir):
    """SMP's rules hold: no stride-2 feature refuses Linknet and FPN below depth 5 (Unet++ builds, as on
    SMP's transformer-style tu- encoders: SMP refuses only its mit_b* names); a backbone that cannot be
    dilated (MiT: token reshapes; DenseNet: SMP refuses it) refuses output stride 8/16 with a clear error."""
    mit, resnet = encoder_name(preset_dir, "mit"), encoder_name(preset_dir, "resnet")
    assert get_spec(mit).stride2_feature is False and get_spec(resnet).stride2_feature is True
    with pytest.raises(ValueError, match="not supported for Linknet"):
        keras_seg.Linknet(mit, encoder_weights=None)
    model = keras_seg.UnetPlusPlus(mit, encoder_weights=None, classes=2)
    assert keras.ops.convert_to_numpy(model(x_image(), training=False)).shape == (1, SIZE, SIZE, 2)
    with pytest.raises(ValueError, match="encoder_depth"):
        keras_seg.FPN(mit, encoder_depth=4, encoder_weights=None)
    densenet = encoder_name(preset_dir, "densenet")
    with pytest.raises(ValueError, match=r"MiTBackbone .* cannot be dilated: .*layer 'output_level_2' \(Reshape\).*encoder_output_stride=32"):
        keras_seg.DeepLabV3Plus(mit, encoder_weights=None)
    with pytest.raises(ValueError, match="DenseNetBackbone .* cannot be dilated: SMP's DenseNet encoders cannot"):
        backbones.get_encoder(densenet, output_stride=16)
    assert get_spec(resnet).supports_dilation


# family -> output strides checked (both where the rewrite differs: nested blocks in MobileNet)
# (ResNet and EfficientNet: against SMP below)
DILATABLE = {"resnetv2": (8,), "cspnet": (16,), "mobilenetv3": (16, 8)}


@torch_only
@pytest.mark.parametrize("family", sorted(DILATABLE))
def test_dilated_features(preset_dir, family):
    """output_stride 16 / 8: features at stride min(2**i, output_stride), the same channels, the
    same weights (the plain encoder's load as they are), and features up to the output stride
    equal the plain encoder's (those stages untouched); past it they differ (dilated, not subsampled)."""
    name = encoder_name(preset_dir, family)
    assert get_spec(name).supports_dilation
    x = x_image()
    plain = backbones.get_encoder(name, weights="imagenet")
    expected = [keras.ops.convert_to_numpy(f) for f in infer(plain, x)]
    for output_stride in DILATABLE[family]:
        encoder = backbones.get_encoder(name, output_stride=output_stride)
        encoder.set_weights(plain.get_weights())
        assert encoder.output_stride == output_stride and encoder.out_channels == plain.out_channels
        features = [keras.ops.convert_to_numpy(f) for f in infer(encoder, x)]
        for i, (f, e) in enumerate(zip(features, expected)):
            stride = min(2**i, output_stride)
            assert f.shape == (1, SIZE // stride, SIZE // stride, plain.out_channels[i]), (output_stride, i, f.shape)
            if 2**i <= output_stride:
                np.testing.assert_array_equal(f, e)
        assert relative_error(features[-1][:, ::32 // output_stride, ::32 // output_stride], expected[-1]) > 1e-3


@pytest.fixture(scope="module")
def timm_hub(tmp_path_factory):
    """``timm_hub(architecture)``: ``(encoder name, timm model)`` for a timm checkpoint (random
    weights, BatchNorm randomised) in a Hugging Face cache read offline, as ``keras_hub:hf://timm/...``."""
    import timm
    import torch
    from safetensors.torch import save_file

    from tests.parity import randomize_batchnorm

    made = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        cache = tmp_path_factory.mktemp("hub")

        def make(architecture):
            if architecture not in made:
                torch.manual_seed(0)
                net = randomize_batchnorm(timm.create_model(architecture, pretrained=False).eval())
                snapshot = offline_hub_snapshot(cache, monkeypatch, f"timm/{architecture}.keras_seg_test")
                (snapshot / "config.json").write_text(json.dumps({
                    "architecture": architecture, "num_classes": 1000, "num_features": net.num_features,
                    "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.485, 0.456, 0.406],
                                       "std": [0.229, 0.224, 0.225], "interpolation": "bicubic"},
                }))
                save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(snapshot / "model.safetensors"))
                made[architecture] = (f"keras_hub:hf://timm/{architecture}.keras_seg_test", net)
            return made[architecture]

        yield make


def _smp_features(name, net, output_stride, x):
    """SMP's encoder ``name`` with ``net``'s weights (its classifier dropped), dilated by SMP, on ``x`` (NCHW)."""
    import segmentation_models_pytorch as smp
    import torch

    reference = smp.encoders.get_encoder(name, weights=None, output_stride=output_stride).eval()
    reference.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith(("fc.", "classifier."))})
    with torch.inference_mode():
        return reference, [t.numpy() for t in reference(torch.from_numpy(x))]


@pytest.mark.parametrize("output_stride", [16, 8])
def test_dilated_resnet_is_smps(timm_hub, output_stride):
    """keras-hub's resnet18 (converted from a timm checkpoint) dilated by the adapter equals SMP's
    resnet18 encoder with the same weights dilated by SMP (``make_dilated``), at every stride."""
    name, net = timm_hub("resnet18")
    encoder = backbones.get_encoder(name, output_stride=output_stride, weights="imagenet")
    x = image((1, 3, SIZE, SIZE))
    _, expected = _smp_features("resnet18", net, output_stride, x)
    features = infer(encoder, to_format(x, "channels_last"))
    for level, (ours, theirs) in enumerate(zip(features[1:], expected[1:]), start=1):
        assert theirs.shape[-1] == SIZE // min(2**level, output_stride)
        err = relative_error(to_nchw(ours, "channels_last"), theirs)
        print(f"keras-hub resnet18 OS{output_stride} vs SMP, stride {2 ** level} {BACKEND}: {err:.1e}")
        assert err < 1e-4, (level, err)


@torch_only
@pytest.mark.filterwarnings("ignore:`timm-` encoders are deprecated:DeprecationWarning")  # SMP's own make_dilated
def test_dilated_efficientnet_is_smps(timm_hub):
    """keras-hub's efficientnet_b0 (from a timm checkpoint: depthwise convs, squeeze-and-excite)
    dilated to output stride 8 equals SMP's timm-efficientnet-b0 dilated by SMP (rates 2 and 4).
    keras-seg's stride-32 feature is keras-hub's last map (after the 1x1 head conv), SMP's the last
    block's: compared through SMP's own head layers; stride 2 differs in choice (stem vs first block)."""
    import torch

    name, net = timm_hub("efficientnet_b0")
    encoder = backbones.get_encoder(name, output_stride=8, weights="imagenet")
    x = image((1, 3, SIZE, SIZE))
    reference, expected = _smp_features("timm-efficientnet-b0", net, 8, x)
    with torch.inference_mode():
        expected[5] = reference.bn2(reference.conv_head(torch.from_numpy(expected[5]))).numpy()
    features = infer(encoder, to_format(x, "channels_last"))
    for level in range(2, 6):
        ours, theirs = to_nchw(features[level], "channels_last"), expected[level]
        assert theirs.shape[-1] == SIZE // min(2**level, 8)
        err = relative_error(ours, theirs)
        print(f"keras-hub efficientnet_b0 OS8 vs SMP, stride {2 ** level} {BACKEND}: {err:.1e}")
        assert err < 1e-4, (level, err)


def test_deeplabv3plus_on_a_keras_hub_backbone(preset_dir):
    """DeepLabV3+ (output stride 16) and DeepLabV3 (8) run on dilated keras-hub backbones."""
    for arch, family, output_stride in (("deeplabv3plus", "resnet", 16), ("deeplabv3", "cspnet", 8)):
        if BACKEND != "torch" and arch == "deeplabv3":
            continue  # backend-independent beyond one: checked on torch
        model = keras_seg.create_model(arch, encoder_name(preset_dir, family), encoder_weights="imagenet", classes=2,
                                       encoder_output_stride=output_stride, decoder_channels=16)
        assert model.encoder.output_stride == output_stride
        out = keras.ops.convert_to_numpy(infer(model, x_image()))
        assert out.shape == (1, SIZE, SIZE, 2) and np.all(np.isfinite(out))


@torch_only
@pytest.mark.parametrize("family,first_conv", [("resnet", "conv1_conv"), ("mit", "patch_and_embed_0")])
@pytest.mark.parametrize("in_channels", [1, 4])
def test_in_channels_adapt_the_first_conv(preset_dir, family, first_conv, in_channels):
    """Rebuilt for other input channels; the pretrained 3-channel first conv adapted by SMP's rule."""
    name = encoder_name(preset_dir, family)
    encoder = backbones.get_encoder(name, in_channels=in_channels, weights="imagenet")
    reference = keras_hub.models.Backbone.from_preset(preset_dir(family))

    def kernel(model):
        layer = model.get_layer(first_conv)
        return next(keras.ops.convert_to_numpy(w) for w in layer.weights if len(w.shape) == 4)

    ours, theirs = kernel(encoder.get_layer(adapter.FEATURES_NAME)), kernel(reference)
    expected = np.transpose(adapt_first_conv(np.transpose(theirs, (3, 2, 0, 1)), in_channels), (2, 3, 1, 0))
    np.testing.assert_array_equal(ours, expected)
    out = infer(encoder, x_image(channels=in_channels))
    assert encoder.out_channels[0] == in_channels and out[-1].shape[1] == SIZE // 32


@torch_only
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_channels_first(preset_dir, family):
    """channels_first: built natively (ResNet, CSPNet: an argument; DenseNet, MobileNet: the global
    format they read) or, for the backbones that compute channels_last only (MiT, EfficientNet: measured,
    they fail to build channels_first), run channels_last between transposes; same features either way."""
    name = encoder_name(preset_dir, family)
    first = backbones.get_encoder(name, weights="imagenet", data_format="channels_first")
    last = backbones.get_encoder(name, weights="imagenet", data_format="channels_last")
    x = image((1, 3, SIZE, SIZE))
    for a, b in zip(infer(first, x), infer(last, to_format(x, "channels_last"))):
        a, b = keras.ops.convert_to_numpy(a), to_nchw(b, "channels_last")
        assert a.shape == b.shape and (a.size == 0 or relative_error(a, b) <= 1e-5)
    inner = first.get_layer(adapter.FEATURES_NAME)._flatten_layers(include_self=False, recursive=True)
    native = [layer for layer in inner if isinstance(layer, keras.layers.Conv2D)]
    layout = "channels_last" if FAMILIES[family][0] in adapter.CHANNELS_LAST_ONLY else "channels_first"
    assert native and all(layer.data_format == layout for layer in native)


@torch_only
def test_dtype_policy(preset_dir):
    """The backbone follows the global dtype policy, as every keras-seg encoder."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = keras_seg.Unet(encoder_name(preset_dir, "resnet"), encoder_weights="imagenet", classes=1)
    finally:
        keras.config.set_dtype_policy(previous)
    layers = model.encoder.get_layer(adapter.FEATURES_NAME).layers
    assert {layer.dtype_policy.name for layer in layers if layer.weights} == {"mixed_bfloat16"}
    assert all(v.dtype == "float32" for v in model.encoder.weights)
    assert {keras.backend.standardize_dtype(t.dtype) for t in model.encoder.outputs[1:]} == {"bfloat16"}
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(model(x_image(), training=False), "float32"))))


def _fit_step(model, x, y):
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return float(np.asarray(model.train_on_batch(x, y)))


def test_fit_step(preset_dir):
    """One compiled training step updates the backbone and the head (every backend)."""
    model = keras_seg.Unet(encoder_name(preset_dir, "resnet"), encoder_weights="imagenet", classes=1,
                           decoder_channels=(16, 16, 8, 8, 8))
    x = image((2, SIZE, SIZE, 3))
    y = np.random.RandomState(1).rand(2, SIZE, SIZE, 1).astype("float32")
    conv = model.encoder.get_layer(adapter.FEATURES_NAME).get_layer("conv1_conv").kernel
    before = keras.ops.convert_to_numpy(conv)
    loss = _fit_step(model, x, y)
    assert np.isfinite(loss)
    assert not np.array_equal(keras.ops.convert_to_numpy(conv), before)


@torch_only
def test_freeze_encoder(preset_dir):
    model = keras_seg.Unet(encoder_name(preset_dir, "resnet"), encoder_weights="imagenet", classes=1,
                           decoder_channels=(16, 16, 8, 8, 8))
    model.freeze_encoder()
    encoder_ids = {id(v) for v in model.encoder.weights}
    assert not any(id(v) in encoder_ids for v in model.trainable_weights)
    before = [keras.ops.convert_to_numpy(v) for v in model.encoder.weights]
    _fit_step(model, image((2, SIZE, SIZE, 3)), np.zeros((2, SIZE, SIZE, 1), "float32"))
    for v, b in zip(model.encoder.weights, before):  # BatchNorm statistics too: inference mode
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), b)


@pytest.mark.parametrize("family", ["resnet", "mit"])
def test_keras_round_trip(preset_dir, family, tmp_path):
    """``.keras`` save/load keeps the outputs; the backbone is serialised inside (the preset
    folder is gone when the model loads)."""
    if BACKEND != "torch" and family != "resnet":
        pytest.skip("backend-independent beyond one family: checked on the torch backend")
    preset = str(tmp_path / "preset")
    shutil.copytree(preset_dir(family), preset)
    model = keras_seg.FPN(f"keras_hub:{preset}", encoder_weights="imagenet", classes=2, decoder_pyramid_channels=32,
                          decoder_segmentation_channels=32)
    x = x_image()
    expected = keras.ops.convert_to_numpy(infer(model, x))
    shutil.rmtree(preset)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is keras_seg.FPN and loaded.encoder.out_channels == model.encoder.out_channels
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(infer(loaded, x)), expected)


@torch_only
def test_save_pretrained_is_keras_seg_only(preset_dir, tmp_path):
    """save_pretrained writes a checkpoint keras-seg reloads, says that SMP cannot load it, and SMP
    stops at the unknown encoder instead of misreading it."""
    import segmentation_models_pytorch as smp

    model = keras_seg.Unet(encoder_name(preset_dir, "mit"), encoder_weights="imagenet", classes=3,
                           decoder_channels=(16, 16, 8, 8, 8))
    with pytest.warns(UserWarning, match="segmentation_models_pytorch cannot load"):
        model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["_encoder_spec"]["kind"] == "keras_hub" and config["encoder_name"].startswith("keras_hub:")
    assert "only keras-seg loads it" in (tmp_path / "ckpt" / "README.md").read_text()
    loaded = keras_seg.from_pretrained(tmp_path / "ckpt")
    x = x_image()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(infer(loaded, x)), keras.ops.convert_to_numpy(infer(model, x)))
    with pytest.raises(Exception, match="keras_hub"):
        smp.from_pretrained(str(tmp_path / "ckpt"))


@torch_only
def test_registered_backbone_instance():
    """A Backbone instance under a name of one's choice: its weights for encoder_weights='imagenet'."""
    backbone = tiny_backbone("resnet")
    try:
        keras_seg.register_keras_hub_backbone("test_keras_hub_resnet", backbone)
        encoder = backbones.get_encoder("test_keras_hub_resnet", weights="imagenet")
        x = x_image()
        features = infer(encoder, x)
        expected = infer(keras.Model(backbone.input, backbone.pyramid_outputs), x)
        for key, value in expected.items():
            level = int(np.log2(SIZE // value.shape[1]))
            assert relative_error(keras.ops.convert_to_numpy(features[level]), keras.ops.convert_to_numpy(value)) <= 1e-6
        model = keras_seg.Unet("test_keras_hub_resnet", encoder_weights="imagenet", decoder_channels=(16, 16, 8, 8, 8))
        restored = keras_seg.Unet.from_config(model.get_config())  # rebuilt from the saved description
        assert restored.encoder.out_channels == model.encoder.out_channels
    finally:
        ENCODERS.pop("test_keras_hub_resnet", None)
    with pytest.raises(TypeError, match="keras_hub.models.Backbone"):
        keras_seg.register_keras_hub_backbone("test_keras_hub_bad", keras.Sequential([keras.layers.Dense(2)]))


@torch_only
def test_timm_checkpoint_from_an_offline_hub_cache(timm_hub):
    """``keras_hub:hf://timm/<repo>``: keras-hub converts the timm checkpoint (config.json with
    "architecture" + model.safetensors) read offline from a Hugging Face cache the test writes;
    the features equal timm's own ``features_only`` outputs."""
    import timm
    import torch

    name, net = timm_hub("resnet18")
    encoder = backbones.get_encoder(name, weights="imagenet")
    x = image((1, 3, SIZE, SIZE))
    features = infer(encoder, to_format(x, "channels_last"))
    reference = timm.create_model("resnet18", pretrained=False, features_only=True)
    reference.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("fc.")})
    with torch.inference_mode():
        expected = [t.numpy() for t in reference.eval()(torch.from_numpy(x))]
    for level, (ours, theirs) in enumerate(zip(features[1:], expected), start=1):
        err = relative_error(to_nchw(ours, "channels_last"), theirs)
        print(f"timm resnet18 via hf:// stride {2 ** level} {BACKEND}: {err:.1e}")
        assert err < 1e-4, (level, err)
    # SMP's preprocessing settings from the preset's (timm's pretrained_cfg) normalisation
    from keras_seg.data.preprocessing import get_preprocessing_params

    params = get_preprocessing_params(name)
    np.testing.assert_allclose(params["mean"], [0.485, 0.456, 0.406], rtol=1e-6)
    np.testing.assert_allclose(params["std"], [0.229, 0.224, 0.225], rtol=1e-6)


@torch_only
def test_clear_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="cannot load preset"):
        get_spec(f"keras_hub:{tmp_path / 'no_such_preset'}")
    with pytest.raises(ValueError, match="names no preset"):
        get_spec("keras_hub:")
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(ImportError, match="pip install keras-hub"):
        get_spec(f"keras_hub:{tmp_path / 'other'}")


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's formats: on torch/JAX export_model saves .keras (round trip tested above) and exports it with TensorFlow")
def test_export(preset_dir, tmp_path):
    """SavedModel and TFLite exports of a Unet on a keras-hub ResNet match the Keras model."""
    from keras_seg.export import compare_exported, export_model

    model = keras_seg.Unet(encoder_name(preset_dir, "resnet"), encoder_weights="imagenet", classes=2,
                           decoder_channels=(16, 16, 8, 8, 8))
    x = x_image()
    scale = float(np.abs(keras.ops.convert_to_numpy(model(x))).max())
    for fmt, path in (("tf_saved_model", tmp_path / "saved"), ("litert", tmp_path / "model.tflite")):
        err = compare_exported(model, os.fspath(export_model(model, path, fmt, input_size=(SIZE, SIZE))), fmt, x)
        print(f"keras-hub resnet Unet {fmt}: {err / scale:.1e} of scale")
        assert err <= 1e-4 * scale
