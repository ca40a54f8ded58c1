"""Builders for image bytes, bad files (RELIABILITY.md C1) and small image trees for tests/data."""

import hashlib
import io
import os
import struct
import types
import zlib

import numpy as np
import pytest
from PIL import Image


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def noise(h: int, w: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    c = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    a = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    return Image.fromarray(a[..., 0] if c == 1 else a, mode)


def solid(colour, size=(12, 10)) -> bytes:
    """A small PNG of one colour: the pixel value tells which class a sample came from."""
    return encode(Image.new("RGB", size, colour))


def truncated_jpeg() -> bytes:
    """Valid header, scan data cut short: Image.open succeeds, load() fails (C2)."""
    data = encode(noise(64, 64, seed=1), "JPEG", quality=90)
    return data[: len(data) * 6 // 10]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(width: int, height: int, depth: int, colour_type: int, rows: bytes | None) -> bytes:
    """A PNG written by hand: lets tests declare any size (bombs) or bit depth (16-bit RGB)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    idat = zlib.compress(rows if rows is not None else b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


# Every kind of bad file of RELIABILITY.md C1, by name.
BAD_FILES = {
    "truncated.jpg": truncated_jpeg(),
    "empty.jpg": b"",
    "random.png": np.random.default_rng(7).integers(0, 256, 300, dtype=np.uint8).tobytes(),
    "page.jpg": b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n",
    "notes.txt": b"some notes\n",
    ".DS_Store": b"\x00\x00\x00\x01Bud1" + bytes(32),
    "Thumbs.db": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64),
    "doc.jpg": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
}


def write_tree(root, files: dict) -> None:
    """Write {relpath: bytes} under root (None makes an empty folder)."""
    for rel, data in files.items():
        p = root / rel
        if data is None:
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def tree_hash(root) -> str:
    """Hash of every path, mode and content under root (for "source files are never modified")."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(f"{os.path.relpath(p, root)}\0{st.st_mode}\0{st.st_size}\0".encode())
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)


def class_tree(n_per_class: int = 5, classes=(("cat", RED), ("dog", BLUE))) -> dict:
    """{relpath: bytes} of a single tree whose classes have distinct colours."""
    files = {}
    for name, colour in classes:
        for i in range(n_per_class):
            files[f"{name}/{i:02d}.png"] = solid(colour, (12 + i, 10))
    return files


@pytest.fixture
def imgs():
    """The builders above, as one namespace."""
    return types.SimpleNamespace(
        encode=encode, noise=noise, solid=solid, truncated_jpeg=truncated_jpeg, raw_png=raw_png,
        png_chunk=png_chunk, BAD_FILES=dict(BAD_FILES), write_tree=write_tree, tree_hash=tree_hash,
        class_tree=class_tree, RED=RED, GREEN=GREEN, BLUE=BLUE)
