"""MCP Apps' `ui://` URIs under a namespace (catalog/uris.py, pure): the scheme stays, the mapping reverses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpmux.catalog.uris import expose_meta, expose_result_uris, expose_uri, split_uri

VIEW = "ui://weather/view.html"
EXPOSED_VIEW = "ui://app.mcpmux/weather/view.html"
APP_MIME = "text/html;profile=mcp-app"


def test_a_ui_uri_keeps_its_scheme_when_namespaced():
    assert expose_uri("app", VIEW) == EXPOSED_VIEW


def test_a_namespaced_ui_uri_splits_back_to_its_namespace_and_original():
    assert split_uri(EXPOSED_VIEW) == ("app", VIEW)


def test_other_resource_uris_keep_the_mcpmux_scheme():
    assert expose_uri("app", "file:///x") == "mcpmux://app/file:///x"
    assert split_uri("mcpmux://app/file:///x") == ("app", "file:///x")


def test_a_server_without_a_namespace_keeps_its_ui_uris():
    assert expose_uri(None, VIEW) == VIEW


@pytest.mark.parametrize("uri", ["ui://weather/view.html", "ui://app/x", "ui://.mcpmux/x", "ui://app.mcpmux"])
def test_a_ui_uri_mcpmux_did_not_namespace_is_not_split(uri: str):
    assert split_uri(uri) is None


@given(
    prefix=st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True),
    rest=st.text(min_size=1, max_size=40).filter(lambda s: "\n" not in s),
)
def test_every_ui_uri_round_trips_through_its_namespace(prefix: str, rest: str):
    uri = f"ui://{rest}"
    assert split_uri(expose_uri(prefix, uri)) == (prefix, uri)


def test_a_tools_meta_has_its_view_exposed_and_its_visibility_untouched():
    meta = {"ui": {"resourceUri": VIEW, "visibility": ["app"]}, "other": 1}
    assert expose_meta(meta, "app") == {"ui": {"resourceUri": EXPOSED_VIEW, "visibility": ["app"]}, "other": 1}


def test_the_legacy_ui_resource_uri_key_is_exposed_too():
    assert expose_meta({"ui/resourceUri": VIEW}, "app") == {"ui/resourceUri": EXPOSED_VIEW}


def test_meta_without_an_app_view_is_left_alone():
    assert expose_meta({"ui": {"visibility": ["model"]}}, "app") is None
    assert expose_meta(None, "app") is None


def test_a_results_meta_and_links_name_the_exposed_view():
    link = {"type": "resource_link", "uri": VIEW, "name": "v", "mimeType": APP_MIME}
    result = {"content": [{"type": "text", "text": "t"}, link], "_meta": {"ui": {"resourceUri": VIEW}}}
    exposed = expose_result_uris(result, "app")
    assert exposed is not None
    assert exposed["_meta"] == {"ui": {"resourceUri": EXPOSED_VIEW}}
    assert exposed["content"][1] == {**link, "uri": EXPOSED_VIEW}


def test_a_result_with_only_an_app_meta_is_rewritten():
    exposed = expose_result_uris({"content": [], "_meta": {"ui/resourceUri": VIEW}}, "app")
    assert exposed == {"content": [], "_meta": {"ui/resourceUri": EXPOSED_VIEW}}
