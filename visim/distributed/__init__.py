"""Multi-process runs under torchrun: the process group (``group``) and extraction sharded
across ranks (``sharded_extract``)."""
