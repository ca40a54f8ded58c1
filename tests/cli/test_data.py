import io
import json
import tarfile

import numpy as np
from PIL import Image

from cnnlab.cli.main import main


def png(colour, size=(12, 10)) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", size, colour).save(b, "PNG")
    return b.getvalue()


def truncated_jpeg() -> bytes:
    b = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(b, "JPEG", quality=90)
    return b.getvalue()[: len(b.getvalue()) * 6 // 10]


def make_set(tmp_path, bad=True):
    files = {f"{c}/{i}.png": png(colour) for c, colour in [("cat", (220, 20, 20)),
                                                          ("dog", (20, 20, 220))] for i in range(3)}
    if bad:
        files["cat/broken.jpg"] = truncated_jpeg()
        files["dog/notes.txt"] = b"hi"
    for rel, data in files.items():
        p = tmp_path / "pets" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return tmp_path / "pets"


def test_info_text_and_json(tmp_path, capsys):
    root = make_set(tmp_path)
    assert main(["data", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "classes   2" in out and "notes.txt" in out and "mean" in out
    assert main(["data", "info", str(root), "--json", "--sample", "0"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == ["cat", "dog"] and info["counts"]["all"] == {"cat": 3, "dog": 3}
    assert [p["path"].endswith("broken.jpg") for p in info["problems"]["skipped"]].count(True) == 1


def test_scan_exit_status_and_strict(tmp_path, capsys):
    root = make_set(tmp_path)
    assert main(["data", "scan", str(root)]) == 1
    out = capsys.readouterr().out
    assert "broken.jpg: truncated" in out and "notes.txt" in out
    assert main(["data", "scan", str(root), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["skipped_count"] == 2
    assert main(["data", "scan", str(root), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab data: error:") and len(err.strip().splitlines()) == 1
    clean = make_set(tmp_path / "clean", bad=False)
    assert main(["data", "scan", str(clean)]) == 0


def test_archive_and_split_commands(tmp_path, capsys):
    root = make_set(tmp_path, bad=False)
    with tarfile.open(tmp_path / "pets.tar.gz", "w:gz") as tf:
        tf.add(root, arcname="pets")
    assert main(["data", "info", str(tmp_path / "pets.tar.gz")]) == 0
    assert "root pets/" in capsys.readouterr().out
    out_file = tmp_path / "split.json"
    assert main(["data", "split", str(root), "--val-fraction", "0.34", "-o", str(out_file)]) == 0
    assert "train 4, val 2" in capsys.readouterr().out
    assert json.loads(out_file.read_text())["val_fraction"] == 0.34


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "no class folders" in capsys.readouterr().err


def test_csv_cifar_idx_and_manifest(tmp_path, capsys):
    import gzip
    import pickle
    import struct

    root = make_set(tmp_path, bad=False)
    rows = [f"{c}/{i}.png,{c.upper()}" for c in ("cat", "dog") for i in range(3)]
    (root / "list.csv").write_text("\n".join(["path,label", *rows, "cat/nope.png,X"]) + "\n")
    assert main(["data", "info", str(root / "list.csv"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"] == ["CAT", "DOG"] and info["problems"]["skipped_count"] == 1
    assert main(["data", "manifest", str(root / "list.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["manifest_hash"] == info["manifest_hash"]

    cifar = tmp_path / "cifar"
    cifar.mkdir()
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / name).write_bytes(pickle.dumps(batch))
    (cifar / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"plane", b"car"]}))
    assert main(["data", "info", str(cifar)]) == 0
    out = capsys.readouterr().out
    assert "cifar files" in out and "plane" in out and "across splits" in out
    assert main(["data", "manifest", str(cifar)]) == 0
    assert len(capsys.readouterr().out.strip()) == 64

    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for prefix in ("train", "t10k"):
        (mnist / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(
            bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 4, 4) + bytes(32)))
        (mnist / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(
            bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes(3)))
    assert main(["data", "scan", str(mnist)]) == 2
    err = capsys.readouterr().err
    assert "2 images but" in err and len(err.strip().splitlines()) == 1
