"""The language-model layer: encoders, item vectors, tags, user profiles, ANN index, fine-tuning."""

from shoprec.text.encoders import Encoder, has_cjk, load_encoder
from shoprec.text.index import VectorIndex
from shoprec.text.itemtext import ItemTexts, item_texts
from shoprec.text.profiles import UserProfiles
from shoprec.text.tags import extract_tags, tags_frame
from shoprec.text.vectors import VectorCache, item_vectors

__all__ = ["Encoder", "has_cjk", "load_encoder"]
__all__ += ["UserProfiles", "VectorIndex"]
__all__ += ["ItemTexts", "VectorCache", "extract_tags", "item_texts", "item_vectors", "tags_frame"]
