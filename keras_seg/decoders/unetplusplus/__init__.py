from keras_seg.decoders.unetplusplus.model import UnetPlusPlus

__all__ = ["UnetPlusPlus"]
