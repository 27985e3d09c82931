from keras_seg.decoders.unet.model import Unet

__all__ = ["Unet"]
