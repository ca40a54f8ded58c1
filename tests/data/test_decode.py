import io
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from cnnlab.data.decode import (DEFAULT_MAX_PIXELS, decode_image, decode_with_info, fit_image,
                                probe_image)
from cnnlab.errors import ConfigError, InvalidImageError


def smooth_rgb(h=24, w=32):
    """A smooth colour image: survives JPEG with small error, unlike noise."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], -1)
    return a.astype(np.uint8)


# -- C3: the mode zoo ---------------------------------------------------------------------------

def test_rgb_png_is_exact(imgs):
    a = np.asarray(imgs.noise(5, 7, seed=3))
    out = decode_image(imgs.encode(Image.fromarray(a)))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and np.array_equal(out, a)


def test_grey_becomes_three_equal_channels_and_l_mode_keeps_one(imgs):
    g = np.asarray(imgs.noise(4, 6, mode="L"))
    data = imgs.encode(Image.fromarray(g, "L"))
    rgb = decode_image(data)
    assert rgb.shape == (4, 6, 3) and all(np.array_equal(rgb[..., c], g) for c in range(3))
    grey = decode_image(data, mode="L")
    assert grey.shape == (4, 6, 1) and np.array_equal(grey[..., 0], g)


def test_one_bit_maps_to_0_and_255(imgs):
    img = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1")
    out = decode_image(imgs.encode(img))
    assert set(np.unique(out)) == {0, 255} and out[0, 0, 0] == 0 and out[0, 1, 0] == 255


def test_rgba_is_composited_on_white_by_default_and_on_a_given_background(imgs):
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (200, 10, 10, 0)        # fully transparent: the colour must not show
    a[0, 1] = (200, 10, 10, 255)      # opaque
    a[1, 0] = (0, 0, 0, 128)          # half-transparent black over white -> mid grey
    data = imgs.encode(Image.fromarray(a, "RGBA"))
    out = decode_image(data)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (200, 10, 10)
    assert all(abs(int(v) - 127) <= 1 for v in out[1, 0])
    black = decode_image(data, background=(0, 0, 0))
    assert tuple(black[0, 0]) == (0, 0, 0) and tuple(black[0, 1]) == (200, 10, 10)


def test_la_and_palette_with_trns_use_the_background(imgs):
    la = Image.fromarray(np.array([[[50, 0], [50, 255]]], np.uint8), "LA")
    out = decode_image(imgs.encode(la))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == (50, 50, 50)

    p = Image.new("P", (2, 1))
    p.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    data = imgs.encode(p, transparency=0)
    assert Image.open(io.BytesIO(data)).info.get("transparency") == 0
    out = decode_image(data, background=(1, 2, 3))
    assert tuple(out[0, 0]) == (1, 2, 3) and tuple(out[0, 1]) == (200, 100, 0)


def test_sixteen_bit_grey_is_scaled_by_257_not_clipped(imgs):
    raw = np.array([[0, 257, 257 * 100, 65535, 40000]], np.uint16)
    img = Image.fromarray(raw)
    assert img.mode.startswith("I;16")
    out = decode_image(imgs.encode(img))
    assert list(out[0, :, 0]) == [0, 1, 100, 255, round(40000 / 257)]


def test_sixteen_bit_rgb_png_keeps_the_high_byte(imgs):
    vals = np.array([[[0, 32768, 65535], [1000, 20000, 50000]]], np.uint16)   # (1, 2, 3)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in vals)
    out = decode_image(imgs.raw_png(2, 1, 16, 2, rows))
    assert out.shape == (1, 2, 3)
    assert np.abs(out.astype(int) - vals.astype(float) / 257).max() <= 1


def test_float_tiff_in_unit_range_is_scaled_and_other_ranges_are_stretched(imgs):
    a = np.array([[0.0, 0.25, 1.0]], np.float32)
    out = decode_image(imgs.encode(Image.fromarray(a, "F"), "TIFF"))
    assert list(out[0, :, 0]) == [0, 64, 255]
    b = np.array([[-10.0, 0.0, 30.0]], np.float32)
    out = decode_image(imgs.encode(Image.fromarray(b, "F"), "TIFF"))
    assert list(out[0, :, 0]) == [0, 64, 255]


def test_cmyk_jpeg_matches_its_rgb_reference(imgs):
    ref = smooth_rgb()
    data = imgs.encode(Image.fromarray(ref).convert("CMYK"), "JPEG", quality=95)
    info = decode_with_info(data)
    assert info.source_mode == "CMYK"
    assert np.abs(info.pixels.astype(int) - ref).mean() < 4


def test_progressive_jpeg_decodes_like_baseline(imgs):
    ref = smooth_rgb()
    base = decode_image(imgs.encode(Image.fromarray(ref), "JPEG", quality=90))
    prog = decode_image(imgs.encode(Image.fromarray(ref), "JPEG", quality=90, progressive=True))
    assert np.abs(prog.astype(int) - base).max() <= 2
    assert np.abs(prog.astype(int) - ref).mean() < 4


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "WEBP"])
def test_multi_frame_uses_frame_zero_and_reports_it(imgs, fmt):
    frames = [Image.new("RGB", (6, 4), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    kw = {"lossless": True} if fmt == "WEBP" else {}
    data = imgs.encode(frames[0], fmt, save_all=True, append_images=frames[1:], **kw)
    info = decode_with_info(data)
    assert info.n_frames == 3 and info.notes == ["3 frames; used frame 0"]
    assert tuple(info.pixels[0, 0]) == (255, 0, 0)


# -- C4: EXIF orientation -----------------------------------------------------------------------

@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_exif_transpose(imgs, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = imgs.encode(Image.fromarray(smooth_rgb(6, 10)), "JPEG", quality=95, exif=exif)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    info = decode_with_info(data)
    assert info.orientation == orientation
    assert np.array_equal(info.pixels, ref)
    assert info.pixels.shape[:2] == ((10, 6) if orientation >= 5 else (6, 10))


@pytest.mark.parametrize("orientation,expect", [
    (2, lambda a: a[:, ::-1]), (3, lambda a: a[::-1, ::-1]), (4, lambda a: a[::-1]),
    (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))])
def test_exif_orientation_semantics_on_lossless_pixels(imgs, orientation, expect):
    a = np.asarray(imgs.noise(2, 3, seed=orientation))
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(imgs.encode(Image.fromarray(a), exif=exif))
    assert np.array_equal(out, expect(a))


# -- C2 / C5 / C6: truncation, bombs, degenerate sizes ------------------------------------------

def test_truncated_scan_data_fails_at_decode_not_open(imgs):
    data = imgs.truncated_jpeg()
    Image.open(io.BytesIO(data))                     # the header is fine...
    with pytest.raises(InvalidImageError, match="truncated"):
        decode_image(data, name="cat/x.jpg")        # ...the pixels are not
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_load_truncated_images_stays_false_after_importing_everything():
    import cnnlab.data  # noqa: F401
    import cnnlab.data.dataset  # noqa: F401
    import cnnlab.data.info  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_errors_name_the_file_and_the_reason(imgs, tmp_path):
    p = tmp_path / "page.jpg"
    p.write_bytes(imgs.BAD_FILES["page.jpg"])
    with pytest.raises(InvalidImageError) as e:
        decode_image(p)
    assert str(p) in str(e.value) and "HTML" in str(e.value)
    assert e.value.path == str(p) and "HTML" in e.value.reason
    for name, word in [("empty.jpg", "empty"), ("doc.jpg", "PDF"),
                       ("random.png", "not a recognised")]:
        with pytest.raises(InvalidImageError, match=word):
            decode_image(imgs.BAD_FILES[name], name=name)
    with pytest.raises(InvalidImageError, match="cannot read"):
        decode_image(tmp_path / "missing.png")


def test_bomb_png_declaring_50000_squared_is_rejected_before_allocation(imgs):
    data = imgs.raw_png(50_000, 50_000, 8, 2, None)
    assert len(data) < 200
    t = time.perf_counter()
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        decode_image(data)
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        probe_image(data)
    assert time.perf_counter() - t < 2


def test_own_pixel_limit_applies_below_pillows(imgs):
    data = imgs.raw_png(8_000, 6_000, 8, 0, None)          # 48 MP: Pillow would only warn at ~89 MP
    with pytest.raises(InvalidImageError, match="limit of 40,000,000"):
        decode_image(data)
    small = imgs.encode(Image.new("RGB", (20, 10)))
    with pytest.raises(InvalidImageError, match="limit of 100"):
        decode_image(small, max_pixels=100)
    assert decode_image(small, max_pixels=200).shape == (10, 20, 3)
    with pytest.raises(ConfigError, match="max_pixels"):
        decode_image(small, max_pixels=None)


LZW_STUB = b"\x02\x02\x4c\x01\x00"     # minimum code size 2, one 2-byte data block, terminator


def test_bomb_gif_declaring_a_huge_screen_is_rejected(imgs):
    head = b"GIF89a" + (50_000).to_bytes(2, "little") * 2 + b"\x00\x00\x00"
    frame = b"\x2c" + bytes(4) + (50_000).to_bytes(2, "little") * 2 + b"\x00" + LZW_STUB
    with pytest.raises(InvalidImageError):
        decode_image(head + frame + b"\x3b")


def test_gif_whose_second_frame_grows_yields_frame_zero_or_a_clean_error(imgs):
    small = imgs.encode(Image.new("L", (4, 4), 9), "GIF")
    assert small.endswith(b"\x3b")
    big = b"\x2c" + bytes(4) + (60_000).to_bytes(2, "little") * 2 + b"\x00" + LZW_STUB
    t = time.perf_counter()
    try:
        out = decode_image(small[:-1] + big + b"\x3b")
        assert out.shape == (4, 4, 3)
    except InvalidImageError:
        pass
    assert time.perf_counter() - t < 2


def test_a_20_megapixel_photo_still_loads(imgs):
    data = imgs.encode(Image.new("RGB", (5000, 4000), (10, 20, 30)), "JPEG", quality=50)
    out = decode_image(data)
    assert out.shape == (4000, 5000, 3) and abs(int(out[100, 100, 2]) - 30) <= 2
    assert 5000 * 4000 <= DEFAULT_MAX_PIXELS


@pytest.mark.parametrize("h,w", [(1, 1), (1, 10_000), (10_000, 1)])
@pytest.mark.parametrize("fit", ["crop", "resize"])
def test_degenerate_sizes_decode_and_fit(imgs, h, w, fit):
    out = decode_image(imgs.encode(Image.new("RGB", (w, h), (5, 6, 7))))
    assert out.shape == (h, w, 3)
    fitted = fit_image(out, 32, fit)
    assert fitted.shape == (32, 32, 3) and np.all(fitted == (5, 6, 7))


def test_fit_crop_keeps_the_centre_and_resize_keeps_everything():
    a = np.zeros((10, 30, 3), np.uint8)
    a[:, :10] = 255                                      # a white left third
    assert fit_image(a, 10, "crop").max() == 0           # the centre square is all black
    r = fit_image(a, 10, "resize")
    assert r[:, 0].min() == 255 and r[:, -1].max() == 0
    assert np.array_equal(fit_image(a[:, :10], 10), a[:, :10])        # already S x S: untouched
    with pytest.raises(ConfigError):
        fit_image(a, 10, "stretch")


def test_bad_arguments_are_config_errors(imgs):
    data = imgs.encode(Image.new("RGB", (2, 2)))
    with pytest.raises(ConfigError):
        decode_image(data, mode="CMYK")
    with pytest.raises(ConfigError):
        decode_image(data, background=(0, 0))


def test_probe_reads_the_header_without_decoding(imgs):
    h = probe_image(imgs.encode(Image.new("L", (7, 3)), "PNG"))
    assert (h.format, h.mode, h.width, h.height) == ("PNG", "L", 7, 3)
    with pytest.raises(InvalidImageError):
        probe_image(imgs.BAD_FILES["page.jpg"])
    exif = Image.Exif()
    exif[0x0112] = 6
    h = probe_image(imgs.encode(Image.new("RGB", (7, 3)), "JPEG", exif=exif))
    assert (h.width, h.height, h.orientation) == (7, 3, 6)


def test_eps_is_not_in_the_default_formats():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InvalidImageError):
        decode_image(eps)


# -- F1: fuzz -----------------------------------------------------------------------------------

def _seeds():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    out = []
    for fmt, mode in [("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("TIFF", "RGB"),
                      ("BMP", "RGB"), ("WEBP", "RGB"), ("PNG", "I;16")]:
        img = Image.fromarray(a).convert(mode) if mode != "I;16" else Image.fromarray(
            a[..., 0].astype(np.uint16) * 257)
        b = io.BytesIO()
        img.save(b, fmt)
        out.append(b.getvalue())
    return out


SEEDS = _seeds()


def _decode_and_fit(data: bytes) -> None:
    # a 4 MP cap keeps each input well under the 2 s deadline even when a mutation declares a big
    # (but legal) size; the exception set is what is under test
    try:
        fit_image(decode_image(data, max_pixels=4_000_000), 8)
    except InvalidImageError:
        pass
    try:
        probe_image(data, max_pixels=4_000_000)
    except InvalidImageError:
        pass


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1024))
def test_fuzz_random_bytes_only_raise_invalid_image(data):
    _decode_and_fit(data)


@settings(max_examples=250, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_images_only_raise_invalid_image(data):
    seed = bytearray(data.draw(st.sampled_from(SEEDS)))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(seed) - 1))
        seed[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(seed)))
    _decode_and_fit(bytes(seed[:cut]))
