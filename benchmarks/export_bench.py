"""Latency, file size and held-out IoU of every export of a briefly trained model.

For each architecture (default Unet and FPN, resnet18) at 256x256, batch 1:

1. ``keras-seg train`` on the synthetic shapes (a short run, TensorFlow backend);
2. ``keras-seg export`` to SavedModel, TFLite float32 / float16 / int8 / int8_full (calibrated on
   the run's training images) and ONNX (skipped with the reason when it fails);
3. the IoU of each on the run's held-out set (``keras-seg evaluate RUN --model X --json``),
   and of the Keras model on each backend;
4. latency: median of ``--repeats`` batch-1 calls after warm-up, each runtime in its
   own process (Keras once per backend), all with ``--threads`` CPU threads.

Prints a Markdown table (and writes it to OUT/results.md, the rows to OUT/results.json).
Trained models, exports and IoUs are kept in OUT and reused; only latency needs an otherwise idle machine
(``--no-latency`` prepares everything else on a busy one):

    .venv/bin/python benchmarks/export_bench.py --out /tmp/export-bench
    .venv/bin/python benchmarks/export_bench.py --archs unet --size 64 --train-samples 32 --epochs 1 --repeats 5  # smoke run
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("torch", "tensorflow", "jax")
TFLITE = {"tflite_float32": None, "tflite_float16": "float16", "tflite_int8": "int8", "tflite_int8_full": "int8_full"}


def _env(backend, threads):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    env.update(OMP_NUM_THREADS=str(threads), TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1")
    return env


def _run(argv, backend="tensorflow", threads=1, check=True):
    result = subprocess.run([sys.executable, *argv], env=_env(backend, threads), capture_output=True, text=True, cwd=ROOT)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def _cli(*argv, backend="tensorflow", threads=1, check=True):
    return _run(["-m", "keras_seg.cli", *map(str, argv)], backend, threads, check)


def _size_mb(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 1e6
    return os.path.getsize(path) / 1e6


# -- latency, in a process of its own ---------------------------------------------------------


def _keras_runner(path, threads):
    import keras

    from keras_seg import training

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(threads)
    model = training.load_checkpoint(path, compile=False)
    return lambda x: model.predict_on_batch(x), model.data_format  # one compiled call (JAX, TF)


def _artifact_runner(path, threads):
    from keras_seg.artifacts import Artifact

    artifact = Artifact(path, threads=threads)  # SavedModel: TF_NUM_INTRAOP_THREADS
    return artifact, "channels_first" if artifact.input_shape[1] == 3 else "channels_last"


def measure_latency(path, size, repeats, threads, warmup=3):
    """Median and spread of batch-1 latency (ms) of a .keras model or an export."""
    import numpy as np

    runner, data_format = (_keras_runner if path.endswith(".keras") else _artifact_runner)(path, threads)
    shape = (1, 3, size, size) if data_format == "channels_first" else (1, size, size, 3)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    for _ in range(warmup):
        runner(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(x)
        times.append((time.perf_counter() - start) * 1e3)
    return {"ms": statistics.median(times), "ms_min": min(times), "ms_max": max(times)}


def _latency_in_process(path, size, repeats, threads, backend="tensorflow"):
    argv = [os.path.abspath(__file__), "--latency-of", path, "--size", str(size), "--repeats", str(repeats),
            "--threads", str(threads)]
    result = _run(argv, backend, threads)
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the benchmark ------------------------------------------------------------------------------


def _iou(run, artifact=None, backend="tensorflow", threads=1):
    """Held-out IoU (``keras-seg evaluate --json``), kept in RUN/iou.json: it does not depend on the load."""
    cache_path, key = os.path.join(run, "iou.json"), f"{artifact or 'keras'}@{backend}"
    cache = json.load(open(cache_path, encoding="utf-8")) if os.path.exists(cache_path) else {}
    if key not in cache:
        argv = ["evaluate", run, "--json"] + (["--model", artifact] if artifact else [])
        cache[key] = json.loads(_cli(*argv, backend=backend, threads=threads).stdout.strip().splitlines()[-1])["iou"]
        with open(cache_path, "w", encoding="utf-8") as f:
            json.dump(cache, f, indent=1)
    return cache[key]


def _latency(args, path, backend="tensorflow"):
    if args.no_latency:
        return {"ms": float("nan"), "ms_min": float("nan"), "ms_max": float("nan")}
    return _latency_in_process(path, args.size, args.repeats, args.threads, backend)


def bench_arch(arch, args):
    run = os.path.join(args.out, arch)
    if not os.path.exists(os.path.join(run, "model.keras")):
        start = time.perf_counter()
        _cli("train", "--arch", arch, "--output", run, "--image-size", args.size, "--epochs", args.epochs,
             "--train-samples", args.train_samples, "--val-samples", args.val_samples, "--batch-size", args.batch_size,
             "--data-format", "channels_last", "--verbose", 0, threads=args.threads)
        print(f"{arch}: trained in {time.perf_counter() - start:.0f} s", flush=True)
    exports = {"savedmodel": os.path.join(run, "savedmodel")}
    exports.update({name: os.path.join(run, f"{name}.tflite") for name in TFLITE})
    exports["onnx"] = os.path.join(run, "model.onnx")
    rows, skipped = [], {}
    for name, path in exports.items():
        if not os.path.exists(path):
            fmt = {"savedmodel": "tf_saved_model", "onnx": "onnx"}.get(name, "litert")
            quantize = ["--quantize", TFLITE[name]] if TFLITE.get(name) else []
            result = _cli("export", run, path, "--format", fmt, "--no-check", *quantize, threads=args.threads, check=False)
            if result.returncode != 0:
                skipped[name] = (result.stderr.strip().splitlines() or ["failed"])[-1]
                print(f"{arch} {name}: export failed: {skipped[name]}", flush=True)
                continue
        rows.append({"arch": arch, "runtime": name, "mb": _size_mb(path), "iou": _iou(run, path, threads=args.threads),
                     **_latency(args, path)})
        print(json.dumps(rows[-1]), flush=True)
    keras_mb = _size_mb(os.path.join(run, "model.keras"))
    for backend in args.backends:
        rows.append({"arch": arch, "runtime": f"keras ({backend})", "mb": keras_mb,
                     "iou": _iou(run, backend=backend, threads=args.threads),
                     **_latency(args, os.path.join(run, "model.keras"), backend)})
        print(json.dumps(rows[-1]), flush=True)
    return rows, skipped


def table(rows):
    lines = ["| architecture | runtime | file (MB) | latency (ms, median) | IoU |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['runtime']} | {r['mb']:.1f} | {r['ms']:.1f} | {r['iou']:.4f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="export-bench", help="working folder (runs and exports are reused when present)")
    p.add_argument("--archs", default="unet,fpn")
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--train-samples", type=int, default=512)
    p.add_argument("--val-samples", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-latency", action="store_true",
                   help="train, export and score only (on a busy machine; latency later, on an idle one)")
    p.add_argument("--latency-of", default=None, help=argparse.SUPPRESS)  # the per-process latency mode
    args = p.parse_args(argv)
    if args.latency_of:
        print(json.dumps(measure_latency(args.latency_of, args.size, args.repeats, args.threads)))
        return 0
    args.backends = [b for b in args.backends.split(",") if b]
    os.makedirs(args.out, exist_ok=True)
    rows, skipped = [], {}
    for arch in [a for a in args.archs.split(",") if a]:
        arch_rows, arch_skipped = bench_arch(arch, args)
        rows += arch_rows
        skipped.update({f"{arch} {k}": v for k, v in arch_skipped.items()})
    text = table(rows) + "".join(f"\n\n{k}: not measured ({v})" for k, v in skipped.items())
    print(text)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "skipped": skipped, "args": vars(args)}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
