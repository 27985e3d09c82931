"""Forward and training-step time of every architecture, keras-seg (each backend) against SMP.

Usage: .venv/bin/python benchmarks/arch_speed.py [--archs unet fpn ...] [--backends torch jax tensorflow]
       [--size 256] [--batch 4] [--repeats 5] [--rounds 1] [--dtype-policy float32|mixed_bfloat16] [--threads N]
       [--smp-memory-format auto|contiguous|channels_last]

Each side runs in its own process (no other framework's thread pool competes): SMP, then keras-seg
once per backend, each timing forward (inference) and one training step (Adam: torch's, keras-seg's
TorchAdam; BCE on logits), best of ``--repeats`` after a warm-up; ``--rounds N`` starts every side N
times, the sides alternating, and keeps each side's best (on a noisy machine). Prints one table: seconds for SMP and the ratio keras-seg / SMP per
backend (below 1: keras-seg is faster). When torch sees a GPU everything runs there, SMP at its best
(channels_last memory format; torch.autocast under a mixed policy); on the CPU SMP runs as its users run it
by default (contiguous NCHW), ``--smp-memory-format channels_last`` measures it channels_last there too
(oneDNN's NHWC kernels: faster for some architectures on some CPUs). keras-seg uses channels_first on
torch and channels_last on TensorFlow and JAX (each backend's fast layout); ``--data-format`` fixes one.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

# architecture -> (keras-seg name, SMP class, encoder, input size or None for --size)
ARCHS = {
    "unet": ("unet", "Unet", "resnet34", None),
    "unetplusplus": ("unetplusplus", "UnetPlusPlus", "resnet34", None),
    "manet": ("manet", "MAnet", "resnet34", None),
    "linknet": ("linknet", "Linknet", "resnet34", None),
    "fpn": ("fpn", "FPN", "resnet34", None),
    "pspnet": ("pspnet", "PSPNet", "resnet34", None),
    "deeplabv3": ("deeplabv3", "DeepLabV3", "resnet34", None),
    "deeplabv3plus": ("deeplabv3plus", "DeepLabV3Plus", "resnet34", None),
    "pan": ("pan", "PAN", "resnet34", None),
    "upernet": ("upernet", "UPerNet", "resnet34", None),
    "segformer": ("segformer", "Segformer", "mit_b0", None),
    "dpt": ("dpt", "DPT", "tu-vit_small_patch16_224", 224),
}
BACKENDS = ("torch", "jax", "tensorflow")


def best_of(fn, repeats, sync):
    fn()  # warm-up (tracing / compilation)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def _inputs(args, size):
    import numpy as np

    x = np.random.RandomState(0).rand(args.batch, 3, size, size).astype("float32")
    y = (np.random.RandomState(1).rand(args.batch, 1, size, size) > 0.5).astype("float32")
    return x, y


def run_smp(args, arch):
    import torch
    import segmentation_models_pytorch as smp

    _, cls, encoder, size = ARCHS[arch]
    size = size or args.size
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model = getattr(smp, cls)(encoder, encoder_weights=None).to(device)
    x, y = (torch.from_numpy(a).to(device) for a in _inputs(args, size))
    if args.smp_memory_format == "channels_last" or (args.smp_memory_format == "auto" and device == "cuda"):
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    half = {"mixed_bfloat16": torch.bfloat16, "mixed_float16": torch.float16}.get(args.dtype_policy)
    autocast = (lambda: torch.autocast(device, dtype=half)) if half is not None else contextlib.nullcontext
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    scaler = torch.amp.GradScaler(device, enabled=half is torch.float16)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def forward():
        model.eval()
        with torch.inference_mode(), autocast():
            model(x)

    def step():
        model.train()
        optimizer.zero_grad()
        with autocast():
            loss = loss_fn(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return {"forward": best_of(forward, args.repeats, sync), "train": best_of(step, args.repeats, sync),
            "device": torch.cuda.get_device_name() if device == "cuda" else "CPU"}


def run_keras(args, arch):
    import keras_seg  # noqa: F401  (before keras: its start-up settings)
    import keras
    from keras_seg.optimizers import TorchAdam
    from keras_seg.training import build_model

    name, _, encoder, size = ARCHS[arch]
    size = size or args.size
    backend = keras.backend.backend()
    data_format = args.data_format or ("channels_first" if backend == "torch" else "channels_last")
    model = build_model(name, dtype_policy_name=args.dtype_policy, encoder_name=encoder, encoder_weights=None,
                        data_format=data_format)
    x, y = _inputs(args, size)
    if data_format == "channels_last":
        x, y = x.transpose(0, 2, 3, 1), y.transpose(0, 2, 3, 1)
    # keras-seg's Adam with torch.optim.Adam's rule (what keras-seg trains with), against SMP's torch Adam
    model.compile(optimizer=TorchAdam(1e-4), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    sync = lambda: None  # noqa: E731  (predict/train_on_batch return host values)
    return {"forward": best_of(lambda: model.predict_on_batch(x), args.repeats, sync),
            "train": best_of(lambda: model.train_on_batch(x, y), args.repeats, sync)}


def _worker(args):
    side, arch = args.worker
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        import torch

        torch.set_num_threads(args.threads)
    result = run_smp(args, arch) if side == "smp" else run_keras(args, arch)
    print("RESULT " + json.dumps(result))


def _spawn(args, side, arch):
    env = dict(os.environ)
    if side != "smp":
        env["KERAS_BACKEND"] = side
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", side, arch, "--size", str(args.size),
           "--batch", str(args.batch), "--repeats", str(args.repeats), "--dtype-policy", args.dtype_policy]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.data_format:
        cmd += ["--data-format", args.data_format]
    if side == "smp":
        cmd += ["--smp-memory-format", args.smp_memory_format]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:120]}
    return json.loads(lines[-1][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="processes per side, alternating; best of all rounds")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on every side (0: torch's default)")
    parser.add_argument("--data-format", default=None, choices=("channels_first", "channels_last"))
    parser.add_argument("--dtype-policy", default="float32", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--smp-memory-format", default="auto", choices=("auto", "contiguous", "channels_last"),
                        help="SMP's memory format (auto: channels_last on a GPU, contiguous on the CPU)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)

    rows, device = [], None
    for arch in args.archs:
        sides = ["smp"] + list(args.backends)
        results = {side: [] for side in sides}
        for _ in range(args.rounds):  # sides alternate, so a slow spell of the machine hits them all
            for side in sides:
                results[side].append(_spawn(args, side, arch))
        row = [arch] + [_best(results[side]) for side in sides]
        device = device or row[1].get("device")
        rows.append(row)
        print(_format_row(row), flush=True)  # progress
    print(f"\n{device or '?'}, batch {args.batch}, {args.size}x{args.size} (DPT 224x224), {args.dtype_policy}, "
          f"SMP memory format {args.smp_memory_format}; "
          "ratio = keras-seg time / SMP time (forward | train step)")
    header = ["architecture", "SMP fwd s", "SMP train s"] + [f"{b} fwd|train" for b in args.backends]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print(_format_row(row))


def _best(results):
    """The fastest forward and training step over a side's rounds (an error if every round failed)."""
    good = [r for r in results if "error" not in r]
    if not good:
        return results[-1]
    return {**good[0], "forward": min(r["forward"] for r in good), "train": min(r["train"] for r in good)}


def _format_row(row):
    arch, smp_result, *ours = row
    if "error" in smp_result:
        return f"| {arch} | SMP failed: {smp_result['error']} |"
    cells = [arch, f"{smp_result['forward']:.3f}", f"{smp_result['train']:.3f}"]
    for result in ours:
        if "error" in result:
            cells.append(f"failed: {result['error']}")
        else:
            cells.append(f"{result['forward'] / smp_result['forward']:.2f} \\| {result['train'] / smp_result['train']:.2f}")
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
