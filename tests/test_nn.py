"""Tests for tinct.numpynet: gradients, XOR, optimisers, losses, L2, persistence, CLI.

The epoch loop that trains a network (learning-rate rounds, resume) is tested in test_numpy_models.py."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from tinct.numpynet import SGD, Adam, ClippedSGD, Network
from tinct.numpynet.activations import ACTIVATION_NAMES, Sigmoid, Softmax, sigmoid, softmax
from tinct.numpynet.gradients import RATIO_THRESHOLD, GradientCheckResult, check_all_configurations, gradient_ratios
from tinct.numpynet.losses import CrossEntropyLoss
from tinct.numpynet.xor import XOR_INPUTS, XOR_TARGETS, XorAttempt, XorRun, run_xor, train_xor

# ----------------------------------------------------------------------------- gradient check


@pytest.fixture(scope="module")
def gradient_check_results() -> list[GradientCheckResult]:
    return check_all_configurations(seed=0)


def test_gradient_check_covers_every_activation_loss_and_l2(gradient_check_results):
    configurations = {result.configuration for result in gradient_check_results}
    for name in ACTIVATION_NAMES:
        assert any(f"hidden={name} " in c for c in configurations), name
        assert any(f"output={name} " in c for c in configurations), name
    assert any("loss=cross_entropy" in c for c in configurations)
    assert any("loss=mse" in c for c in configurations)
    assert any("loss=sse" in c for c in configurations)
    assert any(c.endswith("l2=0") for c in configurations)
    assert any(c.endswith("l2=0.01") for c in configurations)
    assert any(c.endswith("l2=0.01/N") for c in configurations)
    # 36 MSE pairs + 6 cross-entropy + 6 SSE, each with 3 L2 settings, 6 parameter arrays each.
    assert len(configurations) == 144
    assert len(gradient_check_results) == 144 * 6


def test_every_gradient_ratio_is_below_threshold(gradient_check_results):
    failures = [r for r in gradient_check_results if not r.ratio < RATIO_THRESHOLD]
    assert not failures, "\n".join(f"{r.ratio:.2e} {r.configuration} {r.parameter}" for r in failures)


def test_gradient_check_detects_a_wrong_backward(monkeypatch):
    """A sigmoid derivative that is off by 1 % must show up as a large ratio."""
    network = Network([3, 4, 2], hidden_activation="sigmoid", output_activation="identity", seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    assert max(gradient_ratios(network, x, y).values()) < RATIO_THRESHOLD

    def slightly_wrong(self, z, a, grad_output):
        return 1.01 * grad_output * a * (1.0 - a)

    monkeypatch.setattr(Sigmoid, "backward", slightly_wrong)
    ratios = gradient_ratios(network, x, y)
    assert ratios["layers.0.weight"] > 1e-3
    assert ratios["layers.1.weight"] < RATIO_THRESHOLD  # the output layer does not use the sigmoid


def test_gradient_check_detects_missing_l2_gradient(monkeypatch):
    network = Network([3, 2], output_activation="identity", l2_lambda=0.5, seed=2)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    original_backward = Network.backward

    def backward_without_l2(self, y):
        gradients = original_backward(self, y)
        gradients["layers.0.weight"] = gradients["layers.0.weight"] - self.l2_lambda * self.layers[0].weight
        return gradients

    monkeypatch.setattr(Network, "backward", backward_without_l2)
    assert gradient_ratios(network, x, y)["layers.0.weight"] > 1e-3


# ----------------------------------------------------------------------------- XOR


@pytest.mark.parametrize("hidden", [2, 3])
def test_xor_converges(hidden):
    run = run_xor(hidden, seed=0, max_iters=10_000)
    assert run.layer_sizes == (2, hidden, 1)
    assert run.converged
    assert run.final_error < 1e-6
    assert 0 < run.iterations <= 10_000
    assert len(run.attempts) == 1  # seed 0 converges without restarts for both sizes


def test_train_xor_returns_iterations_and_error(monkeypatch):
    fake_run = XorRun((2, 2, 1), (XorAttempt(0, 10, 0.2, False), XorAttempt(1, 7, 5e-7, True)))
    monkeypatch.setattr("tinct.numpynet.xor.run_xor", lambda hidden, seed, max_iters: fake_run)
    assert train_xor(2, seed=0, max_iters=10) == (7, 5e-7)
    assert fake_run.seed == 1 and fake_run.total_iterations == 17


def test_xor_restarts_with_next_seed_when_stuck():
    # 20 iterations cannot solve XOR: every attempt fails and is recorded with its seed.
    run = run_xor(2, seed=5, max_iters=20, max_attempts=3)
    assert not run.converged
    assert [a.seed for a in run.attempts] == [5, 6, 7]
    assert all(a.iterations == 20 and a.final_error > 1e-3 for a in run.attempts)


# ----------------------------------------------------------------------------- persistence


def _trained_network(seed: int = 0) -> Network:
    network = Network([3, 5, 4, 2], hidden_activation="tanh", output_activation="sigmoid", seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        network.train_step(rng.normal(size=(8, 3)), rng.uniform(size=(8, 2)))
    return network


def test_state_dict_names_and_shapes():
    state = _trained_network().state_dict()
    assert list(state) == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias",
    ]
    assert state["layers.0.weight"].shape == (3, 5)
    assert state["layers.0.bias"].shape == (5,)
    assert state["layers.2.weight"].shape == (4, 2)


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    trained = _trained_network(seed=0)
    np.savez(tmp_path / "weights.npz", **trained.state_dict())
    fresh = Network(**trained.config(), seed=123)
    x = np.random.default_rng(7).normal(size=(10, 3))
    assert not np.array_equal(fresh.predict(x), trained.predict(x))
    with np.load(tmp_path / "weights.npz") as saved:
        fresh.load_state_dict(dict(saved))
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))


def test_state_dict_is_a_copy():
    network = _trained_network()
    state = network.state_dict()
    state["layers.0.weight"][...] = 0.0
    assert np.any(network.layers[0].weight != 0.0)


def test_load_state_dict_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    trained = _trained_network(seed=0)
    tensors = {name: torch.from_numpy(array).requires_grad_(True) for name, array in trained.state_dict().items()}
    fresh = Network(**trained.config(), seed=99)
    fresh.load_state_dict(tensors)
    x = np.random.default_rng(3).normal(size=(4, 3))
    np.testing.assert_array_equal(fresh.predict(x), trained.predict(x))


def test_load_state_dict_rejects_bad_dicts_without_changing_weights():
    network = _trained_network()
    before = network.state_dict()
    transposed = dict(before, **{"layers.0.weight": before["layers.0.weight"].T})
    with pytest.raises(ValueError, match=r"layers.0.weight has shape \(5, 3\), expected \(3, 5\)"):
        network.load_state_dict(transposed)
    missing = {k: v for k, v in before.items() if k != "layers.1.bias"}
    with pytest.raises(ValueError, match="missing keys \\['layers.1.bias'\\]"):
        network.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected keys \\['extra'\\]"):
        network.load_state_dict(dict(before, extra=np.zeros(1)))
    for name, array in network.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


# ----------------------------------------------------------------------------- optimisers


def test_adam_two_steps_match_hand_computation():
    parameter = np.array([1.0, 2.0])
    adam = Adam(learning_rate=0.1)  # beta1 0.9, beta2 0.999, eps 1e-8
    # Step 1, gradient 0.5 on the first entry, 0 on the second:
    #   m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025
    #   m_hat = 0.05 / (1 - 0.9) = 0.5, v_hat = 0.00025 / (1 - 0.999) = 0.25
    #   p = 1 - 0.1 * 0.5 / (sqrt(0.25) + 1e-8) = 1 - 0.05 / 0.50000001
    adam.step([parameter], [np.array([0.5, 0.0])])
    after_first = 1.0 - 0.05 / 0.50000001
    assert parameter[0] == pytest.approx(after_first, rel=1e-14, abs=0)
    assert parameter[1] == 2.0  # zero gradient, zero moments: no movement
    # Step 2, gradient -1:
    #   m = 0.9 * 0.05 + 0.1 * (-1) = -0.055, v = 0.999 * 0.00025 + 0.001 * 1 = 0.00124975
    #   m_hat = -0.055 / (1 - 0.81) = -0.055 / 0.19
    #   v_hat = 0.00124975 / (1 - 0.998001) = 0.00124975 / 0.001999
    adam.step([parameter], [np.array([-1.0, 0.0])])
    m_hat = -0.055 / 0.19
    v_hat = 0.00124975 / 0.001999
    expected = after_first - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert expected == pytest.approx(0.93661, abs=1e-5)  # sanity of the hand arithmetic
    assert parameter[0] == pytest.approx(expected, rel=1e-13, abs=0)
    assert adam.step_count == 2


def test_adam_reset_restarts_bias_correction():
    parameter = np.array([1.0])
    adam = Adam(learning_rate=0.1)
    adam.step([parameter], [np.array([3.0])])
    adam.step([parameter], [np.array([3.0])])
    adam.reset()
    assert adam.step_count == 0
    before = parameter[0]
    adam.step([parameter], [np.array([-7.0])])
    # After a reset the first step is again lr * g / |g| (up to eps), whatever came before.
    assert parameter[0] - before == pytest.approx(0.1, rel=1e-7)


def test_sgd_step():
    parameter = np.array([[1.0, -1.0]])
    SGD(learning_rate=0.5).step([parameter], [np.array([[0.2, -0.4]])])
    np.testing.assert_allclose(parameter, [[0.9, -0.8]], rtol=0, atol=1e-15)


def test_clipped_sgd_is_seed003s_rule_by_hand():
    # Seed 003: W2 -= clip(lr * G2 * s, -b, b); W1 -= clip(lr**2 * G1 * s, -b, b), b = 0.01 * batch * s.
    first, second = np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0])
    rule = ClippedSGD(learning_rate=0.1, scale=0.2, bound=0.01 * 50 * 0.2, powers=[2, 1])
    rule.step([first, second], [np.array([1.0, 100.0, -1000.0]), np.array([2.0, -9.0])])
    # first: 0.01 * 0.2 * g = 0.002, 0.2 (clipped to 0.1), -2 (clipped to -0.1)
    np.testing.assert_allclose(first, [0.998, 0.9, 1.1], rtol=0, atol=1e-15)
    # second: 0.1 * 0.2 * g = 0.04, -0.18 (clipped to -0.1)
    np.testing.assert_allclose(second, [-0.04, 0.1], rtol=0, atol=1e-15)
    assert rule.state_dict() == {"learning_rate": 0.1}
    with pytest.raises(ValueError, match="2 learning-rate powers for 1 parameter arrays"):
        rule.step([first], [first])
    with pytest.raises(ValueError, match="bound must be a finite number > 0"):
        ClippedSGD(bound=0.0)


def test_optimizer_validation_messages():
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0, got -1"):
        Adam(learning_rate=-1)
    with pytest.raises(ValueError, match="beta2 must be in \\[0, 1\\), got 1.0"):
        Adam(beta2=1.0)
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(2,\) but its gradient has shape \(3,\)"):
        SGD().step([np.zeros(2)], [np.zeros(3)])


# ----------------------------------------------------------------------------- losses and L2


def test_softmax_cross_entropy_gradient_is_p_minus_y_over_n():
    # One dense layer straight into softmax: logits z = x @ W + b.
    network = Network([2, 3], output_activation="softmax", loss="cross_entropy", seed=0)
    network.layers[0].weight[...] = [[1.0, -1.0, 0.5], [0.0, 2.0, -0.5]]
    network.layers[0].bias[...] = [0.1, 0.0, -0.1]
    x = np.array([[1.0, 0.0], [0.5, 1.0]])
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    logits = np.array([[1.1, -1.0, 0.4], [0.6, 1.5, -0.35]])  # x @ W + b by hand
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected_delta = (p - y) / 2

    np.testing.assert_allclose(network.forward(x), p, rtol=1e-14)
    gradients = network.backward(y)
    np.testing.assert_allclose(gradients["layers.0.bias"], expected_delta.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(gradients["layers.0.weight"], x.T @ expected_delta, rtol=1e-13)
    np.testing.assert_allclose(
        CrossEntropyLoss().gradient_wrt_logits(logits, softmax(logits), y, Softmax()), expected_delta, rtol=1e-13
    )
    expected_loss = -(math.log(p[0, 1]) + math.log(p[1, 0])) / 2
    assert network.loss(x, y) == pytest.approx(expected_loss, rel=1e-14)


def test_cross_entropy_is_stable_for_huge_logits():
    network = Network([1, 2], output_activation="softmax", loss="cross_entropy", seed=0)
    network.layers[0].weight[...] = [[1000.0, -1000.0]]
    x, y = np.array([[1.0]]), np.array([[0.0, 1.0]])
    assert network.loss(x, y) == pytest.approx(2000.0, rel=1e-12)  # -log softmax = 2000, not inf
    assert np.all(np.isfinite(network.backward(y)["layers.0.weight"]))


def test_mse_loss_is_half_sum_of_squares_averaged_over_batch():
    network = Network([1, 2], output_activation="identity", seed=0)
    network.layers[0].weight[...] = [[1.0, 2.0]]
    x = np.array([[1.0], [2.0]])  # outputs [[1, 2], [2, 4]]
    y = np.array([[0.0, 0.0], [1.0, 1.0]])
    # (1 + 4 + 1 + 9) / (2 * 2)
    assert network.loss(x, y) == pytest.approx(15.0 / 4.0, rel=1e-15)


def test_sse_loss_is_the_plain_sum_over_batch_and_outputs():
    network = Network([1, 2], output_activation="identity", loss="sse", seed=0)
    network.layers[0].weight[...] = [[1.0, 2.0]]
    x = np.array([[1.0], [2.0]])  # outputs [[1, 2], [2, 4]]
    y = np.array([[0.0, 0.0], [1.0, 1.0]])
    assert network.loss(x, y) == pytest.approx(15.0, rel=1e-15)  # 1 + 4 + 1 + 9
    network.forward(x)
    # dL/dW = x^T 2 (a - y) = [1 * 2 * (1, 2) + 2 * 2 * (1, 3)] = (6, 16)
    np.testing.assert_allclose(network.backward(y)["layers.0.weight"], [[6.0, 16.0]], rtol=1e-15)


def test_clipped_relu_clips_to_the_ceiling_and_passes_gradient_only_between():
    network = Network([1, 4], output_activation="clipped_relu", loss="sse", activation_ceiling=255.0, bias=False)
    network.layers[0].weight[...] = [[-1.0, 100.0, 300.0, 255.0]]
    x, y = np.array([[1.0]]), np.zeros((1, 4))
    np.testing.assert_array_equal(network.forward(x), [[0.0, 100.0, 255.0, 255.0]])
    # Only the unit strictly inside (0, 255) lets the gradient through.
    np.testing.assert_array_equal(network.backward(y)["layers.0.weight"], [[0.0, 200.0, 0.0, 0.0]])


def test_bias_free_uniform_network_and_its_state_dict():
    network = Network([3, 4, 2], hidden_activation="relu", bias=False, init="uniform", init_scale=0.2, seed=1)
    assert network.parameter_names() == ["layers.0.weight", "layers.1.weight"]
    assert all(layer.bias is None for layer in network.layers)
    weights = np.concatenate([p.ravel() for p in network.parameters()])
    assert weights.min() >= -0.2 and weights.max() <= 0.2 and weights.std() > 0.05
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    assert max(gradient_ratios(Network(**network.config(), seed=3), x, y).values()) < RATIO_THRESHOLD
    fresh = Network(**network.config(), seed=9)
    fresh.load_state_dict(network.state_dict())
    np.testing.assert_array_equal(fresh.predict(x), network.predict(x))
    with pytest.raises(ValueError, match="init must be one of default, uniform"):
        Network([2, 1], init="normal")


def test_straight_through_backprop_is_seed003s_hand_written_one():
    """Seed 003's code, one image: ReLU and the output clip are taken to have derivative 1."""
    rng = np.random.default_rng(0)
    network = Network([6, 5, 4], hidden_activation="relu", output_activation="clipped_relu", loss="sse",
                      bias=False, init="uniform", activation_ceiling=255.0, straight_through=True, seed=0)
    w1, w2 = network.layers[0].weight.T, network.layers[1].weight.T  # the seed's (out, in) layout
    x, target = rng.uniform(0, 255, size=(6, 1)), rng.uniform(0, 255, size=(4, 1))
    layer_2 = np.maximum(0, w1 @ x)
    output = np.minimum(np.maximum(0, w2 @ layer_2), 255)
    output_deltas = 2 * (output - target)
    layer_2_deltas = w2.T @ output_deltas
    network.forward(x.T)
    gradients = network.backward(target.T)
    np.testing.assert_allclose(gradients["layers.1.weight"].T, output_deltas @ layer_2.T, rtol=1e-12)
    np.testing.assert_allclose(gradients["layers.0.weight"].T, layer_2_deltas @ x.T, rtol=1e-12)
    with pytest.raises(ValueError, match="no meaning with cross_entropy"):
        Network([2, 2], output_activation="softmax", loss="cross_entropy", straight_through=True)


@pytest.mark.parametrize("divide_by_batch", [False, True])
def test_l2_adds_lambda_times_weight_to_weight_gradients_only(divide_by_batch):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(4, 3)), rng.uniform(size=(4, 2))
    plain = Network([3, 5, 2], seed=3)
    regularised = Network([3, 5, 2], seed=3, l2_lambda=0.25, l2_divide_by_batch=divide_by_batch)
    plain.forward(x)
    regularised.forward(x)
    without, with_l2 = plain.backward(y), regularised.backward(y)
    scale = 0.25 / 4 if divide_by_batch else 0.25
    for index, layer in enumerate(regularised.layers):
        np.testing.assert_allclose(
            with_l2[f"layers.{index}.weight"] - without[f"layers.{index}.weight"], scale * layer.weight, rtol=1e-12
        )
        np.testing.assert_array_equal(with_l2[f"layers.{index}.bias"], without[f"layers.{index}.bias"])
    squared_norm = sum(float(np.sum(layer.weight**2)) for layer in regularised.layers)
    assert regularised.loss(x, y) - plain.loss(x, y) == pytest.approx(scale / 2 * squared_norm, rel=1e-10)
    assert regularised.loss(x, y, include_l2=False) == plain.loss(x, y)


# ----------------------------------------------------------------------------- network basics


def test_sigmoid_is_stable_at_extremes():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values = sigmoid(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
    assert values[0] == 0.0 and values[-1] == 1.0 and values[2] == 0.5
    assert values[1] == pytest.approx(math.exp(-30) / (1 + math.exp(-30)), rel=1e-15)


def test_float32_network_keeps_float32():
    network = Network([4, 3, 2], hidden_activation="relu", output_activation="identity", dtype=np.float32)
    x = np.ones((5, 4), dtype=np.float64)
    assert network.predict(x).dtype == np.float32
    loss = network.train_step(x.astype(np.float32), np.zeros((5, 2), dtype=np.float32))
    assert math.isfinite(loss)
    assert all(p.dtype == np.float32 for p in network.parameters())


def test_predict_in_chunks_matches_forward():
    network = _trained_network()
    x = np.random.default_rng(5).normal(size=(11, 3))
    np.testing.assert_allclose(network.predict(x, batch_size=4), network.forward(x), rtol=1e-15)


def test_train_step_reduces_loss_and_returns_pre_update_loss():
    network = Network([2, 4, 1], output_activation="identity", optimizer=Adam(0.05), seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2))
    y = (x[:, :1] - 2 * x[:, 1:]) * 0.5
    first = network.loss(x, y)
    assert network.train_step(x, y) == pytest.approx(first, rel=1e-15)
    for _ in range(200):
        last = network.train_step(x, y)
    assert last < 0.1 * first


def test_construction_and_input_validation_messages():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        Network([2, 2], hidden_activation="gelu")
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        Network([2, 2], loss="hinge")
    with pytest.raises(ValueError, match="fused with a softmax output layer; got output activation 'sigmoid'"):
        Network([2, 2], output_activation="sigmoid", loss="cross_entropy")
    with pytest.raises(ValueError, match=r"every layer size must be an integer >= 1, got \[2, 0, 1\]"):
        Network([2, 0, 1])
    with pytest.raises(ValueError, match="l2_lambda must be a finite number >= 0, got -0.1"):
        Network([2, 1], l2_lambda=-0.1)
    network = Network([2, 3, 1])
    with pytest.raises(ValueError, match=r"x must have shape \(N >= 1, 2\), got \(4, 3\)"):
        network.predict(np.zeros((4, 3)))
    network.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"y must have shape \(4, 1\), got \(4,\)"):
        network.backward(np.zeros(4))
    with pytest.raises(RuntimeError, match="forward"):
        Network([2, 1]).backward(np.zeros((1, 1)))


def test_adam_state_round_trip_continues_the_same_steps():
    rng = np.random.default_rng(1)
    gradients = [[rng.normal(size=(3, 2)), rng.normal(size=2)] for _ in range(6)]
    whole, first = Adam(learning_rate=0.1), Adam(learning_rate=0.1)
    params_whole = [np.zeros((3, 2)), np.zeros(2)]
    params_split = [np.zeros((3, 2)), np.zeros(2)]
    for g in gradients:
        whole.step(params_whole, g)
    for g in gradients[:3]:
        first.step(params_split, g)
    second = Adam(learning_rate=0.5)
    second.load_state_dict(first.state_dict())
    first.reset()  # the saved state is a copy
    for g in gradients[3:]:
        second.step(params_split, g)
    assert second.step_count == 6 and second.learning_rate == 0.1
    for a, b in zip(params_whole, params_split):
        assert np.array_equal(a, b)
    sgd = SGD(learning_rate=0.3)
    sgd.load_state_dict(SGD(learning_rate=0.01).state_dict())
    assert sgd.learning_rate == 0.01


# ----------------------------------------------------------------------------- CLI


def _cli_args(*argv: str) -> argparse.Namespace:
    from tinct.cli import gradcheck as gradcheck_cli

    parser = argparse.ArgumentParser()
    gradcheck_cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["gradcheck", *argv])


def test_cli_exit_codes(monkeypatch, capsys):
    passing = [GradientCheckResult("cfg", "layers.0.weight", 1e-12)]
    failing = passing + [GradientCheckResult("cfg", "layers.0.bias", 1e-6)]
    converged = XorRun((2, 2, 1), (XorAttempt(0, 7000, 9e-7, True),))
    stuck = XorRun((2, 2, 1), (XorAttempt(0, 10, 0.13, False),))

    monkeypatch.setattr("tinct.numpynet.gradients.check_all_configurations", lambda seed: passing)
    monkeypatch.setattr("tinct.numpynet.xor.run_xor", lambda hidden, seed, max_iters: converged)
    args = _cli_args()
    assert args.func(args) == 0
    output = capsys.readouterr().out
    assert "ok    1.00e-12  cfg  layers.0.weight" in output
    assert output.count("ok   XOR") == 2

    monkeypatch.setattr("tinct.numpynet.gradients.check_all_configurations", lambda seed: failing)
    assert args.func(args) == 1
    assert "FAIL  1.00e-06  cfg  layers.0.bias" in capsys.readouterr().out

    monkeypatch.setattr("tinct.numpynet.gradients.check_all_configurations", lambda seed: passing)
    monkeypatch.setattr("tinct.numpynet.xor.run_xor", lambda hidden, seed, max_iters: stuck)
    assert args.func(args) == 1
    assert "FAIL XOR [2, 2, 1]" in capsys.readouterr().out
    skip_args = _cli_args("--skip-xor")
    assert skip_args.func(skip_args) == 0


def test_xor_points():
    assert XOR_INPUTS.shape == (4, 2) and XOR_TARGETS.shape == (4, 1)
    np.testing.assert_array_equal(XOR_TARGETS[:, 0], np.logical_xor(XOR_INPUTS[:, 0], XOR_INPUTS[:, 1]))
