"""The response an HTTP step checks and extracts from: status, headers, the (capped) body.

Everything the step makes of a body's bytes is made here, and whatever a hostile body
holds, making it ends in a value or a step failure, never in an exception of ours:

- **text**, in the declared charset when it is one of the encodings of the web (the
  WHATWG list, as Python names them; UTF-8 when none is declared). Any other charset
  (unknown to Python, not a text codec like ``base64``, or one decoded by pure-Python
  code that grows faster than the body, like ``punycode``) fails as ``protocol`` when an
  expectation or an extraction needs the text;
- **JSON**, parsed from the bytes (RFC 8259: UTF-8, whatever the charset says): not JSON,
  not UTF-8, nested deeper than the parser recurses, or numbers past Python's digit
  limit fail as ``protocol``; so does a value too deep to write back as JSON;
- **what a person saw**, for failure messages: never fails, and costs at most a linear
  scan of the body's start (html.parser took 25 s on 32 KB of ``<a <a <a`` and raised
  AssertionError on ``<![``). Secrets are masked before the text is cut (a secret
  straddling the cut would otherwise leave its beginning, which no masker recognises).
"""

from __future__ import annotations

import encodings
import html
import json
import re
from encodings.aliases import aliases as _ALIASES
from functools import cache, cached_property
from typing import Any

import httpx

from agent.language import jsonpath
from agent.run.context import MASK_WINDOW, Mask, StepFailed, masked_cut
from agent.run.results import FailureReason

__all__ = ["Reply", "describe_body", "json_text", "snippet"]

SNIPPET_CHARS = 200
_PAGE_CHARS = 256 * 1024  # what a message reads of a page: its title and first text are on top


def _codec(label: str) -> str:
    """The codec ``label`` names, as the module Python would load for it (``UTF8``,
    ``utf-8``: ``utf_8``), found in the alias table without loading it: the CJK codecs
    cost ~1 MB and an agent loads one only when a page is in it."""
    name = encodings.normalize_encoding(label.lower())
    return _ALIASES.get(name) or _ALIASES.get(name.replace(".", "_")) or name


_WEB_CHARSETS = frozenset(
    _codec(label)
    for label in (
        "utf-8", "utf-16", "utf-16-le", "utf-16-be", "ascii", "latin-1",
        "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5", "iso8859-6", "iso8859-7",
        "iso8859-8", "iso8859-9", "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15",
        "iso8859-16", "koi8-r", "koi8-u", "cp866", "mac-roman", "mac-cyrillic", "cp874",
        "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
        "cp1258", "gbk", "gb2312", "gb18030", "big5", "big5hkscs", "euc-jp", "iso2022-jp",
        "shift-jis", "cp932", "euc-kr", "cp949",
    )
)  # fmt: skip
_CHARSET = re.compile(r';\s*charset\s*=\s*"?([^";\s]+)', re.IGNORECASE)


class Reply:
    """The final response of a step (after redirects), its body read up to the cap."""

    def __init__(
        self,
        response: httpx.Response,
        body: bytes,
        duration: float | None,
        mask: Mask = str,
    ) -> None:
        self.mask = mask  # applied to what messages quote, before it is cut
        self.status_code = response.status_code
        self.reason_phrase = response.reason_phrase
        self.headers = response.headers
        self.body = body
        self.duration = duration  # from the trace events, redirect hops summed
        declared = _CHARSET.search(self.headers.get("content-type", ""))
        self._charset = declared[1] if declared else "utf-8"

    @cached_property
    def _text(self) -> str | None:
        return _decoded(self.body, self._charset)

    @property
    def text(self) -> str:
        """The body as text; a charset it cannot be read in is a protocol failure."""
        if self._text is None:
            raise StepFailed(
                FailureReason.PROTOCOL,
                f"expected a body in a charset of the web (such as UTF-8), "
                f"got charset {self._charset!r}: {self.description()}",
            )
        return self._text

    def description(self) -> str:
        """What a person would see in the body, for failure messages: never fails."""
        if self._text is not None:
            return describe_body(self._text, mask=self.mask)
        text = self.body[: 4 * _PAGE_CHARS].decode("utf-8", errors="replace")
        return describe_body(text, mask=self.mask)

    @cached_property
    def _document(self) -> tuple[Any, str]:
        """The parsed JSON document and "", or None and why the body is not one."""
        try:
            return json.loads(self.body), ""
        except RecursionError:
            return None, "JSON nested too deeply to read"
        except ValueError:  # not JSON, not UTF-8, a number past Python's digit limit
            kind = self.headers.get("content-type", "no content type")
            return None, f"{kind}: {self.description()}"

    def json_value(self, path: str) -> tuple[bool, Any]:
        """``(found, value)`` at a JSON path; a body that is not JSON is a protocol failure."""
        document, why_not = self._document
        if why_not:
            message = f"expected a JSON body for {path}, got {why_not}"
            raise StepFailed(FailureReason.PROTOCOL, message)
        return jsonpath.find(document, path)


def json_text(value: Any) -> str:
    """A value from a reply's JSON written back as JSON; one too deep to write is a
    protocol failure (a document a little shallower than the parser's limit is read
    fine and can still be too deep to write from a deeper call stack)."""
    try:
        return json.dumps(value)
    except RecursionError:
        raise StepFailed(
            FailureReason.PROTOCOL, "expected a JSON value, got one nested too deeply to write"
        ) from None


def _decoded(body: bytes, charset: str) -> str | None:
    """``body`` decoded in ``charset``, or None when that is not a charset of the web."""
    name = _codec(charset)
    return body.decode(name, errors="replace") if name in _WEB_CHARSETS else None


# a long word in pieces (bounded copies), each longer than what is masked and shown, so
# that no piece boundary (a space once joined) falls inside a secret that is shown
_WORD = re.compile(rf"\S{{1,{2 * MASK_WINDOW}}}")


def snippet(text: str, limit: int = SNIPPET_CHARS, mask: Mask = str) -> str:
    """``text`` on one line, masked, truncated, quoted: for "got ..." in failure messages."""
    words: list[str] = []
    size = 0
    for word in _WORD.finditer(text):  # lazily: only as far as the snippet needs
        words.append(word[0])
        size += len(word[0]) + 1
        if size > limit + 1 + MASK_WINDOW:
            break
    flat = masked_cut(" ".join(words), limit, mask)
    return repr(flat) if flat else "an empty body"


_HTML = re.compile(r"\s*(<!doctype html|<html)", re.IGNORECASE)


def describe_body(text: str, limit: int = SNIPPET_CHARS, mask: Mask = str) -> str:
    """What a person would see in ``text``: for an HTML page its title and visible text
    (not its markup, whose first 200 characters are always the same), else a snippet."""
    if not _HTML.match(text):
        return snippet(text, limit, mask)
    title, seen = _visible(text[:_PAGE_CHARS])
    title = masked_cut(" ".join(title.split()), limit, mask)
    shown = snippet(seen, limit, mask)
    return f"a page titled {title!r} showing {shown}" if title else f"a page showing {shown}"


_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)[^<>]*>?")  # stops at the next <: linear
_HIDDEN = ("script", "style", "template", "noscript")


def _visible(page: str) -> tuple[str, str]:
    """The title and the text a browser would render of ``page``, in one pass that only
    moves forward (str.find and anchored matches), so its cost is linear in the page."""
    title: list[str] = []
    text: list[str] = []
    into, at = text, 0
    while at < len(page):
        start = page.find("<", at)
        into.append(page[at : len(page) if start < 0 else start])
        if start < 0:
            break
        if page.startswith("<!--", start):
            end, skip = page.find("-->", start + 4), 3
        elif page.startswith(("<!", "<?"), start):  # doctype, CDATA, processing instruction
            end, skip = page.find(">", start), 1
        elif tag := _TAG.match(page, start):
            closing, name = tag[1], tag[2].lower()
            if name == "title":
                into = text if closing else title
            if name not in _HIDDEN or closing:
                at = tag.end()
                continue
            found = _end_tag(name).search(page, tag.end())  # skip to </script
            end, skip = (found.start() if found else -1), 0
        else:
            into.append("<")  # "a < b"
            at = start + 1
            continue
        at = len(page) if end < 0 else end + skip
    return html.unescape("".join(title)), html.unescape(" ".join(text))


@cache
def _end_tag(name: str) -> re.Pattern[str]:
    return re.compile(f"</{name}", re.IGNORECASE)
