from keras_seg.decoders.linknet.model import Linknet

__all__ = ["Linknet"]
