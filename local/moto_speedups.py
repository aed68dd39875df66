"""Three costs of moto 5.2.5 on the local flow's critical path, cut without changing an answer.

Measured on `benchmarks/bench_local_overhead.py` (3 chromosomes, 5 jobs): both ran in the one
process that serves every AWS call and runs the state machine, so each was time the next state
waited for.

(q) Parsed state machines: moto parses a definition with its ANTLR grammar when the state machine
    is created (to validate it) and again when each execution starts; our definition (27 KB, the
    synthesized workflow) takes 0.2-0.4 s per parse. The parsed program is reused: kept in memory
    by definition text, and pickled to the local cache directory (`local.blueprint.cache_dir`),
    keyed by a digest of the text, the moto, antlr and Python versions and the local patches'
    sources, so the next stack start loads it in milliseconds. Only definitions that parsed are
    stored, so a cached one is valid; an invalid one is parsed (and refused) every time as before.
    The program is stateless between executions (every execution keeps its state in its own
    `Environment`), which is how moto itself evaluates one program from many Map iterations at once.
(r) DynamoDB items in responses: moto's shape-driven JSON serializer looks up each member of
    each `AttributeValue` under several spellings, so a Query of five job records (12 KB) cost
    36 ms of CPU, and the watchers' queries were most of the emulator's CPU. An `AttributeValue`
    made only of S, N, BOOL, NULL, SS, NS, M and L (what the status store writes) is already in
    its wire form and is copied as is; any other (binary values) goes through moto's serializer.
    tests/local/test_moto_patches.py compares both serializers on such items.
(t) Projections: a Query or GetItem with a ProjectionExpression converted the whole item to plain
    JSON once per projected attribute (a watcher reading six small attributes of the workflow
    record converted its manifest and history six times, in the lock every DynamoDB request
    takes). Only the attributes the paths start from are converted, once each.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from local.patching import replace

log = logging.getLogger(__name__)

_MEMORY_SLOTS = 8
_DISK_KEEP = 16
_programs: OrderedDict[str, Any] = OrderedDict()
_programs_lock = threading.Lock()


# -- (q) parsed state machines ----------------------------------------------------------------------
@functools.cache
def _parser_digest() -> bytes:
    """What a parsed program depends on besides its text: the moto, antlr and Python versions and
    the sources of the local patches (which replace moto classes the program is made of)."""
    import antlr4  # type: ignore[import-untyped]
    import moto

    h = hashlib.sha256()
    for part in (moto.__version__, getattr(antlr4, "__version__", ""), sys.version):
        h.update(part.encode() + b"\0")
    here = Path(__file__).resolve().parent
    for name in ("moto_patches.py", "moto_concurrency.py", "moto_speedups.py"):
        h.update((here / name).read_bytes())
    return h.digest()


def _cache_key(definition: str) -> str:
    return hashlib.sha256(_parser_digest() + definition.encode()).hexdigest()[:32]


def _disk_path(key: str) -> Path | None:
    from local.blueprint import cache_dir

    try:
        return cache_dir() / "asl" / f"program-{key}.pickle"
    except OSError:
        return None  # no writable cache directory: parse every time


def _load(path: Path) -> Any | None:
    try:
        return pickle.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001 - a damaged cache file is a miss: parse again and rewrite it
        log.debug("ignoring unreadable parsed-definition cache %s: %s", path, err)
        return None


def _store(path: Path, program: Any) -> None:
    try:
        data = pickle.dumps(program, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # whole or not at all: other stacks may read it
        kept = sorted(path.parent.glob("program-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[_DISK_KEEP:]:
            old.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError) as err:
        log.debug("not caching the parsed definition: %s", err)


def parsed_program(definition: str) -> Any:
    """The evaluation program of a state machine definition (raises what moto's parser raises)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    key = _cache_key(definition)
    with _programs_lock:
        program = _programs.get(key)
        if program is not None:
            _programs.move_to_end(key)
            return program
    path = _disk_path(key)
    program = _load(path) if path is not None else None
    if program is None:
        program, _tree = AmazonStateLanguageParser.parse(definition)
        if path is not None:
            _store(path, program)
    with _programs_lock:
        _programs[key] = program
        while len(_programs) > _MEMORY_SLOTS:
            _programs.popitem(last=False)
    return program


def reuse_parsed_definitions() -> None:
    from moto.stepfunctions.parser import models
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import InvalidDefinition

    def validate_definition(definition: str) -> None:
        # moto's own messages for both kinds of failure (models.StepFunctionsParserBackend).
        try:
            parsed_program(definition)
        except ASLParserException as err:
            raise InvalidDefinition(message=repr(err)) from None
        except Exception as err:  # noqa: BLE001 - every parse failure is an invalid definition, as in moto
            raise InvalidDefinition(
                message=f"Error={err.__class__.__name__} Args={list(err.args)} in definition '{definition}'."
            ) from None

    def get_evaluation_entrypoint(self):
        return parsed_program(self._evaluation_details.state_machine_details.definition)

    replace(models.StepFunctionsParserBackend, "_validate_definition", staticmethod(validate_definition))
    replace(ExecutionWorker, "_get_evaluation_entrypoint", get_evaluation_entrypoint)


# -- (r) DynamoDB items in responses -----------------------------------------------------------------
class NotPlain(Exception):
    """An AttributeValue the fast copy does not handle (left to moto's serializer)."""


def plain_attribute_value(value: Any) -> dict[str, Any]:
    """The wire form of an AttributeValue of S, N, BOOL, NULL, SS, NS, M and L: itself (a copy)."""
    if type(value) is not dict or len(value) != 1:
        raise NotPlain
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        if type(inner) is not str:
            raise NotPlain
        return {kind: inner}
    if kind in ("BOOL", "NULL"):
        if type(inner) is not bool:
            raise NotPlain
        return {kind: inner}
    if kind == "M":
        if type(inner) is not dict:
            raise NotPlain
        return {"M": {name: plain_attribute_value(v) for name, v in inner.items()}}
    if kind == "L":
        if type(inner) is not list:
            raise NotPlain
        return {"L": [plain_attribute_value(v) for v in inner]}
    if kind in ("SS", "NS"):
        if type(inner) is not list or any(type(v) is not str for v in inner):
            raise NotPlain
        return {kind: list(inner)}
    raise NotPlain  # B, BS: moto base64-encodes them


def copy_plain_attribute_values() -> None:
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self, serialized, value, shape, key):
        if key and shape.name == "AttributeValue":
            try:
                wire = plain_attribute_value(value)
            except NotPlain:
                pass
            else:
                self._default_serialize(serialized, wire, shape, key)
                return
        original(self, serialized, value, shape, key)

    setattr(serialize_structure, "__wrapped_original__", original)  # noqa: B010  (the test compares both)
    replace(BaseJSONSerializer, "_serialize_type_structure", serialize_structure)


# -- (t) projections --------------------------------------------------------------------------------
def _projected_top_attribute(first_key: str) -> str:
    """The item attribute moto's `find_nested_key` reads for a path's first key (`a[1]` reads `a`)."""
    import re

    is_list_element = re.match(r"(.+)\[(\d+)\]$", first_key)
    return is_list_element.group(1) if is_list_element else first_key


def project_named_attributes_only() -> None:
    from moto.dynamodb.models import dynamo_type

    def project(self, projection_expressions: list[list[str]]):
        # moto converts the whole item to plain JSON once per projected path; only the attributes the
        # paths start from are converted, once each. The paths then select from them as before.
        named: dict[str, Any] = {}
        for expr in projection_expressions:
            top = _projected_top_attribute(expr[0])
            if top in self.attrs and top not in named:
                named[top] = dynamo_type.deserializer.deserialize(self.attrs[top].to_regular_json())
        result: dict[str, Any] = {}
        for expr in projection_expressions:
            dynamo_type.merge_dicts(result, dynamo_type.find_nested_key(expr, named))
        return dynamo_type.Item(hash_key=self.hash_key, range_key=self.range_key,
                                attrs=dict(dynamo_type.serializer.serialize(result)["M"]))

    setattr(project, "__wrapped_original__", dynamo_type.Item.project)  # noqa: B010  (the test compares both)
    replace(dynamo_type.Item, "project", project)
