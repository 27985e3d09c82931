"""Unet forward and training-step time of keras-seg against SMP, measured in the same run.

Usage: KERAS_BACKEND=tensorflow .venv/bin/python benchmarks/unet_speed.py [--size 256] [--batch 4]
       [--encoder resnet34] [--data-format channels_last] [--repeats 3]
Prints seconds per call for both libraries and the ratio keras-seg / SMP (below 1: keras-seg is faster).
"""

import argparse
import time

import torch  # imported before keras: TensorFlow then triton segfaults
import segmentation_models_pytorch as smp

import keras
import numpy as np

import keras_seg


def best_of(fn, repeats):
    fn()  # warm-up (tracing / compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--data-format", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data_format = args.data_format or ("channels_first" if keras.backend.backend() == "torch" else "channels_last")

    reference = smp.Unet(args.encoder, encoder_weights=None).eval()
    model = keras_seg.Unet(args.encoder, encoder_weights=None, data_format=data_format)
    model.load_torch_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    x = np.random.RandomState(0).rand(args.batch, 3, args.size, args.size).astype("float32")
    y = (np.random.RandomState(1).rand(args.batch, 1, args.size, args.size) > 0.5).astype("float32")
    xk, yk = (x, y) if data_format == "channels_first" else (x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1))

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def smp_forward():
        with torch.inference_mode():
            reference(xt)

    optimizer = torch.optim.Adam(reference.parameters(), 1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def smp_step():
        reference.train()
        optimizer.zero_grad()
        loss_fn(reference(xt), yt).backward()
        optimizer.step()

    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    predict = model.make_predict_function()  # noqa: F841  (built lazily by predict_on_batch)

    results = {
        "forward": (best_of(lambda: model.predict_on_batch(xk), args.repeats), best_of(smp_forward, args.repeats)),
        "train step": (best_of(lambda: model.train_on_batch(xk, yk), args.repeats), best_of(smp_step, args.repeats)),
    }
    print(f"Unet-{args.encoder}, batch {args.batch}, {args.size}x{args.size}, backend {keras.backend.backend()}, {data_format}")
    for name, (ours, theirs) in results.items():
        print(f"{name:>10}: keras-seg {ours:.3f} s, SMP {theirs:.3f} s, ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
