"""The lexicon baseline tagger follows the codebook's conventions on typical turns."""

import pytest

from grader.behaviors.lexicon import LexiconTagger
from grader.codebook import BEHAVIORS
from tests.conftest import make_transcript


@pytest.fixture(scope="module")
def tagger():
    t = LexiconTagger()
    t.load()
    return t


@pytest.mark.parametrize("text, present, absent", [
    ("您好，很抱歉给您带来不便，请提供一下订单号", {"greeting", "empathy", "info_request"}, {"closing"}),
    ("抱歉，这个不可以", set(), {"empathy"}),
    ("请私信提供号码，谢谢！", {"info_request"}, {"closing"}),
    ("已为您反馈给相关部门，24小时内回复您", {"progress_update"}, set()),
    ("请稍等，正在为您查询", {"progress_update"}, set()),
    ("请问还有其他可以帮您的吗？", {"resolution_check"}, set()),
    ("感谢您的耐心等待，祝您生活愉快", {"closing"}, set()),
    ("麻烦您对本次服务做出评价", {"survey_invite"}, set()),
    ("这个我已经说过很多遍了", {"impolite"}, set()),
    ("这个不归我们管", {"shirking"}, set()),
    ("是从什么时候开始无法登录的？", {"probing"}, set()),
    ("您是说收到的商品有破损，想换新对吗？", {"need_confirmation"}, set()),
    ("您可以在设置-账户里解除绑定", {"solution"}, set()),
    ("好的", set(), set(BEHAVIORS)),
])
def test_lexicon_tagger_table(tagger, text, present, absent):
    labels = {b for b, p in tagger.score_text(text).items() if p >= tagger.thresholds[b]}
    assert present <= labels and not (labels & absent)


def test_predict_gives_every_agent_turn_every_behavior(tagger):
    t = make_transcript(("customer", "在吗"), ("agent", "在的"), ("system", "转接"), ("agent", "再见"))
    [scores] = tagger.predict([t])
    assert sorted(scores) == [1, 3] and all(set(s) == set(BEHAVIORS) for s in scores.values())
    assert all(0 <= p <= 1 for s in scores.values() for p in s.values())
