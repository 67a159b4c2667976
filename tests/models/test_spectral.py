"""Spectral normalisation helpers: the power iteration shared by the weights recipe and stage-2 initial weights."""

import torch

from tavce.models.renderer.spectral import fold_spectral_norm, spectral_sigma, spectral_vectors


def test_spectral_vectors_give_the_largest_singular_value():
    weight = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    left, right = spectral_vectors(weight)
    assert left.dtype == right.dtype == torch.float64 and left.shape == (6,) and right.shape == (27,)
    largest = torch.linalg.svdvals(weight.reshape(6, -1).double())[0]
    torch.testing.assert_close(spectral_sigma(weight.double(), left, right), largest, rtol=1e-9, atol=0)


def test_spectral_vectors_match_torch_spectral_norm_from_the_same_start():
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 5, 3), n_power_iterations=7).double()
    start = conv.weight_u.clone()
    left, right = spectral_vectors(conv.weight_orig.detach(), start, iterations=7)
    conv.train()(torch.zeros(1, 3, 4, 4, dtype=torch.float64))  # one forward pass runs torch's 7 iterations
    torch.testing.assert_close(left, conv.weight_u, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(right, conv.weight_v, rtol=1e-10, atol=1e-12)


def test_folding_settled_vectors_divides_by_the_largest_singular_value():
    weight = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    left, right = spectral_vectors(weight)
    folded = fold_spectral_norm({"w.weight_orig": weight, "w.weight_u": left.float(), "w.weight_v": right.float()})
    torch.testing.assert_close(torch.linalg.svdvals(folded["w.weight"].double())[0].item(), 1.0, rtol=1e-5, atol=0)
