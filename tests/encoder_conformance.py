"""One conformance suite for every encoder family (../shared/ENCODERS.md), against SMP.

A family's test module describes the family once and takes the generated tests::

    FAMILY = EncoderFamily(names=[...], parity=[("resnet18", 5, 32), ...], pretrained="resnet18")
    globals().update(FAMILY.tests())

The generated tests cover the six points of the standard:

1. ``test_features_match_smp``: features at every stride equal SMP's encoder's (same random
   weights through SMP's state_dict, BatchNorm statistics randomised), both data formats, on
   every backend for ``parity``; on the torch backend also for ``torch_parity`` (cheap members).
2. ``test_state_dict_layout_matches_smp`` (every name, no forward) and
   ``test_registry_matches_smp`` (channels, weight names, repo ids, revisions, preprocessing,
   capabilities; plus the family's own ``registry_check``).
3. ``test_depths`` (1..max), ``test_dilation`` (output_stride 8/16 or SMP's own error),
   and in_channels 1, 2, 4 with SMP's first-conv rule inside 4.
4. ``test_pretrained_offline``: the real download code reads a hub cache the test writes;
   SMP reads the same cache.
5. ``test_every_architecture``: every architecture builds on ``architectures_member`` with
   SMP's output shape, or refuses where SMP refuses; parity with SMP on the torch backend.
6. ``test_round_trips``: SMP save_pretrained -> keras-seg -> save_pretrained -> SMP is
   bit-identical, and a ``.keras`` save/load keeps the outputs.

TensorFlow and JAX run what depends on the backend (1, the dilated features of 3 and 4 with
in_channels 4); the rest is backend-independent and runs on the torch backend, which keeps a
family's cost on the compile-heavy backends to a few forward passes (ENCODERS.md, CI budget).
"""

import copy
import dataclasses
from typing import Callable, Optional

import keras
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

import backbones
import keras_seg
from backbones.registry import ENCODERS
from tests.arch_configs import ARCH_CONFIGS, INPUT_SIZES
from tests.parity import (
    BACKEND,
    assert_state_dicts_identical,
    image,
    infer,
    offline_hub_snapshot,
    randomize_batchnorm,
    relative_error,
    run_keras,
    run_smp,
    smp_model,
    to_format,
    to_keras,
    to_nchw,
    trained,
)
from weight_ports.translate import collect_params, load_state_dict

SMP_CLASSES = {
    "unet": "Unet", "unetplusplus": "UnetPlusPlus", "manet": "MAnet", "linknet": "Linknet", "fpn": "FPN",
    "pspnet": "PSPNet", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus", "pan": "PAN",
    "upernet": "UPerNet", "segformer": "Segformer",
}


PREPROCESSING_KEYS = ("mean", "std", "input_range", "input_space")


def smp_encoder(name, seed=0, **kwargs):
    """SMP's encoder ``name`` in eval mode, seeded random weights, randomised BatchNorms."""
    torch.manual_seed(seed)
    return randomize_batchnorm(smp.encoders.get_encoder(name, **kwargs).eval(), seed)


def tame_residuals(reference, scale=0.3):
    """Scale the last norm of every residual branch (timm's ``zero_init_last`` norms) by ``scale``: with
    randomised BatchNorms a deep random ResNet grows its activations block after block (1e8 at layer4 of
    ecaresnet200d), which amplifies float32 rounding differences past any tolerance; tamed, it does not.
    ResNet's bn3 / bn2, RegNet's conv3.bn, EfficientNet's residual blocks' last bn; blocks without a last norm
    are left as they are."""
    with torch.no_grad():
        for module in reference.modules():
            if hasattr(module, "zero_init_last") or getattr(module, "has_skip", False):  # EfficientNet blocks: has_skip
                conv3 = getattr(module, "conv3", None)  # RegNet: conv3 is a ConvNormAct; its PreBottleneck has no last norm
                last = (getattr(module, "bn3", None) or getattr(module, "bn2", None) or getattr(conv3, "bn", None)
                        or getattr(module, "bn1", None))
                if last is not None and getattr(last, "weight", None) is not None:
                    last.weight.mul_(scale)
    return reference


def assert_features_match(reference, encoder, x_nchw, data_format, tol=1e-4):
    """Every feature of ``encoder`` equals ``reference``'s within ``tol`` of its scale."""
    with torch.inference_mode():
        expected = [f.numpy() for f in reference(torch.from_numpy(x_nchw))]
    actual = [to_nchw(f, data_format) for f in infer(encoder, to_format(x_nchw, data_format))]
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, (i, a.shape, e.shape)
        if e.size:
            assert relative_error(a, e) < tol, f"feature {i}: {relative_error(a, e):.2e} on {BACKEND}/{data_format}"


def port_smp_encoder(reference, name, data_format, **kwargs):
    """keras-seg's encoder ``name`` holding ``reference``'s weights."""
    encoder = backbones.get_encoder(name, data_format=data_format, **kwargs)
    load_state_dict(encoder, {k: v.numpy() for k, v in reference.state_dict().items()})
    return encoder


def register_variant(name, overrides, monkeypatch):
    """Register ``<name>-variant``, a copy of encoder ``name`` with ``overrides`` applied to SMP's
    params and to ours alike (e.g. ``{"layers": [1, 1, 1, 1]}``), in SMP's table and ours for the
    running test only; returns its name. An ``"smp_encoder"`` override replaces SMP's encoder class
    (a subclass of SMP's own taking the other overrides, for an encoder SMP builds without params)."""
    variant = f"{name}-variant"
    entry = smp.encoders.encoders[name]
    overrides = dict(overrides)
    smp_class = overrides.pop("smp_encoder", entry["encoder"])
    smp_entry = {**entry, "encoder": smp_class, "params": {**copy.deepcopy(entry["params"]), **overrides}}
    monkeypatch.setitem(smp.encoders.encoders, variant, smp_entry)
    ours = ENCODERS[name]
    monkeypatch.setitem(ENCODERS, variant, dataclasses.replace(ours, name=variant, params={**ours.params, **overrides}))
    return variant


def assert_variant_matches_smp(name, overrides, output_stride, size, data_format, monkeypatch, tol=1e-4):
    """Features of a cut-down copy of encoder ``name`` (``register_variant``) equal SMP's: every
    block kind of a heavy member at a fraction of its build time."""
    variant = register_variant(name, overrides, monkeypatch)
    reference = smp_encoder(variant, output_stride=output_stride)
    encoder = port_smp_encoder(reference, variant, data_format, output_stride=output_stride)
    assert_features_match(reference, encoder, image((1, 3, *size)), data_format, tol)



def assert_timm_registry_matches(names, flattened=()):
    """Every tu- name and tag as timm's registry has it: timm's default tag for the bare name, the same tags,
    the first conv (as the features_only model names it: ``flattened`` Sequentials), the hub repository
    (timm-format ones only) and preprocessing equal to SMP's get_preprocessing_params."""
    import timm

    from backbones.timm_universal import flatten_key
    from keras_seg.data.preprocessing import get_preprocessing_params

    for name in names:
        ours = ENCODERS[f"tu-{name}"]
        assert ours.pretrained_tag == timm.models.get_pretrained_cfg(name).tag, name
        assert sorted(ours.pretrained_weights) == sorted(n.split(".", 1)[1] for n in timm.models.get_arch_pretrained_cfgs(name))
        for tag, entry in ours.pretrained_weights.items():
            cfg = timm.models.get_pretrained_cfg(f"{name}.{tag}")
            assert ours.first_conv == f"model.{flatten_key(cfg.first_conv, flattened)}", (name, tag)
            assert entry["repo_id"] == (cfg.hf_hub_id if (cfg.hf_hub_id or "").startswith("timm/") else None), (name, tag)
            if entry["repo_id"]:
                assert get_preprocessing_params(f"tu-{name}.{tag}") == smp.encoders.get_preprocessing_params(f"tu-{name}.{tag}")

def layout(model):
    """``{torch key: shape}`` of what ``state_dict(model)`` holds, from the variables' shapes alone:
    a model built on torch's meta device (no weight values, no initialisation) is enough."""
    shapes = {p.key: p.to_torch(np.empty(tuple(p.variable.shape), "float32")).shape for p in collect_params(model)}
    for key in [k for k in shapes if k.endswith(".running_mean")]:
        shapes.setdefault(key[: -len("running_mean")] + "num_batches_tracked", ())
    return {k: tuple(v) for k, v in shapes.items()}


def smp_error(fn):
    """The exception SMP raises from ``fn()``, or None."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001  (whatever SMP raises is the reference)
        return e
    return None


def write_hub_checkpoint(name, weights, cache, monkeypatch, seed=3):
    """A Hugging Face cache at ``cache`` holding SMP's checkpoint ``name.weights`` (random
    weights from SMP's own encoder, plus a classifier key that loading must drop)."""
    entry = ENCODERS[name].pretrained_weights[weights]
    snapshot = offline_hub_snapshot(cache, monkeypatch, entry["repo_id"], entry["revision"])
    source = smp_encoder(name, seed=seed)
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    state[f"{ENCODERS[name].classifier_keys[0]}weight"] = torch.randn(10, 8)
    save_file(state, str(snapshot / "model.safetensors"))
    (snapshot / "config.json").write_text("{}")
    return snapshot


@dataclasses.dataclass
class EncoderFamily:
    """What the conformance tests need to know about one family.

    names: every registered name of the family.
    parity: ``(name, depth, output_stride)`` cases compared with SMP on every backend.
    torch_parity: more cases compared on the torch backend only (cheap members).
    pretrained: the member whose pretrained loading is tested (its first weights name).
    architectures_member: the member every architecture is built on (default: ``pretrained``).
    input_size: (height, width) of parity inputs; ``small_input`` for torch-only and heavy cases.
    registry_check: ``registry_check(ours_spec, smp_entry)`` asserts the family's own params.
    layout_names: names whose state_dict layout is compared (default: all).
    min_depth: depths below it are refused by SMP's encoder; test_depths checks SMP's error there.
    pretrained_in_channels: the in_channels test_pretrained_offline loads on the torch backend
        (elsewhere 4 only); a heavy family may keep one per branch of SMP's first-conv rule (1, 4).
    stand_in: params overrides (``register_variant``) for a heavy family: depths, dilation,
        pretrained loading, every architecture and round trips then run on that cut-down copy of
        ``pretrained`` / ``architectures_member`` (same blocks, channels and strides, SMP's own
        code on both sides), while parity, layouts and registry checks keep the full members.
    """

    names: list
    parity: list
    pretrained: str
    torch_parity: list = dataclasses.field(default_factory=list)
    architectures_member: Optional[str] = None
    input_size: tuple = (64, 48)
    small_input: tuple = (32, 32)
    registry_check: Optional[Callable] = None
    layout_names: Optional[list] = None
    tol: float = 1e-4
    min_depth: int = 1
    pretrained_in_channels: tuple = (1, 2, 3, 4)
    stand_in: Optional[dict] = None

    @property
    def member(self):
        return self.architectures_member or self.pretrained

    def stand_in_for(self, name, monkeypatch):
        """``name``, or its cut-down ``stand_in`` copy registered for the running test."""
        return register_variant(name, self.stand_in, monkeypatch) if self.stand_in else name

    def tests(self):
        """The generated pytest functions, by name, for the family module's globals.

        On TensorFlow and JAX only what depends on the backend runs (feature parity, dilated
        convs, pretrained loading): registry, layouts, depths, architectures and round trips
        are backend-independent and compile-heavy, so the torch backend checks them.
        """
        family = self
        torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent: checked on the torch backend")
        parity = [(*c, family.input_size) for c in family.parity]
        if BACKEND == "torch":
            parity += [(*c, family.small_input) for c in family.torch_parity]

        @pytest.mark.parametrize("name, depth, output_stride, size", parity)
        def test_features_match_smp(name, depth, output_stride, size, data_format):
            reference = smp_encoder(name, depth=depth, output_stride=output_stride)
            encoder = port_smp_encoder(reference, name, data_format, depth=depth, output_stride=output_stride)
            assert encoder.out_channels == list(reference.out_channels)
            assert encoder.output_stride == reference.output_stride
            assert_features_match(reference, encoder, image((2, 3, *size)), data_format, family.tol)

        @pytest.mark.parametrize("name", family.layout_names or family.names)
        @torch_only
        def test_state_dict_layout_matches_smp(name):
            with torch.device("meta"):
                reference = smp.encoders.get_encoder(name)
            with keras.device("meta"):  # the torch backend's meta device: shapes only, a fraction of the build time
                ours = layout(backbones.get_encoder(name))
            theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
            assert sorted(set(ours) ^ set(theirs)) == []
            assert ours == theirs

        @pytest.mark.parametrize("name", family.names)
        @torch_only
        def test_registry_matches_smp(name):
            theirs = smp.encoders.encoders[name]
            ours = ENCODERS[name]
            assert list(ours.out_channels) == list(theirs["params"]["out_channels"])
            settings = theirs["pretrained_settings"]
            assert ours.pretrained_weights == {w: {"repo_id": s["repo_id"], "revision": s["revision"]} for w, s in settings.items()}
            # SMP 0.6 reads preprocessing from each smp-hub repo's config.json (not reachable here)
            # and keeps it in its table only for some families: compared where it has it.
            assert set(ours.preprocessing) == set(settings)
            for w, s in settings.items():
                assert set(ours.preprocessing[w]) == {"mean", "std", "input_range", "input_space"}, w
                assert {k: list(ours.preprocessing[w][k]) for k in s if k in PREPROCESSING_KEYS} == {
                    k: list(v) if isinstance(v, (list, tuple)) else v for k, v in s.items() if k in PREPROCESSING_KEYS
                }, w
            if family.registry_check is not None:
                family.registry_check(ours, theirs)

        @pytest.mark.parametrize("depth", range(1, ENCODERS[family.member].max_depth + 1))
        @torch_only
        def test_depths(depth, monkeypatch):
            name = family.stand_in_for(family.member, monkeypatch)
            if depth < family.min_depth:
                error = smp_error(lambda: smp.encoders.get_encoder(name, depth=depth))
                with pytest.raises(ValueError) as ours:
                    backbones.get_encoder(name, depth=depth)
                assert error is not None and str(ours.value) == str(error)
                return
            reference = smp_encoder(name, depth=depth)
            encoder = port_smp_encoder(reference, name, "channels_last", depth=depth)
            assert encoder.depth == depth and len(encoder.out_channels) == depth + 1
            assert encoder.out_channels == list(reference.out_channels)
            assert encoder.output_stride == reference.output_stride
            assert_features_match(reference, encoder, image((1, 3, *family.small_input)), "channels_last", family.tol)

        @pytest.mark.parametrize("output_stride", [8, 16])
        def test_dilation(output_stride, monkeypatch):
            name = family.stand_in_for(family.member, monkeypatch)
            error = smp_error(lambda: smp.encoders.get_encoder(name, output_stride=output_stride))
            if error is None:
                reference = smp_encoder(name, output_stride=output_stride)
                encoder = port_smp_encoder(reference, name, "channels_last", output_stride=output_stride)
                assert encoder.output_stride == reference.output_stride == output_stride
                assert_features_match(reference, encoder, image((1, 3, *family.small_input)), "channels_last", family.tol)
            else:
                assert not ENCODERS[name].supports_dilation
                with pytest.raises(ValueError) as ours:
                    backbones.get_encoder(name, output_stride=output_stride)
                assert str(ours.value) == str(error)

        @pytest.mark.parametrize("in_channels", list(family.pretrained_in_channels) if BACKEND == "torch" else [4])
        def test_pretrained_offline(in_channels, tmp_path, monkeypatch, data_format):
            name = family.stand_in_for(family.pretrained, monkeypatch)
            weights = sorted(ENCODERS[name].pretrained_weights)[0]
            write_hub_checkpoint(name, weights, tmp_path / "hub", monkeypatch)
            reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=weights).eval()
            encoder = backbones.get_encoder(name, in_channels=in_channels, weights=weights, data_format=data_format)
            assert_features_match(reference, encoder, image((1, in_channels, *family.small_input)), data_format, family.tol)

        @pytest.mark.parametrize("arch", sorted(ARCH_CONFIGS))
        @torch_only
        def test_every_architecture(arch, monkeypatch):
            kwargs = dict(encoder_name=family.stand_in_for(family.member, monkeypatch), classes=2, **ARCH_CONFIGS[arch])
            size = INPUT_SIZES.get(arch, 64)
            error = smp_error(lambda: smp_model(SMP_CLASSES[arch], **kwargs))
            if error is not None:
                with pytest.raises(ValueError) as ours:
                    keras_seg.create_model(arch, encoder_weights=None, **kwargs)
                assert str(ours.value) == str(error)
                return
            reference = smp_model(SMP_CLASSES[arch], **kwargs)
            x = image((1, 3, size, size))
            expected = run_smp(reference, x)
            actual = run_keras(to_keras(reference, "channels_first"), x, "channels_first")
            assert actual[0].shape == expected[0].shape
            assert relative_error(actual[0], expected[0]) < family.tol

        @torch_only
        def test_round_trips(tmp_path, monkeypatch):
            name = family.stand_in_for(family.member, monkeypatch)
            reference = trained(smp_model("Unet", encoder_name=name, encoder_depth=3, decoder_channels=(16, 8, 8), classes=2))
            model = to_keras(reference, keras.config.image_data_format())
            model.save_pretrained(tmp_path / "for_smp")
            back = smp.from_pretrained(str(tmp_path / "for_smp"))
            assert_state_dicts_identical(back.state_dict(), reference.state_dict())  # counters included
            x = to_format(image((1, 3, 64, 64)), model.data_format)
            model.save(tmp_path / "model.keras")
            loaded = keras.saving.load_model(tmp_path / "model.keras")
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))

        return {f.__name__: f for f in (
            test_features_match_smp, test_state_dict_layout_matches_smp, test_registry_matches_smp, test_depths,
            test_dilation, test_pretrained_offline, test_every_architecture, test_round_trips,
        )}


__all__ = [
    "EncoderFamily", "assert_features_match", "assert_variant_matches_smp", "port_smp_encoder", "register_variant", "smp_encoder", "smp_error",
    "write_hub_checkpoint",
]
