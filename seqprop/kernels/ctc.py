"""Connectionist temporal classification kernels (Graves, Fernandez, Gomez & Schmidhuber 2006).

The equations are those of the paper's section 4 and of the project's
``docs/HEADS.md``; the public, validating wrappers are in :mod:`seqprop.ctc`.
These kernels do no checks: every input has been validated before the call
(lengths in [1, T], label values in [0, K), every target feasible).

Shapes: ``logits`` (T, B, C) with C = K + 1 outputs per frame, the blank being
the LAST one (index K); ``lengths`` (B,); ``labels`` (B, U) with the first
``label_lengths[b]`` entries of row b used (the rest is never read).

For one sequence of T_b frames and target z of U labels, the extended target
z' has S = 2U + 1 symbols (blanks before, between and after the labels).
``alpha_t(s)`` is the total probability of the path prefixes over frames
0..t that end in z'(s) and emit z'(1..s); ``beta_t(s)`` the total probability
of the path suffixes over frames t+1..T_b-1 that start from z'(s) at t and
finish the target. So ``alpha_t(s) beta_t(s)`` is the probability of all
paths through z'(s) at frame t, their sum over s is p(z|x) at every t, and the
error at the softmax input is ``y_k(t) - sum_{s: z'(s)=k} alpha_t(s) beta_t(s) / p``.

Numerics. Everything is accumulated in float64 whatever the logits' dtype
(a float32 alpha would lose the small ratios between paths). The fast path
keeps alpha and beta in linear space with per-frame rescaling (the paper's
section 4.1): each frame of alpha is scaled to sum 1 and ln p is the sum of
the logs of the scale factors; each frame of beta is scaled by the inverse of
the previous frame's sum (folded into the next products). The gradient needs
no scale factor: the occupancies alpha_t(s) beta_t(s) of a frame are divided
by their own sum. This is exact to rounding as long as every reachable cell
stays a normal float64 number; whenever a cell would fall below 1e-300
(relative to its frame, i.e. the paths disagree by more than ~690 nats) or
the occupancies of a frame sum below 1e-290, that sequence is recomputed
entirely in log space, which has no range limit. Both paths are tested
against a brute-force sum over alignments. Each sequence is computed by the
same arithmetic whichever call and thread computes it, so results do not
depend on how a batch is split over threads.
"""

import math

import numpy as np

from seqprop.kernels._jit import jit

_TINY = 1e-300  # smallest value a reachable linear-space cell may take
_TINY_Z = 1e-290  # smallest per-frame occupancy sum accepted in linear space
_NEG_INF = -np.inf


@jit
def _band(S, n_frames, t):
    """Cells of frame t that are reachable from the start and can still finish."""
    lo = S - 2 * (n_frames - t)
    if lo < 0:
        lo = 0
    hi = 2 * t + 1
    if hi > S - 1:
        hi = S - 1
    return lo, hi


@jit
def _extend(labels, b, U, blank, ext, skip):
    """Fill ``ext[:2U+1]`` with z' and ``skip[s]`` = 1.0 where the path may jump from s-2 to s.

    ``skip`` is 0.0 elsewhere, including the two entries past the end.
    """
    S = 2 * U + 1
    for s in range(S):
        if s % 2 == 0:
            ext[s] = blank
            skip[s] = 0.0
        else:
            ext[s] = labels[b, s // 2]
            jump = s >= 3 and labels[b, s // 2] != labels[b, s // 2 - 1]
            skip[s] = 1.0 if jump else 0.0
    skip[S] = 0.0
    skip[S + 1] = 0.0
    return S


@jit
def _softmax_seq(logits, b, n_frames, probs, lse):
    """``probs[t] = softmax(logits[t, b])`` and ``lse[t]`` = log-partition, in float64."""
    C = logits.shape[2]
    for t in range(n_frames):
        row = logits[t, b]
        mx = np.float64(row[0])
        for k in range(1, C):
            if row[k] > mx:
                mx = np.float64(row[k])
        ssum = 0.0
        for k in range(C):
            e = math.exp(np.float64(row[k]) - mx)
            probs[t, k] = e
            ssum += e
        inv = 1.0 / ssum
        for k in range(C):
            probs[t, k] *= inv
        lse[t] = mx + math.log(ssum)


@jit
def _forward_linear(probs, ext, skip, S, n_frames, alpha):
    """Rescaled forward pass; returns (ok, ln p). ok is False when a cell underflows.

    ``alpha`` (T, S + 2): cell s of frame t is ``alpha[t, s + 2]``, each frame
    scaled to sum 1; the first two columns stay 0 so that the recursion needs
    no branches.
    """
    log_scale = 0.0
    for t in range(n_frames):
        lo, hi = _band(S, n_frames, t)
        for c in range(lo + 2):
            alpha[t, c] = 0.0
        for c in range(hi + 3, S + 2):
            alpha[t, c] = 0.0
        csum = 0.0
        bad = False
        if t == 0:
            for s in range(lo, hi + 1):
                v = probs[0, ext[s]]
                alpha[0, s + 2] = v
                csum += v
                bad |= v < _TINY
        else:
            for s in range(lo, hi + 1):
                a = alpha[t - 1, s + 2] + alpha[t - 1, s + 1] + skip[s] * alpha[t - 1, s]
                v = a * probs[t, ext[s]]
                alpha[t, s + 2] = v
                csum += v
                bad |= (v < _TINY) & (a > 0.0)
        if bad or not (csum > 0.0):
            return False, 0.0
        inv = 1.0 / csum
        for s in range(lo + 2, hi + 3):
            alpha[t, s] *= inv
        log_scale += math.log(csum)
    end = alpha[n_frames - 1, S + 1] + alpha[n_frames - 1, S]  # cells S - 1 and S - 2
    return True, log_scale + math.log(end)


@jit
def _backward_grad_linear(probs, ext, skip, S, n_frames, alpha, bt, w, occ, b, scale, dlogits):
    """Rescaled backward pass fused with the gradient; False when the fast path cannot be trusted.

    ``bt`` (2, S + 2) holds beta of frames t and t + 1 (cell s at column s,
    the last two columns 0), each frame's beta unnormalised, the scale being
    folded into the next frame's products. At each frame the occupancies
    alpha * beta are normalised by their sum z, which is p(z|x) times the
    frames' scale factors; ``dlogits[t, b] = scale * (y(t) - occupancy)``.
    """
    C = probs.shape[1]
    cur, nxt = bt[0], bt[1]
    cur[: S + 2] = 0.0
    cur[S - 1] = 1.0
    if S >= 2:
        cur[S - 2] = 1.0
    bsum = 2.0 if S >= 2 else 1.0
    for t in range(n_frames - 1, -1, -1):
        lo, hi = _band(S, n_frames, t)
        if t < n_frames - 1:
            cur, nxt = nxt, cur
            binv = 1.0 / bsum
            top = min(hi + 2, S - 1)
            bad = False
            for s in range(lo, top + 1):
                bv = nxt[s]
                v = bv * (probs[t + 1, ext[s]] * binv)
                w[s] = v
                bad |= (v < _TINY) & (bv > 0.0)
            if bad:
                return False
            w[top + 1] = 0.0
            w[top + 2] = 0.0
            for c in range(lo):
                cur[c] = 0.0
            for c in range(hi + 1, S + 2):
                cur[c] = 0.0
        for k in range(C):
            occ[k] = 0.0
        bsum = 0.0
        z_blank = 0.0  # blank occupancy kept apart: even cells
        z_label = 0.0
        last = t == n_frames - 1
        for s in range(lo, hi + 1):
            if last:
                v = cur[s]
            else:
                v = w[s] + w[s + 1] + skip[s + 2] * w[s + 2]
                cur[s] = v
            bsum += v
            g = alpha[t, s + 2] * v
            if s % 2 == 0:
                z_blank += g
            else:
                z_label += g
                occ[ext[s]] += g
        occ[C - 1] = z_blank
        z = z_blank + z_label
        if not (z >= _TINY_Z and z >= _TINY_Z * bsum and bsum > 0.0):
            return False
        inv = 1.0 / z
        for k in range(C):
            dlogits[t, b, k] = scale * (probs[t, k] - occ[k] * inv)
    return True


@jit
def _logaddexp3(a, b, c):
    """ln(e^a + e^b + e^c), with -inf for zero."""
    m = max(a, max(b, c))
    if m == _NEG_INF:
        return _NEG_INF
    return m + math.log(math.exp(a - m) + math.exp(b - m) + math.exp(c - m))


@jit
def _forward_log(logits, b, lse, ext, skip, S, n_frames, alpha):
    """Log-space forward pass into ``alpha``; returns ln p."""
    for t in range(n_frames):
        lo, hi = _band(S, n_frames, t)
        row = alpha[t]
        row[:S] = _NEG_INF
        for s in range(lo, hi + 1):
            if t == 0:
                a = 0.0
            else:
                a1 = alpha[t - 1, s - 1] if s >= 1 else _NEG_INF
                a2 = alpha[t - 1, s - 2] if skip[s] > 0.0 else _NEG_INF
                a = _logaddexp3(alpha[t - 1, s], a1, a2)
            row[s] = a + (np.float64(logits[t, b, ext[s]]) - lse[t])
    end = alpha[n_frames - 1, S - 1]
    if S >= 2:
        end = _logaddexp3(end, alpha[n_frames - 1, S - 2], _NEG_INF)
    return end


@jit
def _backward_log(logits, b, lse, ext, skip, S, n_frames, beta, w):
    """Log-space backward pass into ``beta``."""
    last = beta[n_frames - 1]
    last[:S] = _NEG_INF
    last[S - 1] = 0.0
    if S >= 2:
        last[S - 2] = 0.0
    for t in range(n_frames - 2, -1, -1):
        w[: S + 2] = _NEG_INF
        for s in range(S):
            w[s] = beta[t + 1, s] + (np.float64(logits[t + 1, b, ext[s]]) - lse[t + 1])
        lo, hi = _band(S, n_frames, t)
        row = beta[t]
        row[:S] = _NEG_INF
        for s in range(lo, hi + 1):
            c = w[s + 2] if skip[s + 2] > 0.0 else _NEG_INF
            row[s] = _logaddexp3(w[s], w[s + 1], c)


@jit
def _grad_log(probs, ext, S, n_frames, alpha, beta, b, scale, occ, g, dlogits):
    """Gradient from log-space alpha and beta (occupancies normalised per frame)."""
    C = probs.shape[1]
    for t in range(n_frames):
        lo, hi = _band(S, n_frames, t)
        m = _NEG_INF
        for s in range(lo, hi + 1):
            g[s] = alpha[t, s] + beta[t, s]
            if g[s] > m:
                m = g[s]
        z = 0.0
        for s in range(lo, hi + 1):
            z += math.exp(g[s] - m)
        log_z = m + math.log(z)
        for k in range(C):
            occ[k] = probs[t, k]
        for s in range(lo, hi + 1):
            occ[ext[s]] -= math.exp(g[s] - log_z)
        for k in range(C):
            dlogits[t, b, k] = scale * occ[k]


@jit
def ctc_loss_grad(
    logits,
    lengths,
    labels,
    label_lengths,
    b_start,
    b_stop,
    grad_scale,
    with_grad,
    force_log,
    losses,
    dlogits,
):
    """CTC loss -ln p(z|x) per sequence and, optionally, its gradient at the softmax input.

    Parameters
    ----------
    logits : (T, B, C) float32 or float64
        Softmax inputs; the blank is output C - 1.
    lengths : (B,) int64
        Frames per sequence, in [1, T].
    labels : (B, U) int64
        Targets; row b's first ``label_lengths[b]`` entries are in [0, C - 1).
    label_lengths : (B,) int64
        Every target feasible: its length plus its adjacent repeats <= lengths[b].
    b_start, b_stop : int
        The sequences computed, ``range(b_start, b_stop)``; only their entries
        of ``losses`` and ``dlogits`` are written (two calls on disjoint
        ranges may run on two threads).
    grad_scale : float
        The gradient written is ``grad_scale * dloss_b / dlogits``.
    with_grad : bool
        False: losses only (``dlogits`` is not touched; pass any array of logits' dtype).
    force_log : bool
        Compute every sequence in log space (the fast path's fallback; for tests).
    losses : (B,) float64, out
    dlogits : (T, B, C) same dtype as logits, out
        Zero at frames >= lengths[b].

    Returns
    -------
    int
        Number of sequences computed in log space.
    """
    T, B, C = logits.shape
    blank = C - 1
    s_max = 2 * labels.shape[1] + 1
    probs = np.empty((T, C), dtype=np.float64)
    lse = np.empty(T, dtype=np.float64)
    alpha = np.empty((T, s_max + 2), dtype=np.float64)
    beta = np.empty((2, s_max + 2), dtype=np.float64)  # all T rows only for log space
    w = np.empty(s_max + 2, dtype=np.float64)
    occ = np.empty(C, dtype=np.float64)
    ext = np.empty(s_max, dtype=np.int64)
    skip = np.empty(s_max + 2, dtype=np.float64)
    n_log = 0
    for b in range(b_start, b_stop):
        n = lengths[b]
        S = _extend(labels, b, label_lengths[b], blank, ext, skip)
        _softmax_seq(logits, b, n, probs, lse)
        ok = not force_log
        if ok:
            ok, log_p = _forward_linear(probs, ext, skip, S, n, alpha)
        if ok and with_grad:
            ok = _backward_grad_linear(
                probs, ext, skip, S, n, alpha, beta[:2], w, occ, b, grad_scale, dlogits
            )
        if not ok:
            n_log += 1
            log_p = _forward_log(logits, b, lse, ext, skip, S, n, alpha)
            if with_grad:
                if beta.shape[0] < T:
                    beta = np.empty((T, s_max + 2), dtype=np.float64)
                _backward_log(logits, b, lse, ext, skip, S, n, beta, w)
                _grad_log(probs, ext, S, n, alpha, beta, b, grad_scale, occ, w, dlogits)
        losses[b] = -log_p
        if with_grad:
            dlogits[n:, b, :] = 0.0
    return n_log


@jit
def _offer(score, cid, top_score, top_id, count, min_i, width):
    """Keep the ``width`` best candidates (ties keep the earlier one); returns (count, min_i)."""
    if count < width:
        top_score[count] = score
        top_id[count] = cid
        count += 1
        if count == width:
            min_i = 0
            for i in range(1, width):
                if top_score[i] < top_score[min_i]:
                    min_i = i
        return count, min_i
    if score <= top_score[min_i]:
        return count, min_i
    top_score[min_i] = score
    top_id[min_i] = cid
    min_i = 0
    for i in range(1, width):
        if top_score[i] < top_score[min_i]:
            min_i = i
    return count, min_i


@jit
def _beam_stays(y, K, nb, beam_node, tree, pb, pnb, s_pb, s_pnb, mark, stamp):
    """One frame of prefix search for the prefixes in the beam.

    ``s_pb[j]``, ``s_pnb[j]``: probability of prefix j at this frame ending in
    a blank / in its last label. A beam prefix that is another beam prefix
    plus one label also receives that extension's probability, and the pair
    (parent position, label) is marked with ``stamp`` so that it is not
    offered again as a new prefix.
    """
    parent, label, node_pos = tree[0], tree[1], tree[4]
    yb = np.float64(y[K])
    for j in range(nb):
        last = label[beam_node[j]]
        s_pb[j] = (pb[j] + pnb[j]) * yb
        s_pnb[j] = pnb[j] * np.float64(y[last]) if last >= 0 else 0.0
    for i in range(nb):
        node = beam_node[i]
        par = parent[node]
        if par >= 0 and node_pos[par] >= 0:
            j = node_pos[par]
            k = label[node]
            s_pnb[i] += _extension(pb[j], pnb[j], label[beam_node[j]], k, y)
            mark[j, k] = stamp


@jit
def _extension(pb, pnb, last, k, y):
    """Probability of a prefix extended by label k at this frame (after a blank if k repeats)."""
    return (pb if k == last else pb + pnb) * np.float64(y[k])


@jit
def _child(par, k, tree, n_nodes):
    """The prefix tree's node for prefix ``par`` + label k, created if new; returns (node, n_nodes).

    ``tree`` rows: parent, label, first child, next sibling, position in the
    beam (-1: not in it). One node per distinct prefix, so a prefix pruned
    from the beam and found again is the same node.
    """
    c = tree[2, par]
    while c >= 0:
        if tree[1, c] == k:
            return c, n_nodes
        c = tree[3, c]
    c = n_nodes
    tree[0, c] = par
    tree[1, c] = k
    tree[2, c] = -1
    tree[3, c] = tree[2, par]
    tree[4, c] = -1
    tree[2, par] = c
    return c, n_nodes + 1


@jit
def _prefix_search_seq(probs, b, n_frames, width, st, tree, out_labels):
    """Prefix beam search over one sequence; returns (prefix length, ln of its beam probability).

    ``st`` (7, width) float64 scratch rows: pb, pnb, stay pb, stay pnb, top scores,
    new pb, new pnb; ``tree`` (5, 1 + T * width) int64, see :func:`_child`;
    ``out_labels[b, :length]`` receives the best prefix.
    """
    K = probs.shape[2] - 1
    parent, label, node_pos = tree[0], tree[1], tree[4]
    pb, pnb, s_pb, s_pnb, top_score, n_pb, n_pnb = st[0], st[1], st[2], st[3], st[4], st[5], st[6]
    mark = np.full((width, K), -1, dtype=np.int64)
    beam_node = np.zeros(width, dtype=np.int64)
    new_node = np.zeros(width, dtype=np.int64)
    top_id = np.zeros(width, dtype=np.int64)
    tree[:, 0] = -1
    n_nodes, nb, log_scale = 1, 1, 0.0
    pb[0], pnb[0] = 1.0, 0.0
    for t in range(n_frames):
        for j in range(nb):
            node_pos[beam_node[j]] = j
        y = probs[t, b]
        _beam_stays(y, K, nb, beam_node, tree, pb, pnb, s_pb, s_pnb, mark, t)
        count, min_i = 0, 0
        for j in range(nb):
            count, min_i = _offer(s_pb[j] + s_pnb[j], j, top_score, top_id, count, min_i, width)
        y_max = 0.0
        for k in range(K):
            y_max = max(y_max, np.float64(y[k]))
        for j in range(nb):
            if count == width and (pb[j] + pnb[j]) * y_max <= top_score[min_i]:
                continue  # no extension of prefix j can enter the beam
            last = label[beam_node[j]]
            for k in range(K):
                e = _extension(pb[j], pnb[j], last, k, y)
                if (count == width and e <= top_score[min_i]) or mark[j, k] == t:
                    continue  # not among the best, or merged into a beam prefix
                count, min_i = _offer(e, width + j * K + k, top_score, top_id, count, min_i, width)
        for j in range(nb):
            node_pos[beam_node[j]] = -1
        m = 0.0
        for i in range(count):
            cid = top_id[i]
            if cid < width:
                new_node[i], n_pb[i], n_pnb[i] = beam_node[cid], s_pb[cid], s_pnb[cid]
            else:
                j, k = (cid - width) // K, (cid - width) % K
                node, n_nodes = _child(beam_node[j], k, tree, n_nodes)
                e = _extension(pb[j], pnb[j], label[beam_node[j]], k, y)
                new_node[i], n_pb[i], n_pnb[i] = node, 0.0, e
            m = max(m, n_pb[i] + n_pnb[i])
        inv = 1.0 / m if m > 0.0 else 1.0
        log_scale += math.log(m) if m > 0.0 else _NEG_INF
        nb = count
        for i in range(nb):
            beam_node[i], pb[i], pnb[i] = new_node[i], n_pb[i] * inv, n_pnb[i] * inv
    best = 0
    for i in range(1, nb):
        if pb[i] + pnb[i] > pb[best] + pnb[best]:
            best = i
    n = 0
    node = beam_node[best]
    while node > 0:
        n += 1
        node = parent[node]
    node = beam_node[best]
    for i in range(n - 1, -1, -1):
        out_labels[b, i] = label[node]
        node = parent[node]
    return n, log_scale + math.log(pb[best] + pnb[best])


@jit
def prefix_beam_search(probs, lengths, width, out_labels, out_lengths, out_log_probs):
    """CTC prefix beam search (Graves et al. 2006, section 3.2) over a batch.

    Parameters
    ----------
    probs : (T, B, C) float
        Output probabilities, blank last; non-negative and finite.
    lengths : (B,) int64
        In [1, T].
    width : int
        Beam width >= 1.
    out_labels : (B, T) int64, out
        Row b's first ``out_lengths[b]`` entries receive the most probable prefix.
    out_lengths : (B,) int64, out
    out_log_probs : (B,) float64, out
        ln of that prefix's probability as accumulated in the beam (a lower
        bound of p(prefix|x): paths through pruned prefixes are not counted).
    """
    T, B, C = probs.shape
    tree = np.empty((5, 1 + T * width), dtype=np.int64)
    st = np.zeros((7, width), dtype=np.float64)
    for b in range(B):
        n, lp = _prefix_search_seq(probs, b, lengths[b], width, st, tree, out_labels)
        out_lengths[b] = n
        out_log_probs[b] = lp


@jit
def edit_distances(ref, ref_offsets, hyp, hyp_offsets, out):
    """Levenshtein distances with substitution / deletion / insertion counts.

    Pair i is ``ref[ref_offsets[i]:ref_offsets[i+1]]`` against the same slice
    of ``hyp``. ``out[i]`` = (distance, substitutions, deletions, insertions).
    The backtrace, from the end, takes a diagonal step (match or substitution)
    whenever it is optimal, else a deletion, else an insertion, so the counts
    are one fixed choice among the optimal alignments.
    """
    N = out.shape[0]
    max_r, max_h = 0, 0
    for i in range(N):
        max_r = max(max_r, ref_offsets[i + 1] - ref_offsets[i])
        max_h = max(max_h, hyp_offsets[i + 1] - hyp_offsets[i])
    D = np.empty((max_r + 1, max_h + 1), dtype=np.int64)
    for i in range(N):
        r = ref[ref_offsets[i] : ref_offsets[i + 1]]
        h = hyp[hyp_offsets[i] : hyp_offsets[i + 1]]
        n, m = r.shape[0], h.shape[0]
        for a in range(n + 1):
            D[a, 0] = a
        for c in range(m + 1):
            D[0, c] = c
        for a in range(1, n + 1):
            for c in range(1, m + 1):
                d = D[a - 1, c - 1] + (1 if r[a - 1] != h[c - 1] else 0)
                d = min(d, D[a - 1, c] + 1)
                D[a, c] = min(d, D[a, c - 1] + 1)
        n_sub, n_del, n_ins = 0, 0, 0
        a, c = n, m
        while a > 0 or c > 0:
            if a > 0 and c > 0:
                cost = 1 if r[a - 1] != h[c - 1] else 0
                if D[a, c] == D[a - 1, c - 1] + cost:
                    n_sub += cost
                    a -= 1
                    c -= 1
                    continue
            if a > 0 and D[a, c] == D[a - 1, c] + 1:
                n_del += 1
                a -= 1
            else:
                n_ins += 1
                c -= 1
        out[i, 0] = D[n, m]
        out[i, 1] = n_sub
        out[i, 2] = n_del
        out[i, 3] = n_ins
