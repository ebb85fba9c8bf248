"""tfds builders (array_record, no TensorFlow) on small image folders the tests write."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from jaxbrain.data import read_lamem
from jaxbrain.data.tfds_builders import build_class_folder, build_lamem, data_source

CLASSES = ("zebra", "ant", "moose")  # written unsorted; labels follow sorted order


def save_image(path, rng, size=16, mode="RGB"):
    """A random image in ``mode`` (RGB, L grey, RGBA); returns its RGB pixels as read back."""
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(path)
    return np.asarray(Image.open(path).convert("RGB"))


def write_tree(root, counts=None, seed=0):
    """root/<split>/<class>/<image>: PNGs (one grey, one RGBA per split) and one JPEG.
    Returns {split: {(class, file name): RGB pixels}}."""
    rng = np.random.default_rng(seed)
    counts = counts or {"train": 4, "val": 2}
    pixels = {}
    for split, n in counts.items():
        pixels[split] = {}
        for c, class_name in enumerate(CLASSES):
            folder = root / split / class_name
            folder.mkdir(parents=True)
            for i in range(n):
                mode = "L" if (c, i) == (0, 0) else "RGBA" if (c, i) == (1, 0) else "RGB"
                name = f"img{i}.jpg" if (c, i) == (2, 0) else f"img{i}.png"
                pixels[split][class_name, name] = save_image(folder / name, rng, 16 + 8 * c, mode)
    return pixels


def test_class_folder_labels_counts_and_pixels(tmp_path):
    pixels = write_tree(tmp_path / "src")
    builder = build_class_folder(tmp_path / "src", tmp_path / "tfds", name="toy")
    names = sorted(CLASSES)
    assert builder.info.features["label"].names == names
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == {"train": 12, "val": 6}
    for split, expected in pixels.items():
        source = data_source(builder, split)
        assert len(source) == len(expected)
        seen = set()
        for i in range(len(source)):
            example = source[i]
            assert example["label"].dtype == np.int32
            class_name = names[example["label"]]
            want = expected[class_name, example["image_name"]]
            assert example["image"].dtype == np.uint8 and example["image"].shape == want.shape
            if example["image_name"].endswith(".png"):
                np.testing.assert_array_equal(example["image"], want)
            else:  # JPEG: same bytes, but OpenCV (if installed) may decode slightly differently
                np.testing.assert_allclose(example["image"], want, atol=3)
            seen.add((class_name, example["image_name"]))
        assert seen == set(expected)


def test_second_build_reuses_and_stale_source_raises(tmp_path):
    write_tree(tmp_path / "src")
    builder = build_class_folder(tmp_path / "src", tmp_path / "tfds")
    files = sorted(p for p in tmp_path.joinpath("tfds").rglob("*") if p.is_file())
    mtimes = [p.stat().st_mtime_ns for p in files]
    again = build_class_folder(tmp_path / "src", tmp_path / "tfds")
    assert again.data_dir == builder.data_dir
    assert sorted(p for p in tmp_path.joinpath("tfds").rglob("*") if p.is_file()) == files
    assert [p.stat().st_mtime_ns for p in files] == mtimes
    save_image(tmp_path / "src" / "train" / "ant" / "new.png", np.random.default_rng(1))
    with pytest.raises(ValueError, match="prepared from a different source"):
        build_class_folder(tmp_path / "src", tmp_path / "tfds")


def test_class_folder_errors_name_the_path(tmp_path):
    write_tree(tmp_path / "src", {"train": 1})
    missing = tmp_path / "src" / "test"
    with pytest.raises(ValueError, match=re.escape(f"{missing}: split folder missing")):
        build_class_folder(tmp_path / "src", tmp_path / "tfds", splits=("train", "test"))
    (tmp_path / "empty" / "train" / "ant").mkdir(parents=True)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'empty' / 'train'}: no images")):
        build_class_folder(tmp_path / "empty", tmp_path / "tfds")
    bad = tmp_path / "src" / "train" / "ant" / "broken.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=re.escape(f"{bad}: unreadable image file")):
        build_class_folder(tmp_path / "src", tmp_path / "tfds")


def write_lamem(root, n=12, n_test=3, seed=0):
    """LaMem layout with splits 1 and 2 (1 also with val) and one grey image."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "splits").mkdir()
    names = [f"{i:05d}.png" for i in range(n)]
    pixels = {m: save_image(root / "images" / m, rng, 24, "L" if i == 0 else "RGB")
              for i, m in enumerate(names)}
    scores = rng.uniform(0.4, 0.95, n).round(4)
    for k in (1, 2):
        order = rng.permutation(n)
        parts = {"test": order[:n_test], "train": order[n_test:]}
        if k == 1:
            parts = {"test": order[:n_test], "val": order[n_test:2 * n_test],
                     "train": order[2 * n_test:]}
        for part, idx in parts.items():
            lines = [f"{names[i]} {scores[i]}" for i in idx]
            (root / "splits" / f"{part}_{k}.txt").write_text("\n".join(lines) + "\n")
    return pixels


def test_lamem_scores_sizes_and_pixels(tmp_path):
    pixels = write_lamem(tmp_path / "lamem")
    truth = read_lamem(tmp_path / "lamem")
    score = dict(zip(truth.image_names.tolist(), truth.scores.tolist(), strict=True))
    for k, sizes in ((1, {"train": 6, "val": 3, "test": 3}), (2, {"train": 9, "test": 3})):
        builder = build_lamem(tmp_path / "lamem", tmp_path / "tfds", split_index=k)
        assert {s: i.num_examples for s, i in builder.info.splits.items()} == sizes
        for part in sizes:
            source = data_source(builder, part)
            names = [source[i]["image_name"] for i in range(len(source))]
            assert names == truth.splits[k][part].tolist()
            for i, name in enumerate(names):
                example = source[i]
                assert example["memorability"].dtype == np.float32
                np.testing.assert_allclose(example["memorability"], score[name], rtol=1e-6)
                np.testing.assert_array_equal(example["image"], pixels[name])


def test_lamem_errors(tmp_path):
    write_lamem(tmp_path / "lamem")
    with pytest.raises(ValueError, match="split index 3 not available"):
        build_lamem(tmp_path / "lamem", tmp_path / "tfds", split_index=3)
    missing = sorted(read_lamem(tmp_path / "lamem").splits[2]["test"])[0]
    (tmp_path / "lamem" / "images" / missing).unlink()
    split_file = tmp_path / "lamem" / "splits" / "test_2.txt"
    message = re.escape(f"{split_file}: names 1 image(s) absent") + ".*" + re.escape(missing)
    with pytest.raises(ValueError, match=message):
        build_lamem(tmp_path / "lamem", tmp_path / "tfds", split_index=2)


def test_build_and_read_never_import_tensorflow(tmp_path):
    write_tree(tmp_path / "src", {"train": 1})
    write_lamem(tmp_path / "lamem")
    script = textwrap.dedent(f"""
        import sys
        from jaxbrain.data.tfds_builders import build_class_folder, build_lamem, data_source
        import grain
        for builder in (build_class_folder({str(tmp_path / "src")!r}, {str(tmp_path)!r}),
                        build_lamem({str(tmp_path / "lamem")!r}, {str(tmp_path)!r})):
            source = data_source(builder, "train")
            assert source[0]["image"].shape[-1] == 3
            assert len(list(grain.MapDataset.source(source))) == len(source)
        assert "tensorflow_datasets" in sys.modules
        assert "tensorflow" not in sys.modules, "TensorFlow was imported"
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
