"""Data sets that need no download: synthetic generators, scikit-learn's digits, MNIST-1D, and
torchvision data sets read from a local folder."""
