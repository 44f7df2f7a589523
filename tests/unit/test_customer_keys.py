"""Which key seals a customer's facts (ledger/keys.py): erasure makes what came before unreadable,
never what came after, also when a crash makes facts again."""

from __future__ import annotations

import pytest

from ledger.keys import CustomerKey, choose_keys, new_key, seal, unseal

SOURCE = "spoc.touchpoints:0"


def test_a_box_opens_with_its_key_only() -> None:
    key, other = new_key("c1", SOURCE, 0), new_key("c1", SOURCE, 0)
    box = seal(key, b"facts")
    assert unseal(key.key_id, key.key, box) == b"facts" and b"facts" not in box
    with pytest.raises(ValueError, match="does not open"):
        unseal(key.key_id, other.key, box)
    with pytest.raises(ValueError, match="does not open"):
        unseal(other.key_id, key.key, box)  # the id is authenticated: a box cannot be passed off as another key's


def test_a_new_customer_gets_one_key_for_the_stretch_and_a_known_one_keeps_theirs() -> None:
    known = new_key("c2", SOURCE, 3)
    choice = choose_keys(SOURCE, [("c1", 10), ("c1", 12), ("c2", 11)], [], [known], recorded=9)
    assert [(k.customer_id, k.from_offset) for k in choice.new] == [("c1", 10)]
    assert choice.keys["c1", 10] is choice.keys["c1", 12] is choice.new[0]
    assert choice.keys["c2", 11] is known


def test_facts_after_an_erasure_in_the_stretch_get_a_key_the_erasure_does_not_delete() -> None:
    old = new_key("c1", SOURCE, 3)
    choice = choose_keys(SOURCE, [("c1", 10), ("c1", 15)], [("c1", 12)], [old], recorded=9)
    assert choice.keys["c1", 10] is old  # deleted by the erasure at 12 (from_offset 3 <= 12)
    [fresh] = choice.new
    assert choice.keys["c1", 15] is fresh and fresh.from_offset == 15 > 12  # kept by it


def test_facts_made_again_for_a_stored_stretch_whose_key_is_gone_are_sealed_with_a_key_never_stored() -> None:
    # A crash after the store recorded up to 20 (an erasure at 12 deleted the key that sealed offset 5)
    # and before the facts were published: the rebuild makes offset 5's facts again.
    choice = choose_keys(SOURCE, [("c1", 5)], [], [], recorded=20)
    assert choice.new == [] and choice.keys["c1", 5].customer_id == "c1"
    # The customer came back at 15 (a key from 15): facts from before it are not sealed with that key either.
    returned = new_key("c1", SOURCE, 15)
    choice = choose_keys(SOURCE, [("c1", 5), ("c1", 16)], [], [returned], recorded=4)
    assert choice.new == [] and choice.keys["c1", 5] is not returned and choice.keys["c1", 16] is returned


def test_keys_of_another_source_are_not_used() -> None:
    elsewhere = CustomerKey("k", "c1", b"\0" * 32, "spoc.touchpoints:1", 0)
    choice = choose_keys(SOURCE, [("c1", 7)], [], [elsewhere], recorded=None)
    assert choice.keys["c1", 7] is not elsewhere and choice.new == [choice.keys["c1", 7]]
