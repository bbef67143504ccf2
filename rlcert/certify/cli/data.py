"""Old location of the data loaders: they live in ``rlcert.certify.io`` (model and data loading), re-exported here
so that existing scripts keep working."""

from rlcert.certify.io import (  # noqa: F401  (re-exported)
    CIFAR10_TRAIN,
    DIGITS_TEST_SIZE,
    IMAGE_EXTENSIONS,
    load_cifar10,
    load_data,
    load_digits_split,
    load_image_folder,
    load_npz_xy,
    validate_dataset,
)
