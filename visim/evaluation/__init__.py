"""Exact retrieval evaluation: CMC, mAP, mINP with bounded memory."""
