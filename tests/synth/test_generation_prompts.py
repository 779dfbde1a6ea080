"""The teacher's view of a target: both items, in a balanced random order, and never the label."""

from __future__ import annotations

from prefscribe.prompts import get_prompts
from prefscribe.synth import SynthConfig, Target, generation_messages, synthesize

from .conftest import pair_key

LABELS = ("CHOSEN ITEM BY THE USER: ", "REJECTED ITEM BY THE USER: ")


def _run(world, users, **config):
    w = world(users)
    result = synthesize(users, w.models(), SynthConfig(streaming=True, **config))
    prompts = [p for kind, p in w.teacher.calls if kind == "generate" and w.is_generation(p)]
    return w, result, prompts


def test_label_never_reaches_a_generation_prompt(world, movielens_users, psoups_users):
    for users, config in ((movielens_users[:8], {}), (psoups_users[:30], {"min_segment": 1, "min_valid": 1})):
        w, result, prompts = _run(world, users, **config)
        assert len(prompts) >= 2 * len(users) // 3, "too few generation prompts to test anything"
        by_id = {u.user_id: u for u in users}
        seen = 0
        for outcome in result.outcomes:
            for details in outcome["passes"].values():
                for t in details["targets"]:
                    seen += 1
                    assert isinstance(t["chosen_first"], bool)
        assert seen == len(prompts)
        for prompt in prompts:
            content = prompt[-1]["content"]
            a, b = w.generation_pair(prompt)
            chosen = w.chosen_of[pair_key(a, b)]
            rejected = b if chosen == a else a
            history, _, decision = content.partition("## A Later Decision")
            # The decision shows both items with neutral names only...
            assert f"Item A: {a}\n" in decision and f"Item B: {b}" in decision
            assert "CHOSEN" not in decision and "REJECTED" not in decision
            # ...and no labelled interaction of the history gives its answer away.
            block = f"{LABELS[0]}{chosen}\n---\n{LABELS[1]}{rejected}\n"
            assert block not in history
        assert by_id  # users were real records


def test_prompt_is_the_same_whichever_item_the_user_took(psoups_users):
    """Swap the target's label and its shown order: the teacher's prompt is byte-identical, so it holds
    no information about which item was chosen."""
    prompts = get_prompts()
    for user in psoups_users[:20]:
        rendered = prompts.render_history(user.history[:2], None, lambda s: len(s.split()))
        h = user.history[3]
        swapped = h.model_copy(update={"chosen": h.rejected, "rejected": h.chosen})
        for chosen_first in (True, False):
            original = generation_messages(prompts, rendered, "Likes clear answers.", Target(3, h, 0.95, chosen_first))
            relabelled = generation_messages(prompts, rendered, "Likes clear answers.",
                                             Target(3, swapped, 0.95, not chosen_first))
            assert original == relabelled


def test_item_order_is_balanced_over_many_targets(world, movielens_users):
    w, result, prompts = _run(world, movielens_users)
    firsts = []
    for prompt in prompts:
        a, b = w.generation_pair(prompt)
        firsts.append(w.chosen_of[w.key(_pair(a, b))] == a)
    assert len(firsts) >= 150
    share = sum(firsts) / len(firsts)
    assert 0.4 <= share <= 0.6, share
    # And the outcome records the same order the prompt showed.
    recorded = [t["chosen_first"] for o in result.outcomes for d in o["passes"].values() for t in d["targets"]]
    assert sorted(recorded) == sorted(firsts)


def _pair(a, b):
    from prefscribe.schema import Interaction

    return Interaction(chosen=a, rejected=b)


def test_history_shown_to_the_teacher_holds_no_target(world, movielens_users):
    w, _, prompts = _run(world, movielens_users[:6])
    for prompt in prompts:
        a, b = w.generation_pair(prompt)
        history = prompt[-1]["content"].partition("## END OF INTERACTIONS")[0]
        assert a not in history and b not in history
