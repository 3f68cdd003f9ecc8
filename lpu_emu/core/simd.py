"""Register tiles of the float ACC batch, written as LLVM vector IR (numba `intrinsic`s).

`fast_loop.batch_compute_float` keeps the MXM's float definition (reference mxm.acc: k
ascending, `s = s + x*w` in fp32, one rounding per step), so BLAS, which reassociates, cannot do
it. Written as numba loops, the kernel kept each accumulator row in memory: every step loaded and
stored it again (8 loads and 8 stores per 8 multiply-adds), ~2.4x numpy's sgemm of the same
shapes; LLVM's SLP vectoriser left a register-blocked scalar version scalar (~12x). Here a tile
of R accumulator rows x V vectors of `LANES` columns lives in vector registers for all K steps:
per step, V weight vectors are loaded once, each row's x_k is broadcast, and R*V vector
multiply-adds accumulate, in exactly the defined order and roundings: plain `fmul` then `fadd`,
or, for inputs whose products are exact in fp32 (fp16, fp8), the pair marked `contract` so
LLVM may fuse it into an FMA (the same bits). Measured on this machine's class (bench/README.md,
`float_acc_batch`): the batch kernel at ~1x sgemm.

A tile's arguments are trusted (the jitted core computes them): rows i..i+R-1 of `xb` (the
batch's x, fp32) and `yb` (the accumulators, holding their start values), columns
j0..j0+V*LANES-1 of `yb` and `w`, steps k < rows, and `skip[k]` true where step k changes no
accumulator of the group (fast_loop.skip_row) and is left out.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# fp32 columns per vector: one AVX-512 register (a machine with narrower vectors gets the same
# code split by LLVM's legaliser: correct, and about as fast per lane)
LANES = 16


def _item_pointer(context, builder, aty, arr, indices):
    """Pointer to arr[indices] (numba's own address arithmetic: strides and layout)."""
    return cgutils.get_item_pointer2(
        context, builder, data=arr.data, shape=cgutils.unpack_tuple(builder, arr.shape),
        strides=cgutils.unpack_tuple(builder, arr.strides), layout=aty.layout, inds=indices)


def _broadcast(builder, value, vec: ir.VectorType):
    """A vector holding `value` in every lane."""
    undef = ir.Constant(vec, ir.Undefined)
    first = builder.insert_element(undef, value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, undef, ir.Constant(ir.VectorType(ir.IntType(32),
                                                                          vec.count), None))


def _typed(xb, w, yb, skip) -> bool:
    """The tile's array arguments are what it was written for: 2-D fp32 arrays contiguous along
    their rows (a vector load reads LANES neighbours), a 1-D boolean skip."""
    rows_contiguous = all(isinstance(a, types.Array) and a.ndim == 2 and a.dtype == types.float32
                          and a.layout == "C" for a in (xb, w, yb))
    return rows_contiguous and isinstance(skip, types.Array) and skip.dtype == types.boolean


def make_tile(rows_per_tile: int, vectors: int, contract: bool):
    """An intrinsic tile(xb, w, yb, i, j0, steps, skip) for `rows_per_tile` ACCs x `vectors`
    vectors of columns (see the module docstring); `contract`: the multiply-add may be one FMA."""
    flags = ("contract",) if contract else ()

    @intrinsic
    def tile(typingctx, xb, w, yb, i, j0, steps, skip):
        if not (_typed(xb, w, yb, skip)
                and all(isinstance(n, types.Integer) for n in (i, j0, steps))):
            return None
        sig = types.void(xb, w, yb, i, j0, steps, skip)

        def codegen(context, builder, signature, args):
            x_arr, w_arr, y_arr = (context.make_array(t)(context, builder, a)
                                   for t, a in zip((xb, w, yb), args[:3], strict=True))
            s_arr = context.make_array(skip)(context, builder, args[6])
            row0, col0, n = (context.cast(builder, a, t, types.intp)
                             for a, t in zip(args[3:6], signature.args[3:6], strict=True))
            intp = context.get_value_type(types.intp)
            vec = ir.VectorType(ir.FloatType(), LANES)

            def at(r: int, v: int, arr, aty, k=None):
                """Vector pointer to columns j0 + v*LANES.. of row i + r (or of W's row k)."""
                row = k if k is not None else builder.add(row0, ir.Constant(intp, r))
                col = builder.add(col0, ir.Constant(intp, v * LANES))
                return builder.bitcast(_item_pointer(context, builder, aty, arr, [row, col]),
                                       vec.as_pointer())

            # the accumulators as allocas: LLVM's mem2reg keeps them in registers across the loop
            accs = {}
            for r in range(rows_per_tile):
                for v in range(vectors):
                    accs[r, v] = cgutils.alloca_once(builder, vec)
                    builder.store(builder.load(at(r, v, y_arr, yb), align=4), accs[r, v])
            with cgutils.for_range(builder, n) as loop:
                k = loop.index
                left_out = builder.load(_item_pointer(context, builder, skip, s_arr, [k]))
                with builder.if_then(builder.icmp_unsigned("==", left_out,
                                                           ir.Constant(left_out.type, 0)),
                                     likely=True):
                    wk = [builder.load(at(0, v, w_arr, w, k=k), align=4) for v in range(vectors)]
                    for r in range(rows_per_tile):
                        row = builder.add(row0, ir.Constant(intp, r))
                        u = _broadcast(builder, builder.load(
                            _item_pointer(context, builder, xb, x_arr, [row, k])), vec)
                        for v in range(vectors):
                            product = builder.fmul(u, wk[v], flags=flags)
                            total = builder.fadd(builder.load(accs[r, v]), product, flags=flags)
                            builder.store(total, accs[r, v])
            for (r, v), slot in accs.items():
                builder.store(builder.load(slot), at(r, v, y_arr, yb), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


# the tiles batch_compute_float uses: enough independent multiply-adds per step to cover their
# latency, each without and with contraction; COLUMNS: the columns one tile covers
tile8, tile8_fma = make_tile(8, 1, False), make_tile(8, 1, True)
tile4, tile4_fma = make_tile(4, 2, False), make_tile(4, 2, True)
tile1, tile1_fma = make_tile(1, 4, False), make_tile(1, 4, True)
COLUMNS8, COLUMNS4, COLUMNS1 = LANES, 2 * LANES, 4 * LANES
