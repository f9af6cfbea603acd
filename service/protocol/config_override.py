"""A repository load's `config` parameter (Triton's ModelConfig as JSON) turned into nnserve's ModelConfig.

Triton's model-repository extension sends the config as a JSON string that "must be able to be parsed
into the ModelConfig message" of model_config.proto; tritonclient's `load_model(config=...)` passes it
through as written. The keys nnserve can honour map onto config.yaml:

| ModelConfig | config.yaml |
| --- | --- |
| `max_batch_size` (0 = no batch axis) | `batching.max_batch_size`; `input`/`output` dims gain a leading -1 when > 0 |
| `dynamic_batching` (`preferred_batch_size`, `max_queue_delay_microseconds`) | `batching` (in ms) |
| `input`, `output` (`name`, `data_type`, `dims`) | `inputs`, `outputs` (`TYPE_STRING` is `BYTES`) |
| `version_policy` (`latest.num_versions`, `all`, `specific.versions`) | `version_policy` |
| `instance_group` (`count`, `kind`) | `execution.instances`, `execution.providers` |
| `parameters` (`{"k": {"string_value": "v"}}`) | `parameters` |
| `nnserve` (what GET `/config` returns under that key) | the whole of config.yaml, the keys above then win |

`name`, `platform` and `backend` are checked (an ONNX Runtime model of this name); any other key is
refused by name rather than silently ignored. Integers may be JSON strings (`"max_batch_size": "16"`), as
protobuf's JSON mapping allows and Triton's own example sends. The override applies on top of `base`
(the model's current config.yaml), so a partial override such as `{"max_batch_size": 16}` keeps the task
sections a Triton config cannot express.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from service.schema.config import ModelConfig

ONNX_PLATFORMS = frozenset({"onnxruntime_onnx"})
ONNX_BACKENDS = frozenset({"onnxruntime"})
SUPPORTED_KEYS = (
    "name", "platform", "backend", "max_batch_size", "dynamic_batching", "input", "output",
    "version_policy", "instance_group", "parameters", "nnserve",
)  # fmt: skip
KIND_PROVIDERS = {"KIND_CPU": ["cpu"], "KIND_GPU": ["cuda", "cpu"], "KIND_AUTO": None}


class ConfigOverrideError(ValueError):
    """The override cannot be used; the message names the key and the value, prefixed `parameters.config`."""


def parse_config_override(text: object, name: str, base: ModelConfig) -> ModelConfig:
    """`base` with the override applied, validated as config.yaml would be."""
    if not isinstance(text, str):
        raise ConfigOverrideError(f"parameters.config: expected a JSON string, got {type(text).__name__}")
    try:
        triton = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigOverrideError(f"parameters.config: not valid JSON ({exc})") from None
    if not isinstance(triton, dict):
        raise ConfigOverrideError(f"parameters.config: expected a JSON object, got {type(triton).__name__}")
    unknown = sorted(set(triton) - set(SUPPORTED_KEYS))
    if unknown:
        raise ConfigOverrideError(
            f"parameters.config: {', '.join(unknown)} not supported by nnserve; supported: {', '.join(SUPPORTED_KEYS)}"
        )
    _check_identity(triton, name)
    config = _nnserve_base(triton, base)
    batching = dict(config.get("batching", {}))
    if "max_batch_size" in triton:
        batching["max_batch_size"] = _integer(triton["max_batch_size"], "max_batch_size")
    if "dynamic_batching" in triton:
        batching.update(_dynamic_batching(triton["dynamic_batching"]))
    config["batching"] = batching
    batch_axis = _integer(triton.get("max_batch_size", 0), "max_batch_size") > 0
    for key, target in (("input", "inputs"), ("output", "outputs")):
        if key in triton:
            config[target] = _tensors(triton[key], key, batch_axis)
    if "version_policy" in triton:
        config["version_policy"] = _version_policy(triton["version_policy"])
    if "instance_group" in triton:
        config["execution"] = {**config.get("execution", {}), **_instances(triton["instance_group"])}
    if "parameters" in triton:
        config["parameters"] = {**config.get("parameters", {}), **_parameters(triton["parameters"])}
    try:
        return ModelConfig.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise ConfigOverrideError(f"parameters.config: {problems}") from None


def _check_identity(triton: dict[str, Any], name: str) -> None:
    if "name" in triton and triton["name"] != name:
        raise ConfigOverrideError(f"parameters.config: name {triton['name']!r} differs from the model name {name!r}")
    if "platform" in triton and triton["platform"] not in ONNX_PLATFORMS:
        raise ConfigOverrideError(
            f"parameters.config: platform {triton['platform']!r}: nnserve serves ONNX models only (onnxruntime_onnx)"
        )
    if "backend" in triton and triton["backend"] not in ONNX_BACKENDS:
        raise ConfigOverrideError(
            f"parameters.config: backend {triton['backend']!r}: nnserve serves ONNX models only (onnxruntime)"
        )


def _nnserve_base(triton: dict[str, Any], base: ModelConfig) -> dict[str, Any]:
    own = triton.get("nnserve")
    if own is None:
        return base.model_dump(mode="json", exclude_none=True)
    if not isinstance(own, dict):
        raise ConfigOverrideError(f"parameters.config: nnserve: expected an object, got {type(own).__name__}")
    return dict(own)


def _integer(value: object, field: str) -> int:
    """An integer, or a string of one (protobuf's JSON form of int64)."""
    if isinstance(value, bool):
        raise ConfigOverrideError(f"parameters.config: {field}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ConfigOverrideError(f"parameters.config: {field}: expected an integer, got {value!r}")


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigOverrideError(f"parameters.config: {field}: expected an object, got {value!r}")
    return value


def _list(value: object, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigOverrideError(f"parameters.config: {field}: expected a list, got {value!r}")
    return value


def _dynamic_batching(value: object) -> dict[str, Any]:
    section = _object(value, "dynamic_batching")
    extra = sorted(set(section) - {"preferred_batch_size", "max_queue_delay_microseconds"})
    if extra:
        raise ConfigOverrideError(f"parameters.config: dynamic_batching.{extra[0]} not supported by nnserve")
    out: dict[str, Any] = {}
    if "preferred_batch_size" in section:
        sizes = _list(section["preferred_batch_size"], "dynamic_batching.preferred_batch_size")
        out["preferred_batch_sizes"] = [_integer(s, "dynamic_batching.preferred_batch_size") for s in sizes]
    if "max_queue_delay_microseconds" in section:
        delay = _integer(section["max_queue_delay_microseconds"], "dynamic_batching.max_queue_delay_microseconds")
        out["max_queue_delay_ms"] = delay / 1000
    return out


def _tensors(value: object, key: str, batch_axis: bool) -> list[dict[str, Any]]:
    tensors = []
    for i, raw in enumerate(_list(value, key)):
        tensor = _object(raw, f"{key}[{i}]")
        extra = sorted(set(tensor) - {"name", "data_type", "dims"})
        if extra:
            raise ConfigOverrideError(f"parameters.config: {key}[{i}].{extra[0]} not supported by nnserve")
        data_type = tensor.get("data_type")
        if not isinstance(data_type, str) or not data_type.startswith("TYPE_"):
            raise ConfigOverrideError(
                f"parameters.config: {key}[{i}].data_type: expected TYPE_<type>, got {data_type!r}"
            )
        datatype = "BYTES" if data_type == "TYPE_STRING" else data_type.removeprefix("TYPE_")
        dims = [_integer(d, f"{key}[{i}].dims") for d in _list(tensor.get("dims", []), f"{key}[{i}].dims")]
        tensors.append({"name": tensor.get("name"), "datatype": datatype, "shape": [-1, *dims] if batch_axis else dims})
    return tensors


def _version_policy(value: object) -> dict[str, Any]:
    policy = _object(value, "version_policy")
    if set(policy) == {"all"}:
        return {"all": True}
    if set(policy) == {"latest"}:
        latest = _object(policy["latest"], "version_policy.latest")
        return {"latest": _integer(latest.get("num_versions", 1), "version_policy.latest.num_versions")}
    if set(policy) == {"specific"}:
        specific = _object(policy["specific"], "version_policy.specific")
        versions = _list(specific.get("versions", []), "version_policy.specific.versions")
        return {"specific": [_integer(v, "version_policy.specific.versions") for v in versions]}
    raise ConfigOverrideError(
        f"parameters.config: version_policy: expected one of latest, all, specific, got {policy!r}"
    )


def _instances(value: object) -> dict[str, Any]:
    count = 0
    providers: list[str] | None = None
    for i, raw in enumerate(_list(value, "instance_group")):
        group = _object(raw, f"instance_group[{i}]")
        extra = sorted(set(group) - {"name", "count", "kind"})
        if extra:
            raise ConfigOverrideError(f"parameters.config: instance_group[{i}].{extra[0]} not supported by nnserve")
        count += _integer(group.get("count", 1), f"instance_group[{i}].count")
        kind = group.get("kind", "KIND_AUTO")
        if kind not in KIND_PROVIDERS:
            raise ConfigOverrideError(
                f"parameters.config: instance_group[{i}].kind: {kind!r} not one of {', '.join(KIND_PROVIDERS)}"
            )
        providers = KIND_PROVIDERS[kind] or providers
    return {"instances": count} | ({"providers": providers} if providers else {})


def _parameters(value: object) -> dict[str, Any]:
    out = {}
    for key, raw in _object(value, "parameters").items():
        parameter = _object(raw, f"parameters.{key}")
        if set(parameter) != {"string_value"}:
            raise ConfigOverrideError(f'parameters.config: parameters.{key}: expected {{"string_value": ...}}')
        out[key] = parameter["string_value"]
    return out
