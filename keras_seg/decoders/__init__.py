"""One folder per architecture: its decoder and its model class."""
