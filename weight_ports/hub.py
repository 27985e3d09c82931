"""Hugging Face hub access: download with huggingface_hub, cached, with a clear offline error."""

import os


class WeightsUnavailableError(RuntimeError):
    """The hub cannot be reached and no cached copy of a file exists."""


def download_file(repo_id, filename, revision=None, what=None):
    """Path to ``filename`` of hub repository ``repo_id`` at ``revision``, downloading it if needed.

    Files come from (1) ``$KERAS_SEG_WEIGHTS_DIR/<repo name>/<filename>`` when that
    folder holds them, else (2) the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``),
    downloading into it when online. Offline without a copy, the error says what to
    download and where to put it.
    """
    local_dir = os.environ.get("KERAS_SEG_WEIGHTS_DIR")
    if local_dir:
        candidate = os.path.join(local_dir, repo_id.split("/")[-1], filename)
        if os.path.isfile(candidate):
            return candidate
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id, filename, revision=revision)
    except Exception as e:  # offline, no cache, network failure, missing repo
        label = what or f"{repo_id}/{filename}"
        rev = f" --revision {revision}" if revision else ""
        raise WeightsUnavailableError(
            f"Could not get {label}: {filename} of hub repository {repo_id!r}"
            f"{' at revision ' + revision if revision else ''} is not cached and could not be downloaded "
            f"({type(e).__name__}: {e}).\n"
            f"On a machine with network access run `hf download {repo_id} {filename}{rev}` "
            f"(or `huggingface-cli download ...`), then either copy the Hugging Face cache folder "
            f"(HF_HUB_CACHE, default ~/.cache/huggingface/hub) here, or place the file at "
            f"$KERAS_SEG_WEIGHTS_DIR/{repo_id.split('/')[-1]}/{filename}."
        ) from e
