"""The public names of each package are exactly these (a new name is a decision, made here), and the
README's library example runs as written."""

import importlib
import inspect
import re
import runpy
from pathlib import Path

import pytest

import prefscribe

from .conftest import REPO

SURFACE = {
    "prefscribe": [
        "Backend", "BackendError", "Choice", "ChoiceTask", "InferConfig", "InferJob", "InferenceFailure", "Inferrer",
        "InputError", "IntegrityError", "Interaction", "Judge", "ModelSpecError", "ModelUnavailableError",
        "PrefscribeError", "Profile", "ResultCache", "UserRecord", "infer", "load_backend", "read_history",
        "read_profile", "stream"],
    "prefscribe.cli": ["app", "main"],
    "prefscribe.client": [
        "ApiError", "AsyncClient", "AuthenticationError", "Client", "Conflict", "InvalidRequest", "ModelFailed",
        "ModelUnavailable", "NotFound", "RateLimited", "ServerError", "ServiceUnreachable"],
    "prefscribe.llm": [
        "Backend", "BackendInfo", "Completion", "Conversation", "DEFAULT_SPEC", "GREEDY", "Message", "ModelSpec",
        "OptionScores", "Sampling", "Watch", "generate_watched", "load_backend", "parse_spec", "register"],
    "prefscribe.prompts": [
        "JUDGE_OPTIONS", "JUDGE_PREFILL", "ParseFailure", "ParsedProfile", "PromptSet", "RenderedHistory", "Style",
        "clip_item", "get_prompts", "parse_profile", "parse_selection"],
    "prefscribe.data": [
        "CrossDomainPair", "DATA_ENV", "LOADERS", "Thirds", "clean_tags", "cross_domain_pairs", "history_text", "interleave_noise",
        "load", "load_amazon", "load_dsp", "load_hicupid", "load_mind", "load_movielens", "load_personamem", "load_psoups",
        "load_upi", "minilm_embedder", "positive_only", "reference_thirds", "resolve_data_path", "split_segments",
        "Split", "split_of", "user_rng"],
    "prefscribe.measure": [
        "DEFAULT_THRESHOLD", "MIN_PEOPLE", "MIN_TAG_COMPARISONS", "TAG_THRESHOLD", "Axis", "Calibration", "Comparison",
        "Kept", "KeptTag", "MeasureConfig",
        "MeasuredWriter", "NoReferenceError", "Quality", "QualityStats", "Scored", "Vocabulary", "base_model", "fit_axes", "population",
        "position", "read", "score", "shipped"],
    "prefscribe.evaluate": [
        "COMPARISONS", "DEFAULT_WRITER", "METHODS", "SETTINGS", "WRITERS", "Agreement", "Dataset", "EvalConfig",
        "EvalPlan", "EvalSpec",
        "Evaluation", "ItemOutcome", "PairedDifference", "Preference", "ProfileWriter", "Setting", "SettingContext",
        "WriterFactory", "WriterParts", "agreement_table", "assemble", "auc", "check_no_target_in_history",
        "compare", "compare_folders", "compare_runs", "comparison_report", "comparisons_table",
        "cross_domain_variants", "donors", "free_writer", "gain_recovered", "judge_methods",
        "judge_methods_table", "markdown_table", "noise_variants", "paired_difference", "paper_table",
        "parse_methods", "parse_settings", "plan_history", "positive_only_variant", "qualifies", "register", "ruled_out", "summarize",
        "wilson_interval", "write_report", "write_summary"],
    "prefscribe.personaset": [
        "HISTORY_FIELD", "Dimension", "PersonaSet", "PersonaSetConfig", "Pole", "build_persona_set", "load_dimensions",
        "load_questions", "reply_messages", "reply_text", "select_dimensions"],
    "prefscribe.synth": [
        "BELOW_LAMBDA", "BELOW_THRESHOLD", "Candidate", "DirectScorer", "JUDGE_FAILED", "JUDGE_WRONG", "Journal",
        "MENTIONS_TARGET", "Merged", "NOT_DRAWN", "NO_REJECTED", "NO_TARGET", "Point", "REFERS_TO_CANDIDATES",
        "REPEATS", "SCORE_FAILED", "Score", "Segmented", "SynthConfig", "SynthModels", "SynthResult", "Synthesizer",
        "TOO_FEW_TARGETS", "TOO_FEW_VALID", "TOO_LONG", "Target", "completion_text", "default_funnel_path",
        "default_journal_path", "funnel_report", "funnel_table", "funnel_text", "generation_messages", "item_keys",
        "leaks", "merge_messages", "parse_candidate", "parse_merge", "segment_user", "select_targets", "sft_record",
        "synthesize", "working_history"],
    "prefscribe.curriculum": [
        "NO_POINTS", "PRESETS", "PruneResult", "PruneSettings", "ScoredPoint", "Selection", "TOO_FEW_POINTS",
        "alpha_threshold", "plot_histograms", "point_indices", "prune", "prune_table", "resolve_settings",
        "rl_record", "score_points", "select"],
    "prefscribe.updates": ["ModelRuntime", "UpdateConfig", "Worker"],
    "prefscribe.formats": [
        "DOCUMENT", "DOCUMENT_VERSION", "FORMATS", "PROFILE_FIELDS", "Format", "InteractionRecord", "UserDocument",
        "VersionRecord", "check_document", "get_format", "profile_record", "read_document", "register"],
    "prefscribe.train": [
        "DataSource", "DirectTrainConfig", "LoraSettings", "PromptBuilder", "RLRecord", "RLTrainConfig",
        "SFTTrainConfig", "StreamingReward", "TrainConfig", "cumulative_rewards", "format_reward", "group_normalize",
        "judge_rewards", "load_config", "plot_training", "read_rl_records", "run", "save_final", "summary_of",
        "train_direct", "train_rl", "train_sft"],
}  # prefscribe.store and prefscribe.service: tests/service/test_surface.py


@pytest.mark.parametrize("package", sorted(SURFACE))
def test_public_names_are_exactly_these(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(SURFACE[package]) and len(set(module.__all__)) == len(module.__all__)
    assert module.__doc__ and len(module.__doc__.split()) > 10  # says what the package owns
    for name in module.__all__:
        if name in ("train_sft", "train_direct", "train_rl"):
            continue  # these import TRL on first use
        value = getattr(module, name)  # a listed name that is missing raises here
        if inspect.isclass(value) or inspect.isfunction(value):  # prefscribe's own, not a stray re-export
            assert value.__module__.startswith("prefscribe."), name


def test_the_top_level_names_are_the_library_roles_not_their_modules():
    assert callable(prefscribe.infer) and callable(prefscribe.stream)
    assert issubclass(prefscribe.InputError, prefscribe.PrefscribeError)


def _readme_library_snippet() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Library"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_library_example_runs_on_a_scripted_model(fake_backend, tmp_path, monkeypatch):
    def option_fn(prompt):  # always answers "Item A": both orders together cancel that bias exactly
        return [-0.1, -2.0]

    backend = fake_backend(reply_fn=lambda prompt: "Prefers short answers.", option_fn=option_fn)
    monkeypatch.setattr(prefscribe, "load_backend", lambda spec: backend)
    monkeypatch.chdir(tmp_path)
    rows = [f'{{"context": "q{i}", "chosen": "short {i}", "rejected": "long {i}"}}' for i in range(6)]
    Path("history.jsonl").write_text("\n".join(rows) + "\n")
    Path("new.jsonl").write_text(rows[0] + "\n")
    Path("readme_example.py").write_text(_readme_library_snippet())
    scope = runpy.run_path("readme_example.py")
    assert isinstance(scope["profile"], prefscribe.Profile) and scope["profile"].covers == 7
    assert [s.covers for s in scope["steps"]] == [2, 4, 6]
    assert scope["choice"].p_a == pytest.approx(0.5) and len(scope["choice"].orders) == 2


def _all_modules():
    import pkgutil

    for info in pkgutil.walk_packages(prefscribe.__path__, "prefscribe."):
        # Alembic's migration scripts run only under Alembic (env.py reads its context at import).
        if not info.name.endswith("__main__") and ".migrations" not in info.name:
            yield importlib.import_module(info.name)


def test_every_exception_prefscribe_defines_is_a_prefscribe_error():
    """A closed tree: `except PrefscribeError` catches everything the library raises on purpose. The service's
    HTTP exceptions (ApiError, ...) are its handlers' business: they never leave the app."""
    defined = {obj for module in _all_modules() for obj in vars(module).values()
               if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("prefscribe.")
               and not obj.__module__.startswith("prefscribe.service")}
    assert prefscribe.InputError in defined
    assert [cls.__qualname__ for cls in defined if not issubclass(cls, prefscribe.PrefscribeError)] == []
