"""Writing the output folder: every file atomically (temporary name, then rename)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError

# mkstemp creates 0600 files; outputs get the usual 0666 less the umask, like open() would.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def prepare_out_dir(path: Path) -> Path:
    """Create the output folder (and parents); refuse a path that is a file or unwritable."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: --out must be a folder, and this is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot create the output folder: {exc.strerror or exc}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{path}: the output folder is not writable")
    return path


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write to a temporary file in the same folder, then rename over ``path``."""
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(
            fd, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8"})
        ) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    return write_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


def write_json(payload: dict[str, Any], path: Path) -> Path:
    return write_atomic(path, to_json(payload) + "\n")


def to_json(payload: dict[str, Any]) -> str:
    """JSON with finite numbers only (NaN or inf in an output is a bug, never written)."""
    return json.dumps(_finite(payload), indent=2, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"refusing to write a non-finite number ({value}) to an output")
    return value
