"""LSTM recurrence kernels (one direction, a batch of variable-length sequences).

Equations: ``docs/EQUATIONS.md`` (Graves & Schmidhuber 2005, section 3; forget
gates after Gers et al. 2000, peepholes after Gers et al. 2002). Gate order in
every 4H axis is (i, f, g, o).

Shapes (``T`` frames, ``B`` sequences, ``H`` blocks, ``G = 4H``):

- ``xp``      (T, B, G) input projections ``W_ih x(t)``, computed outside
- ``bias``    (G,)      ``b``, added to ``xp`` as each frame is read (one pass over
  memory fewer than adding it to ``xp`` first; the same arithmetic)
- ``w_hh_t``  (H, G)    transpose of ``W_hh`` (C-contiguous), forward pass
  (:func:`~seqprop.kernels.lockstep.recurrent_product`: one float64 sequence
  uses ``w_hh`` there instead)
- ``w_hh``    (G, H)    ``W_hh`` (C-contiguous), backward pass (with ``w_hh_t``: one
  sequence's ``W_hh^T delta(t+1)`` is a matrix-vector product with ``w_hh_t``,
  faster than a one-row matrix product with ``w_hh``)
- ``peep``    (3, H)    peephole weights, rows p_i, p_f, p_o
- ``lengths`` (B,)      frames per sequence; ``order`` (S,) the indices of the
  sequences to process (all of the batch, or a share of it that another
  thread does not touch), sorted by decreasing length
- ``act``     (T, B, G) gate activations b_i, b_f, b_g, b_o; may be ``xp`` itself
  (each frame's projections are read before its gates are written over them)
- ``cell``    (T, B, H) cell states s(t)
- ``hcell``   (T, B, H) squashed cell states h(s(t))
- ``out``     (T, B, H) cell outputs b(t)
- ``d_out``   (T, B, H) dE/db(t) from the layer above
- ``delta``   (T, B, G) dE/da for the four pre-activations
- ``g_peep``  (3, H)    peephole gradients, added to by the backward pass

Sequence ``b`` occupies frames ``0 .. lengths[b]-1``; with ``reverse`` it is
processed from its own last frame to its first. The sequences advance in
lockstep (:mod:`seqprop.kernels.lockstep`), their recurrent products one BLAS
matrix product per step. Every output array is written for all frames of the
sequences in ``order``, zero past each one's length. Nothing is validated
here: :mod:`seqprop.layers` does that. Work buffers are allocated once per
call, never inside the time loop.

Arithmetic is done in the arrays' own precision: a float32 layer computes its
gates, nonlinearities (:func:`~seqprop.kernels.activations.expm1_work`) and
errors in float32 (16 lanes per AVX-512 vector), a float64 one in float64.
The constants come from :func:`typed_constants` so that no float64 literal
widens float32 arithmetic.
"""

import numpy as np

from seqprop.kernels._jit import jit
from seqprop.kernels.activations import expm1_work, squash_scale
from seqprop.kernels.blas import gemm_tn
from seqprop.kernels.lockstep import (
    lockstep_schedule,
    recurrent_product,
    step_frame,
    zero_past_lengths,
)
from seqprop.kernels.sync import publish, start_worker, wait_or_abort

# Entries of the forward flags of a followed step (lstm_layer_step's flags_fwd; 0 is the
# forward recurrence's progress), the ones the other thread writes:
HEAD_READY = 4  # dE/dout complete: the backward recurrence may start
ABORT = 8  # the other thread failed: stop waiting for it (a cache line from entry 0)
INPUTS_READY = 12  # the input projections it makes (lstm_forward_chunks' wait_inputs) done


@jit
def typed_constants(like, inner, outer):
    """(0, 1, 2, 1/4, inner, outer) in ``like``'s dtype: kernel constants that keep
    float32 arithmetic in float32 (a float64 literal would widen it)."""
    c = np.empty(6, dtype=like.dtype)
    c[0] = 0.0
    c[1] = 1.0
    c[2] = 2.0
    c[3] = 0.25
    c[4] = inner
    c[5] = outer
    return c[0], c[1], c[2], c[3], c[4], c[5]


@jit
def lstm_forward(
    xp, bias, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code, act, cell, hcell, out
):
    """Forward recurrence; fills ``act``, ``cell``, ``hcell`` and ``out``."""
    no_flags = np.zeros(0, dtype=np.int64)
    lstm_forward_chunks(
        xp, bias, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code, act, cell, hcell,
        out, no_flags, 1, 0,
    )  # fmt: skip


@jit
def lstm_forward_chunks(
    xp,
    bias,
    w_hh,
    w_hh_t,
    peep,
    lengths,
    order,
    reverse,
    squash_code,
    act,
    cell,
    hcell,
    out,
    flags,
    chunk,
    wait_inputs,
):
    """:func:`lstm_forward`, announcing its progress to another thread.

    Unless ``flags`` is empty, ``flags[0]`` is set (release store) to the
    number of chunks of ``chunk`` steps finished, chunk ``j`` being steps
    ``j*chunk .. (j+1)*chunk-1`` of the lockstep schedule, except the last:
    once every output array is complete (zeros past the lengths written
    too), ``flags[0]`` is set to the number of chunks plus one. A consumer
    may read a chunk's frames of ``out`` once it is announced.

    Unless ``wait_inputs`` is 0, step ``wait_inputs`` first waits for
    ``flags[INPUTS_READY]`` (another thread has written the input projections
    ``xp`` of that step and the later ones). Returns True, or False, having stopped
    there, if ``flags[ABORT]`` is set first (that thread failed).
    """
    _, B, G = xp.shape
    H = G // 4
    H2 = 2 * H
    H3 = 3 * H
    hbuf = np.zeros((B, H), dtype=xp.dtype)  # b(t-1), one row per active sequence
    sbuf = np.zeros((B, H), dtype=xp.dtype)  # s(t-1)
    zbuf = np.zeros((B, G), dtype=xp.dtype)  # W_hh b(t-1)
    a = np.empty(G, dtype=xp.dtype)  # pre-activations
    u = np.empty(G, dtype=xp.dtype)  # arguments of expm1
    e = np.empty(G, dtype=xp.dtype)  # expm1(u): a separate array, or the loops do not vectorise
    ib = np.empty(G, dtype=np.int64)
    inner64, outer64 = squash_scale(squash_code)
    zero, one, two, _, inner, outer = typed_constants(xp, inner64, outer64)
    active = lockstep_schedule(lengths, order)
    for k in range(active.shape[0]):
        n_act = active[k]
        if k == wait_inputs and k > 0 and not wait_or_abort(flags, INPUTS_READY, 1, ABORT):
            return False
        if k > 0:
            recurrent_product(hbuf, w_hh, w_hh_t, zbuf, n_act)
        for i in range(n_act):
            b = order[i]
            t = step_frame(lengths[b], k, reverse)
            # input gate, forget gate, cell input
            for j in range(H):
                sp = sbuf[i, j]
                a[j] = xp[t, b, j] + bias[j] + zbuf[i, j] + peep[0, j] * sp
                a[H + j] = xp[t, b, H + j] + bias[H + j] + zbuf[i, H + j] + peep[1, j] * sp
                a[H2 + j] = xp[t, b, H2 + j] + bias[H2 + j] + zbuf[i, H2 + j]
            for m in range(H2):
                u[m] = -abs(a[m])
            for m in range(H2, H3):
                u[m] = -inner * abs(a[m])
            expm1_work(u[:H3], e[:H3], ib)
            for m in range(H2):
                d = one / (two + e[m])
                act[t, b, m] = d if a[m] >= zero else (one + e[m]) * d
            for m in range(H2, H3):
                v = -outer * e[m] / (two + e[m])
                act[t, b, m] = v if a[m] >= zero else -v
            # cell state, then the output gate that peeks at s(t)
            for j in range(H):
                s = act[t, b, H + j] * sbuf[i, j] + act[t, b, j] * act[t, b, H2 + j]
                cell[t, b, j] = s
                sbuf[i, j] = s
                xo = xp[t, b, H3 + j] + bias[H3 + j]
                a[H3 + j] = xo + zbuf[i, H3 + j] + peep[2, j] * cell[t, b, j]
                u[j] = -abs(a[H3 + j])
                u[H + j] = -inner * abs(cell[t, b, j])
            expm1_work(u[:H2], e[:H2], ib)
            for j in range(H):
                d = one / (two + e[j])
                b_o = d if a[H3 + j] >= zero else (one + e[j]) * d
                v = -outer * e[H + j] / (two + e[H + j])
                h = v if cell[t, b, j] >= zero else -v
                act[t, b, H3 + j] = b_o
                hcell[t, b, j] = h
                out[t, b, j] = act[t, b, H3 + j] * hcell[t, b, j]
                hbuf[i, j] = out[t, b, j]
        if flags.shape[0] > 0 and (k + 1) % chunk == 0 and k + 1 < active.shape[0]:
            publish(flags, 0, (k + 1) // chunk)
    zero_past_lengths(act, lengths, order)
    zero_past_lengths(cell, lengths, order)
    zero_past_lengths(hcell, lengths, order)
    zero_past_lengths(out, lengths, order)
    if flags.shape[0] > 0:  # complete: one more than the number of chunks
        publish(flags, 0, (active.shape[0] + chunk - 1) // chunk + 1)
    return True


@jit
def lstm_backward(
    d_out,
    w_hh,
    w_hh_t,
    peep,
    lengths,
    order,
    reverse,
    squash_code,
    truncated,
    act,
    cell,
    hcell,
    delta,
    g_peep,
):
    """Backward pass through time; fills ``delta`` and adds to ``g_peep``.

    ``truncated`` selects the truncated gradient (``docs/EQUATIONS.md``): no
    error through ``W_hh b(t-1)`` and none through the input/forget-gate
    peepholes' ``s(t-1)``; error still flows through the cell state.
    ``g_peep`` gains the peephole gradients of the sequences in ``order``,
    summed over their frames as the pass goes: ``delta_i(t) s(t-1)``,
    ``delta_f(t) s(t-1)`` and ``delta_o(t) s(t)`` (rows p_i, p_f, p_o).
    """
    no_flags = np.zeros(0, dtype=np.int64)
    lstm_backward_chunks(
        d_out, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code, truncated,
        act, cell, hcell, delta, g_peep, no_flags, 1,
    )  # fmt: skip


@jit
def lstm_backward_chunks(
    d_out,
    w_hh,
    w_hh_t,
    peep,
    lengths,
    order,
    reverse,
    squash_code,
    truncated,
    act,
    cell,
    hcell,
    delta,
    g_peep,
    flags,
    chunk,
):
    """:func:`lstm_backward`, announcing its progress to another thread.

    Unless ``flags`` is empty, ``flags[0]`` is set (release store:
    :func:`~seqprop.kernels.sync.publish`) to the number of chunks finished
    each time the pass finishes one. The pass runs from the last step of the
    lockstep schedule (K steps) to the first, and its n-th chunk (n = 1, 2,
    ...) is the ``chunk`` steps ``K - n*chunk .. K - (n-1)*chunk - 1`` (the
    last chunk, down to step 0, the remainder: short, so that little is left
    for the consumer once the pass ends). A consumer
    (:func:`lstm_chunk_gradients`) may read a chunk's ``delta`` rows once it
    is announced; nothing writes them again.
    """
    _, B, G = delta.shape
    H = G // 4
    H2 = 2 * H
    H3 = 3 * H
    d_next = np.zeros((B, G), dtype=delta.dtype)  # delta(t+1), one row per active sequence
    es_next = np.zeros((B, H), dtype=delta.dtype)  # eps_s(t+1)
    bf_next = np.zeros((B, H), dtype=delta.dtype)  # b_f(t+1)
    e_rec = np.zeros((B, H), dtype=delta.dtype)  # W_hh^T delta(t+1)
    zero, one, _, quarter, _, _ = typed_constants(delta, 0.0, 0.0)
    # squash'(y) = c_sq - q_sq y^2: 1 - y^2 (tanh), 1 - y^2 / 4 (4 logistic - 2)
    q_sq = one if squash_code == 0 else quarter
    active = lockstep_schedule(lengths, order)
    for k in range(active.shape[0] - 1, -1, -1):
        n_act = active[k]  # a sequence joins at its last step, its "next" rows still zero
        if not truncated:
            if n_act == 1:
                np.dot(w_hh_t, d_next[0], e_rec[0])
            else:
                np.dot(d_next[:n_act], w_hh, e_rec[:n_act])
        for i in range(n_act):
            b = order[i]
            t = step_frame(lengths[b], k, reverse)
            tp = t + 1 if reverse else t - 1  # previous step in processing order
            for j in range(H):
                b_i = act[t, b, j]
                b_f = act[t, b, H + j]
                b_g = act[t, b, H2 + j]
                b_o = act[t, b, H3 + j]
                h = hcell[t, b, j]
                s_prev = cell[tp, b, j] if k > 0 else zero
                eps_c = d_out[t, b, j] + e_rec[i, j]
                d_o = b_o * (one - b_o) * h * eps_c
                e_s = b_o * (one - q_sq * h * h) * eps_c + peep[2, j] * d_o
                e_s += bf_next[i, j] * es_next[i, j]
                if not truncated:
                    e_s += peep[0, j] * d_next[i, j] + peep[1, j] * d_next[i, H + j]
                delta[t, b, j] = b_i * (one - b_i) * b_g * e_s
                delta[t, b, H + j] = b_f * (one - b_f) * s_prev * e_s
                delta[t, b, H2 + j] = b_i * (one - q_sq * b_g * b_g) * e_s
                delta[t, b, H3 + j] = d_o
                es_next[i, j] = e_s
                bf_next[i, j] = b_f
            # peephole gradients: a loop of its own, or the one above does not vectorise
            for j in range(H):
                s_prev = cell[tp, b, j] if k > 0 else zero
                g_peep[0, j] += delta[t, b, j] * s_prev
                g_peep[1, j] += delta[t, b, H + j] * s_prev
                g_peep[2, j] += delta[t, b, H3 + j] * cell[t, b, j]
            for m in range(G):
                d_next[i, m] = delta[t, b, m]
        done = active.shape[0] - k  # steps finished, from the last one down
        if flags.shape[0] > 0 and (done % chunk == 0 or k == 0):
            publish(flags, 0, (done + chunk - 1) // chunk)
    zero_past_lengths(delta, lengths, order)


@jit
def lstm_layer_forward(
    x2,
    w_ih_t,
    xp2,
    bias,
    w_hh,
    w_hh_t,
    peep,
    lengths,
    order,
    reverse,
    squash_code,
    act,
    cell,
    hcell,
    out,
    cat,
    col,
    flags,
    chunk,
    rows_lo,
    rows_hi,
    wait_inputs,
    launch_flags,
    launch_idx,
    launch_value,
):
    """A whole forward pass of one direction: ``xp = x W_ih^T``, then :func:`lstm_forward`
    (:func:`lstm_forward_chunks`, announcing progress in ``flags``, unless it is empty).
    Returns False if that pass stopped on the abort flag.

    Only rows ``rows_lo:rows_hi`` of ``xp`` are projected here (all of them:
    ``0, T*B``); with ``wait_inputs`` (see :func:`lstm_forward_chunks`) another
    thread writes the others.

    ``launch_flags[launch_idx] = launch_value`` first unless ``launch_flags`` is
    empty: the start of the other thread's task (:func:`seqprop._parallel.run_pair`'s
    ``launch``), once this thread holds no GIL.

    ``x2`` (T*B, I) the layer input, ``w_ih_t`` (I, G) ``W_ih`` transposed,
    ``xp2`` (T*B, G) the input projections' storage (``xp`` flattened). One
    compiled call, so that it runs on its own thread without the GIL. Unless
    ``cat`` is empty, ``out`` is also copied into ``cat[:, :, col:col+H]`` (a
    bidirectional layer's output). ``w_hh_t`` (H, G) is filled with ``w_hh``
    transposed first (the backward pass of the same step reuses it).
    """
    start_worker(launch_flags, launch_idx, launch_value)
    T, B, H = out.shape
    G = 4 * H
    for j in range(H):  # writing W_hh^T's rows in order: 1.8x faster than its columns
        for g in range(G):
            w_hh_t[j, g] = w_hh[g, j]
    np.dot(x2[rows_lo:rows_hi], w_ih_t, xp2[rows_lo:rows_hi])
    xp = xp2.reshape((T, B, xp2.shape[1]))
    if not lstm_forward_chunks(
        xp, bias, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code, act, cell, hcell,
        out, flags, chunk, wait_inputs,
    ):  # fmt: skip
        return False
    if cat.shape[0] > 0:
        for t in range(T):
            for b in range(B):
                for j in range(H):
                    cat[t, b, col + j] = out[t, b, j]
    return True


@jit
def project_rows(x2, w_ih_t, xp2, lo, hi, flags):
    """``xp2[lo:hi] = x2[lo:hi] W_ih^T``, then ``flags[INPUTS_READY] = 1``: the input
    projections a followed step leaves to the other thread (:func:`lstm_layer_step`),
    made by the same BLAS call as the rest."""
    np.dot(x2[lo:hi], w_ih_t, xp2[lo:hi])
    publish(flags, INPUTS_READY, 1)


@jit
def lstm_layer_backward(
    dlogits,
    w_cols,
    g_head,
    head_col,
    d_full,
    d_col,
    d_out,
    w_hh,
    w_hh_t,
    peep,
    lengths,
    order,
    reverse,
    squash_code,
    truncated,
    act,
    cell,
    hcell,
    delta,
    g_peep,
    x2,
    d_pairs_t,
    h_prev,
    ones,
    g_w_ih,
    g_w_hh,
    g_b,
    w_ih,
    dx2,
    rows,
    out,
    d_rows,
    x_rows,
    h_rows,
    launch_flags,
    launch_idx,
    launch_value,
):
    """A whole backward pass of one direction: :func:`lstm_backward`, then the gradients.

    ``launch_*``: as in :func:`lstm_layer_forward`, first thing.

    Adds the peephole gradients to ``g_peep`` (zeroed by the caller) and
    writes ``g_w_ih = D^T x``, ``g_b = 1^T D`` (``ones`` (T*B,)) and
    ``g_w_hh = d_pairs_t h_prev`` (the pairs delta(t), b(t_prev) over all
    frames, ``d_pairs_t`` (G, N) transposed, ``h_prev`` (N, H); N = 0 leaves
    zeros), with ``D`` = ``delta`` flattened to (T*B, G); ``dx2 = D W_ih``
    (T*B, I) unless ``dx2`` has no rows (no input gradient wanted). Unless
    ``d_full`` is empty, ``d_out`` is first filled with its columns
    ``d_col:d_col+H`` (a bidirectional layer's output error); unless
    ``dlogits`` is empty, ``d_out`` is ``dlogits @ w_cols`` instead (the
    head's error multiplied out here: :class:`seqprop.layers.OutputError`);
    then, unless ``g_head`` is empty, this direction's columns of the head's
    weight gradient ``g_head[:, head_col:head_col+H] = dlogits^T b`` too, b
    being ``out`` (this direction's share of the head's input).

    A padded batch (``rows`` not empty: the flat indices ``t*B + b`` of the
    frames inside their sequences, increasing) skips the padding: the
    frames' rows of ``D``, ``x`` and b(t_prev) (from ``out``, zero before a
    sequence's first step) are gathered into ``d_rows`` (N, G), ``x_rows``
    (N, I) and ``h_rows`` (N, H), and the products run over those N rows
    only (``d_pairs_t`` and ``h_prev`` are then unused); ``dx2`` gets zeros
    past each length.
    """
    start_worker(launch_flags, launch_idx, launch_value)
    T, B, G = delta.shape
    H = G // 4
    if dlogits.shape[0] > 0:  # the error at the output: dlogits (T*B, K) @ w_cols (K, H)
        np.dot(dlogits, w_cols, d_out.reshape((T * B, H)))
        if g_head.shape[0] > 0:
            K = dlogits.shape[1]
            part = np.empty((K, H), dtype=delta.dtype)
            np.dot(dlogits.T, out.reshape((T * B, H)), part)
            for k in range(K):
                for j in range(H):
                    g_head[k, head_col + j] = part[k, j]
    elif d_full.shape[0] > 0:
        for t in range(T):
            for b in range(B):
                for j in range(H):
                    d_out[t, b, j] = d_full[t, b, d_col + j]
    lstm_backward(
        d_out, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code, truncated,
        act, cell, hcell, delta, g_peep,
    )  # fmt: skip
    D = delta.reshape((T * B, G))
    if rows.shape[0] > 0:
        _packed_gradients(
            D, x2, out, reverse, rows, d_rows, x_rows, h_rows, ones, g_w_ih, g_b, g_w_hh, w_ih, dx2
        )
        return
    np.dot(D.T, x2, g_w_ih)
    np.dot(ones, D, g_b)
    if h_prev.shape[0] > 0:
        np.dot(d_pairs_t, h_prev, g_w_hh)
    else:
        g_w_hh[...] = 0.0
    if dx2.shape[0] > 0:
        np.dot(D, w_ih, dx2)


@jit
def _packed_gradients(
    D, x2, out, reverse, rows, d_rows, x_rows, h_rows, ones, g_w_ih, g_b, g_w_hh, w_ih, dx2
):
    """The weight gradients (and dE/dx) of :func:`lstm_layer_backward` over the rows
    ``rows`` of a padded batch only (see there)."""
    N = rows.shape[0]
    I = x2.shape[1]
    gather_frame_rows(D, x2, out, reverse, rows, d_rows, x_rows, h_rows)
    np.dot(d_rows.T, x_rows, g_w_ih)
    np.dot(ones[:N], d_rows, g_b)
    np.dot(d_rows.T, h_rows, g_w_hh)
    if dx2.shape[0] > 0:
        np.dot(d_rows, w_ih, x_rows)  # dE/dx of the rows, then in place
        dx2[...] = 0.0
        for r in range(N):
            for i in range(I):
                dx2[rows[r], i] = x_rows[r, i]


@jit
def gather_frame_rows(D, x2, out, reverse, rows, d_rows, x_rows, h_rows):
    """Rows ``rows`` (flat ``t*B + b``) of ``D`` (T*B, G) and ``x2`` (T*B, I), and
    b(t_prev) of each from ``out`` (T, B, H) (zero before a sequence's first
    step), into ``d_rows``, ``x_rows`` and ``h_rows``: the operands of a
    recurrent layer's weight gradients over the frames inside the sequences."""
    T, B, H = out.shape
    N = rows.shape[0]
    G = D.shape[1]
    I = x2.shape[1]
    for r in range(N):
        q = rows[r]
        t = q // B
        tp = t + 1 if reverse else t - 1
        for m in range(G):
            d_rows[r, m] = D[q, m]
        for i in range(I):
            x_rows[r, i] = x2[q, i]
        if 0 <= tp < T:
            for j in range(H):
                h_rows[r, j] = out[tp, q % B, j]
        else:
            for j in range(H):
                h_rows[r, j] = 0.0


@jit
def lstm_chunk_gradients(
    flags, abort_idx, chunk, length, reverse, D, x2, out2, g_w_ih, g_w_hh, g_b, w_ih, dx2,
):  # fmt: skip
    """The weight gradients of one sequence's backward pass, a chunk at a time.

    Follows :func:`lstm_backward_chunks` (one sequence of ``length`` frames,
    ``D`` (T, G) its ``delta`` flattened, ``x2`` (T, I) the input, ``out2``
    (T, H) the output): as each chunk of steps is announced in ``flags[0]``
    it adds that chunk's frames to ``g_w_ih`` (``D^T x``), ``g_b``
    (``1^T D``) and ``g_w_hh`` (delta(t) b(t_prev)^T, none for the first
    step), each product added by BLAS into the sum
    (:func:`~seqprop.kernels.blas.gemm_tn`), and writes
    the chunk's rows of ``dx2 = D W_ih`` unless ``dx2`` has no rows (zero
    past ``length``). Chunks are taken in the order the pass finishes them,
    so the sums are the same on one thread or two. Returns early, the
    gradients incomplete, if ``flags[abort_idx]`` is set first (the
    producer failed).
    """
    G = D.shape[1]
    one = typed_constants(D, 0.0, 0.0)[1]  # 1 in the gradients' dtype
    g_w_ih[...] = 0.0
    g_w_hh[...] = 0.0
    g_b[...] = 0.0
    if dx2.shape[0] > 0:
        dx2[...] = 0.0
    n_chunks = (length + chunk - 1) // chunk
    for n in range(1, n_chunks + 1):
        if not wait_or_abort(flags, 0, n, abort_idx):
            return
        k0 = max(length - n * chunk, 0)  # the n-th chunk from the last step
        k1 = length - (n - 1) * chunk
        if reverse:
            t0, t1 = length - k1, length - k0
        else:
            t0, t1 = k0, k1
        gemm_tn(D[t0:t1], x2[t0:t1], g_w_ih, one)
        for r in range(t0, t1):
            for m in range(G):
                g_b[m] += D[r, m]
        if reverse:  # pairs delta(t), b(t+1) for t < length - 1
            tb = min(t1, length - 1)
            if t0 < tb:
                gemm_tn(D[t0:tb], out2[t0 + 1 : tb + 1], g_w_hh, one)
        else:  # pairs delta(t), b(t-1) for t > 0
            ta = max(t0, 1)
            if ta < t1:
                gemm_tn(D[ta:t1], out2[ta - 1 : t1 - 1], g_w_hh, one)
        if dx2.shape[0] > 0:
            np.dot(D[t0:t1], w_ih, dx2[t0:t1])


@jit
def lstm_layer_step(
    x2, w_ih_t, xp2, bias, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code,
    act, cell, hcell, out, flags_fwd, chunk, rows_lo, rows_hi, wait_inputs,
    d_out, truncated, delta, g_peep, flags_bwd,
):  # fmt: skip
    """Forward and backward pass of one sequence in one call, the head between them on
    the other thread (:meth:`seqprop.layers.LSTM.step_followed`).

    :func:`lstm_layer_forward` announcing its progress in ``flags_fwd[0]`` (rows
    ``rows_lo:rows_hi`` of the input projections made here, the others by the other
    thread, awaited at step ``wait_inputs``); then a wait for
    ``flags_fwd[HEAD_READY]`` (the other thread has made ``d_out`` from the output);
    then :func:`lstm_backward_chunks` announcing in ``flags_bwd[0]``, ``g_peep``
    zeroed first. Returns False, the backward pass not run, if
    ``flags_fwd[ABORT]`` is set while it waits.
    """
    no_cat = np.zeros((0, 0, 0), dtype=out.dtype)
    no_launch = np.zeros(0, dtype=np.int64)  # the worker was started from Python
    if not lstm_layer_forward(
        x2, w_ih_t, xp2, bias, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code,
        act, cell, hcell, out, no_cat, 0, flags_fwd, chunk, rows_lo, rows_hi, wait_inputs,
        no_launch, 0, 0,
    ):  # fmt: skip
        return False
    if not wait_or_abort(flags_fwd, HEAD_READY, 1, ABORT):
        return False
    g_peep[...] = 0.0
    lstm_backward_chunks(
        d_out, w_hh, w_hh_t, peep, lengths, order, reverse, squash_code, truncated,
        act, cell, hcell, delta, g_peep, flags_bwd, chunk,
    )  # fmt: skip
    return True
