"""Start-up in a fresh process: warm at import, cold_start once, clear errors for missing or bad models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handler.config import PACKAGE_MODELS_DIR

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
import handler
from handler.service import analyze_bytes
data = open(sys.argv[1], 'rb').read()
print(json.dumps([analyze_bytes(data).result['cold_start'] for _ in range(3)]))
"""


def python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_first_analysis_is_cold_then_warm() -> None:
    proc = python(PROBE, str(ROOT / "tests" / "fixtures" / "camera.png"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [True, False, False]
    loaded = [json.loads(line) for line in proc.stdout.splitlines() if '"model_loaded"' in line]
    assert [e["net"] for e in loaded] == ["detector", "landmarks", "gender", "agegender"]
    assert all(e["load_ms"] > 0 and e["warm_ms"] > 0 for e in loaded)


def copy_models(tmp_path: Path) -> Path:
    dest = tmp_path / "models"
    shutil.copytree(PACKAGE_MODELS_DIR, dest, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dest


@pytest.mark.parametrize("damage, message", [
    ("missing_dir", "model manifest not found"),
    ("missing_file", "model file missing"),
    ("truncated", "truncated or wrong file"),
])
def test_bad_models_stop_start_up_naming_the_file(tmp_path: Path, damage: str, message: str) -> None:
    models = copy_models(tmp_path)
    weights = models / "agegender-faceapi.onnx"
    if damage == "missing_dir":
        shutil.rmtree(models)
    elif damage == "missing_file":
        weights.unlink()
    else:
        weights.write_bytes(weights.read_bytes()[:1000])
    proc = python("import handler", env={"MODEL_DIR": str(models)})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("handler.errors.ModelError") and message in last and "make models" in last
    if damage != "missing_dir":
        assert str(weights) in last


def test_corrupt_weights_are_caught_by_verify_models_and_the_package_build(tmp_path: Path) -> None:
    """Same size, one byte flipped: start-up checks sizes only, so the hash checks where files are written."""
    models = copy_models(tmp_path)

    def verify_models() -> subprocess.CompletedProcess:  # what `make verify-models` runs
        return subprocess.run([sys.executable, "models/fetch.py", "--check", "--dest", str(models)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    assert verify_models().returncode == 0
    weights = models / "agegender-faceapi.onnx"
    data = bytearray(weights.read_bytes())
    data[5000] ^= 0xFF
    weights.write_bytes(bytes(data))
    proc = verify_models()
    assert proc.returncode == 1 and f"missing or corrupt: {weights}" in proc.stderr
    assert proc.stderr.count("missing or corrupt") == 1
    sys.path.insert(0, str(ROOT / "infra"))
    from package.stage import verify_model_hashes

    with pytest.raises(SystemExit, match=r"agegender-faceapi\.onnx does not match"):
        verify_model_hashes(models)


def test_bad_setting_stops_start_up() -> None:
    proc = python("import handler", env={"MAX_FACES": "0"})
    assert proc.returncode != 0 and "MAX_FACES=0 is out of range" in proc.stderr


SNAPSTART = """
import json
import snapshot_restore_py as hooks
import handler.aws as aws
from handler import runtime
from handler.service import analyze_bytes
analyze_bytes(open('tests/fixtures/camera.png', 'rb').read())
before = runtime.peek_cold_start()
for func, args, kwargs in hooks._before_snapshot_registry:
    func(*args, **kwargs)
for func, args, kwargs in hooks._after_restore_registry:
    func(*args, **kwargs)
print(json.dumps({"hooks": [len(hooks._before_snapshot_registry), len(hooks._after_restore_registry)],
                  "cold_before_restore": before, "cold_after_restore": runtime.peek_cold_start(),
                  "s3_client_dropped": aws._s3_client is None}))
"""


@pytest.mark.parametrize("on_lambda", [True, False])
def test_snapstart_hooks_only_on_lambda(on_lambda: bool) -> None:
    env = {"AWS_LAMBDA_FUNCTION_NAME": "faceread", "AWS_DEFAULT_REGION": "us-east-1"} if on_lambda else {}
    proc = python(SNAPSTART, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if on_lambda:
        assert out == {"hooks": [1, 1], "cold_before_restore": False, "cold_after_restore": True,
                       "s3_client_dropped": True}
    else:
        assert out["hooks"] == [0, 0]


def test_cli_prints_json_and_writes_the_annotated_and_redacted_images(tmp_path: Path) -> None:
    out, redacted = tmp_path / "annotated.jpg", tmp_path / "redacted.jpg"
    proc = subprocess.run([sys.executable, "-m", "handler", "tests/fixtures/camera.png", "--out", str(out),
                           "--redacted", str(redacted)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # stdout is the result alone (pipeable); the start-up logs went to stderr
    assert json.loads(proc.stdout)["faces"][0]["gender"]["value"] == "male"
    assert '"event":"models_ready"' in proc.stderr
    assert out.read_bytes()[:3] == b"\xff\xd8\xff" and redacted.read_bytes()[:3] == b"\xff\xd8\xff"
    assert out.read_bytes() != redacted.read_bytes()
    bad = subprocess.run([sys.executable, "-m", "handler", "README.md"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and bad.stdout == ""
    assert json.loads(bad.stderr.splitlines()[-1])["error"]["code"] == "invalid_image"
