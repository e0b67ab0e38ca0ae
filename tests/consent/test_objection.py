"""An objection to direct marketing stops it at once (Art. 21(3), P3.8)."""

from __future__ import annotations

from factories import register
from privault.consent.channels import ConsentChannel, Source
from privault.rights.service import Channel
from privault.runtime import Runtime


def test_p3_8_an_objection_withdraws_every_marketing_consent_at_once(at: Runtime) -> None:
    alice, bob = register(at, "alice"), register(at, "bob")
    with at.transaction() as session:
        consents = at.channel_consents(session)
        consents.give(alice.subject_id, ConsentChannel.MARKETING_EMAIL, Source.WEB)
        consents.give(alice.subject_id, ConsentChannel.NEWSLETTER, Source.VERIFIED_ACCOUNT)
        consents.give(bob.subject_id, ConsentChannel.MARKETING_EMAIL, Source.WEB)
        request_id = (
            at.rights(session)
            .file(alice.subject_id, "objection", Channel.API, actor="alice", verified=True)
            .id
        )
    assert at.rights_engine().run_once().to_staff == 1
    with at.transaction() as session:
        mine = at.channel_consents(session).state(alice.subject_id)
        theirs = at.channel_consents(session).state(bob.subject_id)
        history = at.rights(session).history(request_id)
    assert not mine[ConsentChannel.MARKETING_EMAIL]
    assert not mine[ConsentChannel.MARKETING_POST], "post marketing is opt-out: now objected"
    assert not mine[ConsentChannel.THIRD_PARTY]
    assert mine[ConsentChannel.NEWSLETTER], "a newsletter asked for is not marketing"
    assert theirs[ConsentChannel.MARKETING_EMAIL]
    assert any(
        "direct marketing stopped" in e.note and "marketing_email" in e.note for e in history
    )
    assert history[-1].state == "in_progress"
