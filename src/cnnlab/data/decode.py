"""Decode one image file into a uint8 array: the single decoder behind training, `data` and serving.

Every pixel that reaches a model passes through :func:`decode_image`, so training and serving can
never disagree about orientation, alpha or bit depth. The rules, per Pillow mode:

- EXIF orientation (tags 1-8) is applied first, as ``ImageOps.exif_transpose`` does.
- ``1``, ``L``, ``P``, ``RGB``, ``CMYK``, ``YCbCr``: Pillow's own conversion to RGB. CMYK (and
  YCCK, which libjpeg hands over as CMYK) uses Pillow's plain inversion, without an ICC profile.
- Alpha (``RGBA``, ``LA``, ``PA``, ``P``/``L``/``RGB`` with a tRNS transparency key) is composited
  on ``background`` (white by default): transparent pixels become the background, never black.
- 16-bit data (``I;16*``, and ``I``, which Pillow uses for 16-bit PNG/TIFF) is scaled by 1/257,
  which maps 0..65535 onto 0..255 exactly; it is not clipped. 16-bit RGB PNGs arrive from Pillow
  already reduced to 8 bits (the high byte).
- 32-bit float (``F``, e.g. a float TIFF): values inside [0, 1] are scaled by 255; any other range
  is stretched linearly from its min..max onto 0..255 (a constant image gives 0). NaN/Inf become 0.
- Multi-frame files (animated GIF/WebP/PNG, multi-page TIFF): frame 0 only; :func:`decode_with_info`
  reports ``n_frames > 1`` so loaders can note it.

Safety: the pixel count is checked against cnnlab's own limit (``max_pixels``, 40 MP by default,
never unlimited) right after the header is read and before any pixel is allocated, which rejects
decompression bombs; ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never switched on, so a truncated file
is an error, not a half-grey picture; only raster formats are opened (no EPS/PS, which would start
Ghostscript). Decoding happens fully (``load()`` and conversion) inside one guarded block, and every
failure Pillow can raise becomes :class:`~cnnlab.errors.InvalidImageError` with the path and reason.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.errors import ConfigError, InvalidImageError

# 40 MP: a 20 MP phone photo loads with room to spare; Pillow's own default (~89 MP warning,
# ~179 MP error) is looser than we want for a training set.
DEFAULT_MAX_PIXELS = 40_000_000
# Raster formats only. EPS/PS would shell out to Ghostscript; PSD/FITS/ICNS/SVG are no training
# data. "JPEG" also admits camera multi-picture files (Pillow then reports format "MPO").
DEFAULT_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM")
WHITE = (255, 255, 255)

# Everything Pillow's decoders are known to raise on hostile or broken input (Pillow's own fuzz
# tests accept the same families). Anything else is a bug and is allowed to surface.
_PIL_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError,
    ZeroDivisionError, OverflowError, MemoryError, AttributeError,
)


@dataclass(frozen=True)
class Decoded:
    """A decoded image plus what the file said about itself."""

    pixels: np.ndarray          # (H, W, C) uint8, C = 3 for RGB, 1 for L
    format: str                 # Pillow's format name, e.g. "JPEG"
    source_mode: str            # the mode before conversion, e.g. "CMYK", "I;16", "P"
    n_frames: int               # > 1: only frame 0 was used
    orientation: int            # EXIF orientation tag that was applied (1 = none)

    @property
    def notes(self) -> list[str]:
        """Anything worth a line in a report (multi-frame input)."""
        return [f"{self.n_frames} frames; used frame 0"] if self.n_frames > 1 else []


def _describe(source, name: str | None) -> str:
    if name is not None:
        return name
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<bytes>"


def image_error(where: str, reason: str) -> InvalidImageError:
    """InvalidImageError("<where>: <reason>"), both also kept as attributes for reports."""
    err = InvalidImageError(f"{where}: {reason}")
    err.path, err.reason = where, reason
    return err


def _read(source, where: str) -> bytes:
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).read_bytes()
        except OSError as e:
            raise image_error(where, f"cannot read file ({e.strerror or e})") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    raise TypeError(f"expected a path or bytes; got {type(source).__name__}")


def _sniff(data: bytes) -> str | None:
    """A friendlier reason for common non-images (a web page or PDF saved with a .jpg name)."""
    if not data:
        return "empty file (0 bytes)"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%pdf"):
        return "a PDF document, not an image"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml", b"<svg", b"<!--")):
        return "an HTML/XML text file, not an image (a web page saved under an image name?)"
    if head.startswith((b"pk\x03\x04", b"\x1f\x8b")):
        return "an archive (zip/gzip), not an image"
    if b"\x00" not in head and all(32 <= c < 127 or c in b"\t\r\n" for c in head[:256]):
        return "a text file, not an image"
    return None


def _reason(e: BaseException, data: bytes, formats, stage: str) -> str:
    from PIL import Image

    sniffed = _sniff(data)
    if sniffed:
        return sniffed
    if isinstance(e, Image.UnidentifiedImageError):
        allowed = ", ".join(formats) if formats else "any Pillow format"
        return f"not a recognised image (allowed formats: {allowed})"
    if "truncated" in str(e).lower():
        return f"truncated image data ({e})"
    return f"{stage} ({type(e).__name__}: {e})"


def _guarded(steps, data: bytes, formats, where: str, stage: str):
    """Run Pillow work, mapping every failure it can raise to InvalidImageError(where, reason)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow warns about what it then fails on (or repairs); the error or the result is
            # what counts, and thousands of warnings from worker processes would bury the report
            warnings.filterwarnings("ignore", module=r"PIL\.")
            return steps()
    except InvalidImageError:
        raise                 # our own pixel-limit check (InvalidImageError is also a ValueError)
    except Image.DecompressionBombError as e:
        raise image_error(where, f"rejected as a decompression bomb ({e})") from None
    except _PIL_ERRORS as e:
        raise image_error(where, _reason(e, data, formats, stage)) from None


def _check_limit(size: tuple[int, int], max_pixels: int, where: str) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise image_error(where, f"image declares an empty size {w}x{h}")
    if w * h > max_pixels:
        raise image_error(
            where, f"image declares {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,} "
            f"(a decompression bomb, or a very large photo). Downscale it, or raise max_pixels "
            f"if you trust the file.")


def _open(data: bytes, formats, max_pixels: int, where: str):
    """Open lazily (header only) and check the declared size before any pixel is allocated."""
    from PIL import Image

    with warnings.catch_warnings():
        # our own limit applies below; Pillow's looser warning would only be noise
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data), formats=list(formats) if formats else None)
    _check_limit(img.size, max_pixels, where)
    return img


def _alpha_to_background(rgb: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """Composite (H, W, C) uint8 colour over `background` using (H, W) uint8 alpha, rounded."""
    a = alpha.astype(np.uint32)[..., None]
    bg = np.asarray(background, dtype=np.uint32).reshape(1, 1, -1)
    out = (rgb.astype(np.uint32) * a + bg * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _to_uint8(img, background) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) or (H, W, 1) uint8, by the rules in the module docstring."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        raw = np.asarray(img)
        arr = np.rint(np.clip(raw.astype(np.float64), 0, 65535) / 257.0)  # 65535/257 = 255 exactly
        grey = np.repeat(arr.astype(np.uint8)[..., None], 3, axis=2)
        trns = img.info.get("transparency")
        if isinstance(trns, int):                        # tRNS key colour of a 16-bit grey PNG
            alpha = np.where(raw == trns, 0, 255).astype(np.uint8)
            return _alpha_to_background(grey, alpha, background)
        return grey[..., :1]
    if mode == "F":
        arr = np.array(img, dtype=np.float32)                   # a writable copy, worked in place
        np.nan_to_num(arr, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            arr -= lo
            arr *= (1.0 / (hi - lo)) if hi > lo else 0.0
        arr *= 255.0
        np.clip(arr, 0, 255, out=arr)
        return np.rint(arr, out=arr).astype(np.uint8)[..., None]
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        return _alpha_to_background(rgba[..., :3], rgba[..., 3], background)
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))[..., None]
    return np.asarray(img.convert("RGB"))


def decode_with_info(source, mode: str = "RGB", background=WHITE,
                     max_pixels: int = DEFAULT_MAX_PIXELS, formats=DEFAULT_FORMATS,
                     name: str | None = None) -> Decoded:
    """Decode a path or bytes into uint8 (H, W, C) plus format, source mode and frame count.

    `name` labels the image in error messages (e.g. an archive member); default: the path.
    """
    if mode not in ("RGB", "L"):
        raise ConfigError(f"mode must be 'RGB' or 'L'; got {mode!r}")
    if max_pixels is None or int(max_pixels) < 1:
        raise ConfigError(f"max_pixels must be a positive pixel count; got {max_pixels!r}. "
                          f"No limit is not offered: decompression bombs would get through.")
    if len(background) != 3 or not all(0 <= int(v) <= 255 for v in background):
        raise ConfigError(f"background must be three 0..255 values (R, G, B); got {background!r}")
    where = _describe(source, name)
    data = _read(source, where)

    def steps():
        from PIL import ImageOps

        img = _open(data, formats, max_pixels, where)
        n_frames = 1
        if getattr(img, "is_animated", False):
            n_frames = int(getattr(img, "n_frames", 2))
            img.seek(0)
            _check_limit(img.size, max_pixels, where)     # a later frame may have grown it
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        img.load()
        fmt, source_mode = img.format or "", img.mode
        if orientation != 1:
            img = ImageOps.exif_transpose(img)
        return _to_uint8(img, background), fmt, source_mode, n_frames, orientation

    pixels, fmt, source_mode, n_frames, orientation = _guarded(steps, data, formats, where,
                                                               "cannot decode")
    if mode == "RGB" and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif mode == "L" and pixels.shape[2] == 3:
        # ITU-R 601-2 luma, exactly as Pillow's convert("L") computes it
        from PIL import Image

        pixels = np.asarray(Image.fromarray(pixels, "RGB").convert("L"))[..., None]
    return Decoded(np.ascontiguousarray(pixels), fmt, source_mode, n_frames,
                   orientation if 1 <= orientation <= 8 else 1)


def decode_image(source, mode: str = "RGB", background=WHITE,
                 max_pixels: int = DEFAULT_MAX_PIXELS, formats=DEFAULT_FORMATS,
                 name: str | None = None) -> np.ndarray:
    """Decode a path or bytes into a uint8 (H, W, C) array by the rules of this module."""
    return decode_with_info(source, mode, background, max_pixels, formats, name).pixels


@dataclass(frozen=True)
class ImageHeader:
    """What the header says, without decoding the pixel data."""

    format: str
    mode: str
    width: int                  # as stored; EXIF orientations 5-8 swap it with height on decode
    height: int
    orientation: int = 1


def probe_image(source, max_pixels: int = DEFAULT_MAX_PIXELS, formats=DEFAULT_FORMATS,
                name: str | None = None) -> ImageHeader:
    """Check an image header (format, size, pixel limit, chunk checksums) without decoding."""
    if max_pixels is None or int(max_pixels) < 1:
        raise ConfigError(f"max_pixels must be a positive pixel count; got {max_pixels!r}")
    where = _describe(source, name)
    data = _read(source, where)

    def steps():
        img = _open(data, formats, max_pixels, where)
        fmt, mode, (w, h) = img.format or "", img.mode, img.size
        has_exif = "exif" in img.info or fmt == "TIFF"
        img.verify()          # walks the file's structure (e.g. PNG CRCs) without decoding pixels
        # verify() leaves the image unusable: read the EXIF orientation from a fresh open, and
        # only when there is EXIF to read (most files have none; this halves the cost of a scan)
        orientation = 1
        if has_exif:
            orientation = int(_open(data, formats, max_pixels, where).getexif().get(0x0112, 1) or 1)
        return ImageHeader(fmt, mode, w, h, orientation if 1 <= orientation <= 8 else 1)

    header = _guarded(steps, data, formats, where, "cannot read the header")
    return header


FITS = ("crop", "resize")


def fit_image(pixels: np.ndarray, image_size: int, fit: str = "crop") -> np.ndarray:
    """Resize (H, W, C) uint8 pixels to (S, S, C): shorter side + centre crop, or a plain resize.

    "crop" (default) keeps the aspect ratio: the centred square of side min(H, W) is resampled to
    S x S, which equals resizing the shorter side to S and centre-cropping, in one resampling step
    (and without first blowing a 1 x 10,000 strip up to 32 x 320,000). "resize" stretches the whole
    image to S x S. Both use Pillow's antialiased bilinear filter; an image already S x S is
    returned untouched (CIFAR's 32 x 32 JPEGs are not blurred). There is no minimum side: a 1-pixel
    strip is stretched like anything else.
    """
    from PIL import Image

    if fit not in FITS:
        raise ConfigError(f"fit must be one of {FITS}; got {fit!r}")
    if int(image_size) < 1:
        raise ConfigError(f"image_size must be >= 1; got {image_size}")
    h, w, c = pixels.shape
    if h == w == image_size:
        return pixels
    img = Image.fromarray(pixels[..., 0] if c == 1 else pixels, "L" if c == 1 else "RGB")
    box = None
    if fit == "crop":
        side = min(h, w)
        left, top = (w - side) / 2, (h - side) / 2
        box = (left, top, left + side, top + side)
    out = np.asarray(img.resize((image_size, image_size), Image.Resampling.BILINEAR, box=box))
    return out.reshape(image_size, image_size, c)
