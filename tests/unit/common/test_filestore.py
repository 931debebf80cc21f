"""LocalFileStore.path: keys map inside the root, and a symlink never leads out of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.common.filestore import InvalidKey, LocalFileStore


@pytest.fixture
def layout(tmp_path: Path) -> tuple[LocalFileStore, Path]:
    root, outside = tmp_path / "store", tmp_path / "outside"
    (root / "runs" / "r1").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("not the store's")
    return LocalFileStore(root), outside


def test_a_key_maps_under_the_root_whether_or_not_its_file_exists(layout: tuple[LocalFileStore, Path]) -> None:
    store, _ = layout
    assert store.path("runs/r1/a.bcl") == store.root / "runs" / "r1" / "a.bcl"
    assert store.path("store:runs/r2/new/b.bcl") == store.root / "runs" / "r2" / "new" / "b.bcl"
    assert store.path("top.txt") == store.root / "top.txt"


def test_a_folder_symlinked_out_of_the_store_is_refused(layout: tuple[LocalFileStore, Path]) -> None:
    store, outside = layout
    (store.root / "runs" / "escape").symlink_to(outside)
    with pytest.raises(InvalidKey, match="leaves the file store"):
        store.path("runs/escape/secret")
    with pytest.raises(InvalidKey, match="leaves the file store"):
        store.path("runs/escape/deeper/file")


def test_a_file_symlinked_out_of_the_store_is_refused_even_in_a_folder_already_resolved(
    layout: tuple[LocalFileStore, Path],
) -> None:
    store, outside = layout
    assert store.path("runs/r1/a.bcl").parent == store.root / "runs" / "r1"
    assert "runs/r1" in store._folders  # the folder is now remembered: only the file name is looked at
    (store.root / "runs" / "r1" / "link").symlink_to(outside / "secret")
    (store.root / "runs" / "r1" / "dir").symlink_to(outside)
    with pytest.raises(InvalidKey, match="leaves the file store"):
        store.path("runs/r1/link")
    with pytest.raises(InvalidKey, match="leaves the file store"):
        store.path("store:runs/r1/dir")


def test_symlinks_that_stay_inside_the_store_resolve_to_their_target(layout: tuple[LocalFileStore, Path]) -> None:
    store, _ = layout
    (store.root / "runs" / "r1" / "real.txt").write_text("x")
    (store.root / "runs" / "alias").symlink_to(store.root / "runs" / "r1")
    (store.root / "runs" / "r1" / "same.txt").symlink_to("real.txt")
    assert store.path("runs/alias/real.txt") == store.root / "runs" / "r1" / "real.txt"
    assert store.path("runs/r1/same.txt") == store.root / "runs" / "r1" / "real.txt"


def test_a_folder_made_after_a_lookup_is_checked_when_it_exists(layout: tuple[LocalFileStore, Path]) -> None:
    store, outside = layout
    assert store.path("runs/later/f") == store.root / "runs" / "later" / "f"  # not there yet: not remembered
    (store.root / "runs" / "later").symlink_to(outside)
    with pytest.raises(InvalidKey, match="leaves the file store"):
        store.path("runs/later/secret")
