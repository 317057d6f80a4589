"""Draft: turn encoder (replaced by the full module below once experiments settle)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def encode_turns(texts: Sequence[str], model, tokenizer, layers: Sequence[int], prefix: str = "query: ",
                 batch_size: int = 32, max_tokens: int = 256) -> np.ndarray:
    """Masked mean of the hidden states of `layers` per text: float32 `(N, len(layers), H)`."""
    import torch

    hidden = model.config.hidden_size
    out = np.zeros((len(texts), len(layers), hidden), dtype=np.float32)
    if not len(texts):
        return out
    ids = tokenizer([prefix + t for t in texts], add_special_tokens=False, verbose=False)["input_ids"]
    keep = max_tokens - 2
    rows = [[tokenizer.bos_token_id, *(x if len(x) <= keep else x[: keep - keep // 4] + x[-(keep // 4):]),
             tokenizer.eos_token_id] for x in ids]
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            chunk = order[s: s + batch_size]
            width = max(len(rows[i]) for i in chunk)
            input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):
                input_ids[r, : len(rows[i])] = torch.tensor(rows[i])
                mask[r, : len(rows[i])] = 1
            states = model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
            m = mask.unsqueeze(-1).float()
            denom = m.sum(1).clamp(min=1)
            for k, layer in enumerate(layers):
                out[chunk, k] = ((states[layer] * m).sum(1) / denom).numpy()
    return out
