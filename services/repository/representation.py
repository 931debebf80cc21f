"""How resources look on the wire: GMI link relations, JSON documents, SRA XML and HTML pages.

JSON: the GMI body plus ``links`` (``[{rel, href}]``, ``self`` first), ``external_ids`` (INSDC / BioSample /
BioProject identifiers rendered as links to the archives), ``visibility`` and, for runs and analyses,
``files``. XML: the schema-valid SRA document; link relations travel in the RFC 8288 ``Link`` header
because the SRA schemas do not allow foreign link elements. Pure logic: no aiohttp, no pymongo.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from .models import GMI_LINKS, Page, Resource, ResourceType, Review, ReviewStatus
from .sra import gmi_to_xml

EXTERNAL = {
    "biosample": "https://www.ebi.ac.uk/biosamples/samples/{}",
    "bioproject": "https://www.ncbi.nlm.nih.gov/bioproject/{}",
    "geo": "https://www.ncbi.nlm.nih.gov/geo/query/acc.cgi?acc={}",
    "ena": "https://www.ebi.ac.uk/ena/browser/view/{}",
    "pubmed": "https://pubmed.ncbi.nlm.nih.gov/{}",
}
INSDC_PREFIXES = ("SR", "ER", "DR", "PRJ", "SAM")


def item_url(base: str, rtype: ResourceType, accession: str) -> str:
    return f"{base}/{rtype.info.collection}/{quote(accession)}"


def collection_url(base: str, rtype: ResourceType) -> str:
    return f"{base}/{rtype.info.collection}"


def _rel(name: str) -> str:
    return GMI_LINKS + name


# relation names, joined with the GMI prefix once
REL_STUDY, REL_STUDY_SAMPLES, REL_RELATED_STUDIES = _rel("study"), _rel("study/samples"), _rel("study/related-studies")
REL_SAMPLE_EXPERIMENTS, REL_SAMPLE = _rel("study/sample/experiments"), _rel("study/sample")
REL_EXPERIMENT_RUNS, REL_EXPERIMENT = _rel("study/sample/experiment/runs"), _rel("study/sample/experiment")
REL_RUN_ANALYSES, REL_RUN_DATA = _rel("study/sample/experiment/analyses"), _rel("run/data")
REL_ANALYSIS_SAMPLE, REL_ANALYSIS_RUN = _rel("sample"), _rel("run")
REL_SUBMITTER, REL_RELATED_RESOURCES = _rel("submitter"), _rel("related-resources")


def links(resource: Resource, base: str) -> list[dict[str, str]]:
    """The link relations the GMI draft names for this type (``self`` first)."""
    rtype, parents = resource.rtype, resource.parents
    self_url = item_url(base, rtype, resource.accession)
    out = [{"rel": "self", "href": self_url}]
    if rtype is ResourceType.STUDY:
        out.append({"rel": REL_STUDY, "href": f"{base}/studies"})
        out.append({"rel": REL_STUDY_SAMPLES, "href": f"{self_url}/samples"})
        out.append({"rel": REL_RELATED_STUDIES, "href": f"{self_url}/related-studies"})
    elif rtype is ResourceType.SAMPLE:
        if parents.study:
            study_url = item_url(base, ResourceType.STUDY, parents.study)
            out.append({"rel": REL_STUDY, "href": study_url})
            out.append({"rel": REL_STUDY_SAMPLES, "href": f"{study_url}/samples"})
        out.append({"rel": REL_SAMPLE_EXPERIMENTS, "href": f"{self_url}/experiments"})
    elif rtype is ResourceType.EXPERIMENT:
        if parents.study:
            out.append({"rel": REL_STUDY, "href": item_url(base, ResourceType.STUDY, parents.study)})
        if parents.sample:
            out.append({"rel": REL_SAMPLE, "href": item_url(base, ResourceType.SAMPLE, parents.sample)})
        out.append({"rel": REL_EXPERIMENT_RUNS, "href": f"{self_url}/runs"})
    elif rtype is ResourceType.RUN:
        if parents.experiment:
            out.append({"rel": REL_EXPERIMENT, "href": item_url(base, ResourceType.EXPERIMENT, parents.experiment)})
        out.append({"rel": REL_RUN_ANALYSES, "href": f"{self_url}/analyses"})
        out.append({"rel": REL_RUN_DATA, "href": f"{self_url}/data"})
    elif rtype is ResourceType.ANALYSIS:
        if parents.study:
            out.append({"rel": REL_STUDY, "href": item_url(base, ResourceType.STUDY, parents.study)})
        out += [{"rel": REL_ANALYSIS_SAMPLE, "href": item_url(base, ResourceType.SAMPLE, a)} for a in parents.samples]
        out += [{"rel": REL_ANALYSIS_RUN, "href": item_url(base, ResourceType.RUN, a)} for a in parents.runs]
    if rtype is ResourceType.STUDY or rtype is ResourceType.SAMPLE:
        out.append({"rel": REL_SUBMITTER, "href": f"{base}/submitters/{quote(resource.owner, safe='')}"})
    out.append({"rel": REL_RELATED_RESOURCES, "href": f"{self_url}/related-resources"})
    return out


def link_header(link_list: list[dict[str, str]]) -> str:
    return ", ".join(f'<{link["href"]}>; rel="{link["rel"]}"' for link in link_list)


def external_ids(body: dict[str, Any]) -> list[dict[str, str]]:
    """IDENTIFIERS rendered as links to the archives that hold the record."""
    ids = body.get("identifiers") or {}
    out: list[dict[str, str]] = []
    primary = ids.get("primary_id")
    primary_value = primary.get("value") if isinstance(primary, dict) else primary
    if isinstance(primary_value, str) and primary_value.startswith(INSDC_PREFIXES):
        out.append({"namespace": "INSDC", "id": primary_value, "href": EXTERNAL["ena"].format(primary_value)})
    externals = ids.get("external_id") or []
    for item in externals if isinstance(externals, list) else [externals]:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            continue
        namespace = str(item.get("namespace", ""))
        template = EXTERNAL.get(namespace.lower())
        entry = {"namespace": namespace, "id": item["value"]}
        if template:
            entry["href"] = template.format(quote(item["value"]))
        out.append(entry)
    return out


def related_resources(resource: Resource) -> list[dict[str, str]]:
    """URL and cross-reference links of ``*_LINKS`` (publications, databases), as hrefs where possible."""
    name = resource.rtype.info.name
    container = resource.body.get(f"{name}_links") or {}
    items = container.get(f"{name}_link") or [] if isinstance(container, dict) else []
    out: list[dict[str, str]] = []
    for item in items if isinstance(items, list) else [items]:
        if not isinstance(item, dict):
            continue
        if url := item.get("url_link"):
            out.append({"label": str(url.get("label", "")), "href": str(url.get("url", ""))})
        if xref := item.get("xref_link"):
            db, ident = str(xref.get("db", "")), str(xref.get("id", ""))
            template = EXTERNAL.get(db.lower())
            out.append({"db": db, "id": ident, **({"href": template.format(quote(ident))} if template else {})})
    return out


def related_studies(resource: Resource) -> list[dict[str, str]]:
    descriptor = resource.body.get("descriptor") or {}
    related = (descriptor.get("related_studies") or {}).get("related_study") or []
    out: list[dict[str, str]] = []
    for item in related if isinstance(related, list) else [related]:
        link = item.get("related_link") if isinstance(item, dict) else None
        if isinstance(link, dict):
            db, ident = str(link.get("db", "")), str(link.get("id", ""))
            template = EXTERNAL.get(db.lower())
            out.append({"db": db, "id": ident, **({"href": template.format(quote(ident))} if template else {})})
    return out


def to_json(resource: Resource, base: str) -> dict[str, Any]:
    doc: dict[str, Any] = {**resource.body}
    doc["links"] = links(resource, base)
    doc["visibility"] = resource.visibility.value
    ext = external_ids(resource.body)
    if ext:
        doc["external_ids"] = ext
    if resource.hold_until:
        doc["hold_until"] = resource.hold_until.isoformat()
    if resource.receipt:
        doc["receipt"] = [a.model_dump(mode="json", exclude_none=True) for a in resource.receipt]
    if resource.files:
        doc["files"] = [
            {
                "name": f.name,
                "size": f.size,
                "sha256": f.sha256,
                "href": f"{item_url(base, resource.rtype, resource.accession)}/data/{quote(f.name)}",
            }
            for f in resource.files
        ]
    return doc


def to_xml(resources: list[Resource]) -> bytes:
    rtype = resources[0].rtype
    return gmi_to_xml([r.body for r in resources], rtype)


def page_json(page: Page, base: str, rtype: ResourceType) -> dict[str, Any]:
    return {"resources": [to_json(r, base) for r in page.items], "count": len(page.items)}


def review_json(review: Review, base: str) -> dict[str, Any]:
    status: dict[str, Any] = {"message": review.status.value}
    if review.status is ReviewStatus.APPROVED and review.accession:
        status[GMI_LINKS + review.rtype.info.name] = item_url(base, review.rtype, review.accession)
    if review.comment:
        status["comment"] = review.comment
    return {"status": status}


def accepted_for_review(review: Review, url: str) -> dict[str, Any]:
    return {
        "response": (
            f"Your {review.rtype.info.name} has been accepted for review. Automated parsers have verified "
            f"the metadata and found no errors; human review is required. See {url} to monitor the review."
        ),
        "links": [{"rel": "self", "href": url}],
    }


def accepted_set_for_review(rtype: ResourceType, urls: list[str]) -> dict[str, Any]:
    return {
        "response": (
            f"Your {len(urls)} {rtype.info.collection} have been accepted for review. Automated parsers have verified "
            "the metadata and found no errors; human review is required. Follow each review link to monitor it."
        ),
        "reviews": urls,
        "links": [{"rel": "review", "href": url} for url in urls],
    }


def to_html(resource: Resource, base: str) -> str:
    title = html.escape(resource.title or resource.alias)
    link_items = "".join(
        f'<li><a href="{html.escape(link["href"])}">{html.escape(link["rel"])}</a></li>'
        for link in links(resource, base)
    )
    body = html.escape(json.dumps(resource.body, indent=2, ensure_ascii=False))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(resource.accession)} - {title}</title></head><body>"
        f"<h1>{title}</h1><p>{html.escape(resource.rtype.info.name)} <code>{html.escape(resource.accession)}"
        f"</code>, alias <code>{html.escape(resource.alias)}</code></p><h2>Links</h2><ul>{link_items}</ul>"
        f"<h2>Metadata</h2><pre>{body}</pre></body></html>"
    )


def page_html(page: Page, base: str, rtype: ResourceType) -> str:
    rows = "".join(
        f'<li><a href="{html.escape(item_url(base, rtype, r.accession))}">{html.escape(r.accession)}</a> '
        f"{html.escape(r.title or r.alias)}</li>"
        for r in page.items
    )
    name = html.escape(rtype.info.collection)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{name}</title></head>'
        f"<body><h1>{name}</h1><ul>{rows}</ul></body></html>"
    )
