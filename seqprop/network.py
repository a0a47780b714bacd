"""Networks: a stack of hidden layers, one output head and ONE flat parameter vector.

``docs/HEADS.md`` gives the contract: parameter names and shapes follow
PyTorch (``hidden.0.fwd.W_ih`` (4H, I), ``output.W`` (K, D), ...), gate order
(i, f, g, o); :meth:`Network.parameters` returns views into
:attr:`Network.flat_parameters`, so writing through either changes both.

Shape legend: ``x`` (T, B, I) float, ``y`` (T, B) int with -1 = no target,
``lengths`` (B,) int, probabilities (T, B, K). Frames past a sequence's length
never influence anything: the input there is replaced by zeros before the
first layer, targets there are ignored and recurrences stop at each
sequence's own end (the reverse direction starts there).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from seqprop._memory import huge_page_zeros
from seqprop._parallel import blas_single_thread
from seqprop.framewise import FramewiseStep
from seqprop.heads import Head, StepResult, get_head
from seqprop.heads.softmax import SoftmaxHead
from seqprop.kernels.lockstep import copy_frames
from seqprop.layers import (
    LSTM,
    RNN,
    Bidirectional,
    Dense,
    Layer,
    TimeWindow,
)
from seqprop.options import ACTIVATIONS, DTYPES, GRADIENTS, KINDS, REDUCTIONS, SQUASHES, Kind

INIT_RANGE = 0.1  # weights uniform in [-0.1, 0.1] (paper, section 5)


class Network:
    """A sequence model: hidden layers, then one output head.

    Use :func:`make_network` to build the paper's networks.

    Parameters
    ----------
    hidden : list of (name, Layer)
        Hidden layers, bottom to top. Layers without parameters (a time
        window) may share a name prefix with nothing.
    head : Head
        The output head (:mod:`seqprop.heads`); its parameters are named
        ``output.*``.
    dtype : {"float32", "float64"}
        Arithmetic precision of parameters, activations and gradients.
    spec : dict, optional
        The :func:`make_network` arguments that rebuild this network.
    """

    def __init__(self, hidden, head: Head, *, dtype="float64", spec=None):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        self.hidden: list[tuple[str, Layer]] = list(hidden)
        self.input_size = self.hidden[0][1].input_size
        top = self.hidden[-1][1].output_size
        if head.input_size != top:
            raise ValueError(f"the head reads {head.input_size} values, the top layer gives {top}")
        self.head = head
        self.num_classes = head.num_classes
        self.spec = dict(spec) if spec is not None else None

        layout: list[tuple[str, tuple[int, ...]]] = []
        for name, layer in self.hidden:
            layout += [(f"{name}.{k}", s) for k, s in layer.param_shapes().items()]
        layout += [(f"output.{k}", s) for k, s in head.param_shapes().items()]
        sizes = [int(np.prod(s)) for _, s in layout]
        self.num_parameters = int(sum(sizes))
        # in memory the system may back with 2 MiB pages: recurrent weights read at every
        # time step then spread evenly over the cache (seqprop._memory)
        self._flat = huge_page_zeros(self.num_parameters, self.dtype)
        self._flat_grad = huge_page_zeros(self.num_parameters, self.dtype)
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        offset = 0
        for (name, shape), n in zip(layout, sizes, strict=True):
            self._params[name] = self._flat[offset : offset + n].reshape(shape)
            self._grads[name] = self._flat_grad[offset : offset + n].reshape(shape)
            offset += n
        # the lowest layer with parameters: layers below it need no input gradient
        self._lowest = next(
            (i for i, (_, layer) in enumerate(self.hidden) if layer.param_shapes()), 0
        )
        # per-layer views with local names, built once
        self._layer_p = [_local(self._params, name) for name, _ in self.hidden]
        self._layer_g = [_local(self._grads, name) for name, _ in self.hidden]
        self._out_p = _local(self._params, "output")
        self._out_g = _local(self._grads, "output")
        self._framewise = _framewise_layers(self.hidden, head, self._layer_p, self._layer_g)
        # a top layer that can takes the head's error as dlogits and W (OutputError)
        self._defer_output_error = bool(
            self.hidden
            and self.hidden[-1][1].accepts_output_error
            and getattr(head, "defers_output_error", False)
        )

    # ------------------------------------------------------------------ parameters
    def parameters(self) -> dict[str, np.ndarray]:
        """Named parameter arrays: views into :attr:`flat_parameters`."""
        return dict(self._params)

    @property
    def flat_parameters(self) -> np.ndarray:
        """All parameters as one 1-D array (the storage the views share)."""
        return self._flat

    @flat_parameters.setter
    def flat_parameters(self, value) -> None:
        value = np.asarray(value)
        if value.shape != self._flat.shape:
            raise ValueError(
                f"flat_parameters must have shape {self._flat.shape}, got {value.shape}"
            )
        self._flat[...] = value

    @property
    def flat_gradient(self) -> np.ndarray:
        """Gradient of the last :meth:`loss_and_grad` call, laid out like :attr:`flat_parameters`."""
        return self._flat_grad

    def init_parameters(self, random_state=None) -> None:
        """Draw every weight uniformly from [-0.1, 0.1] (paper, section 5)."""
        rng = np.random.default_rng(random_state)
        self._flat[...] = rng.uniform(-INIT_RANGE, INIT_RANGE, self.num_parameters)

    def copy(self) -> Network:
        """An independent network with the same structure and weights."""
        if self.spec is None:
            raise ValueError("copy() needs a network built by make_network")
        other = make_network(**self.spec)
        other.flat_parameters[...] = self._flat
        return other

    def __repr__(self) -> str:
        kind = self.spec["kind"] if self.spec else "custom"
        return (
            f"Network(kind={kind!r}, head={self.head.name!r}, input_size={self.input_size}, "
            f"num_classes={self.num_classes}, num_parameters={self.num_parameters}, "
            f"dtype={self.dtype.name!r})"
        )

    # ------------------------------------------------------------------ validation
    def _prepare(self, x, lengths, y=None):
        """Check arguments and return (x, lengths, targets) ready for the kernels.

        ``x`` is copied in the network's dtype with zeros past each length;
        targets are checked and prepared by the head (nothing scored past
        each length).
        """
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"x must have shape (T, B, I), got an array of shape {x.shape}")
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"x has {I} features per frame, the network expects {self.input_size}")
        if T == 0 or B == 0:
            raise ValueError(
                f"x must have at least one frame and one sequence, got shape {x.shape}"
            )
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"x must be a real (float or integer) array, got dtype {x.dtype}")

        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.shape[0] != B:
            raise ValueError(f"lengths must have shape ({B},) to match x, got {lengths.shape}")
        if not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"lengths must be integers, got dtype {lengths.dtype}")
        if lengths.size and (lengths.min() < 0 or lengths.max() > T):
            bad = int(np.flatnonzero((lengths < 0) | (lengths > T))[0])
            raise ValueError(
                f"lengths[{bad}] = {int(lengths[bad])} is outside [0, T={T}] (T = x.shape[0])"
            )
        lengths = np.ascontiguousarray(lengths, dtype=np.int64)

        # x in the network's dtype, zero past each length, checked finite: one compiled pass
        xc = np.empty((T, B, I), dtype=self.dtype)
        if x.dtype.kind == "f" and x.dtype.itemsize not in (4, 8) or not x.dtype.isnative:
            x = x.astype(np.float64)  # float16, long double, foreign byte order
        t, b = copy_frames(np.ascontiguousarray(x), lengths, xc)
        if t >= 0:
            raise ValueError(f"x has a NaN or infinite value at frame {t} of sequence {b}")

        targets = None
        if y is not None:
            valid = np.arange(T)[:, None] < lengths[None, :]  # (T, B)
            targets = self.head.prepare_targets(y, valid)
        return xc, lengths, targets

    # ------------------------------------------------------------------ passes
    def _hidden_forward(self, x, lengths):
        """The top hidden layer (T, B, D) and the layer caches.

        Callers hold :func:`seqprop._parallel.blas_single_thread`.
        """
        caches = []
        h = x
        for (_, layer), p in zip(self.hidden, self._layer_p, strict=True):
            h, cache = layer.forward(p, h, lengths)
            caches.append(cache)
        return h, caches

    def _hidden_backward(self, caches, dh) -> None:
        """Back through the layers whose ``caches`` are given (the lowest ones, from the
        top of those down), ``dh`` the error at the output of the last of them."""
        for i in range(len(caches) - 1, -1, -1):
            layer = self.hidden[i][1]
            dh = layer.backward(
                self._layer_p[i], self._layer_g[i], caches[i], dh, need_input_grad=i > self._lowest
            )

    def step(self, x, y, lengths, *, reduction="sum") -> StepResult:
        """Loss, gradient and the head's metric counts for one batch.

        The gradient goes to :attr:`flat_gradient` (and the views of
        :meth:`loss_and_grad`'s dict); the returned :class:`StepResult`
        holds the loss (reduced as asked), the summed loss, the number of
        scored units and the counts the head's metric needs, so a trainer
        gets its training error without a second forward pass.
        """
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        x, lengths, targets = self._prepare(x, lengths, y)
        if self._framewise is not None:
            with blas_single_thread():
                return self._framewise_step(x, targets, reduction)
        with blas_single_thread():
            followed = self._step_followed_by_head(x, lengths, targets, reduction)
            if followed is not None:  # the head ran inside the top layer's step
                return followed
            h, caches = self._hidden_forward(x, lengths)
            if self._defer_output_error:  # the top layer multiplies out the head's error
                result, dh = self.head.loss_and_grad(
                    self._out_p, self._out_g, h, lengths, targets, reduction, defer=True
                )
            else:
                result, dh = self.head.loss_and_grad(
                    self._out_p, self._out_g, h, lengths, targets, reduction
                )
            self._hidden_backward(caches, dh)
        return result

    def _step_followed_by_head(self, x, lengths, targets, reduction):
        """:meth:`step` with the head computed inside the top layer's step, or None,
        having computed nothing, where the top layer or the head cannot.

        A head with per-frame row blocks (``frame_rows``: the softmax head) computes its
        loss, dE/dlogits and dE/dh on each block of frames as soon as the top layer's
        forward pass has made them, on the other thread, and its weight gradients while
        the backward pass runs (:meth:`~seqprop.layers.Layer.step_followed`: a
        one-direction LSTM over one sequence). Layers below run as usual.
        """
        if not self._defer_output_error or not hasattr(self.head, "frame_rows"):
            return None
        *lower, (_, top) = self.hidden
        if not top.can_be_followed(x.shape[1]):
            return None
        h, caches = x, []
        for (_, layer), p in zip(lower, self._layer_p, strict=False):
            h, cache = layer.forward(p, h, lengths)
            caches.append(cache)
        rows = []

        def follow(out):
            T, B, D = out.shape
            hf = out.reshape(T * B, D)
            rows.append(self.head.frame_rows(self._out_p, hf, targets, reduction, need_dh=True))
            head = rows[0]
            return head, head.dh, lambda: head.param_grads(0, T * B, self._out_g)

        top_index = len(self.hidden) - 1
        dx = top.step_followed(
            self._layer_p[-1], self._layer_g[-1], h, lengths, follow,
            need_input_grad=top_index > self._lowest,
        )  # fmt: skip
        self._hidden_backward(caches, dx)  # the layers below the top
        return rows[0].result()

    def _framewise_step(self, x, targets, reduction) -> StepResult:
        """:meth:`step` of an MLP (a time window, dense layers, the softmax head):
        :class:`seqprop.framewise.FramewiseStep`."""
        window, dense = self._framewise
        step = FramewiseStep(window, dense, self.head, self._out_p, self._out_g)
        return step(x, targets, reduction)

    def loss_and_grad(self, x, y, lengths, *, reduction="sum"):
        """The loss and its gradient with respect to every parameter.

        Parameters
        ----------
        x : ndarray, shape (T, B, I)
            Input frames; values past a sequence's length are ignored.
        y : targets of the head
            For the softmax head (T, B) int, the class per frame, -1 where a
            frame has no target (``docs/HEADS.md`` lists every head's).
        lengths : ndarray of int, shape (B,)
            Frames in each sequence, at most T.
        reduction : {"sum", "mean"}
            ``"sum"`` (the paper's convention): the loss summed over all
            scored frames (or sequences) of the batch; ``"mean"``: divided by
            their number.

        Returns
        -------
        loss : float
        grads : dict[str, ndarray]
            Same names and shapes as :meth:`parameters`: views into
            :attr:`flat_gradient`, overwritten by the next call.
        """
        result = self.step(x, y, lengths, reduction=reduction)
        return result.loss, dict(self._grads)

    def loss(self, x, y, lengths, *, reduction="sum") -> float:
        """The loss of :meth:`loss_and_grad` without the gradient."""
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        result = self.score(x, y, lengths)
        if reduction == "mean":
            return result.loss_sum / result.n_scored if result.n_scored else 0.0
        return result.loss_sum

    def score(self, x, y, lengths) -> StepResult:
        """Summed loss and the head's metric counts for one batch, without gradients."""
        x, lengths, targets = self._prepare(x, lengths, y)
        with blas_single_thread():
            h, _ = self._hidden_forward(x, lengths)
            return self.head.score(self._out_p, h, lengths, targets)

    def predict_proba(self, x, lengths) -> np.ndarray:
        """The head's outputs: for the softmax head class probabilities (T, B, K), zero past
        each length (the sequence head: (B, K); ``docs/HEADS.md`` lists every head's)."""
        x, lengths, _ = self._prepare(x, lengths)
        with blas_single_thread():
            h, _ = self._hidden_forward(x, lengths)
            return self.head.predict_proba(self._out_p, h, lengths)

    def predict(self, x, lengths):
        """The head's decisions: for the softmax head the most probable class per frame
        (T, B), -1 past each length (the sequence head: (B,); ``docs/HEADS.md``)."""
        x, lengths, _ = self._prepare(x, lengths)
        with blas_single_thread():
            h, _ = self._hidden_forward(x, lengths)
            return self.head.predict(self._out_p, h, lengths)


def _framewise_layers(hidden, head, layer_p, layer_g):
    """``(window, [(index, Dense, params, grads)])`` when the net is an MLP the framewise
    step computes (an optional time window, dense layers, the softmax head), else None."""
    layers = [layer for _, layer in hidden]
    window = layers[0] if layers and type(layers[0]) is TimeWindow else None
    rest = layers[1:] if window is not None else layers
    if not isinstance(head, SoftmaxHead) or not all(type(layer) is Dense for layer in rest):
        return None
    first = len(layers) - len(rest)
    return window, [
        (i, layer, layer_p[i], layer_g[i]) for i, layer in enumerate(layers) if i >= first
    ]


def _local(d: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in d.items() if k.startswith(prefix + ".")}


def _positive_int(value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def make_network(
    kind,
    input_size,
    hidden_size,
    num_classes,
    *,
    window=0,
    gradient="full",
    dtype="float64",
    random_state=None,
    squash="tanh",
    activation="tanh",
    num_layers=1,
    reverse=False,
    head="softmax",
    **head_options,
) -> Network:
    """Build one of the paper's networks (Graves & Schmidhuber 2005, section 4).

    Parameters
    ----------
    kind : {"blstm", "lstm", "brnn", "rnn", "mlp"}
        Bidirectional LSTM, LSTM, bidirectional RNN, RNN (tanh units), or a
        multilayer perceptron over a time window of input frames.
    input_size : int
        I, features per frame (26 in the paper).
    hidden_size : int
        H, LSTM blocks / recurrent units / MLP units per layer and direction
        (paper: BLSTM 93, LSTM 140, BRNN 185, RNN 275, MLP 250).
    num_classes : int
        K, softmax outputs (61 TIMIT phones).
    window : int
        MLP only: frames on either side of the current one in its input
        (input size (2 window + 1) I).
    gradient : {"full", "truncated"}
        Full BPTT, or the truncated gradient of the original LSTM
        (``docs/EQUATIONS.md``); for plain RNNs ``"truncated"`` stops error at the
        recurrent connection. Ignored by the MLP.
    dtype : {"float32", "float64"}
    random_state : None, int or numpy.random.Generator
        Seed of the initial weights, all uniform in [-0.1, 0.1].
    squash : {"tanh", "logistic2"}
        LSTM cell input/output squashing; ``"logistic2"`` is the 2005 paper's
        ``4 logistic(x) - 2``. Other kinds take only the default.
    activation : {"tanh", "logistic"}
        Hidden unit nonlinearity of the RNN, BRNN and MLP (the paper's are
        logistic); LSTM kinds take only the default.
    num_layers : int
        Hidden layers stacked (1 in the paper). ``kind="mlp"`` also takes 0:
        no hidden layer, the head reads the input window directly (with
        ``window=0`` the input frame itself; ``hidden_size`` is then unused),
        e.g. a single logistic neuron (``docs/HEADS.md``).
    reverse : bool
        Unidirectional recurrent kinds (``"lstm"``, ``"rnn"``) only: run every
        hidden layer backwards in time, from each sequence's last frame to its
        first (the paper's "backwards, no delay" LSTM, section 5.2); the
        output at frame ``t`` then sees frames ``t..L-1``. Bidirectional kinds
        already read both directions and the MLP's symmetric window has no
        direction, so they refuse it (``docs/EQUATIONS.md`` section 6).
        Stored in ``spec`` only when True.
    head : str
        The output head (:mod:`seqprop.heads`, ``docs/HEADS.md``): ``"softmax"``
        (default), the paper's framewise classifier; ``"sequence"``,
        ``"logistic"``, ``"squared_error"``.
    **head_options
        Options of the head (``"softmax"``: ``class_weights``; see each head
        class).
        Arguments describing the hidden layers (``Head.structure_names``,
        e.g. whether the top layer is bidirectional) are filled in here,
        not passed by the caller.

    Returns
    -------
    Network
        Parameters named ``hidden.{n}[.fwd|.bwd].{W_ih,W_hh,b,w_peep}`` (recurrent),
        ``hidden.{n}.{W,b}`` (MLP) and ``output.{W,b}``.
    """
    spec = _checked_spec(
        kind=kind,
        input_size=input_size,
        hidden_size=hidden_size,
        num_classes=num_classes,
        window=window,
        gradient=gradient,
        dtype=dtype,
        squash=squash,
        activation=activation,
        num_layers=num_layers,
        reverse=reverse,
    )
    hidden = _hidden_layers(spec)
    out = _make_head(head, head_options, hidden, spec["num_classes"])
    spec.update(head=head, **out.options())
    net = Network(hidden, out, dtype=spec["dtype"], spec=spec)
    net.init_parameters(random_state)
    return net


def _checked_spec(**spec) -> dict:
    """The hidden layers' arguments of :func:`make_network`, checked and normalised."""
    kind = spec["kind"]
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    kind = str(kind)
    for name in ("input_size", "hidden_size", "num_classes"):
        spec[name] = _positive_int(spec[name], name)
    num_layers = spec["num_layers"]
    no_hidden = (
        not isinstance(num_layers, bool)
        and isinstance(num_layers, int | np.integer)
        and num_layers == 0
    )
    if no_hidden and kind != Kind.MLP:
        raise ValueError(f"num_layers=0 (no hidden layer) needs kind 'mlp', got kind {kind!r}")
    spec["num_layers"] = 0 if no_hidden else _positive_int(num_layers, "num_layers")
    window = spec["window"]
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 0:
        raise ValueError(f"window must be a non-negative integer, got {window!r}")
    spec["window"] = window = int(window)
    if window and kind != Kind.MLP:
        raise ValueError(f"window is an MLP option; kind {kind!r} takes window=0")
    if spec["gradient"] not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {spec['gradient']!r}")
    spec["dtype"] = _dtype_name(spec["dtype"])
    _check_units(kind, spec["squash"], spec["activation"])
    reverse = spec.pop("reverse")
    if not isinstance(reverse, bool | np.bool_):
        raise ValueError(f"reverse must be True or False, got {reverse!r}")
    if reverse and (Kind(kind).bidirectional or kind == Kind.MLP):
        raise ValueError(
            f"reverse applies to the unidirectional recurrent kinds 'lstm' and 'rnn', not "
            f"kind {kind!r} (bidirectional nets read both directions; the MLP window is "
            "symmetric)"
        )
    if reverse:  # only when set: the specs of forward nets stay as they were
        spec["reverse"] = True
    return spec


def _dtype_name(dtype) -> str:
    if dtype in DTYPES:
        return dtype
    dt = np.dtype(dtype).name if isinstance(dtype, type | np.dtype) else dtype
    if dt not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return dt


def _check_units(kind: str, squash, activation) -> None:
    """``squash`` applies to LSTM cells, ``activation`` to the other kinds' units."""
    if squash not in SQUASHES:
        raise ValueError(f"squash must be one of {SQUASHES}, got {squash!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    lstm = Kind(kind).lstm
    if lstm and activation != "tanh":
        raise ValueError(
            f"activation applies to rnn, brnn and mlp units, not kind {kind!r} "
            f"(LSTM cells take squash); got activation={activation!r}"
        )
    if not lstm and squash != "tanh":
        raise ValueError(
            f"squash is an LSTM option; kind {kind!r} takes activation, got squash={squash!r}"
        )


def _hidden_layers(spec: dict) -> list[tuple[str, Layer]]:
    """The hidden layers a checked spec describes, bottom to top."""
    kind = Kind(spec["kind"])
    hidden_size, gradient = spec["hidden_size"], spec["gradient"]
    hidden: list[tuple[str, Layer]] = []
    size = spec["input_size"]
    if kind == Kind.MLP:
        hidden.append(("window", TimeWindow(size, spec["window"])))
        size = hidden[-1][1].output_size
    for n in range(spec["num_layers"]):
        if kind.lstm:

            def unit(rev, size=size):
                return LSTM(
                    size, hidden_size, reverse=rev, gradient=gradient, squash=spec["squash"]
                )
        elif kind == Kind.MLP:

            def unit(rev, size=size):
                return Dense(size, hidden_size, activation=spec["activation"])
        else:

            def unit(rev, size=size):
                return RNN(
                    size, hidden_size, reverse=rev, gradient=gradient, activation=spec["activation"]
                )

        layer = (
            Bidirectional(unit(False), unit(True))
            if kind.bidirectional
            else unit(spec.get("reverse", False))
        )
        hidden.append((f"hidden.{n}", layer))
        size = layer.output_size
    return hidden


def _make_head(name: str, options: dict, hidden: list[tuple[str, Layer]], num_classes: int) -> Head:
    """The head ``name`` with the user's ``options`` and what it must know of the layers below."""
    head_cls = get_head(name)
    unknown = sorted(set(options) - set(head_cls.option_names))
    if unknown:
        raise ValueError(
            f"head {name!r} has no option {unknown[0]!r} (its options: "
            f"{', '.join(head_cls.option_names) or 'none'})"
        )
    top = hidden[-1][1]
    structure = {"directions": 2 if isinstance(top, Bidirectional) else 1}
    return head_cls(
        top.output_size,
        num_classes,
        **options,
        **{k: structure[k] for k in head_cls.structure_names},
    )
