from keras_seg.decoders.upernet.model import UPerNet

__all__ = ["UPerNet"]
