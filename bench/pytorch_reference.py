"""The reference CNN of `npm run bench -- train`, in PyTorch: the anchor its speeds are compared with.

The same network as src/models/reference-cnn.ts (3x3 convolutions with 32-32, 64-64 and 128
filters, ReLU, 2x2 max pooling after the 2nd, 4th and 5th, dropout 0.25, a dense layer of 256,
dropout 0.5, a dense layer of 10), trained the same way (Adam, learning rate 0.001, batch 64,
cross-entropy) on batches of images. Prints one JSON line: images per second over `--batches`
training steps after 3 of warm-up.

Run: /usr/bin/python3 bench/pytorch_reference.py --threads 2 --batches 43
"""
import argparse
import json
import time

import torch
from torch import nn


def reference_cnn() -> nn.Module:
    def conv(inputs: int, outputs: int) -> list:
        return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.ReLU()]

    return nn.Sequential(
        *conv(1, 32), *conv(32, 32), nn.MaxPool2d(2),
        *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),
        *conv(64, 128), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(128 * 3 * 3, 256), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(256, 10),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batches', type=int, default=43)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = reference_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss = nn.CrossEntropyLoss()
    images = torch.rand(64, 1, 28, 28)
    labels = torch.randint(0, 10, (64,))

    def step() -> None:
        optimizer.zero_grad()
        loss(model(images), labels).backward()
        optimizer.step()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(args.batches):
        step()
    seconds = time.perf_counter() - started
    print(json.dumps({'torch': torch.__version__, 'threads': args.threads, 'imagesPerSecond': 64 * args.batches / seconds}))


if __name__ == '__main__':
    main()
