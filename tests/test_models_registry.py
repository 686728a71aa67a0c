import json

import pytest
import torch
from safetensors import safe_open

from tinct.models import CheckpointInfo, create_model, list_models, load, model_class, read_checkpoint_info, save_checkpoint
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
    again, loaded = load(path)
    assert again.config == model.config
    assert loaded == CheckpointInfo(path, "tinctnet", info["config"], {"psnr": 1.5}, "ab" * 32, {})
    assert loaded.header() == info and CheckpointInfo.read(path) == loaded
    assert not hasattr(again, "checkpoint_info") and not hasattr(again, "checkpoint_path")  # nothing bolted on
    x = torch.rand(2, 1, 32, 32) * 100
    with torch.inference_mode():
        assert torch.equal(model.predict_ab(x), again.predict_ab(x))


def test_every_family_declares_its_capabilities():
    declared = {}
    for name in list_models():  # the class's declaration; an instance where its config decides
        model = create_model(name, width=4, input_size=32) if name.startswith("tinctnet") else model_class(name)
        declared[name] = (model.backend, model.uses_labels, model.fit_statistics_from, model.has_palette,
                          model.custom_training_step, model.tunable_decoding, model.takes_hints)
    assert declared["tinctnet"] == ("torch", False, "ab_samples", False, False, True, False)
    assert declared["tinctnet2"][2:] == ("ab_samples", False, False, True, False)
    assert declared["zhang16"][2:6] == ("ab_samples", False, False, False)
    assert declared["palette-cnn"][2:4] == ("dataset", True) and declared["pix2pix"][4] is True
    assert declared["window-mlp"] == ("numpy", False, None, False, False, False, False)
    assert create_model("tinctnet", width=4, input_size=32, head="regression").tunable_decoding is False
    assert create_model("tinctnet", width=4, input_size=32, classes=3).uses_labels is True


def test_float16_storage_halves_the_file_and_loads_as_float32(tmp_path):
    torch.manual_seed(0)
    model = create_model("tinctnet", width=8, input_size=32).eval()
    full = save_checkpoint(tmp_path / "full.safetensors", model)
    half = save_checkpoint(tmp_path / "half.safetensors", model, storage="float16")
    assert half.stat().st_size < 0.55 * full.stat().st_size
    with safe_open(str(half), framework="pt") as handle:
        assert handle.get_tensor("head.weight").dtype == torch.float16
    again, _ = load(half)
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
        model, _ = load(name)
        with torch.inference_mode():
            ab = model.predict_ab(torch.full((1, 1, 64, 64), 50.0))
        assert torch.isfinite(ab).all()


# ---------------------------------------------------------------------------------------------
# Damaged checkpoints: one line that names the file, never a traceback
# ---------------------------------------------------------------------------------------------


def _rewrite_description(path, change):
    """Rewrite the tinct description in a safetensors header (the tensors are kept)."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    header["__metadata__"]["tinct"] = json.dumps(change(json.loads(header["__metadata__"]["tinct"])))
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + length :])


def _with_config(**values):
    def change(info):
        info["config"].update(values)
        return info

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_with_config(width=24), r"weights do not fit model 'tinctnet' as its stored config builds it: tensors \d+ of another shape \(first stage1.0.0.weight: \(8, 1, 3, 3\) in the file, \(24, 1, 3, 3\) for the config\)"),
        (lambda info: [info], r"the tinct model description is a JSON list, expected an object"),
        (lambda info: {k: v for k, v in info.items() if k != "model"}, r"the tinct model description has no 'model'"),
        (_with_config(width="wide"), r"config 'width' of model 'tinctnet' must be int, got 'wide' \(str\)"),
        (_with_config(temperature=[0.5]), r"config 'temperature' of model 'tinctnet' must be float, got \[0.5\] \(list\)"),
        (_with_config(widht=3), r"model 'tinctnet' has no config key\(s\) \['widht'\]"),
        (_with_config(input_size=30), r"tinctnet input_size must be a multiple of 16, got 30"),
        (lambda info: {**info, "config": "wide"}, r"'config' is a str, expected an object"),
        (lambda info: {**info, "model": "tinctnte"}, r"unknown model 'tinctnte'"),
    ],
)
def test_damaged_checkpoints_give_one_line_naming_the_file(tmp_path, change, message):
    path = save_checkpoint(tmp_path / "damaged.safetensors", create_model("tinctnet", width=8, input_size=32))
    _rewrite_description(path, change)
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text


def test_damaged_checkpoints_are_one_line_in_the_commands(tmp_path, capsys):
    from tinct.cli import main
    from tinct.infer import Colorizer

    path = save_checkpoint(tmp_path / "damaged.safetensors", create_model("tinctnet", width=8, input_size=32))
    _rewrite_description(path, lambda info: [info])
    with pytest.raises(ValueError, match="damaged.safetensors: the tinct model description is a JSON list"):
        Colorizer(path)
    assert main(["models", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"tinct models: {path}: the tinct model description is a JSON list, expected an object"
    assert main(["export", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_header_and_tensor_layout_are_checked_without_torch(tmp_path):
    from tinct.models import read_safetensors_header

    path = save_checkpoint(tmp_path / "m.safetensors", create_model("tinctnet", width=4, input_size=32))
    metadata, tensors = read_safetensors_header(path)
    assert json.loads(metadata["tinct"])["model"] == "tinctnet"
    assert tensors["head.weight"]["shape"] == [ab_bins_count(), 8, 1, 1] and tensors["head.weight"]["dtype"] == "F32"
    path.write_bytes(path.read_bytes()[:-100])  # truncated: the last tensor's bytes are missing
    with pytest.raises(ValueError, match=r"m.safetensors: not a safetensors checkpoint \(tensor '.*': bytes"):
        read_checkpoint_info(path)
    (tmp_path / "short.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(ValueError, match="short.safetensors: not a safetensors checkpoint"):
        read_checkpoint_info(tmp_path / "short.safetensors")


def ab_bins_count() -> int:
    from tinct.models.ab_bins import NUM_BINS

    return NUM_BINS


def test_shipped_weights_without_a_line_in_the_sums_are_refused(tmp_path, monkeypatch):
    import tinct.models.checkpoint

    folder = tmp_path / "weights"
    folder.mkdir()
    model = create_model("tinctnet", width=4, input_size=32)
    save_checkpoint(folder / "listed.safetensors", model)
    save_checkpoint(folder / "unlisted.safetensors", model)
    (folder / "SHA256SUMS").write_text(f"{sha256_file(folder / 'listed.safetensors')}  listed.safetensors\n")
    monkeypatch.setattr(tinct.models.checkpoint, "WEIGHTS_DIR", folder)
    assert load("listed")[0].config.width == 4
    with pytest.raises(ValueError, match=r"unlisted.safetensors: no line for it in weights/SHA256SUMS; refusing unverified weights"):
        load("unlisted")
    (folder / "listed.safetensors").write_bytes((folder / "listed.safetensors").read_bytes()[:-4] + b"\x00" * 4)
    with pytest.raises(ValueError, match="listed.safetensors: SHA-256 does not match weights/SHA256SUMS"):
        load("listed")


def test_finding_and_describing_weights_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tinct.models import read_checkpoint_info, resolve_model_path, shipped_models\n"
        "infos = [read_checkpoint_info(resolve_model_path(name))['model'] for name in shipped_models()]\n"
        "print(len(infos), 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "False"


def test_every_file_in_the_weights_folder_is_listed_in_the_sums():
    sums = dict(line.split()[::-1] for line in (WEIGHTS_DIR / "SHA256SUMS").read_text().splitlines() if line)
    files = [p for p in WEIGHTS_DIR.iterdir() if p.suffix in (".safetensors", ".onnx")]
    assert files
    for path in files:
        assert sums.get(path.name) == sha256_file(path), path.name
    for name, path in shipped_models().items():
        assert path.with_suffix(".onnx").exists(), f"{name} has no ONNX export: run tinct export {name}"
