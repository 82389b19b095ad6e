"""Model export for deployment: ONNX and TorchScript files that take decoded images.

The exported graph takes uint8 RGB images ``[B, H, W, 3]`` at the model's input size and does
the test-time preprocessing inside (to float, /255, the config's normalisation, channels
first); it returns the float32 embeddings ``[B, D]`` that ``visim predict`` computes for the
same images. Every export is checked against PyTorch before it is kept (:mod:`.parity`).

- :mod:`.graph`: what the test transforms do, and the module that puts it in front of the model
- :mod:`.formats`: writing, loading and running ONNX / TorchScript files, their metadata
- :mod:`.parity`: the parity check against the PyTorch model on real query images
- :mod:`.export`: the whole job, used by ``visim export``
"""

from visim.deploy.errors import ExportError, MissingExtraError

__all__ = ["ExportError", "MissingExtraError"]
