"""A small kustomize renderer for machines without kubectl: the subset of kustomize seqhub's manifests use.

    python deploy/tools/render.py deploy/k8s/overlays/prod > prod.yaml

`kubectl kustomize` is the reference (the tests use it when present and check that this renderer produces
the same objects). Supported, because deploy/k8s and deploy/observability use them: `resources` (files and
kustomization directories), `namespace`, `labels` (`pairs`, `includeSelectors: false`, `includeTemplates`),
`images` (`newName`, `newTag`), `configMapGenerator` (`files`, `literals`), `secretGenerator` (`literals`),
`generatorOptions` / per-generator `options` (`disableNameSuffixHash: true`, `labels`), and `patches` by
`path`: a strategic-merge patch (matched by kind and name, merged as maps; lists replaced — enough for our
patches) or a JSON 6902 patch list applied to every object matching `target` (kind, name). Anything else
in a kustomization is an error, so a new feature cannot be silently ignored.
"""

from __future__ import annotations

import base64
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "patches",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PersistentVolume",
    "PriorityClass",
    "IngressClass",
}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class RenderError(ValueError):
    """The kustomization uses something this renderer does not support, or is malformed."""


def _load_all(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"JSON patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(doc: Doc, ops: list[dict[str, Any]]) -> Doc:
    doc = copy.deepcopy(doc)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = op["op"]
        if kind not in {"add", "replace", "remove"}:
            raise RenderError(f"JSON patch op {kind!r} is not supported")
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind == "add":
                node.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                node[index] = copy.deepcopy(op["value"])
            else:
                del node[index]
        else:
            if kind == "replace" and last not in node:
                raise RenderError(f"JSON patch replace of missing path {op['path']}")
            if kind == "remove":
                del node[last]
            else:
                node[last] = copy.deepcopy(op["value"])
    return doc


def _generated(kind: str, spec: dict[str, Any], root: Path, options: dict[str, Any]) -> Doc:
    opts = {**options, **spec.get("options", {})}
    if not opts.get("disableNameSuffixHash"):
        raise RenderError(f"{kind} generator {spec['name']!r}: only disableNameSuffixHash: true is supported")
    data: dict[str, str] = {}
    for item in spec.get("literals", []):
        key, _, value = item.partition("=")
        data[key] = value
    for item in spec.get("files", []):
        key, _, rel = item.rpartition("=")
        path = root / (rel or item)
        data[key or path.name] = path.read_text(encoding="utf-8")
    unknown = set(spec) - {"name", "literals", "files", "options"}
    if unknown:
        raise RenderError(f"{kind} generator {spec['name']!r}: unsupported fields {sorted(unknown)}")
    doc: Doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}}
    if opts.get("labels"):
        doc["metadata"]["labels"] = dict(opts["labels"])
    if kind == "Secret":
        doc["type"] = "Opaque"
        doc["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        doc["data"] = data
    return doc


def _matches(doc: Doc, target: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise RenderError(f"patch target fields {sorted(unknown)} are not supported")
    return all(
        doc.get("kind") == target["kind"] if k == "kind" else doc["metadata"]["name"] == v
        for k, v in target.items()
    )


def _set_image(container: dict[str, Any], images: list[dict[str, Any]]) -> None:
    image = container.get("image", "")
    name, sep, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    for rule in images:
        if rule["name"] == name:
            new_name = rule.get("newName", name)
            new_tag = rule.get("newTag", tag if sep else "")
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def build(root: Path) -> list[Doc]:
    """Render the kustomization in directory `root`."""
    kfile = root / "kustomization.yaml"
    if not kfile.is_file():
        raise RenderError(f"{root}: no kustomization.yaml")
    k: dict[str, Any] = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(k) - KNOWN_FIELDS
    if unknown:
        raise RenderError(f"{kfile}: unsupported fields {sorted(unknown)}")

    docs: list[Doc] = []
    for entry in k.get("resources", []):
        path = (root / entry).resolve()
        docs.extend(build(path) if path.is_dir() else _load_all(path))
    options = k.get("generatorOptions", {})
    for spec in k.get("configMapGenerator", []):
        docs.append(_generated("ConfigMap", spec, root, options))
    for spec in k.get("secretGenerator", []):
        docs.append(_generated("Secret", spec, root, options))

    for patch in k.get("patches", []):
        if set(patch) - {"path", "target"}:
            raise RenderError(f"{kfile}: only patches with path (and target) are supported")
        content = yaml.safe_load((root / patch["path"]).read_text(encoding="utf-8"))
        hit = False
        for i, doc in enumerate(docs):
            if isinstance(content, list):
                if "target" in patch and _matches(doc, patch["target"]):
                    docs[i], hit = _json6902(doc, content), True
            elif (
                doc["kind"] == content["kind"]
                and doc["metadata"]["name"] == content["metadata"]["name"]
                and ("target" not in patch or _matches(doc, patch["target"]))
            ):
                docs[i], hit = _merge(doc, content), True
        if not hit:
            raise RenderError(f"{kfile}: patch {patch['path']} matched no object")

    namespace = k.get("namespace")
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        if namespace and doc["kind"] not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        for group in k.get("labels", []):
            if group.get("includeSelectors"):
                raise RenderError(f"{kfile}: labels with includeSelectors are not supported")
            pairs = {str(a): str(b) for a, b in group["pairs"].items()}
            meta["labels"] = {**meta.get("labels", {}), **pairs}
            if group.get("includeTemplates") and doc["kind"] in POD_TEMPLATE_KINDS:
                tmeta = doc["spec"]["template"].setdefault("metadata", {})
                tmeta["labels"] = {**tmeta.get("labels", {}), **pairs}
        if k.get("images") and doc["kind"] in POD_TEMPLATE_KINDS:
            pod = doc["spec"]["template"]["spec"]
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                _set_image(container, k["images"])
    return docs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python deploy/tools/render.py <kustomization dir>", file=sys.stderr)
        return 2
    try:
        docs = build(Path(argv[1]))
    except (RenderError, OSError, KeyError, yaml.YAMLError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
