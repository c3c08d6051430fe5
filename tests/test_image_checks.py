"""Images in a folder are checked at ``setup`` (every header), not when an epoch reaches them; a bad
one stops the run with one line naming the file and the fix, or ``skip_bad`` leaves it out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genlight.datamodules.image_folder import ImageFolderDataModule
from genlight.datamodules.unpaired_folders import UnpairedFoldersDataModule
from genlight.errors import DataFilesError


def _write(folder, n: int, bad: tuple[str, ...] = ()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    for name in bad:
        if name.startswith("trunc"):
            data = (folder / "000.png").read_bytes()
            (folder / name).write_bytes(data[: len(data) // 2])
        else:
            (folder / name).write_text("not an image")


def test_a_bad_image_stops_setup_with_its_name_and_the_fix(tmp_path):
    _write(tmp_path / "imgs", 20, bad=("zz_broken.png",))
    dm = ImageFolderDataModule(data_dir=str(tmp_path / "imgs"), image_size=8, channels=1)
    with pytest.raises(DataFilesError) as info:
        dm.setup("fit")  # before any epoch
    message = str(info.value)
    assert "\n" not in message and "zz_broken.png" in message
    assert "--data.skip_bad true" in message and "remove the file" in message


def test_skip_bad_leaves_bad_images_out_and_says_how_many(tmp_path, caplog):
    _write(tmp_path / "imgs" / "cat", 10, bad=("x.png",))
    _write(tmp_path / "imgs" / "dog", 10, bad=("truncated.png",))
    dm = ImageFolderDataModule(data_dir=str(tmp_path / "imgs"), image_size=8, channels=1, skip_bad=True)
    with caplog.at_level("INFO"):
        dm.setup("fit")
    total = len(dm.train_set) + len(dm.val_set) + len(dm.test_set)
    assert total == 20 and dm.num_classes == 2
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(lines) == 1 and "skipped 2 unreadable image(s) of 22" in lines[0]
    for split in (dm.train_set, dm.val_set, dm.test_set):  # every remaining item loads
        for i in range(len(split)):
            split[i]


def test_unpaired_folders_check_both_domains_and_name_the_option(tmp_path):
    _write(tmp_path / "a", 12)
    _write(tmp_path / "b", 12, bad=("bad.png",))
    dm = UnpairedFoldersDataModule(dir_a=str(tmp_path / "a"), dir_b=str(tmp_path / "b"), image_size=8, channels=1)
    with pytest.raises(DataFilesError, match=r"domain B.*bad\.png is not a readable image.*--data\.skip_bad true"):
        dm.setup("fit")
    skipping = UnpairedFoldersDataModule(
        dir_a=str(tmp_path / "a"), dir_b=str(tmp_path / "b"), image_size=8, channels=1, skip_bad=True
    )
    skipping.setup("fit")
    assert len(skipping.train_set) > 0


def test_a_missing_domain_folder_names_dir_a_or_dir_b(tmp_path):
    _write(tmp_path / "a", 12)
    dm = UnpairedFoldersDataModule(dir_a=str(tmp_path / "a"), dir_b=str(tmp_path / "nope"), image_size=8, channels=1)
    with pytest.raises(DataFilesError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert "Point --data.dir_b at a folder of images" in message and "data_dir" not in message
