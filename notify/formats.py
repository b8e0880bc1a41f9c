"""Webhook requests for each kind of receiver, from a message (one item or a digest); pure.

A message is rendered once as a `Document` (a title and lines, Chinese first with English
beside, each item with its signed link) and then written in each receiver's format:

- generic: JSON — one item: its payload plus `title`, `text` (plain), `link` and
  `idempotency_key`; a digest: `digest`, `idempotency_key`, `counts`, `items` (each payload with
  its `link`), `title`, `text`. Signed with HMAC-SHA256 over `"{timestamp}.{body}"` in
  `X-Hazmon-Signature: sha256=<hex>` with `X-Hazmon-Timestamp`; the key also in the
  `Idempotency-Key` header.
- wecom (企业微信群机器人, developer.work.weixin.qq.com/document/path/91770): `markdown`, content at
  most 4096 bytes; the key is part of the URL.
- dingtalk (钉钉自定义机器人, open.dingtalk.com/document/robots/custom-robot-access and
  …/message-types-and-data-format): `markdown` with `title` and `text` (paragraphs: DingTalk
  joins single line breaks); with a secret, `timestamp` (ms) and `sign` =
  base64(HMAC-SHA256(secret, "{timestamp}\\n{secret}")) in the URL query
  (…/customize-robot-security-settings).
- feishu (飞书自定义机器人, open.feishu.cn/document/client-docs/bot-v3/add-custom-bot): `post` (rich
  text: a title and paragraphs of `text` and `a` elements, the link clickable), at most 20 KB;
  with a secret, `timestamp` (s) and `sign` = base64(HMAC-SHA256(key="{timestamp}\\n{secret}",
  msg="")) in the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urlsplit
from zoneinfo import ZoneInfo

from hazmon.catalogue import catalogue
from hazmon.links import LinkScope, LinkSigner
from hazmon.vocabulary import ACTION_LABELS, Grade, WebhookKind
from notify.notification import HazardNotification, Item, Notification

SHANGHAI = ZoneInfo("Asia/Shanghai")
"""The default zone of times in messages (all of China keeps Beijing time)."""
DIGEST_LINES = 10
"""Items a digest's chat text lists (worst first); the rest are counted."""
MAX_CONTENT_BYTES: Mapping[WebhookKind, int] = {
    "generic": 1 << 20,
    "wecom": 4096,  # markdown.content "最长不超过4096个字节" (91770)
    "dingtalk": 4096,  # no documented bound; as WeCom's, to stay well inside what renders
    "feishu": 18 * 1024,  # "请求体的数据大小不能超过 20 KB" (add-custom-bot), less the JSON frame
}
LINK_LABEL = "查看并确认 / open and acknowledge"
HAZARD_LINK_LABEL = "查看 / open"
NEXT_STEPS: Mapping[Grade, str] = {
    Grade.RED: "立即停止相关作业、撤离危险区域人员，通知项目负责人和监理核查，处置后点链接确认 / "
    "stop the work and clear the danger zone now, call the project manager and the supervisor, "
    "confirm through the link once handled",
    Grade.ORANGE: "现场核查并采取控制措施，加密监测，处置后点链接确认 / check on site, take "
    "control measures, monitor more often, confirm through the link",
    Grade.YELLOW: "关注变化趋势，加强巡查 / watch the trend, step up patrols",
    Grade.BLUE: "注意观察 / keep watching",
    Grade.NORMAL: "无需处置 / nothing to do",
}
"""What to do next, by grade: hazmon's wording of the usual response to each warning level,
not a quotation of a standard."""
NOTICE_LABELS: Mapping[str, tuple[str, str]] = {
    "remind": ("未确认提醒", "reminder: not acknowledged"),
    "escalate": ("升级督办", "escalated: not acknowledged"),
}
LEVEL_LABELS: Mapping[str, tuple[str, str]] = {
    "site": ("项目", "site"),
    "county": ("区县", "county"),
    "city": ("市级", "city"),
    "province": ("省级", "province"),
}
HAZARD_LEVEL_LABELS: Mapping[str, tuple[str, str]] = {
    "major": ("重大事故隐患", "major hazard"),
    "general": ("一般隐患", "general hazard"),
}
HAZARD_ACTION_LABELS: Mapping[str, tuple[str, str]] = {
    "register": ("登记", "registered"),
    "assign": ("交办整改", "assigned for rectification"),
    "remind": ("到期提醒", "due soon"),
    "overdue": ("已逾期", "overdue"),
    "escalate": ("逾期升级督办", "escalated"),
    "supervise": ("挂牌督办", "listed for supervision"),
}
DUE_KIND_LABELS: Mapping[str, tuple[str, str]] = {
    "rectification": ("整改", "rectification"),
    "verification": ("复查验收", "verification"),
}


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What to POST: URL, headers and body bytes."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a message: text, optionally a link (shown as its label where the receiver
    renders links)."""

    text: str
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A rendered message: the title and its lines."""

    title: str
    lines: tuple[Line, ...]

    @property
    def plain(self) -> str:
        """The title and lines as plain text, links written out."""
        return "\n".join(
            [self.title, *(f"{ln.text}: {ln.link}" if ln.link else ln.text for ln in self.lines)]
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one subscription: its items (outbox order) and how to show them.

    Attributes:
        key: the idempotency key (`notify.policy.Fold.idempotency_key`).
        subscription_id: whose links these are.
        items: what it tells, in outbox order (a digest when more than one).
        created_s: when the message was made, epoch s: its links' issue time.
        links: how links are minted (None: no links, as for a signer-less test).
        time_zone: how times are shown (the sites' zone, Asia/Shanghai by default).
    """

    key: str
    subscription_id: int
    items: tuple[Item, ...]
    created_s: float
    links: LinkSigner | None = None
    time_zone: ZoneInfo = SHANGHAI

    def link(self, item: Item) -> str | None:
        """The signed link of one item: its alert's, or its hazard's."""
        if self.links is None:
            return None
        scope: LinkScope = "hazard" if isinstance(item, HazardNotification) else "alert"
        subject = item.hazard_id if isinstance(item, HazardNotification) else item.alert_id
        return self.links.url(scope, subject, self.subscription_id, self.created_s)

    @property
    def ordered(self) -> tuple[Item, ...]:
        """The items worst first (then in outbox order): what a digest lists."""
        return tuple(sorted(self.items, key=lambda i: -i.severity))


def alert_text(notification: Notification) -> tuple[str, str]:
    """A title and a bilingual plain text for one alert notification (without link or key)."""
    message = Message("", 0, (notification,), notification.reading_time.timestamp())
    document = _alert_document(message, notification)
    return document.title, document.plain


def render(message: Message) -> Document:
    """The message as a title and lines: one item's full text, or a digest."""
    if len(message.items) == 1:
        item = message.items[0]
        if isinstance(item, HazardNotification):
            return _hazard_document(message, item)
        return _alert_document(message, item)
    return _digest_document(message, DIGEST_LINES)


def build_request(
    kind: WebhookKind, url: str, secret: str | None, message: Message, now_ms: int
) -> WebhookRequest:
    """The HTTP request delivering `message` to a receiver of this kind.

    Args:
        kind: the receiver's kind.
        url: the subscription's URL (DingTalk's signature is appended to its query).
        secret: the signing secret, or None to send unsigned.
        message: what to say.
        now_ms: the time of sending, in ms since the epoch (the signatures' timestamp).
    """
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if kind == "generic":
        body = _dumps(_generic_body(message))
        headers["Idempotency-Key"] = message.key
        if secret:
            stamp = str(now_ms // 1000)
            headers["X-Hazmon-Timestamp"] = stamp
            headers["X-Hazmon-Signature"] = "sha256=" + sign_generic(secret, stamp, body)
        return WebhookRequest(url, headers, body)
    document = _fitting(message, kind)
    if kind == "wecom":
        return WebhookRequest(
            url,
            headers,
            _dumps({"msgtype": "markdown", "markdown": {"content": _wecom_markdown(document)}}),
        )
    if kind == "dingtalk":
        text = _dingtalk_markdown(document)
        body = _dumps({"msgtype": "markdown", "markdown": {"title": document.title, "text": text}})
        if secret:
            stamp = str(now_ms)
            digest = hmac.new(
                secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256
            ).digest()
            separator = "&" if urlsplit(url).query else "?"
            url = f"{url}{separator}timestamp={stamp}&sign={quote_plus(base64.b64encode(digest))}"
        return WebhookRequest(url, headers, body)
    post: dict[str, Any] = {
        "msg_type": "post",
        "content": {"post": {"zh_cn": {"title": document.title, "content": _feishu(document)}}},
    }
    if secret:
        stamp = str(now_ms // 1000)
        digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
        post = {"timestamp": stamp, "sign": base64.b64encode(digest).decode(), **post}
    return WebhookRequest(url, headers, _dumps(post))


def sign_generic(secret: str, stamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"{stamp}.{body}"`: what a generic receiver recomputes to verify."""
    return hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


# Over-limit answers: WeCom errcode 45009 (api freq out of limit, developer.work.weixin.qq.com/
# document/path/90313), DingTalk 130101 (send too fast), Feishu 11232 (add-custom-bot) and
# 99991400 (server-docs/api-call-guide/frequency-control), HTTP 429 for anyone.
THROTTLED_CODES = frozenset({45009, 130101, 11232, 99991400})


def accepted(kind: WebhookKind, status: int, body: bytes) -> str | None:
    """None if the receiver accepted the message, else why not.

    WeCom and DingTalk answer HTTP 200 with a non-zero `errcode` on failure, Feishu with a
    non-zero `code`: a 200 alone is not a delivery.
    """
    if not 200 <= status < 300:
        return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
    if kind == "generic":
        return None
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):  # a JSON array or scalar is no robot's answer either
        return f"unreadable answer: {body[:200].decode('utf-8', 'replace')}"
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code not in (0, "0"):
        return f"receiver refused: {json.dumps(answer, ensure_ascii=False)[:200]}"
    return None


def throttled(status: int, body: bytes) -> bool:
    """Whether a refusal says "too many messages" (the robot's rate limit)."""
    if status == 429:
        return True
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return False
    if not isinstance(answer, dict):
        return False
    code = answer.get("errcode", answer.get("code"))
    try:
        return int(str(code)) in THROTTLED_CODES
    except ValueError:
        return False


# --- documents -----------------------------------------------------------------------------


def _alert_document(message: Message, n: Notification) -> Document:
    action_zh, action_en = ACTION_LABELS[n.action]
    if n.notice != "transition":
        action_zh, action_en = NOTICE_LABELS[n.notice]
        if n.reminder:
            action_zh, action_en = f"{action_zh} #{n.reminder}", f"{action_en} #{n.reminder}"
    title = f"【{n.grade.warning_zh} {action_zh}】{n.site_name} {n.site_code}/{n.device_code}"
    lines = [
        Line(f"[{n.grade.label_en.upper()} {action_en}]"),
        Line(n.message_zh),
        Line(n.message_en),
    ]
    if n.notice == "remind":
        lines.append(Line(_open_for(message, n)))
    if n.escalation is not None:
        level_zh, level_en = LEVEL_LABELS.get(n.escalation["level"], ("上级", "next level"))
        minutes = round(n.escalation["after_s"] / 60)
        region = n.escalation["region_code"]
        lines.append(
            Line(
                f"{minutes} 分钟内无人确认，已升级至{level_zh}（{region}） / nobody acknowledged "
                f"within {minutes} min: escalated to the {level_en} level ({region})"
            )
        )
    if n.work_name or n.work_code:
        lines.append(Line(f"工程 / work: {_work(n.work_name, n.work_code, n.hazard_kind)}"))
    lines += [
        Line(f"监测项 / metric: {_metric(n)} ({n.device_code})"),
        Line(f"测值 / value: {_value(n, n.value)}；阈值 / threshold: {_value(n, n.threshold)}"),
        Line(f"时间 / at: {_local(n.reading_at, message.time_zone)}"),
        Line(f"处置 / next: {_next_step(n)}"),
    ]
    link = message.link(n)
    if link:
        lines.append(Line(LINK_LABEL, link))
    if message.key:
        lines.append(Line(f"编号 / ref: {message.key}"))
    return Document(title, tuple(lines))


def _hazard_document(message: Message, h: HazardNotification) -> Document:
    level_zh, level_en = HAZARD_LEVEL_LABELS[h.level]
    action_zh, action_en = HAZARD_ACTION_LABELS[h.action]
    title = f"【{level_zh} {action_zh}】{h.site_name} {h.site_code}"
    lines = [Line(f"[{level_en.upper()} {action_en}]"), Line(f"隐患 / hazard: {h.title}")]
    if h.work_name or h.work_code:
        lines.append(Line(f"工程 / work: {_work(h.work_name, h.work_code, None)}"))
    if h.responsible_unit or h.responsible_person:
        who = " ".join(x for x in (h.responsible_unit, h.responsible_person) if x)
        lines.append(Line(f"责任单位和人 / responsible: {who}"))
    if h.deadline:
        lines.append(Line(f"整改期限 / deadline: {_local(h.deadline, message.time_zone)}"))
    if h.note.strip():
        lines.append(Line(f"说明 / note: {h.note.strip()}"))
    lines += [
        Line(f"时间 / at: {_local(h.at, message.time_zone)}"),
        Line(f"处置 / next: {_hazard_next_step(h, message.time_zone)}"),
    ]
    link = message.link(h)
    if link:
        lines.append(Line(HAZARD_LINK_LABEL, link))
    if message.key:
        lines.append(Line(f"编号 / ref: {message.key}"))
    return Document(title, tuple(lines))


def _digest_document(message: Message, shown: int) -> Document:
    ordered = message.ordered
    first = ordered[0]
    where = f"{first.site_name} {first.site_code}"
    works = {(i.work_name, i.work_code) for i in ordered if isinstance(i, Notification)}
    if len(works) == 1:
        name, code = works.pop()
        if name or code:
            where += f" · {_work(name, code, None)}"
    title = f"【监测汇总 {len(ordered)}条】{where}"
    times = sorted(_time_of(i).timestamp() for i in ordered)
    span = _span(times[0], times[-1], message.time_zone)
    lines = [
        Line(f"[DIGEST: {len(ordered)} notifications] {span}"),
        Line(" · ".join(f"{zh} / {en} {n}" for (zh, en), n in _counts(ordered))),
    ]
    for number, item in enumerate(ordered[:shown], start=1):
        lines.append(Line(f"{number}. {_summary(item, message.time_zone)}", message.link(item)))
    if len(ordered) > shown:
        more = len(ordered) - shown
        lines.append(Line(f"……另有 {more} 条 / {more} more"))
    worst = ordered[0]
    next_step = (
        _hazard_next_step(worst, message.time_zone)
        if isinstance(worst, HazardNotification)
        else _next_step(worst)
    )
    lines.append(Line(f"处置 / next: {next_step}"))
    lines.append(Line(f"编号 / ref: {message.key}"))
    return Document(title, tuple(lines))


def _counts(items: Sequence[Item]) -> list[tuple[tuple[str, str], int]]:
    """(label, count) worst first: alerts by grade, hazards by level."""
    counts: Counter[tuple[int, str, str]] = Counter()
    for item in items:
        if isinstance(item, HazardNotification):
            zh, en = HAZARD_LEVEL_LABELS[item.level]
            counts[(item.severity, zh, en)] += 1
        else:
            counts[(int(item.grade), item.grade.colour_zh, item.grade.code)] += 1
    return [((zh, en), n) for (_, zh, en), n in sorted(counts.items(), key=lambda c: -c[0][0])]


def _summary(item: Item, zone: ZoneInfo) -> str:
    if isinstance(item, HazardNotification):
        level_zh, _ = HAZARD_LEVEL_LABELS[item.level]
        action_zh, action_en = HAZARD_ACTION_LABELS[item.action]
        due = f" · {_local(item.due or item.deadline, zone)}" if item.due or item.deadline else ""
        return f"【{level_zh} {action_zh} / {action_en}】{item.title}{due}"
    action_zh, action_en = ACTION_LABELS[item.action]
    if item.notice != "transition":
        action_zh, action_en = NOTICE_LABELS[item.notice]
    return (
        f"【{item.grade.warning_zh} {action_zh} / {action_en}】{item.device_code} "
        f"{_metric(item)} {_value(item, item.value)} / {_value(item, item.threshold)} · "
        f"{_clock(item.reading_time.timestamp(), zone)}"
    )


def _next_step(n: Notification) -> str:
    if n.notice == "transition" and n.action == "resolve":
        return "已恢复正常，无需处置 / back to normal, nothing to do"
    if n.notice == "transition" and n.action == "acknowledge":
        return "已有人确认处置 / someone has taken it"
    return NEXT_STEPS[n.grade]


def _hazard_next_step(h: HazardNotification, zone: ZoneInfo) -> str:
    kind_zh, kind_en = DUE_KIND_LABELS.get(h.due_kind or "rectification", ("整改", "rectification"))
    due = _local(h.due, zone) if h.due else "—"
    if h.action == "register":
        return "请责任单位立即组织整改并报告 / the responsible unit starts rectifying and reports"
    if h.action == "assign":
        return "请按期完成整改 / rectify by the deadline"
    if h.action == "remind":
        return f"{kind_zh}将于 {due} 到期 / {kind_en} due {due}"
    if h.action == "overdue":
        return f"{kind_zh}已于 {due} 逾期，请立即处理 / {kind_en} overdue since {due}: act now"
    if h.action == "escalate":
        reason = f"：{h.reason}" if h.reason else ""
        return f"已升级至 {h.to_region}{reason} / escalated to {h.to_region}"
    authority = h.supervising_authority or "主管部门 / the authority"
    return f"已由 {authority} 挂牌督办 / listed for supervision by {authority}"


def _open_for(message: Message, n: Notification) -> str:
    since = datetime.fromisoformat(n.opened_at) if n.opened_at else n.reading_time
    minutes = max(0, round((message.created_s - since.timestamp()) / 60))
    return f"已持续 {minutes} 分钟未确认 / open {minutes} min, not acknowledged"


def _work(name: str | None, code: str | None, hazard_kind: str | None) -> str:
    text = " ".join(x for x in (name, f"({code})" if code else None) if x)
    kind = catalogue().get(hazard_kind or "")
    return f"{text} · {kind.name_zh} / {kind.name_en}" if kind else text


def _metric(n: Notification) -> str:
    kind = catalogue().get(n.hazard_kind or "")
    metric = kind.metrics.get(n.metric) if kind else None
    return f"{metric.name_zh} / {metric.name_en}" if metric else n.metric


def _value(n: Notification, value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    kind = catalogue().get(n.hazard_kind or "")
    metric = kind.metrics.get(n.metric) if kind else None
    unit = metric.unit if metric else ""
    if unit == "1" or (metric is None and n.metric.endswith("_ratio")):
        return f"{value * 100:.1f}%"
    return f"{value:g} {unit}".strip()


def _time_of(item: Item) -> datetime:
    return (
        datetime.fromisoformat(item.at)
        if isinstance(item, HazardNotification)
        else item.reading_time
    )


def _local(iso: str | None, zone: ZoneInfo, *, seconds: bool = True) -> str:
    if not iso:
        return "—"
    return _local_s(datetime.fromisoformat(iso).timestamp(), zone, seconds=seconds)


def _clock(at_s: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at_s, UTC).astimezone(zone).strftime("%H:%M:%S")


def _span(first_s: float, last_s: float, zone: ZoneInfo) -> str:
    """`2026-03-01 16:30:00–16:31:10 (UTC+08:00)`, the date twice only across midnight."""
    first, last = _local_s(first_s, zone, seconds=True), _local_s(last_s, zone, seconds=True)
    if first == last:
        return first
    if first[:10] == last[:10]:
        return f"{first[:19]}–{last[11:]}"
    return f"{first} – {last}"


def _local_s(at_s: float, zone: ZoneInfo, *, seconds: bool) -> str:
    at = datetime.fromtimestamp(at_s, UTC).astimezone(zone)
    offset = at.strftime("%z")
    return at.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + (
        f" (UTC{offset[:3]}:{offset[3:]})"
    )


# --- receivers' formats --------------------------------------------------------------------


def _generic_body(message: Message) -> dict[str, Any]:
    document = render(message)
    if len(message.items) == 1:
        item = message.items[0]
        payload = (
            dict(item.payload) if isinstance(item, HazardNotification) else {**item.to_payload()}
        )
        return {
            **payload,
            "title": document.title,
            "text": document.plain,
            "link": message.link(item),
            "idempotency_key": message.key,
        }
    counts: Counter[str] = Counter(
        i.level if isinstance(i, HazardNotification) else i.grade.code for i in message.items
    )
    return {
        "digest": True,
        "idempotency_key": message.key,
        "counts": dict(sorted(counts.items())),
        "items": [
            {
                **(dict(i.payload) if isinstance(i, HazardNotification) else i.to_payload()),
                "link": message.link(i),
            }
            for i in message.items
        ],
        "title": document.title,
        "text": document.plain,
    }


def _fitting(message: Message, kind: WebhookKind) -> Document:
    """The message rendered within the receiver's size limit: a digest lists fewer items, a
    single item's lines are cut from the end of its longest text."""
    limit = MAX_CONTENT_BYTES[kind]
    if len(message.items) > 1:
        for shown in range(DIGEST_LINES, 0, -1):
            document = _digest_document(message, shown)
            if _size(kind, document) <= limit:
                return document
        return _digest_document(message, 1)
    document = render(message)
    while _size(kind, document) > limit:
        longest = max(range(len(document.lines)), key=lambda i: len(document.lines[i].text))
        line = document.lines[longest]
        cut = Line(line.text[: max(1, len(line.text) * 3 // 4)] + "…", line.link)
        if cut.text == line.text:
            break
        document = Document(
            document.title, (*document.lines[:longest], cut, *document.lines[longest + 1 :])
        )
    return document


def _size(kind: WebhookKind, document: Document) -> int:
    if kind == "wecom":
        return len(_wecom_markdown(document).encode())
    if kind == "dingtalk":
        return len(_dingtalk_markdown(document).encode())
    return len(_dumps(_feishu(document)))


def _wecom_markdown(document: Document) -> str:
    # WeCom renders a line break as one; links as [label](url); <font color> for emphasis
    lines = [f"**{document.title}**"]
    for line in document.lines:
        if line.link:
            lines.append(f"[{line.text}]({line.link})")
        elif line.text.startswith("编号 / ref:"):
            lines.append(f'<font color="comment">{line.text}</font>')
        else:
            lines.append(line.text)
    return "\n".join(lines)


def _dingtalk_markdown(document: Document) -> str:
    # DingTalk joins single line breaks: every line is a paragraph
    lines = [f"#### {document.title}"]
    lines += [f"[{ln.text}]({ln.link})" if ln.link else ln.text for ln in document.lines]
    return "\n\n".join(lines)


def _feishu(document: Document) -> list[list[dict[str, str]]]:
    return [
        [{"tag": "a", "text": ln.text, "href": ln.link}]
        if ln.link
        else [{"tag": "text", "text": ln.text}]
        for ln in document.lines
    ]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
