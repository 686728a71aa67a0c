import json

import pytest
import torch
from safetensors import safe_open

from tinct.models import create_model, list_models, load, read_checkpoint_info, save_checkpoint
from tinct.models.checkpoint import WEIGHTS_DIR, sha256_file, shipped_models


def test_unknown_name_lists_known_names():
    with pytest.raises(KeyError) as info:
        create_model("tinctnte")
    assert "tinctnet" in str(info.value) and "Did you mean" in str(info.value)


def test_unknown_config_key_is_named():
    with pytest.raises(TypeError, match="widht"):
        create_model("tinctnet", widht=3)


def test_checkpoint_round_trip_rebuilds_the_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("tinctnet", width=4, input_size=32).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, data_manifest_sha256="ab" * 32, metrics={"psnr": 1.5})
    info = read_checkpoint_info(path)
    assert info["model"] == "tinctnet" and info["config"]["width"] == 4 and info["format_version"] == 1
    assert info["metrics"] == {"psnr": 1.5} and info["data_manifest_sha256"] == "ab" * 32
    again = load(path)
    assert again.config == model.config
    x = torch.rand(2, 1, 32, 32) * 100
    with torch.inference_mode():
        assert torch.equal(model.predict_ab(x), again.predict_ab(x))


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    torch.manual_seed(0)
    model = create_model("tinctnet", width=8, input_size=32).eval()
    full = save_checkpoint(tmp_path / "full.safetensors", model)
    half = save_checkpoint(tmp_path / "half.safetensors", model, storage="float16")
    assert half.stat().st_size < 0.55 * full.stat().st_size
    with safe_open(str(half), framework="pt") as handle:
        assert handle.get_tensor("head.weight").dtype == torch.float16
    again = load(half)
    assert all(p.dtype == torch.float32 for p in again.parameters())
    x = torch.rand(2, 1, 32, 32) * 100
    with torch.inference_mode():
        difference = (model.predict_ab(x) - again.predict_ab(x)).abs().max()
    assert 0 < difference < 0.5  # rounded, not lost
    with pytest.raises(ValueError, match="storage"):
        save_checkpoint(tmp_path / "x.safetensors", model, storage="int8")


def test_checkpoint_is_plain_safetensors(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", create_model("tinctnet", width=4, input_size=32))
    with safe_open(str(path), framework="pt") as handle:
        assert json.loads(handle.metadata()["tinct"])["model"] == "tinctnet"
        assert "head.weight" in handle.keys()


def test_load_errors_are_specific(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a safetensors checkpoint"):
        load(tmp_path / "junk.safetensors")
    with pytest.raises(KeyError, match="unknown model"):
        load("no-such-model")


def test_every_family_is_listed():
    assert "tinctnet" in list_models()


def test_shipped_weights_match_their_sums():
    shipped = shipped_models()
    if not shipped:
        pytest.skip("no shipped weights in this build")
    sums = dict(line.split()[::-1] for line in (WEIGHTS_DIR / "SHA256SUMS").read_text().splitlines() if line)
    for name, path in shipped.items():
        assert sums[path.name] == sha256_file(path), name
        assert path.stat().st_size <= 10 * 1024 * 1024
        model = load(name)
        with torch.inference_mode():
            ab = model.predict_ab(torch.full((1, 1, 64, 64), 50.0))
        assert torch.isfinite(ab).all()
