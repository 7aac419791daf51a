"""`scalecap-ray report`: one self-contained HTML page of an output, to read the captions
next to their images.  Thumbnails and charts are embedded; the page loads nothing.

Layout: the run summary and charts, then one card per row: the image, the initial caption
with each sentence marked kept or dropped (with its score), the questions and their
answers (used or filtered), the final caption, and the error of a failed row.  A search
box and status buttons filter the cards (a few lines of plain JavaScript).
"""

from __future__ import annotations

import base64
import html
import io
import logging
from typing import Any

from scalecap_ray.io import storage
from scalecap_ray.io.manifest import read_manifest, summarize
from scalecap_ray.io.output import OutputFolder
from scalecap_ray.report import charts

logger = logging.getLogger(__name__)

REPORT_FILE = "_report.html"  # "_": Parquet readers of the folder skip it
THUMB_SIDE = 224
COLUMNS = ("id", "image", "image_uri", "error", "error_stage", "caption", "init_caption",
           "sentences", "sentence_scores", "golden_sentences", "object_questions",
           "position_questions", "answers", "answer_kept", "final_caption")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#fff;padding:16px 24px;border-bottom:1px solid #dde}
h1{font-size:20px;margin:0 0 8px} .charts{display:flex;flex-wrap:wrap;gap:8px}
.charts svg{width:340px;height:auto;background:#fff}
table.summary{border-collapse:collapse;margin:8px 0} .summary td,.summary th{padding:2px 10px;
border-bottom:1px solid #eee;text-align:right} .summary th:first-child{text-align:left}
.controls{padding:12px 24px;position:sticky;top:0;background:#f4f5f7;z-index:1}
.controls button{margin-right:6px} .controls button.on{font-weight:bold}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px;
padding:0 24px 24px}
.card{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 2px #0002;
display:grid;grid-template-columns:232px 1fr;gap:12px}
.card.error{border-left:4px solid #c62828} .card img{max-width:224px;border-radius:4px}
.noimg{width:224px;height:120px;background:#eee;display:flex;align-items:center;
justify-content:center;color:#999} .id{color:#667;font-size:12px;word-break:break-all}
.kept{background:#e3f5e1} .dropped{background:#fde4e4;text-decoration:line-through}
.score{font-size:11px;color:#555;margin-left:2px} .err{color:#c62828;font-weight:600}
ul.qa{padding-left:18px;margin:4px 0} li.filtered{color:#999}
.final{background:#f0f4ff;padding:6px;border-radius:4px} h3{font-size:13px;margin:8px 0 2px}
"""

SCRIPT = """
const cards=[...document.querySelectorAll('.card')];let status='all';
function apply(){const q=document.getElementById('q').value.toLowerCase();
for(const c of cards){const okS=status==='all'||c.dataset.status===status;
const okQ=!q||c.textContent.toLowerCase().includes(q);c.style.display=okS&&okQ?'':'none';}
document.getElementById('shown').textContent=cards.filter(c=>c.style.display!=='none').length;}
for(const b of document.querySelectorAll('button[data-status]')){b.onclick=()=>{
status=b.dataset.status;document.querySelectorAll('button[data-status]').forEach(
x=>x.classList.toggle('on',x===b));apply();};}
document.getElementById('q').oninput=apply;apply();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def thumbnail(uri: str | None, retry: storage.RetryPolicy) -> str | None:
    """A small JPEG of the image as a data URL, or None when it cannot be read."""
    if not uri or "#row=" in uri:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(storage.read_bytes(uri, retry))) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMB_SIDE, THUMB_SIDE))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
    except Exception as exc:  # a report still shows the row, without its picture
        logger.debug("no thumbnail for %s: %s", uri, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _sentences(row: dict) -> str:
    golden = set(row.get("golden_sentences") or [])
    scores = row.get("sentence_scores") or []
    parts = []
    for i, sentence in enumerate(row.get("sentences") or []):
        mark = "kept" if sentence in golden else "dropped"
        score = scores[i] if i < len(scores) else None
        shown = "" if score is None else f'<span class="score">{score:.2f}</span>'
        parts.append(f'<span class="sentence {mark}" data-mark="{mark}">{_e(sentence)}</span>'
                     f"{shown} ")
    return "".join(parts) or _e(row.get("init_caption") or row.get("caption"))


def _answers(row: dict) -> str:
    questions = (row.get("object_questions") or []) + (row.get("position_questions") or [])
    answers = row.get("answers") or []
    kept = row.get("answer_kept") or []
    items = []
    for i, q in enumerate(questions):
        answer = answers[i] if i < len(answers) else None
        used = kept[i] if i < len(kept) else answer is not None
        cls = "used" if used else "filtered"
        items.append(f'<li class="{cls}"><b>{_e(q)}</b> {_e(answer)}</li>')
    return f'<ul class="qa">{"".join(items)}</ul>' if items else ""


def card(row: dict, thumb: str | None) -> str:
    status = "ok" if row.get("error") is None else "error"
    picture = f'<img src="{thumb}" alt="{_e(row.get("image"))}">' if thumb else \
        '<div class="noimg">no image</div>'
    body = [f'<div class="id">{_e(row.get("image"))}<br>{_e(row.get("id"))}</div>']
    if status == "error":
        body.append(f'<p class="err">failed at {_e(row.get("error_stage"))}: '
                    f'{_e(row.get("error"))}</p>')
    if row.get("sentences") or row.get("init_caption") or row.get("caption"):
        body.append(f"<h3>Initial caption</h3><p>{_sentences(row)}</p>")
    qa = _answers(row)
    if qa:
        body.append(f"<h3>Questions and answers</h3>{qa}")
    if row.get("final_caption"):
        body.append(f'<h3>Final caption</h3><p class="final">{_e(row["final_caption"])}</p>')
    return (f'<section class="card {status}" data-status="{status}" '
            f'data-id="{_e(row.get("id"))}"><div>{picture}</div><div>{"".join(body)}</div>'
            "</section>")


def _summary_table(manifest: dict) -> str:
    stages = manifest.get("stages") or {}
    head = ("<tr><th>stage</th><th>requests</th><th>prompt tokens</th><th>cached</th>"
            "<th>output tokens</th><th>seconds</th></tr>")
    body = "".join(
        f"<tr><th>{_e(name)}</th><td>{s['requests']}</td><td>{s['prompt_tokens']}</td>"
        f"<td>{s['cache_hit_rate']:.0%}</td><td>{s['output_tokens']}</td>"
        f"<td>{s['seconds']:.1f}</td></tr>" for name, s in stages.items())
    return f'<table class="summary">{head}{body}</table>'


def _charts(rows: list[dict], config: dict) -> str:
    if not any("init_caption" in r for r in rows):
        return ""
    before = [len((r.get("init_caption") or "").split()) for r in rows if r.get("init_caption")]
    after = [len((r.get("final_caption") or "").split()) for r in rows if r.get("final_caption")]
    scores = [s for r in rows for s in (r.get("sentence_scores") or []) if s is not None]
    yes_no = config.get("verify_mode") == "yes_no"
    threshold = config.get("yes_threshold" if yes_no else "tau_sentence", 0.0)
    questions = [len(r.get("object_questions") or []) for r in rows if r.get("error") is None]
    return "".join([charts.caption_lengths(before, after),
                    charts.sentence_scores(scores, threshold,
                                           "yes_threshold" if yes_no else "tau_sentence"),
                    charts.questions_per_image(questions)])


def render(output: str, *, limit: int | None = None) -> str:
    """The report page of an output folder."""
    folder = OutputFolder(output)
    run = folder.read_run()
    if run is None:
        raise ValueError(f"{output}: not a scalecap-ray output (no run record)")
    manifest = read_manifest(folder) or {"rows": {}, **summarize(folder)}
    rows: list[dict] = []
    if folder.parts():
        dataset = folder.dataset()  # only the columns the page shows
        rows = dataset.to_table(columns=[c for c in COLUMNS if c in dataset.schema.names]) \
            .to_pylist()
    rows.sort(key=lambda r: (r.get("error") is not None, r.get("image") or ""))
    shown = rows[:limit] if limit else rows
    retry = storage.DEFAULT_RETRY
    cards = "".join(card(r, thumbnail(r.get("image_uri"), retry)) for r in shown)
    errors = sum(r.get("error") is not None for r in rows)
    title = f"scalecap-ray report: {output}"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{_e(title)}</title><style>{STYLE}</style></head><body>
<header><h1>{_e(title)}</h1>
<p>{_e(run.get("job"))} job; {len(rows)} row(s): {len(rows) - errors} ok, {errors} failed;
{len(run.get("runs", []))} run(s). Showing {len(shown)}.</p>
{_summary_table(manifest)}<div class="charts">{_charts(rows, run.get("config", {}))}</div>
</header><div class="controls"><input id="q" placeholder="search captions" size="30">
<button data-status="all" class="on">all</button><button data-status="ok">ok</button>
<button data-status="error">failed</button> <span id="shown"></span> shown</div>
<main>{cards}</main><script>{SCRIPT}</script></body></html>
"""


def write_report(output: str, out_file: str | None = None, *, limit: int | None = None) -> str:
    """Write the report (default: `_report.html` in the output folder); its path."""
    page = render(output, limit=limit).encode()
    if out_file is None:
        OutputFolder(output).write_file(REPORT_FILE, page)
        return f"{output.rstrip('/')}/{REPORT_FILE}"
    with open(out_file, "wb") as f:
        f.write(page)
    return out_file
