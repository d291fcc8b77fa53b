"""Loads a model saved by fashion-mnist-ts (model.json + model.safetensors) into torch.nn.

    python3 docs/load_in_pytorch.py MODEL_DIR                   # print the torch module
    python3 docs/load_in_pytorch.py MODEL_DIR IMAGES.npy OUT.npy # probabilities of uint8 images

MODEL_DIR is a model folder of `fmnist train` or a pipeline (mlp/, cnn/, cnn-features-mlp/).
The module takes images float32 [N, 1, 28, 28] (pixel bytes / 255) and returns logits [N, 10];
torch.softmax(logits, dim=1) gives the probabilities (for a model with test-time flipping, the
average over each image and its mirror image). Needs PyTorch and numpy only.

The mapping (see docs/export.md): tensors are named layers.<i>.<name>, <i> the layer's index in
model.json. Our dense weight is [inputs, units] (x @ W + b), torch.nn.Linear's is [units, inputs].
Our convolution weight is [k, k, in, out] over channels-last (NHWC) images, nn.Conv2d's is
[out, in, k, k] over NCHW. Our flatten orders an [H, W, C] image's features (y, x, c), torch's
flatten of [C, H, W] orders them (c, y, x): the rows of the dense layer after it are reordered.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    """The tensors of a safetensors file as numpy arrays (safetensors.numpy.load_file gives the same).

    The format: an 8-byte little-endian header length, a JSON header giving each tensor's dtype,
    shape and byte range, then the raw little-endian data.
    """
    with open(path, "rb") as file:
        raw = file.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    data = raw[8 + length :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"])
    return tensors


def torch_layers(architecture, tensors, last_layer=None):
    """torch modules for our layers 0..last_layer (all by default), with their weights converted."""
    shape = list(architecture["inputShape"])  # one example, ours: [H, W, C] or [F]
    modules = []
    flattened = None  # [H, W, C] of the last flatten, until a dense layer takes its features
    specs = architecture["layers"][: None if last_layer is None else last_layer + 1]
    for i, spec in enumerate(specs):
        def tensor(name):
            return torch.from_numpy(tensors[f"layers.{i}.{name}"].copy())

        kind = spec["type"]
        if kind == "conv2d":
            k = spec.get("kernelSize", 3)
            conv = nn.Conv2d(shape[2], spec["filters"], k, padding=k // 2)
            conv.weight.data = tensor("weight").permute(3, 2, 0, 1).contiguous()  # [k, k, in, out] -> [out, in, k, k]
            conv.bias.data = tensor("bias")
            modules.append(conv)
            shape = [shape[0], shape[1], spec["filters"]]
        elif kind == "maxpool2d":
            modules.append(nn.MaxPool2d(2))  # floor, as ours: 7 -> 3
            shape = [shape[0] // 2, shape[1] // 2, shape[2]]
        elif kind == "flatten":
            modules.append(nn.Flatten())
            flattened = shape
            shape = [int(np.prod(shape))]
        elif kind == "dense":
            weight = tensor("weight")  # [inputs, units]
            if flattened is not None:  # rows (y, x, c) -> (c, y, x)
                h, w, c = flattened
                weight = weight.reshape(h, w, c, -1).permute(2, 0, 1, 3).reshape(h * w * c, -1)
                flattened = None
            linear = nn.Linear(shape[0], spec["units"])
            linear.weight.data = weight.T.contiguous()  # torch keeps [units, inputs]
            linear.bias.data = tensor("bias")
            modules.append(linear)
            shape = [spec["units"]]
        elif kind == "batchnorm":
            norm = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[-1], eps=spec.get("epsilon", 1e-5))
            norm.weight.data, norm.bias.data = tensor("gamma"), tensor("beta")
            norm.running_mean.data, norm.running_var.data = tensor("runningMean"), tensor("runningVar")
            modules.append(norm)
        elif kind == "relu":
            modules.append(nn.ReLU())
        elif kind == "dropout":
            modules.append(nn.Dropout(spec["rate"]))  # identity in eval()
        else:
            raise ValueError(f"layer {i}: unknown type {kind}")
    return modules


class Standardise(nn.Module):
    """(x - mean) * (1 / std) per feature, in float32: the MLP on CNN features' input transform."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.from_numpy((1.0 / np.array(std, dtype=np.float64)).astype(np.float32)))

    def forward(self, x):
        return (x - self.mean) * self.scale


class FlipAverage(nn.Module):
    """A model trained with test-time flipping (model.json's testTimeFlip): the probabilities of
    each image and its mirror image averaged. Returns their logarithm, so that softmax of the
    output is that average, as with any other model's logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        both = torch.softmax(self.model(x), dim=1) + torch.softmax(self.model(torch.flip(x, dims=[3])), dim=1)
        return torch.log(both / 2)


class FlipAverageFeatures(nn.Module):
    """A CNN's features as an MLP on features with flipAverage in its input transform takes them:
    the mean of each image's features and its mirror image's."""

    def __init__(self, features):
        super().__init__()
        self.features = features

    def forward(self, x):
        return (self.features(x) + self.features(torch.flip(x, dims=[3]))) / 2


def read_model(folder):
    with open(os.path.join(folder, "model.json")) as file:
        description = json.load(file)
    return description, read_safetensors(os.path.join(folder, "model.safetensors"))


def load_model(folder):
    """The model in `folder` as an nn.Sequential in eval mode, images [N, 1, 28, 28] -> logits [N, 10].

    An MLP on CNN features becomes the whole chain: the extractor CNN up to its feature layer
    (on each image and its mirror image, averaged, where the input says flipAverage), the
    standardisation saved in model.json, then the MLP.
    """
    description, tensors = read_model(folder)
    modules = torch_layers(description["architecture"], tensors)
    source = description["input"]
    if source["type"] == "pixels" and len(description["architecture"]["inputShape"]) == 1:
        modules = [nn.Flatten()] + modules  # an MLP on pixels takes the images as rows of 784
    elif source["type"] == "cnn-features":
        extractor, extractor_tensors = read_model(os.path.join(folder, source["extractor"]))
        features = torch_layers(extractor["architecture"], extractor_tensors, source["featureLayer"])
        if source.get("flipAverage"):
            features = [FlipAverageFeatures(nn.Sequential(*features))]
        modules = features + [Standardise(source["mean"], source["std"])] + modules
    model = nn.Sequential(*modules)
    return (FlipAverage(model) if description.get("testTimeFlip") else model).eval()


if __name__ == "__main__":
    model = load_model(sys.argv[1])
    if len(sys.argv) < 4:
        print(model)
        sys.exit(0)
    images = np.load(sys.argv[2])  # uint8 [N, 28, 28] or [N, 784]
    x = torch.from_numpy(images.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255))
    with torch.no_grad():
        probabilities = torch.softmax(model(x), dim=1)
    np.save(sys.argv[3], probabilities.numpy().astype(np.float32))
