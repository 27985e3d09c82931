"""SMP's checkpoint format: config.json (with _model_class) + model.safetensors + README.md.

``save_pretrained`` writes torch-layout tensors under SMP's keys, so
``segmentation_models_pytorch.from_pretrained`` loads the folder; ``from_pretrained``
reads folders written by SMP (or by keras-seg), locally or from the Hugging Face hub.
"""

import json
import os
import warnings

from backbones.registry import restored_encoder
from weight_ports.atomic import write_text
from weight_ports.readers import read_state_dict, write_safetensors
from weight_ports.translate import state_dict

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _looks_like_path(name):
    """A local path rather than a hub id ("user/name" or "name")."""
    name = str(name)
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or name.endswith("/")
    )


def _read_config(path_or_repo_id, revision=None):
    local = os.path.join(os.fspath(path_or_repo_id), "config.json")
    if os.path.isfile(local):
        return local, os.fspath(path_or_repo_id)
    if os.path.isdir(os.fspath(path_or_repo_id)):
        raise FileNotFoundError(f"{path_or_repo_id!r} has no config.json; it is not a save_pretrained folder.")
    if not isinstance(path_or_repo_id, str) or _looks_like_path(path_or_repo_id):
        raise FileNotFoundError(f"No such folder: {os.fspath(path_or_repo_id)!r} (a save_pretrained folder or a hub repository id).")
    from weight_ports.hub import download_file

    return download_file(str(path_or_repo_id), "config.json", revision=revision), None


def _load_config(config_path):
    """config.json as a dict; a file that is not a JSON object -> ValueError naming it."""
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{config_path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}).") from None
    except UnicodeDecodeError:
        raise ValueError(f"{config_path} is not a text file; expected the JSON written by save_pretrained.") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} holds a JSON {type(config).__name__}; expected an object of model settings.")
    return config


def _weights_path(folder, repo_id, revision):
    if folder is not None:
        for name in WEIGHT_FILES:
            if os.path.isfile(os.path.join(folder, name)):
                return os.path.join(folder, name)
        raise FileNotFoundError(f"{folder!r} holds no weights file; expected one of {WEIGHT_FILES}.")
    from weight_ports.hub import download_file

    return download_file(repo_id, "model.safetensors", revision=revision)


def from_pretrained(path_or_repo_id, strict=True, expected_class=None, **overrides):
    """Build the model a save_pretrained folder (or hub repo) describes and load its weights.

    Keyword overrides replace config values (e.g. ``classes=5``); with ``strict=False``
    tensors whose shapes no longer fit are skipped with a warning, SMP's fine-tuning
    pattern. Encoder weights are never downloaded: the checkpoint holds them all.
    """
    from keras_seg.architectures import get_architecture

    revision = overrides.pop("revision", None)
    config_path, folder = _read_config(path_or_repo_id, revision)
    config = _load_config(config_path)
    class_name = config.pop("_model_class", None)
    if class_name is None:
        raise ValueError(f"{config_path} has no '_model_class'; it was not written by save_pretrained.")
    cls = get_architecture(class_name)
    if expected_class is not None and not issubclass(cls, expected_class) and expected_class.__name__ != "SegmentationModel":
        raise ValueError(f"The checkpoint holds a {class_name}, not a {expected_class.__name__}.")
    portable = config.get("_encoder_spec")  # an encoder described by data (keras-hub), saved by keras-seg
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config.update(overrides)
    config.setdefault("encoder_weights", None)
    build_config = dict(config, encoder_weights=None)
    try:
        with restored_encoder(config.get("encoder_name"), portable):
            model = cls(**build_config)
    except TypeError as e:  # unknown or missing settings
        raise ValueError(f"{config_path} does not describe a {class_name}: {e}") from None
    model._smp_config["encoder_weights"] = config["encoder_weights"]
    model.load_torch_state_dict(read_state_dict(_weights_path(folder, str(path_or_repo_id), revision)), strict=strict)
    return model


MODEL_CARD = """---
library_name: keras-seg
license: mit
pipeline_tag: image-segmentation
tags:
- segmentation-models-pytorch
- semantic-segmentation
- keras
---
# {model_class} Model Card

Saved by keras-seg in segmentation_models_pytorch's format. Load it with either library:

```python
import keras_seg
model = keras_seg.from_pretrained("<save-directory-or-this-repo>")

import segmentation_models_pytorch as smp
model = smp.from_pretrained("<save-directory-or-this-repo>")
```

## Model init parameters
```json
{params}
```

## Model metrics
```json
{metrics}
```

## Dataset
Dataset name: {dataset}
"""


# A model on a keras-hub encoder: keras-seg's own checkpoint, not SMP's (MODEL_CARD with its loading
# section and library tag replaced; _replaced fails at import if MODEL_CARD stops holding them).
def _replaced(text, old, new):
    if old not in text:
        raise AssertionError(f"MODEL_CARD no longer holds {old[:40]!r}...")
    return text.replace(old, new)


KERAS_ONLY_CARD = _replaced(_replaced(
    MODEL_CARD,
    """Saved by keras-seg in segmentation_models_pytorch's format. Load it with either library:

```python
import keras_seg
model = keras_seg.from_pretrained("<save-directory-or-this-repo>")

import segmentation_models_pytorch as smp
model = smp.from_pretrained("<save-directory-or-this-repo>")
```""",
    """Saved by keras-seg. Its encoder is a keras-hub backbone, which segmentation_models_pytorch does not
have, so only keras-seg loads it (SMP stops at the unknown encoder name):

```python
import keras_seg
model = keras_seg.from_pretrained("<save-directory-or-this-repo>")
```""",
), "- segmentation-models-pytorch\n", "- keras-hub\n")


def save_pretrained(model, save_directory, dataset=None, metrics=None, push_to_hub=False, repo_id=None, **hub_kwargs):
    """Write ``model`` in SMP's format; optionally upload the folder with huggingface_hub.

    Everything is prepared first, then each file is written atomically (a temporary
    file renamed into place), so an error leaves no half-written file.
    """
    save_directory = os.fspath(save_directory)
    os.makedirs(save_directory, exist_ok=True)
    config = dict(model.config)
    if callable(config.get("activation")):
        raise ValueError("A model with a callable activation cannot be saved in SMP's format; use an activation name.")
    config["_model_class"] = type(model).__name__
    portable = model.get_config().get("_encoder_spec")
    if portable is not None:
        config["_encoder_spec"] = portable
        warnings.warn(
            f"{save_directory} holds a keras-seg checkpoint that segmentation_models_pytorch cannot load: encoder "
            f"{config.get('encoder_name')!r} is a keras-hub backbone, which SMP does not have (its tensors are in Keras "
            "layout). keras_seg.from_pretrained reads it back.", UserWarning, stacklevel=3)
    params = {k: v for k, v in config.items() if not k.startswith("_")}
    card = (KERAS_ONLY_CARD if portable is not None else MODEL_CARD).format(
        model_class=type(model).__name__,
        params=json.dumps(params, indent=2, sort_keys=True),
        metrics=json.dumps(metrics, indent=2) if metrics is not None else "[More Information Needed]",
        dataset=dataset if dataset is not None else "[More Information Needed]",
    )
    tensors = state_dict(model)
    metadata = {"format": "keras-seg" if portable is not None else "pt"}
    write_safetensors(tensors, os.path.join(save_directory, "model.safetensors"), metadata=metadata)
    write_text(os.path.join(save_directory, "config.json"), json.dumps(config, indent=2, sort_keys=True))
    write_text(os.path.join(save_directory, "README.md"), card)
    if push_to_hub:
        from huggingface_hub import HfApi

        if repo_id is None:
            raise ValueError("push_to_hub=True needs repo_id='user/name'.")
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True, private=hub_kwargs.pop("private", None))
        api.upload_folder(repo_id=repo_id, folder_path=save_directory, **hub_kwargs)
    return save_directory
