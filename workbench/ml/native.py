"""LightGBM forests compiled to machine code, for batch scoring.

LightGBM's ``predict`` walks every tree node by node: about 100k rows/s per core for the demo's
300-tree, 63-leaf model. lleaves turns a LightGBM model into LLVM IR, one branch per split with
the trees blocked for the instruction cache; compiled, the same model scores several times faster
and gives the same numbers (differences of ~1e-15).

Why this module drives the compiler itself: lleaves 1.3.0, its newest release, optimises with
llvmlite's legacy pass manager, which llvmlite 0.45 removed (lleaves issue #95), and numba (needed
by dask-ml) requires llvmlite 0.50. So we take lleaves' parser and code generator and do the
optimise-and-emit step with llvmlite's new pass manager. When a lleaves release carries the fix,
``lleaves.Model`` can replace :func:`compile_forest` and :class:`NativeForest`.

The compiled code returns raw scores and :meth:`NativeForest.predict` applies the objective
(a sigmoid, say) with numpy: the code then calls no library function (``exp``), holds no
reference outside itself, and loads into one block of memory with the small code model, the
fastest (see :func:`_target_machine`).

Compiling takes tens of seconds, so the object code is kept beside the model version
(``models/<name>/<version>/native/<host>.o``) with its sha256 in a side file, keyed by the CPU,
its features and the compiler versions. The side file is signed (:mod:`workbench.ml.signing`)
over the object's sha256, the model's name and version and the host key, so an object file
written by anyone without the key, or copied from another model, is refused before llvmlite
sees it. Workers get the verified code from the client, never from the disk. Before it is
kept, a compiled forest must agree with LightGBM on sample rows.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import math
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version as package_version
from pathlib import Path

import numpy as np

from workbench.errors import SignatureError, WorkbenchError
from workbench.ml import signing

ENTRY = "forest_root"
TOLERANCE = 1e-9  # largest difference from LightGBM accepted on the check rows
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_SIGNATURE = ctypes.CFUNCTYPE(None, _DOUBLE_P, _DOUBLE_P, ctypes.c_int32, ctypes.c_int32)
_LOCK = threading.Lock()
_LOADED: dict[str, tuple[object, object]] = {}  # sha256 -> (engine, entry), once per process
# Bumped when the generated code or its side file changes meaning (v2: raw scores, the small
# code model; v3: signed side files), so object files kept by an older workbench are not found
# and get compiled again.
CODEGEN = "3"


@functools.cache
def available() -> bool:
    """Whether lleaves and llvmlite can be imported here."""
    try:
        import lleaves.compiler.codegen  # noqa: F401
        import llvmlite.binding  # noqa: F401
    except ImportError:
        return False
    return True


def _target_machine():
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    features = _host_features()
    # The small code model reads each split's threshold relative to the instruction (the large
    # one first loads a 64-bit address): 13-18% faster on the demo model, same scores. It needs
    # code and constants within 2 GiB of each other, which llvmlite's memory manager ensures by
    # loading all sections of an object into one block (see _entry).
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=features, reloc="pic", codemodel="small"
    )


def _host_features() -> str:
    import llvmlite.binding as llvm

    try:
        return llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot always read the host's features
        return ""


@functools.cache
def host_key() -> str:
    """Names the object files this host can run: CPU, its features and the compiler versions."""
    import llvmlite.binding as llvm

    versions = [package_version("llvmlite"), package_version("lleaves"), CODEGEN]
    stamp = "|".join([_host_features(), *versions])
    return f"{llvm.get_host_cpu_name()}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"


def compile_forest(model_text: str, n_features: int) -> NativeForest:
    """A LightGBM model (its text form) compiled for this host."""
    import llvmlite.binding as llvm
    import llvmlite.ir
    from lleaves.compiler.ast import parse_to_ast
    from lleaves.compiler.codegen import gen_forest

    with tempfile.TemporaryDirectory() as tmp:  # lleaves' parser reads a model file
        path = Path(tmp) / "model.txt"
        path.write_text(model_text)
        forest = parse_to_ast(str(path))
    forest.raw_score = True  # the objective is applied in numpy: see the module's docstring
    objective = " ".join([forest.objective_func, forest.objective_func_config or ""]).strip()
    link(np.zeros(1), objective)  # refuses an objective it does not know, before compiling
    if forest.n_classes != 1:
        raise WorkbenchError(
            f"native scoring covers one-output models; this one has {forest.n_classes} classes"
        )
    ir = llvmlite.ir.Module(name="forest")
    gen_forest(forest, ir, 34, ENTRY, True)  # 34 trees per cache block: lleaves' default
    ir.triple = llvm.get_process_triple()
    module = llvm.parse_assembly(str(ir))
    module.verify()
    machine = _target_machine()
    # Speed level 1 measured as fast to run as 2 and 3 here, and compiles in less time.
    builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=1))
    builder.getModulePassManager().run(module, builder)
    return NativeForest(bytes(machine.emit_object(module)), n_features, objective)


def link(raw: np.ndarray, objective: str) -> np.ndarray:
    """LightGBM's output for raw scores under ``objective`` (the model file's ``objective=``
    line, e.g. ``binary sigmoid:1``): the transform LightGBM and lleaves apply, in numpy."""
    name, *config = objective.split()
    if name == "binary":
        alpha = float(dict(c.split(":", 1) for c in config).get("sigmoid", 1.0))
        return 1.0 / (1.0 + np.exp(-alpha * raw))
    if name in ("xentropy", "cross_entropy"):
        return 1.0 / (1.0 + np.exp(-raw))
    if name in ("xentlambda", "cross_entropy_lambda"):
        return np.log1p(np.exp(raw))
    if name in ("poisson", "gamma", "tweedie"):
        return np.exp(raw)
    if name in ("regression", "regression_l1", "huber", "fair", "quantile", "mape"):
        return np.copysign(raw * raw, raw) if "sqrt" in config else raw
    if name in ("lambdarank", "rank_xendcg", "custom"):
        return raw
    raise WorkbenchError(
        f"native scoring does not know the objective {objective!r}; score this model with "
        "`workbench.ml-scoring-engine: lightgbm`"
    )


def _entry(code: bytes, digest: str):
    with _LOCK:
        if digest not in _LOADED:
            import llvmlite.binding as llvm

            # use_lmm: llvmlite's memory manager reserves one block for all the sections of the
            # object. LLVM's default maps each section on its own, where the 32-bit offsets of
            # the small code model can overflow (lleaves warns of segfaults with the small code
            # model on very large forests). The block holds only what the object declares, so
            # the code must not need a GOT: no calls out (hence raw scores, no ``exp``).
            engine = llvm.create_mcjit_compiler(
                llvm.parse_assembly(""), _target_machine(), use_lmm=True
            )
            engine.add_object_file(llvm.ObjectFileRef.from_data(code))
            engine.finalize_object()
            entry = _SIGNATURE(engine.get_function_address(ENTRY))
            _LOADED[digest] = (engine, entry)  # the engine owns the code: keep it alive
        return _LOADED[digest][1]


class NativeForest:
    """A compiled forest that scores a float64 matrix (rows x features, in model order).

    Categorical features are their category codes, missing values NaN: what LightGBM itself
    passes to its trees. Pickles as its object code; a process loads it once. The code is for
    the CPU it was compiled on (``host``): :meth:`runs_here` is False on another kind of CPU, a
    compute node of another generation, say, where the caller scores with LightGBM instead.
    """

    def __init__(self, code: bytes, n_features: int, objective: str, host: str | None = None):
        self.code = code
        self.n_features = n_features
        self.objective = objective
        self.host = host or host_key()
        self.sha256 = hashlib.sha256(code).hexdigest()

    def __reduce__(self):
        return NativeForest, (self.code, self.n_features, self.objective, self.host)

    def runs_here(self) -> bool:
        return available() and self.host == host_key()

    def predict(self, matrix: np.ndarray, *, threads: int = 1) -> np.ndarray:
        rows = np.ascontiguousarray(matrix, dtype="float64")
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected a (rows, {self.n_features}) matrix, got {rows.shape}")
        if len(rows) >= 2**31 - 1:
            raise ValueError("score fewer than 2**31 rows per call (split the partition)")
        out = np.zeros(len(rows), dtype="float64")
        entry = _entry(self.code, self.sha256)
        data, result = rows.ctypes.data_as(_DOUBLE_P), out.ctypes.data_as(_DOUBLE_P)
        threads = max(1, threads or os.cpu_count() or 1)
        if threads == 1 or len(rows) < 20_000:
            entry(data, result, 0, len(rows))
            return link(out, self.objective)
        step = math.ceil(len(rows) / threads)
        # ctypes releases the GIL for the call, so threads score their ranges in parallel.
        with ThreadPoolExecutor(threads) as pool:
            done = [
                pool.submit(entry, data, result, lo, min(lo + step, len(rows)))
                for lo in range(0, len(rows), step)
            ]
            for future in done:
                future.result()
        return link(out, self.objective)


def object_path(folder: Path) -> Path:
    """Where the object code of the model in ``folder`` is kept for this host."""
    return folder / "native" / f"{host_key()}.o"


def save(folder: Path, forest: NativeForest, seconds: float) -> Path:
    """Keep ``forest`` beside its model, signed; written to a temporary name, then renamed."""
    path = object_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = {
        "sha256": forest.sha256,
        "n_features": forest.n_features,
        "objective": forest.objective,
        "codegen": CODEGEN,
        "compile_seconds": round(seconds, 1),
        "compiled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "llvmlite": package_version("llvmlite"),
        "lleaves": package_version("lleaves"),
    }
    side["signature"] = signing.sign(_manifest(path, side))
    tmp = path.with_suffix(".o.tmp")
    tmp.write_bytes(forest.code)
    path.with_suffix(".json").write_text(json.dumps(side, indent=1))
    tmp.replace(path)
    return path


def load(folder: Path) -> NativeForest | None:
    """The compiled forest kept for this host, or None; one whose signature or sha256 fails is
    refused with :class:`SignatureError`, never loaded."""
    if not available():
        return None
    path = object_path(folder)
    if not path.exists():
        return None
    return verify_side(path.with_suffix(".json"))


def verify_side(side_path: Path) -> NativeForest:
    """The forest of a side file once its signature and the object's sha256 hold."""
    path = side_path.with_suffix(".o")
    side = json.loads(side_path.read_text())
    model = f"{path.parent.parent.parent.name} --version {path.parent.parent.name}"
    fix = f"delete {path.parent} and run `workbench model compile {model}` again."
    signing.verify(_manifest(path, side), side.get("signature"), where=str(path), fix=fix)
    code = path.read_bytes()
    if hashlib.sha256(code).hexdigest() != side["sha256"]:
        raise SignatureError(
            f"{path} does not match the sha256 in {side_path.name}: it was changed after "
            f"compiling. Refusing to load it; {fix}"
        )
    return NativeForest(code, side["n_features"], side["objective"], path.stem)


def resign(side_path: Path, key: signing.SigningKey) -> None:
    """Sign a verified side file again with ``key`` (key rotation)."""
    verify_side(side_path)
    side = json.loads(side_path.read_text())
    side["signature"] = signing.sign(_manifest(side_path.with_suffix(".o"), side), key)
    tmp = side_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(side, indent=1))
    tmp.replace(side_path)


def _manifest(path: Path, side: dict) -> dict:
    """What a side file's signature covers: the object and the model version it belongs to."""
    version_folder = path.parent.parent
    return {
        "kind": "native-forest",
        "model": version_folder.parent.name,
        "version": version_folder.name,
        "host": path.stem,
        **{k: side.get(k) for k in ("sha256", "n_features", "objective", "codegen")},
    }


def check(forest: NativeForest, reference: np.ndarray, matrix: np.ndarray) -> float:
    """Largest difference from LightGBM's scores on ``matrix``; refuses the forest above 1e-9."""
    diff = float(np.max(np.abs(forest.predict(matrix) - reference), initial=0.0))
    if not diff <= TOLERANCE:
        raise WorkbenchError(
            f"the compiled forest differs from LightGBM by {diff:.3g} on check rows (limit "
            f"{TOLERANCE}); it was not kept. Score with `workbench.ml-scoring-engine: lightgbm`."
        )
    return diff
