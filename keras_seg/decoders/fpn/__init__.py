from keras_seg.decoders.fpn.model import FPN

__all__ = ["FPN"]
