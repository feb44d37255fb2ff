

def test_parse_init_from_names_an_alias_or_a_version():
    import pytest

    from replearn.lib.errors import ReplearnInputError
    from replearn.serving.registered import parse_init_from

    assert parse_init_from("replearn-word2vec@champion") == ("replearn-word2vec", "champion", None)
    assert parse_init_from("my.model@12") == ("my.model", None, "12")
    for bad in ("replearn-word2vec", "@champion", "a@", "a b@c", "../x@champion"):
        with pytest.raises(ReplearnInputError, match="NAME@ALIAS"):
            parse_init_from(bad)
