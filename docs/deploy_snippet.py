"""Embed image files with a model exported by ``visim export`` to ONNX: onnxruntime, no torch.

Usage: python deploy_snippet.py model.onnx image.jpg [image.jpg ...]
"""

import json
import sys

import numpy as np
import onnxruntime
from PIL import Image


def load_model(path):
    """The onnxruntime session and visim's metadata (input size, mean/std, metric, ...)."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["visim"])
    return session, metadata


def read_image(path, metadata):
    """uint8 RGB [H, W, 3] at the model's input size, resized as `visim predict` resizes."""
    height, width = metadata["input_size"]
    image = Image.open(path).convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling[metadata["interpolation"].upper()])
    return np.asarray(image, dtype=np.uint8)


def embed(session, metadata, paths):
    """float32 embeddings [len(paths), D]; the graph does the normalisation itself."""
    images = np.stack([read_image(path, metadata) for path in paths])
    return session.run(["embeddings"], {"images": images})[0]


if __name__ == "__main__":
    session, metadata = load_model(sys.argv[1])
    embeddings = embed(session, metadata, sys.argv[2:])
    print(f"{embeddings.shape[0]} embeddings of size {embeddings.shape[1]}, metric {metadata['metric']}")
