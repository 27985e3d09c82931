"""The MobileOne family against SMP's MobileOne encoder (the shared conformance suite), and its
re-parameterisation against the branchy form and SMP's own ``reparameterize_model``."""

import keras
import numpy as np
import pytest
import torch
from segmentation_models_pytorch.encoders.mobileone import reparameterize_model as smp_reparameterize_model

from backbones.mobileone import FIRST_CONVS, reparameterize_model, reparameterized
from tests.encoder_conformance import EncoderFamily, assert_features_match, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, image, relative_error, run_keras, run_smp, smp_model, to_format, to_keras
from weight_ports.translate import state_dict

# The folding is numpy and backend-independent; the single-branch graph runs on every backend in the s1 case.
torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent; run on the torch backend only")

MOBILEONES = ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4"]


def mobileone_params(ours, theirs):
    assert ours.params == {k: v for k, v in theirs["params"].items() if k != "out_channels"}
    assert ours.first_conv in FIRST_CONVS and ours.classifier_keys == ("linear.",)


FAMILY = EncoderFamily(
    names=MOBILEONES,
    # s4 has every block kind (skip, scale and conv branches, SEBlocks); output_stride 8 dilates
    # stage3 and stage4. s0 differs only in its four conv branches per block (an Add of more inputs).
    parity=[("mobileone_s4", 5, 8)],
    # s1 (the member below) is compared in test_depths, test_dilation and test_pretrained_offline.
    torch_parity=[("mobileone_s0", 5, 32), ("mobileone_s2", 5, 32), ("mobileone_s3", 5, 16)],
    # s1 has the fewest layers; its stage0 holds both convs that in_channels adapts.
    pretrained="mobileone_s1",
    registry_check=mobileone_params,
    # Key sets and shapes do not depend on the backend: every name on torch, the member elsewhere (CI time).
    layout_names=MOBILEONES if BACKEND == "torch" else ["mobileone_s1"],
)
globals().update(FAMILY.tests())


def assert_state_dicts_close(ours, theirs):
    """Same keys and shapes as SMP's state_dict, values within float32 rounding."""
    theirs = {k: v.numpy() for k, v in theirs.items()}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert {k: ours[k].shape for k in theirs} == {k: v.shape for k, v in theirs.items()}
    for k, v in theirs.items():
        np.testing.assert_allclose(ours[k], v, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(v).max())), err_msg=k)


@pytest.mark.parametrize(
    "name, depth, output_stride",
    [pytest.param("mobileone_s0", 5, 8, marks=torch_only), pytest.param("mobileone_s4", 5, 32, marks=torch_only), ("mobileone_s1", 4, 16)],
)
def test_reparameterized_encoder_matches_branchy_and_smp(name, depth, output_stride):
    reference = smp_encoder(name, depth=depth, output_stride=output_stride)
    branchy = port_smp_encoder(reference, name, "channels_last", depth=depth, output_stride=output_stride)
    folded = reparameterize_model(branchy)
    smp_folded = smp_reparameterize_model(reference)
    assert_state_dicts_close(state_dict(folded), smp_folded.state_dict())
    assert not any("rbr_" in layer.name for layer in folded.layers)
    assert (folded.out_channels, folded.output_stride) == (branchy.out_channels, branchy.output_stride)
    x = image((1, 3, 32, 32))
    assert_features_match(smp_folded, folded, x, "channels_last")
    for a, e in zip(folded(to_format(x, "channels_last")), branchy(to_format(x, "channels_last"))):
        assert relative_error(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(e)) < 1e-4
    assert sorted(state_dict(branchy)) == sorted(reference.state_dict())  # the input model is left as it was


@torch_only
def test_reparameterized_model_holding_encoder(tmp_path):
    reference = smp_model("Unet", encoder_name="mobileone_s1", encoder_depth=3, decoder_channels=(16, 8, 8), classes=2)
    data_format = keras.config.image_data_format()
    model = to_keras(reference, data_format)
    folded = reparameterize_model(model)
    assert type(folded) is type(model) and folded.config["encoder_name"] == "mobileone_s1"
    smp_folded = smp_reparameterize_model(reference)
    assert_state_dicts_close(folded.torch_state_dict(), smp_folded.state_dict())  # stage3/stage4 (past depth) too
    again = reparameterize_model(folded)  # already single-branch: unchanged, as SMP's
    assert_state_dicts_close(again.torch_state_dict(), smp_folded.state_dict())
    x = image((1, 3, 64, 64))
    expected = run_smp(smp_folded, x)[0]
    assert relative_error(run_keras(folded, x, data_format)[0], expected) < 1e-4
    assert relative_error(run_keras(model, x, data_format)[0], run_smp(reference, x)[0]) < 1e-4
    folded.save(tmp_path / "folded.keras")
    with reparameterized():
        loaded = keras.saving.load_model(tmp_path / "folded.keras")
    np.testing.assert_array_equal(run_keras(loaded, x, data_format)[0], run_keras(folded, x, data_format)[0])
    with torch.inference_mode():
        assert relative_error(expected, reference(torch.from_numpy(x)).numpy()) < 1e-4  # SMP's own folding is exact too
