"""Unet forward and training-step time of keras-seg against SMP, measured in the same run.

Usage: KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/unet_speed.py [--size 256] [--batch 4]
       [--encoder resnet34] [--data-format channels_last] [--repeats 3]
       [--dtype-policy float32|mixed_bfloat16|mixed_float16]
Prints seconds per call for both libraries, images per second of training, and the ratio
keras-seg / SMP (below 1: keras-seg is faster). Both run on the GPU when torch sees one (SMP in
torch.autocast under a mixed policy, with a GradScaler for float16); keras-seg uses whatever
device its backend picks.
"""

import argparse
import contextlib
import time

import torch  # imported before keras: TensorFlow then triton segfaults
import segmentation_models_pytorch as smp

import keras
import numpy as np

import keras_seg
from keras_seg.training import build_model


def best_of(fn, repeats, sync=lambda: None):
    fn()  # warm-up (tracing / compilation)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--data-format", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype-policy", default="float32", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    args = parser.parse_args()
    data_format = args.data_format or ("channels_first" if keras.backend.backend() == "torch" else "channels_last")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    reference = smp.Unet(args.encoder, encoder_weights=None).eval().to(device)
    model = build_model("unet", dtype_policy_name=args.dtype_policy, encoder_name=args.encoder, encoder_weights=None, data_format=data_format)
    model.load_torch_state_dict({k: v.cpu().numpy() for k, v in reference.state_dict().items()})
    x = np.random.RandomState(0).rand(args.batch, 3, args.size, args.size).astype("float32")
    y = (np.random.RandomState(1).rand(args.batch, 1, args.size, args.size) > 0.5).astype("float32")
    xk, yk = (x, y) if data_format == "channels_first" else (x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1))

    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    half = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(args.dtype_policy)

    def autocast():
        return torch.autocast(device, dtype=half) if half is not None else contextlib.nullcontext()

    def smp_forward():
        with torch.inference_mode(), autocast():
            reference(xt)

    optimizer = torch.optim.Adam(reference.parameters(), 1e-4)
    scaler = torch.amp.GradScaler(device, enabled=half is torch.float16)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def smp_step():
        reference.train()
        optimizer.zero_grad()
        with autocast():
            loss = loss_fn(reference(xt).float(), yt)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.BinaryCrossentropy(from_logits=True))

    results = {
        "forward": (best_of(lambda: model.predict_on_batch(xk), args.repeats), best_of(smp_forward, args.repeats, sync)),
        "train step": (best_of(lambda: model.train_on_batch(xk, yk), args.repeats), best_of(smp_step, args.repeats, sync)),
    }
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(
        f"Unet-{args.encoder}, batch {args.batch}, {args.size}x{args.size}, backend {keras.backend.backend()}, "
        f"{data_format}, {args.dtype_policy}, {where}"
    )
    for name, (ours, theirs) in results.items():
        print(
            f"{name:>10}: keras-seg {ours:.4f} s ({args.batch / ours:.1f} img/s), SMP {theirs:.4f} s "
            f"({args.batch / theirs:.1f} img/s), ratio {ours / theirs:.2f}"
        )


if __name__ == "__main__":
    main()
