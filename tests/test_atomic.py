"""srlab.atomic.publish: the one no-clobber rename behind image, video and animation outputs."""

from __future__ import annotations

import os

import pytest

from srlab.atomic import publish


@pytest.mark.parametrize("hard_links", [True, False])
def test_publish_never_replaces_an_existing_file_unless_asked(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # a file system without hard links: the check-then-rename fallback

        def no_link(*_a, **_k):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    tmp, dst = tmp_path / "t.part", tmp_path / "out.png"
    tmp.write_bytes(b"new")
    dst.write_bytes(b"user's")
    with pytest.raises(FileExistsError):
        publish(tmp, dst, overwrite=False)
    assert dst.read_bytes() == b"user's" and tmp.read_bytes() == b"new"
    other = tmp_path / "fresh.png"
    publish(tmp, other, overwrite=False)
    assert other.read_bytes() == b"new"
    tmp2 = tmp_path / "t2.part"
    tmp2.write_bytes(b"replaced")
    publish(tmp2, dst, overwrite=True)
    assert dst.read_bytes() == b"replaced" and not tmp2.exists()
