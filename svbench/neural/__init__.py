"""Neural codecs svbench trains itself: SVCODEC and its SoundStream baseline (model, RVQ, losses, training)."""
