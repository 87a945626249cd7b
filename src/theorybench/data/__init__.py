"""Data sets that need no download: synthetic generators, scikit-learn's digits, and torchvision
data sets read from a local folder."""
