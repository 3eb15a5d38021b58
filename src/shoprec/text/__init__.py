"""The language-model layer: encoders, item vectors, tags, user profiles, ANN index, fine-tuning."""

from shoprec.text.encoders import Encoder, has_cjk, load_encoder
from shoprec.text.finetune import FinetuneResult, FinetuneSettings, finetune
from shoprec.text.index import VectorIndex
from shoprec.text.itemtext import ItemTexts, item_texts
from shoprec.text.pairs import Pairs, mine_pairs
from shoprec.text.profiles import UserProfiles
from shoprec.text.tags import extract_tags, item_tags, tags_frame, with_tags
from shoprec.text.vectors import VectorCache, item_vectors

__all__ = ["Encoder", "has_cjk", "load_encoder"]
__all__ += ["FinetuneResult", "FinetuneSettings", "Pairs", "finetune", "mine_pairs"]
__all__ += ["UserProfiles", "VectorIndex"]
__all__ += ["ItemTexts", "VectorCache", "item_texts", "item_vectors"]
__all__ += ["extract_tags", "item_tags", "tags_frame", "with_tags"]
