"""The whole pipeline (notebook 22): every stage end to end on the tiny preset, resuming, the card, and bad input."""
import json
import shutil

import pytest
import torch

import course_lib.pipeline as pipeline
from course_lib.cli import main
from course_lib.evaluation import METRICS
from course_lib.pipeline import OUTPUTS, STAGES, PipelineError, run_pipeline
from course_lib.training import load_checkpoint, save_checkpoint


def run(out, **options):
    lines = []
    report = run_pipeline(out, "tiny", progress=False, log=lines.append, **options)
    return report, lines


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One tiny run, every stage: the folder, its report and what it printed."""
    out = tmp_path_factory.mktemp("pipeline") / "run"
    report, lines = run(out)
    return out, report, lines


def test_every_stage_writes_its_output_and_the_card_names_the_final_checkpoint(finished):
    out, report, lines = finished
    for stage in STAGES:
        assert (out / OUTPUTS[stage]).is_file(), stage
    for png in ("pretrain_loss.png", "sft_loss.png", "rl_reward.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["checkpoint"] == str((out / "rl.pt").resolve())
    model, tokenizer = load_checkpoint(report["checkpoint"])
    assert tokenizer.specials == ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]  # a chat model
    assert any("bpb" in key for key in report) and any("acc" in key for key in report)
    assert set(report["models"]) == {"base", "sft", "rl"}
    markdown = (out / "report.md").read_text(encoding="utf-8")
    rows = {line.split("(`")[1].split("`)")[0]: line for line in markdown.splitlines() if "(`" in line}
    for key in METRICS:  # every figure of the card is the JSON's, formatted
        cells = [cell.strip() for cell in rows[key].split("|")[3:-1]]
        values = [report["models"][name]["metrics"][key] for name in ("base", "sft", "rl")]
        assert cells == [("n/a (*)" if v is None else f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}") for v in values], key
    assert "preset tiny" in markdown and "cores" in markdown and "PyTorch" in markdown
    assert [line.split("]")[0] for line in lines if line.startswith("[")] == [f"[{i}/5" for i in range(1, 6)]


def test_running_again_skips_every_finished_stage(finished):
    out, report, _ = finished
    before = {name: (out / name).stat().st_mtime_ns for name in OUTPUTS.values()}
    again, lines = run(out)
    assert all("skipped" in line for line in lines if line.startswith("["))
    assert {name: (out / name).stat().st_mtime_ns for name in OUTPUTS.values()} == before
    assert again == report


def test_an_interrupted_pretraining_resumes_and_ends_where_an_uninterrupted_one_does(finished, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = pipeline.pretrain

    def interrupted_after_five_steps(*args, **kwargs):
        return real(*args, **kwargs, stop_after=5)  # as Ctrl-C would: the checkpoint holds step 5

    monkeypatch.setattr(pipeline, "pretrain", interrupted_after_five_steps)
    with pytest.raises(KeyboardInterrupt):
        run(out)
    marker = json.loads((out / "pipeline.json").read_text())
    assert marker["stages"]["tokenizer"]["done"] and not marker["stages"]["pretrain"]["done"]
    monkeypatch.setattr(pipeline, "pretrain", real)
    _, lines = run(out, until="pretrain")
    assert any("resuming from step 5 of 12" in line for line in lines)
    resumed, _ = load_checkpoint(out / "base.pt")
    uninterrupted, _ = load_checkpoint(finished[0] / "base.pt")
    for (name, a), b in zip(resumed.state_dict().items(), uninterrupted.state_dict().values()):
        assert torch.equal(a, b), name  # bitwise: the resumed run is the same run


def test_a_perturbed_checkpoint_changes_the_card(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    model, tokenizer = load_checkpoint(out / "rl.pt")
    with torch.no_grad():
        model.token_embedding.weight.mul_(3.0)
    save_checkpoint(out / "rl.pt", model, tokenizer)
    report, lines = run(out, redo="eval")
    assert [line for line in lines if line.startswith("[")][-1].startswith("[5/5] eval (")  # redone, not skipped
    before, after = finished[1]["models"]["rl"]["metrics"], report["models"]["rl"]["metrics"]
    assert after["shakespeare_bpb"] != before["shakespeare_bpb"]
    assert report["models"]["sft"] == finished[1]["models"]["sft"]  # the others are what they were


def test_redo_runs_that_stage_and_the_later_ones_only(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    _, lines = run(out, redo="rl")
    stage_lines = [line for line in lines if line.startswith("[")]
    assert all("skipped" in line for line in stage_lines[:3]) and not any("skipped" in line for line in stage_lines[3:])


def test_bad_run_folders_and_names_are_one_line_each(finished, tmp_path, capsys):
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.txt").write_text("years of work")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "pipeline.json").write_text("{not json")
    other_preset = tmp_path / "cpu_run"
    shutil.copytree(finished[0], other_preset)
    marker = json.loads((other_preset / "pipeline.json").read_text())
    (other_preset / "pipeline.json").write_text(json.dumps({**marker, "preset": "cpu"}))
    cases = [
        (["pipeline", "--preset", "tiny", "--out", str(foreign)], "not a pipeline run"),
        (["pipeline", "--preset", "tiny", "--out", str(a_file)], "is a file"),
        (["pipeline", "--preset", "tiny", "--out", str(garbage)], "not JSON"),
        (["pipeline", "--preset", "tiny", "--out", str(other_preset)], "--preset cpu run"),
        (["pipeline", "--preset", "tiny", "--out", str(other_preset), "--redo", "rl"], "--preset cpu run"),
        (["pipeline", "--preset", "huge", "--out", str(tmp_path / "new")], "invalid choice: 'huge'"),
        (["pipeline", "--preset", "tiny", "--until", "deploy", "--out", str(tmp_path / "new")], "invalid choice: 'deploy'"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (argv, err)
    assert (foreign / "chapter1.txt").read_text() == "years of work" and sorted(p.name for p in foreign.iterdir()) == ["chapter1.txt"]
    assert a_file.read_text() == "keep me"
    assert not (tmp_path / "new").exists()
    with pytest.raises(PipelineError, match="unknown stage"):
        run_pipeline(tmp_path / "new", "tiny", redo="deploy")


def test_a_stage_output_of_the_wrong_kind_is_named_with_the_fix(finished, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished[0], out)
    (out / "sft.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    assert main(["pipeline", "--preset", "tiny", "--out", str(out), "--redo", "rl", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "sft.pt" in err and "--redo sft" in err and err.count("\n") == 1


def test_eval_prints_json_for_programs_and_compares_two_checkpoints(finished, tmp_path, capsys):
    out = finished[0]
    assert main(["eval", "--checkpoint", str(out / "rl.pt"), "--json", "--limit", "12"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["checkpoint"] == str(out / "rl.pt") and set(METRICS) <= set(result)
    assert result["shakespeare_bpb"] > 0 and 0 <= result["arithmetic_acc"] <= 1
    card = tmp_path / "card"
    assert main(["eval", "--checkpoint", str(out / "base.pt"), "--checkpoint", str(out / "rl.pt"), "--json",
                 "--limit", "12", "--report", str(card)]) == 0
    both = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert both["checkpoint"] == [str(out / "base.pt"), str(out / "rl.pt")]
    assert both["reply_perplexity"][0] is None and both["reply_perplexity"][1] > 1  # the base is no chat model
    assert both["shakespeare_bpb"][1] == result["shakespeare_bpb"]
    assert (card / "report.md").is_file() and json.loads((card / "report.json").read_text())["models"]


def test_eval_bad_input_is_one_line(finished, tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    word = tmp_path / "word.pt"
    assert main(["train", "--data", "data/lang.txt", "--out", str(word), "--steps", "1", "--no-progress"]) == 0
    capsys.readouterr()
    for argv, expected in [
        (["eval", "--checkpoint", str(junk)], "not a course checkpoint"),
        (["eval", "--checkpoint", str(tmp_path / "missing.pt")], "no such file"),
        (["eval", "--checkpoint", str(word)], "none of the metrics applies"),
        (["eval"], "give --checkpoint"),
        (["eval", "--checkpoint", str(word), "--checkpoint", str(word), "--task", "arithmetic"], "one --checkpoint"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, (argv, err)


def test_serve_after_the_pipeline_serves_the_final_chat_model(finished, monkeypatch, capsys):
    import course_lib.server as server

    served = {}
    monkeypatch.setattr(server, "serve", lambda model, tokenizer, **options: served.update(model=model, **options))
    assert main(["pipeline", "--preset", "tiny", "--out", str(finished[0]), "--serve", "--port", "8123"]) == 0
    final, _ = load_checkpoint(finished[0] / "rl.pt")
    assert served["port"] == 8123 and served["model_name"] == "pipeline-tiny"
    for a, b in zip(served["model"].state_dict().values(), final.state_dict().values()):
        assert torch.equal(a, b)
    assert "report card:" in capsys.readouterr().out


def test_the_mixture_shares_the_steps_as_its_weights_say_and_the_rate_decays_at_the_end():
    from course_lib.gpt import GPT, GPTConfig
    from course_lib.pipeline import mixture_lr, train_mixture

    assert [mixture_lr(s, 10, 1.0, 0.3) for s in range(1, 11)] == [1.0] * 7 + [0.75, 0.5, 0.25]
    assert [mixture_lr(s, 4, 2.0, 0.0) for s in range(1, 5)] == [2.0] * 4  # no warm-down: constant
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=10, context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    short = (torch.randint(0, 10, (20, 16)), torch.full((20, 16), -100))
    short[1][:, :3] = 1  # only the first 3 columns are learned: the batch is trimmed to them
    wide = (torch.randint(0, 10, (20, 16)), torch.randint(0, 10, (20, 16)))
    widths = []
    real_forward = model.forward
    model.forward = lambda x, y=None, **kw: (widths.append(x.shape), real_forward(x, y, **kw))[1]
    history = train_mixture(model, {"short": (*short, 2, 4), "wide": (*wide, 1, 2)}, steps=6, lr=1e-3, warmdown=0.5,
                            progress=False)
    assert history["source"] == ["short", "short", "wide"] * 2
    assert widths == [(4, 3), (4, 3), (2, 16)] * 2
    assert history["lr"] == pytest.approx([1e-3 * f for f in (1, 1, 1, 0.75, 0.5, 0.25)])


def test_under_torchrun_two_processes_pretrain_together_and_rank_0_does_the_rest(finished, tmp_path):
    import sys

    from conftest import TIME_SCALE, run_to_the_end

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "course_lib",
               "pipeline", "--preset", "tiny", "--out", str(out), "--until", "sft", "--no-progress"]
    returncode, stdout, stderr = run_to_the_end(command, tmp_path, 180 * TIME_SCALE)
    assert returncode == 0, stderr[-3000:]
    assert stdout.count("[2/5] pretrain") == 1  # rank 0 alone prints
    marker = json.loads((out / "pipeline.json").read_text())
    assert marker["stages"]["pretrain"]["device"] == "cpu x 2" and marker["stages"]["sft"]["done"]
    two, _ = load_checkpoint(out / "base.pt")
    one, _ = load_checkpoint(finished[0] / "base.pt")  # the same global batch on one process
    for (name, a), b in zip(two.state_dict().items(), one.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3, msg=name)
