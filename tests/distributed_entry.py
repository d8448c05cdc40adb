"""Entry point for ``accelerate launch`` in tests/test_distributed.py: runs a script as ``python <script> ...`` would,
with DeepSpeed's CPU shared-memory all-reduce turned off.

On a CPU, DeepSpeed's comm backend JIT-compiles its ``deepspeed_shm_comm`` C++ op the first time a process group is
set up (about 30 s on a 2-core machine, and a C++ compiler must be present). That op only speeds up the all-reduce of
large tensors between processes of one host; without it DeepSpeed uses torch.distributed's own all-reduce (gloo),
which is what the test needs. The training script itself runs unchanged.

    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml --num_processes 2 \
        tests/distributed_entry.py scripts/grpo.py recipes/demo/grpo_grounding.yaml ...
"""

from __future__ import annotations

import importlib
import runpy
import sys


def main() -> None:
    # The module itself: `import deepspeed.comm.torch as m` would bind deepspeed.comm's attribute `torch`, which is
    # PyTorch, and the patch below would land on the wrong module.
    deepspeed_torch_comm = importlib.import_module("deepspeed.comm.torch")

    # A rename upstream would make this patch a no-op and bring back a 30 s C++ build: fail loudly instead.
    assert hasattr(deepspeed_torch_comm, "build_shm_op"), "deepspeed renamed build_shm_op: update this entry point"
    deepspeed_torch_comm.build_shm_op = lambda: None  # TorchBackend then falls back to torch.distributed
    script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
