"""The precision names of training and inference (torch-free, so configs can offer them as choices).

``fp32``: plain float32. ``bf16`` / ``fp16``: AMP autocast on CUDA with float32 weights (fp16
with a GradScaler in training). ``lt_bench.device.amp_policy`` turns a name into the policy.
"""

PRECISIONS = ("fp32", "bf16", "fp16")
