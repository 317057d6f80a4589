import pytest

from grader.features.pii import find_personal_numbers, id_card_valid, luhn_valid, mask_personal_numbers
from grader.features.text import clean_text, fold_width, is_negated


@pytest.mark.parametrize("raw, clean", [
    ("  您好，\u200b请问  有什么\t可以帮您  ", "您好，请问 有什么 可以帮您"),
    ("第一行\n\n  第二行 ", "第一行\n第二行"),
    ("好滴😊🙏", "好滴😊🙏"),
])
def test_clean_text_collapses_whitespace_and_keeps_emoji(raw, clean):
    assert clean_text(raw) == clean


def test_fold_width_is_one_to_one():
    text = "ＡＢＣ１２３，ｏｋ！　好"
    folded = fold_width(text)
    assert folded == "ABC123,ok! 好"
    assert len(folded) == len(text)


@pytest.mark.parametrize("text, phrase, negated", [
    ("我对这次服务不满意", "满意", True),
    ("非常满意，谢谢", "满意", False),
    ("不错，满意", "满意", False),
    ("没问题了，谢谢", "问题", True),
    ("还是有问题", "问题", False),
    ("不是很满意", "满意", True),
])
def test_negation_cue_in_same_clause(text, phrase, negated):
    assert is_negated(text, text.index(phrase)) is negated


@pytest.mark.parametrize("number, valid", [
    ("11010519491231002X", True),
    ("110105194912310021", False),   # wrong check digit
    ("110105194913310028", False),   # month 13
])
def test_id_card_checksum(number, valid):
    assert id_card_valid(number) is valid


def test_luhn():
    assert luhn_valid("6222020200000000004") is False or luhn_valid("4111111111111111")
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize("text, kind, masked", [
    ("您的手机号是13812345678对吧", "mobile", "138****5678"),
    ("号码 138-1234-5678", "mobile", "138****5678"),
    ("+86 139 1234 0000", "mobile", "139****0000"),
    ("身份证11010519491231002X", "id_card", "110105********002X"),
    ("卡号4111 1111 1111 1111", "bank_card", "4111********1111"),
    ("邮箱 zhang.san@example.com", "email", "z***@example.com"),
])
def test_personal_numbers_found_and_masked(text, kind, masked):
    found = find_personal_numbers(text)
    assert [(p.kind, p.masked) for p in found] == [(kind, masked)]
    assert masked in mask_personal_numbers(text)


@pytest.mark.parametrize("text", ["138****5678", "订单号 12345678901234567", "1381234567", "金额 10000 元", "电话 010-12345678"])
def test_no_personal_number(text):
    assert not [p for p in find_personal_numbers(text) if p.kind in ("mobile", "id_card")]
