"""Unsupervised adaptation of the sentence encoder to a corpus (``kb adapt``): see ``train``."""

from retrieval.adapt.train import AdaptConfig, AdaptReport, adapt, model_hash, training_pairs

__all__ = ["AdaptConfig", "AdaptReport", "adapt", "model_hash", "training_pairs"]
