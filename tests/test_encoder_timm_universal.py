"""The tu- foundation (backbones.timm_universal): SMP's TimmUniversalEncoder / get_encoder rules for
natively ported timm builders: names and listing, the unknown-name error, SMP 0.6's deprecated timm-*
redirects, timm kwargs, feature alignment, preprocessing from shipped data (timm not consulted)."""

import dataclasses
import sys
import warnings

import pytest
import segmentation_models_pytorch as smp
import timm

import backbones
from backbones import timm_universal
from backbones.registry import ENCODERS
from backbones.timm_configs.resnet import RESNET_MODELS
from keras_seg.data.preprocessing import get_preprocessing_params
from tests.parity import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent: checked on the torch backend")


def test_tu_names_are_listed():
    names = backbones.list_encoders()
    assert {f"tu-{n}" for n in timm.list_models(module="resnet")} <= set(names)
    assert timm_universal.BUILDERS["resnet"] == sorted(RESNET_MODELS) == sorted(timm.list_models(module="resnet"))
    assert set(timm_universal.timm_encoder_names()) >= {"tu-resnet18", "tu-vit_base_patch16_224"}


def test_unknown_tu_name_names_the_builders():
    with pytest.raises(ValueError, match=r"'hrnet_w18' is not ported.*resnet \(81 models\)"):
        backbones.get_encoder("tu-hrnet_w18")
    with pytest.raises(ValueError, match="is not ported"):
        get_preprocessing_params("tu-hrnet_w18.ms_aug_in1k")


def test_deprecated_names(monkeypatch):
    """SMP 0.6 redirects timm-regnet* / res2* / resnest* / gernet* / mobilenetv3* (tu-tf_ for mobilenetv3)."""
    for old in ("timm-regnetx_002", "timm-res2net50_26w_4s", "timm-resnest14d", "timm-gernet_s", "timm-mobilenetv3_large_100"):
        smp_name = old.replace("timm-", "tu-")
        if "mobilenetv3" in smp_name:
            smp_name = smp_name.replace("tu-", "tu-tf_")
        assert timm_universal.deprecated_target(old) == smp_name
    assert timm_universal.deprecated_target("timm-efficientnet-b0") is None  # a native SMP name, not redirected
    with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
        with pytest.raises(ValueError, match="'regnetx_999' is not ported"):  # no such timm model
            backbones.get_encoder("timm-regnetx_999")
    # a redirect builds the tu- encoder, warning on every call as SMP does
    monkeypatch.setitem(ENCODERS, "tu-regnetx_002", dataclasses.replace(ENCODERS["tu-resnet10t"], name="tu-regnetx_002"))
    for _ in range(2):
        with pytest.warns(DeprecationWarning, match="`timm-` encoders are deprecated"):
            encoder = backbones.get_encoder("timm-regnetx_002", depth=2)
        assert encoder.out_channels == [3, 64, 64] and encoder.spec.name == "tu-regnetx_002"


def test_timm_kwargs():
    """Arguments that change nothing at inference pass; model-changing ones are refused, naming the accepted ones;
    those SMP sets itself raise SMP's duplicate error."""
    encoder = timm_universal.get_timm_encoder("tu-resnet10t", depth=1, drop_path_rate=0.2, drop_block_rate=0.1)
    assert encoder.out_channels == [3, 64]
    with pytest.raises(TypeError, match=r"\['stem_width'\].*accepted .*drop_path_rate"):
        timm_universal.get_timm_encoder("tu-resnet10t", stem_width=16)
    with pytest.raises(ValueError, match="already specified internally"):
        timm_universal.get_timm_encoder("tu-resnet10t", in_chans=1)
    with pytest.raises(ValueError, match="already specified internally"):
        smp.encoders.get_encoder("tu-resnet10t", in_chans=1)


def test_feature_alignment():
    """SMP's reduction rules: traditional, transformer-style (0-channel stride-2 dummy), VGG-style, else its error."""
    assert timm_universal.feature_style([2, 4, 8, 16, 32]) == "traditional"
    assert timm_universal.feature_style([4, 8, 16, 32]) == "transformer"
    assert timm_universal.feature_style([1, 2, 4, 8, 16, 32]) == "vgg"
    assert timm_universal.aligned_out_channels("transformer", [96, 192, 384, 768]) == [3, 0, 96, 192, 384, 768]
    with pytest.raises(ValueError, match="Unsupported model downsampling pattern."):
        timm_universal.feature_style([2, 4, 8, 8, 16])


@pytest.mark.parametrize("name", ["tu-resnet50", "tu-resnet18.fb_ssl_yfcc100m_ft_in1k", "tu-resnetrs50", "tu-test_resnet"])
def test_preprocessing_matches_smp_without_timm(name, monkeypatch):
    expected = smp.encoders.get_preprocessing_params(name)  # SMP: timm's pretrained config
    monkeypatch.setitem(sys.modules, "timm", None)  # keras-seg: the shipped table, timm not importable
    assert get_preprocessing_params(name) == expected


def test_no_pretrained_weights_error():
    spec = dataclasses.replace(ENCODERS["tu-resnet10t"], pretrained_tag=None)
    with pytest.raises(ValueError, match="No pretrained weights exist for resnet10t"):
        timm_universal.timm_weights_entry(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        timm_universal.weights_warning(True)
        timm_universal.weights_warning(None)
