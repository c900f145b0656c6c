"""The disk forecast: a least-squares line and its prediction interval (no database needed)."""

from __future__ import annotations

import random

import pytest

from pgrunbooks.history import forecast

GB = 1e9


def _planted(days=90, start=40 * GB, per_day=0.25 * GB, noise=0.01, seed=7):
    rng = random.Random(seed)
    xs = list(range(days))
    return xs, [(start + per_day * x) * (1 + rng.gauss(0, noise)) for x in xs]


def test_forecast_of_planted_linear_growth_is_within_15_percent_at_30_days():
    xs, ys = _planted()
    fit = forecast.fit_linear(xs, ys)
    horizon = xs[-1] + 30
    truth = 40 * GB + 0.25 * GB * horizon
    assert fit.value(horizon) == pytest.approx(truth, rel=0.15)
    growth_truth = 0.25 * GB * 30  # the growth itself, not only the level, within 15 %
    assert fit.value(horizon) - fit.value(xs[-1]) == pytest.approx(growth_truth, rel=0.15)
    low, high = fit.interval(horizon)
    assert low < truth < high


def test_days_until_full_brackets_the_truth():
    xs, ys = _planted()
    disk = 100 * GB
    truth = (disk - 40 * GB) / (0.25 * GB) - xs[-1]  # 151 days after the last point
    result = forecast.days_until_full(forecast.fit_linear(xs, ys), disk)
    assert result.days == pytest.approx(truth, rel=0.15)
    assert result.earliest <= result.days <= result.latest
    assert result.earliest <= truth <= result.latest
    assert "full in about" in result.describe()


def test_the_band_widens_with_noise():
    quiet = forecast.fit_linear(*_planted(noise=0.002))
    noisy = forecast.fit_linear(*_planted(noise=0.03))
    width = lambda fit: fit.interval(120)[1] - fit.interval(120)[0]  # noqa: E731
    assert width(noisy) > 5 * width(quiet)


def test_a_shrinking_database_never_fills():
    xs = list(range(30))
    result = forecast.days_until_full(forecast.fit_linear(xs, [50 * GB - 0.1 * GB * x for x in xs]), 100 * GB)
    assert result.days is None and result.latest is None
    assert "not filling" in result.describe()


def test_t_quantile_matches_known_values():
    assert forecast.t_quantile(0.975, 10) == pytest.approx(2.228, rel=0.01)
    assert forecast.t_quantile(0.975, 88) == pytest.approx(1.987, rel=0.005)


def test_a_fit_needs_three_points():
    with pytest.raises(ValueError):
        forecast.fit_linear([1, 2], [1, 2])
