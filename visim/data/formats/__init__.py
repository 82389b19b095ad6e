"""Parsers of on-disk dataset layouts into :class:`visim.data.records.ReidData` (no torch)."""
