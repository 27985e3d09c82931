from keras_seg.decoders.pan.model import PAN

__all__ = ["PAN"]
