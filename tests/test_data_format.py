"""The dataset format is owned by one module (issue 12): gmn_plugins/data/format.py names every file and array key,
the split codes, and reads what gmn_plugins/mese writes. Real MuJoCo, a tiny dataset."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from gmn_plugins.data import format as fmt
from gmn_plugins.mese.generate import DatasetConfig, generate
from gmn_plugins.core.plugins import load_registry

PACKAGE = Path(fmt.__file__).resolve().parents[1]


def test_a_generated_shard_holds_exactly_the_keys_the_format_names(tmp_path):
    registry = load_registry()
    config = DatasetConfig(seed=3, views=2, shard_size=2, splits={"train": 2, "val": 1})
    manifest = generate(tmp_path, config, workers=1, progress=False, registry=registry)
    assert (tmp_path / fmt.CONFIG).is_file() and (tmp_path / fmt.MANIFEST).is_file()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob(fmt.SHARD_GLOB)) == [
        "train/shard-00000.npz", "val/shard-00000.npz"]  # fmt: skip
    assert fmt.shard_path(tmp_path, "val", 0).is_file() and fmt.record_path(fmt.shard_path(tmp_path, "val", 0)).is_file()
    arrays = fmt.load_split(tmp_path, "train")
    kinds = {registry.sensor(name).query for name in config.sensors}
    named = {fmt.LABEL, *fmt.OBJECT_KEYS, *config.sensors, *(fmt.query_key(k) for k in kinds)}
    assert named <= set(arrays), "a key the format names is missing from a shard"
    assert set(arrays) - named == {"grasp_attempts"}, "the wrist kind keeps grasp_attempts besides; nothing else"
    assert all(len(a) == 2 for a in arrays.values()) and arrays[fmt.LABEL].dtype == np.int64
    assert arrays[fmt.query_key("camera")].shape == (2, 2, 5) and arrays["walk"].shape == (2, 4)
    assert set(manifest["shapes"]) == set(arrays)
    assert fmt.read_manifest(tmp_path) == manifest


def test_the_reader_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(fmt.DataError, match=r"manifest.json: no manifest; generate the dataset or run gmn-data finalize"):
        fmt.load_split(tmp_path, "train")
    generate(tmp_path, DatasetConfig(seed=3, views=1, shard_size=1, splits={"train": 1}), workers=1, progress=False)
    with pytest.raises(fmt.DataError, match=r"manifest.json: splits: no split 'test'"):
        fmt.load_split(tmp_path, "test")
    fmt.shard_path(tmp_path, "train", 0).write_bytes(b"not a shard")
    with pytest.raises(fmt.DataError, match=r"shard-00000.npz: missing or corrupted .*gmn-data repair"):
        fmt.load_split(tmp_path, "train")


def test_split_codes_follow_the_split_order_that_seeds_every_scene():
    # (seed, split code, index) seeds each scene and each mask: changing a code changes every dataset's bytes
    assert fmt.SPLITS == ("train", "val", "test") and fmt.SPLIT_CODES == {"train": 0, "val": 1, "test": 2}


def _literals(path: Path) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]  # fmt: skip


def test_no_other_module_spells_the_format():
    """File names, the query key prefix and split codes appear as code only in data/format.py (docstrings and
    messages may mention them, so only string constants that ARE such a name or prefix count)."""
    spelled = re.compile(r"^(manifest\.json|config\.json|\.checksums\.json|query\.|query\.[a-z_]+|\*/shard-\*\.npz|shard-)$")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(fmt.__file__).resolve():
            continue
        found += [f"{path.relative_to(PACKAGE)}:{line}: {value!r}" for line, value in _literals(path) if spelled.match(value)]
        tree = ast.parse(path.read_text())
        found += [f"{path.relative_to(PACKAGE)}:{node.lineno}: defines SPLIT_CODES/SPLITS" for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in ("SPLIT_CODES", "SPLITS")
                                                          for t in node.targets)]  # fmt: skip
    assert not found, "spell these through gmn_plugins.data.format:\n" + "\n".join(found)


def test_a_split_is_packed_once_and_read_through_memory_maps(tmp_path):
    generate(tmp_path, DatasetConfig(seed=5, views=2, shard_size=2, splits={"train": 3}), workers=1, progress=False)
    whole = fmt.load_split(tmp_path, "train")
    maps = fmt.open_split(tmp_path, "train")
    assert set(maps) == set(whole) and all(isinstance(m, np.memmap) for m in maps.values())
    assert all(np.array_equal(maps[k], whole[k]) and maps[k].dtype == whole[k].dtype for k in whole)
    index = fmt.packed_dir(tmp_path, "train") / fmt.PACKED_INDEX
    stamp = index.stat().st_mtime_ns
    fmt.open_split(tmp_path, "train")
    assert index.stat().st_mtime_ns == stamp, "a packed split is not packed again"
    assert not list(fmt.packed_dir(tmp_path, "train").glob(".*.tmp"))

    rgb = fmt.packed_dir(tmp_path, "train") / "camera.rgb.npy"
    data = bytearray(rgb.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last scene's last pixel
    rgb.write_bytes(bytes(data))
    with pytest.raises(fmt.DataError, match=r"camera.rgb.npy: missing or changed since it was packed"):
        fmt.open_split(tmp_path, "train")
    again = fmt.open_split(tmp_path, "train")  # packed anew from the (intact) shards
    assert np.array_equal(again["camera.rgb"], whole["camera.rgb"])
    stamp = index.stat().st_mtime_ns
    fmt.open_split(tmp_path, "train")
    assert index.stat().st_mtime_ns == stamp

    manifest = tmp_path / fmt.MANIFEST  # a changed manifest (e.g. after a repair) is packed again
    manifest.write_text(manifest.read_text().replace('"blocks": 5', '"blocks": 5, "note": 1'))
    fmt.open_split(tmp_path, "train")
    assert index.stat().st_mtime_ns != stamp


def test_gmn_data_pack_packs_every_split_and_names_an_unknown_one(tmp_path):
    import json

    from conftest import run_cli

    generate(tmp_path, DatasetConfig(seed=5, views=1, shard_size=2, splits={"train": 2, "val": 1}), workers=1,
             progress=False)  # fmt: skip
    done = run_cli("data", "pack", str(tmp_path), "--no-progress")
    assert done.returncode == 0, done.stderr
    packed = json.loads(done.stdout)["packed"]
    assert {split: p["scenes"] for split, p in packed.items()} == {"train": 2, "val": 1}
    assert packed["train"]["bytes"] == sum(p.stat().st_size for p in fmt.packed_dir(tmp_path, "train").glob("*.npy"))
    done = run_cli("data", "pack", str(tmp_path), "--splits", "test")
    assert done.returncode == 2 and done.stderr.strip() == f"{tmp_path / fmt.MANIFEST}: splits: no split 'test'"
