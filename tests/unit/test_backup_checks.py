"""restore checks a backup whole: every file listed and matching, every name inside the backup (issue 10.7)."""

import json
import os

import pytest

from edgeclu.errors import EdgecluError
from edgeclu.lifecycle import backup as bk
from tests.unit.test_lifecycle_files import _fake_backup


def _meta(d):
    return json.loads((d / "meta.json").read_text())


def _set_meta(d, meta):
    (d / "meta.json").write_text(json.dumps(meta))


def _no_digests(d):
    _set_meta(d, {**_meta(d), "sha256": {}})


def _digests_missing(d):
    meta = _meta(d)
    del meta["sha256"]
    _set_meta(d, meta)


def _absolute_data_file(d):
    outside = d.parent / "elsewhere.db"
    outside.write_text("someone else's datastore")
    meta = _meta(d)
    meta["data_file"] = str(outside)
    _set_meta(d, meta)


def _escaping_listed_name(d):
    (d.parent / "x").write_text("outside")
    meta = _meta(d)
    meta["sha256"]["../x"] = bk.sha256_file(d.parent / "x")
    _set_meta(d, meta)


def _escaping_data_file(d):
    meta = _meta(d)
    meta["data_file"] = "../other/snap"
    _set_meta(d, meta)


def _unlisted_file(d):
    (d / "extra.sh").write_text("#!/bin/sh\n")


def _data_file_not_listed(d):
    meta = _meta(d)
    del meta["sha256"]["snap"]
    (d / "snap").unlink()
    _set_meta(d, meta)


def _token_not_listed(d):
    meta = _meta(d)
    del meta["sha256"]["token"]
    (d / "token").unlink()
    _set_meta(d, meta)


def _mismatch(d):
    (d / "node-passwords.json").write_text('{"pi-1": "other"}')


def _symlink_out(d):
    target = d.parent / "outside-token"
    target.write_text((d / "token").read_text())
    (d / "token").unlink()
    os.symlink(target, d / "token")


def _bad_datastore(d):
    _set_meta(d, {**_meta(d), "datastore": "mysql; rm -rf /"})


def _not_an_object(d):
    (d / "meta.json").write_text("[1, 2]")


@pytest.mark.parametrize(("spoil", "message"), [
    (_no_digests, "backup home-1: meta.json lists no sha256 digests; refusing to restore it"),
    (_digests_missing, "backup home-1: meta.json lists no sha256 digests; refusing to restore it"),
    (_absolute_data_file, "backup home-1: meta.json names '{root}/elsewhere.db', which is not a file name "
                          "inside the backup directory; refusing to restore it"),
    (_escaping_listed_name, "backup home-1: meta.json names '../x', which is not a file name inside the backup "
                            "directory; refusing to restore it"),
    (_escaping_data_file, "backup home-1: meta.json names '../other/snap', which is not a file name inside the "
                          "backup directory; refusing to restore it"),
    (_unlisted_file, "backup home-1: extra.sh not listed in meta.json; refusing to restore it"),
    (_data_file_not_listed, "backup home-1: snap is not listed in meta.json; refusing to restore it"),
    (_token_not_listed, "backup home-1: token is not listed in meta.json; refusing to restore it"),
    (_mismatch, "backup home-1: node-passwords.json does not match its sha256 in meta.json; refusing to restore it"),
    (_symlink_out, "backup home-1: token is missing or not a regular file; refusing to restore it"),
    (_bad_datastore, "backup home-1: meta.json: datastore 'mysql; rm -rf /' is not etcd or sqlite; refusing"),
    (_not_an_object, "backup home-1: meta.json is not a JSON object; refusing to restore it"),
], ids=lambda x: getattr(x, "__name__", "")[1:] or None)
def test_restore_refuses_a_backup_that_is_not_whole(tmp_path, spoil, message):
    root = tmp_path / "b"
    d = _fake_backup(root, "home-1", "2025-01-01T00:00:00Z")
    assert bk.load_backup("home-1", root).data_file == d / "snap"  # whole: accepted
    spoil(d)
    with pytest.raises(EdgecluError) as e:
        bk.load_backup("home-1", root)
    assert str(e.value).startswith(message.format(root=root))
