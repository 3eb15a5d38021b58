"""shoprec: an e-commerce recommendation engine built around pretrained language models."""

__version__ = "0.1.0"
