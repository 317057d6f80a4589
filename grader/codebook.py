"""The behavior codebook of `shared/rubric/behaviors.md`: canonical ids and Chinese names."""

BEHAVIORS: tuple[str, ...] = (
    "greeting",
    "empathy",
    "need_confirmation",
    "info_request",
    "probing",
    "solution",
    "progress_update",
    "resolution_check",
    "closing",
    "survey_invite",
    "impolite",
    "shirking",
)

BEHAVIOR_NAMES_ZH: dict[str, str] = {
    "greeting": "问候/开场",
    "empathy": "共情安抚",
    "need_confirmation": "需求确认",
    "info_request": "信息核实",
    "probing": "有效提问",
    "solution": "方案说明",
    "progress_update": "过程告知",
    "resolution_check": "结果确认",
    "closing": "礼貌结束",
    "survey_invite": "满意度邀请",
    "impolite": "不文明/态度差",
    "shirking": "推诿敷衍",
}

RED_LINE_BEHAVIORS: frozenset[str] = frozenset({"impolite", "shirking"})


def check_behavior_ids(ids) -> list[str]:
    """Return the ids of `ids` that are not in the codebook."""
    return [b for b in ids if b not in BEHAVIORS]
