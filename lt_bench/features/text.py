"""The text side of a cache: per-template class embeddings, L2-normalised.

``encode_class_prompts`` returns (T, C, D) float32; the cache's ``/text/classifier`` is the
normalised mean over templates (``writing.write_header`` computes it, so every writer agrees).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.prompts import fill
from ..device import amp_policy


@torch.inference_mode()
def encode_class_prompts(bundle, classnames: list[str], templates: list[str], device: torch.device,
                         batch_size: int = 1024) -> np.ndarray:
    """Encode ``template.format(class)`` for every template and class.

    Args:
        bundle: a ``ClipBundle`` (model + tokenizer).
        classnames: prompt-ready class names, used as given.
        templates: format strings with one ``{}``.
        device: where the model is.
        batch_size: prompts per forward pass.

    Returns:
        (T, C, D) float32, each row L2-normalised.
    """
    # template-major, so that the flat output reshapes to (T, C, D)
    prompts = [p for t in templates for p in (fill([t], c)[0] for c in classnames)]
    out = []
    amp = amp_policy(device)
    for s in range(0, len(prompts), batch_size):
        tokens = bundle.tokenizer(prompts[s:s + batch_size]).to(device)
        with amp.autocast():
            f = bundle.model.encode_text(tokens)
        f = torch.nn.functional.normalize(f.float(), dim=-1)
        out.append(f.cpu())
    feats = torch.cat(out).numpy().astype(np.float32)
    return feats.reshape(len(templates), len(classnames), -1)
