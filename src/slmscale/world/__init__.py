"""The built-in story world: a deterministic generator of simple English stories and benchmarks.

`build_world(out_dir, WorldConfig())` writes text.jsonl (stories and sentence
records, split train/valid/test) and four benchmarks held out from that text:
syntax (BLiMP-style minimal pairs), lexical (sWUGGY-style word/nonword pairs),
story_cloze and topic_cloze (sStoryCloze/tStoryCloze-style endings).
"""

from slmscale.world.config import WorldConfig
from slmscale.world.generate import build_world, make_world

__all__ = ["WorldConfig", "build_world", "make_world"]
