"""Functional graphs (nn.Input, nn.Model) and the merge layers (Add, Concat, Multiply).

Oracle: every graph is written a second time as a plain composition of pycnn.reference ops in
float64 (`ref_forward` below), whose outputs the model's must match, and whose gradients -- by
central finite differences in float64 of sum(output * dy) -- every input and parameter gradient
of the model must match. That checks the graph's wiring, the sums where a value fans out, the
per-call state of shared layers and multi-output gradients without trusting any of the graph's
own code. PyTorch's autograd is a second oracle where installed. Tolerances: pycnn runs in
float32, so rtol 1e-4 and atol 5e-5 (sums of at most a few hundred O(1) products).
"""
from __future__ import annotations

import json
import os
import re
import weakref

import numpy as np
import pytest

import pycnn
from conftest import assert_close, f32, f64, needs_torch, ref, torch
from pycnn import nn
from pycnn.nn import fused

# ---------------------------------------------------------------- the oracle


class Ref:
    """float64 copies of a model's parameters, which finite differences perturb in place, and the
    reference ops of the layers used here on them."""

    def __init__(self, model: nn.Module) -> None:
        self.arrays = {id(p): f64(p.data).copy() for p in model.parameters()}

    def p(self, param):
        return None if param is None else self.arrays[id(param)]

    def conv(self, m, x):
        return ref.conv2d(x, self.p(m.weight), self.p(m.bias), m.stride, m.padding)

    def linear(self, m, x):
        return ref.linear(x, self.p(m.weight), self.p(m.bias))

    def bn_train(self, m, x):
        return ref.batch_norm_train(x, self.p(m.weight), self.p(m.bias), eps=m.eps)[0]


def numgrad(loss, a, eps=1e-6):
    """d loss() / d a by central differences, perturbing the float64 array ``a`` in place."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = loss()
        flat[i] = old - eps
        lo = loss()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


def check_graph(model, xs, ref_forward, rng, drop_output=None):
    """The model's training forward and backward against ref_forward(R, xs64) and finite differences.

    drop_output: index of an output given no gradient (None in the list passed to backward).
    Returns the model's outputs.
    """
    R = Ref(model)
    xs64 = [f64(x).copy() for x in xs]
    model.train()
    model.zero_grad()
    ys = model(*xs)
    listed = isinstance(ys, tuple)
    ys = list(ys) if listed else [ys]
    expected = ref_forward(R, xs64)
    assert len(expected) == len(ys)
    for y, e in zip(ys, expected):
        assert_close(y, e, rtol=1e-4, atol=5e-5)
    dys = [None if i == drop_output else f32(rng, *y.shape) for i, y in enumerate(ys)]
    dxs = model.backward(dys if listed else dys[0])
    dxs = list(dxs) if isinstance(dxs, tuple) else [dxs]

    def loss():
        return sum(float((e * dy).sum()) for e, dy in zip(ref_forward(R, xs64), dys) if dy is not None)

    for i, (x64, dx) in enumerate(zip(xs64, dxs)):
        assert_close(dx, numgrad(loss, x64), rtol=1e-4, atol=5e-5, input=i)
    for name, p in model.named_parameters():
        assert_close(p.grad, numgrad(loss, R.arrays[id(p)]), rtol=1e-4, atol=5e-5, param=name)
    return ys


# ---------------------------------------------------------------- graphs checked against the oracle


def test_unet_like_concat_skip(rng):
    x = nn.Input((3, 6, 6))
    down = nn.Conv2d(3, 4, 3, padding=1)
    a = nn.ReLU()(down(x))
    mid = nn.Conv2d(4, 4, 3, padding=1)
    b = nn.ReLU()(mid(nn.MaxPool2d(1)(a)))
    head = nn.Conv2d(8, 2, 1)
    model = nn.Model(x, head(nn.Concat(dim=1)([a, b])))  # a fans out: to mid and to the concat

    def forward(R, xs):
        ea = ref.relu(R.conv(down, xs[0]))
        eb = ref.relu(R.conv(mid, ea))
        return [R.conv(head, np.concatenate([ea, eb], axis=1))]

    check_graph(model, [f32(rng, 2, 3, 6, 6)], forward, rng)
    assert list(model.state_dict()) == ["conv2d_0.weight", "conv2d_0.bias", "conv2d_1.weight", "conv2d_1.bias",
                                        "conv2d_2.weight", "conv2d_2.bias"]
    assert model.output_shapes == [(None, 2, 6, 6)] and model.input_shapes == [(None, 3, 6, 6)]


def test_inception_like_parallel_branches(rng):
    x = nn.Input((3, 5, 5))
    b1 = nn.Conv2d(3, 2, 1)
    b2 = nn.Conv2d(3, 3, 3, padding=1)
    b3 = nn.Conv2d(3, 2, 1)
    pool = nn.MaxPool2d(3, 1, 1)
    y = nn.ReLU()(nn.Concat()([b1(x), b2(x), b3(pool(x))]))
    proj = nn.Conv2d(3, 7, 1, bias=False)
    out = nn.Add()([y, proj(x)])  # and a projected shortcut: x feeds four branches
    model = nn.Model(x, out)

    def forward(R, xs):
        x = xs[0]
        cat = np.concatenate([R.conv(b1, x), R.conv(b2, x), R.conv(b3, ref.max_pool2d(x, 3, 1, 1))], axis=1)
        return [ref.relu(cat) + R.conv(proj, x)]

    check_graph(model, [f32(rng, 2, 3, 5, 5)], forward, rng)


def test_two_input_model(rng):
    image, features = nn.Input((2, 4, 4)), nn.Input((5,))
    conv, fc_img, fc_feat, head = nn.Conv2d(2, 3, 3), nn.Linear(12, 4), nn.Linear(5, 4), nn.Linear(4, 3)
    a = fc_img(nn.Flatten()(nn.Tanh()(conv(image))))
    b = nn.Sigmoid()(fc_feat(features))
    model = nn.Model([image, features], head(nn.Multiply()([a, b])))

    def forward(R, xs):
        ea = R.linear(fc_img, np.tanh(R.conv(conv, xs[0])).reshape(len(xs[0]), -1))
        eb = ref.sigmoid(R.linear(fc_feat, xs[1]))
        return [R.linear(head, ea * eb)]

    xs = [f32(rng, 3, 2, 4, 4), f32(rng, 3, 5)]
    y = check_graph(model, xs, forward, rng)[0]
    np.testing.assert_array_equal(model([xs[0], xs[1]]), y)  # a list of inputs works too
    dxs = model.backward(np.ones_like(y))
    assert isinstance(dxs, tuple) and [d.shape for d in dxs] == [(3, 2, 4, 4), (3, 5)]


def test_shared_layers_accumulate_the_gradients_of_every_call(rng):
    # A siamese pair: the same Linear and the same training-mode BatchNorm on two inputs (each call
    # normalises with its own batch's statistics and must be differentiated with them), then the same
    # convolution twice in a row.
    left, right = nn.Input((4,)), nn.Input((4,))
    fc, bn = nn.Linear(4, 4), nn.BatchNorm1d(4)
    bn.weight.data[...] = f32(rng, 4) + 1
    tower = nn.Sequential(fc, bn)
    model = nn.Model([left, right], nn.Add()([tower(left), tower(right)]))

    def forward(R, xs):
        return [R.bn_train(bn, R.linear(fc, xs[0])) + R.bn_train(bn, R.linear(fc, xs[1]))]

    check_graph(model, [f32(rng, 6, 4), f32(rng, 6, 4) + 1], forward, rng)
    assert len(list(model.parameters())) == 4 and list(model.state_dict())[:2] == ["sequential_0.0.weight",
                                                                                  "sequential_0.0.bias"]
    assert int(bn.num_batches_tracked) == 2  # (check_graph's one forward: two calls)

    twice = nn.Conv2d(1, 1, 3, padding=1)
    x = nn.Input((1, 5, 5))
    h = twice(nn.ReLU()(twice(x)))
    model2 = nn.Model(x, h)

    def forward2(R, xs):
        return [R.conv(twice, ref.relu(R.conv(twice, xs[0])))]

    check_graph(model2, [f32(rng, 2, 1, 5, 5)], forward2, rng)


def test_a_model_used_as_a_layer_twice(rng):
    inner_in = nn.Input((3,))
    fc1, fc2 = nn.Linear(3, 5), nn.Linear(5, 2)
    inner = nn.Model(inner_in, fc2(nn.Tanh()(fc1(inner_in))))
    a, b = nn.Input((3,)), nn.Input((3,))
    outer = nn.Model([a, b], nn.Concat()([inner(a), inner(b)]))

    def forward(R, xs):
        f = lambda v: R.linear(fc2, np.tanh(R.linear(fc1, v)))  # noqa: E731
        return [np.concatenate([f(xs[0]), f(xs[1])], axis=1)]

    check_graph(outer, [f32(rng, 4, 3), f32(rng, 4, 3)], forward, rng)
    assert list(outer.state_dict()) == ["model_0.linear_0.weight", "model_0.linear_0.bias",
                                        "model_0.linear_1.weight", "model_0.linear_1.bias"]


def test_a_layer_with_two_outputs_one_of_them_unused(rng):
    i = nn.Input((3,))
    fc1, fc2 = nn.Linear(3, 2), nn.Linear(3, 2)
    split = nn.Model(i, [fc1(i), fc2(i)])  # a layer returning a tuple
    x = nn.Input((3,))
    p, q = split(x)
    assert (p.shape, q.shape, q.index) == ((None, 2), (None, 2), 1)
    model = nn.Model(x, nn.Multiply()([p, nn.Tanh()(p)]))  # q gets no gradient: zeros for it

    def forward(R, xs):
        ep = R.linear(fc1, xs[0])
        return [ep * np.tanh(ep)]

    check_graph(model, [f32(rng, 4, 3)], forward, rng)
    assert not fc2.weight.grad.any()


def test_multi_output_forward_and_backward(rng):
    x = nn.Input((2, 5, 5))
    conv, conv2, fc = nn.Conv2d(2, 3, 3), nn.Conv2d(3, 1, 1), nn.Linear(27, 4)
    h = nn.ReLU()(conv(x))
    model = nn.Model(x, [fc(nn.Flatten()(h)), conv2(h)])

    def forward(R, xs):
        eh = ref.relu(R.conv(conv, xs[0]))
        return [R.linear(fc, eh.reshape(len(eh), -1)), R.conv(conv2, eh)]

    xs = [f32(rng, 2, 2, 5, 5)]
    ys = check_graph(model, xs, forward, rng)
    assert [y.shape for y in ys] == [(2, 4), (2, 1, 3, 3)]
    check_graph(model, xs, forward, rng, drop_output=1)  # a gradient for the first output only
    check_graph(model, xs, forward, rng, drop_output=0)


def test_an_input_that_is_also_an_output_and_a_value_used_twice_by_one_layer(rng):
    x = nn.Input((3,))
    fc = nn.Linear(3, 3)
    h = fc(x)
    model = nn.Model(x, [nn.Add()([h, h]), x])

    def forward(R, xs):
        eh = R.linear(fc, xs[0])
        return [eh + eh, xs[0]]

    check_graph(model, [f32(rng, 2, 3)], forward, rng)


@needs_torch
def test_unet_like_graph_matches_torch(rng):
    x = nn.Input((3, 8, 8))
    c1, c2, c3 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(8, 3, 1)
    bn = nn.BatchNorm2d(4)
    a = nn.ReLU()(bn(c1(x)))
    b = nn.ReLU()(c2(a))
    model = nn.Model(x, nn.Add()([c3(nn.Concat()([a, b])), x]))
    xv = f32(rng, 2, 3, 8, 8)
    y = model(xv)
    dy = f32(rng, *y.shape)
    dx = model.backward(dy)
    T = {k: torch.from_numpy(v.copy()).requires_grad_(v.dtype == np.float32 and "running" not in k)
         for k, v in model.state_dict().items()}
    tx = torch.from_numpy(xv.copy()).requires_grad_(True)
    tf = torch.nn.functional
    ta = torch.relu(tf.batch_norm(tf.conv2d(tx, T["conv2d_0.weight"], T["conv2d_0.bias"], padding=1), None, None,
                                  T["batchnorm2d_0.weight"], T["batchnorm2d_0.bias"], training=True))
    tb = torch.relu(tf.conv2d(ta, T["conv2d_1.weight"], T["conv2d_1.bias"], padding=1))
    ty = tf.conv2d(torch.cat([ta, tb], 1), T["conv2d_2.weight"], T["conv2d_2.bias"]) + tx
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert_close(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    for name, p in model.named_parameters():
        assert_close(p.grad, T[name].grad.numpy(), rtol=1e-4, atol=1e-4, param=name)


# ---------------------------------------------------------------- a Model is a Module


def _chain_modules(rng):
    mods = [nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4),
            nn.ReLU(), nn.Flatten(), nn.Linear(4, 3)]
    mods[4].weight.data[...] = f32(rng, 4) + 1
    return mods


def test_a_chain_model_equals_the_same_sequential_bitwise(rng):
    mods = _chain_modules(rng)
    seq = nn.Sequential(*mods)
    x = nn.Input((2, 6, 6))
    h = x
    for m in mods:
        h = m(h)
    model = nn.Model(x, h)
    xv, runs = f32(rng, 5, 2, 6, 6), []
    for net in (seq, model):
        net.train()
        net.zero_grad()
        mods[4].reset_running_stats()
        y = net(xv)
        dx = net.backward(np.ones_like(y) + xv[:, 0, 0, :3])
        runs.append([y, dx] + [p.grad.copy() for p in net.parameters()] + [b.copy() for b in net.buffers()])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    # eval mode: the Sequential folds its BatchNorm into the convolution; the graph runs each node on its
    # own (nothing is fused across nodes), so they agree to float32 rounding
    assert_close(model.eval()(xv), seq.eval()(xv), rtol=1e-5, atol=1e-6)


def test_sequential_and_residual_layers_inside_a_model_still_fuse_in_eval_mode(rng):
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    block = nn.BasicBlock(4, 4)
    x = nn.Input((3, 6, 6))
    model = nn.Model(x, nn.Concat()([block(body(x)), body(x)])).eval()
    xv = f32(rng, 2, 3, 6, 6)
    y = model(xv)
    assert body[0] in fused._PREPARED and block.conv1 in fused._PREPARED
    with fused.disabled():
        assert_close(y, model(xv), rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="enable_grad"):  # eval mode saves nothing...
        model.backward(np.ones_like(y))
    with nn.enable_grad():  # ...except inside enable_grad: a saliency map of the eval-mode model
        y2 = model(xv)
    assert_close(y2, y, rtol=1e-5, atol=1e-5)
    assert model.backward(np.ones_like(y)).shape == xv.shape


def test_train_eval_freezing_and_input_grad_false(rng):
    x = nn.Input((2, 4, 4))
    stem, head = nn.Conv2d(2, 3, 3), nn.Linear(12, 2)
    drop = nn.Dropout(0.5)
    model = nn.Model(x, head(drop(nn.Flatten()(stem(x)))))
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    xv = f32(rng, 3, 2, 4, 4)
    np.testing.assert_array_equal(model(xv), model(xv))  # no dropout in eval mode
    model.train()
    stem.freeze()
    assert [n for n, _ in model.named_parameters() if _.requires_grad] == ["linear_0.weight", "linear_0.bias"]
    y = model(xv)
    model.zero_grad()
    assert model.backward(np.ones_like(y), input_grad=False) is None
    assert not stem.weight.grad.any() and head.weight.grad.any()
    # the frozen stem was not differentiated at all: its saved forward is still there
    assert stem.backward(np.ones((3, 3, 2, 2), np.float32)).shape == xv.shape


def test_fit_trains_a_small_model(rng):
    pycnn.manual_seed(3)
    n = 96
    labels = rng.integers(0, 2, n)
    images = f32(rng, n, 1, 6, 6) * 0.5
    images[labels == 1, :, :3] += 1.0  # class 1: a bright top half
    x = nn.Input((1, 6, 6))
    a = nn.ReLU()(nn.Conv2d(1, 4, 3, padding=1)(x))
    b = nn.ReLU()(nn.Conv2d(4, 4, 3, padding=1)(a))
    logits = nn.Linear(8, 2)(nn.Flatten()(nn.AdaptiveAvgPool2d(1)(nn.Concat()([a, b]))))
    model = nn.Model(x, logits)
    opt = pycnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = pycnn.train.fit(model, images, labels, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=6,
                              batch_size=16, verbose=0, seed=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert pycnn.train.evaluate(model, images, labels)["accuracy"] > 0.9
    assert (pycnn.train.predict(model, images, batch_size=40) == labels).mean() > 0.9


def test_summary_of_a_two_input_model():
    a, b = nn.Input((3, 4, 4)), nn.Input((5,))
    fc = nn.Linear(5, 48)
    model = nn.Model([a, b], nn.Add()([nn.Flatten()(nn.Conv2d(3, 3, 1)(a)), fc(b)]))
    s = pycnn.summary(model, print_fn=None)
    assert [(r.name, r.output_shape) for r in s.rows] == [
        ("conv2d_0", (None, 3, 4, 4)), ("flatten_0", (None, 48)), ("linear_0", (None, 48)), ("add_0", (None, 48))]
    assert s.total_params == 12 + 5 * 48 + 48
    assert "inputs (N, 3, 4, 4), (N, 5)" in str(s)
    with pytest.raises(TypeError, match="input_shape is required"):
        pycnn.summary(nn.Linear(2, 2), print_fn=None)


# ---------------------------------------------------------------- building never changes a layer


def test_building_leaves_modes_statistics_random_stream_and_saved_state_alone(rng):
    bn, drop, conv = nn.BatchNorm2d(3), nn.Dropout(0.5), nn.Conv2d(3, 3, 1)
    xv = f32(rng, 2, 3, 4, 4)
    y = conv(xv)  # a training forward whose backward is still to come
    pycnn.manual_seed(11)
    state = pycnn._random.generator().bit_generator.state
    x = nn.Input((3, 4, 4))
    nn.Model(x, drop(bn(conv(x))))
    assert pycnn._random.generator().bit_generator.state == state  # dropout drew nothing
    assert bn.training and drop.training and conv.training
    assert int(bn.num_batches_tracked) == 0 and not bn.running_mean.any()
    assert conv.backward(np.ones_like(y)).shape == xv.shape  # the pending backward still works


# ---------------------------------------------------------------- memory


class Tap(nn.Module):
    """y = x + 1 as a new array. Logs which taps' outputs (forward) or input gradients (backward) are
    still alive when it runs, through weak references."""

    def __init__(self, name, log, outputs, grads):
        super().__init__()
        self.name, self.log, self.outputs, self.grads = name, log, outputs, grads

    @staticmethod
    def _alive(refs):
        return sorted(n for n, r in refs.items() if r() is not None)

    def forward(self, x):
        self.log.append(("fwd", self.name, self._alive(self.outputs)))
        y = np.asarray(x) + np.float32(1)
        self.outputs[self.name] = weakref.ref(y)
        self.save_for_backward()
        return y

    def backward(self, g, input_grad=True):
        self.saved()
        self.log.append(("bwd", self.name, self._alive(self.grads)))
        dx = g + np.float32(0)
        self.grads[self.name] = weakref.ref(dx)
        return dx


def test_values_and_gradients_are_dropped_after_their_last_use(rng):
    log, outputs, grads = [], {}, {}
    t = {n: Tap(n, log, outputs, grads) for n in ("t1", "t2", "t3", "t4")}
    x = nn.Input((3,))
    h1 = t["t1"](x)
    model = nn.Model(x, t["t4"](nn.Add()([t["t3"](t["t2"](h1)), h1])))
    log.clear()  # (building ran each tap once)
    xv = f32(rng, 2, 3)
    y = model(xv)
    # t2's output is dropped once t3 has run; t1's and t3's once the Add has. The Add's output (t4's
    # input) is not a tap's, so t4 sees nothing alive.
    assert log == [("fwd", "t1", []), ("fwd", "t2", ["t1"]), ("fwd", "t3", ["t1", "t2"]), ("fwd", "t4", [])]
    assert [n for n, r in outputs.items() if r() is not None] == ["t4"]  # only the model's output remains
    log.clear()
    model.backward(np.ones_like(y))
    # t4's gradient reaches t1 twice (via the Add directly and through t3, t2); it is dropped once both
    # have been added, as t3's and t2's are once their consumers ran.
    assert log == [("bwd", "t4", []), ("bwd", "t3", ["t4"]), ("bwd", "t2", ["t3", "t4"]), ("bwd", "t1", [])]


# ---------------------------------------------------------------- merge layers on arrays


def test_merge_layers_eagerly_against_numpy_and_their_gradients(rng):
    a, b, c = f32(rng, 2, 3, 4), f32(rng, 2, 3, 4), f32(rng, 2, 3, 4)
    dy = f32(rng, 2, 3, 4)
    add = nn.Add()
    np.testing.assert_array_equal(add([a, b, c]), (a + b) + c)
    assert all(g is dy for g in add.backward(dy))
    mul = nn.Multiply()
    np.testing.assert_array_equal(mul((a, b, c)), (a * b) * c)
    da, db, dc = mul.backward(dy)
    assert_close(da, f64(dy) * b * c, rtol=1e-6, atol=0)
    assert_close(db, f64(dy) * a * c, rtol=1e-6, atol=0)
    assert_close(dc, f64(dy) * a * b, rtol=1e-6, atol=0)
    cat = nn.Concat(dim=-1)
    y = cat([a, b[..., :1]])
    np.testing.assert_array_equal(y, np.concatenate([a, b[..., :1]], axis=-1))
    g = f32(rng, *y.shape)
    ga, gb = cat.backward(g)
    np.testing.assert_array_equal(ga, g[..., :4])
    np.testing.assert_array_equal(gb, g[..., 4:])
    assert ga.flags.c_contiguous and gb.flags.c_contiguous
    assert nn.Add()([a]) is a  # one input: itself


@needs_torch
def test_merge_layers_match_torch(rng):
    xs = [f32(rng, 2, 3, 2, 2) for _ in range(3)]
    ts = [torch.from_numpy(x.copy()).requires_grad_(True) for x in xs]
    for layer, op in [(nn.Add(), lambda t: t[0] + t[1] + t[2]), (nn.Multiply(), lambda t: t[0] * t[1] * t[2]),
                      (nn.Concat(1), lambda t: torch.cat(t, 1))]:
        y = layer(xs)
        ty = op(ts)
        dy = f32(rng, *y.shape)
        for t in ts:
            t.grad = None
        ty.backward(torch.from_numpy(dy))
        assert_close(y, ty.detach().numpy(), rtol=1e-6, atol=1e-7, layer=repr(layer))
        for g, t in zip(layer.backward(dy), ts):
            assert_close(g, t.grad.numpy(), rtol=1e-6, atol=1e-7, layer=repr(layer))


# ---------------------------------------------------------------- saving and loading


def _zoo(rng):
    """A model with a bit of everything: two inputs, a shared layer, a nested model, a Sequential and
    a BasicBlock, a merge of each kind, two outputs, a frozen layer."""
    img, vec = nn.Input((3, 6, 6)), nn.Input((4,))
    inner_in = nn.Input((4,))
    inner = nn.Model(inner_in, nn.Linear(4, 4)(inner_in))
    shared = nn.Conv2d(4, 4, 3, padding=1)
    h = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())(img)
    h = nn.BasicBlock(4, 4)(shared(nn.ReLU()(shared(h))))
    pooled = nn.Flatten()(nn.AdaptiveAvgPool2d(1)(nn.Concat()([h, img])))
    v = nn.Multiply()([inner(vec), inner(vec)])
    model = nn.Model([img, vec], [nn.Linear(7, 4)(pooled), nn.Add()([v, vec])])
    shared.weight.requires_grad = False
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = f32(rng, m.num_features)
    return model


def test_save_and_load_round_trip(rng, tmp_path):
    model = _zoo(rng)
    model.eval()
    xs = [f32(rng, 2, 3, 6, 6), f32(rng, 2, 4)]
    path = tmp_path / "zoo.npz"
    pycnn.save(model, path)
    loaded = pycnn.load(path)
    assert type(loaded) is nn.Model and not loaded.training
    assert list(loaded.state_dict()) == list(model.state_dict())
    for y, z in zip(model(*xs), loaded(*xs)):
        np.testing.assert_array_equal(y, z)
    assert [n for n, p in loaded.named_parameters() if not p.requires_grad] == ["conv2d_0.weight"]
    assert loaded.input_shapes == model.input_shapes and loaded.output_shapes == model.output_shapes
    again = pycnn.io.from_json(pycnn.io.to_json(loaded))
    assert json.loads(pycnn.io.to_json(again)) == json.loads(pycnn.io.to_json(model))
    # the loaded graph is a graph like any other: it trains
    loaded.train()
    ys = loaded(*xs)
    assert [d.shape for d in loaded.backward([np.ones_like(y) for y in ys])] == [x.shape for x in xs]


@nn.register_module(name="test_graph.Tower")
class Tower(nn.Model):
    """A graph built by its constructor from hyper-parameters."""

    def __init__(self, width: int = 3) -> None:
        x = nn.Input((2,))
        super().__init__(x, nn.ReLU()(nn.Linear(2, width)(x)))


def test_a_model_subclass_is_saved_as_its_constructor_arguments(rng, tmp_path):
    tower = Tower(5)
    assert json.loads(pycnn.io.to_json(tower))["config"] == {"width": 5}
    pycnn.save(tower, tmp_path / "t.npz")
    loaded = pycnn.load(tmp_path / "t.npz")
    x = f32(rng, 3, 2)
    assert type(loaded) is Tower
    np.testing.assert_array_equal(loaded(x), tower(x))


def _graph_file(**changes):
    """The architecture JSON of a small graph with `changes` applied to its graph description."""
    x = nn.Input((3,))
    fc = nn.Linear(3, 2)
    spec = json.loads(pycnn.io.to_json(nn.Model(x, nn.ReLU()(fc(x)))))
    spec["graph"].update(changes)
    return json.dumps(spec)


@pytest.mark.parametrize("changes, message", [
    # a node taking a value defined after it: what a cycle would need
    ({"nodes": [{"layer": "linear_0", "args": [2], "outputs": [[2]], "single": True},
                {"layer": "relu_0", "args": [1], "outputs": [[2]], "single": True}]}, "cycle"),
    ({"nodes": [{"layer": "linear_0", "args": [0], "outputs": [[2]], "single": True},
                {"layer": "relu_0", "args": [1.5], "outputs": [[2]], "single": True}]}, "not defined before"),
    ({"nodes": [{"layer": "linear_9", "args": [0], "outputs": [[2]], "single": True}]}, "not among the children"),
    ({"nodes": [{"layer": "linear_0", "args": [0], "outputs": [[2]], "single": True}], "outputs": [1]},
     "not called by the graph"),
    ({"outputs": [7]}, "not defined before"),
    ({"outputs": []}, "non-empty list"),
    ({"inputs": [[3, -1]]}, "sizes"),
    ({"inputs": [[3], [3]], "list_inputs": True}, "not connected"),
    ({"list_outputs": "yes"}, "true or false"),
    ({"extra": 1}, "keys"),
])
def test_hostile_graph_descriptions_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        pycnn.io.from_json(_graph_file(**changes))


def test_hostile_graph_in_a_model_file_is_refused_naming_the_file(rng, tmp_path):
    x = nn.Input((3,))
    model = nn.Model(x, nn.Linear(3, 2)(x))
    path = tmp_path / "m.npz"
    pycnn.save(model, path)
    with np.load(path) as f:
        arrays = dict(f)
    meta = json.loads(arrays["__pycnn__"].tobytes())
    meta["architecture"]["graph"]["nodes"][0]["args"] = [5]
    arrays["__pycnn__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=re.escape(os.fspath(bad)) + ".*not defined before"):
        pycnn.load(bad)
    meta["architecture"]["config"] = {}  # a graph has no constructor arguments
    meta["architecture"]["graph"]["nodes"][0]["args"] = [0]
    arrays["__pycnn__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="unexpected keys"):
        pycnn.load(bad)


def test_a_model_whose_layers_share_a_submodule_cannot_be_saved(tmp_path):
    conv = nn.Conv2d(1, 1, 1)
    x = nn.Input((1, 2, 2))
    model = nn.Model(x, nn.Sequential(conv, nn.ReLU())(conv(x)))
    with pytest.raises(ValueError, match="share the module Conv2d"):
        pycnn.save(model, tmp_path / "m.npz")


# ---------------------------------------------------------------- errors at build time


def _conv_on_wrong_channels():
    nn.Conv2d(4, 8, 3)(nn.Input((3, 8, 8)))


def _add_of_two_shapes():
    x = nn.Input((3, 8, 8))
    nn.Add()([nn.Conv2d(3, 16, 1)(x), nn.Conv2d(3, 8, 1)(x)])


def _concat_of_two_sizes():
    nn.Concat()([nn.Input((3, 8, 8)), nn.Input((3, 4, 8))])


def _unconnected_input():
    a, b = nn.Input((3,)), nn.Input((3,))
    nn.Model([a, b], nn.Linear(3, 2)(a))


def _unreachable_output():
    a, b = nn.Input((3,)), nn.Input((3,))
    nn.Model(a, nn.Add()([nn.Linear(3, 3)(a), b]))


def _intermediate_as_input():
    x = nn.Input((3,))
    h = nn.Linear(3, 3)(x)
    nn.Model(h, nn.ReLU()(h))


def _input_twice():
    x = nn.Input((3,))
    nn.Model([x, x], nn.ReLU()(x))


def _batch_changing_layer():
    nn.Flatten(0)(nn.Input((3, 2)))


def _mixed_arguments():
    nn.Add()([nn.Input((3,)), np.zeros((1, 3), np.float32)])


@pytest.mark.parametrize("build, error, parts", [
    (_conv_on_wrong_channels, ValueError, ["Conv2d(4, 8, kernel_size=(3, 3)", "(None, 3, 8, 8)", "weight"]),
    (_add_of_two_shapes, ValueError, ["Add", "(None, 16, 8, 8) and (None, 8, 8, 8)"]),
    (_concat_of_two_sizes, ValueError, ["Concat(dim=1)", "(None, 3, 8, 8) and (None, 3, 4, 8)"]),
    (_unconnected_input, ValueError, ["inputs[1]", "(None, 3)", "not connected to the outputs"]),
    (_unreachable_output, ValueError, ["not among the inputs", "not reachable"]),
    (_intermediate_as_input, ValueError, ["inputs[0] is the output of Linear", "nn.Input"]),
    (_input_twice, ValueError, ["listed twice"]),
    (_batch_changing_layer, ValueError, ["Flatten", "batch"]),
    (_mixed_arguments, TypeError, ["Add: argument 0 holds a ndarray", "symbolic values"]),
    (lambda: nn.ReLU()(nn.Input((3,)), inplace=True), TypeError, ["keyword arguments (inplace)"]),
    (lambda: nn.MSELoss()(nn.Input((3,)), nn.Input((3,))), TypeError, ["MSELoss", "must return an array"]),
    (lambda: np.asarray(nn.Input((3,))), TypeError, ["has no data", "nn.Model"]),
    (lambda: nn.Input((3, 0)), ValueError, ["positive sizes"]),
    (lambda: nn.Input("abc"), TypeError, ["sequence of ints"]),
    (lambda: nn.Model(np.zeros(3), nn.Input((3,))), TypeError, ["symbolic value"]),
])
def test_build_time_errors_say_what_and_where(build, error, parts):
    with pytest.raises(error) as info:
        build()
    for part in parts:
        assert part in str(info.value), (part, str(info.value))


def test_run_time_errors():
    a, b = nn.Input((3,)), nn.Input((3,))
    two = nn.Model([a, b], [nn.Add()([a, b]), a])
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="expected 2 input arrays, got 1"):
        two(x)
    two(x, x)
    with pytest.raises(TypeError, match="list of 2 gradient"):
        two.backward(x)
    fresh = nn.Model(a, nn.ReLU()(a))
    with pytest.raises(RuntimeError, match="before forward"):
        fresh.backward(x)


# ---------------------------------------------------------------- broadcasting in Add / Multiply

BROADCAST_CASES = [
    [(2, 3, 4, 5), (2, 3, 1, 1)],          # squeeze-and-excitation: a scale per channel
    [(2, 3, 1, 5), (1, 3, 4, 1), (3, 1, 1)],  # every input broadcast somewhere, one with fewer dims
    [(2, 1, 4), (2, 3, 4), (2, 3, 4)],      # the first input is the broadcast one
]


def _numeric_grads(op, xs, dy, eps=1e-6):
    """Central differences of sum(dy * op(xs)) in float64: the oracle for every input's gradient."""
    xs = [f64(x).copy() for x in xs]
    grads = []
    for x in xs:
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            up = np.sum(dy * op(xs))
            x[i] = old - eps
            down = np.sum(dy * op(xs))
            x[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("shapes", BROADCAST_CASES, ids=str)
@pytest.mark.parametrize("layer, op", [(nn.Add, lambda t: (t[0] + t[1]) + t[2] if len(t) > 2 else t[0] + t[1]),
                                       (nn.Multiply, lambda t: (t[0] * t[1]) * t[2] if len(t) > 2 else t[0] * t[1])],
                         ids=["Add", "Multiply"])
def test_merge_broadcasting_against_finite_differences(shapes, layer, op, rng):
    xs = [f32(rng, *s) for s in shapes]
    m = layer()
    y = m(xs)
    expected = op([f64(x) for x in xs])
    assert y.shape == expected.shape and y.dtype == np.float32
    assert_close(y, expected, rtol=1e-6, atol=1e-6)
    dy = f32(rng, *y.shape)
    grads = m.backward(dy)
    for i, (g, e) in enumerate(zip(grads, _numeric_grads(op, xs, f64(dy)))):
        assert g.shape == xs[i].shape and g.dtype == np.float32
        assert_close(g, e, rtol=1e-5, atol=1e-5, input=i, shapes=shapes)


@needs_torch
@pytest.mark.parametrize("shapes", BROADCAST_CASES, ids=str)
def test_merge_broadcasting_matches_torch(shapes, rng):
    xs = [f32(rng, *s) for s in shapes]
    for layer in (nn.Add(), nn.Multiply()):
        ts = [torch.from_numpy(x.copy()).requires_grad_(True) for x in xs]
        ty = ts[0]
        for t in ts[1:]:
            ty = ty + t if isinstance(layer, nn.Add) else ty * t
        y = layer(xs)
        dy = f32(rng, *y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(y, ty.detach().numpy(), rtol=1e-6, atol=1e-6, layer=repr(layer))
        for g, t in zip(layer.backward(dy), ts):
            assert_close(g, t.grad.numpy(), rtol=1e-5, atol=1e-6, layer=repr(layer))


@needs_torch
def test_squeeze_excitation_graph_infers_shapes_and_matches_torch(rng):
    x = nn.Input((4, 5, 5))
    squeeze, excite = nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1)
    scale = nn.Sigmoid()(excite(squeeze(x)))
    assert scale.shape == (None, 4, 1, 1)
    out = nn.Multiply()([x, scale])
    assert out.shape == (None, 4, 5, 5)  # shape inference at build time
    model = nn.Model(x, out)
    xv = f32(rng, 3, 4, 5, 5)
    y = model(xv)
    dy = f32(rng, *y.shape)
    dx = model.backward(dy)
    tconv = torch.nn.Conv2d(4, 4, 1)
    tconv.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in excite.state_dict().items()})
    tx = torch.from_numpy(xv.copy()).requires_grad_(True)
    ty = tx * torch.sigmoid(tconv(tx.mean(dim=(2, 3), keepdim=True)))
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert_close(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert_close(excite.weight.grad, tconv.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert_close(excite.bias.grad, tconv.bias.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_merge_broadcasting_errors_name_the_inputs(rng):
    with pytest.raises(ValueError, match=r"Multiply: inputs must have one shape or broadcast to one .* input 0 of "
                                         r"shape \(2, 3, 4\) and input 1 of shape \(2, 2, 4\)"):
        nn.Multiply()([f32(rng, 2, 3, 4), f32(rng, 2, 2, 4)])
    with pytest.raises(ValueError, match=r"inputs 0..1 broadcast to \(2, 3, 4\), and input 2 of shape \(5,\)"):
        nn.Add()([f32(rng, 2, 3, 4), f32(rng, 3, 1), f32(rng, 5)])
    x = nn.Input((4, 5, 5))
    with pytest.raises(ValueError, match=r"Multiply.*\(None, 4, 5, 5\).*\(None, 3, 1, 1\)"):
        nn.Multiply()([x, nn.Conv2d(4, 3, 1)(nn.AdaptiveAvgPool2d(1)(x))])
