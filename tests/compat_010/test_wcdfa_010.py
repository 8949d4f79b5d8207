"""
Tests for wcdfa package.

Run with: pytest tests/ -v
"""

import numpy as np
import pytest

from wcdfa import WeightChangeDFA, RollingWeightChangeDFA, compute_dfa


class TestDFACalibration:

    def test_white_noise(self):
        np.random.seed(42)
        alphas = [compute_dfa(np.random.randn(1000))[0] for _ in range(10)]
        mean_alpha = np.mean(alphas)
        assert 0.35 < mean_alpha < 0.65, f"White noise α = {mean_alpha:.3f}"

    def test_brownian_motion(self):
        np.random.seed(42)
        alphas = [compute_dfa(np.cumsum(np.random.randn(1000)))[0] for _ in range(10)]
        mean_alpha = np.mean(alphas)
        assert 1.2 < mean_alpha < 1.8, f"Brownian α = {mean_alpha:.3f}"

    def test_pink_noise(self):
        from numpy.fft import rfftfreq, irfft
        np.random.seed(42)
        alphas = []
        for _ in range(10):
            freqs = rfftfreq(1000, d=1.0)
            freqs[0] = 1
            spectrum = 1.0 / np.sqrt(freqs)
            phases = np.random.uniform(0, 2 * np.pi, len(spectrum))
            pink = irfft(spectrum * np.exp(1j * phases), n=1000)
            alphas.append(compute_dfa(pink)[0])
        mean_alpha = np.mean(alphas)
        assert 0.8 < mean_alpha < 1.2, f"Pink noise α = {mean_alpha:.3f}"


class TestDFAEdgeCases:

    def test_too_short(self):
        with pytest.raises(ValueError, match="too short"):
            compute_dfa(np.array([1, 2, 3]))

    def test_below_minimum(self):
        with pytest.raises(ValueError, match="too short"):
            compute_dfa(np.random.randn(49))

    def test_minimum_length(self):
        alpha, scales, fluct = compute_dfa(np.random.randn(50))
        assert isinstance(alpha, float)
        assert len(scales) >= 2

    def test_nan_signal(self):
        with pytest.raises(ValueError, match="NaN or Inf"):
            compute_dfa(np.array([1, 2, np.nan, 4, 5] * 20))

    def test_inf_signal(self):
        with pytest.raises(ValueError, match="NaN or Inf"):
            compute_dfa(np.array([1, 2, np.inf, 4, 5] * 20))

    def test_2d_signal(self):
        with pytest.raises(ValueError, match="1D"):
            compute_dfa(np.ones((10, 10)))

    def test_constant_signal(self):
        with pytest.raises(ValueError, match="constant"):
            compute_dfa(np.zeros(100))

    def test_returns_three_values(self):
        alpha, scales, fluct = compute_dfa(np.random.randn(200))
        assert isinstance(alpha, float)
        assert isinstance(scales, np.ndarray)
        assert isinstance(fluct, np.ndarray)
        assert len(scales) == len(fluct)

    def test_r_squared(self):
        alpha, scales, fluct, r_sq = compute_dfa(
            np.cumsum(np.random.randn(1000)), return_r_squared=True
        )
        assert 0 <= r_sq <= 1
        assert r_sq > 0.9, f"R² should be high for Brownian, got {r_sq}"


class TestWeightChangeDFA:

    def test_window_minimum(self):
        with pytest.raises(ValueError, match=">="):
            WeightChangeDFA(window=10)

    def test_wrong_type(self):
        m = WeightChangeDFA(window=50)
        with pytest.raises(TypeError):
            m.update("not a model")

    def test_float_input(self):
        m = WeightChangeDFA(window=50)
        for i in range(60):
            m.update(float(np.random.randn()))
        assert m.ready
        assert m.alpha is not None

    def test_int_input(self):
        m = WeightChangeDFA(window=50)
        for i in range(60):
            m.update(i + 1)
        assert m.ready

    def test_numpy_integer(self):
        m = WeightChangeDFA(window=50)
        for i in range(60):
            m.update(np.int64(i + 1))
        assert m.ready

    def test_numpy_array_scalar(self):
        m = WeightChangeDFA(window=50)
        for i in range(60):
            m.update(np.array([float(i + 1)]))
        assert m.ready

    def test_not_ready_before_window(self):
        m = WeightChangeDFA(window=100)
        for i in range(50):
            m.update(float(np.random.randn()))
        assert not m.ready
        assert m.alpha is None
        assert m.regime is None

    def test_reset(self):
        m = WeightChangeDFA(window=50)
        for i in range(60):
            m.update(float(np.random.randn()))
        assert m.ready
        m.reset()
        assert not m.ready
        assert m.alpha is None
        assert m.n_samples == 0
        assert len(m.history) == 0

    def test_chaining(self):
        m = WeightChangeDFA(window=50)
        for i in range(60):
            result = m.update(float(np.random.randn()))
        assert result is m

    def test_history_accumulates(self):
        m = WeightChangeDFA(window=50, stride=10)
        for i in range(200):
            m.update(float(np.random.randn()))
        assert len(m.history) > 0

    def test_get_signal(self):
        m = WeightChangeDFA(window=50)
        for i in range(75):
            m.update(float(i))
        sig = m.get_signal()
        assert len(sig) == 50
        assert sig[-1] == 74.0

    def test_regime_ordered(self):
        m = WeightChangeDFA(window=50, thresholds=(1.2, 0.8))
        m._alpha = 1.5
        assert m.regime == "ordered"

    def test_regime_critical(self):
        m = WeightChangeDFA(window=50, thresholds=(1.2, 0.8))
        m._alpha = 1.0
        assert m.regime == "critical"

    def test_regime_disordered(self):
        m = WeightChangeDFA(window=50, thresholds=(1.2, 0.8))
        m._alpha = 0.5
        assert m.regime == "disordered"

    def test_repr_not_ready(self):
        m = WeightChangeDFA(window=50)
        assert "not ready" in repr(m)

    def test_repr_ready(self):
        m = WeightChangeDFA(window=50)
        for i in range(60):
            m.update(float(np.random.randn()))
        r = repr(m)
        assert "α=" in r
        assert "regime=" in r


class TestRollingWeightChangeDFA:

    def test_end_epoch(self):
        rm = RollingWeightChangeDFA(window=50)
        for e in range(10):
            for s in range(10):
                rm.update(float(np.random.randn()))
            rm.end_epoch(e)
        epochs, alphas = rm.epoch_history
        assert len(epochs) == 10
        assert len(alphas) == 10

    def test_auto_increment_epoch(self):
        rm = RollingWeightChangeDFA(window=50)
        for e in range(5):
            for s in range(15):
                rm.update(float(np.random.randn()))
            rm.end_epoch()
        epochs, _ = rm.epoch_history
        np.testing.assert_array_equal(epochs, [0, 1, 2, 3, 4])

    def test_summary_keys(self):
        rm = RollingWeightChangeDFA(window=50)
        for e in range(10):
            for s in range(10):
                rm.update(float(np.random.randn()))
            rm.end_epoch(e)
        s = rm.summary()
        expected = [
            "total_epochs", "current_alpha", "current_regime",
            "mean_alpha", "min_alpha", "max_alpha",
            "epochs_ordered", "epochs_critical", "epochs_disordered",
        ]
        for k in expected:
            assert k in s, f"Missing key: {k}"

    def test_summary_values(self):
        rm = RollingWeightChangeDFA(window=50)
        for e in range(10):
            for s in range(10):
                rm.update(float(np.random.randn()))
            rm.end_epoch(e)
        s = rm.summary()
        assert s["total_epochs"] == 10
        total = s["epochs_ordered"] + s["epochs_critical"] + s["epochs_disordered"]
        _, alphas = rm.epoch_history
        assert total == int(np.sum(np.isfinite(alphas)))


torch = pytest.importorskip("torch")
nn = torch.nn


class TestPyTorchIntegration:

    def _make_model_and_optimizer(self):
        model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        return model, optimizer

    def _train_step(self, model, optimizer):
        x = torch.randn(16, 10)
        y = torch.randn(16, 1)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def test_first_update_no_sample(self):
        model, opt = self._make_model_and_optimizer()
        m = WeightChangeDFA(window=50)
        m.update(model)
        assert m.n_samples == 0

    def test_training_loop(self):
        model, opt = self._make_model_and_optimizer()
        m = WeightChangeDFA(window=100)
        for _ in range(150):
            self._train_step(model, opt)
            m.update(model)
        assert m.ready
        assert 0 < m.alpha < 3

    def test_signal_is_positive_finite(self):
        model, opt = self._make_model_and_optimizer()
        m = WeightChangeDFA(window=100)
        for _ in range(150):
            self._train_step(model, opt)
            m.update(model)
        sig = m.get_signal()
        assert np.all(np.isfinite(sig))
        assert np.all(sig >= 0)

    def test_different_optimizers(self):
        torch.manual_seed(42)
        model_a = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
        model_b = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
        model_b.load_state_dict(model_a.state_dict())

        opt_a = torch.optim.Adam(model_a.parameters(), lr=1e-3)
        opt_b = torch.optim.SGD(model_b.parameters(), lr=0.01)
        mon_a = WeightChangeDFA(window=100)
        mon_b = WeightChangeDFA(window=100)

        for _ in range(150):
            x = torch.randn(16, 10)
            y = torch.randn(16, 1)
            la = nn.functional.mse_loss(model_a(x), y)
            opt_a.zero_grad(); la.backward(); opt_a.step()
            mon_a.update(model_a)
            lb = nn.functional.mse_loss(model_b(x), y)
            opt_b.zero_grad(); lb.backward(); opt_b.step()
            mon_b.update(model_b)

        assert mon_a.ready and mon_b.ready


class TestPackage:

    def test_version(self):
        from wcdfa import __version__
        assert __version__ == "0.1.0"

    def test_author(self):
        from wcdfa import __author__
        assert __author__ == "Jimi Sadaki Kogura"

    def test_exports(self):
        import wcdfa
        assert hasattr(wcdfa, "WeightChangeDFA")
        assert hasattr(wcdfa, "RollingWeightChangeDFA")
        assert hasattr(wcdfa, "compute_dfa")
