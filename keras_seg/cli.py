"""The ``keras-seg`` command line: train, evaluate, predict, convert, export, list-encoders, demo.

Run ``keras-seg <command> --help`` for the options. The backend is Keras's
(``KERAS_BACKEND=torch|tensorflow|jax``); models use the backend's fast layout by
default (channels_first on torch, channels_last on TensorFlow and JAX).

A training run writes to its ``--output`` folder::

    run.json                 how the model was built and its data prepared (read by
                             evaluate / predict)
    checkpoints/             epoch-NNNN.keras after every epoch + state.json (--resume)
    model.keras              the final model
    smp/                     the same in SMP's format (config.json, model.safetensors)
    history.png, metrics.json

Every file is written atomically: an interrupted command leaves no half-written file.
"""

import argparse
import json
import os
import shutil
import sys
import time

RUN_FILE = "run.json"
DEMO_IOU_TARGET = 0.9


# -- small helpers ---------------------------------------------------------------------


class CLIError(Exception):
    """A user-facing error: printed without a traceback (set KERAS_SEG_DEBUG=1 for one), exit status 2."""


def _log(*args):
    print(*args, flush=True)


def _image_size(value):
    """"64" -> (64, 64); "64x96" / "64,96" -> (64, 96)."""
    if value is None:
        return None
    parts = str(value).lower().replace(",", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must be N or HxW, got {value!r}") from None
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) <= 0:
        raise argparse.ArgumentTypeError(f"image size must be N or HxW with positive numbers, got {value!r}")
    return size


def _int_list(value):
    try:
        return [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from None


def _label_map(value):
    """"0:0,255:1" -> {0: 0, 255: 1} (raw mask value -> class index)."""
    try:
        pairs = [item.split(":") for item in str(value).split(",") if item.strip()]
        return {int(raw): int(cls) for raw, cls in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"--label-map must look like 0:0,255:1, got {value!r}") from None


def _first_line(error):
    """``error`` as one line (library messages can run to paragraphs)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _none_or_str(value):
    return None if str(value).lower() in ("none", "null", "") else value


def _default_data_format():
    import keras

    return "channels_first" if keras.backend.backend() == "torch" else "channels_last"


def _configure_threads(threads):
    """Torch's OpenMP threads spin while waiting; on an oversubscribed CPU (load above the
    core count) two spinning threads can run many times slower than one. ``auto`` uses
    one thread then, torch's default otherwise. Returns a description for the log."""
    import keras

    if keras.backend.backend() != "torch":
        return None
    import torch

    if threads == "auto":
        cores = os.cpu_count() or 1
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
        if cores > 1 and load >= cores:
            torch.set_num_threads(1)
            return f"torch threads: 1 (load average {load:.1f} >= {cores} cores)"
        return f"torch threads: {torch.get_num_threads()}"
    torch.set_num_threads(int(threads))
    return f"torch threads: {int(threads)}"


def _threads_arg(value):
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads must be 'auto' or a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--threads must be positive, got {value!r}")
    return n


def _read_run(path):
    """run.json for a model path: next to it, or in its parent (for checkpoints/)."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    for candidate in (folder, os.path.dirname(folder)):
        run_path = os.path.join(candidate, RUN_FILE)
        if os.path.exists(run_path):
            with open(run_path, encoding="utf-8") as f:
                return json.load(f)
    return None


def _load_model(path):
    """A .keras file, or a run folder holding model.keras."""
    from keras_seg import training

    if os.path.isdir(path):
        candidate = os.path.join(path, "model.keras")
        if not os.path.exists(candidate):
            raise CLIError(f"{path} is a folder without model.keras; pass a .keras file.")
        path = candidate
    if not os.path.exists(path):
        raise CLIError(f"Model file not found: {path}")
    if not path.endswith(".keras"):
        raise CLIError(f"Expected a .keras model file, got {path} (convert SMP checkpoints with `keras-seg convert`).")
    try:
        return training.load_checkpoint(path, compile=False)
    except Exception as e:  # corrupt or foreign files: one clear line
        raise CLIError(f"Cannot load model {path}: {_first_line(e)}") from None


def _preprocessing_for(choice, encoder_name):
    """"auto": the encoder's ImageNet statistics when it has them, else [0, 1] scaling."""
    from keras_seg.data import get_preprocessing_params

    if choice == "unit":
        return None
    try:
        return get_preprocessing_params(encoder_name, "imagenet")
    except (ValueError, ImportError) as e:
        if choice == "imagenet":
            raise CLIError(f"No ImageNet preprocessing for encoder {encoder_name!r}: {e}") from None
        return None


# -- data ------------------------------------------------------------------------------


def _datasets(args, mode, classes, for_training=True):
    """``(train, val)`` datasets for --data (val may be the only one for evaluate)."""
    from keras_seg.data import FolderDataset, SyntheticSegmentation, has_splits, split_dataset

    if args.data == "synthetic":
        size = args.image_size or (64, 64)
        train = SyntheticSegmentation(args.train_samples, size, mode=mode, seed=args.seed, split="train") if for_training else None
        val = SyntheticSegmentation(args.val_samples, size, mode=mode, seed=args.seed, split=args.val_split)
        return train, val
    root = args.data
    if not os.path.isdir(root):
        raise CLIError(f"--data: folder not found: {root} (or pass --data synthetic)")
    kwargs = dict(mode=mode, classes=classes, ignore_index=args.ignore_index, convert_channels=args.convert_channels,
                  label_map=args.label_map)
    if has_splits(root):
        train = FolderDataset(root, split="train", **kwargs) if for_training else None
        val_split = args.val_split if os.path.isdir(os.path.join(root, args.val_split)) else None
        if val_split is None:
            raise CLIError(f"{root} has train/ but no {args.val_split}/ folder.")
        val = FolderDataset(root, split=val_split, **kwargs)
    else:
        full = FolderDataset(root, **kwargs)
        if not for_training and getattr(args, "held_out", False):  # the run's own folder: its held-out part
            train, val = None, split_dataset(full, args.val_fraction, seed=args.seed)[1]
        elif not for_training:
            val = full
            train = None
        else:
            train, val = split_dataset(full, args.val_fraction, seed=args.seed)
    if getattr(args, "validate", True):
        for ds in (train, val):
            target = getattr(ds, "dataset", ds)
            if target is not None and hasattr(target, "validate"):
                target.validate()
    return train, val


def _classes_for(mode, classes, data):
    if mode == "binary":
        if classes not in (None, 1):
            raise CLIError(f"--mode binary has one output channel; --classes must be 1, got {classes}.")
        return 1
    if classes is None:
        if data == "synthetic":
            from keras_seg.data import CLASS_NAMES, SHAPES

            return len(CLASS_NAMES) if mode == "multiclass" else len(SHAPES)
        raise CLIError(f"--mode {mode} needs --classes (the number of classes{', background included' if mode == 'multiclass' else ''}).")
    return classes


# -- train -----------------------------------------------------------------------------


def _check_names(arch, encoder):
    """Unknown architecture / encoder names -> CLIError listing the valid ones."""
    import keras_seg
    from keras_seg.architectures import ARCHITECTURES

    if str(arch).lower() not in ARCHITECTURES:
        raise CLIError(f"unknown architecture {arch!r}; choose one of: {', '.join(sorted(ARCHITECTURES))}")
    from backbones.registry import find_spec

    try:  # registered names, <name>.<pretrained tag> of timm-tagged encoders, keras_hub:<preset>
        spec = find_spec(encoder)
    except (ValueError, OSError) as e:
        raise CLIError(" ".join(str(e).split())) from None  # one line (keras-hub's messages span several)
    if spec is None:
        raise CLIError(f"unknown encoder {encoder!r}; `keras-seg list-encoders` lists the {len(keras_seg.list_encoders())} encoders")


def _check_image_size(model, size):
    """A clear error for an image size the model cannot take (e.g. not divisible by 32)."""
    if size is None or not hasattr(model, "check_input_shape"):
        return
    import keras

    channels = (getattr(model, "config", None) or {}).get("in_channels", 3)
    shape = (1, *size, channels) if model.data_format == "channels_last" else (1, channels, *size)
    try:
        model.check_input_shape(keras.KerasTensor(shape))
    except ValueError as e:
        raise CLIError(f"--image-size {size[0]}x{size[1]}: {e}") from None


def _build_model(run):
    from keras_seg import training

    kwargs = dict(run["model"])
    arch = kwargs.pop("arch")
    return training.build_model(arch, dtype_policy_name=run.get("dtype_policy"), **kwargs)


def _run_config(args, mode, classes, data_format):
    """The run.json content: how the model is built and its data prepared."""
    import keras

    model = {
        "arch": args.arch.lower(),
        "encoder_name": args.encoder,
        "encoder_weights": args.encoder_weights,
        "classes": classes,
        "data_format": data_format,
    }
    if args.encoder_depth is not None:
        model["encoder_depth"] = args.encoder_depth
    if args.decoder_channels is not None:
        model["decoder_channels"] = args.decoder_channels
    size = args.image_size or ((64, 64) if args.data == "synthetic" else None)
    return {
        "model": model,
        "mode": mode,
        "classes": classes,
        "image_size": list(size) if size else None,
        "preprocessing": _preprocessing_for(args.preprocessing, args.encoder),
        "dtype_policy": args.mixed_precision,
        "threshold": 0.5,
        "data": args.data,
        "label_map": args.label_map,
        "backend": keras.backend.backend(),
        # how the data were split (evaluate scores the same held-out set, export calibrates on the training part)
        "seed": args.seed,
        "val_split": args.val_split,
        "val_fraction": args.val_fraction,
        "train_samples": args.train_samples,
        "val_samples": args.val_samples,
    }


def _check_options(args):
    """Numbers out of range and unknown metric names -> CLIError, before anything is written."""
    from keras_seg.training import METRIC_NAMES

    counts = {"--epochs": args.epochs, "--batch-size": args.batch_size, "--workers": args.workers,
              "--train-samples": args.train_samples, "--val-samples": args.val_samples}
    bad = [f"{flag} {value}" for flag, value in counts.items() if value < 1]
    if bad:
        raise CLIError(f"{', '.join(bad)}: must be a positive integer.")
    if not args.lr > 0:
        raise CLIError(f"--lr {args.lr}: the learning rate must be positive.")
    if args.keep_checkpoints < 0:
        raise CLIError(f"--keep-checkpoints {args.keep_checkpoints}: must be 0 (keep all) or a positive number.")
    if not 0 < args.val_fraction < 1:
        raise CLIError(f"--val-fraction {args.val_fraction}: must lie between 0 and 1.")
    unknown = [m for m in args.metrics or () if m not in METRIC_NAMES]
    if unknown:
        raise CLIError(f"--metrics: unknown metric name(s) {', '.join(map(repr, unknown))}; valid names: {', '.join(METRIC_NAMES)}.")


def _previous_command(out):
    run_path = os.path.join(out, RUN_FILE)
    if not os.path.exists(run_path):
        return None
    try:
        with open(run_path, encoding="utf-8") as f:
            return json.load(f).get("command")
    except (ValueError, AttributeError):
        return None


def _check_resume(args, run, out, ckpt_dir, demo=False):
    """Refuse to overwrite checkpoints without --resume, or to resume a different model.

    A demo starts fresh only in the output of an earlier demo; another run's checkpoints
    are refused, as train refuses them. Returns whether old checkpoints are to be cleared.
    """
    from keras_seg import training

    has_checkpoints = training.last_checkpoint(ckpt_dir) is not None
    if demo and has_checkpoints:
        if _previous_command(out) != "demo":
            raise CLIError(f"{ckpt_dir} holds the checkpoints of a training run, not of an earlier demo: "
                           "choose another --output.")
        return True
    if not args.resume and has_checkpoints:
        raise CLIError(f"{ckpt_dir} already holds checkpoints: pass --resume to continue, or choose another --output.")
    if args.resume and not has_checkpoints:
        _log(f"--resume: no checkpoint in {ckpt_dir}; starting from epoch 1.")
    run_path = os.path.join(out, RUN_FILE)
    if args.resume and os.path.exists(run_path):
        with open(run_path, encoding="utf-8") as f:
            previous = json.load(f)
        if previous.get("model") != run["model"] or previous.get("mode") != run["mode"]:
            raise CLIError(
                f"--resume: the model settings differ from the run in {out} "
                f"(was {previous.get('model')}, mode {previous.get('mode')!r}); use the same options."
            )
    return False


def _clean_temporaries(*folders):
    """Remove what an interrupted run left in ``folders`` (temporary files of dead processes)."""
    from keras_seg.data.io import remove_stale_temporaries

    removed = [path for folder in folders for path in remove_stale_temporaries(folder)]
    if removed:
        _log(f"removed {len(removed)} temporary file(s) left by an interrupted run: "
             f"{', '.join(os.path.basename(p) for p in removed)}")


def _train_augmentation(args, size, demo):
    from keras_seg.data import augment

    if not args.augment:
        return augment.eval_transform(size)
    if demo:  # synthetic data: flips (and 90-degree turns when square) are enough
        turns = [augment.RandomRotate90()] if size and size[0] == size[1] else []
        return augment.Compose([augment.HorizontalFlip(), augment.VerticalFlip(), *turns])
    return augment.train_augmentation(size)


def _trainable_count(model):
    import numpy as np

    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def train_run(args, demo=False):
    """Train as configured by ``args``; returns ``(model, history, run, val_loader, seconds)``.

    Everything is checked (names, data, image size, resume) before the first file is
    written to ``args.output``.
    """
    import keras

    from keras_seg import optimizers, training
    from keras_seg.data import SegmentationDataLoader, augment, write_text

    _check_names(args.arch, args.encoder)
    _check_options(args)
    mode = args.mode
    classes = _classes_for(mode, args.classes, args.data)
    if args.data != "synthetic" and args.image_size is None:
        raise CLIError("training on a folder needs --image-size (N or HxW): images are cropped/resized to it for batching.")
    data_format = args.data_format or _default_data_format()
    out = args.output
    ckpt_dir = os.path.join(out, "checkpoints")
    run = _run_config(args, mode, classes, data_format)
    run["command"] = "demo" if demo else "train"
    clear_checkpoints = _check_resume(args, run, out, ckpt_dir, demo)

    train_ds, val_ds = _datasets(args, mode, classes)
    run["class_names"] = list(getattr(val_ds, "class_names", ()) or ())
    size = tuple(run["image_size"]) if run["image_size"] else None
    train_aug = _train_augmentation(args, size, demo)

    threads = _configure_threads(args.threads)
    if threads:
        _log(threads)

    def loaders(replicas):
        common = dict(preprocessing=run["preprocessing"], data_format=data_format, classes=classes,
                      workers=args.workers, use_multiprocessing=args.multiprocessing)
        train = SegmentationDataLoader(train_ds, args.batch_size, augmentation=train_aug, shuffle=True,
                                       drop_remainder=replicas > 1 or len(train_ds) >= 2 * args.batch_size,
                                       seed=args.seed, **common)
        val = SegmentationDataLoader(val_ds, args.batch_size, augmentation=augment.eval_transform(size),
                                     drop_remainder=replicas > 1, **common)
        return train, val

    def build_and_fit(replicas):
        train_loader, val_loader = loaders(replicas)
        if len(train_loader) == 0:
            raise CLIError(f"{len(train_ds)} training sample(s) make no full batch of {args.batch_size}.")
        keras.utils.set_random_seed(args.seed)
        model = _build_model(run)
        _check_image_size(model, size)
        if args.freeze_encoder:
            model.freeze_encoder()
        steps = args.epochs * len(train_loader)
        lr = keras.optimizers.schedules.CosineDecay(args.lr, max(steps, 1)) if args.cosine else args.lr
        training.compile_for(model, mode, optimizer=optimizers.TorchAdam(lr), metrics=args.metrics,
                             ignore_index=args.ignore_index)
        if clear_checkpoints:  # an earlier demo's: a demo always starts fresh
            shutil.rmtree(ckpt_dir)
        _clean_temporaries(out)
        write_text(os.path.join(out, RUN_FILE), json.dumps(run, indent=1))  # first file written
        _log(f"data: train {train_ds.describe()}; val {val_ds.describe()}")
        _log(f"model: {args.arch} / {args.encoder}, {_trainable_count(model):,} trainable parameters, {data_format}, "
             f"{keras.backend.backend()} backend" + (f", {args.mixed_precision}" if args.mixed_precision else ""))
        start = time.perf_counter()
        model, history = training.fit(
            model, train_loader, args.epochs, validation_data=val_loader, checkpoint_dir=ckpt_dir,
            resume=args.resume, keep=args.keep_checkpoints, verbose=_fit_verbosity(args.verbose),
            dtype_policy_name=args.mixed_precision, freeze_encoder=args.freeze_encoder,
        )
        return model, history, val_loader, time.perf_counter() - start

    if args.data_parallel:
        if keras.backend.backend() == "torch":
            raise CLIError("--data-parallel needs the jax or tensorflow backend (Keras has no torch data parallelism); "
                           "see docs/training.md.")
        with training.data_parallel() as replicas:
            _log(f"data parallel: {replicas}")
            if args.batch_size % replicas.num_replicas:
                raise CLIError(f"--batch-size {args.batch_size} must be divisible by the {replicas.num_replicas} replicas.")
            model, history, val_loader, seconds = build_and_fit(replicas.num_replicas)
    else:
        model, history, val_loader, seconds = build_and_fit(1)
    return model, history, run, val_loader, seconds


def _save_outputs(model, history, run, out, scores=None):
    from keras_seg import training
    from keras_seg.data import atomic_dir, write_text
    from keras_seg.data.visualize import save_history_plot

    training.save_model(model, os.path.join(out, "model.keras"))  # no optimizer: loads on any backend
    with atomic_dir(os.path.join(out, "smp")) as tmp:
        metrics = {k: round(v, 4) for k, v in scores.items() if isinstance(v, float)} if scores else None
        model.save_pretrained(tmp, dataset=f"keras-seg {run.get('data')}", metrics=metrics)
    if history and any(len(v) for v in history.values()):
        save_history_plot(os.path.join(out, "history.png"), history, title=f"{run['model']['arch']} / {run['model']['encoder_name']}")
    if scores is not None:
        write_text(os.path.join(out, "metrics.json"), json.dumps(scores, indent=1))


def cmd_train(args):
    from keras_seg import training

    model, history, run, val_loader, seconds = train_run(args)
    _log(f"training time: {seconds:.1f} s")
    scores = training.evaluate_masks(model, val_loader, run["mode"], class_names=run["class_names"] or None,
                                     ignore_index=args.ignore_index)
    _log(training.format_metrics_table(scores))
    _save_outputs(model, history, run, args.output, scores)
    _log(f"saved: {os.path.join(args.output, 'model.keras')}, {os.path.join(args.output, 'smp')}")
    return 0


# -- evaluate ----------------------------------------------------------------------------


def _model_settings(args, model):
    """mode, preprocessing, image size, class names: flags, else run.json, else the model."""
    from keras_seg import training

    run = _read_run(args.model) or {}
    mode = args.mode or run.get("mode") or training.infer_mode(model)
    if args.preprocessing != "auto" or "preprocessing" not in run:
        encoder = (getattr(model, "config", None) or {}).get("encoder_name", "")
        preprocessing = _preprocessing_for(args.preprocessing, encoder) if encoder else None
    else:
        preprocessing = run["preprocessing"]
    size = args.image_size or (tuple(run["image_size"]) if run.get("image_size") else None)
    return mode, preprocessing, size, run.get("class_names") or None, run


def _run_data_args(args, run):
    """Unset data options of evaluate from the run: its data, seed and split, so a run is
    scored on its own held-out set (a folder without split folders: the same held-out part)."""
    if args.data is None:
        args.data = run.get("data") or "synthetic"
    for name, default in RUN_DATA_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, run.get(name, default))
    same = run.get("data") is not None and os.path.abspath(args.data) == os.path.abspath(run["data"])
    args.held_out = same and args.data != "synthetic"


def _open_artifact(path, run, size):
    """An exported model as ``artifacts.SegmentationArtifact``; CLIError when it is not one,
    or when its fixed input size differs from the images it would be evaluated on."""
    from keras_seg.artifacts import SegmentationArtifact

    try:
        artifact = SegmentationArtifact(path, channels=(run.get("model") or {}).get("in_channels", 3))
    except (ValueError, ImportError) as e:
        raise CLIError(f"--model {_first_line(e)}") from None
    fixed = artifact.image_size
    if size is not None and None not in fixed and tuple(fixed) != tuple(size):
        raise CLIError(f"--model {path} takes {fixed[0]}x{fixed[1]} images, but the run's images are {size[0]}x{size[1]}: "
                       f"export it with --image-size {size[0]}x{size[1]}, or evaluate with --image-size {fixed[0]}x{fixed[1]}.")
    return artifact


def cmd_evaluate(args):
    """Score the model (or each --model artifact) on the run's held-out data (or --data)."""
    from keras_seg import training
    from keras_seg.data import SegmentationDataLoader, augment

    run = _read_run(args.model) or {}  # artifacts are checked before the model loads
    size = args.image_size or (tuple(run["image_size"]) if run.get("image_size") else None)
    artifacts = [_open_artifact(path, run, size) for path in args.artifacts or ()]
    model = _load_model(args.model)
    mode, preprocessing, size, class_names, run = _model_settings(args, model)
    _run_data_args(args, run)
    classes = training.model_classes(model)
    for artifact in artifacts:
        artifact.config = dict(getattr(model, "config", None) or {})  # classes, activation
    if size is None and artifacts and None not in artifacts[0].image_size:
        size = tuple(artifacts[0].image_size)
    if args.data == "synthetic" and args.image_size is None and size:
        args.image_size = size
    if args.label_map is None and run.get("label_map"):
        args.label_map = {int(k): int(v) for k, v in run["label_map"].items()}
    _, ds = _datasets(args, mode, classes, for_training=False)
    threads = _configure_threads(args.threads)
    if threads and args.json != "-":
        _log(threads)
    lines = []
    for target, name in [(a, a.path) for a in artifacts] or [(model, args.model)]:
        loader = SegmentationDataLoader(ds, args.batch_size, augmentation=augment.eval_transform(size), preprocessing=preprocessing,
                                        data_format=target.data_format, classes=classes)
        start = time.perf_counter()
        scores = training.evaluate_masks(target, loader, mode, threshold=args.threshold,
                                         class_names=class_names or getattr(ds, "class_names", None), ignore_index=args.ignore_index)
        seconds = time.perf_counter() - start
        lines.append(json.dumps({"model": os.fspath(name), "format": getattr(target, "format", "keras"), **scores,
                                 "seconds": round(seconds, 3)}))
        if args.json == "-":
            _log(lines[-1])
        else:
            _log(f"{name}: {ds.describe()}: {seconds:.1f} s")
            _log(training.format_metrics_table(scores))
    if args.json not in (None, "-"):
        from keras_seg.data import write_text

        write_text(args.json, "\n".join(lines) + "\n")
    return 0


# -- predict -----------------------------------------------------------------------------


def _input_images(path):
    from keras_seg.data.io import IMAGE_EXTENSIONS

    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, f) for f in os.listdir(path)
            if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS and not f.startswith(".")
        )
        if not files:
            raise CLIError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
        return files
    if not os.path.exists(path):
        raise CLIError(f"Input not found: {path}")
    return [path]


def _predict_one(model, path, args, settings):
    """Predict ``path`` and write its mask(s) and overlay; returns the mask path."""
    import numpy as np

    from keras_seg import training
    from keras_seg.data import read_image, write_png
    from keras_seg.data.augment import resize_image, resize_mask
    from keras_seg.data.loader import format_image
    from keras_seg.data.visualize import colorize, overlay

    mode, size, prep, from_logits, n_colors = settings
    in_channels = (getattr(model, "config", None) or {}).get("in_channels", 3)
    masks_dir, overlays_dir = os.path.join(args.output, "masks"), os.path.join(args.output, "overlays")
    image = read_image(path, in_channels, convert_channels=args.convert_channels)
    h, w = image.shape[:2]
    x = resize_image(image, size) if size else image
    x = format_image(prep(x), model.data_format)[None]
    out = training.predict_logits(model, x)
    mask = training.to_masks(out, mode, from_logits, args.threshold, model.data_format)[0]
    if size:
        mask = resize_mask(mask, (h, w))
    stem = os.path.splitext(os.path.basename(path))[0]
    if mode == "multilabel":  # one 0/1 PNG per label
        for k in range(mask.shape[-1]):
            write_png(os.path.join(masks_dir, f"{stem}_label{k}.png"), mask[..., k].astype(np.uint8))
    else:
        write_png(os.path.join(masks_dir, f"{stem}.png"), mask)
    write_png(os.path.join(overlays_dir, f"{stem}.png"), np.concatenate(
        [image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, -1),
         overlay(image, mask, 0.5, n_colors), colorize(mask, n_colors)], axis=1))
    return os.path.join(masks_dir, stem + ".png")


def cmd_predict(args):
    """Predict every image; an unreadable one is reported and skipped (exit 2 at the end)."""
    from keras_seg import training
    from keras_seg.data.preprocessing import resolve_preprocessing

    model = _load_model(args.model)
    mode, preprocessing, size, class_names, _ = _model_settings(args, model)
    settings = (mode, size, resolve_preprocessing(preprocessing), training.outputs_logits(model),
                training.model_classes(model) + (1 if mode == "binary" else 0))
    files = _input_images(args.input)
    failed = []
    for path in files:
        try:
            _log(f"{path} -> {_predict_one(model, path, args, settings)}")
        except ValueError as e:  # DatasetError: unreadable image, wrong channels, ...
            print(f"error: {e}", file=sys.stderr, flush=True)
            failed.append(path)
    done = len(files) - len(failed)
    _log(f"{done} image(s): class-index masks in {os.path.join(args.output, 'masks')}, "
         f"overlays (image | overlay | mask) in {os.path.join(args.output, 'overlays')}")
    if failed:
        print(f"error: {len(failed)} of {len(files)} image(s) could not be predicted (listed above).", file=sys.stderr)
        return 2
    return 0


# -- convert / export / list-encoders ------------------------------------------------------------


def cmd_convert(args):
    import keras_seg
    from keras_seg.data import atomic_path

    if not os.path.isdir(args.checkpoint) and not args.allow_hub:
        raise CLIError(f"SMP checkpoint folder not found: {args.checkpoint} (a folder with config.json and model.safetensors).")
    if not args.output.endswith(".keras"):
        raise CLIError(f"The output must end in .keras, got {args.output}")
    try:
        model = keras_seg.from_pretrained(args.checkpoint, data_format=args.data_format or _default_data_format())
    except (OSError, ValueError, KeyError, ImportError) as e:
        raise CLIError(f"Cannot convert {args.checkpoint}: {_first_line(e)}") from None
    with atomic_path(args.output) as tmp:
        model.save(tmp)
    _log(f"{args.checkpoint} -> {args.output} ({type(model).__name__}, {model.count_params():,} parameters, {model.data_format})")
    return 0


def _export(model, path, fmt, size, check=True, x=None, overwrite=False, quantize=None, calibration=None):
    """Export through keras_seg.export and compare the artifact with Keras on ``x`` (one
    batch-1 input; default random numbers). Returns the max difference (None without check).
    ``overwrite`` replaces a previous export of the same format only; ``quantize`` and
    ``calibration``: see ``keras_seg.quantize``."""
    import numpy as np

    try:
        from keras_seg import export
    except ImportError:
        raise CLIError("keras_seg.export is not available in this installation.") from None
    from keras_seg import training

    _check_export_target(path, fmt, overwrite)
    if getattr(model, "optimizer", None) is not None:  # a compiled model's file names its backend's optimizer module
        model = training.inference_copy(model)
    try:
        export.export_model(model, path, fmt, input_size=tuple(size), overwrite=overwrite,  # atomic
                            **({"quantize": quantize, "calibration": calibration} if quantize else {}))
    except ImportError as e:
        raise CLIError(f"{fmt} export needs a package that is not installed ({e}); for onnx: "
                       "pip install onnx onnxruntime (and tf2onnx on the tensorflow backend)") from None
    if not check:
        return None
    if x is None:
        channels = (getattr(model, "config", None) or {}).get("in_channels", 3)
        shape = (1, *size, channels) if model.data_format == "channels_last" else (1, channels, *size)
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
    return float(export.compare_exported(model, path, fmt, np.asarray(x, np.float32)))


def _check_export_target(path, fmt, overwrite):
    from keras_seg import export

    try:
        export.check_target(path, fmt, overwrite, option="--overwrite")
    except export.ExportTargetError as e:
        raise CLIError(str(e)) from None


def _check_quantize_option(args):
    """--quantize for litert only, one of the known modes (CLIError otherwise)."""
    from keras_seg.quantize import QUANTIZE_MODES

    if args.quantize is None:
        return None
    if args.quantize not in QUANTIZE_MODES:
        raise CLIError(f"--quantize {args.quantize}: unknown value; valid values are {', '.join(QUANTIZE_MODES)}.")
    if args.format != "litert":
        raise CLIError(f"--quantize applies to --format litert only, not {args.format}.")
    if args.calibration_samples < 1:
        raise CLIError(f"--calibration-samples {args.calibration_samples}: must be a positive integer.")
    return args.quantize


def _calibration_source(args, run):
    """'synthetic', a folder, or the run's training data (None: no calibration data at all)."""
    if args.calibration_data is not None:
        return args.calibration_data
    return ("run", run["data"]) if run.get("data") else None


def _image_files(folder):
    """The images of a calibration folder: train/images/, images/ or the folder itself."""
    if not os.path.isdir(folder):
        raise CLIError(f"--calibration-data: folder not found: {folder} (or pass --calibration-data synthetic)")
    for candidate in (os.path.join(folder, "train", "images"), os.path.join(folder, "images"), folder):
        if os.path.isdir(candidate):
            try:
                return _input_images(candidate)
            except CLIError:
                continue
    raise CLIError(f"--calibration-data: no images in {folder} (nor in its images/ or train/images/).")


def _run_training_images(folder, run, model):
    """The image files of a run's training part of ``folder`` (its train/ split, or the run's split)."""
    from keras_seg import training

    if not os.path.isdir(folder):
        raise CLIError(f"the run's training data {folder} is not found (from here): "
                       "pass --calibration-data FOLDER or --calibration-data synthetic.")
    data_args = argparse.Namespace(data=folder, ignore_index=None, convert_channels=False, validate=False,
                                   label_map=None, **{k: run.get(k, v) for k, v in RUN_DATA_DEFAULTS.items()})
    train, _ = _datasets(data_args, run.get("mode") or training.infer_mode(model), training.model_classes(model))
    dataset = getattr(train, "dataset", train)  # a Subset (the run's split) or the train/ FolderDataset
    return [dataset.image_paths[i] for i in getattr(train, "indices", range(len(dataset)))]


def _calibration_images(source, args, run, model, size):
    """Up to --calibration-samples images from ``source``, prepared as for training, in the model's layout."""
    import numpy as np

    from keras_seg import training
    from keras_seg.data import SyntheticSegmentation, read_image
    from keras_seg.data.augment import resize_image
    from keras_seg.data.loader import format_image
    from keras_seg.data.preprocessing import resolve_preprocessing

    n, seed = args.calibration_samples, run.get("seed", 0)
    config = getattr(model, "config", None) or {}
    if source in ("synthetic", ("run", "synthetic")):  # the run's first training samples
        ds = SyntheticSegmentation(n, size, mode=run.get("mode") or training.infer_mode(model), seed=seed, split="train")
        images = [ds[i][0] for i in range(n)]
    else:
        files = _run_training_images(source[1], run, model) if isinstance(source, tuple) else _image_files(source)
        order = np.random.default_rng(seed).permutation(len(files))[:n]
        images = [read_image(files[int(i)], config.get("in_channels", 3)) for i in order]
    preprocessing = run["preprocessing"] if "preprocessing" in run else _preprocessing_for("auto", config.get("encoder_name", ""))
    prep = resolve_preprocessing(preprocessing)
    return np.stack([format_image(prep(resize_image(np.asarray(im), size)), model.data_format) for im in images])


def cmd_export(args):
    """Export a .keras model or a run's model; a run folder supplies the size and the calibration data."""
    from keras_seg.quantize import NEEDS_CALIBRATION

    quantize = _check_quantize_option(args)
    if args.format == "litert" and not args.output.endswith(".tflite"):
        raise CLIError(f"a litert export must end in .tflite, got {args.output}")
    _check_export_target(args.output, args.format, args.overwrite)
    run = _read_run(args.model) or {}
    source = _calibration_source(args, run) if quantize in NEEDS_CALIBRATION else None
    if quantize in NEEDS_CALIBRATION and source is None:
        raise CLIError(f"--quantize {quantize} needs calibration data: export a run folder (its training images are used), "
                       "or pass --calibration-data FOLDER or --calibration-data synthetic.")
    model = _load_model(args.model)
    size = args.image_size or (tuple(run["image_size"]) if run.get("image_size") else None)
    if size is None:
        raise CLIError("export needs --image-size (the fixed input size of the exported model).")
    _check_image_size(model, size)
    calibration = _calibration_images(source, args, run, model, size) if source else None
    diff = _export(model, args.output, args.format, size, check=not args.no_check, overwrite=args.overwrite,
                   quantize=quantize, calibration=calibration, x=None if calibration is None else calibration[:1])
    _log(f"exported {args.format}{f' ({quantize})' if quantize else ''}: {args.output}"
         + (f", calibrated on {len(calibration)} image(s)" if calibration is not None else ""))
    if diff is not None:
        _log(f"max |exported - keras| = {diff:.2e}")
        tolerance = args.tolerance if args.tolerance is not None or quantize else 1e-3
        if quantize and args.tolerance is None:
            _log(f"quantized: compare its accuracy with `keras-seg evaluate RUN --model {args.output}`")
        elif diff > tolerance:
            _log(f"error: the exported model differs from the Keras model by more than {tolerance}")
            return 3
    return 0


def cmd_list_encoders(args):
    from backbones.registry import get_spec

    import keras_seg

    for name in keras_seg.list_encoders():
        weights = sorted(get_spec(name).pretrained_weights)
        _log(f"{name:28s} {', '.join(weights) if weights else '-'}")
    return 0


# -- demo --------------------------------------------------------------------------------


def cmd_demo(args):
    import keras
    import numpy as np

    from keras_seg import training
    from keras_seg.data.visualize import save_prediction_grid

    t0 = time.perf_counter()
    args.resume = False
    args.data = "synthetic"
    _log(f"keras-seg demo: {args.arch} / {args.encoder} on synthetic {args.mode} shapes, {keras.backend.backend()} backend")
    model, history, run, val_loader, seconds = train_run(args, demo=True)
    scores = training.evaluate_masks(model, val_loader, run["mode"], class_names=run["class_names"] or None)
    _log(training.format_metrics_table(scores))
    iou = scores["iou"]
    _log(f"held-out IoU: {iou:.4f} (target {args.target_iou}; {len(val_loader.dataset)} held-out images); "
         f"training took {seconds:.1f} s")

    _save_outputs(model, history, run, args.output, scores)
    images, targets = val_loader[0]
    out = training.predict_logits(model, images)
    pred = training.to_masks(out, run["mode"], True, 0.5, model.data_format)
    true = training.targets_to_masks(targets, run["mode"], val_loader.data_format)
    raw = np.stack([val_loader.dataset[i][0] for i in range(len(images))])
    n_colors = run["classes"] + (1 if run["mode"] == "binary" else 0)
    save_prediction_grid(os.path.join(args.output, "predictions.png"), raw, true, pred, num_classes=n_colors, max_rows=6)
    _log(f"saved: model.keras, smp/, history.png, predictions.png in {args.output}")

    status = 0
    if not args.no_export:
        tflite = os.path.join(args.output, "model.tflite")
        try:
            diff = _export(model, tflite, "litert", tuple(run["image_size"]), x=images[:1], overwrite=True)
            ok = diff <= 1e-3
            _log(f"TFLite: {tflite}; max |tflite - keras| = {diff:.2e} ({'ok' if ok else 'MISMATCH'})")
            if not ok:
                status = 3
        except Exception as e:  # report, keep the trained model
            _log(f"TFLite export failed: {type(e).__name__}: {str(e)[-2000:]}")
            status = 3
    _log(f"total time: {time.perf_counter() - t0:.1f} s")
    if iou < args.target_iou:
        _log(f"FAILED: IoU {iou:.4f} < {args.target_iou}")
        return 1
    return status


# -- argument parsing ----------------------------------------------------------------------


def _add_model_args(p, demo=False):
    p.add_argument("--arch", default="unet", help="architecture (unet, fpn, ...; default unet)")
    p.add_argument("--encoder", default="resnet18", help="encoder name (default resnet18; see list-encoders)")
    p.add_argument("--encoder-depth", type=int, default=3 if demo else None, help="encoder depth (architecture default)")
    p.add_argument("--decoder-channels", type=_int_list, default=[32, 16, 8] if demo else None,
                   help="comma-separated decoder channels (Unet-style architectures)")
    p.add_argument("--encoder-weights", type=_none_or_str, default=None,
                   help="pretrained encoder weights (e.g. imagenet; needs the network or a cache) or none (default)")
    p.add_argument("--data-format", choices=("channels_last", "channels_first"), default=None,
                   help="default: channels_first on torch, channels_last on tensorflow/jax (the fast layouts)")


# evaluate takes these from the run it scores when they are not given
RUN_DATA_DEFAULTS = {"seed": 0, "val_split": "val", "val_fraction": 0.2, "train_samples": 1024, "val_samples": 128}


def _add_data_args(p, train=True, demo=False):
    """The data options; ``train=False`` (evaluate): unset ones come from the run (``_run_data_args``)."""
    defaults = RUN_DATA_DEFAULTS if (train or demo) else dict.fromkeys(RUN_DATA_DEFAULTS)
    if not demo:
        p.add_argument("--data", default="synthetic" if train else None,
                       help="a folder (images/ + masks/, or train/ val/ of those) or 'synthetic'"
                       + ("" if train else " (default: the run's data)"))
    p.add_argument("--mode", choices=("binary", "multiclass", "multilabel"), default="binary" if (train or demo) else None)
    if not demo:
        p.add_argument("--classes", type=int, default=None, help="output channels (binary: 1; multiclass: classes incl. background)")
    p.add_argument("--image-size", type=_image_size, default=(64, 64) if demo else None, help="N or HxW: resize (and crop) to this size")
    p.add_argument("--batch-size", type=int, default=16 if demo else 8)
    p.add_argument("--train-samples", type=int, default=defaults["train_samples"], help="synthetic data: training samples")
    p.add_argument("--val-samples", type=int, default=defaults["val_samples"], help="synthetic data: held-out samples")
    p.add_argument("--val-split", default=defaults["val_split"], help="split folder (or synthetic split) to evaluate on")
    p.add_argument("--val-fraction", type=float, default=defaults["val_fraction"],
                   help="folder without split folders: held-out fraction")
    p.add_argument("--ignore-index", type=int, default=None, help="mask value to ignore (e.g. 255)")
    p.add_argument("--label-map", type=_label_map, default=None,
                   help="raw mask value -> class, e.g. 0:0,255:1 for binary masks saved as 0/255")
    p.add_argument("--convert-channels", action="store_true", help="convert images with another channel count instead of failing")
    p.add_argument("--no-validate", dest="validate", action="store_false", help="skip reading every file before training")
    p.add_argument("--preprocessing", choices=("auto", "imagenet", "unit"), default="auto",
                   help="input normalisation: the encoder's ImageNet mean/std (auto), or [0, 1] scaling (unit)")
    p.add_argument("--seed", type=int, default=defaults["seed"])
    p.add_argument("--threads", type=_threads_arg, default="auto", help="torch CPU threads (auto: 1 on an oversubscribed CPU)")


def _add_train_args(p, demo=False):
    p.add_argument("--epochs", type=int, default=8 if demo else 10)
    p.add_argument("--lr", type=float, default=2e-3 if demo else 1e-3, help="Adam learning rate")
    p.add_argument("--no-cosine", dest="cosine", action="store_false", help="constant learning rate (default: cosine decay)")
    p.add_argument("--output", "--out", dest="output", default="keras-seg-demo" if demo else "keras-seg-run",
                   help="output folder")
    p.add_argument("--metrics", type=lambda v: [m for m in v.split(",") if m], default=["iou"] if demo else None,
                   help="metrics shown during training (comma-separated of iou,f1,accuracy,precision,recall)")
    p.add_argument("--mixed-precision", choices=("mixed_float16", "mixed_bfloat16"), default=None)
    p.add_argument("--freeze-encoder", action="store_true", help="train the decoder and heads only")
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--workers", type=int, default=1, help="data loading workers (keras PyDataset)")
    p.add_argument("--multiprocessing", action="store_true", help="load data in processes rather than threads")
    p.add_argument("--data-parallel", action="store_true", help="all devices: DataParallel (JAX) / MirroredStrategy (TF)")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept (0: all)")
    _add_verbose(p, fit=True)


VERBOSE_LOGS = "logs"


def _verbosity(value):
    if value in ("0", "1", "2"):
        return int(value)
    if value == VERBOSE_LOGS:
        return value
    raise argparse.ArgumentTypeError(f"--verbose takes 0, 1 or 2 (or no value), got {value!r}")


def _fit_verbosity(verbose):
    return 1 if verbose == VERBOSE_LOGS else verbose


def _add_verbose(p, fit=False):
    """``--verbose`` alone: also show the backend's own log lines (TensorFlow's C++ logging),
    hidden by default (keras_seg/_startup.py). Training commands also take ``--verbose 0|1|2``."""
    logs = "also show TensorFlow's own log lines (hidden unless TF_CPP_MIN_LOG_LEVEL is set)"
    if fit:
        p.add_argument("--verbose", type=_verbosity, nargs="?", const=VERBOSE_LOGS, default=1, metavar="{0,1,2}",
                       help=f"progress: 0 none, 1 bar (default), 2 one line per epoch; --verbose alone: {logs}")
    else:
        p.add_argument("--verbose", action="store_true", help=logs)


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-seg", description="Train, evaluate, export keras-seg segmentation models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train a model (checkpoints each epoch; --resume continues)")
    _add_model_args(p)
    _add_data_args(p)
    _add_train_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="print IoU, F1, accuracy, precision, recall (of a run, its model or an export)")
    p.add_argument("model", help="a training output folder (its held-out data by default) or a .keras file")
    _add_data_args(p, train=False)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--model", dest="artifacts", action="append", metavar="ARTIFACT",
                   help="evaluate this export (.tflite, .onnx, SavedModel folder) instead of the Keras model; repeatable")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="print one JSON object per model (keys: model, format, iou, f1, ...) instead of the table; "
                        "with FILE: write them there and print the table")
    _add_verbose(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="write mask PNGs and overlay pictures for images")
    p.add_argument("model", help="a .keras file or a training output folder")
    p.add_argument("input", help="an image or a folder of images")
    p.add_argument("--output", default="predictions")
    p.add_argument("--mode", choices=("binary", "multiclass", "multilabel"), default=None)
    p.add_argument("--image-size", type=_image_size, default=None, help="resize to N or HxW for the model (masks are resized back)")
    p.add_argument("--preprocessing", choices=("auto", "imagenet", "unit"), default="auto")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--convert-channels", action="store_true")
    _add_verbose(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("convert", help="SMP checkpoint folder -> .keras")
    p.add_argument("checkpoint", help="folder written by SMP's save_pretrained (config.json + model.safetensors)")
    p.add_argument("output", help="the .keras file to write")
    p.add_argument("--data-format", choices=("channels_last", "channels_first"), default=None)
    p.add_argument("--allow-hub", action="store_true", help="treat CHECKPOINT as a Hugging Face hub repository id")
    _add_verbose(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="export a run's or a .keras model (tf_saved_model, litert, onnx) and check it")
    p.add_argument("model", help="a training output folder (knows its image size and data) or a .keras file")
    p.add_argument("output", help="path of the export (.tflite for litert, .onnx for onnx, a folder for tf_saved_model)")
    p.add_argument("--format", choices=("tf_saved_model", "litert", "onnx"), default="litert")
    p.add_argument("--image-size", type=_image_size, default=None)
    p.add_argument("--no-check", action="store_true", help="skip comparing the export with the Keras model")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest |export - keras| accepted (default 1e-3; quantized exports: not checked unless given)")
    p.add_argument("--quantize", default=None, metavar="{float16,dynamic,int8,int8_full}",
                   help="litert: float16 weights, dynamic-range int8, int8 (calibrated; normalisation statistics "
                        "in float) or int8_full (every op int8); float input/output")
    p.add_argument("--calibration-data", default=None, metavar="FOLDER",
                   help="int8 / int8_full: images to calibrate on, a folder or 'synthetic' (default: the run's training data)")
    p.add_argument("--calibration-samples", type=int, default=100, help="int8 / int8_full: calibration images (default 100)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing export of the same format at OUTPUT (never anything else)")
    _add_verbose(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("list-encoders", help="list the encoders and their pretrained weights")
    _add_verbose(p)
    p.set_defaults(func=cmd_list_encoders)

    p = sub.add_parser("demo", help=f"train a small Unet on synthetic shapes to IoU >= {DEMO_IOU_TARGET} and export it")
    _add_model_args(p, demo=True)
    _add_data_args(p, demo=True)
    _add_train_args(p, demo=True)
    p.add_argument("--no-export", action="store_true", help="skip the TFLite export and check")
    p.add_argument("--target-iou", type=float, default=DEMO_IOU_TARGET,
                   help=f"exit with status 1 below this held-out IoU (default {DEMO_IOU_TARGET})")
    p.set_defaults(func=cmd_demo, arch="unet", classes=None, ignore_index=None)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError) as e:  # ValueError: DatasetError and argument checks in the library
        if os.environ.get("KERAS_SEG_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
