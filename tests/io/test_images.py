import io

import pytest
from PIL import Image

from scalecap_ray.config import ImageSettings
from scalecap_ray.io.images import ImageError, normalize_image
from tests.conftest import drawn_image


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_output_is_rgb_jpeg_with_stable_hash():
    a = normalize_image(drawn_image(1))
    b = normalize_image(drawn_image(1))
    im = decode(a.data)
    assert im.format == "JPEG" and im.mode == "RGB" and (a.width, a.height) == im.size
    assert a.digest == b.digest and a.digest != normalize_image(drawn_image(2)).digest


def test_resizes_into_the_pixel_budget_keeping_aspect():
    big = normalize_image(encode(Image.new("RGB", (4000, 1000), "red")),
                          ImageSettings(max_pixels=100_000, min_pixels=3136))
    assert big.width * big.height <= 100_000 * 1.01
    assert abs(big.width / big.height - 4.0) < 0.05
    small = normalize_image(encode(Image.new("RGB", (20, 10), "red")))
    assert small.width * small.height >= 56 * 56 * 0.98 and small.width > small.height


def test_alpha_is_flattened_on_white():
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    out = decode(normalize_image(encode(rgba)).data).convert("RGB")
    assert min(out.getpixel((32, 32))) > 245


def test_palette_greyscale_16bit_and_cmyk_become_rgb():
    images = [
        Image.new("P", (64, 64), 3),
        Image.new("L", (64, 64), 128),
        Image.new("CMYK", (64, 64), (0, 255, 255, 0)),
    ]
    for im in images:
        fmt = "JPEG" if im.mode == "CMYK" else "PNG"
        assert decode(normalize_image(encode(im, fmt)).data).mode == "RGB"
    sixteen = Image.new("I;16", (64, 64))
    sixteen.putpixel((0, 0), 65535)
    out = decode(normalize_image(encode(sixteen)).data)
    assert out.mode == "RGB" and max(out.getpixel((0, 0))) > 200


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (80, 40), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    out = normalize_image(encode(im, "JPEG", exif=exif))
    assert out.height == 2 * out.width


def test_first_frame_of_an_animation():
    frames = [Image.new("RGB", (50, 50), c) for c in ("red", "green")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = decode(normalize_image(buf.getvalue()).data).convert("RGB")
    r, g, _ = out.getpixel((out.width // 2, out.height // 2))
    assert r > 200 and g < 60


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"definitely not an image", "not a decodable image"),
        (drawn_image(3)[:200], "not a decodable image"),  # truncated PNG
    ],
)
def test_unusable_inputs_raise_with_a_reason(data, message):
    with pytest.raises(ImageError, match=message):
        normalize_image(data)


def test_pixel_limit_guards_against_bombs():
    with pytest.raises(ImageError, match="over the limit"):
        normalize_image(encode(Image.new("L", (3000, 3000))), ImageSettings(pixel_limit=10**6))


def test_thin_images_are_widened_or_refused():
    thin = normalize_image(encode(Image.new("RGB", (600, 10), "red")))
    assert min(thin.width, thin.height) >= 28
    with pytest.raises(ImageError, match="aspect ratio"):
        normalize_image(encode(Image.new("RGB", (5000, 2), "red")))
    tight = ImageSettings(max_pixels=5000, min_pixels=100, min_side=28, max_aspect_ratio=200)
    with pytest.raises(ImageError, match="cannot be scaled to a shortest side of 28"):
        normalize_image(encode(Image.new("RGB", (1000, 10), "red")), tight)
