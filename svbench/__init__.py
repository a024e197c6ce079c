"""svbench: evaluate and benchmark low-bitrate speech codecs."""

__version__ = "0.1.0"
