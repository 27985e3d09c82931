from keras_seg.decoders.dpt.model import DPT

__all__ = ["DPT"]
