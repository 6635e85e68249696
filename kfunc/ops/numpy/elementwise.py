"""Element-wise ops of ``keras.ops`` (NumPy names): arithmetic, math functions, comparisons,
logical and bitwise ops. Arguments broadcast as in NumPy; Python numbers and lists are accepted.

Float-valued functions (``sqrt``, ``exp``, ``floor`` ...) of integer or boolean inputs return
floatx (float32), as Keras 3; ``divide`` of integers returns float32 too.
"""

from __future__ import annotations

import jax.numpy as jnp

from kfunc.ops.arrays import as_array, as_float_array, float_dtype
from kfunc.ops.operation import operation


def _unary(name: str, function, doc: str, *, floating: bool = False):
    """The op ``name(x)``: ``function`` element-wise; ``floating``: integers computed as floatx."""
    convert = as_float_array if floating else as_array

    def unary(x):
        return function(convert(x))

    unary.__name__ = unary.__qualname__ = name
    unary.__doc__ = f"{doc}, element-wise; ``x`` of any shape, result of the same shape."
    return operation(name)(unary)


def _binary(name: str, function, doc: str, *, floating: bool = False, names=("x1", "x2")):
    """The op ``name(x1, x2)``: ``function`` of the broadcast arguments; ``floating``: integers
    computed as floatx. ``names``: Keras names the bitwise ops' arguments ``(x, y)``."""

    def compute(first, second):
        first, second = as_array(first), as_array(second)
        if floating:
            dtype = float_dtype(jnp.result_type(first, second))
            first, second = first.astype(dtype), second.astype(dtype)
        return function(first, second)

    if names == ("x", "y"):
        def binary(x, y):
            return compute(x, y)
    else:
        def binary(x1, x2):
            return compute(x1, x2)

    binary.__name__ = binary.__qualname__ = name
    binary.__doc__ = f"{doc}; the arguments broadcast against each other (NumPy rules)."
    return operation(name)(binary)


# ---------------------------------------------------------------- arithmetic
add = _binary("add", jnp.add, "``x1 + x2``")
subtract = _binary("subtract", jnp.subtract, "``x1 - x2``")
multiply = _binary("multiply", jnp.multiply, "``x1 * x2``")
divide = _binary("divide", jnp.divide, "``x1 / x2`` (true division: integers give float32)")
true_divide = _binary("true_divide", jnp.true_divide, "``x1 / x2``, the same as ``divide``")
floor_divide = _binary("floor_divide", jnp.floor_divide, "``x1 // x2``")
mod = _binary("mod", jnp.mod, "``x1 % x2`` (the result has the sign of ``x2``)")
fmod = _binary("fmod", jnp.fmod, "C's ``fmod``: the remainder has the sign of ``x1``")
power = _binary("power", jnp.power, "``x1 ** x2``")
maximum = _binary("maximum", jnp.maximum, "The larger of ``x1`` and ``x2`` (NaN if either is NaN)")
minimum = _binary("minimum", jnp.minimum, "The smaller of ``x1`` and ``x2`` (NaN if either is NaN)")
fmax = _binary("fmax", jnp.fmax, "The larger of ``x1`` and ``x2``, ignoring NaNs")
fmin = _binary("fmin", jnp.fmin, "The smaller of ``x1`` and ``x2``, ignoring NaNs")
arctan2 = _binary("arctan2", jnp.arctan2, "The angle of the point ``(x2, x1)``", floating=True)
hypot = _binary("hypot", jnp.hypot, "``sqrt(x1**2 + x2**2)``")
logaddexp = _binary("logaddexp", jnp.logaddexp, "``log(exp(x1) + exp(x2))``, computed stably", floating=True)
logaddexp2 = _binary("logaddexp2", jnp.logaddexp2, "``log2(2**x1 + 2**x2)``, computed stably", floating=True)
heaviside = _binary("heaviside", jnp.heaviside, "The step function: 0 below zero, 1 above, ``x2`` at zero")


def _divide_no_nan(x1, x2):
    safe = jnp.where(x2 == 0, 1, x2)
    return jnp.where(x2 == 0, 0, jnp.divide(x1, safe))


divide_no_nan = _binary("divide_no_nan", _divide_no_nan, "``x1 / x2``, and 0 where ``x2`` is 0")

negative = _unary("negative", jnp.negative, "``-x``")
absolute = _unary("absolute", jnp.absolute, "``|x|``")
abs = _unary("abs", jnp.absolute, "``|x|`` (alias of ``absolute``)")
fabs = _unary("fabs", jnp.fabs, "``|x|`` as a float")
sign = _unary("sign", jnp.sign, "-1, 0 or 1 by the sign of ``x``")
square = _unary("square", jnp.square, "``x * x``")
sqrt = _unary("sqrt", jnp.sqrt, "The square root", floating=True)
cbrt = _unary("cbrt", jnp.cbrt, "The cube root")
reciprocal = _unary("reciprocal", jnp.reciprocal, "``1 / x``")
copy = _unary("copy", jnp.copy, "A copy of ``x``")
conj = _unary("conj", jnp.conjugate, "The complex conjugate")
conjugate = _unary("conjugate", jnp.conjugate, "The complex conjugate (alias of ``conj``)")
real = _unary("real", jnp.real, "The real part")
imag = _unary("imag", jnp.imag, "The imaginary part")
signbit = _unary("signbit", jnp.signbit, "Whether the sign bit is set (True for -0.0)")

# ---------------------------------------------------------------- exponentials, logs, trigonometry
exp = _unary("exp", jnp.exp, "``e ** x``", floating=True)
exp2 = _unary("exp2", jnp.exp2, "``2 ** x``", floating=True)
expm1 = _unary("expm1", jnp.expm1, "``exp(x) - 1``, accurate near 0", floating=True)
log = _unary("log", jnp.log, "The natural logarithm", floating=True)
log2 = _unary("log2", jnp.log2, "The base-2 logarithm", floating=True)
log10 = _unary("log10", jnp.log10, "The base-10 logarithm", floating=True)
log1p = _unary("log1p", jnp.log1p, "``log(1 + x)``, accurate near 0", floating=True)
sin = _unary("sin", jnp.sin, "The sine", floating=True)
cos = _unary("cos", jnp.cos, "The cosine", floating=True)
tan = _unary("tan", jnp.tan, "The tangent", floating=True)
arcsin = _unary("arcsin", jnp.arcsin, "The inverse sine", floating=True)
arccos = _unary("arccos", jnp.arccos, "The inverse cosine", floating=True)
arctan = _unary("arctan", jnp.arctan, "The inverse tangent", floating=True)
sinh = _unary("sinh", jnp.sinh, "The hyperbolic sine", floating=True)
cosh = _unary("cosh", jnp.cosh, "The hyperbolic cosine", floating=True)
tanh = _unary("tanh", jnp.tanh, "The hyperbolic tangent", floating=True)
arcsinh = _unary("arcsinh", jnp.arcsinh, "The inverse hyperbolic sine", floating=True)
arccosh = _unary("arccosh", jnp.arccosh, "The inverse hyperbolic cosine", floating=True)
arctanh = _unary("arctanh", jnp.arctanh, "The inverse hyperbolic tangent", floating=True)
sinc = _unary("sinc", jnp.sinc, "``sin(pi x) / (pi x)``", floating=True)
deg2rad = _unary("deg2rad", jnp.deg2rad, "Degrees to radians", floating=True)
rad2deg = _unary("rad2deg", jnp.rad2deg, "Radians to degrees", floating=True)

# ---------------------------------------------------------------- rounding
floor = _unary("floor", jnp.floor, "The largest integer not above ``x`` (as a float)", floating=True)
ceil = _unary("ceil", jnp.ceil, "The smallest integer not below ``x`` (as a float)", floating=True)


@operation("trunc")
def trunc(x):
    """``x`` rounded toward zero, element-wise; integers and booleans are returned unchanged."""
    x = as_array(x)
    return x if not jnp.issubdtype(x.dtype, jnp.inexact) else jnp.trunc(x)


@operation("round")
def round(x, decimals=0):
    """``x`` rounded half to even to ``decimals`` places (negative: tens, hundreds ...); shape of ``x``."""
    x = as_array(x)
    if jnp.issubdtype(x.dtype, jnp.integer) and decimals < 0:
        # jnp.round does not take negative decimals for integers: round in floatx, cast back.
        factor = jnp.asarray(10.0**decimals, jnp.float32)
        return (jnp.round(x.astype(jnp.float32) * factor) / factor).astype(x.dtype)
    return jnp.round(x, decimals=decimals)


@operation("nan_to_num")
def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """``x`` with NaN replaced by ``nan`` and infinities by ``posinf``/``neginf`` (default: the
    largest finite values of the dtype)."""
    return jnp.nan_to_num(as_array(x), nan=nan, posinf=posinf, neginf=neginf)


# ---------------------------------------------------------------- comparisons and predicates
equal = _binary("equal", jnp.equal, "``x1 == x2`` as booleans")
not_equal = _binary("not_equal", jnp.not_equal, "``x1 != x2`` as booleans")
less = _binary("less", jnp.less, "``x1 < x2`` as booleans")
less_equal = _binary("less_equal", jnp.less_equal, "``x1 <= x2`` as booleans")
greater = _binary("greater", jnp.greater, "``x1 > x2`` as booleans")
greater_equal = _binary("greater_equal", jnp.greater_equal, "``x1 >= x2`` as booleans")
isnan = _unary("isnan", jnp.isnan, "Whether ``x`` is NaN")
isinf = _unary("isinf", jnp.isinf, "Whether ``x`` is infinite")
isneginf = _unary("isneginf", jnp.isneginf, "Whether ``x`` is minus infinity")
isposinf = _unary("isposinf", jnp.isposinf, "Whether ``x`` is plus infinity")
isfinite = _unary("isfinite", jnp.isfinite, "Whether ``x`` is finite")


@operation("isclose")
def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    """``|x1 - x2| <= atol + rtol * |x2|`` element-wise, as booleans of the broadcast shape."""
    return jnp.isclose(as_array(x1), as_array(x2), rtol=rtol, atol=atol, equal_nan=equal_nan)


@operation("isin")
def isin(x1, x2, assume_unique=False, invert=False):
    """Whether each element of ``x1`` occurs in ``x2`` (not, with ``invert``), as booleans."""
    return jnp.isin(as_array(x1), as_array(x2), assume_unique=assume_unique, invert=invert)


@operation("allclose")
def allclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    """Whether ``isclose`` holds everywhere: a boolean scalar."""
    return jnp.allclose(as_array(x1), as_array(x2), rtol=rtol, atol=atol, equal_nan=equal_nan)


# ---------------------------------------------------------------- logical and bitwise
logical_and = _binary("logical_and", jnp.logical_and, "``x1 and x2`` as booleans")
logical_or = _binary("logical_or", jnp.logical_or, "``x1 or x2`` as booleans")
logical_xor = _binary("logical_xor", jnp.logical_xor, "``x1 xor x2`` as booleans")
logical_not = _unary("logical_not", jnp.logical_not, "``not x`` as booleans")
bitwise_and = _binary("bitwise_and", jnp.bitwise_and, "Bitwise ``x & y`` of integers", names=("x", "y"))
bitwise_or = _binary("bitwise_or", jnp.bitwise_or, "Bitwise ``x | y`` of integers", names=("x", "y"))
bitwise_xor = _binary("bitwise_xor", jnp.bitwise_xor, "Bitwise ``x ^ y`` of integers", names=("x", "y"))
left_shift = _binary("left_shift", jnp.left_shift, "``x << y`` of integers", names=("x", "y"))
right_shift = _binary("right_shift", jnp.right_shift, "``x >> y`` of integers", names=("x", "y"))
bitwise_invert = _unary("bitwise_invert", jnp.invert, "Bitwise ``~x`` of integers")
bitwise_not = _unary("bitwise_not", jnp.invert, "Bitwise ``~x`` of integers (alias of ``bitwise_invert``)")
bitwise_left_shift = _binary("bitwise_left_shift", jnp.left_shift, "``x << y`` of integers (alias of ``left_shift``)",
                             names=("x", "y"))
bitwise_right_shift = _binary("bitwise_right_shift", jnp.right_shift,
                              "``x >> y`` of integers (alias of ``right_shift``)", names=("x", "y"))

# ---------------------------------------------------------------- number theory, float bits, complex parts
gcd = _binary("gcd", jnp.gcd, "The greatest common divisor of integers")
lcm = _binary("lcm", jnp.lcm, "The least common multiple of integers")


@operation("ldexp")
def ldexp(x1, x2):
    """``x1 * 2**x2`` element-wise (``x2``: integers); integer ``x1`` gives floatx."""
    x1, x2 = as_float_array(x1), as_array(x2)
    if not jnp.issubdtype(x2.dtype, jnp.integer):
        raise TypeError(f"kfunc.ops.ldexp expects integer exponents x2, received dtype {x2.dtype}; cast them with "
                        "ops.cast(x2, 'int32').")
    return jnp.ldexp(x1, x2)


nextafter = _binary("nextafter", jnp.nextafter, "The next float after ``x1`` in the direction of ``x2``", floating=True)
angle = _unary("angle", jnp.angle, "The angle of a complex number in radians (0 or pi for real numbers)", floating=True)
i0 = _unary("i0", jnp.i0, "The modified Bessel function of the first kind, order 0", floating=True)
isreal = _unary("isreal", jnp.isreal, "Whether the imaginary part is zero (True for every real number)")

__all__ = [name for name, value in dict(globals()).items() if getattr(value, "operation_name", None)]
