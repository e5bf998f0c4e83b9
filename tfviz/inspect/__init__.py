"""Looking inside a network without optimizing anything (section A of the lecture: filters,
activations, patches, neighbours, embeddings).

* :func:`filter_grid` -- a convolution layer's kernels as one tiled image,
* :func:`activation_grid` -- every channel of a layer for one image, strongest first,
* :func:`receptive_field` -- exact ``(size, stride, offset)`` of a layer's units,
* :func:`max_activating_patches` -- the top-k receptive-field crops of channels over a
  data set, streamed with a running top-k,
* :func:`nearest_neighbors` -- data-set images nearest in feature (or pixel) space,
* :func:`embed` / :func:`thumbnail_map` -- t-SNE / PCA map of a data set as a grid of
  thumbnails,
* :func:`export_projector` -- files for TensorBoard's Embedding Projector.

Every function returns numpy arrays; writing PNGs or summaries is the caller's step.
"""
from .activations import activation_grid, activation_maps
from .embedding import (FeatureSet, default_feature_layer, embed, export_projector, extract_features,
                        label_agreement, nearest_neighbors, neighbor_strips, reduce_features, thumbnail_map)
from .filters import filter_grid, filter_tiles
from .patches import ChannelError, ChannelPatches, max_activating_patches, patch_grid
from .receptive import ReceptiveField, receptive_field

__all__ = ["filter_grid", "activation_grid", "receptive_field", "max_activating_patches", "nearest_neighbors",
           "embed", "thumbnail_map", "export_projector",
           "activation_maps", "filter_tiles", "ReceptiveField", "ChannelPatches", "ChannelError", "patch_grid",
           "extract_features", "reduce_features", "FeatureSet", "default_feature_layer", "neighbor_strips",
           "label_agreement"]
