"""Each chat robot's body and signature checked against its documented format, recomputed the
way each vendor's page shows it (not with `notify.formats`' own code):

- 企业微信 群机器人配置说明, https://developer.work.weixin.qq.com/document/path/91770
  (markdown message; content "最长不超过4096个字节"; 20 messages a minute per robot);
  error codes https://developer.work.weixin.qq.com/document/path/90313 (45009: over the limit)
- 钉钉 自定义机器人接入, https://open.dingtalk.com/document/robots/custom-robot-access (20 a
  minute, then throttled 10 minutes; errcode 130101 "send too fast");
  消息类型, https://open.dingtalk.com/document/robots/message-types-and-data-format (markdown:
  title and text);
  安全设置, https://open.dingtalk.com/document/robots/customize-robot-security-settings (加签:
  timestamp in ms within an hour, sign = urlEncode(base64(HmacSHA256(secret, timestamp + "\\n" +
  secret))) in the query)
- 飞书 自定义机器人使用指南, https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
  (post: title and paragraphs of text/a/at/img elements; request body at most 20 KB; 100 a
  minute and 5 a second; 签名校验: timestamp in s, sign = base64(HmacSHA256(key=timestamp + "\\n"
  + secret, msg="")); error 11232 when over the limit)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

import pytest

from notify import Message, Notification, accepted, build_request, sign_generic, throttled
from tests.notify.test_golden import LINKS, MESSAGES, NOW_MS, PAYLOAD_V2

SECRET = "SEC0123456789abcdef"


def _big_digest() -> Message:
    """A hundred notifications with long names: what a storm at a big site looks like."""
    items = tuple(
        Notification.from_payload(
            {
                **PAYLOAD_V2,
                "transition_id": i,
                "alert_id": i,
                "site_name": "光谷中心城三期超高层综合体项目" * 3,
                "work_name": "1号塔吊（QTZ315 平头塔式起重机）",
                "message_zh": "起重力矩百分比 102%，超过额定起重力矩的报警值" * 4,
                "grade": 1 + i % 4,
                "grade_to": 1 + i % 4,
            }
        )
        for i in range(1, 101)
    )
    return Message("hzm-s3-d1-100-100-0000000000", 3, items, NOW_MS / 1000, LINKS)


SAMPLES = [*MESSAGES.values(), _big_digest()]


@pytest.mark.parametrize("message", SAMPLES, ids=[*MESSAGES, "big-digest"])
def test_wecom_gets_a_markdown_message_within_4096_bytes(message: Message) -> None:
    request = build_request("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                            None, message, NOW_MS)  # fmt: skip
    body = json.loads(request.body)
    assert set(body) == {"msgtype", "markdown"}
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"content"}
    content = body["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert f"编号 / ref: {message.key}" in content
    assert "](https://hazmon.example.cn/links/v1." in content  # a markdown link
    assert request.url == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"


@pytest.mark.parametrize("message", SAMPLES, ids=[*MESSAGES, "big-digest"])
def test_dingtalk_gets_markdown_and_the_documented_signature(message: Message) -> None:
    now_ms = int(time.time() * 1000)
    url = "https://oapi.dingtalk.com/robot/send?access_token=tok"
    request = build_request("dingtalk", url, SECRET, message, now_ms)
    parts = urllib.parse.urlsplit(request.url)
    query = urllib.parse.parse_qs(parts.query)
    assert query["access_token"] == ["tok"]
    timestamp = query["timestamp"][0]
    assert (
        abs(int(timestamp) - time.time() * 1000) < 3600 * 1000
    )  # "与请求调用时间误差不能超过1小时"
    # the page's Python sample
    secret_enc = SECRET.encode("utf-8")
    string_to_sign_enc = f"{timestamp}\n{SECRET}".encode()
    hmac_code = hmac.new(secret_enc, string_to_sign_enc, digestmod=hashlib.sha256).digest()
    expected = urllib.parse.quote_plus(base64.b64encode(hmac_code))
    assert request.url.endswith(f"&sign={expected}")
    body = json.loads(request.body)
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"title", "text"}
    assert body["markdown"]["title"]
    assert body["markdown"]["text"].startswith("#### ")
    assert len(body["markdown"]["text"].encode()) <= 4096
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"  # "UTF-8"


@pytest.mark.parametrize("message", SAMPLES, ids=[*MESSAGES, "big-digest"])
def test_feishu_gets_a_post_within_20_kb_and_the_documented_signature(message: Message) -> None:
    now_ms = int(time.time() * 1000)
    request = build_request("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/x", SECRET,
                            message, now_ms)  # fmt: skip
    assert len(request.body) <= 20 * 1024
    body = json.loads(request.body)
    timestamp = body["timestamp"]
    assert isinstance(timestamp, str)
    assert abs(int(timestamp) - time.time()) < 3600
    # the page's Python sample: the string to sign is the key, the message is empty
    string_to_sign = f"{timestamp}\n{SECRET}"
    hmac_code = hmac.new(string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    assert body["sign"] == base64.b64encode(hmac_code).decode("utf-8")
    assert body["msg_type"] == "post"
    post = body["content"]["post"]
    assert set(post) == {"zh_cn"}
    assert isinstance(post["zh_cn"]["title"], str)
    assert post["zh_cn"]["title"]
    paragraphs: list[list[dict[str, Any]]] = post["zh_cn"]["content"]
    assert paragraphs
    assert all(isinstance(p, list) and p for p in paragraphs)
    for element in (e for p in paragraphs for e in p):
        assert element["tag"] in {"text", "a", "at", "img"}
        if element["tag"] == "a":
            assert set(element) == {"tag", "text", "href"}
            assert element["href"].startswith("https://hazmon.example.cn/links/v1.")
        if element["tag"] == "text":
            assert set(element) == {"tag", "text"}


def test_a_generic_receiver_can_verify_and_deduplicate() -> None:
    request = build_request("generic", "https://h/x", "s3cret", MESSAGES["digest"], NOW_MS)
    stamp = request.headers["X-Hazmon-Timestamp"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + request.body, hashlib.sha256)
    assert request.headers["X-Hazmon-Signature"] == f"sha256={expected.hexdigest()}"
    assert request.headers["X-Hazmon-Signature"] == "sha256=" + sign_generic(
        "s3cret", stamp, request.body
    )
    body = json.loads(request.body)
    assert request.headers["Idempotency-Key"] == body["idempotency_key"] == MESSAGES["digest"].key
    assert [i["transition_id"] for i in body["items"]] == [42, 43, 44]  # what the key covers
    assert body["counts"] == {"orange": 2, "red": 1}


@pytest.mark.parametrize(
    ("kind", "status", "answer"),
    [
        ("wecom", 200, b'{"errcode":45009,"errmsg":"api freq out of limit"}'),
        (
            "dingtalk",
            200,
            b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}',
        ),
        (
            "feishu",
            200,
            b'{"code":11232,"msg":"frequency limited psm[lark.oapi.app_platform_runtime]"}',
        ),
        ("generic", 429, b"slow down"),
    ],
)
def test_each_robots_over_the_limit_answer_is_a_throttled_refusal(
    kind: str, status: int, answer: bytes
) -> None:
    assert accepted(kind, status, answer) is not None  # type: ignore[arg-type]
    assert throttled(status, answer)
    assert not throttled(200, b'{"errcode":93000,"errmsg":"invalid webhook url"}')
