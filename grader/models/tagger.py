"""The fine-tuned behavior model as a BehaviorTagger (`behavior_model.v1`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from grader.behaviors.base import BehaviorTagger, TurnScores
from grader.labels import turn_context, turn_position
from grader.types import Transcript

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "resources" / "behavior_model"


class ModelTagger(BehaviorTagger):
    """Batches agent turns across conversations, sorted by length, under inference mode.

    runtime `onnx` (default where onnxruntime is installed) runs an ONNX export of the model,
    made once per model and cached; `torch` runs it eagerly. `quantize` applies dynamic int8
    quantisation with per-channel weights to the linear layers; None (default) follows the
    model's `int8` setting, which `grader train` turns on only when int8 keeps dev macro-F1
    within one point of fp32 (see the README's trade-off table).
    """

    name = "behavior_model.v1"

    def __init__(self, folder: str | Path = SHIPPED_MODEL, base: str | None = None, quantize: bool | None = None,
                 batch_size: int = 64, threads: int | None = None, runtime: str | None = None):
        self.folder = Path(folder)
        self.base = base
        self.quantize = quantize
        self.batch_size = batch_size
        self.threads = threads
        self.runtime = runtime or ("onnx" if _has_onnxruntime() else "torch")
        self._model = None

    def load(self) -> None:
        if self._model is not None:
            return
        import torch

        from grader.models.behavior_model import INT8_CALIBRATION, Calibration, load_model

        if self.threads:
            torch.set_num_threads(self.threads)
        model, self.config, self.calibration, self.encoding = load_model(self.folder, self.base)
        if self.quantize is None:
            self.quantize = self.config.int8
        if self.quantize and (self.folder / INT8_CALIBRATION).is_file():
            # int8 shifts the logits a little: temperatures and thresholds tuned on its own dev logits
            self.calibration = Calibration.load(self.folder, INT8_CALIBRATION)
        if self.runtime == "onnx":
            from grader.models.onnx_runtime import OnnxClassifier

            model = OnnxClassifier.for_model(model, self.folder, self.config, threads=self.threads or torch.get_num_threads(),
                                             int8=self.quantize)
        elif self.quantize:
            with warnings.catch_warnings():  # eager dynamic quantisation is deprecated in favour of torchao, still supported
                warnings.simplefilter("ignore")
                from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

                model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        self._model = model

    @property
    def version(self) -> str:  # type: ignore[override]
        self.load()
        return self.config.model_version + ("+int8" if self.quantize else "")

    @property
    def thresholds(self) -> dict[str, float]:
        self.load()
        return dict(self.calibration.threshold)

    def probabilities(self, texts: list[str], contexts: list[str], positions: list[tuple]) -> list[dict[str, float]]:
        """Calibrated probabilities for (agent text, customer context, position) triples."""
        import torch

        self.load()
        from grader.models.behavior_model import extra_features

        rows = self.encoding.ids(texts, contexts)
        extra = extra_features(texts, positions, self.config.lexicon_features)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        labels = self.config.labels
        temps = torch.tensor([self.calibration.temperature[b] for b in labels])
        out: list[dict[str, float]] = [{} for _ in rows]
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                ids, mask = self.encoding.batch([rows[i] for i in chunk])
                probs = torch.sigmoid(self._model(ids, mask, extra[chunk]) / temps).tolist()
                for i, p in zip(chunk, probs):
                    out[i] = dict(zip(labels, p))
        return out

    def predict(self, transcripts: Sequence[Transcript]) -> list[TurnScores]:
        keys = [(n, i) for n, t in enumerate(transcripts) for i in t.agent_turn_indices()]
        probs = self.probabilities(
            [transcripts[n].turns[i].text for n, i in keys],
            [turn_context(transcripts[n], i) for n, i in keys],
            [turn_position(transcripts[n], i) for n, i in keys],
        ) if keys else []
        out: list[TurnScores] = [{} for _ in transcripts]
        for (n, i), p in zip(keys, probs):
            out[n][i] = p
        return out


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def load_default_tagger(folder: str | Path | None = None, quantize: bool | None = None) -> ModelTagger:
    """The shipped behavior model (or `folder`); FileNotFoundError when it is absent."""
    folder = Path(folder or os.environ.get("GRADER_BEHAVIOR_MODEL") or SHIPPED_MODEL)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no behavior model at {folder}")
    tagger = ModelTagger(folder, quantize=quantize)
    tagger.load()
    return tagger
