"""Seeing inside a network: filters and feature maps, gradient saliency (vanilla, guided
backprop, deconvnet), occlusion sensitivity, Grad-CAM, maximally activating patches, class
models by gradient ascent, and t-SNE / nearest neighbours of penultimate features.

Each method returns arrays (heat-maps are (H, W) in [0, 1]); :mod:`cnnlab.visualize.overlay`
turns them into PNGs. All of them use only the zoo protocol (``forward_features``,
``forward_head``, ``num_classes``) and layer names from ``named_modules()``.
"""

from cnnlab.visualize.activations import Patch, class_model, max_activating_patches
from cnnlab.visualize.embedding import (nearest_neighbours, penultimate_features,
                                        save_neighbour_grid, save_tsne, tsne)
from cnnlab.visualize.filters import feature_maps, filter_tiles
from cnnlab.visualize.gradcam import gradcam, gradcam_map
from cnnlab.visualize.hooks import conv_layers, default_layer, prepare, relu_rule
from cnnlab.visualize.occlusion import Occlusion, occlusion
from cnnlab.visualize.overlay import overlay, save_panels, save_png, tile_grid
from cnnlab.visualize.saliency import gradient_image, input_gradient, saliency

__all__ = ["Occlusion", "Patch", "class_model", "conv_layers", "default_layer", "feature_maps",
           "filter_tiles", "gradcam", "gradcam_map", "gradient_image", "input_gradient",
           "max_activating_patches", "nearest_neighbours", "occlusion", "overlay",
           "penultimate_features", "prepare", "relu_rule", "save_neighbour_grid", "save_panels",
           "save_png", "save_tsne",
           "tile_grid", "tsne", "saliency"]
