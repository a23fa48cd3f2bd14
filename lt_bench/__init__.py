"""lt_bench: long-tailed recognition with CLIP, one feature cache, every head in seconds."""

__version__ = "0.1.0"
