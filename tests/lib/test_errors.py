"""lib/errors.explain_os_error: one line with what happened, the path(s) and the remedy."""

from __future__ import annotations

import errno

from replearn.lib.errors import explain_os_error, is_explained_os_error


def test_a_full_disk_names_the_path_and_the_remedy():
    e = OSError(errno.ENOSPC, "No space left on device", "/data/h/runs/x/vectors.npz.tmp")
    assert is_explained_os_error(e)
    assert explain_os_error(e) == ("no space left on the device: /data/h/runs/x/vectors.npz.tmp (free space there, "
                                   "or point --home (or the corpus) elsewhere); no output was left half-written")


def test_a_rename_names_both_paths_and_permissions_say_so():
    e = PermissionError(errno.EACCES, "Permission denied", "/a.tmp", None, "/a")
    assert explain_os_error(e).startswith("permission denied: /a.tmp -> /a (give your user read/write access")


def test_other_errnos_keep_their_own_words_and_are_not_explained():
    e = OSError(errno.EBADF, "Bad file descriptor")
    assert not is_explained_os_error(e) and not is_explained_os_error(ValueError("x"))
    assert explain_os_error(e) == "Bad file descriptor: (no path given); no output was left half-written"
