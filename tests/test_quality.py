"""Quality dimensions: NMD/RSNOD on hand-computed cases, label reading, and train -> save ->
reload -> same predictions on a tiny random BERT (no network, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

from typer.testing import CliRunner  # noqa: E402

from grader.cli import app  # noqa: E402
from grader.models.quality import SCALE_KEYS, QualityConfig, load_quality_model  # noqa: E402
from grader.readers import read_file  # noqa: E402
from grader.types import Transcript  # noqa: E402
from training.dq_metrics import mean_scores, nmd, od, rsnod  # noqa: E402
from training.quality import (QualityTrainArgs, as_dataset, is_dev, label_distribution, read_labeled,  # noqa: E402
                              train_quality)

TEXTS = [
    ("我的宽带又断了，三天了还没人修", "您好，很抱歉给您带来不便，请提供一下宽带账号", "账号是12345，快点处理", "已为您登记报修，师傅今天下午上门"),
    ("手机屏幕摔坏了能保修吗", "您好，人为损坏不在保修范围内哦", "那太坑了吧", "非常抱歉，可以到门店付费维修"),
    ("航班延误了怎么改签", "您好，请提供订单号，我帮您查询", "订单号8899", "已为您免费改签到明天上午的航班", "好的谢谢"),
    ("话费扣多了", "您好，请私信提供手机号码", "已经私信了", "核实是流量超出，已为您退还十元", "满意，谢谢"),
    ("快递一直没到", "亲，请稍等，正在为您查询"),
    ("耳机左边没声音", "您好，建议您先重启试试", "重启了也不行", "请寄回检测，我们会尽快处理"),
]


def _turns(texts):
    return [{"speaker": "customer" if i % 2 == 0 else "agent", "text": t} for i, t in enumerate(texts)]


LABELS = [  # every label form, a dimension missing here and there
    {"S": 1, "A": [1, 1, 0]},
    {"S": [-1, -2, -1], "A": -1},
    {"S": {"2": 0.5, "1": 0.5}, "A": {"2": 0.2, "1": 0.6, "0": 0.2}},
    {"S": 2, "A": [2, 1]},
    {"S": [0, -1]},
    {"S": {"0": 1, "-1": 1}, "A": 0},
]


@pytest.fixture(scope="module")
def labeled_jsonl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "labeled.jsonl"
    lines = [{"id": f"c{i}", "turns": _turns(t), "quality": q} for i, (t, q) in enumerate(zip(TEXTS * 2, LABELS * 2))]
    for line in lines[6:]:  # a second copy with other ids, so dev and train are both non-empty
        line["id"] += "b"
    lines.append({"id": "unlabeled", "turns": _turns(TEXTS[0])})
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A random 2-layer BERT (hidden 32) with a character-level tokenizer, saved as a folder."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    chars = sorted(set("".join("".join(t) for t in TEXTS)) | set("query: 0123456789abcdefghijklmnopqrstuvwxyz"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, **{c: i + 4 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=128)
    fast.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=1)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(folder))
    return folder


TINY = dict(num_layers=2, pooled_layers=[1, 2], hidden=16, ensemble=2, max_epochs=6, eval_every=3,
            dev_fraction=0.3, max_turn_tokens=64, quantize=False)


# ------------------------------------------------------------------------- measures


def test_nmd_and_rsnod_on_hand_computed_cases():
    # opposite ends: every cumulative difference is 1; DW_i = 4 everywhere
    assert nmd([1, 0, 0, 0, 0], [0, 0, 0, 0, 1]) == pytest.approx(1.0)
    assert rsnod([1, 0, 0, 0, 0], [0, 0, 0, 0, 1]) == pytest.approx(1.0)
    # half a step: NMD 0.5 / 4; DW_0 = DW_1 = 0.25, so both ODs are 0.25
    assert nmd([0.5, 0.5, 0, 0, 0], [0, 1, 0, 0, 0]) == pytest.approx(0.125)
    assert rsnod([0.5, 0.5, 0, 0, 0], [0, 1, 0, 0, 0]) == pytest.approx(0.25)
    # uniform against a point mass in the middle: |cum diff| = .2 + .4 + .4 + .2; DW = 1.6, .88, .24, .88, 1.6;
    # OD(p || q) averages DW over q's support {2} (0.24), OD(q || p) over all five bins (1.04)
    uniform, middle = [0.2] * 5, [0, 0, 1, 0, 0]
    assert nmd(uniform, middle) == pytest.approx(0.3)
    assert od(uniform, middle) == pytest.approx(0.24)
    assert od(middle, uniform) == pytest.approx(1.04)
    assert rsnod(uniform, middle) == pytest.approx(0.4)


def test_measures_are_zero_on_identity_and_vectorised():
    p = np.array([[0.1, 0.2, 0.3, 0.2, 0.2], [0, 0, 1, 0, 0]])
    assert np.allclose(nmd(p, p), 0) and np.allclose(rsnod(p, p), 0)
    q = np.array([[0.2] * 5, [0, 0, 0, 0, 1]])
    assert nmd(p, q).shape == (2,)
    scores = mean_scores(p, q)
    assert scores["nmd"] == pytest.approx(np.mean(nmd(p, q)))
    with pytest.raises(ValueError):
        nmd([0.5, 0.5], [1, 0, 0])


# ------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("value, expected", [
    (1, [0, 1, 0, 0, 0]),
    (-2, [0, 0, 0, 0, 1]),
    ([1, 0, 1, 1], [0, 0.75, 0.25, 0, 0]),
    ({"2": 1, "-1": 3}, [0.25, 0, 0, 0.75, 0]),
    ({"0": 0.2, "1": 0.8}, [0, 0.8, 0.2, 0, 0]),
])
def test_label_forms_become_distributions(value, expected):
    assert label_distribution(value, "x") == pytest.approx(expected)


@pytest.mark.parametrize("value, message", [
    (3, "not on the scale"), ([1, "a"], "not on the scale"), (True, "not on the scale"),
    ({"5": 1}, "scale point"), ({"1": -0.5}, ">= 0"), ({"1": 0}, "no labels"), ([], "no labels"),
])
def test_bad_labels_are_refused_with_the_field(value, message):
    with pytest.raises(ValueError, match=message):
        label_distribution(value, "line 3: field `quality.S`")


def test_read_labeled_jsonl_keeps_every_form_and_counts_unlabeled(labeled_jsonl):
    records, unlabeled = read_labeled(labeled_jsonl)
    assert unlabeled == 1 and len(records) == 12
    assert isinstance(records[0]["transcript"], Transcript)
    assert records[0]["labels"]["A"] == pytest.approx([0, 2 / 3, 1 / 3, 0, 0])
    assert "A" not in records[4]["labels"]
    ds = as_dataset(records, ["A", "S"], seed=1, dev_fraction=0.5)
    assert ds.num_rows == 12 and ds[4]["has"] == [False, True]
    assert np.allclose(np.array(ds["target"]).sum(-1), 1)


def test_read_labeled_errors_name_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = {"id": "a", "turns": _turns(TEXTS[0]), "quality": {"S": 1}}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", "quality": {"S": 7}}) + "\n")
    with pytest.raises(ValueError, match=r"line 2: field `quality.S`"):
        read_labeled(bad)
    bad.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(ValueError, match="appears twice"):
        read_labeled(bad)


def test_read_labeled_stc3_gives_one_distribution_per_dimension(tmp_path):
    dialogue = {"id": "d1", "turns": [{"sender": "customer", "utterances": ["网络太差了", "怎么回事"]},
                                      {"sender": "helpdesk", "utterances": ["您好，已为您报修"]}],
                "annotations": [{"quality": {"A": 1, "S": 0, "E": 1}, "nugget": ["CNUG0", "HNUG*"]},
                                {"quality": {"A": 1, "S": -1, "E": 2}, "nugget": ["CNUG0", "HNUG*"]}]}
    path = tmp_path / "stc3.jsonl"
    path.write_text(json.dumps(dialogue, ensure_ascii=False) + "\n", encoding="utf-8")
    [record], unlabeled = read_labeled(path)
    assert unlabeled == 0 and sorted(record["labels"]) == ["A", "E", "S"]
    assert record["labels"]["S"] == pytest.approx([0, 0, 0.5, 0.5, 0])
    assert record["transcript"].turns[0].text == "网络太差了\n怎么回事" and record["transcript"].turns[1].speaker == "agent"


def test_real_stc3_train_file_reads_19_annotators(stc3_dir):
    records, unlabeled = read_labeled(stc3_dir / "train.jsonl", "stc3")
    assert unlabeled == 0 and len(records) == 3021
    s = records[0]["labels"]["S"]
    assert sorted(records[0]["labels"]) == ["A", "E", "S"] and np.allclose(s * 19, np.round(s * 19))


def test_dev_split_is_seeded_and_by_conversation():
    ids = [f"conv-{i}" for i in range(2000)]
    first = [is_dev(i, 13, 0.2) for i in ids]
    assert first == [is_dev(i, 13, 0.2) for i in reversed(ids)][::-1]
    assert 0.17 < np.mean(first) < 0.23 and first != [is_dev(i, 14, 0.2) for i in ids]


def test_training_args_validate_themselves():
    with pytest.raises(ValueError, match="pooled_layers"):
        QualityTrainArgs(num_layers=4, pooled_layers=[6])
    with pytest.raises(ValueError, match="dev_fraction"):
        QualityTrainArgs(dev_fraction=1.0)
    with pytest.raises(ValueError, match="fmt"):
        QualityTrainArgs(fmt="csv")


# ------------------------------------------------------------------ train, save, reload


def _check_predictions(rows, dims):
    for row in rows:
        assert sorted(row) == sorted(dims)
        for pred in row.values():
            dist = pred["distribution"]
            assert list(dist) == list(SCALE_KEYS) and all(p >= 0 for p in dist.values())
            assert sum(dist.values()) == pytest.approx(1.0, abs=1e-6)
            assert pred["expected"] == pytest.approx(sum(int(k) * p for k, p in dist.items()), abs=1e-6)


@pytest.mark.parametrize("extra", [{}, {"quantize": True, "char_ngrams": True, "refit": False}],
                         ids=["fp32", "int8+char-ngrams"])
def test_train_save_reload_gives_the_same_predictions(labeled_jsonl, tiny_base, tmp_path, extra):
    messages = []
    folder = train_quality(labeled_jsonl, out=tmp_path / "qm", seed=3, log=messages.append,
                           base=str(tiny_base), **{**TINY, **extra})
    for name in ("config.json", "head.safetensors", "training_args.json", "metrics.json", "README.md"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["dims"] == ["S", "A"] and config["scale"] == [2, 1, 0, -1, -2] and config["schema_version"] == 1
    assert config["char_ngrams"] == bool(extra.get("char_ngrams"))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_dev"] == 12 and metrics["n_dev"] > 0
    assert "heads" in metrics["dev"] and any("dev mean NMD" in m for m in messages)

    transcripts = [p.item for p in read_file(labeled_jsonl)]
    model = load_quality_model(folder)
    first = model.predict(transcripts)
    again = load_quality_model(folder).predict(transcripts)
    _check_predictions(first, ["A", "S"])
    assert len(first) == len(transcripts)
    for a, b in zip(first, again):
        for dim in a:
            assert a[dim]["distribution"] == pytest.approx(b[dim]["distribution"], abs=1e-6)
    assert model.name == "quality_model.v1" and model.version.startswith(config["model_version"])
    assert model.predict([]) == []


def test_heads_learn_the_labels_they_are_trained_on(labeled_jsonl, tiny_base, tmp_path):
    """Overfit: with no dropout and many epochs, the predicted S tracks the gold S."""
    folder = train_quality(labeled_jsonl, out=tmp_path / "qm", seed=0, log=lambda m: None, base=str(tiny_base),
                           **{**TINY, "max_epochs": 150, "eval_every": 150, "dropout": 0.0, "input_dropout": 0.0,
                              "weight_decay": 0.0, "lr": 1e-2, "dev_fraction": 0.0, "hidden": 64})
    records, _ = read_labeled(labeled_jsonl)
    pred = load_quality_model(folder).predict([r["transcript"] for r in records])
    gold = np.array([np.dot(r["labels"]["S"], [2, 1, 0, -1, -2]) for r in records])
    got = np.array([p["S"]["expected"] for p in pred])
    assert np.abs(got - gold).mean() < 0.35


def test_missing_or_foreign_model_folders_are_refused(tmp_path, labeled_jsonl, tiny_base):
    with pytest.raises(FileNotFoundError):
        load_quality_model(tmp_path)
    folder = train_quality(labeled_jsonl, out=tmp_path / "qm", log=lambda m: None, base=str(tiny_base), **TINY)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "schema_version": 99}))
    with pytest.raises(ValueError, match="schema_version"):
        load_quality_model(folder)
    assert QualityConfig(dims=["S"]).scale == [2, 1, 0, -1, -2]


def test_too_little_data_is_a_clear_error(tmp_path, tiny_base):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "a", "turns": _turns(TEXTS[0]), "quality": {"S": 1}}) + "\n")
    with pytest.raises(ValueError, match="at least 2"):
        train_quality(path, out=tmp_path / "qm", log=lambda m: None, base=str(tiny_base), **TINY)


# ---------------------------------------------------------------------------------- CLI


def test_cli_train_quality_then_grade_with_quality_block(labeled_jsonl, tiny_base, tmp_path, monkeypatch):
    import training.quality as tq

    monkeypatch.setenv(tq.ENV_BASE, str(tiny_base))
    # the CLI passes only data/format/out/seed: make the defaults tiny for this test
    monkeypatch.setattr(tq, "QualityTrainArgs", _tiny_args(tq.QualityTrainArgs))
    runner = CliRunner()
    out = tmp_path / "qm"
    result = runner.invoke(app, ["train-quality", "--data", str(labeled_jsonl), "--out", str(out), "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert (out / "config.json").is_file()

    grades = tmp_path / "grades.jsonl"
    result = runner.invoke(app, ["grade", str(labeled_jsonl), "--quality-model", str(out), "--tagger", "lexicon",
                                 "--out", str(grades), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in grades.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 13
    _check_predictions([r["quality"] for r in rows], ["A", "S"])
    assert all(r["model"]["quality_model"] == "quality_model.v1" for r in rows)
    item = next(i for i in rows[0]["items"] if i["id"] == "predicted_dissatisfaction")
    assert item["applicable"] is not False and "S" in item["reason"]


def test_cli_train_quality_refuses_bad_data(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "a", "turns": _turns(TEXTS[0]), "quality": {"S": 9}}) + "\n")
    result = CliRunner().invoke(app, ["train-quality", "--data", str(path), "--out", str(tmp_path / "qm")])
    assert result.exit_code == 2 and "quality.S" in result.output


def _tiny_args(cls):
    def make(**kwargs):
        return cls(**{**TINY, **kwargs})

    return make
