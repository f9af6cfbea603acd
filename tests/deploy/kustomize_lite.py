"""`kustomize build` for the subset deploy/k8s uses: resources, JSON 6902 patches, metadata labels.

No kustomize or kubectl binary is installed here, and the overlays must still be checked as they
would be applied. A kustomization using anything else fails loudly instead of being half-built.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "patches", "labels"}
Manifest = dict[str, Any]


def load_manifests(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def build(directory: Path) -> list[Manifest]:
    kustomization: dict[str, Any] = yaml.safe_load(
        (directory / "kustomization.yaml").read_text(encoding="utf-8")
    )
    unsupported = set(kustomization) - SUPPORTED_KEYS
    if unsupported:
        raise ValueError(
            f"{directory}/kustomization.yaml: kustomize_lite does not handle {sorted(unsupported)}"
        )
    manifests: list[Manifest] = []
    for resource in kustomization.get("resources", []):
        path = (directory / resource).resolve()
        manifests.extend(build(path) if path.is_dir() else load_manifests(path))
    for patch in kustomization.get("patches", []):
        operations = yaml.safe_load((directory / patch["path"]).read_text(encoding="utf-8"))
        targets = [m for m in manifests if _selected(m, patch["target"])]
        if len(targets) != 1:
            raise ValueError(f"patch {patch['path']} selects {len(targets)} resources, expected 1")
        index = manifests.index(targets[0])
        manifests[index] = apply_json_patch(targets[0], operations)
    for label in kustomization.get("labels", []):
        for manifest in manifests:
            manifest.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    return manifests


def _selected(manifest: Manifest, target: dict[str, str]) -> bool:
    group, _, version = manifest["apiVersion"].rpartition("/")
    actual = {
        "group": group,
        "version": version,
        "kind": manifest["kind"],
        "name": manifest["metadata"]["name"],
    }
    return all(actual[key] == value for key, value in target.items())


def apply_json_patch(document: Manifest, operations: list[dict[str, Any]]) -> Manifest:
    """RFC 6902 add, replace and remove (what the overlays use); a missing path is an error."""
    result = copy.deepcopy(document)
    for operation in operations:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]]
        node: Any = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        op = operation["op"]
        if op == "add" and isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), operation["value"])
        elif op == "add":
            node[last] = operation["value"]
        elif op == "replace":
            key = int(last) if isinstance(node, list) else last
            exists = 0 <= key < len(node) if isinstance(key, int) else key in node
            if not exists:  # replace, unlike add, requires the target (RFC 6902 section 4.3)
                raise KeyError(f"JSON patch replace: {operation['path']} does not exist")
            node[key] = operation["value"]
        elif op == "remove":
            del node[int(last) if isinstance(node, list) else last]
        else:
            raise ValueError(f"unsupported JSON patch op {op!r}")
    return result
