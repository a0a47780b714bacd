"""Flags two threads pass to each other without sleeping (atomic loads and stores).

On a machine whose idle cores halt at once (virtual machines without halt
polling), waking a thread that sleeps on a lock takes tens of microseconds,
longer than many of the products it would compute. :mod:`seqprop._parallel`
therefore hands work to its worker thread, and waits for it, by spinning on
an int64 flag inside compiled code (the GIL released): a store of a new
value with *release* ordering (everything written before it is visible to the
other thread first) and loads with *acquire* ordering (nothing read after it
is read early). The loads and stores are LLVM atomics emitted through numba
intrinsics, so the compiler can neither keep a flag in a register nor move
other memory accesses across it.
"""

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from seqprop.kernels._jit import jit

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
_PAUSE = "llvm.x86.sse2.pause"


@intrinsic
def _load_acquire(typingctx, arr, idx):
    """``arr[idx]`` read with an atomic acquire load (int64 ``arr``)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.int64(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        return builder.load_atomic(ptr, ordering="acquire", align=8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, arr, idx, val):
    """``arr[idx] = val`` with an atomic release store (int64 ``arr``)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        return None
    sig = types.void(arr, idx, types.int64)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(val, ptr, ordering="release", align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _spin_pause(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``) where there is one, else nothing: a
    spinning thread then leaves the core's resources, and its power budget, to the
    other thread, and leaves its loop at once when the flag changes."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if context.address_size == 64 and _X86:
            fnty = ir.FunctionType(ir.VoidType(), [])
            builder.call(cgutils.get_or_insert_function(builder.module, fnty, _PAUSE), [])
        return context.get_dummy_value()

    return sig, codegen


@jit
def publish(flags, idx, value):
    """``flags[idx] = value`` (release): what was written before is visible first."""
    _store_release(flags, idx, value)


@jit
def start_worker(launch_flags, launch_idx, launch_value):
    """A :func:`seqprop._parallel.run_pair` launch, first thing in the first callable's
    kernel (the GIL then free): :func:`publish` ``launch_value``, nothing when
    ``launch_flags`` is empty (:data:`seqprop._parallel.NO_LAUNCH`)."""
    if launch_flags.shape[0] > 0:
        _store_release(launch_flags, launch_idx, launch_value)


@jit
def wait_for(flags, idx, value, max_spins):
    """Spin until ``flags[idx] >= value``; True, or False after ``max_spins`` looks."""
    for _ in range(max_spins):
        if _load_acquire(flags, idx) >= value:
            return True
        _spin_pause()
    return False


@jit
def publish_and_wait(flags, idx, value, wait_idx, wait_value, max_spins):
    """:func:`publish`, then :func:`wait_for` ``flags[wait_idx] >= wait_value``, in one
    call, so that the GIL is already released when the other thread sees ``value``."""
    _store_release(flags, idx, value)
    return wait_for(flags, wait_idx, wait_value, max_spins)


@jit
def wait_or_abort(flags, idx, value, abort_idx):
    """Spin until ``flags[idx] >= value`` (True) or ``flags[abort_idx] != 0`` (False).

    For a consumer that follows a producer running at the same time on the
    other thread (:func:`seqprop._parallel.run_pair`): the producer publishes
    its progress, or the abort flag if it fails before it starts."""
    while True:
        if _load_acquire(flags, idx) >= value:
            return True
        if _load_acquire(flags, abort_idx) != 0:
            return False
        _spin_pause()
