"""The main job's manipulation check for an adapter trained outside a study: its warmth minus the
base model's on the quick profile's held-out prompts (paired), both scored by the base model.

    python docs/warmth_check.py OUT_DIR BASE_SPEC ADAPTER_DIR   (writes OUT_DIR/warmth.json)
"""

import json
import sys
from pathlib import Path

from personaguard.models import load_model
from personaguard.persona.dataset import build_persona_dataset
from personaguard.persona.warmth import describe_shift, paired_shift, responder_warmth
from personaguard.study.profile import load_profile

if len(sys.argv) != 4:
    sys.exit(f"usage: {__doc__.strip().splitlines()[-1].strip()}")
out, base_spec, adapter = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
size = load_profile("quick").warmth  # the demo's size: 10 prompts, 40 new tokens
chats = [r["messages"] for r in build_persona_dataset("neutral", "heldout")][: size.prompts]
base = load_model(base_spec)
b = responder_warmth(base, base, chats, size.max_new_tokens)
w = responder_warmth(base, load_model(f"{base_spec}+{adapter}"), chats, size.max_new_tokens)
(out / "warmth.json").write_text(json.dumps({"base": b, "warm": w}, indent=1))
print("warmth vs base, same prompts: warm", describe_shift(paired_shift(b, w)))
