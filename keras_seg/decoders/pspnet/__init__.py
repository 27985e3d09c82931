from keras_seg.decoders.pspnet.model import PSPNet

__all__ = ["PSPNet"]
