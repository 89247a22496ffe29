"""The one behaviour every :class:`crashed.ports.Lake` adapter shares.

Each test runs against the local folder lake and against :class:`GCSLake` on the Cloud Storage
emulator (fixtures in ``gcs_fixtures.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from crashed.adapters.local_lake import LocalLake
from crashed.errors import InputError, NotFoundError
from crashed.ports import Lake, ObjectInfo

ALL_BYTES = bytes(range(256)) * 4
UNICODE_TEXT = "Crash at Ørsted Ave — ünïcödé ✓ 交通事故 🚗\n"


@dataclass
class Subject:
    """A lake under test and the (existing, empty) bucket its URIs use."""

    kind: str
    lake: Lake
    bucket: str

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"


@pytest.fixture(params=["local", "gcs"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    if request.param == "local":
        return Subject("local", LocalLake(tmp_path / "lake"), "crashed-test")
    bucket = request.getfixturevalue("gcs_bucket")
    return Subject("gcs", request.getfixturevalue("gcs_lake"), bucket)


def expected_info(uri: str, data: bytes) -> ObjectInfo:
    return ObjectInfo(
        uri=uri,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        bytes=len(data),
    )


def test_satisfies_the_protocol(subject: Subject) -> None:
    assert isinstance(subject.lake, Lake)


# -- round trips ------------------------------------------------------------------------------


def test_put_get_bytes_round_trip(subject: Subject) -> None:
    uri = subject.uri("models/v1/model.json")
    data = b'{"weights": [1, 2, 3]}'

    info = subject.lake.put_bytes(uri, data, content_type="application/json")

    assert info == expected_info(uri, data)
    assert subject.lake.get_bytes(uri) == data


@pytest.mark.parametrize(
    "data",
    [ALL_BYTES, UNICODE_TEXT.encode("utf-8"), b"", b"\x00" * 10, b"\r\n\r\n"],
    ids=["all-256-byte-values", "unicode-utf8", "empty", "nuls", "crlf"],
)
def test_content_is_stored_byte_for_byte(subject: Subject, data: bytes) -> None:
    uri = subject.uri("blobs/data.bin")

    assert subject.lake.put_bytes(uri, data) == expected_info(uri, data)
    assert subject.lake.get_bytes(uri) == data
    assert subject.lake.checksum(uri) == expected_info(uri, data)


def test_unicode_text_round_trip(subject: Subject) -> None:
    uri = subject.uri("reports/summary.md")
    subject.lake.put_bytes(uri, UNICODE_TEXT.encode("utf-8"), content_type="text/markdown")
    assert subject.lake.get_bytes(uri).decode("utf-8") == UNICODE_TEXT


def test_unicode_and_space_in_object_names(subject: Subject) -> None:
    uri = subject.uri("reports/ünï cödé 事故.json")
    subject.lake.put_bytes(uri, b"{}")
    assert subject.lake.exists(uri)
    assert subject.lake.get_bytes(uri) == b"{}"
    assert subject.lake.list(subject.uri("reports/")) == [uri]


def test_put_file_get_file_round_trip(subject: Subject, tmp_path: Path) -> None:
    source = tmp_path / "source.parquet"
    source.write_bytes(ALL_BYTES * 100)
    uri = subject.uri("exports/crashes.parquet")

    info = subject.lake.put_file(uri, source)
    target = tmp_path / "downloads" / "nested" / "crashes.parquet"
    returned = subject.lake.get_file(uri, target)

    assert info == expected_info(uri, source.read_bytes())
    assert returned == target
    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["crashes.parquet"]


def test_get_file_replaces_an_existing_file(subject: Subject, tmp_path: Path) -> None:
    uri = subject.uri("a.bin")
    subject.lake.put_bytes(uri, b"new")
    target = tmp_path / "a.bin"
    target.write_bytes(b"old content that is longer")

    subject.lake.get_file(uri, target)

    assert target.read_bytes() == b"new"


def test_put_file_of_a_missing_file_is_an_input_error(subject: Subject, tmp_path: Path) -> None:
    uri = subject.uri("never.bin")
    with pytest.raises(InputError, match="does not exist"):
        subject.lake.put_file(uri, tmp_path / "missing.bin")
    assert not subject.lake.exists(uri)


def test_overwrite_replaces_content_and_checksum(subject: Subject) -> None:
    uri = subject.uri("state/latest.json")
    subject.lake.put_bytes(uri, b"first version, quite long")

    info = subject.lake.put_bytes(uri, b"second")

    assert info == expected_info(uri, b"second")
    assert subject.lake.get_bytes(uri) == b"second"
    assert subject.lake.checksum(uri) == expected_info(uri, b"second")
    assert subject.lake.list(subject.uri("state/")) == [uri]


# -- get_file is atomic -----------------------------------------------------------------------


def test_get_file_of_a_missing_object_leaves_no_file(subject: Subject, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    uri = subject.uri("missing/model.bin")

    with pytest.raises(NotFoundError) as caught:
        subject.lake.get_file(uri, out / "model.bin")

    assert uri in str(caught.value)
    assert list(out.iterdir()) == []  # neither the target nor a temporary file


def test_get_file_of_a_missing_object_keeps_the_old_file(subject: Subject, tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"previous model")

    with pytest.raises(NotFoundError):
        subject.lake.get_file(subject.uri("missing/model.bin"), target)

    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


# -- exists / list ----------------------------------------------------------------------------


def test_exists(subject: Subject) -> None:
    uri = subject.uri("data/2024/01.csv")
    assert not subject.lake.exists(uri)

    subject.lake.put_bytes(uri, b"a,b\n")

    assert subject.lake.exists(uri)
    assert not subject.lake.exists(subject.uri("data/2024"))  # a "folder" is not an object
    assert not subject.lake.exists(subject.uri("data/2024/01"))  # nor is a partial name
    assert not subject.lake.exists("gs://crashed-no-such-bucket/data/2024/01.csv")


@pytest.fixture
def listed(subject: Subject) -> Subject:
    for key in [
        "data/2025/01.csv",
        "data/2024/02.csv",
        "data/2024/01.csv",
        "data/readme.txt",
        "data-old/x.csv",
        "other/deep/er/x.csv",
    ]:
        subject.lake.put_bytes(subject.uri(key), key.encode())
    return subject


@pytest.mark.parametrize(
    ("prefix", "keys"),
    [
        ("data/", ["data/2024/01.csv", "data/2024/02.csv", "data/2025/01.csv", "data/readme.txt"]),
        ("data/2024/", ["data/2024/01.csv", "data/2024/02.csv"]),
        ("data/2024", ["data/2024/01.csv", "data/2024/02.csv"]),
        ("data/20", ["data/2024/01.csv", "data/2024/02.csv", "data/2025/01.csv"]),
        ("data/2024/0", ["data/2024/01.csv", "data/2024/02.csv"]),
        ("data/2024/01.csv", ["data/2024/01.csv"]),
        (
            "data",
            [
                "data-old/x.csv",
                "data/2024/01.csv",
                "data/2024/02.csv",
                "data/2025/01.csv",
                "data/readme.txt",
            ],
        ),
        ("other/", ["other/deep/er/x.csv"]),
        ("other/deep/e", ["other/deep/er/x.csv"]),
        ("nothing/", []),
        ("data/2024/03", []),
        ("dat/", []),
    ],
)
def test_list_by_prefix(listed: Subject, prefix: str, keys: list[str]) -> None:
    result = listed.lake.list(listed.uri(prefix))
    assert result == [listed.uri(key) for key in keys]
    assert result == sorted(result)


@pytest.mark.parametrize("suffix", ["", "/"])
def test_list_whole_bucket(listed: Subject, suffix: str) -> None:
    result = listed.lake.list(f"gs://{listed.bucket}{suffix}")
    assert len(result) == 6
    assert result == sorted(result)


def test_list_of_a_missing_bucket_is_empty(subject: Subject) -> None:
    assert subject.lake.list("gs://crashed-no-such-bucket/data/") == []


# -- checksum ---------------------------------------------------------------------------------


def test_checksum_matches_hashlib(subject: Subject) -> None:
    data = ALL_BYTES * 3000  # ~3 MB, more than one download chunk
    uri = subject.uri("big/blob.bin")
    subject.lake.put_bytes(uri, data)

    info = subject.lake.checksum(uri)

    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.md5 == hashlib.md5(data).hexdigest()
    assert info.bytes == len(data)
    assert info.uri == uri
    assert info.as_dict() == expected_info(uri, data).as_dict()


# -- errors -----------------------------------------------------------------------------------

MISSING_CALLS: dict[str, Callable[[Lake, str, Path], object]] = {
    "get_bytes": lambda lake, uri, tmp: lake.get_bytes(uri),
    "get_file": lambda lake, uri, tmp: lake.get_file(uri, tmp / "x"),
    "checksum": lambda lake, uri, tmp: lake.checksum(uri),
}


@pytest.mark.parametrize("call", MISSING_CALLS, ids=list(MISSING_CALLS))
@pytest.mark.parametrize("where", ["object", "bucket"])
def test_missing_object_is_not_found_naming_the_uri(
    subject: Subject, tmp_path: Path, call: str, where: str
) -> None:
    uri = (
        subject.uri("no/such/object.bin")
        if where == "object"
        else "gs://crashed-no-such-bucket/no/such/object.bin"
    )
    subject.lake.put_bytes(subject.uri("no/such/other.bin"), b"x")  # the folder exists

    with pytest.raises(NotFoundError) as caught:
        MISSING_CALLS[call](subject.lake, uri, tmp_path)

    assert uri in caught.value.message
    assert "\n" not in caught.value.message


MALFORMED = [
    "s3://bucket/key",
    "bucket/key",
    "gs:/bucket/key",
    "gs://Bucket/key",
    "gs://b/key",  # bucket name too short
    "gs://bucket/../key",
    "gs://bucket/a/../../key",
    "gs://bucket/./key",
    "",
]

OBJECT_CALLS: dict[str, Callable[[Lake, str, Path], object]] = {
    "put_bytes": lambda lake, uri, tmp: lake.put_bytes(uri, b"x"),
    "put_file": lambda lake, uri, tmp: lake.put_file(uri, tmp / "src"),
    "get_bytes": lambda lake, uri, tmp: lake.get_bytes(uri),
    "get_file": lambda lake, uri, tmp: lake.get_file(uri, tmp / "dst"),
    "exists": lambda lake, uri, tmp: lake.exists(uri),
    "checksum": lambda lake, uri, tmp: lake.checksum(uri),
}


@pytest.mark.parametrize("call", OBJECT_CALLS, ids=list(OBJECT_CALLS))
@pytest.mark.parametrize("uri", [*MALFORMED, "gs://bucket", "gs://bucket/"])
def test_malformed_uri_is_an_input_error(
    subject: Subject, tmp_path: Path, call: str, uri: str
) -> None:
    (tmp_path / "src").write_bytes(b"x")
    with pytest.raises(InputError):
        OBJECT_CALLS[call](subject.lake, uri, tmp_path)
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("prefix", MALFORMED)
def test_malformed_list_prefix_is_an_input_error(subject: Subject, prefix: str) -> None:
    with pytest.raises(InputError):
        subject.lake.list(prefix)


# -- local lake only --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri", ["gs://bucket/../x", "gs://bucket/a/../../x", "gs://bucket/a/../../../etc/passwd"]
)
def test_local_lake_refuses_dot_dot_escapes(tmp_path: Path, uri: str) -> None:
    lake = LocalLake(tmp_path / "lake")

    with pytest.raises(InputError):
        lake.put_bytes(uri, b"escaped")
    with pytest.raises(InputError):
        lake.get_bytes(uri)

    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "lake" / "x").exists()


def test_local_lake_refuses_a_symlink_out_of_the_lake(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "lake" / "bucket").mkdir(parents=True)
    (tmp_path / "lake" / "bucket" / "link").symlink_to(outside, target_is_directory=True)
    lake = LocalLake(tmp_path / "lake")

    with pytest.raises(InputError, match="escapes"):
        lake.put_bytes("gs://bucket/link/x", b"escaped")

    assert list(outside.iterdir()) == []
