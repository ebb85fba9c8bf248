"""Activations of every layer tap, streamed into a reduced layer bank and cached on disk.

``prepare_images`` places stimuli at the model's visual field (``PlacedStimuli`` batch by
batch, as extraction needs them); ``extract`` runs the model once
over them, reducing each tap on the fly (none | random projection | PCA); ``extract_cached``
does the same through an on-disk cache keyed by weights, stimuli, preprocessing and options.
"""

from jaxbrain.features.cache import cache_key, extract_cached, load, save
from jaxbrain.features.extract import LayerBank, extract, stimuli_hash, weights_hash
from jaxbrain.features.reductions import (
    PCA,
    NoReduction,
    RandomProjection,
    Reduction,
    as_reduction,
    pca_fit,
    pca_transform,
    sketch,
    sketch_params,
)
from jaxbrain.features.stimuli import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFiles,
    PlacedStimuli,
    model_preprocessing,
    prepare_images,
    preprocessing_key,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PCA",
    "ImageFiles",
    "LayerBank",
    "NoReduction",
    "PlacedStimuli",
    "RandomProjection",
    "Reduction",
    "as_reduction",
    "cache_key",
    "extract",
    "extract_cached",
    "load",
    "model_preprocessing",
    "pca_fit",
    "pca_transform",
    "prepare_images",
    "preprocessing_key",
    "save",
    "sketch",
    "sketch_params",
    "stimuli_hash",
    "weights_hash",
]
