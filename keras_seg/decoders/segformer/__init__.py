from keras_seg.decoders.segformer.model import Segformer

__all__ = ["Segformer"]
