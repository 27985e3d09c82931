"""keras_seg.data: synthetic and folder datasets, augmentation, preprocessing, batching, files."""

import os
import zlib

import keras
import numpy as np
import pytest
from PIL import Image

from keras_seg.data import (
    DatasetError,
    FolderDataset,
    SegmentationDataLoader,
    Subset,
    SyntheticSegmentation,
    atomic_dir,
    atomic_path,
    augment,
    format_target,
    get_preprocessing_fn,
    get_preprocessing_params,
    preprocess_input,
    read_image,
    read_mask,
    split_dataset,
    write_png,
)
from keras_seg.data import visualize

IMAGENET = {"input_space": "RGB", "input_range": [0, 1], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _leftovers(folder):
    return [f for f in os.listdir(folder) if ".tmp" in f]


# -- synthetic ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode,classes,target_shape", [
    ("binary", 1, (32, 32)), ("multiclass", 4, (32, 32)), ("multilabel", 3, (32, 32, 3)),
])
def test_synthetic_modes(mode, classes, target_shape):
    ds = SyntheticSegmentation(6, 32, mode=mode, seed=3)
    assert len(ds) == 6 and ds.classes == classes and len(ds.class_names) == classes
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        assert target.shape == target_shape
        hi = 1 if mode != "multiclass" else 3
        assert target.min() >= 0 and target.max() <= hi
        assert target.any(), "every sample has at least one shape"
        assert image.std() > 5, "textured, not flat"


def test_synthetic_is_deterministic_and_splits_differ():
    a = SyntheticSegmentation(4, 40, seed=7)
    b = SyntheticSegmentation(4, 40, seed=7, cache=False)
    for i in range(4):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        np.testing.assert_array_equal(a[i][1], b[i][1])
    other_seed = SyntheticSegmentation(4, 40, seed=8)
    val = SyntheticSegmentation(4, 40, seed=7, split="val")
    assert not np.array_equal(a[0][0], other_seed[0][0])
    assert not np.array_equal(a[0][0], val[0][0])
    # the cache hands out copies
    img, _ = a[0]
    img[:] = 0
    assert a[0][0].any()
    # multiclass labels are the binary foreground's refinement
    mc = SyntheticSegmentation(4, 40, mode="multiclass", seed=7)
    np.testing.assert_array_equal(mc[1][1] > 0, a[1][1] > 0)


def test_synthetic_rectangular_and_errors():
    ds = SyntheticSegmentation(2, (24, 40))
    assert ds[0][0].shape == (24, 40, 3) and ds[-1][1].shape == (24, 40)
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(ValueError, match="mode"):
        SyntheticSegmentation(2, mode="semantic")
    with pytest.raises(ValueError, match="split"):
        SyntheticSegmentation(2, split="holdout")
    with pytest.raises(ValueError, match="num_samples"):
        SyntheticSegmentation(0)
    with pytest.raises(ValueError, match="image_size"):
        SyntheticSegmentation(2, image_size=(4, 4))


# -- folder dataset ----------------------------------------------------------------------


def _pair(root, stem, size=(20, 24), image_ext=".png", labels=None, image=None, mask_mode="L"):
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "masks"), exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(stem.encode()))
    h, w = size
    if image is None:
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    image.save(os.path.join(root, "images", stem + image_ext))
    if labels is None:
        labels = np.zeros((h, w), np.uint8)
        labels[h // 4 : h // 2, w // 4 : w // 2] = 1
    Image.fromarray(np.asarray(labels, np.uint8)).convert(mask_mode).save(os.path.join(root, "masks", stem + ".png"))


def test_folder_pairs_by_stem(tmp_path):
    root = str(tmp_path)
    _pair(root, "a")
    _pair(root, "b", image_ext=".jpg")
    _pair(root, "c", image_ext=".jpeg")
    ds = FolderDataset(root)
    assert ds.stems == ["a", "b", "c"] and len(ds) == 3 and ds.classes == 1
    image, target = ds[1]
    assert image.shape == (20, 24, 3) and image.dtype == np.uint8
    assert target.shape == (20, 24) and set(np.unique(target)) == {0, 1}
    assert ds.validate() is ds


def test_folder_multiclass_multilabel_and_palette(tmp_path):
    root = str(tmp_path)
    labels = np.zeros((16, 16), np.uint8)
    labels[:8] = 2
    labels[8:, :4] = 1
    _pair(root, "p", size=(16, 16), labels=labels, mask_mode="P")  # palette PNG keeps indices
    ds = FolderDataset(root, mode="multiclass", classes=3)
    np.testing.assert_array_equal(ds[0][1], labels)
    ml = FolderDataset(root, mode="multilabel", classes=3)
    onehot = ml[0][1]
    assert onehot.shape == (16, 16, 3)
    np.testing.assert_array_equal(onehot.argmax(-1), labels)
    with pytest.raises(ValueError, match="classes"):
        FolderDataset(root, mode="multiclass")
    with pytest.raises(ValueError, match="classes must be 1"):
        FolderDataset(root, mode="binary", classes=3)


def test_folder_unpaired_files(tmp_path):
    root = str(tmp_path)
    _pair(root, "a")
    _pair(root, "b")
    os.remove(os.path.join(root, "masks", "b.png"))
    Image.new("L", (4, 4)).save(os.path.join(root, "masks", "orphan.png"))
    with pytest.raises(DatasetError) as e:
        FolderDataset(root)
    msg = str(e.value)
    assert "without a mask: b" in msg and "without an image: orphan" in msg


def test_folder_missing_and_empty_and_duplicates(tmp_path):
    with pytest.raises(DatasetError, match="folder not found"):
        FolderDataset(str(tmp_path / "nope"))
    os.makedirs(tmp_path / "images")
    os.makedirs(tmp_path / "masks")
    with pytest.raises(DatasetError, match="No images"):
        FolderDataset(str(tmp_path))
    _pair(str(tmp_path), "a")
    _pair(str(tmp_path), "a", image_ext=".jpg")
    with pytest.raises(DatasetError, match="share the stem 'a'"):
        FolderDataset(str(tmp_path))


def test_folder_corrupt_and_truncated_images(tmp_path):
    root = str(tmp_path)
    _pair(root, "good")
    _pair(root, "corrupt")
    with open(os.path.join(root, "images", "corrupt.png"), "wb") as f:
        f.write(b"this is not a png")
    _pair(root, "trunc", image_ext=".jpg", size=(64, 64))
    path = os.path.join(root, "images", "trunc.jpg")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    ds = FolderDataset(root)
    ds[ds.stems.index("good")]
    with pytest.raises(DatasetError, match="Cannot read image .*corrupt.png"):
        ds[ds.stems.index("corrupt")]
    with pytest.raises(DatasetError, match="trunc.jpg"):
        ds[ds.stems.index("trunc")]
    with pytest.raises(DatasetError) as e:  # validate lists every problem
        ds.validate()
    assert "2 problem(s)" in str(e.value) and "corrupt.png" in str(e.value) and "trunc.jpg" in str(e.value)


def test_folder_size_mismatch(tmp_path):
    root = str(tmp_path)
    _pair(root, "a", size=(20, 24), labels=np.zeros((20, 20), np.uint8))
    with pytest.raises(DatasetError, match=r"sizes differ for 'a'.*20x24.*20x20"):
        FolderDataset(root)[0]


def test_folder_wrong_channel_counts(tmp_path):
    root = str(tmp_path)
    _pair(root, "gray", image=Image.new("L", (20, 24), 100), size=(24, 20))
    _pair(root, "rgba", image=Image.new("RGBA", (20, 24)), size=(24, 20))
    ds = FolderDataset(root)
    with pytest.raises(DatasetError, match=r"gray.png has 1 channel.*expected 3.*convert_channels"):
        ds[ds.stems.index("gray")]
    with pytest.raises(DatasetError, match=r"rgba.png has 4 channel"):
        ds[ds.stems.index("rgba")]
    converted = FolderDataset(root, convert_channels=True)
    assert converted[0][0].shape == (24, 20, 3)
    gray_ds = FolderDataset(root, in_channels=1)
    assert gray_ds[gray_ds.stems.index("gray")][0].shape == (24, 20, 1)
    # an RGB mask is not a class-index mask
    rgb_root = str(tmp_path / "rgbmask")
    _pair(rgb_root, "m")
    Image.new("RGB", (24, 20), (1, 2, 3)).save(os.path.join(rgb_root, "masks", "m.png"))
    with pytest.raises(DatasetError, match=r"m.png has 3 channel.*single-channel class-index"):
        FolderDataset(rgb_root)[0]


def test_folder_labels_out_of_range(tmp_path):
    root = str(tmp_path)
    labels = np.zeros((20, 24), np.uint8)
    labels[:5] = 255
    _pair(root, "a", labels=labels)
    with pytest.raises(DatasetError, match=r"values \[255\] outside the class range \[0, 1\].*label_map=\{0: 0, 255: 1\}"):
        FolderDataset(root)[0]
    assert FolderDataset(root, label_map={0: 0, 255: 1})[0][1].max() == 1
    ignored = FolderDataset(root, mode="multiclass", classes=3, ignore_index=255)[0][1]
    assert set(np.unique(ignored)) == {0, 255}
    labels[:5] = 4
    _pair(root, "a", labels=labels)
    with pytest.raises(DatasetError, match=r"values \[4\] outside the class range \[0, 2\].*ignore_index"):
        FolderDataset(root, mode="multiclass", classes=3)[0]


def test_jpeg_masks_rejected(tmp_path):
    root = str(tmp_path)
    _pair(root, "a")
    os.remove(os.path.join(root, "masks", "a.png"))
    Image.new("L", (24, 20)).save(os.path.join(root, "masks", "a.jpg"))
    with pytest.raises(DatasetError, match="Masks must be PNG"):
        FolderDataset(root)
    with pytest.raises(DatasetError, match="JPEG"):
        read_mask(os.path.join(root, "masks", "a.jpg"))


def test_folder_splits(tmp_path):
    root = str(tmp_path)
    for split, stems in (("train", "abc"), ("val", "d")):
        for s in stems:
            _pair(os.path.join(root, split), s)
    with pytest.raises(DatasetError, match="split="):
        FolderDataset(root)
    assert len(FolderDataset(root, split="train")) == 3
    assert FolderDataset(root, split="val").stems == ["d"]


def test_read_image_16bit_rejected(tmp_path):
    path = str(tmp_path / "deep.png")
    Image.fromarray(np.full((4, 4), 1000, np.uint16)).save(path)
    with pytest.raises(DatasetError, match="8-bit"):
        read_image(path, channels=1)
    assert read_mask(path).max() == 1000  # 16-bit masks are fine


# -- augmentation ------------------------------------------------------------------------


def _coded():
    """An image whose first channel equals the mask, so geometry can be checked."""
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 4, (12, 16)).astype(np.int32)
    image = np.stack([mask * 60, rng.integers(0, 255, (12, 16)), np.zeros((12, 16))], -1).astype(np.uint8)
    return image, mask


@pytest.mark.parametrize("transform", [
    augment.HorizontalFlip(1.0), augment.VerticalFlip(1.0), augment.RandomRotate90(1.0),
    augment.RandomCrop((8, 10)), augment.CenterCrop(8), augment.RandomCrop(20),
])
def test_geometric_transforms_move_image_and_mask_together(transform):
    image, mask = _coded()
    out_image, out_mask = transform(image, mask, np.random.default_rng(1))
    assert out_image.shape[:2] == out_mask.shape
    np.testing.assert_array_equal(out_image[..., 0], (out_mask * 60).astype(np.uint8))


def test_resize_keeps_mask_labels():
    image, mask = _coded()
    for t in (augment.Resize((30, 7)), augment.RandomResizedCrop(10, scale=(0.3, 1.0))):
        out_image, out_mask = t(image, mask, np.random.default_rng(2))
        assert out_image.shape == (*out_mask.shape, 3) and out_mask.dtype == mask.dtype
        assert set(np.unique(out_mask)) <= set(np.unique(mask))
    ml = np.stack([mask == k for k in range(4)], -1).astype(np.uint8)
    assert augment.resize_mask(ml, (24, 32)).shape == (24, 32, 4)
    np.testing.assert_array_equal(augment.resize_mask(mask, (24, 32))[::2, ::2], mask)  # exact 2x


def test_augmentation_is_deterministic_and_colour_is_image_only():
    image, mask = _coded()
    t = augment.train_augmentation(12)
    a = t(image, mask, np.random.default_rng(5))
    b = t(image, mask, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    out_image, out_mask = augment.RandomBrightnessContrast(0.3, 0.3, p=1.0)(image, mask, np.random.default_rng(0))
    assert out_mask is mask and not np.array_equal(out_image, image)
    padded, padded_mask = augment.PadToMultiple(8, mask_fill=255)(image, mask, None)
    assert padded.shape[:2] == (16, 16) and padded_mask[12:].min() == 255
    with pytest.raises(ValueError, match="p must be"):
        augment.HorizontalFlip(2)
    with pytest.raises(ValueError, match="size"):
        augment.Resize("big")


# -- preprocessing -----------------------------------------------------------------------


def test_preprocessing_params_from_registry():
    assert get_preprocessing_params("resnet18") == IMAGENET
    assert get_preprocessing_params("resnet34", pretrained="imagenet") == IMAGENET
    with pytest.raises(ValueError, match="Available pretrained options"):
        get_preprocessing_params("resnet18", pretrained="nonexistent")
    with pytest.raises(ValueError, match="resnet18"):
        get_preprocessing_params("resnet-does-not-exist")


def test_preprocess_input_matches_smp():
    from segmentation_models_pytorch.encoders._preprocessing import preprocess_input as smp_preprocess

    x = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3)).astype(np.float64)
    for params in (IMAGENET, dict(IMAGENET, input_space="BGR"), dict(IMAGENET, input_range=[0, 255]), {}):
        np.testing.assert_allclose(preprocess_input(x, **params), smp_preprocess(x, **params))
    fn = get_preprocessing_fn("resnet18")
    np.testing.assert_allclose(fn(x), smp_preprocess(x, **IMAGENET))
    small = x / 255.0  # max <= 1: not divided again (SMP's rule)
    np.testing.assert_allclose(fn(small), smp_preprocess(small, **IMAGENET))
    bgr = preprocess_input(x, input_space="BGR")
    np.testing.assert_array_equal(bgr, x[..., ::-1])


# -- loader ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_loader_shapes(mode, data_format):
    ds = SyntheticSegmentation(5, 16, mode=mode)
    dl = SegmentationDataLoader(ds, batch_size=2, data_format=data_format)
    assert len(dl) == 3
    x, y = dl[0]
    first = data_format == "channels_first"
    assert x.shape == ((2, 3, 16, 16) if first else (2, 16, 16, 3)) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1  # default: scaled to [0, 1]
    if mode == "binary":
        assert y.shape == ((2, 1, 16, 16) if first else (2, 16, 16, 1)) and y.dtype == np.float32
    elif mode == "multiclass":
        assert y.shape == (2, 16, 16) and y.dtype == np.int32
    else:
        assert y.shape == ((2, 3, 16, 16) if first else (2, 16, 16, 3)) and y.dtype == np.float32
    assert dl[2][0].shape[0] == 1
    with pytest.raises(IndexError):
        dl[3]
    # masks are what the losses take
    from keras_seg.losses import DiceLoss

    logits = np.zeros((2, ds.classes, 16, 16) if first else (2, 16, 16, ds.classes), np.float32)
    value = DiceLoss(mode, data_format=data_format)(y, logits)
    assert np.isfinite(float(keras.ops.convert_to_numpy(value)))


def test_loader_shuffle_epochs_and_preprocessing():
    ds = SyntheticSegmentation(6, 16)
    dl = SegmentationDataLoader(ds, 3, shuffle=True, drop_remainder=True, seed=1, preprocessing=IMAGENET)
    order0 = dl._order.copy()
    first = dl[0][0]
    dl.on_epoch_end()
    assert sorted(dl._order) == list(range(6)) and not np.array_equal(order0, dl._order)
    again = SegmentationDataLoader(ds, 3, shuffle=True, drop_remainder=True, seed=1, preprocessing=IMAGENET)
    np.testing.assert_array_equal(again[0][0], first)
    assert first.min() < 0  # ImageNet normalisation applied
    with pytest.raises(ValueError, match="drop_remainder"):
        SegmentationDataLoader(ds, 8, drop_remainder=True)
    with pytest.raises(ValueError, match="preprocessing"):
        SegmentationDataLoader(ds, 2, preprocessing={"mean": [0], "scale": 2})
    with pytest.raises(ValueError, match="data_format"):
        SegmentationDataLoader(ds, 2, data_format="NHWC")


def test_loader_augmentation_depends_on_seed_epoch_index_only():
    ds = SyntheticSegmentation(4, 16)
    aug = augment.train_augmentation(12)
    a = SegmentationDataLoader(ds, 2, augmentation=aug, seed=3)
    b = SegmentationDataLoader(Subset(ds, range(4)), 4, augmentation=aug, seed=3)
    np.testing.assert_array_equal(a[1][0], b[0][0][2:])
    a.on_epoch_end()
    assert not np.array_equal(a[1][0], b[0][0][2:])


def test_loader_mixed_sizes_error():
    class Mixed:
        mode = "binary"

        def __len__(self):
            return 2

        def __getitem__(self, i):
            s = 8 + 4 * i
            return np.zeros((s, s, 3), np.uint8), np.zeros((s, s), np.int32)

    with pytest.raises(ValueError, match="different sizes"):
        SegmentationDataLoader(Mixed(), 2)[0]
    assert SegmentationDataLoader(Mixed(), 2, augmentation=augment.Resize(8))[0][0].shape == (2, 8, 8, 3)


def test_loader_with_workers_and_processes():
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    ds = SyntheticSegmentation(8, 16)
    reference = SegmentationDataLoader(ds, 2, augmentation=augment.train_augmentation(16))
    expected = [reference[i] for i in range(len(reference))]
    for multiprocessing in (False, True):
        dl = SegmentationDataLoader(ds, 2, augmentation=augment.train_augmentation(16), workers=2,
                                    use_multiprocessing=multiprocessing)
        adapter = PyDatasetAdapter(dl, shuffle=False)
        adapter.on_epoch_begin()
        got = list(adapter.get_numpy_iterator())
        adapter.on_epoch_end()
        assert len(got) == 4
        for (x, y), (ex, ey) in zip(got, expected):
            np.testing.assert_array_equal(x, ex)
            np.testing.assert_array_equal(y, ey)


def test_split_and_subset():
    ds = SyntheticSegmentation(10, 16, mode="multiclass")
    train, val = split_dataset(ds, 0.3, seed=0)
    assert len(train) == 7 and len(val) == 3
    assert not set(train.indices) & set(val.indices)
    assert train.mode == "multiclass" and train.classes == 4  # attributes pass through
    np.testing.assert_array_equal(val[0][0], ds[val.indices[0]][0])
    with pytest.raises(ValueError):
        split_dataset(ds, 1.5)
    with pytest.raises(IndexError):
        Subset(ds, [10])


def test_format_target_errors():
    with pytest.raises(ValueError, match="class-index map"):
        format_target(np.zeros((4, 4, 3)), "multiclass")
    with pytest.raises(ValueError, match="classes="):
        format_target(np.zeros((4, 4)), "multilabel")
    assert format_target(np.ones((4, 4, 3)), "binary").shape == (4, 4, 1)


# -- files -------------------------------------------------------------------------------


def test_atomic_path_and_dir(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert not target.exists()
        open(tmp, "w").write("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "new" and _leftovers(tmp_path) == []

    folder = tmp_path / "d"
    for content in ("one", "two"):
        with atomic_dir(folder) as tmp:
            open(os.path.join(tmp, "f"), "w").write(content)
    assert (folder / "f").read_text() == "two"
    with pytest.raises(RuntimeError):
        with atomic_dir(folder) as tmp:
            open(os.path.join(tmp, "f"), "w").write("three")
            raise RuntimeError
    assert (folder / "f").read_text() == "two"
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []
    with pytest.raises(FileExistsError, match="not a folder"):  # a file is never replaced by a folder
        with atomic_dir(target):
            pass
    with pytest.raises(IsADirectoryError, match="is a folder"):  # nor a folder by a file
        with atomic_path(folder):
            pass
    assert target.read_text() == "new" and (folder / "f").read_text() == "two"


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    import subprocess
    import sys

    from keras_seg.data.io import remove_stale_temporaries

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = [f".m.keras.{proc.pid}-a1b2c3d4.tmp.keras", f".smp.{proc.pid}-x_y.tmp", f".smp.{proc.pid}-zz.old"]
    keep = [f".m.keras.{os.getpid()}-busy.tmp.keras", ".hidden", "m.keras", f"notes.{proc.pid}-1.tmp"]
    for name in stale[:1] + keep:
        (tmp_path / name).write_text("x")
    for name in stale[1:]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    assert sorted(os.path.basename(p) for p in remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted(keep)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_write_png_atomic(tmp_path):
    path = tmp_path / "m.png"
    write_png(path, np.arange(12, dtype=np.int64).reshape(3, 4))
    np.testing.assert_array_equal(read_mask(str(path)), np.arange(12).reshape(3, 4))
    write_png(path, np.full((2, 2), 300))
    assert read_mask(str(path)).max() == 300  # 16-bit
    with pytest.raises(ValueError, match="outside"):
        write_png(tmp_path / "bad.png", np.full((2, 2), -1))
    with pytest.raises(TypeError):
        write_png(tmp_path / "bad.png", np.zeros((2, 2, 7), np.uint8))  # Pillow cannot write it
    assert sorted(os.listdir(tmp_path)) == ["m.png"]


def test_visualize(tmp_path):
    mask = np.array([[0, 1], [2, 3]])
    rgb = visualize.colorize(mask, 4)
    assert rgb.shape == (2, 2, 3) and (rgb[0, 0] == 0).all() and len({tuple(c) for c in rgb.reshape(-1, 3)}) == 4
    ml = np.zeros((2, 2, 3), np.uint8)
    ml[0, 0] = [1, 1, 0]
    assert visualize.colorize(ml).shape == (2, 2, 3)
    image = np.full((2, 2, 3), 100, np.uint8)
    over = visualize.overlay(image, mask)
    assert (over[0, 0] == 100).all() and not (over[1, 1] == 100).all()
    ds = SyntheticSegmentation(3, 16, mode="multiclass")
    images = np.stack([ds[i][0] for i in range(3)])
    masks = np.stack([ds[i][1] for i in range(3)])
    visualize.save_prediction_grid(tmp_path / "grid.png", images, masks, masks, num_classes=4)
    visualize.save_history_plot(tmp_path / "curves.png", {"loss": [1, 0.5], "val_loss": [1.1, 0.6], "iou": [0.2, 0.5]})
    for name in ("grid.png", "curves.png"):
        with Image.open(tmp_path / name) as im:
            assert im.size[0] > 100 and im.size[1] > 100
    with pytest.raises(ValueError, match="no training curves"):
        visualize.save_history_plot(tmp_path / "empty.png", {"val_loss": [1]})
    assert _leftovers(tmp_path) == []
