from keras_seg.decoders.manet.model import MAnet

__all__ = ["MAnet"]
