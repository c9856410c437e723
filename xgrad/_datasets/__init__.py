"""The data sets: MNIST and Fashion-MNIST's IDX files, found, checked and read."""
