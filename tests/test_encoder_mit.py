"""SMP's Mix Transformer encoders (mit_b0 ... mit_b5) against SMP (the shared conformance suite).

mit_b0 is the all-backend member (every block kind: spatial reduction 8, 4, 2 and none, 1, 2, 5
and 8 heads, SMP's 0-channel stride-2 dummy; dilated stages 3 and 4 at output stride 8). mit_b1
(the wide rows' channels) is compared on the torch backend; b2..b5 differ from b1 only in their
block counts, which the layout and registry checks cover for every name.
"""

import types

import pytest
import segmentation_models_pytorch as smp
import torch
from segmentation_models_pytorch.encoders.mix_transformer import Block, LayerNorm

import backbones
from backbones.layers import DropPath
from backbones.mit import DROP_PATH_RATE, MLP_RATIO, NORM_EPS, TORCH_LN_EPS, drop_path_rates
from backbones.resnet import IMAGENET_PREPROCESSING
from tests.encoder_conformance import EncoderFamily, assert_features_match, port_smp_encoder, smp_encoder
from tests.parity import BACKEND, assert_same_init, image
from weight_ports.translate import state_dict

MITS = [f"mit_b{i}" for i in range(6)]
torch_only = pytest.mark.skipif(BACKEND != "torch", reason="backend-independent: checked on the torch backend")


def mit_params(ours, theirs):
    """Our params are SMP's row; the constants we fix are SMP's for every row."""
    p = theirs["params"]
    assert ours.params == {k: p[k] for k in ("embed_dims", "num_heads", "depths", "sr_ratios")}
    assert p["mlp_ratios"] == [MLP_RATIO] * 4 and p["qkv_bias"] and p.get("qk_scale") is None
    assert p["drop_path_rate"] == DROP_PATH_RATE and p["drop_rate"] == 0.0 and p["norm_layer"].keywords == {"eps": NORM_EPS}
    assert LayerNorm(8).eps == TORCH_LN_EPS  # patch embeds' and the sr norm's (SMP passes no eps there)
    assert ours.preprocessing == {"imagenet": IMAGENET_PREPROCESSING}
    with torch.device("meta"):
        reference = theirs["encoder"](**p)
    first = next(n for n, m in reference.named_modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels == 3)
    assert ours.first_conv == first  # SMP's patch_first_conv takes the first Conv2d with 3 inputs
    assert ours.classifier_keys == ("head.",) and not ours.stride2_feature and ours.supports_dilation
    # SMP's stochastic-depth decay over all blocks (the identity at inference; used by fit).
    blocks = [m for m in reference.modules() if isinstance(m, Block)]
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in blocks]  # rate 0: nn.Identity
    assert drop_path_rates(ours.params["depths"]) == pytest.approx(rates, abs=1e-7)
    assert ours.max_depth == 5 and ours.out_channels[1] == 0


FAMILY = EncoderFamily(
    names=MITS,
    parity=[("mit_b0", 5, 32)],
    torch_parity=[("mit_b1", 5, 32)],
    pretrained="mit_b0",
    pretrained_in_channels=(1, 2, 4),  # 3 is the parity tests' (no adaptation)
    # 32x32 would leave every attention of an undilated mit_b0 one key token (softmax == 1):
    # 64x32 leaves each stage two.
    small_input=(64, 32),
    registry_check=mit_params,
)
globals().update(FAMILY.tests())


@pytest.fixture(autouse=True)
def smp_builds_on_meta(monkeypatch):
    """SMP's MixVisionTransformer reads its drop-path schedule with ``torch.linspace(...).item()``,
    which the meta device (the layout checks') cannot answer: that schedule is computed on the CPU."""
    linspace = torch.linspace
    monkeypatch.setattr(torch, "linspace", lambda *args, **kwargs: linspace(*args, **{**kwargs, "device": "cpu"}))


@torch_only
def test_drop_path_layers_follow_smp():
    """mit_b0's DropPath layers: one after the attention and one after the Mix-FFN of each block but
    the first (rate 0: no layer), at SMP's rates."""
    encoder = backbones.get_encoder("mit_b0")
    rates = drop_path_rates([2, 2, 2, 2])
    expected = {}
    for i, rate in enumerate(rates[1:], start=1):
        prefix = f"block{i // 2 + 1}-{i % 2}"
        expected.update({f"{prefix}-attn_drop_path": rate, f"{prefix}-mlp_drop_path": rate})
    assert {layer.name: layer.rate for layer in encoder.layers if isinstance(layer, DropPath)} == pytest.approx(expected)


@torch_only
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_any_input_size(data_format):
    """One encoder (dynamic H, W) at two sizes, odd ones included: SMP's ceil-rounded patch embeds
    and sr convs, and its dummy's H // 2, W // 2."""
    reference = smp_encoder("mit_b0")
    encoder = port_smp_encoder(reference, "mit_b0", data_format)
    assert tuple(encoder.inputs[0].shape[1:]) == ((None, None, 3) if data_format == "channels_last" else (3, None, None))
    for size in [(45, 37), (64, 96)]:
        assert_features_match(reference, encoder, image((1, 3, *size)), data_format)


@torch_only
def test_initialisation_matches_smp():
    """Random-weight mit_b0 draws from MiT's own init (trunc-normal 0.02 Linears, normal(0, sqrt(2 /
    fan_out)) convs, zero biases, LayerNorms 1 / 0), tensor by tensor against SMP's own modules."""
    encoder = backbones.get_encoder("mit_b0")

    def reference(seed):
        torch.manual_seed(seed)
        return smp.encoders.get_encoder("mit_b0")

    ours = types.SimpleNamespace(torch_state_dict=lambda: state_dict(encoder))
    # One SMP build suffices: every drawn tensor has 1024 values or more.
    assert assert_same_init(ours, reference, prefixes=("",), samples=1) == len(state_dict(encoder))
