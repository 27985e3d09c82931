"""Atomic writing of files and folders, and clean-up of what killed writers left behind.

A writer gets a hidden temporary path next to the target (``.<name>.<pid>-<random>.tmp``)
that is renamed onto the target only when the writer finished, so a failure or a kill
never leaves a half-written target. The process id in the name lets
``remove_stale_temporaries`` delete the leftovers of processes that no longer run
without touching those of a writer still at work. Only the standard library is used:
every package of keras-seg may import this module.
"""

import contextlib
import os
import re
import shutil
import tempfile

# .<target name>.<pid>-<mkstemp/mkdtemp random part>.tmp[<suffix>] or .old (a folder being replaced)
_TEMPORARY_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[A-Za-z0-9_]+\.(?:tmp|old)(?:\.[^.]*)?$")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prefix(path):
    return f".{os.path.basename(path)}.{os.getpid()}-"


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary file name next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` defaults to ``path``'s extension (some writers, such as ``model.save``,
    check it). An existing folder at ``path`` is never replaced.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder; refusing to replace it with a file.")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder next to ``path``; it replaces ``path`` on success.

    An existing folder at ``path`` is replaced as a whole (callers decide whether they
    may); an existing file is never replaced by a folder.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)):
        raise FileExistsError(f"{path} exists and is not a folder; refusing to replace it with a folder.")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=_prefix(path), suffix=".old", dir=parent)
            os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path, text):
    """Write a UTF-8 text file atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True
    return True


def stale_temporaries(folder):
    """The temporaries in ``folder`` left by writers whose process no longer runs."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in sorted(os.listdir(folder)):
        m = _TEMPORARY_RE.match(name)
        if m and not _process_alive(int(m.group("pid"))):
            found.append(os.path.join(folder, name))
    return found


def remove_stale_temporaries(folder):
    """Delete what killed writers left in ``folder`` (see ``stale_temporaries``); returns the paths."""
    stale = stale_temporaries(folder)
    for path in stale:
        _remove(path)
    return stale
