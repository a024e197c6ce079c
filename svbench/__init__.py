"""svbench: evaluate and benchmark low-bitrate speech codecs."""

__version__ = "0.1.0"

import warnings

# pyworld and pysptk import pkg_resources, which warns on every import (setuptools >= 67); svbench pins
# setuptools<81 so it keeps working. Only that warning, only from those two packages, is silenced.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning,
                        module=r"(pyworld|pysptk)(\.|$)")
