"""Build every ported ``tu-`` name and check it against timm / SMP (a developer tool; slow, not CI):
``KERAS_BACKEND=torch .venv/bin/python scripts/timm_sweep.py [module ...] [--size 64] [--only a,b]``.

Per name: (1) structure: the state_dict keys and shapes equal SMP's TimmUniversalEncoder's (timm's
features_only model, built on the meta device); (2) parity: features equal SMP's within 1e-4 of their
scale (timm random weights, randomised BatchNorm statistics, one image). Prints one line per name and
the figure "passing / total" per module. A model whose randomised features grow too large for float32
(deep ones) is compared again with its residual branches tamed (``tame_residuals``) and reported so.
"""

import argparse
import os
import sys
import time
import traceback

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import segmentation_models_pytorch as smp  # noqa: E402
import torch  # noqa: E402

import backbones  # noqa: E402
from backbones.timm_universal import BUILDERS  # noqa: E402
from tests.encoder_conformance import (  # noqa: E402
    assert_features_match, layout, port_smp_encoder, smp_encoder, tame_residuals,
)
from tests.parity import image  # noqa: E402


def check_structure(name):
    with torch.device("meta"):
        reference = smp.encoders.get_encoder(name, weights=None)
    with keras.device("meta"):
        ours = layout(backbones.get_encoder(name))
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    diff = sorted(set(ours) ^ set(theirs))
    assert not diff, f"keys differ: {diff[:6]}"
    bad = [k for k in ours if ours[k] != theirs[k]]
    assert not bad, f"shapes differ: {[(k, ours[k], theirs[k]) for k in bad[:4]]}"
    assert list(backbones.get_spec(name).out_channels) == list(reference.out_channels)


def check_parity(name, size, tame=False):
    reference = smp_encoder(name, weights=None)
    if tame:
        tame_residuals(reference)
    encoder = port_smp_encoder(reference, name, "channels_last")
    assert_features_match(reference, encoder, image((1, 3, size, size)), "channels_last")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("modules", nargs="*", default=sorted(BUILDERS))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for module in args.modules:
        names = [f"tu-{n}" for n in BUILDERS[module]]
        if args.only:
            names = [n for n in names if n[3:] in args.only.split(",")]
        passed = 0
        for name in names:
            start = time.time()
            try:
                check_structure(name)
                try:
                    check_parity(name, args.size)
                    status = "ok"
                except AssertionError as e:  # deep models: retried with tamed residual branches
                    check_parity(name, args.size, tame=True)
                    status = f"ok with tamed residual branches (untamed: {str(e)[:60]})"
                passed += 1
            except Exception as e:  # noqa: BLE001  (a sweep reports every failure and goes on)
                status = f"FAIL {type(e).__name__}: {str(e)[:300]}"
                traceback.print_exc(limit=2, file=sys.stderr)
            keras.backend.clear_session()
            print(f"{name:40s} {time.time() - start:6.1f}s {status}", flush=True)
        print(f"{module}: {passed} / {len(names)} names passing (structure + torch-backend parity at {args.size} px)", flush=True)


if __name__ == "__main__":
    main()
