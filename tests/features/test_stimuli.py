"""Stimulus placement at the model's visual field, checked pixel by pixel where no resize
happens (the canvas or crop already has the model's input size)."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxbrain.features import IMAGENET_MEAN, IMAGENET_STD, prepare_images, preprocessing_key


def _pixels(prepared):
    """Model inputs back to 0-255 pixels."""
    return np.round((prepared * np.float32(IMAGENET_STD) + np.float32(IMAGENET_MEAN)) * 255)


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)


def test_smaller_stimulus_is_a_centred_copy_on_grey(images):
    out = prepare_images(images, stimulus_degrees=4, model_degrees=8, image_size=32)
    assert out.dtype == np.float32 and out.shape == (3, 32, 32, 3)
    pixels = _pixels(out)
    np.testing.assert_array_equal(pixels[:, 8:24, 8:24], images)
    border = np.ones((32, 32), bool)
    border[8:24, 8:24] = False
    assert np.all(pixels[:, border] == 128)


def test_larger_stimulus_is_centre_cropped(rng):
    images = rng.integers(0, 256, size=(2, 32, 32, 3), dtype=np.uint8)
    out = prepare_images(images, stimulus_degrees=16, model_degrees=8, image_size=16)
    np.testing.assert_array_equal(_pixels(out), images[:, 8:24, 8:24])
    # a fractional ratio rounds sizes and offsets as Brain-Score does: 0.8 × 20 px = 16 px at 2
    images = rng.integers(0, 256, size=(1, 20, 20, 3), dtype=np.uint8)
    out = prepare_images(images, stimulus_degrees=10, model_degrees=8, image_size=16)
    np.testing.assert_array_equal(_pixels(out), images[:, 2:18, 2:18])


def test_equal_degrees_only_resize(images):
    out = prepare_images(images, stimulus_degrees=8, model_degrees=8, image_size=16)
    np.testing.assert_array_equal(_pixels(out), images)
    out = prepare_images(images, stimulus_degrees=8, image_size=24)
    expected = np.stack([np.asarray(Image.fromarray(im).resize((24, 24), Image.BILINEAR))
                         for im in images])
    np.testing.assert_array_equal(_pixels(out), expected)


def test_placement_happens_before_the_resize(images):
    out = prepare_images(images, stimulus_degrees=4, image_size=64)
    canvas = np.full((3, 32, 32, 3), 128, np.uint8)
    canvas[:, 8:24, 8:24] = images
    expected = np.stack([np.asarray(Image.fromarray(im).resize((64, 64), Image.BILINEAR))
                         for im in canvas])
    np.testing.assert_array_equal(_pixels(out), expected)


def test_imagenet_normalisation():
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    flat = np.full((1, 4, 4, 3), 200, np.uint8)
    out = prepare_images(flat, stimulus_degrees=8, image_size=4)
    expected = (200 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-6)
    custom = prepare_images(flat, stimulus_degrees=8, image_size=4, mean=(0, 0, 0), std=(1, 1, 1))
    np.testing.assert_allclose(custom, 200 / 255, rtol=1e-6)


def test_grey_rgba_and_differently_sized_images(rng):
    grey = rng.integers(0, 256, size=(1, 8, 8, 1), dtype=np.uint8)
    out = prepare_images(grey, stimulus_degrees=8, image_size=8)
    np.testing.assert_array_equal(_pixels(out), np.repeat(grey, 3, axis=-1))
    rgba = rng.integers(0, 256, size=(1, 8, 8, 4), dtype=np.uint8)
    out = prepare_images(rgba, stimulus_degrees=8, image_size=8)
    np.testing.assert_array_equal(_pixels(out), rgba[..., :3])
    mixed = [rng.integers(0, 256, size=s, dtype=np.uint8) for s in ((8, 8, 3), (12, 6, 1))]
    assert prepare_images(mixed, stimulus_degrees=4, image_size=10).shape == (2, 10, 10, 3)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"images": np.zeros((1, 8, 8, 3), np.float32)}, "uint8"),
    ({"images": np.zeros((8, 8, 3), np.uint8)}, "shape"),
    ({"images": np.zeros((1, 8, 8, 2), np.uint8)}, "channels"),
    ({"stimulus_degrees": 0}, "stimulus_degrees"),
    ({"model_degrees": -8}, "model_degrees"),
    ({"image_size": 0}, "image_size"),
])
def test_bad_input_is_named(kwargs, match):
    args = {"images": np.zeros((1, 8, 8, 3), np.uint8), "stimulus_degrees": 8, "image_size": 8}
    with pytest.raises(ValueError, match=match):
        prepare_images(**{**args, **kwargs})


def test_preprocessing_key_is_plain_data_and_tells_settings_apart():
    key = preprocessing_key(stimulus_degrees=8, image_size=224)
    assert json.loads(json.dumps(key)) == key
    assert key == preprocessing_key(stimulus_degrees=8.0, image_size=224)
    assert key != preprocessing_key(stimulus_degrees=4, image_size=224)
    assert key != preprocessing_key(stimulus_degrees=8, image_size=227)
    assert key != preprocessing_key(stimulus_degrees=8, image_size=224, mean=(0.5, 0.5, 0.5))


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    """PIL's RGB conversion turns a 16-bit grey PNG (mode I;16) white; read_image scales it
    to 8 bits (value / 257), so it looks as the 8-bit version of the same picture."""
    from jaxbrain.features.stimuli import read_image

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    clipped = np.asarray(Image.open(tmp_path / "deep.png").convert("RGB"))
    assert (clipped == 255).mean() > 0.99  # PIL's own conversion: white
    pixels = read_image(str(tmp_path / "deep.png"))
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[..., 0], np.round(ramp / 257).astype(np.uint8))
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ValueError, match=r"float\.tif: 32-bit float image"):
        read_image(str(tmp_path / "float.tif"))


def test_truncated_image_names_the_file(tmp_path):
    from jaxbrain.features.stimuli import read_image

    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png: cannot read the image"):
        read_image(str(tmp_path / "cut.png"))


def test_a_set_of_identical_images_is_an_input_error(tmp_path):
    """A whole set read as one flat colour is refused, not scored into 'skipped' rows."""
    from jaxbrain.engine.inputs import load_stimuli

    for i in range(3):
        Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(ValueError, match="all 3 images are identical"):
        load_stimuli(None, tmp_path)


def _write_set(folder, n=70):
    """n images of differing sizes and modes (RGB, grey, RGBA) as PNG files, and a zip of
    the same files; returns the decoded pixels in file order."""
    import zipfile

    rng = np.random.default_rng(3)
    folder.mkdir()
    pixels = []
    with zipfile.ZipFile(folder.parent / "set.zip", "w") as archive:
        for i in range(n):
            shape = [(10 + i % 5, 12, 3), (9, 11), (8, 8, 4)][i % 3]
            array = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(array).save(folder / f"im{i:03d}.png")
            archive.write(folder / f"im{i:03d}.png", f"im{i:03d}.png")
            pixels.append(np.asarray(Image.fromarray(array).convert("RGB")))
    return pixels


def test_stimuli_stay_in_their_files_and_hash_as_their_pixels(tmp_path, monkeypatch):
    """A loaded stimulus set is read from its files when used (never held decoded); its
    digest is still the sha256 of ids and pixels in order (so existing caches stay valid),
    and a zip is opened once per chunk of images, not once per image."""
    import hashlib
    import zipfile

    from jaxbrain.engine.inputs import load_stimuli
    from jaxbrain.features import ImageFiles

    pixels = _write_set(tmp_path / "set")
    stimuli = load_stimuli(None, tmp_path / "set")
    assert isinstance(stimuli.images, ImageFiles) and len(stimuli.images) == 70
    expected = hashlib.sha256()
    for sid, image in zip(stimuli.ids, pixels, strict=True):
        expected.update(sid.encode())
        expected.update(image.tobytes())
    assert stimuli.digest == expected.hexdigest()
    for got, want in zip(stimuli.images, pixels, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(stimuli.images[5], pixels[5])
    part = stimuli.images[60:]
    assert isinstance(part, ImageFiles) and len(part) == 10
    np.testing.assert_array_equal(list(part)[3], pixels[63])
    assert sum(len(chunk) for chunk in stimuli.images.chunks(workers=3)) == 70

    zipped = ImageFiles([f"{tmp_path / 'set.zip'}::im{i:03d}.png" for i in range(70)])
    opened = []
    real = zipfile.ZipFile

    def counting(*args, **kwargs):
        opened.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", counting)
    for got, want in zip(zipped, pixels, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(opened) == 2  # 64 + 6 images


def test_a_broken_file_in_a_set_is_named_when_the_set_is_loaded(tmp_path):
    from jaxbrain.engine.inputs import load_stimuli
    from jaxbrain.features import ImageFiles

    _write_set(tmp_path / "set", n=6)
    (tmp_path / "set" / "im004.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"im004\.png: cannot read the image"):
        load_stimuli(None, tmp_path / "set")
    with pytest.raises(ValueError, match=r"set\.zip::gone\.png: cannot read the image"):
        ImageFiles([f"{tmp_path / 'set.zip'}::gone.png"])[0]


def test_placed_batches_read_from_files_equal_placed_arrays(tmp_path):
    from jaxbrain.features import ImageFiles, PlacedStimuli

    pixels = _write_set(tmp_path / "set", n=9)
    files = ImageFiles(sorted(str(p) for p in (tmp_path / "set").iterdir()))
    options = {"stimulus_degrees": 4.0, "model_degrees": 8.0, "image_size": 32}
    from_files = PlacedStimuli(files, options, "digest")
    in_memory = PlacedStimuli(pixels, options, "digest")
    np.testing.assert_array_equal(from_files.batch(2, 7), in_memory.batch(2, 7))
    np.testing.assert_array_equal(prepare_images(files, **options),
                                  prepare_images(pixels, **options))


def test_an_image_changed_after_loading_is_refused_when_read(tmp_path):
    """The digest is taken when the set is loaded; a file rewritten before extraction reads it
    would put other pixels under that digest (and into its cache), so reading it is an error."""
    import os

    from jaxbrain.engine.inputs import load_stimuli

    _write_set(tmp_path / "set", n=5)
    stimuli = load_stimuli(None, tmp_path / "set")
    np.testing.assert_array_equal(stimuli.images[-1], list(stimuli.images)[4])
    changed = tmp_path / "set" / "im002.png"
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))
    with pytest.raises(ValueError, match=r"im002\.png: the file changed after its stimulus"):
        list(stimuli.images)
    stimuli.images[3]  # the others still read
    with pytest.raises(ValueError, match=r"im002\.png: the file changed"):
        stimuli.images[1:4][1]
