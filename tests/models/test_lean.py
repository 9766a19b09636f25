"""CDPAM's encoder with activation checkpointing (models/lean.py, issue 13 item 6): the same
loss, gradients and batch-norm statistics as the plain forward pass, and a fraction of the
tensors kept for the backward pass (training takes it where it should:
training/test_cdpam.py)."""

from __future__ import annotations

import copy

import pytest
import torch

from pamflow.models.cdpam import CDPAM, CDPAMConfig, doubling_schedule
from pamflow.models.losses import nt_xent

#: the default's structure (16 layers, kernel 15, 4 blocks), few channels
SMALL = CDPAMConfig(
    channels=doubling_schedule(8, 16, 4), projection_dims=(16, 8), distance_dims=(8, 4)
)


def step(model: CDPAM, x: torch.Tensor) -> torch.Tensor:
    """NT-Xent on both halves of the embedding (stage contrastive's loss), backpropagated."""
    torch.manual_seed(1)  # the projection head's dropout draws the same in both models
    acoustic, content = model.embed(x)
    loss = nt_xent(*model.project(acoustic).chunk(2), 1.0)
    loss = loss + nt_xent(*model.project(content).chunk(2), 1.0)
    loss.backward()
    return loss.detach()


def test_loss_gradients_and_statistics_are_those_of_the_plain_forward():
    # float64, so that the comparison sees the algebra rather than the CPU's float32
    # kernels: grouped and whole-layer convolutions sum in another order on some CPUs
    # (AVX2), and on these tiny tensors one LeakyReLU input rounded across zero moves the
    # float32 gradients by a percent. Measured: loss to 1e-16, gradients to 6e-14.
    torch.manual_seed(0)
    plain = CDPAM(SMALL).train().double()
    lean_ = copy.deepcopy(plain)
    lean_.encoder.checkpointing = True
    x = (torch.randn(8, 1000) * 0.1).double()
    for _ in range(2):  # the second step starts from moved running statistics
        for m in (plain, lean_):
            m.zero_grad()
        torch.testing.assert_close(step(plain, x), step(lean_, x), rtol=1e-12, atol=0)
        grads = {n: p.grad for n, p in plain.named_parameters() if p.grad is not None}
        scale = max(float(g.abs().max()) for g in grads.values())
        for name, p in lean_.named_parameters():
            if name in grads:
                torch.testing.assert_close(p.grad, grads[name], rtol=1e-10, atol=1e-12 * scale)
            else:
                assert p.grad is None, name
        for (name, a), b in zip(plain.named_buffers(), lean_.buffers(), strict=True):
            # running statistics moved once a step
            torch.testing.assert_close(a, b, rtol=1e-12, atol=0, msg=name)
    assert int(lean_.encoder.norms[0].num_batches_tracked) == 2
    with torch.no_grad():  # not training: the plain path (its statistics as above)
        lean_.encoder.load_state_dict(plain.encoder.state_dict())
        assert torch.equal(plain.encoder.eval()(x), lean_.encoder.eval()(x))
    assert plain.state_dict().keys() == lean_.state_dict().keys()  # checkpoints unchanged


def test_float32_loss_is_the_plain_forwards_to_rounding():
    torch.manual_seed(0)
    plain = CDPAM(SMALL).train()
    lean_ = copy.deepcopy(plain)
    lean_.encoder.checkpointing = True
    x = torch.randn(8, 1000) * 0.1
    # bit for bit on an AVX-512 machine; 2.4e-7 relative on an AVX2 one
    torch.testing.assert_close(step(plain, x), step(lean_, x), rtol=1e-6, atol=0)


def saved_bytes(model: CDPAM, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps from the encoder's forward pass."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.encoder(x)
    return sum(seen.values())


def test_the_backward_pass_keeps_only_each_segments_input():
    torch.manual_seed(0)
    model = CDPAM(SMALL).train()
    x = torch.randn(4, 4000)
    plain = saved_bytes(model, x)
    model.encoder.checkpointing = True
    kept = saved_bytes(model, x)
    params = sum(p.numel() * 4 for p in model.encoder.parameters())
    # two segments of two blocks: the waveform, and the third block's input (32 channels at
    # a quarter of the rate: 8 waveforms' worth)
    inputs = 4 * 4000 * 4 * (1 + 8)
    assert params + inputs <= kept <= params + inputs + 4096, (kept, params + inputs)
    assert plain > 10 * inputs  # three tensors of every layer


def test_yaml_on_and_off_are_read_and_anything_else_is_refused():
    from pamflow.models import registry

    for value, read in ((True, "on"), (False, "off"), ("auto", "auto")):
        assert registry.train_config("cdpam", {"checkpointing": value}).checkpointing == read
    with pytest.raises(ValueError, match="checkpointing"):
        registry.train_config("cdpam", {"tiny": True, "checkpointing": "sometimes"})
