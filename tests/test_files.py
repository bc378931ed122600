import pytest

from anet.files import atomic_write


def test_atomic_write_text_bytes_and_writer(tmp_path):
    assert atomic_write(tmp_path / "a.txt", "hi\n").read_text() == "hi\n"
    assert atomic_write(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert atomic_write(tmp_path / "c.json", lambda p: p.write_text("{}")).read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = atomic_write(tmp_path / "f.png", b"old")

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]
