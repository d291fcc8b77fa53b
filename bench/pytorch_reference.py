"""The reference CNN of `npm run bench -- train`, in PyTorch: the anchor its speeds are compared with.

The same network as src/models/reference-cnn.ts (3x3 convolutions with 32-32, 64-64 and 128
filters, ReLU, 2x2 max pooling after the 2nd, 4th and 5th, dropout 0.25, a dense layer of 256,
dropout 0.5, a dense layer of 10), trained the same way (Adam, learning rate 0.001, batch 64,
cross-entropy) on batches of images. Prints one JSON line: images per second over `--batches`
training steps after 3 of warm-up. `--device cuda` trains on the GPU (float32, eager; the time
ends when the GPU has finished the last step), the anchor of `npm run bench -- webgpu`.

Run: /usr/bin/python3 bench/pytorch_reference.py --threads 2 --batches 43
     python3 bench/pytorch_reference.py --device cuda --batch 128 --batches 200
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
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    # float32 throughout: no TF32 in the products, as our kernels compute them.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = reference_cnn().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss = nn.CrossEntropyLoss()
    images = torch.rand(args.batch, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (args.batch,), device=device)

    def step() -> None:
        optimizer.zero_grad()
        loss(model(images), labels).backward()
        optimizer.step()

    def finish() -> None:
        if device.type == 'cuda':
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    finish()
    started = time.perf_counter()
    for _ in range(args.batches):
        step()
    finish()
    seconds = time.perf_counter() - started
    report = {'torch': torch.__version__, 'device': str(device), 'threads': args.threads, 'batch': args.batch, 'imagesPerSecond': args.batch * args.batches / seconds}
    if device.type == 'cuda':
        report['gpu'] = torch.cuda.get_device_name(device)
    print(json.dumps(report))


if __name__ == '__main__':
    main()
