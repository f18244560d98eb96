"""What a model's or dataset's URI and metadata may be (projects.artifacts), and that the API schema's URI pattern
says the same as the service."""

from __future__ import annotations

import re

import pytest

from allotment.errors import ValidationFailed
from allotment.projects import artifacts

GOOD_URIS = ["/data/imagenet", "/", "file:///mnt/models/x", "s3://bucket", "s3://bucket/k/v.pt", "gs://b/p",
             "az://container/p", "abfss://fs@acct.dfs.core.windows.net/p", "hdfs://namenode:8020/d",
             "https://github.com/org/repo.git", "git://host/repo", "ssh://git@host/repo.git",
             "git+https://host/repo", "git@github.com:org/repo.git"]
BAD_URIS = [("", "must not be empty"), ("data/x", "relative path"), ("ftp://host/x", "unknown scheme 'ftp'"),
            ("S3://bucket", "lower case"), ("s3:///key", "names its host or bucket"), ("file://x", "file:///"),
            ("/a b", "spaces"), ("/a\u200bb", "zero-width"), ("/" + "x" * artifacts.MAX_URI, "at most")]


@pytest.mark.parametrize("uri", GOOD_URIS)
def test_accepted_uris_match_the_schema_pattern(uri):
    assert artifacts.check_uri(uri) == uri
    assert re.fullmatch(artifacts.URI_REGEX, uri)


@pytest.mark.parametrize(("uri", "words"), BAD_URIS)
def test_refused_uris_say_why_and_the_schema_refuses_them_too(uri, words):
    with pytest.raises(ValidationFailed) as caught:
        artifacts.check_uri(uri)
    assert caught.value.errors[0].field == "uri" and words in caught.value.errors[0].message
    assert not (re.fullmatch(artifacts.URI_REGEX, uri) and len(uri) <= artifacts.MAX_URI)


@pytest.mark.parametrize("metadata", [None, {}, {"framework": "pytorch", "map": 0.61, "epochs": 3, "final": True,
                                                 "notes": None, "tags": ["a", 1, False]}])
def test_flat_metadata_is_accepted(metadata):
    assert artifacts.check_metadata(metadata) == metadata


@pytest.mark.parametrize(("metadata", "words"), [
    ([1, 2], "must be a JSON object"),
    ({"nested": {"a": 1}}, "nested: values are texts, numbers"),
    ({"deep": [[1]]}, "deep: values are texts"),
    ({"x": float("nan")}, "x: numbers must be finite"),
    ({" ": 1}, "printable characters, not only spaces"),
    ({"k" * 64: 1}, "must be 1 to 63"),
    ({"t": "x" * 1025}, "texts are at most 1024"),
    ({"l": list(range(65))}, "lists hold at most 64"),
    ({f"k{i}": i for i in range(65)}, "at most 64 keys"),
])
def test_metadata_refusals_name_the_key_and_the_rule(metadata, words):
    with pytest.raises(ValidationFailed) as caught:
        artifacts.check_metadata(metadata)
    assert caught.value.errors[0].field == "metadata" and words in caught.value.errors[0].message
