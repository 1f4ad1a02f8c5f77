"""The detector contract, for every registered detector."""

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KernelDensity

from ganad_bench import available_detectors, create_detector
from ganad_bench.errors import ConfigError, InputError
from ganad_bench.models.kit.contract import Detector

CLASSIC = ["iforest", "kde", "ocsvm"]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 5))
    test = np.vstack([rng.normal(size=(100, 5)), rng.normal(loc=4.0, size=(20, 5))])
    labels = np.r_[np.zeros(100), np.ones(20)]
    return train, test, labels


def test_registry_lists_the_classic_baselines():
    assert set(CLASSIC) <= set(available_detectors())


def test_unknown_model_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown model 'nope': choose one of"):
        create_detector("nope")


def test_bad_parameter_is_a_config_error_naming_the_closest_one():
    with pytest.raises(ConfigError, match=r"^model.params.not_a_param: not a setting of model iforest \(check the "
                                          r"spelling, or remove it\); its settings: contrast_norm, max_features"):
        create_detector("iforest", not_a_param=1)
    with pytest.raises(ConfigError, match=r"^model.params.n_estimater: not a setting of model iforest \(did you mean "
                                          r"n_estimators\? else remove it\)"):
        create_detector("iforest", n_estimater=10)


def test_no_model_takes_an_infinite_or_nan_number():
    """Every numeric parameter of every model (deep ones included) refuses inf and NaN when it is made: such a
    value would reach the run and end it diverged, or train with a term turned around."""
    import inspect
    import math

    from ganad_bench.models.kit.registry import detector_class

    checked = 0
    for name in available_detectors():
        for param in inspect.signature(detector_class(name).__init__).parameters.values():
            if param.kind is param.KEYWORD_ONLY and "float" in str(param.annotation):
                for bad in (math.inf, -math.inf, math.nan):
                    with pytest.raises(ConfigError, match=f"model.params.{param.name} must be"):
                        detector_class(name)(**{param.name: bad})
                checked += 1
    assert checked >= 30


@pytest.mark.parametrize("name", CLASSIC)
def test_higher_scores_for_anomalies(name, problem):
    train, test, labels = problem
    scores = create_detector(name, seed=0).fit(train).score_samples(test)
    assert scores.shape == (len(test),)
    assert roc_auc_score(labels, scores) > 0.95


@pytest.mark.parametrize("name", CLASSIC)
def test_scores_do_not_depend_on_order_or_batch_size(name, problem):
    train, test, _ = problem
    detector = create_detector(name, seed=0).fit(train)
    whole = detector.score_samples(test)
    order = np.random.default_rng(1).permutation(len(test))
    np.testing.assert_allclose(detector.score_samples(test[order]), whole[order], rtol=1e-10, atol=1e-10)
    chunks = np.concatenate([detector.score_samples(test[i:i + 7]) for i in range(0, len(test), 7)])
    np.testing.assert_allclose(chunks, whole, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", CLASSIC)
def test_save_and_load_give_the_same_scores(name, problem, tmp_path):
    train, test, _ = problem
    detector = create_detector(name, seed=0).fit(train)
    detector.save(tmp_path / "model.pkl")
    loaded = type(detector).load(tmp_path / "model.pkl")
    np.testing.assert_array_equal(loaded.score_samples(test), detector.score_samples(test))


@pytest.mark.parametrize("name", CLASSIC)
def test_same_seed_same_scores(name, problem):
    train, test, _ = problem
    a = create_detector(name, seed=3).fit(train).score_samples(test)
    b = create_detector(name, seed=3).fit(train).score_samples(test)
    np.testing.assert_array_equal(a, b)


def test_iforest_is_sklearn_with_the_sign_flipped(problem):
    train, test, _ = problem
    ours = create_detector("iforest", seed=5).fit(train).score_samples(test)
    reference = IsolationForest(random_state=5).fit(train).score_samples(test)
    np.testing.assert_allclose(ours, -reference)


def test_ocsvm_uses_inverse_feature_gamma_and_nu(problem):
    train, _, _ = problem
    detector = create_detector("ocsvm", nu=0.2).fit(train)
    assert detector.model.gamma == pytest.approx(1 / 5) and detector.model.nu == 0.2


def test_ocsvm_subsamples_large_training_sets(problem):
    train, _, _ = problem
    detector = create_detector("ocsvm", max_train_samples=100).fit(train)
    assert detector.fit_rows == 100


def test_kde_scores_are_the_exact_negative_log_density(problem):
    from scipy.special import logsumexp

    train, test, _ = problem
    detector = create_detector("kde", seed=0).fit(train)
    h, (n, d) = detector.bandwidth, train.shape
    sq = ((test[:, None, :] - train[None, :, :]) ** 2).sum(-1)
    exact = logsumexp(-0.5 * sq / h**2, axis=1) - np.log(n) - 0.5 * d * np.log(2 * np.pi * h**2)
    np.testing.assert_allclose(detector.score_samples(test), -exact, rtol=1e-9)
    # scikit-learn's tree estimate agrees where the density is not vanishingly small (the inliers);
    # for far outliers its kernel sums underflow, which is why scoring is done exactly here
    reference = KernelDensity(bandwidth=h).fit(train).score_samples(test[:100])
    np.testing.assert_allclose(detector.score_samples(test[:100]), -reference, rtol=1e-6)


def test_kde_bandwidth_comes_from_the_grid(problem):
    train, _, _ = problem
    detector = create_detector("kde", bandwidths=[0.3, 1.0, 3.0]).fit(train)
    assert detector.bandwidth in (0.3, 1.0, 3.0)


@pytest.mark.parametrize("name", [*CLASSIC, "dcae"])
def test_unusable_samples_are_refused_with_the_fix(name, problem, tmp_path):
    """Every detector, through the contract: a NaN would otherwise score NaN (never flagged) or fail deep inside
    a library; a ValueError as scikit-learn's, and one line that names the sample and the fix."""
    train, test, _ = problem
    detector = create_detector(name, trainer={"epochs": 1}) if name == "dcae" else create_detector(name)
    for call in (detector.score_samples, detector.predict):  # scikit-learn's error, also a RuntimeError
        with pytest.raises(NotFittedError, match=f"call fit\\(\\) before {call.__name__}"):
            call(test)
    holed, huge = train.copy(), train.copy()
    holed[7, 3] = np.nan
    huge[2, 1] = -1e300  # finite in float64, inf in the float32 every detector computes in
    for bad, message in [(holed, "the first nan at sample 8, feature 4"), (train[:, 0], r"shape \(n, features\)"),
                         (train.astype(str), "give numbers"),
                         (huge, r"beyond float32's range \(3.4e38\), .* the first -1e\+300 at sample 3, feature 2")]:
        with pytest.raises(InputError, match=message):
            detector.fit(bad)
    with pytest.raises(InputError, match="needs at least 2 training samples, got 1"):
        detector.fit(train[:1])
    with pytest.raises(ValueError, match=r"validation samples of shape \(4,\)"):
        detector.fit(train, train[:, :4])
    with pytest.raises(RuntimeError, match="call fit"):  # a refused fit leaves the detector unfitted
        detector.score_samples(test)
    detector.fit(train)
    reloaded = Detector.load(detector.save(tmp_path / "detector.pt"))
    for fitted in (detector, reloaded):
        with pytest.raises(InputError, match=r"of shape \(4,\) each, but the detector was fitted on \(5,\)"):
            fitted.score_samples(test[:, :4])
        with pytest.raises(InputError, match="120 value.* the first inf at sample 1, feature 3"):
            fitted.score_samples(np.where(np.arange(5) == 2, np.inf, test))
        assert fitted.score_samples(test[:0]).shape == (0,)
