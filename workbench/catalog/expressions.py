"""The restricted expression language of the catalog (docs/expressions.md).

Every expression the catalog or a stored cube holds (``expression`` rules, ``derived`` columns,
feature ``where`` and ``derived``, measure ``where``, derived measures, query ``having``) is
parsed here with :mod:`ast` into a tree of allowed constructs only, then compiled to closures
that apply vectorised pandas and numpy operations to a DataFrame. Nothing is looked up by a
name the text supplies: columns come from the frame, functions and methods from the tables
below, so catalog text can compute but never run code.
"""

from __future__ import annotations

import ast
import functools
import io
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator

from workbench.catalog.expression_functions import (
    DT_METHODS,
    DT_PROPERTIES,
    FUNCTIONS,
    METHODS,
    STR_METHODS,
    SUMMARY,
    Call,
)
from workbench.errors import CatalogError
from workbench.lazy import LazyModule

# Parsing needs neither; only evaluating does (and `workbench --help` should not load them).
np = LazyModule("numpy")
pd = LazyModule("pandas")

# Bounds on untrusted text: Python's own parser recurses, and each node costs a closure.
MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_NODES = 400

Run = Callable[..., Any]  # DataFrame -> Series or scalar


class ExpressionError(CatalogError, ValueError):
    """An expression uses a construct outside the language, or cannot be evaluated.

    A ``ValueError`` too, so pydantic validators report it under the key path of the catalog.
    """


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
}

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Expression:
    """A parsed, validated expression; ``columns`` are the names it reads, in order."""

    text: str
    columns: tuple[str, ...]
    run: Run = field(repr=False, compare=False)

    def evaluate(self, df: pd.DataFrame) -> pd.Series:
        """The value for every row of ``df`` (a scalar result is repeated)."""
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            raise ExpressionError(
                f"expression {_shown(self.text)}: {missing} are not columns "
                f"(columns: {', '.join(map(str, df.columns))}). Fix the name in the catalog."
            )
        try:
            with np.errstate(all="ignore"):  # x / 0 and log(0) give inf and nan, as in pandas
                value = self.run(df)
        except ExpressionError:
            raise
        except Exception as exc:  # pandas and numpy raise many types on mismatched data
            raise ExpressionError(
                f"expression {_shown(self.text)} cannot be evaluated: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(value, pd.Series):
            return value
        if np.ndim(value):
            return pd.Series(value, index=df.index)
        return pd.Series([value] * len(df), index=df.index)


def evaluate(text: str, df: pd.DataFrame) -> pd.Series:
    """Parse (cached) and evaluate ``text`` over ``df``.

    Examples
    --------
    >>> df = pd.DataFrame({"a": [1, 5], "b": [2.0, None]})
    >>> evaluate("a > 2 | b.isna()", df).tolist()
    [False, True]
    """
    return parse_expression(text).evaluate(df)


def expression_columns(text: str | None) -> list[str]:
    """The column names an expression reads (none for an empty one)."""
    return list(parse_expression(text).columns) if text else []


def check_expression(text: Any) -> str:
    """Pydantic validator: ``text`` unchanged when it parses, else an :class:`ExpressionError`."""
    if text is not None:
        parse_expression(text)
    return text


# A catalog field holding an expression: checked when the catalog loads, so a refused
# construct is reported under its key path (``datasets.orders.rules[6].expr``).
ExpressionText = Annotated[str, AfterValidator(check_expression)]


@functools.lru_cache(maxsize=512)
def parse_expression(text: str) -> Expression:
    """Parse ``text`` into an :class:`Expression`, refusing anything outside the language."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression is text, not {type(text).__name__}: {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression of {len(text)} characters is longer than the {MAX_LENGTH} allowed; "
            "split it into derived columns."
        )
    tree = _parse(text)
    compiler = _Compiler(text)
    run = compiler.compile(tree.body, 0)
    return Expression(text, tuple(dict.fromkeys(compiler.columns)), run)


def _parse(text: str) -> ast.Expression:
    try:
        return ast.parse(_boolean_precedence(text.strip()), mode="eval")
    except (SyntaxError, tokenize.TokenError, RecursionError, MemoryError, ValueError) as exc:
        hint = " (`@` local variables are not allowed)" if "@" in text else ""
        raise ExpressionError(
            f"expression {_shown(text)} is not valid: {getattr(exc, 'msg', exc)}{hint}. "
            "See docs/expressions.md for the grammar."
        ) from None


def _boolean_precedence(text: str) -> str:
    """``&`` and ``|`` as ``and`` and ``or``, as pandas.eval reads them: ``a > 1 & b < 2``
    means ``(a > 1) & (b < 2)``, not Python's ``a > (1 & b) < 2``."""
    tokens = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in ("&", "|"):
            tokens.append((tokenize.NAME, "and" if tok.string == "&" else "or"))
        else:
            tokens.append((tok.type, tok.string))
    return tokenize.untokenize(tokens)


def _shown(text: str) -> str:
    """The expression as a message quotes it: whole when short."""
    return repr(text if len(text) <= 120 else text[:100] + " ...")


def _construct(node: ast.AST) -> str:
    """How a refused node is named in a message."""
    try:
        source = ast.unparse(node)
    except Exception:  # unparse covers every node the parser makes; this is belt and braces
        source = type(node).__name__
    return f"{type(node).__name__.lower()} `{source[:60]}`"


class _Compiler:
    """Walks the tree once: refuses what is not allowed, returns a closure for the rest."""

    def __init__(self, text: str):
        self.text = text
        self.columns: list[str] = []
        self.nodes = 0

    def refuse(self, what: str, allowed: str = SUMMARY) -> ExpressionError:
        return ExpressionError(
            f"{what} is not allowed in expression {_shown(self.text)}; allowed: {allowed}. "
            "See docs/expressions.md."
        )

    def compile(self, node: ast.AST, depth: int) -> Run:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise ExpressionError(
                f"expression {_shown(self.text)} nests deeper than {MAX_DEPTH} or has more "
                f"than {MAX_NODES} parts; split it into derived columns."
            )
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            raise self.refuse(_construct(node))
        return handler(node, depth + 1)

    def _Constant(self, node: ast.Constant, depth: int) -> Run:
        value = node.value
        if not isinstance(value, (bool, int, float, str)):
            raise self.refuse(_construct(node))
        return lambda df: value

    def _Name(self, node: ast.Name, depth: int) -> Run:
        name = node.id
        if name.startswith("__"):
            raise self.refuse(f"name '{name}'", "column names (none begins with '__')")
        self.columns.append(name)
        return lambda df: df[name]

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Run:
        operand = self.compile(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return lambda df: -operand(df)
        if isinstance(node.op, ast.UAdd):
            return operand
        return lambda df: _negate(operand(df))  # not, ~: elementwise, as in pandas.eval

    def _BinOp(self, node: ast.BinOp, depth: int) -> Run:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.refuse(f"operator {_construct(node)}")
        left, right = self.compile(node.left, depth), self.compile(node.right, depth)
        return lambda df: _arithmetic(op, left(df), right(df))

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> Run:
        parts = [self.compile(v, depth) for v in node.values]
        combine = _BINARY[ast.BitAnd if isinstance(node.op, ast.And) else ast.BitOr]
        return lambda df: functools.reduce(combine, (p(df) for p in parts))

    def _Compare(self, node: ast.Compare, depth: int) -> Run:
        left = self.compile(node.left, depth)
        steps = [
            self._comparison(op, right, depth)
            for op, right in zip(node.ops, node.comparators, strict=True)
        ]

        def run(df: pd.DataFrame) -> Any:
            value, out = left(df), None
            for compare, right in steps:
                other = right(df)
                result = compare(value, other)
                out = result if out is None else out & result
                value = other
            return out

        return run

    def _comparison(self, op: ast.cmpop, right: ast.AST, depth: int) -> tuple[Callable, Run]:
        if isinstance(op, (ast.In, ast.NotIn)):
            values = self.literals(right)
            negate = isinstance(op, ast.NotIn)
            return (lambda a, b: _membership(a, b, negate)), (lambda df: values)
        compare = _COMPARE.get(type(op))
        if compare is None:  # `is`, `is not`
            raise self.refuse(f"comparison `{type(op).__name__}`")
        return compare, self.compile(right, depth)

    def literals(self, node: ast.AST) -> list:
        """A list or tuple of literals (``in [...]``, ``isin([...])``)."""
        if not isinstance(node, (ast.List, ast.Tuple)):
            raise self.refuse(f"{_construct(node)} after `in`", "a list of literals: [1, 2]")
        self.nodes += len(node.elts)
        try:
            values = [ast.literal_eval(e) for e in node.elts]
        except ValueError:
            values = None
        if values is None or not all(isinstance(v, (bool, int, float, str)) for v in values):
            raise self.refuse(_construct(node), "a list of numbers, 'text' or True/False")
        return values

    def _Call(self, node: ast.Call, depth: int) -> Run:
        if node.keywords:
            raise self.refuse(f"keyword argument in {_construct(node)}", "positional arguments")
        func = node.func
        if isinstance(func, ast.Name):
            call = FUNCTIONS.get(func.id)
            if call is None:
                raise self.refuse(f"function '{func.id}'", "functions " + ", ".join(FUNCTIONS))
            args = self.arguments(func.id, call, node.args, depth)
            return lambda df: call.impl(*(a(df) for a in args))
        if isinstance(func, ast.Attribute):
            return self.method(func, node.args, depth)
        raise self.refuse(_construct(node))

    def method(self, func: ast.Attribute, args: list[ast.expr], depth: int) -> Run:
        receiver, table, name = func.value, METHODS, func.attr
        if isinstance(receiver, ast.Attribute) and receiver.attr in ("str", "dt"):
            table = STR_METHODS if receiver.attr == "str" else DT_METHODS
            name, receiver = f"{receiver.attr}.{func.attr}", receiver.value
        call = table.get(func.attr)
        if call is None:
            allowed = ", ".join(f".{n}()" for n in table)
            raise self.refuse(f"method '{name}'", f"methods {allowed}")
        owner = self.compile(receiver, depth)
        values = self.arguments(name, call, args, depth)
        return lambda df: call.impl(_series(owner(df), df), *(a(df) for a in values))

    def arguments(self, name: str, call: Call, args: list[ast.expr], depth: int) -> list[Run]:
        low, high = call.arity()
        if not low <= len(args) <= high:
            count = low if low == high else f"{low} to {high}"
            raise self.refuse(f"'{name}' with {len(args)} arguments", f"{count} arguments")
        return [
            self.argument(name, kind, arg, depth)
            for kind, arg in zip(call.args, args, strict=False)
        ]

    def argument(self, name: str, kind: str, arg: ast.expr, depth: int) -> Run:
        if kind == "literals":
            values = self.literals(arg)
            return lambda df: values
        if kind == "value":
            return self.compile(arg, depth)
        wanted = str if kind == "text" else int
        if not (isinstance(arg, ast.Constant) and type(arg.value) is wanted):
            raise self.refuse(
                f"argument {_construct(arg)} of '{name}'", f"a literal {wanted.__name__}"
            )
        value = arg.value
        return lambda df: value

    def _Attribute(self, node: ast.Attribute, depth: int) -> Run:
        accessor = node.value
        if not (isinstance(accessor, ast.Attribute) and accessor.attr == "dt"):
            raise self.refuse(
                f"attribute '{node.attr}'",
                "properties .dt." + ", .dt.".join(DT_PROPERTIES) + " and the methods listed",
            )
        if node.attr not in DT_PROPERTIES:
            raise self.refuse(f"attribute 'dt.{node.attr}'", ".dt." + ", .dt.".join(DT_PROPERTIES))
        owner, part = self.compile(accessor.value, depth), node.attr
        return lambda df: getattr(_series(owner(df), df).dt, part)


def _series(value: Any, df: pd.DataFrame) -> pd.Series:
    if isinstance(value, pd.Series):
        return value
    if np.ndim(value):
        return pd.Series(value, index=df.index)
    return pd.Series([value] * len(df), index=df.index)


def _negate(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return not value  # ~True is -2 for a Python bool
    return ~value


def _is_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, pd.Series) and pd.api.types.is_string_dtype(value.dtype)


def _arithmetic(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    # Text times a number repeats it: `name * 10**9` would fill the memory of every worker.
    if op not in (_BINARY[ast.BitAnd], _BINARY[ast.BitOr]) and (_is_text(a) or _is_text(b)):
        raise TypeError("arithmetic on text is not allowed; compare text, or use .str.len()")
    if op is _BINARY[ast.Pow] and _huge_power(a, b):
        # Python's exact integers would compute 9 ** 9 ** 9 to 370 million digits.
        return np.power(np.float64(a), np.float64(b))
    return op(a, b)


def _huge_power(a: Any, b: Any) -> bool:
    """Two exact integers whose power passes 64 bits."""
    exact = (int, np.integer)
    if not (isinstance(a, exact) and isinstance(b, exact)) or isinstance(a, bool):
        return False
    return b > 0 and int(abs(a)).bit_length() * int(b) > 64


def _membership(value: Any, values: list, negate: bool) -> Any:
    inside = value.isin(values) if isinstance(value, pd.Series) else value in values
    return _negate(inside) if negate else inside
