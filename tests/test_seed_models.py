"""RCGAN and MEMGAN specifics: the penalty term of RCGAN's Eq. 4 and its switch, the scores of Eqs. 11-12,
MEMGAN's memory (convex latents, the projection of Eq. 5), Algorithm 1's update order, the memory grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from ganad_bench.errors import ConfigError
from ganad_bench.models.kit.registry import create_detector
from ganad_bench.models.rcgan import sample_penalty
from ganad_bench.results.image_grid import image_grid, png_bytes
from ganad_bench.training.noise import RandomStream, seed_streams
from tests.checks import cpu_trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def rcgan_module(**params):
    """RCGAN's module on 6 features with latent size 3, `params` over the detector's defaults."""
    return create_detector("rcgan", latent_dim=3, **params).build((6,))


def memgan_module(n_memory: int):
    """MEMGAN's module on 6 features with n_memory units of size 4, without spectral normalisation."""
    return create_detector("memgan", memory_dim=4, n_memory=n_memory, spectral_norm=False).build((6,))

def trainer(**kw):
    return cpu_trainer(**{"batch_size": 8, **kw})


# ------------------------------------------------------------------------------------------- streams
def lowbias32(x: int) -> int:
    """Wellons' lowbias32 on Python integers (exact: no wrapping to rely on)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


@pytest.mark.parametrize("key,counter", [(123456789, 0), (0xFFFFFFFF, 2**33 - 3), (7, 2**40 + 2**32 - 2)])
def test_a_stream_draws_lowbias32_of_its_counters_exactly(key, counter):
    """The numbers a checkpoint's stream goes on with never change with the implementation: the i-th draw
    is lowbias32((counter + i) XOR k) with k mixed from the key and the counter's high bits."""
    stream = RandomStream()
    stream.state.copy_(torch.tensor([key, counter]))
    mixed = lowbias32(lowbias32(key & 0xFFFFFFFF) ^ (counter >> 32))
    expected = [lowbias32(((counter + i) ^ mixed) & 0xFFFFFFFF) for i in range(2000)]
    assert stream.bits(2000).tolist() == expected and stream.state[1].item() == counter + 2000


# ------------------------------------------------------------------------------------------- RCGAN
@pytest.mark.parametrize("kind,check", [
    ("normal", lambda t: abs(t.std().item() - 1.0) < 0.05),
    ("normal2", lambda t: abs(t.var().item() - 2.0) < 0.1),
    ("uniform", lambda t: t.min() >= -1 and t.max() <= 1 and abs(t.mean().item()) < 0.05),
])
def test_penalty_distributions_of_table_4(kind, check):
    stream = RandomStream()
    seed_streams(stream, 0)
    assert check(sample_penalty(kind, torch.zeros(20000, 6), stream))


@pytest.mark.parametrize("which", ["d_loss", "g_loss"])
def test_switching_t_off_removes_exactly_the_penalty_term(which):
    torch.manual_seed(0)
    nets = rcgan_module(penalty="normal", spectral_norm=False).eval()  # eval: no dropout randomness
    x = torch.randn(16, 6)
    seed_streams(nets, 1)  # the losses draw z and the penalty batch from the module's random stream
    with_t, stats = getattr(nets, which)(x)
    nets.penalty = "none"
    seed_streams(nets, 1)
    without_t, stats_off = getattr(nets, which)(x)
    key = "d_penalty" if which == "d_loss" else "g_penalty"
    assert set(stats) - set(stats_off) == {key}
    torch.testing.assert_close(with_t - stats[key], without_t)
    # and by hand: the third term of Eq. 4 on a batch from t(x), discriminator label 0, encoder label 1
    nets.penalty = "normal"
    seed_streams(nets, 5)
    x_pen = sample_penalty("normal", x, nets.noise)
    logit = nets.d_xz(x_pen, nets.encoder(x_pen))[0]
    target = 0.0 if which == "d_loss" else 1.0
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))
    seed_streams(nets, 5)
    torch.testing.assert_close(nets.penalty_terms(x, discriminator=which == "d_loss"), expected)


def test_rcgan_scores_follow_eq_11_and_12():
    torch.manual_seed(0)
    nets = rcgan_module(score="discriminator", spectral_norm=False).eval()
    x = torch.randn(10, 6)
    with torch.no_grad():
        logit = nets.d_xx(x, nets.reconstruct(x))[0]
        a_score = 1.0 - torch.sigmoid(logit)  # Eq. 11
        ours = nets.score(x)
    # a monotone map of A(x): the same ranking
    assert torch.equal(torch.argsort(ours), torch.argsort(a_score))
    torch.testing.assert_close(torch.sigmoid(ours), a_score)
    assert create_detector("rcgan", latent_dim=8, width=4).build((1, 16, 16)).score_name == "features"  # images: Eq. 12
    assert rcgan_module().score_name == "discriminator"


def test_rcgan_has_no_latent_discriminator_and_rejects_bad_switches():
    nets = rcgan_module()
    assert nets.discriminator_names == ("d_xz", "d_xx")
    with pytest.raises(ConfigError, match="penalty"):
        create_detector("rcgan", trainer=trainer(), penalty="cauchy")
    with pytest.raises(ConfigError, match="score"):
        create_detector("rcgan", trainer=trainer(), score="logits")


# ------------------------------------------------------------------------------------------ MEMGAN
def in_convex_hull(points: np.ndarray, vertices: np.ndarray) -> bool:
    """Is every point a convex combination of the vertices? (a feasibility linear programme per point)"""
    n = len(vertices)
    for p in points:
        a_eq = np.vstack([vertices.T, np.ones((1, n))])
        b_eq = np.concatenate([p, [1.0]])
        if not linprog(np.zeros(n), A_eq=a_eq, b_eq=b_eq, bounds=[(0, None)] * n, method="highs").success:
            return False
    return True


def test_memory_coefficients_are_positive_and_sum_to_one_and_latents_lie_in_the_hull():
    torch.manual_seed(0)
    nets = memgan_module(n_memory=10).double()  # float64: the hull test is exact
    alpha = nets.sample_alpha(64, torch.zeros(1, dtype=torch.float64))
    assert (alpha > 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.ones(64, dtype=torch.float64))
    with torch.no_grad():
        z = nets.combine(alpha)
        projected = nets.project(torch.randn(32, 4, dtype=torch.float64) * 5)
        weights = nets.address(torch.randn(32, 4, dtype=torch.float64))
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(32, dtype=torch.float64))
    memory = nets.memory.detach().double().numpy()
    assert in_convex_hull(z.double().numpy(), memory)
    assert in_convex_hull(projected.double().numpy(), memory)  # P(z) of Eq. 5, for any z
    outside = memory.max(0, keepdims=True) + 1.0
    assert not in_convex_hull(outside, memory)


def test_memgan_updates_d_then_e_then_g_then_m_each_with_its_own_parameters():
    det = create_detector("memgan", trainer=trainer(ema_decay=None), n_memory=5)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)
    det.fit(x)
    engine = det.engine
    assert [name for name, _, _ in engine.phases] == ["e", "g", "m"]
    ids = {name: {id(p) for p in params} for name, params in engine.phase_params.items()}
    module = engine.module
    assert ids["m"] == {id(module.memory)}
    assert ids["e"] == {id(p) for p in module.encoder.parameters()}
    assert ids["g"] == {id(p) for p in module.generator.parameters()}
    assert {id(p) for p in module.discriminator_parameters()} == {id(p) for p in module.d_xz.parameters()}
    assert engine.loss_names == ["d_loss", "e_loss", "g_loss", "m_loss"]


@pytest.mark.parametrize("encoder_loss", ["min_max", "non_saturating"])
def test_memgan_encoder_adversarial_term_is_the_printed_min_max_or_the_non_saturating_form(encoder_loss):
    """E's loss is Algorithm 1's log D(x, E(x)) (as printed) or -log(1 - D(x, E(x))) plus the memory terms, on
    the same networks, batch and coefficients (E's update reads the step's coefficients without moving on)."""
    torch.manual_seed(0)
    nets = create_detector("memgan", memory_dim=4, n_memory=5, spectral_norm=False,
                           encoder_loss=encoder_loss).build((6,)).eval()  # eval: no dropout between the two
    x = torch.randn(8, 6)
    loss, _ = nets.e_loss(x)
    terms = nets.memory_losses(x, nets.sample_alpha(len(x), x))
    logit = nets.d_xz(x, terms["z_enc"])[0]
    d = torch.sigmoid(logit)
    adversarial = torch.log(d).mean() if encoder_loss == "min_max" else -torch.log(1 - d).mean()
    torch.testing.assert_close(loss, adversarial + terms["cyc"] + terms["mi"] + terms["proj"])


def test_memgan_encoder_loss_stays_out_of_earlier_runs_identity_and_rejects_unknown_forms():
    from ganad_bench.results.store import config_hash

    before = {"model": {"name": "memgan", "params": {"n_memory": 50}}, "trainer": {"epochs": 7}, "seed": 0}

    def with_loss(form):
        return {**before, "model": {"name": "memgan", "params": {"n_memory": 50, "encoder_loss": form}}}

    assert config_hash(before) == config_hash(with_loss("min_max")) != config_hash(with_loss("non_saturating"))
    with pytest.raises(ConfigError, match="encoder_loss must be one of min_max, non_saturating"):
        create_detector("memgan", encoder_loss="saturating")


def test_memgan_memory_starts_standard_normal_as_before_or_at_tensorflows_glorot_scale():
    """`normal` is the default and keeps earlier runs' folders (it draws what their `torch.randn` drew: `normal_`
    on the same generator); Glorot uniform is bounded by sqrt(6 / (n + d)) and has that scale's spread."""
    from ganad_bench.results.store import config_hash

    def memory(**params):
        torch.manual_seed(0)
        return create_detector("memgan", n_memory=50, memory_dim=64, **params).build((6,)).memory.detach()

    assert torch.equal(memory(), memory(memory_init="normal")) and memory().std() == pytest.approx(1.0, abs=0.05)
    glorot = memory(memory_init="glorot_uniform")
    bound = (6 / (50 + 64)) ** 0.5
    assert glorot.abs().max() <= bound and glorot.std() == pytest.approx(bound / 3**0.5, rel=0.05)
    before = {"model": {"name": "memgan", "params": {"n_memory": 50}}, "seed": 0}
    assert config_hash(before) == config_hash({**before, "model": {"name": "memgan", "params": {
        "n_memory": 50, "memory_init": "normal"}}})
    with pytest.raises(ConfigError, match="memory_init must be one of normal, glorot_uniform"):
        create_detector("memgan", memory_init="zeros")


def test_memgan_score_is_the_reconstruction_error_through_the_memory():
    torch.manual_seed(0)
    nets = memgan_module(n_memory=7).eval()
    x = torch.randn(5, 6)
    with torch.no_grad():
        expected = (x - nets.generator(nets.project(nets.encoder(x)))).norm(dim=1)  # Eq. 8
        torch.testing.assert_close(nets.score(x), expected)


def test_memgan_writes_its_decoded_memory_as_a_png(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, size=(8, 1, 16, 16)).astype(np.float32)
    det = create_detector("memgan", trainer=trainer(), n_memory=6, memory_dim=8, width=4).fit(x)
    assert det.memory_images().shape == (6, 1, 16, 16)
    written = det.write_artifacts(tmp_path)
    data = (tmp_path / "memory.png").read_bytes()
    assert written == {"memory_grid": str(tmp_path / "memory.png")}
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in data
    tabular = create_detector("memgan", trainer=trainer(), n_memory=3).fit(np.zeros((8, 6), np.float32))
    assert tabular.write_artifacts(tmp_path / "t") == {}


def test_image_grid_layout():
    images = np.stack([np.full((1, 4, 4), v) for v in (-1.0, 0.0, 1.0)])
    grid = image_grid(images, columns=2, pad=1)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 1) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 6, 0] == 128 and grid[6, 1, 0] == 255
    assert png_bytes(grid)[12:16] == b"IHDR"


def test_memgan_rejects_impossible_memory_sizes():
    with pytest.raises(ConfigError, match="n_memory"):
        create_detector("memgan", trainer=trainer(), n_memory=1)
    with pytest.raises(ConfigError, match="memory_dim"):
        create_detector("memgan", trainer=trainer(), memory_dim=0)


def test_the_memory_check_rebuilds_the_memory_a_run_started_from():
    """scripts/memgan_check.py memory: at a learning rate too small to move anything the memory reads as
    unmoved (its start is rebuilt exactly as training drew it); at a large one it has moved; the addressing
    of the training rows is a proper distribution over the units."""
    from tests.conftest import load_script

    script = load_script("memgan_check")
    x = np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)

    def change(lr):
        det = create_detector("memgan", seed=3, trainer=trainer(lr=lr, epochs=2), n_memory=5, memory_dim=4)
        return script.memory_change(det.fit(x), det.preprocess(x))

    still, moved = change(1e-12), change(1e-2)
    assert still["relative_change"] < 1e-6 < 1e-3 < moved["relative_change"]
    assert 0 < moved["address_entropy"] <= moved["uniform_entropy"] == pytest.approx(np.log(5))
    assert 1 <= moved["units_used"] <= moved["units"] == 5
