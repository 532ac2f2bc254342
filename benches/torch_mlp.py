"""PyTorch CPU reference for benches/train_step.rs: the same MLP (64-128-128-64-10, ReLU),
batches of 256, Adam (lr 1e-3), 4 epochs of 8 steps per call, all layers vs head only.

Run with the venv from scripts/libtorch.sh:
    ~/.cache/relearn/torch-venv/bin/python benches/torch_mlp.py
Prints the median seconds per call (32 steps) over 10 calls, like criterion's estimate.
"""
import statistics
import time

import torch

torch.manual_seed(1)
torch.set_num_threads(2)

N, D, C, B, EPOCHS = 2048, 64, 10, 256, 4
x = torch.randn(N, D)
y = torch.randint(0, C, (N,))


def make():
    return torch.nn.Sequential(
        torch.nn.Linear(D, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, C),
    )


def run(head_only: bool) -> float:
    model = make()
    if head_only:
        for p in list(model.parameters())[:-2]:
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(EPOCHS):
        perm = torch.randperm(N)
        for i in range(0, N, B):
            idx = perm[i:i + B]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    return time.perf_counter() - start


for name, head in [("all_layers", False), ("head_only", True)]:
    run(head)  # warm-up
    times = [run(head) for _ in range(10)]
    med = statistics.median(times)
    print(f"torch {torch.__version__} {name}: {med * 1e3:.2f} ms per call of 32 steps "
          f"({32 * B / med:.0f} examples/s)")
