"""Tests for cnnlab.models.weights: safe loading from files and URLs, and key matching."""

import builtins
import functools
import hashlib
import http.server
import json
import os
import pathlib
import struct
import threading
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

import cnnlab
from cnnlab.errors import CheckpointMismatchError, ConfigError, InvalidCheckpointError
from cnnlab.models.weights import LoadReport, classifier_keys, load_weights

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "cnnlab"


class Toy(nn.Module):
    """A classifier with the zoo interface: conv/BN backbone (with buffers) and an fc head."""

    def __init__(self, num_classes: int = 5, width: int = 4):
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU())
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.fc.in_features, num_classes)


def trained_state(model: nn.Module) -> dict:
    """A state dict that differs from any fresh init (BN running stats included)."""
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v + 7)
            for k, v in model.state_dict().items()}


def assert_state_equal(model, state):
    own = model.state_dict()
    for k, v in state.items():
        torch.testing.assert_close(own[k], v.to(own[k].dtype), rtol=0, atol=0, msg=k)


def save(state, path: pathlib.Path) -> pathlib.Path:
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def sha(path) -> str:
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_round_trip(tmp_path, suffix):
    state = trained_state(Toy())
    path = save(state, tmp_path / f"toy{suffix}")
    model = Toy()
    report = load_weights(model, path)
    assert_state_equal(model, state)
    assert sorted(report.loaded) == sorted(state)
    assert report.skipped == [] and report.missing == [] and report.head_kept == []
    assert report.format == ("safetensors" if suffix == ".safetensors" else "torch")


def test_safetensors_is_recognised_by_content(tmp_path):
    state = trained_state(Toy())
    path = save(state, tmp_path / "toy.safetensors").rename(tmp_path / "toy.bin")
    assert load_weights(Toy(), path).format == "safetensors"


@pytest.mark.parametrize("wrap", [
    lambda sd: {"state_dict": sd},
    lambda sd: {"model": sd, "optimizer": {"lr": 0.1}, "epoch": 3},
    lambda sd: {"model_state_dict": sd, "epoch": 3},
    lambda sd: {f"module.{k}": v for k, v in sd.items()},
    lambda sd: {"state_dict": {f"module._orig_mod.{k}": v for k, v in sd.items()}},
], ids=["state_dict", "cnnlab-checkpoint", "model_state_dict", "module-prefix", "nested"])
def test_containers_and_wrapper_prefixes_are_unwrapped(tmp_path, wrap):
    state = trained_state(Toy())
    path = save(wrap(state), tmp_path / "wrapped.pth")
    model = Toy()
    load_weights(model, path)
    assert_state_equal(model, state)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_are_cast_to_the_model_dtype(tmp_path, dtype):
    state = {k: v.to(dtype) if v.is_floating_point() else v
             for k, v in trained_state(Toy()).items()}
    model = Toy()
    report = load_weights(model, save(state, tmp_path / "half.safetensors"))
    assert model.fc.weight.dtype == torch.float32
    torch.testing.assert_close(model.fc.weight, state["fc.weight"].float(), rtol=0, atol=0)
    name = str(dtype).removeprefix("torch.")
    assert report.cast["fc.weight"] == f"{name}->float32"
    assert "features.1.num_batches_tracked" not in report.cast


def test_create_model_passes_weights_through(tmp_path):
    if "lenet5" not in cnnlab.list_models():
        pytest.skip("lenet5 is not in the zoo yet")
    state = trained_state(cnnlab.create_model("lenet5"))
    path = save(state, tmp_path / "lenet5.safetensors")
    assert_state_equal(cnnlab.create_model("lenet5", weights=str(path)), state)


# -- URLs and the cache ---------------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www, counting GET requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def cached_files(cache: pathlib.Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def test_download_is_cached_and_not_fetched_again(server, tmp_path, monkeypatch):
    root, base, hits = server
    state = trained_state(Toy())
    save(state, root / "toy.pth")
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "cache"))
    first = load_weights(Toy(), f"{base}/toy.pth", progress=False)
    model = Toy()
    second = load_weights(model, f"{base}/toy.pth", progress=False)
    assert hits == ["/toy.pth"]  # the second call never reached the server
    assert first.path == second.path
    assert pathlib.Path(first.path).is_relative_to(tmp_path / "cache" / "weights")
    assert cached_files(tmp_path / "cache") == ["toy.pth"]  # no temp files left behind
    assert_state_equal(model, state)


def test_hash_prefix_in_file_name_is_verified(server, tmp_path):
    root, base, hits = server
    good = save(trained_state(Toy()), root / "toy.pth")
    good = good.rename(root / f"toy-{sha(good)[:8]}.pth")
    report = load_weights(Toy(), f"{base}/{good.name}", cache_dir=tmp_path / "c1", progress=False)
    assert report.sha256 == sha(good)
    wrong = "0" if sha(good)[0] != "0" else "1"
    bad = good.rename(root / f"toy-{wrong * 8}.pth")
    with pytest.raises(InvalidCheckpointError, match="sha256 mismatch"):
        load_weights(Toy(), f"{base}/{bad.name}", cache_dir=tmp_path / "c2", progress=False)
    assert cached_files(tmp_path / "c2") == []  # neither the file nor its temp copy remains


def test_explicit_sha256_mismatch_on_download(server, tmp_path):
    root, base, hits = server
    save(trained_state(Toy()), root / "toy.pth")
    with pytest.raises(InvalidCheckpointError, match="sha256 mismatch"):
        load_weights(Toy(), f"{base}/toy.pth", sha256="ab" * 32, cache_dir=tmp_path / "c",
                     progress=False)
    assert cached_files(tmp_path / "c") == []


def test_http_error_is_a_clear_error(server, tmp_path):
    _, base, _ = server
    with pytest.raises(InvalidCheckpointError, match="could not download .*missing.pth"):
        load_weights(Toy(), f"{base}/missing.pth", cache_dir=tmp_path / "c", progress=False)
    assert cached_files(tmp_path / "c") == []


def test_file_url_and_explicit_sha256(tmp_path):
    state = trained_state(Toy())
    path = save(state, tmp_path / "toy.safetensors")
    model = Toy()
    report = load_weights(model, path.as_uri(), sha256=sha(path))
    assert report.sha256 == sha(path)
    assert_state_equal(model, state)
    with pytest.raises(InvalidCheckpointError, match="sha256 mismatch"):
        load_weights(Toy(), path.as_uri(), sha256="0" * 64 if sha(path)[0] != "0" else "1" * 64)


def test_bad_sources_and_arguments(tmp_path):
    with pytest.raises(InvalidCheckpointError, match="not found"):
        load_weights(Toy(), tmp_path / "nope.pth")
    with pytest.raises(ConfigError, match="unsupported URL scheme 'ftp'"):
        load_weights(Toy(), "ftp://example.com/x.pth")
    with pytest.raises(ConfigError, match="hex digits"):
        load_weights(Toy(), tmp_path / "nope.pth", sha256="not-a-hash")


# -- hostile and malformed files ------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("payload", ["exec", "system"])
def test_hostile_pickle_never_runs(tmp_path, monkeypatch, payload, legacy):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            if payload == "exec":
                return builtins.exec, (f"open({str(marker)!r}, 'w').write('x')",)
            return os.system, (f"touch {marker}",)

    import pickle

    pickle.loads(pickle.dumps(Exploit()))  # control: an ordinary unpickle does run the payload
    assert marker.exists()
    marker.unlink()
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": torch.zeros(5, 4), "x": Exploit()}, path,
               _use_new_zipfile_serialization=not legacy)
    # The environment switch that makes torch.load unsafe by default must not matter.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(InvalidCheckpointError, match=f"global \\S*{payload}"):
        load_weights(Toy(), path)
    assert not marker.exists()


def test_no_unsafe_torch_load_anywhere_in_the_package():
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if "weights_only=False" in p.read_text().replace(" ", "")]
    assert offenders == []


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


VALID_DATA = bytes(24)  # two float32 tensors of 2 and 4 elements


def malformed_variants(valid: bytes) -> dict[str, bytes]:
    a = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    b = {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}
    dup = json.dumps({"a": a, "b": b})[:-1] + ', "a": ' + json.dumps(a) + "}"
    return {
        "too-short": b"\x01\x00",
        "header-longer-than-file": struct.pack("<Q", 10_000) + valid[8:],
        "header-over-100MB": struct.pack("<Q", 200_000_000) + valid[8:],
        "truncated": valid[:-5],
        "trailing-bytes": valid + b"<script>polyglot</script>",
        "duplicate-keys": struct.pack("<Q", len(dup)) + dup.encode() + VALID_DATA,
        "overlapping": safetensors_bytes({"a": a, "b": {**b, "data_offsets": [4, 20]}},
                                         VALID_DATA),
        "offsets-vs-shape": safetensors_bytes({"a": {**a, "shape": [3]}, "b": b}, VALID_DATA),
        "not-json": struct.pack("<Q", 4) + b"{{{{" + VALID_DATA,
        "unknown-dtype": safetensors_bytes({"a": {**a, "dtype": "F7"}, "b": b}, VALID_DATA),
    }


def test_malformed_safetensors_fail_fast_and_clearly(tmp_path):
    a = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    b = {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}
    valid = safetensors_bytes({"a": a, "b": b}, VALID_DATA)
    (tmp_path / "ok.safetensors").write_bytes(valid)
    from cnnlab.models.weights import read_state_dict

    assert set(read_state_dict(tmp_path / "ok.safetensors")[0]) == {"a", "b"}
    for name, blob in malformed_variants(valid).items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(blob)
        start = time.perf_counter()
        with pytest.raises(InvalidCheckpointError, match="not a valid safetensors file"):
            load_weights(Toy(), path)
        assert time.perf_counter() - start < 1.0, name


@pytest.mark.parametrize("blob", [b"", b"garbage!", b"PK\x03\x04truncated zip"],
                         ids=["empty", "random", "broken-zip"])
def test_corrupt_pickle_files_are_clear_errors(tmp_path, blob):
    path = tmp_path / "bad.pth"
    path.write_bytes(blob)
    with pytest.raises(InvalidCheckpointError, match="empty|corrupt"):
        load_weights(Toy(), path)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save(trained_state(Toy()), tmp_path / "toy.pth")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InvalidCheckpointError, match="corrupt, truncated"):
        load_weights(Toy(), path)


def test_nonfinite_weights_are_refused_unless_allowed(tmp_path):
    state = trained_state(Toy())
    state["fc.weight"][0, 0] = float("nan")
    path = save(state, tmp_path / "nan.safetensors")
    with pytest.raises(InvalidCheckpointError, match="NaN or Inf.*fc.weight"):
        load_weights(Toy(), path)
    model = Toy()
    load_weights(model, path, allow_nonfinite=True)
    assert torch.isnan(model.fc.weight[0, 0])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_only_raise_invalid_checkpoint(tmp_path, data):
    # RELIABILITY F2: mutated weights files either load or raise InvalidCheckpointError.
    fmt = data.draw(st.sampled_from([".pth", ".safetensors"]))
    path = tmp_path / f"fuzz{fmt}"
    if not path.exists():
        save(trained_state(Toy()), path)
    blob = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(blob)))
    target = tmp_path / f"mutant{fmt}"
    target.write_bytes(bytes(blob[:cut]))
    try:
        load_weights(Toy(), target, strict=False, allow_nonfinite=True)
    except (InvalidCheckpointError, CheckpointMismatchError):
        pass


# -- matching -------------------------------------------------------------------------------


def test_strict_mismatch_lists_missing_unexpected_and_shapes(tmp_path):
    state = trained_state(Toy(width=6))  # every backbone shape differs
    state["extra.weight"] = torch.zeros(1)
    del state["features.1.running_var"]
    path = save(state, tmp_path / "other.pth")
    model = Toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as exc:
        load_weights(model, path)
    msg = str(exc.value)
    assert "missing 1 (features.1.running_var)" in msg
    assert "unexpected 1 (extra.weight)" in msg
    assert "features.0.weight: file [6, 3, 3, 3] vs model [4, 3, 3, 3]" in msg
    assert "strict=False" in msg
    for k, v in model.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k


def test_long_mismatch_lists_are_truncated(tmp_path):
    state = {f"junk.{i}": torch.zeros(1) for i in range(50)}
    state.update(trained_state(Toy()))
    with pytest.raises(CheckpointMismatchError, match=r"unexpected 50 \(.*\.\.\. and 42 more\)"):
        load_weights(Toy(), save(state, tmp_path / "junk.pth"))


def test_non_strict_loads_the_intersection_and_reports_the_rest(tmp_path):
    state = trained_state(Toy())
    state["features.0.weight"] = torch.zeros(8, 3, 3, 3)
    state["extra.weight"] = torch.zeros(1)
    model = Toy()
    fresh_conv = model.features[0].weight.detach().clone()
    with pytest.warns(UserWarning, match="strict=False loaded"):
        report = load_weights(model, save(state, tmp_path / "x.pth"), strict=False)
    assert torch.equal(model.features[0].weight, fresh_conv)
    assert_state_equal(model, {k: v for k, v in state.items()
                               if k not in ("features.0.weight", "extra.weight")})
    assert report.skipped == ["extra.weight", "features.0.weight"]
    assert report.mismatched["features.0.weight"] == ((8, 3, 3, 3), (4, 3, 3, 3))
    assert json.dumps(report.to_dict())  # JSON-ready for run reports


def test_nothing_in_common_fails_even_when_not_strict(tmp_path):
    path = save({"a.weight": torch.zeros(3)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointMismatchError, match="none of the 1 tensors"):
        load_weights(Toy(), path, strict=False)


def test_only_the_head_differs_loads_the_backbone_with_a_warning(tmp_path):
    state = trained_state(Toy(num_classes=1000))
    model = Toy(num_classes=10)
    fresh_head = model.fc.weight.detach().clone()
    with pytest.warns(UserWarning, match=r"kept the freshly initialised classifier.*fc.weight"):
        report = load_weights(model, save(state, tmp_path / "in1k.pth"))
    assert_state_equal(model, {k: v for k, v in state.items() if not k.startswith("fc.")})
    assert torch.equal(model.fc.weight, fresh_head)
    assert report.head_kept == ["fc.bias", "fc.weight"]
    assert report.skipped == ["fc.bias", "fc.weight"]
    assert "kept the new classifier" in str(report)


def test_headless_weights_load_into_the_backbone(tmp_path):
    state = {k: v for k, v in trained_state(Toy()).items() if not k.startswith("fc.")}
    model = Toy()
    with pytest.warns(UserWarning, match="classifier"):
        report = load_weights(model, save(state, tmp_path / "features.pth"))
    assert report.missing == ["fc.weight", "fc.bias"] and report.head_kept


@pytest.mark.parametrize("name, head", [
    ("resnet18", {"fc.weight", "fc.bias"}),
    ("squeezenet1_1", {"classifier.1.weight", "classifier.1.bias"}),  # a 1x1-conv head
])
def test_zoo_classifier_keys(name, head):
    if name not in cnnlab.list_models():
        pytest.skip(f"{name} is not in the zoo yet")
    with torch.device("meta"):
        assert classifier_keys(cnnlab.create_model(name)) == head


def test_imagenet_resnet18_weights_into_a_10_class_resnet18(tmp_path):
    if "resnet18" not in cnnlab.list_models():
        pytest.skip("resnet18 is not in the zoo yet")
    source = cnnlab.create_model("resnet18")  # 1000 classes, as torchvision's file
    path = save(source.state_dict(), tmp_path / "resnet18.safetensors")
    model = cnnlab.create_model("resnet18", num_classes=10)
    with pytest.warns(UserWarning, match="classifier"):
        report = load_weights(model, path)
    assert isinstance(report, LoadReport)
    assert report.head_kept == ["fc.bias", "fc.weight"]
    assert report.mismatched["fc.weight"] == ((1000, 512), (10, 512))
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
