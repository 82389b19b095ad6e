"""What a run leaves behind: run directory, run log, console report, TensorBoard, ranked
pictures and saved embeddings. Apart from the training loop (``visim.engine``)."""
