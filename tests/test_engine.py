"""The ONNX Runtime engine: exports, their agreement with torch, engine choice, and a
colorize path that never imports torch."""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tinct.cli import SUBCOMMANDS, build_parser, main
from tinct.engine import EngineNote, OnnxModel, export_path, torch_predict_ab
from tinct.infer import Colorizer
from tinct.io import photo_from_array, read_photo
from tinct.models import create_model, save_checkpoint, shipped_models
from tinct.models.checkpoint import DEFAULT_MODEL, WEIGHTS_DIR

from conftest import gray_ramp

REPO = Path(__file__).resolve().parents[1]
EXPORTED = [name for name, path in shipped_models().items() if export_path(path).exists()]
needs_shipped_export = pytest.mark.skipif(DEFAULT_MODEL not in EXPORTED, reason="no shipped ONNX export in this build")
TOLERANCE = 5e-3  # Lab units of ab: float32 sums in another order (tinct-v2-hints of 2026-12-03 reaches 1.05e-3); a wrong weight or scaling gives whole units, a visible difference about 1-2


def _run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.parametrize("name", EXPORTED or ["(none)"])
def test_shipped_exports_agree_with_torch_on_real_photos(name, shared_data):
    if name == "(none)":
        pytest.skip("no shipped ONNX export in this build")
    exported = Colorizer(name, threads=1, engine="onnx")
    reference = Colorizer(name, threads=1, engine="torch")
    assert (exported.engine, reference.engine) == ("onnx", "torch")
    photos = [read_photo(p) for p in sorted((shared_data / "cbsd68").glob("*.png"))[::9]]
    assert len(photos) >= 5
    for onnx_ab, torch_ab in zip(exported.predict_ab_batch(photos), reference.predict_ab_batch(photos)):
        assert onnx_ab.shape == torch_ab.shape
        assert np.abs(onnx_ab - torch_ab).max() < TOLERANCE
    # The same composition follows: the photos differ by rounding at most.
    difference = exported.colorize_photo(photos[0]).astype(int) - reference.colorize_photo(photos[0]).astype(int)
    assert np.abs(difference).max() <= 1


@needs_shipped_export
def test_default_model_runs_in_onnx_runtime_and_names_its_weights():
    colorizer = Colorizer(threads=1)
    assert colorizer.engine == "onnx" and isinstance(colorizer.model, OnnxModel)
    assert colorizer.name == DEFAULT_MODEL == "tinct-v2" and colorizer.input_size == colorizer.model.config.input_size
    assert colorizer.checkpoint.family == colorizer.model.name and colorizer.checkpoint.path.suffix == ".safetensors"


_NO_TORCH_RUNNER = """
import json, sys
from tinct.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}))
"""


@needs_shipped_export
def test_colorize_command_does_not_import_torch(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(gray_ramp(60, 80), "L").save(gray)
    colour = tmp_path / "colour.jpg"  # many old photos are stored as RGB JPEGs
    Image.fromarray(np.dstack([gray_ramp(60, 80)] * 3), "RGB").save(colour)
    done = _run_python(_NO_TORCH_RUNNER, "colorize", str(gray), str(colour), "-o", str(tmp_path / "out"), "-q")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": 0, "torch": []}, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["colour.jpg", "gray.png"]


@needs_shipped_export
def test_python_api_does_not_import_torch():
    code = (
        "import sys, numpy as np, tinct\n"
        "rgb = tinct.colorize(np.full((30, 40), 120, np.uint8))\n"
        "c = tinct.Colorizer(batch_size=2)\n"
        "outs = list(c.colorize_many([np.zeros((8, 9), np.uint8)] * 3))\n"
        "print(rgb.shape, len(outs), c.engine, 'torch' in sys.modules)\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(30,", "40,", "3)", "3", "onnx", "False"]


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from tinct.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'onnxruntime', 'tinct.cli.colorize') if m in sys.modules))\n"
    )
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    for name in SUBCOMMANDS:
        assert name in done.stdout


def test_subcommand_summaries_match_their_modules():
    # `tinct --help` lists SUBCOMMANDS without importing the modules: they must agree.
    parser = build_parser()
    actions = next(a for a in parser._actions if a.dest == "command")._choices_actions
    assert {a.dest: a.help for a in actions} == SUBCOMMANDS


def test_a_checkpoint_from_training_runs_in_torch_without_a_word(tiny_checkpoint):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        colorizer = Colorizer(tiny_checkpoint, threads=1)
    assert colorizer.engine == "torch"
    with pytest.raises(ValueError, match=r"tiny.safetensors: no ONNX export \(tiny.onnx\); write it with: tinct export"):
        Colorizer(tiny_checkpoint, engine="onnx")


@pytest.fixture
def tinctnet2_checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    model = create_model("tinctnet2", width=16).eval()
    return save_checkpoint(tmp_path / "v2" / "best.safetensors", model)


def test_tinctnet2_checkpoint_exports_and_runs_in_onnx_runtime(tinctnet2_checkpoint, capsys):
    # Its encoder pads like TensorFlow ("same", asymmetric at stride 2): that must export too.
    assert main(["export", str(tinctnet2_checkpoint)]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == export_path(tinctnet2_checkpoint) and written.exists()
    exported = Colorizer(tinctnet2_checkpoint, threads=1)
    assert exported.engine == "onnx" and exported.name == "v2/best"
    assert exported.model.config.input_size == 256 and exported.model.output_size == (64, 64)
    reference = Colorizer(tinctnet2_checkpoint, threads=1, engine="torch")
    noise = np.random.default_rng(0).integers(0, 256, (200, 150), np.uint8)
    photos = [photo_from_array(gray_ramp(90, 130)), photo_from_array(noise)]
    for onnx_ab, torch_ab in zip(exported.predict_ab_batch(photos), reference.predict_ab_batch(photos)):
        assert np.abs(onnx_ab - torch_ab).max() < TOLERANCE


def test_a_mirror_averaged_model_exports_with_a_free_batch_size(tmp_path, capsys):
    torch.manual_seed(0)
    model = create_model("tinctnet2", width=8, input_size=64, flip_average=True).eval()
    with torch.no_grad():
        model.head.weight.mul_(20)  # sharper colour, so one pass and two differ clearly
    path = save_checkpoint(tmp_path / "mirrored.safetensors", model)
    assert main(["export", str(path)]) == 0
    exported = OnnxModel(export_path(path))
    l = np.random.default_rng(1).uniform(0, 100, (3, 1, 64, 64)).astype(np.float32)
    expected = torch_predict_ab(model, l)
    for batch in (1, 3):  # the export was traced at another batch size
        np.testing.assert_allclose(exported.predict_ab(l[:batch]), expected[:batch], atol=TOLERANCE)
    model.config.flip_average = False  # the same weights decoded from one pass give other colour
    assert np.abs(torch_predict_ab(model, l) - expected).max() > 10 * TOLERANCE


def test_export_has_a_dynamic_batch_and_records_its_source(tiny_checkpoint, capsys):
    assert main(["export", str(tiny_checkpoint), "-o", str(tiny_checkpoint.with_name("elsewhere.onnx"))]) == 0
    model = OnnxModel(tiny_checkpoint.with_name("elsewhere.onnx"))
    from tinct.models.checkpoint import sha256_file

    assert model.export_info["source"] == "tiny.safetensors"
    assert model.source_sha256() == sha256_file(tiny_checkpoint)
    l = np.random.default_rng(0).uniform(0, 100, (5, 1, 32, 32)).astype(np.float32)
    batch = model.predict_ab(l)
    assert batch.shape == (5, 2, 8, 8)
    np.testing.assert_allclose(model.predict_ab(l[2:3]), batch[2:3], atol=1e-5)
    from tinct.models import load

    np.testing.assert_allclose(batch, torch_predict_ab(load(tiny_checkpoint)[0], l), atol=TOLERANCE)
    # An export given directly runs as it is; the torch engine needs the weights.
    assert Colorizer(tiny_checkpoint.with_name("elsewhere.onnx")).engine == "onnx"
    with pytest.raises(ValueError, match="cannot run in the torch engine"):
        Colorizer(tiny_checkpoint.with_name("elsewhere.onnx"), engine="torch")


def test_an_export_of_other_weights_is_not_used(tiny_checkpoint, capsys):
    assert main(["export", str(tiny_checkpoint)]) == 0
    assert Colorizer(tiny_checkpoint).engine == "onnx"
    torch.manual_seed(1)  # training goes on: the checkpoint is rewritten, the export is not
    save_checkpoint(tiny_checkpoint, create_model("tinctnet", width=4, input_size=32, head="regression"))
    with pytest.warns(EngineNote, match="exported from other weights than tiny.safetensors; running in torch"):
        assert Colorizer(tiny_checkpoint).engine == "torch"
    with pytest.raises(ValueError, match="exported from other weights"):
        Colorizer(tiny_checkpoint, engine="onnx")


def test_numpy_families_cannot_export(tmp_path, capsys):
    path = save_checkpoint(tmp_path / "mlp.safetensors", create_model("window-mlp"))
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert "runs in NumPy, not torch" in err and len(err.strip().splitlines()) == 1
    assert not export_path(path).exists()


@pytest.fixture
def weights_copy(tmp_path, monkeypatch) -> Path:
    """The shipped weights folder copied to tmp_path and used in place of the real one."""
    import tinct.engine
    import tinct.models.checkpoint

    folder = tmp_path / "weights"
    folder.mkdir()
    for path in WEIGHTS_DIR.iterdir():
        if path.name == "SHA256SUMS" or path.stem == "tinct-v0":
            (folder / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(tinct.models.checkpoint, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(tinct.engine, "WEIGHTS_DIR", folder)
    return folder


@pytest.mark.skipif("tinct-v0" not in EXPORTED, reason="no shipped tinct-v0 export")
def test_a_shipped_export_without_its_line_in_the_sums_is_refused(weights_copy):
    assert Colorizer("tinct-v0", threads=1).engine == "onnx"
    sums = weights_copy / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if "tinct-v0.onnx" not in line))
    with pytest.raises(ValueError, match=r"tinct-v0.onnx: no line for it in weights/SHA256SUMS; refusing unverified weights"):
        Colorizer("tinct-v0", threads=1)
    # ... and a damaged one too.
    (weights_copy / "tinct-v0.onnx").write_bytes(b"junk")
    with pytest.raises(ValueError, match="tinct-v0.onnx: no line"):
        Colorizer("tinct-v0", threads=1)


@pytest.mark.skipif("tinct-v0" not in EXPORTED, reason="no shipped tinct-v0 export")
def test_export_of_shipped_weights_records_its_sum(weights_copy, capsys):
    sums = weights_copy / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if "tinct-v0.onnx" not in line))
    (weights_copy / "tinct-v0.onnx").unlink()
    with pytest.warns(EngineNote, match="tinct-v0 has no ONNX export; running it in torch"):
        assert Colorizer("tinct-v0", threads=1).engine == "torch"
    assert main(["export", "tinct-v0"]) == 0
    from tinct.models.checkpoint import sha256_file

    assert f"{sha256_file(weights_copy / 'tinct-v0.onnx')}  tinct-v0.onnx" in sums.read_text().splitlines()
    assert Colorizer("tinct-v0", threads=1).engine == "onnx"


def test_colorize_command_takes_the_engine(tiny_checkpoint, tmp_path, capsys):
    Image.fromarray(gray_ramp(), "L").save(tmp_path / "g.png")
    assert main(["colorize", str(tmp_path / "g.png"), "-m", str(tiny_checkpoint), "--engine", "torch", "-q"]) == 0
    assert main(["colorize", str(tmp_path / "g.png"), "-m", str(tiny_checkpoint), "--engine", "onnx", "-q", "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tinct colorize: {tiny_checkpoint}: no ONNX export (tiny.onnx); write it with: tinct export {tiny_checkpoint}"
    assert main(["export", str(tiny_checkpoint)]) == 0
    assert main(["colorize", str(tmp_path / "g.png"), "-m", str(tiny_checkpoint), "--engine", "onnx", "-q", "--overwrite"]) == 0
