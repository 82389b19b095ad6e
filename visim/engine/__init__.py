"""The VisualSimilarityEngine."""
