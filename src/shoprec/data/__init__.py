"""Data model: schema and validation, vocabularies, the Dataset, loading and adapters."""

from shoprec.data.dataset import Baskets, Dataset, Sequences
from shoprec.data.frames import dataset_from_frames
from shoprec.data.report import IngestReport
from shoprec.data.vocab import Vocabulary

__all__ = ["Baskets", "Dataset", "IngestReport", "Sequences", "Vocabulary", "dataset_from_frames"]
