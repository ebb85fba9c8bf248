"""LaMem-layout reader on folders the tests write."""

import numpy as np
import pytest

from jaxbrain.data import read_lamem


def write_lamem(root, names, scores, n_splits=2, n_test=4, broken_line=None):
    (root / "images").mkdir(parents=True)
    (root / "splits").mkdir()
    for name in names:
        (root / "images" / name).write_bytes(b"jpg")
    rng = np.random.default_rng(0)
    for k in range(1, n_splits + 1):
        order = rng.permutation(len(names))
        for part, idx in (("test", order[:n_test]), ("train", order[n_test:])):
            lines = [f"{names[i]} {scores[i]:.4f}" for i in idx]
            if broken_line and part == "train" and k == 1:
                lines.append(broken_line)
            (root / "splits" / f"{part}_{k}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_reads_splits_and_scores(tmp_path):
    names = [f"{i:08d}.jpg" for i in range(20)]
    scores = np.linspace(0.3, 0.9, 20).round(4)
    data = read_lamem(write_lamem(tmp_path, names, scores))
    assert data.image_names.tolist() == names
    np.testing.assert_allclose(data.scores, scores)
    assert sorted(data.splits) == [1, 2]
    assert data.splits[1]["test"].size == 4 and data.splits[1]["train"].size == 16


@pytest.mark.parametrize("line,message", [
    ("onlyname", "expected 'image_name score'"),
    ("x.jpg high", "is not a number"),
    ("x.jpg 1.5", r"outside \[0, 1\]"),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    names = [f"{i}.jpg" for i in range(10)]
    write_lamem(tmp_path, names, np.full(10, 0.5), broken_line=line)
    with pytest.raises(ValueError, match=rf"train_1.txt:7: .*{message}"):
        read_lamem(tmp_path)


def test_missing_parts_and_images(tmp_path):
    names = [f"{i}.jpg" for i in range(10)]
    root = write_lamem(tmp_path, names, np.full(10, 0.5))
    (root / "images" / "3.jpg").unlink()
    with pytest.raises(ValueError, match=r"1 listed images missing, e.g. \['3.jpg'\]"):
        read_lamem(root)
    assert read_lamem(root, check_images=False).image_names.size == 10
    (root / "splits" / "test_2.txt").unlink()
    with pytest.raises(ValueError, match="split 2 needs both"):
        read_lamem(root, check_images=False)
    with pytest.raises(ValueError, match="no 'splits' folder"):
        read_lamem(tmp_path / "images")
