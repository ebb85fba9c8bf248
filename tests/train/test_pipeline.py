"""grain pipelines: random-access determinism, epochs, mixing masks, padding, normalisation."""

import pickle

import numpy as np
import pytest
from PIL import Image

from jaxbrain.data.tfds_builders import build_class_folder, data_source
from jaxbrain.train.pipeline import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ArraySource,
    eval_batches,
    train_dataset,
)
from tests.oracles import torchvision

N, SIZE = 20, 16
RECORD = {
    "label": ((), np.int32),
    "has_label": ((), np.float32),
    "memorability": ((), np.float32),
    "has_memorability": ((), np.float32),
}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (N, 24, 24, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def scored(images):
    """Memorability-only source with a unique score per image, to identify examples."""
    return ArraySource(images, memorability=np.arange(N) / N)


@pytest.fixture(scope="module")
def labelled(images):
    """Labels-only source, grey (C = 1) and smaller than the output size."""
    return ArraySource(images[:12, :10, :10, :1], labels=np.arange(12) % 4)


def assert_batches_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def assert_record_shapes(batch, batch_size, size=SIZE, extra=()):
    assert set(batch) == {"image", *RECORD, *extra}
    assert batch["image"].shape == (batch_size, size, size, 3)
    assert batch["image"].dtype == np.float32
    for key, (shape, dtype) in RECORD.items():
        assert batch[key].shape == (batch_size, *shape) and batch[key].dtype == dtype, key


def test_random_access_is_deterministic(scored, labelled):
    def make(seed):
        return train_dataset([scored, labelled], batch_size=8, image_size=SIZE, seed=seed,
                             num_steps=9)

    ds = make(0)
    assert len(ds) == 9
    forward = [ds[i] for i in range(9)]
    backward = [ds[i] for i in reversed(range(9))][::-1]
    fresh = make(0)
    for step in (8, 0, 5, 5):
        assert_batches_equal(forward[step], backward[step])
        assert_batches_equal(forward[step], fresh[step])
    for step in range(9):
        assert_record_shapes(forward[step], 8)
    other = make(1)
    assert not np.array_equal(forward[0]["image"], other[0]["image"])


def test_each_example_once_per_epoch_new_order_each_epoch(scored):
    ds = train_dataset([scored], batch_size=5, image_size=SIZE, seed=3, num_steps=12,
                       augment=False)
    epochs = [np.concatenate([ds[s]["memorability"] for s in range(e * 4, e * 4 + 4)])
              for e in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(N, dtype=np.float32) / N)
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])


def test_augmentation_crops_and_flips_per_step(scored):
    plain = train_dataset([scored], batch_size=N, image_size=SIZE, seed=0, num_steps=2,
                          augment=False)
    augmented = train_dataset([scored], batch_size=N, image_size=SIZE, seed=0, num_steps=2)
    # same shuffle with or without augmentation, different pixels
    np.testing.assert_array_equal(plain[0]["memorability"], augmented[0]["memorability"])
    assert not np.allclose(plain[0]["image"], augmented[0]["image"])
    # epoch 2 draws new crops for the same images
    first = augmented[0]["image"][np.argsort(augmented[0]["memorability"])]
    second = augmented[1]["image"][np.argsort(augmented[1]["memorability"])]
    assert not np.allclose(first, second)


@pytest.mark.parametrize("weights", [None, (3, 1)])
def test_mixing_labels_only_and_memorability_only(scored, labelled, weights):
    ds = train_dataset([labelled, scored], batch_size=8, image_size=SIZE, seed=0, num_steps=10,
                       weights=weights, augment=False)
    batches = [ds[i] for i in range(len(ds))]
    for batch in batches:
        assert_record_shapes(batch, 8)
        is_labelled = batch["has_label"] == 1
        np.testing.assert_array_equal(batch["has_memorability"], 1 - batch["has_label"])
        np.testing.assert_array_equal(batch["label"] >= 0, is_labelled)
        assert set(batch["label"][is_labelled]) <= {0, 1, 2, 3}
        np.testing.assert_array_equal(batch["memorability"][is_labelled], 0)
        assert set(batch["memorability"][~is_labelled]) <= set(scored.memorability)
    share = np.mean([b["has_label"] for b in batches])
    if weights is None:  # proportional to size: 12 of every 32
        assert abs(share - 12 / 32) < 0.1
    else:
        assert share == 0.75


def test_eval_batches_in_order_with_padding(scored, images):
    batches = eval_batches(scored, batch_size=8, image_size=24)
    assert len(batches) == 3
    for batch in batches:
        assert_record_shapes(batch, 8, size=24, extra={"valid"})
        assert batch["valid"].dtype == np.float32
    last = batches[2]
    np.testing.assert_array_equal(last["valid"], [1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(last["label"][4:], -1)
    np.testing.assert_array_equal(last["has_memorability"], last["valid"])
    np.testing.assert_array_equal(last["image"][4:], 0)
    order = np.concatenate([b["memorability"][b["valid"] == 1] for b in batches])
    np.testing.assert_array_equal(order, np.arange(N, dtype=np.float32) / N)
    # same size: no resampling, just normalisation
    want = (images[:8] / 255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(batches[0]["image"], want, atol=1e-5)


def test_normalisation_and_resizing_any_size():
    white = ArraySource(np.full((3, 40, 7, 3), 255, np.uint8), labels=[0, 1, 2])
    want = (1 - IMAGENET_MEAN) / IMAGENET_STD
    for batch in (eval_batches(white, batch_size=4, image_size=SIZE)[0],
                  train_dataset([white], batch_size=4, image_size=SIZE, seed=0, num_steps=1)[0]):
        assert batch["image"].shape == (4, SIZE, SIZE, 3)
        np.testing.assert_allclose(batch["image"][:3], np.broadcast_to(want, (3, SIZE, SIZE, 3)),
                                   rtol=1e-6)


def test_class_folder_source_feeds_the_pipeline(tmp_path):
    rng = np.random.default_rng(0)
    for class_name in ("b", "a"):
        (tmp_path / "src" / "train" / class_name).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, (20, 12), dtype=np.uint8)  # grey, not square
            Image.fromarray(pixels).save(tmp_path / "src" / "train" / class_name / f"{i}.png")
    source = data_source(build_class_folder(tmp_path / "src", tmp_path / "tfds"), "train")
    ds = train_dataset([source], batch_size=4, image_size=SIZE, seed=0, num_steps=2)
    copy = pickle.loads(pickle.dumps(ds))  # as grain does for its worker processes
    batch = ds[1]
    assert_batches_equal(copy[1], batch)
    assert_record_shapes(batch, 4)
    assert set(batch["label"]) <= {0, 1} and np.all(batch["has_label"] == 1)
    assert np.all(batch["has_memorability"] == 0)
    padded = eval_batches(source, batch_size=4, image_size=SIZE)[1]
    assert_record_shapes(padded, 4, extra={"valid"})
    np.testing.assert_array_equal(padded["label"], [1, 1, -1, -1])  # "b" sorts after "a"


def test_torchvision_recipe_crops_like_torchvision():
    """Random-resized crops: area fraction in [0.08, 1] (up to rounding) and aspect in
    [3/4, 4/3], inside the image; an image too elongated for any draw gets torchvision's
    fallback, the centre crop at the nearest allowed aspect."""
    from jaxbrain.train.pipeline import RECIPES, _random_box

    rng = np.random.default_rng(0)
    area_range = RECIPES["torchvision"].crop_area
    for _ in range(500):
        x0, y0, x1, y1 = _random_box(rng, 120, 90, area_range)
        w, h = x1 - x0, y1 - y0
        assert 0 <= x0 and x1 <= 90 and 0 <= y0 and y1 <= 120
        assert 0.07 * 90 * 120 <= w * h <= 90 * 120
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05
    assert _random_box(rng, 10, 400, area_range) == (193, 0, 206, 10)  # w = round(10 · 4/3)


def test_torchvision_evaluation_crop_matches_resize_256_centre_crop_224():
    """Resize(256) + CenterCrop(224), done as one resize of the centre box: equal to
    torchvision's two steps up to resampling (a few grey levels at most, < 1 on average)."""
    from jaxbrain.train.pipeline import eval_batches

    transforms = torchvision()[1].transforms
    # a smooth image: resampling differences stay small where neighbours are alike
    y, x = np.mgrid[0:300, 0:400]
    image = np.stack([128 + 100 * np.sin(x / 23), 128 + 100 * np.cos(y / 17),
                      128 + 100 * np.sin((x + y) / 31)], -1).astype(np.uint8)
    reference = np.asarray(transforms.Compose([transforms.Resize(256),
                                               transforms.CenterCrop(224)])(
        Image.fromarray(image)), np.float32)
    batch = next(iter(eval_batches(ArraySource(image[None]), batch_size=1, image_size=224,
                                   recipe="torchvision")))
    ours = (batch["image"][0] * IMAGENET_STD + IMAGENET_MEAN) * 255
    difference = np.abs(ours - reference)
    assert difference.mean() < 1.0 and difference.max() < 12, (difference.mean(),
                                                              difference.max())
    with pytest.raises(ValueError, match="data.recipe must be one of"):
        eval_batches(ArraySource(image[None]), batch_size=1, image_size=224, recipe="inception")


def test_processes_read_their_own_rows_of_the_global_batch(scored, labelled):
    """Two processes' local batches, side by side, are the one-process global batch: each
    process decodes only its half, with the same augmentation."""
    def make(process):
        return train_dataset([scored, labelled], batch_size=8, image_size=SIZE, seed=3,
                             num_steps=5, weights=[1, 1], process=process)

    whole, first, second = make((0, 1)), make((0, 2)), make((1, 2))
    assert len(first) == len(second) == 5
    for step in (0, 4):
        for key in whole[step]:
            np.testing.assert_array_equal(
                np.concatenate([first[step][key], second[step][key]]), whole[step][key])
    with pytest.raises(ValueError, match="must split evenly over 3 processes"):
        make((0, 3))


def test_worker_processes_give_the_same_batches(scored):
    from jaxbrain.train.pipeline import iterate

    dataset = train_dataset([scored], batch_size=4, image_size=SIZE, seed=0, num_steps=6)
    alone = list(iterate(dataset, 2, workers=0))
    with_workers = list(iterate(dataset, 2, workers=2))
    assert len(alone) == len(with_workers) == 4
    for a, b in zip(alone, with_workers, strict=True):
        assert_batches_equal(a, b)


def test_image_files_read_directly_equal_the_prepared_dataset(tmp_path):
    """The direct reader (no preparation) gives the array_record reader's labels, names and
    pixels, split by split."""
    from jaxbrain.data.tfds_builders import class_folder_sources
    from tests.data.test_tfds_builders import CLASSES, write_tree

    write_tree(tmp_path / "tree")  # PNGs (one grey, one RGBA per split) and a JPEG
    builder = build_class_folder(tmp_path / "tree", tmp_path / "tfds")
    direct, classes = class_folder_sources(tmp_path / "tree")
    assert classes == sorted(CLASSES) and set(direct) == {"train", "val"}
    for split, source in direct.items():
        prepared = data_source(builder, split)
        assert len(source) == len(prepared)
        for i in range(len(source)):
            a, b = source[i], prepared[i]
            assert (a["image_name"], int(a["label"])) == (b["image_name"], int(b["label"]))
            np.testing.assert_array_equal(a["image"], b["image"])
