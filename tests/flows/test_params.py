"""The flows' parameter models (flows/params.py): what they normalise on the way in."""

from replearn.flows.params import MultisenseParams, Word2VecParams


def test_probes_are_normalised_like_the_corpus_and_queries():
    assert Word2VecParams(probes=["SHIP", "Česká", "ＫＩＮＧ", "e\u0301tat"]).probes == ["ship", "česká", "king", "état"]
    assert MultisenseParams(probes=["Bank"]).probes == ["bank"]
    assert Word2VecParams().probes is None
