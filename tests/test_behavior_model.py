"""The behavior model: a tiny random BERT overfits a few turns, saves, reloads, predicts the same."""

import importlib.util
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from grader.codebook import BEHAVIORS  # noqa: E402
from tests.conftest import make_transcript  # noqa: E402

TURNS = [
    ("在吗", "您好，很高兴为您服务", ["greeting"]),
    ("我的快递三天没动了", "非常抱歉让您久等了，请提供一下订单号", ["empathy", "info_request"]),
    ("好的谢谢", "感谢您的耐心，祝您生活愉快", ["closing"]),
    ("怎么还没退款", "已为您反馈给售后，24小时内回复您", ["progress_update"]),
    ("能便宜点吗", "这个不归我们管", ["shirking"]),
    ("我不会弄", "你自己不会看吗", ["impolite"]),
]


def tiny_base(folder):
    """A random 2-layer BERT with a character-level unigram tokenizer, saved as an HF folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    chars = sorted({ch for c, a, _ in TURNS for ch in c + a})
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(ch, -1.0) for ch in chars]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=1)
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_data(folder):
    folder.mkdir()
    rows = []
    for n, split in enumerate(["train", "dev"]):
        turns = []
        for c, a, labels in TURNS:
            turns += [{"speaker": "customer", "text": c}, {"speaker": "agent", "text": a, "labels": labels}]
        rows.append({"id": f"conv-{n}", "split": split, "turns": turns})
    (folder / "tiny.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.behavior import TrainArgs, train

    tmp = tmp_path_factory.mktemp("bm")
    base = tiny_base(tmp / "base")
    data = write_data(tmp / "data")
    args = TrainArgs(data=[str(data)], out=str(tmp / "model"), base=str(base), num_layers=2, trained_layers=1,
                     epochs=60, batch_size=6, lr=3e-3, head_lr=3e-2, warmup=0.0, seed=3, threads=1)
    return train(args, log=lambda m: None), base


def test_saved_folder_is_complete(trained):
    folder, _ = trained
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "weights.safetensors", "calibration.json", "training_args.json", "metrics.json", "README.md"} <= names
    if importlib.util.find_spec("onnxruntime"):
        assert "calibration_int8.json" in names
    config = json.loads((folder / "config.json").read_text())
    assert config["labels"] == list(BEHAVIORS) and config["schema_version"] == 1


def test_overfits_and_reloads_with_same_predictions(trained):
    from grader.models.tagger import ModelTagger

    folder, base = trained
    t = make_transcript(*[x for c, a, _ in TURNS for x in (("customer", c), ("agent", a))])
    first = ModelTagger(folder, runtime="torch", quantize=False)
    [scores] = first.predict([t])
    predicted = {i: sorted(b for b, p in s.items() if p >= first.thresholds[b]) for i, s in scores.items()}
    gold = {2 * k + 1: sorted(labels) for k, (_, _, labels) in enumerate(TURNS)}
    assert predicted == gold
    [again] = ModelTagger(folder, runtime="torch", quantize=False).predict([t])
    assert all(abs(again[i][b] - scores[i][b]) < 1e-6 for i in scores for b in BEHAVIORS)


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_int8_quantised_tagger_agrees(trained, runtime, tmp_path, monkeypatch):
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    from grader.models.tagger import ModelTagger

    monkeypatch.setenv("GRADER_ONNX_DIR", str(tmp_path / "onnx"))
    folder, _ = trained
    t = make_transcript(*[x for c, a, _ in TURNS for x in (("customer", c), ("agent", a))])
    [fp32] = ModelTagger(folder, runtime="torch", quantize=False).predict([t])
    int8_tagger = ModelTagger(folder, runtime=runtime, quantize=True)
    [int8] = int8_tagger.predict([t])
    assert int8_tagger.version.endswith("+int8")
    assert max(abs(fp32[i][b] - int8[i][b]) for i in fp32 for b in BEHAVIORS) < 0.2
    if runtime == "onnx":
        import onnx

        [quantized] = list((tmp_path / "onnx").glob("*.int8.onnx"))
        nodes = onnx.load(str(quantized)).graph.node
        # per layer, q, k, v, attention output and FFN in run in int8, and the head; FFN out stays fp32
        assert sum(n.op_type == "MatMulInteger" for n in nodes) == 5 * 2 + 1
        assert sum(n.op_type == "MatMul" and "output/dense" in n.name for n in nodes) == 2


def test_training_decides_int8_by_dev_f1(trained):
    pytest.importorskip("onnxruntime")
    folder, _ = trained
    metrics = json.loads((folder / "metrics.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    int8 = metrics["dev_int8"]
    assert set(int8["per_behavior_f1"]) == set(BEHAVIORS)
    assert int8["drop"] == pytest.approx(metrics["dev"]["macro_f1"] - int8["macro_f1"], abs=1e-4)
    assert config["int8"] == int8["kept"] == (int8["drop"] <= 0.01)


def test_int8_runs_with_its_own_calibration(trained, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from grader.models.tagger import ModelTagger

    monkeypatch.setenv("GRADER_ONNX_DIR", str(tmp_path / "onnx"))
    folder, _ = trained
    own = json.loads((folder / "calibration_int8.json").read_text())
    fp32 = json.loads((folder / "calibration.json").read_text())
    assert set(own["threshold"]) == set(BEHAVIORS)
    assert ModelTagger(folder, quantize=True).thresholds == own["threshold"]
    assert ModelTagger(folder, quantize=False).thresholds == fp32["threshold"]


def test_tagger_follows_the_models_int8_setting(trained, tmp_path):
    import shutil

    from grader.models.tagger import ModelTagger

    folder, _ = trained
    for setting in (True, False):
        copy = tmp_path / f"int8-{setting}"
        shutil.copytree(folder, copy)
        config = json.loads((copy / "config.json").read_text())
        config["int8"] = setting
        (copy / "config.json").write_text(json.dumps(config))
        tagger = ModelTagger(copy, runtime="torch")
        tagger.load()
        assert tagger.quantize is setting


def test_onnx_runtime_matches_torch_and_caches_the_export(trained, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from grader.models.tagger import ModelTagger

    monkeypatch.setenv("GRADER_ONNX_DIR", str(tmp_path / "onnx"))
    folder, _ = trained
    t = make_transcript(*[x for c, a, _ in TURNS for x in (("customer", c), ("agent", a))])
    [eager] = ModelTagger(folder, runtime="torch", quantize=False).predict([t])
    [onnx] = ModelTagger(folder, runtime="onnx", quantize=False).predict([t])
    assert max(abs(eager[i][b] - onnx[i][b]) for i in eager for b in BEHAVIORS) < 1e-4
    [exported] = list((tmp_path / "onnx").glob("*.onnx"))
    mtime = exported.stat().st_mtime_ns
    ModelTagger(folder, runtime="onnx", quantize=False).predict([t])
    assert exported.stat().st_mtime_ns == mtime


def test_weights_must_match_config(trained, tmp_path):
    import shutil

    from grader.models.behavior_model import load_model

    folder, _ = trained
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    config = json.loads((broken / "config.json").read_text())
    config["trained_layers"] = 2
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="weights do not match"):
        load_model(broken)


def test_train_args_validate():
    from training.behavior import TrainArgs

    with pytest.raises(ValueError, match="trained_layers"):
        TrainArgs(num_layers=2, trained_layers=3)
    with pytest.raises(ValueError, match="epochs"):
        TrainArgs(epochs=0)
    with pytest.raises(ValueError, match="lexicon_prior"):
        TrainArgs(lexicon_prior=-1)
    with pytest.raises(ValueError, match="lexicon_prior needs lexicon_features"):
        TrainArgs(lexicon_features=False)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    from grader.models.tagger import load_default_tagger

    with pytest.raises(FileNotFoundError, match="no behavior model"):
        load_default_tagger(tmp_path)


def test_long_agent_turns_keep_their_head_and_tail(trained):
    from grader.models.behavior_model import Encoding, load_encoder

    _, base = trained
    _, tokenizer = load_encoder(str(base), 2)
    enc = Encoding(tokenizer, max_agent=12, max_context=4)
    agent = "您好很高兴为您服务" * 3 + "祝您生活愉快"
    pieces = tokenizer(agent, add_special_tokens=False)["input_ids"]
    [row] = enc.ids([agent], ["我的快递三天没动了"])
    kept = row[1 : row.index(enc.eos)]
    assert len(pieces) > 12 and len(kept) == 12
    assert kept[:10] == pieces[:10] and kept[10:] == pieces[-2:]  # the sign-off survives truncation
    assert row[-1] == enc.eos and len(row) == 1 + 12 + 2 + 4 + 1


def test_lexicon_prior_starts_the_head_from_the_lexicon(trained):
    from grader.models.behavior_model import N_POSITION, BehaviorClassifier, extra_features, load_encoder
    from training.behavior import init_lexicon_prior

    _, base = trained
    encoder, _ = load_encoder(str(base), 2)
    model = BehaviorClassifier(encoder, len(BEHAVIORS), n_extra=N_POSITION + len(BEHAVIORS))
    torch.nn.init.zeros_(model.head.weight)
    init_lexicon_prior(model, 4.0)
    hidden = encoder.config.hidden_size
    lexicon_block = model.head.weight[:, hidden + N_POSITION :]
    assert torch.equal(lexicon_block, 4.0 * torch.eye(len(BEHAVIORS)))
    # a turn the lexicon calls a survey invitation starts with a higher survey_invite logit
    extra = extra_features(["麻烦您对本次服务做出评价", "好的"], [(0.0, 1.0, 1.0)] * 2, True)
    logits = model.head(torch.cat([torch.zeros(2, hidden), extra], dim=-1))
    j = BEHAVIORS.index("survey_invite")
    assert logits[0, j] > logits[1, j] + 3


def test_agent_segment_mask_covers_the_agent_turn_only():
    from grader.models.behavior_model import agent_segment_mask

    # <s> a a </s> </s> c </s> <pad>
    ids = torch.tensor([[0, 7, 8, 2, 2, 9, 2, 1], [0, 7, 2, 2, 9, 9, 9, 2]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0], [1] * 8])
    assert agent_segment_mask(ids, mask, 2).tolist() == [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]]


def test_mean_pooling_and_raw_context_still_train_and_export(tmp_path, monkeypatch):
    """The earlier input format (`--pooling mean --raw-context`): learns, reloads, same in ONNX."""
    from grader.models.tagger import ModelTagger
    from training.behavior import TrainArgs, train

    monkeypatch.setenv("GRADER_ONNX_DIR", str(tmp_path / "onnx"))
    base = tiny_base(tmp_path / "base")
    data = write_data(tmp_path / "data")
    args = TrainArgs(data=[str(data)], out=str(tmp_path / "model"), base=str(base), num_layers=2, trained_layers=1,
                     epochs=60, batch_size=6, lr=3e-3, head_lr=3e-2, warmup=0.0, seed=3, threads=1,
                     pooling="mean", clean_context=False)
    folder = train(args, log=lambda m: None)
    config = json.loads((folder / "config.json").read_text())
    assert config["pooling"] == "mean" and config["clean_context"] is False
    assert json.loads((folder / "metrics.json").read_text())["dev"]["macro_f1"] > 0.5
    t = make_transcript(*[x for c, a, _ in TURNS for x in (("customer", c), ("agent", a))])
    [eager] = ModelTagger(folder, runtime="torch", quantize=False).predict([t])
    if importlib.util.find_spec("onnxruntime"):
        [onnx] = ModelTagger(folder, runtime="onnx", quantize=False).predict([t])
        assert max(abs(eager[i][b] - onnx[i][b]) for i in eager for b in BEHAVIORS) < 1e-4
    with pytest.raises(ValueError, match="pooling"):
        TrainArgs(pooling="max")


def test_default_model_pools_segments_and_cleans_context(trained):
    folder, _ = trained
    config = json.loads((folder / "config.json").read_text())
    assert config["pooling"] == "segments" and config["sep_token_id"] == 2 and config["clean_context"] is True
    # the version names the exact weights: date, layers, seed, hash of the trained parameters
    import re

    from grader.models.behavior_model import load_model, trainable_names
    from training.behavior import TrainArgs, default_version

    assert re.fullmatch(r"\d{8}-L2T1-s3-[0-9a-f]{8}", config["model_version"])
    model, loaded, _, _ = load_model(folder)
    args = TrainArgs(**json.loads((folder / "training_args.json").read_text()))
    rehashed = default_version(args, model, trainable_names(model, loaded.trained_layers))
    assert rehashed.rsplit("-", 1)[1] == config["model_version"].rsplit("-", 1)[1]


def test_clean_context_keeps_the_customers_words_only():
    from grader.models.behavior_model import clean_context

    post = "光纤网坏了,谁还能来？@中国联通客服 @中国联通吉林客服 桦甸·八道..."
    assert clean_context(post) == "光纤网坏了,谁还能来？"
    assert clean_context("@vivo客服 为什么开不了机 http://t.cn/RADgIHR 我在:明湖东路") == "为什么开不了机"
    assert clean_context("价格是 3·5 元吗？") == "价格是 3·5 元吗？"  # a middle dot inside the text stays
    assert clean_context("我的快递三天没动了") == "我的快递三天没动了"


def test_encoding_cleans_context_only_when_asked(trained):
    from grader.models.behavior_model import Encoding, load_encoder

    _, base = trained
    _, tokenizer = load_encoder(str(base), 2)
    raw, clean = Encoding(tokenizer, 32, 64), Encoding(tokenizer, 32, 64, clean=True)
    context = "我的快递三天没动了 @某某客服"
    assert raw.ids(["好的"], [context]) != clean.ids(["好的"], [context])
    assert clean.ids(["好的"], [context]) == raw.ids(["好的"], ["我的快递三天没动了"])
