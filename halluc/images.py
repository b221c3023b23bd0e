"""Images a user hands in: regular files only, a pixel cap of our own, one clear error per file.

    im = open_image(path)               # PIL RGB, or BadImage("cannot read image x.png: ...")
    w, h = verify_image(path)           # decodes every pixel once (training data is checked up front)

The cap (``HALLUC_MAX_IMAGE_PIXELS``, default 64 Mpx) is checked from the header, before a pixel is
decoded: a 144-Mpx PNG would otherwise take 432 MB as RGB, and Pillow's own guard only fires at
178 Mpx, by raising an exception nobody catches. A FIFO or a device is refused before ``open``
(which would block on a FIFO forever). ``BadImage`` is a ValueError: callers that decode a batch
record it against that one input and go on.
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

DEFAULT_MAX_PIXELS = 64_000_000


class BadImage(ValueError):
    """One image that cannot be used (missing, not a file, not an image, corrupt, too large)."""


def max_pixels() -> int:
    raw = os.environ.get("HALLUC_MAX_IMAGE_PIXELS")
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise BadImage(f"HALLUC_MAX_IMAGE_PIXELS={raw!r}: expected a positive integer (pixels)")
    return n


def _pillow_open():
    """Pillow's own ``Image.open``. Importing ultralytics anywhere (user code, a test module) swaps it
    for a version that meets a corrupt file with a pip install of a HEIF plugin and then
    ModuleNotFoundError, which would stop a whole batch; the original is kept in its patches module."""
    from PIL import Image
    if getattr(Image.open, "__module__", "").startswith("ultralytics"):
        from ultralytics.utils import patches
        Image.open = getattr(patches, "_image_open", Image.open)
    return Image.open


def _check_file(path: Path) -> None:
    from halluc.paths import file_problem
    problem = file_problem(path)
    if problem == "no such file":
        raise BadImage(f"image not found: {path}")
    if problem:
        raise BadImage(f"cannot read image {path}: {problem}")


def _decoded(path: Path, limit: int | None):
    """The opened and fully decoded image (not yet converted), or BadImage."""
    from PIL import Image, UnidentifiedImageError
    limit = limit or max_pixels()
    _check_file(path)
    opener = _pillow_open()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = opener(path)
            try:
                w, h = im.size
                if w * h > limit:
                    raise BadImage(f"image {path}: {w}x{h} = {w * h / 1e6:.1f} Mpx, over the cap of "
                                   f"{limit / 1e6:g} Mpx (HALLUC_MAX_IMAGE_PIXELS raises it)")
                im.load()
            except BaseException:
                im.close()
                raise
        return im
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImage(f"image {path}: over the cap of {limit / 1e6:g} Mpx, a decompression bomb to Pillow "
                       f"({str(e).split(',')[0]})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        raise BadImage(f"cannot read image {path}: corrupt or not an image ({e.__class__.__name__})") from None


def open_image(path, max_pixels: int | None = None):
    """A PIL RGB image, or BadImage saying what is wrong with the file."""
    path = Path(path)
    im = _decoded(path, max_pixels)
    try:
        return im.convert("RGB")
    except (OSError, ValueError, MemoryError) as e:
        raise BadImage(f"cannot read image {path}: corrupt or not an image ({e.__class__.__name__})") from None
    finally:
        im.close()


def verify_image(path, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) after decoding every pixel; BadImage where that fails."""
    im = _decoded(Path(path), max_pixels)
    try:
        return im.size
    finally:
        im.close()


def image_problem(path) -> str | None:
    """Why the image at ``path`` cannot be used (missing, not a regular file, corrupt, over the cap), or
    None. Each path is decoded once per process, however many records name it (training data and
    negatives check every image up front, not in the middle of a run)."""
    try:
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        stamp = None
    return _problem(str(path), stamp, max_pixels())     # a changed file or cap is checked again


@functools.lru_cache(maxsize=4096)
def _problem(path: str, stamp, cap: int) -> str | None:
    try:
        verify_image(path, cap)
    except BadImage as e:
        return str(e)
    return None
