"""heartbeat: reproducible ECG heartbeat classification (Kachuee et al. 2018) with DVC."""

import os

# TensorFlow's C++ start-up chatter (CPU feature notices, oneDNN banners) buries
# the per-epoch lines users need; warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
